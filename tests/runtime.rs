//! The runtime seam: a runtime of the user's own carries the TCP sockets of
//! the convenience helpers, and the tokio backend serves and calls over
//! `tokio::net` on a runtime the user built.

mod common;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use p2p_grpc::client::Grpc;
use p2p_grpc::rt::{Connecting, Incoming, Runtime, SharedRuntime, Sleep, Task};
use p2p_grpc::{Channel, Code, Request};

/// Delegates to the default runtime and counts the TCP sockets it opens;
/// can be told to refuse connections.
#[derive(Debug)]
struct Counting {
    inner: SharedRuntime,
    connects: AtomicUsize,
    listeners: AtomicUsize,
    refuse: bool,
}

impl Counting {
    fn new(refuse: bool) -> Arc<Self> {
        Arc::new(Counting {
            inner: runtime(),
            connects: AtomicUsize::new(0),
            listeners: AtomicUsize::new(0),
            refuse,
        })
    }
}

impl Runtime for Counting {
    fn spawn(&self, task: Task) {
        self.inner.spawn(task)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        self.inner.sleep(duration)
    }

    fn tcp_connect(&self, addr: SocketAddr) -> Connecting {
        self.connects.fetch_add(1, Ordering::SeqCst);
        if self.refuse {
            return Box::pin(async {
                Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "refused by the test runtime",
                ))
            });
        }
        self.inner.tcp_connect(addr)
    }

    fn tcp_incoming(&self, listener: TcpListener) -> io::Result<Incoming> {
        self.listeners.fetch_add(1, Ordering::SeqCst);
        self.inner.tcp_incoming(listener)
    }
}

#[test]
fn a_custom_runtime_carries_the_tcp_helpers() {
    run(async {
        let rt = Counting::new(false);
        let (server, _events) = echo_server(|b| b.runtime(rt.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = server.clone();
        runtime().spawn(Box::pin(async move {
            let _ = serving.serve_listener(listener).await;
        }));
        let channel = Channel::builder()
            .runtime(rt.clone())
            .connect_tcp(addr)
            .await
            .unwrap();
        let reply = Grpc::new(channel)
            .unary::<_, Msg>(Request::new(Msg::text("through my runtime")), UNARY)
            .await
            .unwrap();
        assert_eq!(reply.get_ref().text, "through my runtime");
        assert_eq!(rt.listeners.load(Ordering::SeqCst), 1);
        assert_eq!(rt.connects.load(Ordering::SeqCst), 1);
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn a_runtime_that_cannot_connect_fails_connect_tcp_with_its_error() {
    run(async {
        let rt = Counting::new(true);
        let (server, _events) = echo_server(|b| b);
        let addr = tcp_server(&server);
        let err = Channel::builder()
            .runtime(rt.clone())
            .connect_tcp(addr)
            .await
            .unwrap_err();
        // The runtime's own error, kind and text, not a rebuilt one.
        let io = err.as_io().expect("an IO error");
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied, "{io}");
        assert_eq!(io.to_string(), "refused by the test runtime");
        assert_eq!(rt.connects.load(Ordering::SeqCst), 1);
        // A lazy channel on the same runtime reports the failure per call.
        let lazy = Channel::builder()
            .runtime(rt.clone())
            .connect_lazy(move || {
                let rt = rt.clone();
                async move { rt.tcp_connect(addr).await }
            })
            .unwrap();
        let status = Grpc::new(lazy)
            .unary::<_, Msg>(Request::new(Msg::text("x")), UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("refused by the test runtime"));
    });
}

/// A tokio application builds its own current-thread runtime: the server and
/// the channel run on it with its own reactor (no second reactor thread).
#[cfg(feature = "tokio")]
#[test]
fn tokio_current_thread_runtime_serves_and_calls_over_tcp() {
    use p2p_grpc::rt::TokioRuntime;

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio_rt.block_on(async {
        let rt: SharedRuntime = Arc::new(TokioRuntime::try_current().unwrap());
        let (events, _received) = futures::channel::mpsc::unbounded();
        let server = p2p_grpc::Server::builder()
            .runtime(rt.clone())
            .add_service(EchoService::new(rt.clone(), Some(events)))
            .build()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = server.clone();
        rt.spawn(Box::pin(async move {
            let _ = serving.serve_listener(listener).await;
        }));
        let grpc = Grpc::new(
            Channel::builder()
                .runtime(rt.clone())
                .connect_tcp(addr)
                .await
                .unwrap(),
        );
        for i in 0..100 {
            let text = format!("call {i}");
            let reply = grpc
                .unary::<_, Msg>(Request::new(Msg::text(text.clone())), UNARY)
                .await
                .unwrap();
            assert_eq!(reply.get_ref().text, text);
        }
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn connect_tcp_to_a_closed_port_keeps_the_systems_error() {
    run(async {
        // A port nobody listens on: bound, then closed.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = Channel::connect_tcp(addr).await.unwrap_err();
        let io = err.as_io().expect("an IO error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(io.raw_os_error().is_some(), "the OS error itself: {io:?}");
        assert!(std::error::Error::source(&err).is_some());
    });
}
