//! Load balancing over several TCP endpoints: round robin spreads calls
//! evenly, an endpoint that dies costs only the calls that were on it, and
//! one that comes back is used again; pick-first sticks to the first.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{run, runtime};
use p2p_grpc::client::{Grpc, LoadBalancing};
use p2p_grpc::server::{CallFuture, ServerCall, Service};
use p2p_grpc::{Channel, Code, Request, Response, Server, Status};

/// `Count/Hit`: counts the call and answers with the server's number.
#[derive(Clone)]
struct Count {
    id: u32,
    hits: Arc<AtomicUsize>,
}

impl Service for Count {
    fn name(&self) -> &'static str {
        "test.Count"
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        let this = self.clone();
        match method {
            "Hit" => call.unary(move |_: Request<()>| async move {
                this.hits.fetch_add(1, Ordering::Relaxed);
                Ok::<_, Status>(Response::new(this.id))
            }),
            _ => call.unimplemented(),
        }
    }
}

struct Backend {
    server: Server,
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

fn backend(id: u32, listener: std::net::TcpListener) -> Backend {
    let hits = Arc::new(AtomicUsize::new(0));
    let server = Server::builder()
        .add_service(Count {
            id,
            hits: hits.clone(),
        })
        .build()
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = server.clone();
    runtime().spawn(Box::pin(async move {
        let _ = serving.serve_listener(listener).await;
    }));
    Backend { server, addr, hits }
}

fn backends(n: u32) -> Vec<Backend> {
    (0..n)
        .map(|id| backend(id, std::net::TcpListener::bind("127.0.0.1:0").unwrap()))
        .collect()
}

fn balanced(backends: &[Backend], policy: LoadBalancing) -> Channel {
    let targets: Vec<String> = backends
        .iter()
        .map(|b| format!("http://{}", b.addr))
        .collect();
    Channel::builder()
        .balance(targets.iter().map(String::as_str), policy)
        .unwrap()
}

async fn hit(grpc: &Grpc) -> Result<u32, Status> {
    grpc.unary::<_, u32>(Request::new(()), "/test.Count/Hit")
        .await
        .map(Response::into_inner)
}

#[test]
fn round_robin_spreads_a_thousand_calls_evenly_over_three_servers() {
    run(async {
        let backends = backends(3);
        let channel = balanced(&backends, LoadBalancing::RoundRobin);
        let grpc = Grpc::new(channel.clone());
        // Connecting: the first call connects one endpoint and the others
        // connect in the background.
        hit(&grpc).await.unwrap();
        while channel.connected_endpoints() < 3 {
            runtime().sleep(Duration::from_millis(2)).await;
        }
        for backend in &backends {
            backend.hits.store(0, Ordering::Relaxed);
        }
        // 1,000 calls, 20 at a time.
        for _ in 0..50 {
            let calls = (0..20).map(|_| hit(&grpc));
            for result in futures::future::join_all(calls).await {
                result.unwrap();
            }
        }
        let hits: Vec<usize> = backends
            .iter()
            .map(|b| b.hits.load(Ordering::Relaxed))
            .collect();
        assert_eq!(hits.iter().sum::<usize>(), 1000);
        // Round robin over three connected endpoints: 333 or 334 each.
        for count in &hits {
            assert!((333..=334).contains(count), "{hits:?}");
        }
    });
}

#[test]
fn a_dead_endpoint_costs_only_its_calls_and_comes_back_when_restarted() {
    run(async {
        let mut backends = backends(3);
        let channel = balanced(&backends, LoadBalancing::RoundRobin);
        let grpc = Grpc::new(channel.clone());
        hit(&grpc).await.unwrap();
        while channel.connected_endpoints() < 3 {
            runtime().sleep(Duration::from_millis(2)).await;
        }
        // 16 workers call in a loop while server 1 is killed.
        let done = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let workers = (0..16).map(|_| {
            let grpc = grpc.clone();
            let done = done.clone();
            let failed = failed.clone();
            async move {
                for _ in 0..60 {
                    match hit(&grpc).await {
                        Ok(_) => {}
                        Err(status) => {
                            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let kill = async {
            while done.load(Ordering::Relaxed) < 300 {
                runtime().sleep(Duration::from_millis(1)).await;
            }
            backends[1].server.shutdown(Duration::ZERO).await;
        };
        futures::join!(futures::future::join_all(workers), kill);
        // At most one call per worker was on the dead connection.
        let failed = failed.load(Ordering::Relaxed);
        assert!(failed <= 16, "{failed} calls failed");
        // After it: every call goes to the two others.
        while channel.connected_endpoints() != 2 {
            runtime().sleep(Duration::from_millis(2)).await;
        }
        let before = backends[1].hits.load(Ordering::Relaxed);
        let mut served = [0; 3];
        for _ in 0..100 {
            served[hit(&grpc).await.unwrap() as usize] += 1;
        }
        // Shared evenly: the dead one's turns do not all go to a neighbour.
        assert_eq!(served, [50, 0, 50]);
        assert_eq!(backends[1].hits.load(Ordering::Relaxed), before);
        // Restarted on its port, it is used again (after its backoff).
        let addr = backends[1].addr;
        let listener = loop {
            match std::net::TcpListener::bind(addr) {
                Ok(listener) => break listener,
                Err(_) => runtime().sleep(Duration::from_millis(5)).await,
            }
        };
        backends[1] = backend(1, listener);
        while backends[1].hits.load(Ordering::Relaxed) == 0 {
            hit(&grpc).await.unwrap();
            runtime().sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(channel.connected_endpoints(), 3);
    });
}

#[test]
fn pick_first_sticks_to_the_first_endpoint_until_it_fails() {
    run(async {
        let backends = backends(3);
        let channel = balanced(&backends, LoadBalancing::PickFirst);
        let grpc = Grpc::new(channel.clone());
        for _ in 0..50 {
            assert_eq!(hit(&grpc).await.unwrap(), 0);
        }
        backends[0].server.shutdown(Duration::ZERO).await;
        while !matches!(hit(&grpc).await, Ok(1)) {
            runtime().sleep(Duration::from_millis(2)).await;
        }
        for _ in 0..50 {
            assert_eq!(hit(&grpc).await.unwrap(), 1);
        }
    });
}

#[test]
fn no_reachable_endpoint_is_unavailable_naming_each() {
    run(async {
        // Two ports with nothing behind them.
        let free: Vec<SocketAddr> = (0..2)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
            })
            .collect();
        let targets: Vec<String> = free.iter().map(|a| format!("http://{a}")).collect();
        let channel = Channel::builder()
            .balance(
                targets.iter().map(String::as_str),
                LoadBalancing::RoundRobin,
            )
            .unwrap();
        let status = hit(&Grpc::new(channel)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        for addr in &free {
            assert!(status.message().contains(&addr.to_string()), "{status:?}");
        }
        let err = Channel::builder()
            .balance(std::iter::empty(), LoadBalancing::RoundRobin)
            .unwrap_err();
        assert!(err.is_invalid_target(), "{err}");
    });
}

/// The runtime the features chose, with a resolver that knows one name of
/// its own (what a user's resolver plugs in through `Runtime::resolve`):
/// it answers with the backends' addresses, ports included.
#[derive(Debug)]
struct OwnDns {
    inner: p2p_grpc::rt::SharedRuntime,
    name: &'static str,
    addrs: Vec<SocketAddr>,
}

impl p2p_grpc::rt::Runtime for OwnDns {
    fn spawn(&self, task: p2p_grpc::rt::Task) {
        self.inner.spawn(task)
    }

    fn sleep(&self, duration: Duration) -> p2p_grpc::rt::Sleep {
        self.inner.sleep(duration)
    }

    fn tcp_connect(&self, addr: SocketAddr) -> p2p_grpc::rt::Connecting {
        self.inner.tcp_connect(addr)
    }

    fn resolve(&self, host: &str, port: u16) -> p2p_grpc::rt::Resolving {
        if host == self.name {
            return Box::pin(std::future::ready(Ok(self.addrs.clone())));
        }
        self.inner.resolve(host, port)
    }
}

#[test]
fn round_robin_over_the_addresses_a_name_resolves_to() {
    run(async {
        let backends = backends(3);
        let dns = OwnDns {
            inner: runtime(),
            name: "backends.test",
            addrs: backends.iter().map(|b| b.addr).collect(),
        };
        let channel = Channel::builder()
            .runtime(Arc::new(dns))
            .balance_resolved("dns:///backends.test:50051", LoadBalancing::RoundRobin)
            .await
            .unwrap();
        let grpc = Grpc::new(channel.clone());
        hit(&grpc).await.unwrap();
        while channel.connected_endpoints() < 3 {
            runtime().sleep(Duration::from_millis(2)).await;
        }
        let mut served = [0; 3];
        for _ in 0..30 {
            served[hit(&grpc).await.unwrap() as usize] += 1;
        }
        assert_eq!(served, [10, 10, 10]);
        // A name that resolves nowhere is an error naming it.
        let err = Channel::builder()
            .balance_resolved("dns:///no-such-host.invalid:1", LoadBalancing::RoundRobin)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    });
}
