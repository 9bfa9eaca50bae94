//! Soak run: many calls of the four kinds over libp2p `GrpcStream`s, with
//! random deadlines, client cancellations and server restarts, checking
//! that every call ends, that no task leaks and that memory stays flat.
//!
//! ```text
//! cargo bench -p p2p-grpc-bench --bench soak -- --calls 1000000
//! cargo bench -p p2p-grpc-bench --bench soak -- --quick --tcp
//! cargo bench -p p2p-grpc-bench --bench soak -- --calls 1000000 --tcp --kill
//! ```
//!
//! Options: `--calls N` (default 1,000,000), `--quick` (20,000 calls),
//! `--tcp` (TCP instead of libp2p's memory transport), `--concurrency C`
//! (calls in flight, default 64), `--restart-every K` (server restarts,
//! default every N/20 calls, at least 1,000, or 5,000 with `--kill`), `--clients M` (client nodes, default 2),
//! `--runtime smol|tokio|async-std` (default smol), `--seed S`, `--kill`
//! (TCP: the server node runs in a child process, this bench run again
//! with `--serve-child`, and every restart kills it with SIGKILL).
//! `SOAK_DEBUG=1` prints the live task count while waiting for the tasks
//! to end; `SOAK_DEBUG=spawns` also keeps a backtrace of every spawn and
//! prints those of the tasks still live after two seconds (slow).
//!
//! One server node and M client nodes, each client with two reconnecting
//! channels (`GrpcStream::client(server)`). Every call picks a kind, a
//! payload, and a plan:
//! - no deadline, or a generous one (10 s), or a tight one (1 to 5 ms) on a
//!   call the server delays by 10 to 30 ms, so that it fires;
//! - sometimes the client drops the call future after 0 to 3 ms, or drops a
//!   response stream half-read;
//! - one call in ten waits for ready (it waits out a reconnecting
//!   channel's backoff instead of failing fast).
//!
//! Every K calls the server node shuts down (alternately gracefully, the
//! `GrpcStream` first, and abruptly, the node only; with `--kill`, its
//! process is killed) and starts again with the same keypair on the same
//! address; calls go on over the same channels.
//!
//! Checks, each failing the run (exit status 1):
//! - every call ended, with a status or a client cancellation, and the
//!   outcomes add up to N; no call hit its 30 s watchdog;
//! - no call ended in a way its plan rules out (for example an OK call with
//!   a deadline that must fire, wrong data, or a failure of a plain call
//!   while the server was up the whole time);
//! - every task spawned through the runtime (counted by a wrapping
//!   `Runtime`) has finished once everything is shut down and dropped;
//! - resident memory (VmRSS) grew by less than 10 % between the checkpoint
//!   after 5 % of the calls (at least 10,000, or half of a shorter run)
//!   and the end (runs of 200,000 calls or more; shorter ones, `--quick`
//!   included, only report it).

use std::collections::BTreeMap;
use std::fmt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::future::{self, Either};
use futures::StreamExt;
use p2p_grpc::client::Grpc;
use p2p_grpc::libp2p::libp2p::identity::Keypair;
use p2p_grpc::libp2p::libp2p::{Multiaddr, PeerId};
use p2p_grpc::libp2p::{GrpcStream, Node};
use p2p_grpc::rt::{Runtime, SharedRuntime, Sleep, Task};
use p2p_grpc::server::{CallFuture, ServerCall, Service};
use p2p_grpc::{BoxStream, Code, Request, Response, Status, Streaming};

// ---------------------------------------------------------------------------
// A runtime that counts its live tasks.

/// Where each live task was spawned (a backtrace), by task number.
type Origins = Arc<Mutex<std::collections::HashMap<u64, String>>>;

#[derive(Debug)]
struct Counting {
    inner: SharedRuntime,
    live: Arc<AtomicUsize>,
    spawned: AtomicU64,
    /// With `SOAK_DEBUG=spawns`: where each live task was spawned.
    origins: Option<Origins>,
}

/// Decrements the live count when the task is dropped: finished, or
/// dropped unfinished by the executor.
struct Alive {
    live: Arc<AtomicUsize>,
    origin: Option<(u64, Origins)>,
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
        if let Some((id, origins)) = &self.origin {
            origins.lock().unwrap().remove(id);
        }
    }
}

impl Runtime for Counting {
    fn spawn(&self, task: Task) {
        self.live.fetch_add(1, Ordering::SeqCst);
        let id = self.spawned.fetch_add(1, Ordering::Relaxed);
        let origin = self.origins.as_ref().map(|origins| {
            let trace = format!(
                "{:?} after start\n{}",
                START.get_or_init(Instant::now).elapsed(),
                std::backtrace::Backtrace::force_capture()
            );
            origins.lock().unwrap().insert(id, trace);
            (id, origins.clone())
        });
        let alive = Alive {
            live: self.live.clone(),
            origin,
        };
        self.inner.spawn(Box::pin(async move {
            let _alive = alive;
            task.await
        }));
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        self.inner.sleep(duration)
    }
}

// ---------------------------------------------------------------------------
// The service.

#[derive(Clone, PartialEq, prost::Message)]
struct Item {
    #[prost(uint64, tag = "1")]
    id: u64,
    /// Milliseconds the server waits before answering (before each message
    /// for the streaming kinds).
    #[prost(uint32, tag = "2")]
    delay_ms: u32,
    #[prost(uint32, tag = "3")]
    count: u32,
    #[prost(bytes = "vec", tag = "4")]
    payload: Vec<u8>,
}

const UNARY: &str = "/soak.Soak/Unary";
const COLLECT: &str = "/soak.Soak/Collect";
const EXPAND: &str = "/soak.Soak/Expand";
const CHAT: &str = "/soak.Soak/Chat";

#[derive(Clone)]
struct Soak {
    runtime: SharedRuntime,
}

async fn delay(runtime: &SharedRuntime, ms: u32) {
    if ms > 0 {
        runtime.sleep(Duration::from_millis(ms.into())).await;
    }
}

impl Service for Soak {
    fn name(&self) -> &'static str {
        "soak.Soak"
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        let runtime = self.runtime.clone();
        match method {
            "Unary" => call.unary(move |request: Request<Item>| async move {
                let item = request.into_inner();
                delay(&runtime, item.delay_ms).await;
                Ok(Response::new(item))
            }),
            "Collect" => {
                call.client_streaming(move |request: Request<Streaming<Item>>| async move {
                    let mut items = request.into_inner();
                    let mut total = Item::default();
                    while let Some(item) = items.message().await? {
                        delay(&runtime, item.delay_ms).await;
                        total.id = total.id.wrapping_add(item.id);
                        total.count += 1;
                    }
                    Ok(Response::new(total))
                })
            }
            "Expand" => call.server_streaming(move |request: Request<Item>| async move {
                let item = request.into_inner();
                let stream = futures::stream::unfold(0u32, move |i| {
                    let runtime = runtime.clone();
                    let item = item.clone();
                    async move {
                        if i >= item.count {
                            return None;
                        }
                        delay(&runtime, item.delay_ms).await;
                        let reply = Item {
                            id: item.id + u64::from(i),
                            payload: item.payload,
                            ..Item::default()
                        };
                        Some((Ok(reply), i + 1))
                    }
                });
                let stream: BoxStream<Item> = Box::pin(stream);
                Ok(Response::new(stream))
            }),
            "Chat" => call.streaming(move |request: Request<Streaming<Item>>| async move {
                let items = request.into_inner();
                let stream = items.then(move |item| {
                    let runtime = runtime.clone();
                    async move {
                        let item = item?;
                        delay(&runtime, item.delay_ms).await;
                        Ok(item)
                    }
                });
                let stream: BoxStream<Item> = Box::pin(stream);
                Ok(Response::new(stream))
            }),
            _ => call.unimplemented(),
        }
    }
}

// ---------------------------------------------------------------------------
// Call plans and outcomes.

/// SplitMix64: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Unary,
    ClientStreaming,
    ServerStreaming,
    Bidi,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deadline {
    None,
    /// 10 s on a call with no server delay: must not fire.
    Generous,
    /// 1 to 5 ms on a call delayed 10 to 30 ms: must fire.
    Tight(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cancel {
    None,
    /// Drop the call future after this many milliseconds.
    DropCall(u32),
    /// Drop the response stream after reading this many messages (server
    /// streaming and bidi).
    DropStream(u32),
}

#[derive(Clone, Debug)]
struct Plan {
    id: u64,
    kind: Kind,
    deadline: Deadline,
    cancel: Cancel,
    /// Messages sent (client streaming, bidi) or asked for (server streaming).
    count: u32,
    payload: usize,
    delay_ms: u32,
    /// Waits for the channel to be ready instead of failing fast while it
    /// reconnects (gRPC's wait-for-ready): such calls ride out a restart,
    /// and show that the clients reach the new server.
    wait_for_ready: bool,
}

impl Plan {
    fn random(id: u64, rng: &mut Rng) -> Plan {
        let kind = match rng.below(4) {
            0 => Kind::Unary,
            1 => Kind::ClientStreaming,
            2 => Kind::ServerStreaming,
            _ => Kind::Bidi,
        };
        let count = 1 + rng.below(5) as u32;
        let payload = match rng.below(100) {
            0 => 64 * 1024,
            1..=9 => 4096,
            _ => rng.below(256) as usize,
        };
        let (deadline, delay_ms) = match rng.below(100) {
            0..=9 => (
                Deadline::Tight(1 + rng.below(5) as u32),
                10 + rng.below(21) as u32,
            ),
            10..=29 => (Deadline::Generous, 0),
            _ => (Deadline::None, 0),
        };
        let cancel = match rng.below(100) {
            0..=4 => Cancel::DropCall(rng.below(4) as u32),
            5..=9 if matches!(kind, Kind::ServerStreaming | Kind::Bidi) => {
                Cancel::DropStream(rng.below(u64::from(count)) as u32)
            }
            _ => Cancel::None,
        };
        let wait_for_ready = rng.below(10) == 0;
        Plan {
            id,
            kind,
            deadline,
            cancel,
            count,
            payload,
            delay_ms,
            wait_for_ready,
        }
    }

    fn item(&self, i: u32) -> Item {
        Item {
            id: self.id + u64::from(i),
            delay_ms: self.delay_ms,
            count: self.count,
            payload: vec![0x5a; self.payload],
        }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        match self.deadline {
            Deadline::None => {}
            Deadline::Generous => request.set_timeout(Duration::from_secs(10)),
            Deadline::Tight(ms) => request.set_timeout(Duration::from_millis(ms.into())),
        }
        request.set_wait_for_ready(self.wait_for_ready);
        request
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Status(Code),
    /// The client dropped the call or its response stream, as planned.
    ClientCancelled,
    /// The reply did not match the request.
    WrongData(String),
    /// The 30 s watchdog fired.
    Hung,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("OK"),
            Outcome::Status(code) => write!(f, "{code:?}"),
            Outcome::ClientCancelled => f.write_str("cancelled by the client (dropped)"),
            Outcome::WrongData(_) => f.write_str("WRONG DATA"),
            Outcome::Hung => f.write_str("HUNG (watchdog)"),
        }
    }
}

/// How a call ended.
struct Ended {
    plan: Plan,
    outcome: Outcome,
    /// A server restart was under way when the call started or ended,
    /// completed during the call, or ended less than a second before it.
    disturbed: bool,
    /// Restarts completed when the call ended.
    epoch: u64,
    /// The message of an error status.
    message: String,
}

/// Shorter runs report the RSS growth without checking it: on a process
/// of about 9 MiB, 10 % is the size of what happens to be open when RSS is
/// read (a 20,000-call run ends anywhere between -1 % and +20 %).
const RSS_CHECK_MIN_CALLS: u64 = 200_000;

static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

const WATCHDOG: Duration = Duration::from_secs(30);

/// Runs the call its plan describes; the outcome and, for an error
/// status, its message.
async fn run_call(grpc: &Grpc, runtime: &SharedRuntime, plan: &Plan) -> (Outcome, String) {
    let call = async {
        match plan.kind {
            Kind::Unary => {
                let reply = grpc
                    .unary::<_, Item>(plan.request(plan.item(0)), UNARY)
                    .await?;
                let reply = reply.into_inner();
                if reply.id != plan.id || reply.payload.len() != plan.payload {
                    return Ok(Outcome::WrongData(format!("unary {:?}", reply.id)));
                }
                Ok(Outcome::Ok)
            }
            Kind::ClientStreaming => {
                let items: Vec<Item> = (0..plan.count).map(|i| plan.item(i)).collect();
                let reply = grpc
                    .client_streaming::<_, _, Item>(
                        plan.request(futures::stream::iter(items)),
                        COLLECT,
                    )
                    .await?
                    .into_inner();
                let expected: u64 = (0..plan.count).map(|i| plan.id + u64::from(i)).sum();
                if reply.id != expected || reply.count != plan.count {
                    return Ok(Outcome::WrongData(format!("collect {reply:?}")));
                }
                Ok(Outcome::Ok)
            }
            Kind::ServerStreaming => {
                let mut replies = grpc
                    .server_streaming::<_, Item>(plan.request(plan.item(0)), EXPAND)
                    .await?
                    .into_inner();
                let mut i = 0;
                loop {
                    if plan.cancel == Cancel::DropStream(i) {
                        return Ok(Outcome::ClientCancelled);
                    }
                    match replies.message().await? {
                        Some(reply) => {
                            if reply.id != plan.id + u64::from(i) {
                                return Ok(Outcome::WrongData(format!("expand {i}")));
                            }
                            i += 1;
                        }
                        None if i == plan.count => return Ok(Outcome::Ok),
                        None => return Ok(Outcome::WrongData(format!("expand ended at {i}"))),
                    }
                }
            }
            Kind::Bidi => {
                let items: Vec<Item> = (0..plan.count).map(|i| plan.item(i)).collect();
                let mut replies = grpc
                    .streaming::<_, _, Item>(plan.request(futures::stream::iter(items)), CHAT)
                    .await?;
                let mut i = 0;
                loop {
                    if plan.cancel == Cancel::DropStream(i) {
                        return Ok(Outcome::ClientCancelled);
                    }
                    match replies.message().await? {
                        Some(reply) => {
                            if reply.id != plan.id + u64::from(i) {
                                return Ok(Outcome::WrongData(format!("chat {i}")));
                            }
                            i += 1;
                        }
                        None if i == plan.count => return Ok(Outcome::Ok),
                        None => return Ok(Outcome::WrongData(format!("chat ended at {i}"))),
                    }
                }
            }
        }
    };
    let call = async {
        match call.await {
            Ok(outcome) => (outcome, String::new()),
            Err::<_, Status>(status) => {
                (Outcome::Status(status.code()), status.message().to_owned())
            }
        }
    };
    let call = std::pin::pin!(call);
    let cancel = match plan.cancel {
        Cancel::DropCall(ms) => runtime.sleep(Duration::from_millis(ms.into())),
        _ => Box::pin(future::pending()),
    };
    let watchdog = runtime.sleep(WATCHDOG);
    match future::select(call, future::select(cancel, watchdog)).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right((Either::Left(_), _)) => (Outcome::ClientCancelled, String::new()),
        Either::Right((Either::Right(_), _)) => (Outcome::Hung, String::new()),
    }
}

/// Whether `outcome` is one the plan allows. `disturbed`: a restart
/// happened during the call (or shortly before it started), so failures
/// from the server going away are allowed too.
fn allowed(plan: &Plan, outcome: &Outcome, disturbed: bool) -> bool {
    let gone = matches!(
        outcome,
        Outcome::Status(Code::Unavailable | Code::Cancelled)
    );
    match outcome {
        Outcome::WrongData(_) | Outcome::Hung => false,
        Outcome::ClientCancelled => plan.cancel != Cancel::None,
        _ if disturbed && gone => true,
        Outcome::Ok => !matches!(plan.deadline, Deadline::Tight(_)),
        Outcome::Status(Code::DeadlineExceeded) => matches!(plan.deadline, Deadline::Tight(_)),
        Outcome::Status(_) => false,
    }
}

// ---------------------------------------------------------------------------
// Nodes.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    Memory,
    Tcp,
}

struct ServerNode {
    node: Node,
    grpc: GrpcStream,
}

/// The server: a node in this process, or a child process serving one.
enum Server {
    Here(ServerNode),
    Child(std::process::Child),
}

impl Server {
    /// Stops the server: gracefully (the `GrpcStream` first, then the
    /// node), abruptly (the node only), or, for a child, with SIGKILL.
    async fn stop(self, graceful: bool, grace: Duration) {
        match self {
            Server::Here(server) => {
                if graceful {
                    server.grpc.shutdown(grace).await;
                }
                server.node.shutdown().await;
            }
            Server::Child(mut child) => {
                // `Child::kill` is SIGKILL on Unix: no chance to close
                // anything; the peers learn from TCP alone.
                child.kill().expect("killing the server process");
                child.wait().expect("reaping the server process");
            }
        }
    }

    /// The child's resident memory (its `VmRSS`), if it is one.
    fn child_rss_kib(&self) -> Option<u64> {
        match self {
            Server::Here(_) => None,
            Server::Child(child) => Some(vm_rss_kib_of(&format!("/proc/{}/status", child.id()))),
        }
    }
}

struct Setup {
    runtime: SharedRuntime,
    net: Net,
    /// Serve from a child process (`--kill`).
    child: Option<String>,
    keypair: Keypair,
    /// Where the server listens, without `/p2p/...`.
    listen: Multiaddr,
}

impl Setup {
    fn node(&self, keypair: Option<Keypair>) -> Node {
        let mut builder = Node::builder().runtime(self.runtime.clone());
        if let Some(keypair) = keypair {
            builder = builder.keypair(keypair);
        }
        match self.net {
            Net::Memory => builder.memory_transport(),
            Net::Tcp => builder.tcp_transport(),
        }
        .build()
        .expect("building a node")
    }

    /// Starts the server, here or in a child process; returns it and its
    /// full address.
    async fn start(&mut self) -> (Server, Multiaddr) {
        let Some(runtime_name) = self.child.clone() else {
            let (server, addr) = self.start_server().await;
            return (Server::Here(server), addr);
        };
        let key = hex(&self.keypair.to_protobuf_encoding().unwrap());
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--serve-child", &key, &self.listen.to_string()])
            .args(["--runtime", &runtime_name])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("starting the server process");
        // Its first line is its address.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = tx.send(line);
        });
        let line = rx.await.unwrap_or_default();
        let addr: Multiaddr = line.trim().parse().expect("the server process's address");
        let mut listen = addr.clone();
        listen.pop();
        self.listen = listen;
        (Server::Child(child), addr)
    }

    /// Starts the server node; returns it and its full address.
    async fn start_server(&mut self) -> (ServerNode, Multiaddr) {
        let node = self.node(Some(self.keypair.clone()));
        let grpc = GrpcStream::builder()
            .runtime(self.runtime.clone())
            .add_service(Soak {
                runtime: self.runtime.clone(),
            })
            .max_connections_per_peer(Some(64))
            .build(node.control())
            .expect("building the GrpcStream");
        grpc.serve().expect("serving");
        let mut addr = None;
        // The address may still be held for a moment after a restart.
        for _ in 0..200 {
            match node.listen_on(self.listen.clone()).await {
                Ok(a) => {
                    addr = Some(a);
                    break;
                }
                Err(err) => {
                    eprintln!("listen on {} failed ({err}); retrying", self.listen);
                    self.runtime.sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let addr = addr.expect("listening");
        let mut listen = addr.clone();
        listen.pop();
        self.listen = listen;
        (ServerNode { node, grpc }, addr)
    }
}

/// Counts the bytes allocated and not yet freed: a leak shows there more
/// clearly than in RSS, which also moves with the allocator's pools and the
/// number of connections open at the moment.
#[global_allocator]
static ALLOCATOR: p2p_grpc_test_support::alloc::Counting = p2p_grpc_test_support::alloc::Counting;

fn heap_kib() -> u64 {
    (p2p_grpc_test_support::alloc::live_bytes() / 1024) as u64
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The child side of `--kill`: serves on `listen` with the keypair given,
/// prints the full address, and serves until killed.
async fn serve_child(runtime: SharedRuntime, key: &str, listen: &str) {
    let keypair = unhex(key)
        .and_then(|bytes| Keypair::from_protobuf_encoding(&bytes).ok())
        .expect("--serve-child KEY: a hex-encoded keypair");
    let mut setup = Setup {
        runtime,
        net: Net::Tcp,
        child: None,
        keypair,
        listen: listen.parse().expect("--serve-child ADDR: a multiaddr"),
    };
    let (_server, addr) = setup.start_server().await;
    println!("{addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    future::pending::<()>().await;
}

fn vm_rss_kib() -> u64 {
    vm_rss_kib_of("/proc/self/status")
}

fn vm_rss_kib_of(status: &str) -> u64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

// ---------------------------------------------------------------------------
// The run.

#[derive(Debug)]
struct Options {
    calls: u64,
    net: Net,
    concurrency: usize,
    restart_every: Option<u64>,
    clients: usize,
    runtime: String,
    seed: u64,
    /// Serve from a child process, killed at each restart.
    kill: bool,
    /// Be that child: keypair (hex) and listen address.
    serve_child: Option<(String, String)>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        calls: 1_000_000,
        net: Net::Memory,
        concurrency: 64,
        restart_every: None,
        clients: 2,
        runtime: "smol".into(),
        seed: 0x50a4,
        kill: false,
        serve_child: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--calls" => {
                options.calls = value("--calls")?
                    .parse()
                    .map_err(|e| format!("--calls: {e}"))?
            }
            "--quick" => options.calls = 20_000,
            "--tcp" => options.net = Net::Tcp,
            "--concurrency" => {
                options.concurrency = value("--concurrency")?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            "--restart-every" => {
                options.restart_every = Some(
                    value("--restart-every")?
                        .parse()
                        .map_err(|e| format!("--restart-every: {e}"))?,
                )
            }
            "--clients" => {
                options.clients = value("--clients")?
                    .parse()
                    .map_err(|e| format!("--clients: {e}"))?
            }
            "--runtime" => options.runtime = value("--runtime")?,
            "--kill" => options.kill = true,
            "--serve-child" => {
                let key = value("--serve-child")?;
                options.serve_child = Some((key, value("--serve-child")?));
            }
            "--seed" => {
                options.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            // What `cargo bench` passes.
            "--bench" => {}
            other => return Err(format!("unknown option {other}")),
        }
    }
    if options.kill && options.net != Net::Tcp {
        return Err(
            "--kill needs --tcp (a child process cannot share the memory transport)".into(),
        );
    }
    if options.calls == 0 || options.concurrency == 0 || options.clients == 0 {
        return Err("--calls, --concurrency and --clients must be positive".into());
    }
    Ok(options)
}

/// The executor the run uses: its base runtime, and how to block on the
/// driver.
enum Executor {
    Smol,
    Tokio(tokio::runtime::Runtime),
    AsyncStd,
}

impl Executor {
    fn new(name: &str) -> Result<Executor, String> {
        match name {
            "smol" => Ok(Executor::Smol),
            "tokio" => Ok(Executor::Tokio(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?,
            )),
            "async-std" => Ok(Executor::AsyncStd),
            other => Err(format!("unknown runtime {other} (smol, tokio, async-std)")),
        }
    }

    fn base(&self) -> SharedRuntime {
        match self {
            Executor::Smol => Arc::new(p2p_grpc::rt::SmolRuntime::global()),
            Executor::Tokio(rt) => {
                Arc::new(p2p_grpc::rt::TokioRuntime::from_handle(rt.handle().clone()))
            }
            Executor::AsyncStd => Arc::new(p2p_grpc::rt::AsyncStdRuntime::new()),
        }
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match self {
            Executor::Smol => p2p_grpc::rt::block_on(future),
            Executor::Tokio(rt) => rt.block_on(future),
            Executor::AsyncStd => async_std::task::block_on(future),
        }
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("soak: {err}");
            return ExitCode::from(2);
        }
    };
    let executor = match Executor::new(&options.runtime) {
        Ok(executor) => executor,
        Err(err) => {
            eprintln!("soak: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some((key, listen)) = &options.serve_child {
        executor.block_on(serve_child(executor.base(), key, listen));
        return ExitCode::SUCCESS;
    }
    let live = Arc::new(AtomicUsize::new(0));
    let counting = Arc::new(Counting {
        inner: executor.base(),
        live: live.clone(),
        spawned: AtomicU64::new(0),
        origins: (std::env::var("SOAK_DEBUG").as_deref() == Ok("spawns"))
            .then(|| Arc::new(Mutex::new(std::collections::HashMap::new()))),
    });
    let failures = executor.block_on(soak(&options, counting));
    if failures.is_empty() {
        println!("\nsoak: all checks passed");
        ExitCode::SUCCESS
    } else {
        println!("\nsoak: {} check(s) FAILED:", failures.len());
        for failure in &failures {
            println!("  - {failure}");
        }
        ExitCode::FAILURE
    }
}

async fn soak(options: &Options, counting: Arc<Counting>) -> Vec<String> {
    let runtime: SharedRuntime = counting.clone();
    let live = || counting.live.load(Ordering::SeqCst);
    let mut failures = Vec::new();
    let calls = options.calls;
    // A killed server's clients may meet it still down at their first
    // reconnection attempt and back off for a second: give each
    // incarnation a few thousand calls.
    let least = if options.kill { 5_000 } else { 1_000 };
    let restart_every = options
        .restart_every
        .unwrap_or_else(|| (calls / 20).max(least));
    // After warm-up: 5 % of the calls, but at least 10,000 calls (or half
    // of a short run), so that connections, restarts and allocator pools
    // have all been through a few rounds.
    let checkpoint_at = (calls / 20).max((calls / 2).min(10_000)).max(1);
    println!(
        "soak: {calls} calls, {} in flight, {} clients x 2 channels, {:?} transport, {} runtime, \
         server restart every {restart_every} calls, seed {}",
        options.concurrency, options.clients, options.net, options.runtime, options.seed
    );
    let tasks_at_start = live();
    let rss_at_start = vm_rss_kib();
    let heap_at_start = heap_kib();

    let mut setup = Setup {
        runtime: runtime.clone(),
        net: options.net,
        child: options.kill.then(|| options.runtime.clone()),
        keypair: Keypair::generate_ed25519(),
        listen: match options.net {
            Net::Memory => "/memory/0",
            Net::Tcp => "/ip4/127.0.0.1/tcp/0",
        }
        .parse()
        .unwrap(),
    };
    let server_peer: PeerId = setup.keypair.public().to_peer_id();
    let (server, server_addr) = setup.start().await;
    let mut server = Some(server);
    let mut client_nodes = Vec::new();
    let mut channels = Vec::new();
    for _ in 0..options.clients {
        let node = setup.node(None);
        node.add_address(server_peer, server_addr.clone());
        let grpc = GrpcStream::builder()
            .runtime(runtime.clone())
            .build(node.control())
            .expect("building a client GrpcStream");
        for _ in 0..2 {
            channels.push(Grpc::new(grpc.client(server_peer)));
        }
        client_nodes.push((node, grpc));
    }

    // Restarts: `restarts` counts completed ones; `restarting` is set
    // while the server is down. A call is "disturbed" when either changed
    // during it, or a restart ended less than a second before it started
    // (a channel may meet its broken connection at its first call).
    let restarts = Arc::new(AtomicU64::new(0));
    let restarting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let last_restart_end = Arc::new(Mutex::new(None::<Instant>));

    let (done_tx, mut done) = mpsc::unbounded::<Ended>();
    let mut rng = Rng(options.seed);
    let started = Instant::now();
    let mut issued = 0u64;
    let mut finished = 0u64;
    let mut outcomes: BTreeMap<(Kind, String), u64> = BTreeMap::new();
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    // Successful calls per server incarnation: clients must recover.
    let mut ok_by_epoch: BTreeMap<u64, u64> = BTreeMap::new();
    let mut unexpected: Vec<String> = Vec::new();
    let mut unexpected_count = 0u64;
    let mut checkpoint: Option<(u64, usize, Duration)> = None;
    let mut heap_at_checkpoint = 0;
    let mut restart_log = Vec::new();
    let mut graceful = true;

    let mut record = |ended: Ended,
                      finished: &mut u64,
                      unexpected_count: &mut u64,
                      unexpected: &mut Vec<String>| {
        *finished += 1;
        if !allowed(&ended.plan, &ended.outcome, ended.disturbed) {
            *unexpected_count += 1;
            if unexpected.len() < 20 {
                unexpected.push(format!(
                    "call {} {:?} -> {} {:?}{}",
                    ended.plan.id / 16,
                    ended.plan,
                    ended.outcome,
                    ended.message,
                    if ended.disturbed {
                        " during a restart"
                    } else {
                        ""
                    }
                ));
            }
        }
        if ended.outcome == Outcome::Ok {
            *ok_by_epoch.entry(ended.epoch).or_default() += 1;
        }
        *by_outcome.entry(ended.outcome.to_string()).or_default() += 1;
        *outcomes
            .entry((ended.plan.kind, ended.outcome.to_string()))
            .or_default() += 1;
    };

    // Progress lines: every 10 % of the calls.
    let progress_every = (calls / 10).max(1);
    let mut next_progress = progress_every;
    while finished < calls {
        // Issue calls up to the concurrency limit.
        while issued < calls && issued - finished < options.concurrency as u64 {
            if issued > 0
                && issued % restart_every == 0
                && restart_log.len() < (issued / restart_every) as usize
            {
                // Restart the server while the calls in flight go on.
                let began = Instant::now();
                restarting.store(true, Ordering::SeqCst);
                server
                    .take()
                    .unwrap()
                    .stop(graceful, Duration::from_millis(200))
                    .await;
                let (fresh, addr) = setup.start().await;
                assert_eq!(addr, server_addr, "the server came back elsewhere");
                server = Some(fresh);
                *last_restart_end.lock().unwrap() = Some(Instant::now());
                restarts.fetch_add(1, Ordering::SeqCst);
                restarting.store(false, Ordering::SeqCst);
                restart_log.push((
                    issued,
                    if options.kill {
                        "SIGKILL"
                    } else if graceful {
                        "graceful"
                    } else {
                        "abrupt"
                    },
                    began.elapsed(),
                ));
                graceful = !graceful;
            }
            let plan = Plan::random(issued * 16, &mut rng);
            let grpc = channels[(issued % channels.len() as u64) as usize].clone();
            let done_tx = done_tx.clone();
            let call_runtime = runtime.clone();
            let restarts = restarts.clone();
            let restarting = restarting.clone();
            let last_restart_end = last_restart_end.clone();
            runtime.spawn(Box::pin(async move {
                let epoch = restarts.load(Ordering::SeqCst);
                let was_down = restarting.load(Ordering::SeqCst);
                let recent = last_restart_end
                    .lock()
                    .unwrap()
                    .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
                let (outcome, message) = run_call(&grpc, &call_runtime, &plan).await;
                let disturbed = was_down
                    || recent
                    || restarting.load(Ordering::SeqCst)
                    || restarts.load(Ordering::SeqCst) != epoch;
                let _ = done_tx.unbounded_send(Ended {
                    plan,
                    outcome,
                    disturbed,
                    epoch: restarts.load(Ordering::SeqCst),
                    message,
                });
            }));
            issued += 1;
        }
        // Wait for one call to end (the per-call watchdog bounds this; the
        // outer one catches a stuck executor).
        let next = future::select(done.next(), runtime.sleep(WATCHDOG * 2)).await;
        match next {
            Either::Left((Some(ended), _)) => {
                record(ended, &mut finished, &mut unexpected_count, &mut unexpected);
                while let Ok(ended) = done.try_recv() {
                    record(ended, &mut finished, &mut unexpected_count, &mut unexpected);
                }
            }
            Either::Left((None, _)) => unreachable!("we hold a sender"),
            Either::Right(_) => {
                failures.push(format!(
                    "no call ended for {:?}: {} calls lost ({} issued, {} ended)",
                    WATCHDOG * 2,
                    issued - finished,
                    issued,
                    finished
                ));
                break;
            }
        }
        if checkpoint.is_none() && finished >= checkpoint_at {
            checkpoint = Some((vm_rss_kib(), live(), started.elapsed()));
            heap_at_checkpoint = heap_kib();
            println!(
                "checkpoint after {finished} calls ({:.1?}): RSS {}, heap {}, live tasks {}",
                started.elapsed(),
                mib(checkpoint.unwrap().0),
                mib(heap_at_checkpoint),
                checkpoint.unwrap().1
            );
        }
        if finished >= next_progress {
            next_progress += progress_every;
            println!(
                "  {finished} calls ended in {:.1?} ({:.0} calls/s), RSS {}, heap {}, live tasks {}, restarts {}",
                started.elapsed(),
                finished as f64 / started.elapsed().as_secs_f64(),
                mib(vm_rss_kib()),
                mib(heap_kib()),
                live(),
                restart_log.len()
            );
        }
    }
    let duration = started.elapsed();
    let rss_at_end = vm_rss_kib();
    let heap_at_end = heap_kib();
    let tasks_at_end_of_calls = live();

    // Everything down and dropped, then a quiescent period.
    for (node, grpc) in client_nodes.drain(..) {
        drop(grpc);
        node.shutdown().await;
    }
    drop(channels);
    let server = server.take().unwrap();
    if let Some(kib) = server.child_rss_kib() {
        println!(
            "server process (the last incarnation, {} calls old at most): RSS {}",
            restart_every,
            mib(kib)
        );
    }
    server.stop(true, Duration::from_secs(1)).await;
    drop(done_tx);
    drop(done);
    let quiet_since = Instant::now();
    let mut shown = Instant::now();
    while live() > tasks_at_start && quiet_since.elapsed() < Duration::from_secs(30) {
        runtime.sleep(Duration::from_millis(50)).await;
        if std::env::var_os("SOAK_DEBUG").is_some() && shown.elapsed() > Duration::from_millis(500)
        {
            shown = Instant::now();
            println!("  quiet {:.1?}: {} live", quiet_since.elapsed(), live());
            if let Some(origins) = &counting.origins {
                if quiet_since.elapsed() > Duration::from_secs(2) {
                    for trace in origins.lock().unwrap().values() {
                        println!("live task spawned at:\n{trace}");
                    }
                    break;
                }
            }
        }
    }
    let tasks_after = live();
    let heap_after = heap_kib();
    let quiescence = quiet_since.elapsed();

    // Report.
    println!("\n== soak results ==");
    println!(
        "calls: {finished} of {calls} ended in {duration:.1?} ({:.0} calls/s), {} in flight, {:?} transport, {} runtime",
        finished as f64 / duration.as_secs_f64(),
        options.concurrency,
        options.net,
        options.runtime
    );
    println!("outcomes:");
    for (outcome, count) in &by_outcome {
        println!("  {outcome:<36} {count:>9}");
    }
    let total: u64 = by_outcome.values().sum();
    println!("  {:<36} {total:>9}", "total");
    println!("outcomes by kind:");
    for ((kind, outcome), count) in &outcomes {
        println!("  {:<16} {outcome:<36} {count:>9}", format!("{kind:?}"));
    }
    println!(
        "successful calls per server incarnation: min {}, max {} ({} incarnations)",
        ok_by_epoch.values().min().unwrap_or(&0),
        ok_by_epoch.values().max().unwrap_or(&0),
        restart_log.len() + 1
    );
    println!(
        "server restarts: {} ({})",
        restart_log.len(),
        restart_log
            .iter()
            .map(|(at, how, took)| format!("{how} at {at} in {took:.0?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (rss_checkpoint, tasks_checkpoint, checkpoint_time) =
        checkpoint.unwrap_or((rss_at_end, tasks_at_end_of_calls, duration));
    let growth = (rss_at_end as f64 - rss_checkpoint as f64) / rss_checkpoint.max(1) as f64 * 100.0;
    println!(
        "RSS: {} at start, {} at the checkpoint ({checkpoint_at} calls, {checkpoint_time:.1?}), {} at the end: {growth:+.1} %",
        mib(rss_at_start),
        mib(rss_checkpoint),
        mib(rss_at_end)
    );
    println!(
        "heap (allocated, not freed): {} at start, {} at the checkpoint, {} at the end, {} after shutdown",
        mib(heap_at_start),
        mib(heap_at_checkpoint),
        mib(heap_at_end),
        mib(heap_after)
    );
    println!(
        "tasks: {tasks_at_start} live at start, {tasks_checkpoint} at the checkpoint, {tasks_at_end_of_calls} after the last call (nodes up), \
         {tasks_after} after shutdown and {quiescence:.1?} of quiet; {} spawned in all",
        counting.spawned.load(Ordering::Relaxed)
    );

    // Checks.
    if total != calls || finished != calls {
        failures.push(format!("{total} outcomes for {calls} calls"));
    }
    let hung = by_outcome
        .get(&Outcome::Hung.to_string())
        .copied()
        .unwrap_or(0);
    if hung > 0 {
        failures.push(format!("{hung} calls hung past the {WATCHDOG:?} watchdog"));
    }
    if unexpected_count > 0 {
        failures.push(format!(
            "{unexpected_count} calls ended in a way their plan rules out; first ones:\n      {}",
            unexpected.join("\n      ")
        ));
    }
    let epochs = restart_log.len() as u64 + 1;
    let without_ok: Vec<u64> = (0..epochs)
        .filter(|epoch| !ok_by_epoch.contains_key(epoch))
        .collect();
    if !without_ok.is_empty() {
        failures.push(format!(
            "no call succeeded against server incarnation(s) {without_ok:?}: clients did not recover"
        ));
    }
    if tasks_after != tasks_at_start {
        failures.push(format!(
            "{tasks_after} tasks still live after shutdown (started with {tasks_at_start})"
        ));
    }
    if calls < RSS_CHECK_MIN_CALLS {
        println!(
            "RSS check skipped: under {RSS_CHECK_MIN_CALLS} calls the process (about 9 MiB) \
             moves by more than 10 % with what is open at the moment it is read"
        );
    } else if growth >= 10.0 {
        failures.push(format!("RSS grew {growth:.1} % (limit 10 %)"));
    }
    failures
}
