//! Runners on the runtime p2p-grpc's features chose, servers of the echo
//! service, and channels to them over an in-memory pipe or TCP.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;

use crate::echo::*;
use futures::{SinkExt, StreamExt};
use p2p_grpc::client::Grpc;
use p2p_grpc::rt::SharedRuntime;
use p2p_grpc::server::{CallFuture, Server, ServerCall, Service};
use p2p_grpc::{BoxStream, Channel, Request, Response, Streaming};

pub fn runtime() -> SharedRuntime {
    p2p_grpc::rt::default_runtime().expect("a runtime feature is enabled")
}

/// Runs a test body on the enabled runtime, failing (not hanging) after 60 s.
pub fn run<F: Future<Output = ()>>(body: F) {
    p2p_grpc::rt::block_on(async {
        let limit = runtime().sleep(Duration::from_secs(60));
        match futures::future::select(std::pin::pin!(body), limit).await {
            futures::future::Either::Left(((), _)) => {}
            futures::future::Either::Right(_) => panic!("test timed out after 60 s"),
        }
    })
}

/// Gives the executor back once, ready to run again at once.
pub async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

/// Waits until `condition` holds, checking every few milliseconds (for
/// states no event announces; `run`'s limit ends a wait that never ends).
pub async fn until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        runtime().sleep(Duration::from_millis(5)).await;
    }
}

/// A server with the echo service and the channel of events it reports.
pub fn echo_server(
    configure: impl FnOnce(p2p_grpc::server::ServerBuilder) -> p2p_grpc::server::ServerBuilder,
) -> (Server, mpsc::UnboundedReceiver<Event>) {
    let (events, receiver) = mpsc::unbounded();
    let service = EchoService::new(runtime(), Some(events));
    let server = configure(Server::builder())
        .add_service(service)
        .build()
        .unwrap();
    (server, receiver)
}

/// Serves `server` on one end of an in-memory pipe and returns the other
/// end's channel.
pub async fn memory_channel(server: &Server) -> Channel {
    let (client_io, server_io) = p2p_grpc::io::duplex(256 * 1024);
    let server = server.clone();
    runtime().spawn(Box::pin(async move {
        let _ = server.serve_connection(server_io).await;
    }));
    Channel::connect(client_io).await.unwrap()
}

/// Serves `server` on a fresh TCP port of 127.0.0.1; returns the address.
pub fn tcp_server(server: &Server) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = server.clone();
    runtime().spawn(Box::pin(async move {
        let _ = server.serve_listener(listener).await;
    }));
    addr
}

pub async fn tcp_channel(server: &Server) -> Channel {
    Channel::connect_tcp(tcp_server(server)).await.unwrap()
}

/// The two transports every behaviour is checked over.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    Memory,
    Tcp,
}

pub const TRANSPORTS: [Transport; 2] = [Transport::Memory, Transport::Tcp];

pub async fn channel(server: &Server, transport: Transport) -> Channel {
    match transport {
        Transport::Memory => memory_channel(server).await,
        Transport::Tcp => tcp_channel(server).await,
    }
}

/// Waits for the next event of the service.
pub async fn next_event(events: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    events.next().await.expect("event channel open")
}

/// A stream of messages fed by the test, one at a time.
pub fn feeder() -> (mpsc::Sender<Msg>, mpsc::Receiver<Msg>) {
    mpsc::channel(16)
}

pub async fn feed(sender: &mut mpsc::Sender<Msg>, msg: Msg) {
    sender.send(msg).await.unwrap();
}

/// Opens a bidi `Chat` call with a first `ping` of count `first`, checks that
/// it comes back, and returns the sender of further requests and the replies.
pub async fn open_chat(grpc: &Grpc, first: u32) -> (mpsc::Sender<Msg>, Streaming<Msg>) {
    let (mut sender, receiver) = feeder();
    feed(&mut sender, Msg::count("ping", first)).await;
    let mut replies = grpc
        .streaming::<_, _, Msg>(Request::new(receiver), CHAT)
        .await
        .unwrap();
    assert_eq!(replies.message().await.unwrap().unwrap().count, first);
    (sender, replies)
}

pub fn shared<T>(value: T) -> Arc<T> {
    Arc::new(value)
}

/// Streams 64 KiB messages forever (`/test.Flood/Pour`), counting how many
/// it produced: what a reader that never reads is fed.
#[derive(Clone, Default)]
pub struct Flood {
    pub produced: Arc<std::sync::atomic::AtomicUsize>,
}

pub const FLOOD: &str = "/test.Flood/Pour";

impl Service for Flood {
    fn name(&self) -> &'static str {
        "test.Flood"
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        let produced = self.produced.clone();
        match method {
            "Pour" => call.server_streaming(move |_request: Request<Msg>| async move {
                let stream = futures::stream::repeat(()).map(move |()| {
                    produced.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(Msg {
                        payload: vec![1; 64 * 1024],
                        ..Msg::default()
                    })
                });
                let stream: BoxStream<Msg> = Box::pin(stream);
                Ok(Response::new(stream))
            }),
            _ => call.unimplemented(),
        }
    }
}
