//! Shared test fixtures: a hand-written echo service covering the four call
//! kinds, connection helpers over an in-memory pipe and TCP, and a runner
//! that uses whichever runtime feature is enabled.
#![allow(dead_code)]

#[cfg(feature = "libp2p")]
pub mod libp2p;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use p2p_grpc::client::Grpc;
use p2p_grpc::rt::SharedRuntime;
use p2p_grpc::server::{CallFuture, Server, ServerCall, Service};
use p2p_grpc::{BoxStream, Channel, Code, Request, Response, Status, Streaming};

/// The one message type of the echo service.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Msg {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
    #[prost(uint32, tag = "3")]
    pub count: u32,
}

impl Msg {
    pub fn text(text: impl Into<String>) -> Self {
        Msg {
            text: text.into(),
            ..Msg::default()
        }
    }

    pub fn count(text: impl Into<String>, count: u32) -> Self {
        Msg {
            text: text.into(),
            count,
            ..Msg::default()
        }
    }
}

pub const UNARY: &str = "/test.Echo/Unary";
pub const SLOW: &str = "/test.Echo/Slow";
pub const COLLECT: &str = "/test.Echo/Collect";
pub const EXPAND: &str = "/test.Echo/Expand";
pub const CHAT: &str = "/test.Echo/Chat";
pub const PEER: &str = "/test.Echo/Peer";
pub const MISSING: &str = "/test.Echo/Missing";

/// What the service reports about its handlers, so that tests can wait on
/// them instead of sleeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started(String),
    Dropped(String),
    Finished(String),
}

/// Sends `Dropped(name)` when the handler future is dropped before it
/// finished.
struct DropGuard {
    name: String,
    events: mpsc::UnboundedSender<Event>,
    finished: bool,
}

impl DropGuard {
    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        let event = if self.finished {
            Event::Finished(self.name.clone())
        } else {
            Event::Dropped(self.name.clone())
        };
        let _ = self.events.unbounded_send(event);
    }
}

/// The echo service:
/// - `Unary`: echoes the message; `x-echo` request metadata comes back in
///   the response headers and `x-trailer-bin` in the trailers; a text of the
///   form `fail:<code>:<message>` fails with that status.
/// - `Slow`: waits `count` milliseconds, reporting start and drop.
/// - `Collect` (client streaming): concatenates texts, sums counts.
/// - `Expand` (server streaming): `count` messages; `fail:<n>` fails after n.
/// - `Chat` (bidi): echoes each message; reports start and drop.
/// - `Peer`: returns the `PeerTag` extension the transport attached.
#[derive(Clone)]
pub struct EchoService {
    pub runtime: SharedRuntime,
    pub events: mpsc::UnboundedSender<Event>,
}

/// A value a transport may attach to requests (tests check it arrives).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerTag(pub String);

pub fn parse_failure(text: &str) -> Option<Status> {
    let rest = text.strip_prefix("fail:")?;
    let (code, message) = rest.split_once(':')?;
    Some(Status::new(Code::from_i32(code.parse().ok()?), message))
}

impl Service for EchoService {
    fn name(&self) -> &'static str {
        "test.Echo"
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        let this = self.clone();
        match method {
            "Unary" => call.unary(move |request: Request<Msg>| async move {
                if let Some(status) = parse_failure(&request.get_ref().text) {
                    return Err(status);
                }
                let echo = request.metadata().get("x-echo").map(str::to_owned);
                let timeout = request.timeout();
                let trailer = request.metadata().get_bin("x-trailer-bin");
                let mut response = Response::new(request.into_inner());
                if let Some(echo) = echo {
                    response.metadata_mut().insert("x-echo", &echo).unwrap();
                }
                if let Some(timeout) = timeout {
                    let millis = timeout.as_millis().to_string();
                    response
                        .metadata_mut()
                        .insert("x-timeout-ms", &millis)
                        .unwrap();
                }
                if let Some(Ok(trailer)) = trailer {
                    response
                        .trailers_mut()
                        .insert_bin("x-trailer-bin", trailer)
                        .unwrap();
                }
                Ok(response)
            }),
            "Slow" => call.unary(move |request: Request<Msg>| async move {
                let name = request.get_ref().text.clone();
                let mut guard = DropGuard {
                    name: name.clone(),
                    events: this.events.clone(),
                    finished: false,
                };
                let _ = this.events.unbounded_send(Event::Started(name));
                this.runtime
                    .sleep(Duration::from_millis(request.get_ref().count.into()))
                    .await;
                guard.finished = true;
                Ok(Response::new(request.into_inner()))
            }),
            "Collect" => {
                call.client_streaming(move |request: Request<Streaming<Msg>>| async move {
                    let mut messages = request.into_inner();
                    let mut total = Msg::default();
                    let mut compressed = Vec::new();
                    while let Some(message) = messages.message().await? {
                        compressed.push(messages.last_message_compressed().to_string());
                        if let Some(status) = parse_failure(&message.text) {
                            return Err(status);
                        }
                        total.text.push_str(&message.text);
                        total.count += message.count;
                        total.payload.extend_from_slice(&message.payload);
                    }
                    // Which requests arrived compressed, for the compression tests.
                    let mut response = Response::new(total);
                    response
                        .metadata_mut()
                        .insert("x-compressed", &compressed.join(","))
                        .unwrap();
                    Ok(response)
                })
            }
            "Expand" => call.server_streaming(move |request: Request<Msg>| async move {
                let request = request.into_inner();
                let fail_after: Option<u32> = request
                    .text
                    .strip_prefix("fail:")
                    .and_then(|n| n.parse().ok());
                let payload = request.payload.clone();
                let count = request.count;
                let stream = futures::stream::iter(0..count).map(move |i| {
                    if Some(i) == fail_after {
                        return Err(Status::aborted(format!("failed after {i}")));
                    }
                    Ok(Msg {
                        text: i.to_string(),
                        payload: payload.clone(),
                        count: i,
                    })
                });
                let stream: BoxStream<Msg> = Box::pin(stream);
                Ok(Response::new(stream))
            }),
            "Chat" => call.streaming(move |request: Request<Streaming<Msg>>| async move {
                let events = this.events.clone();
                let _ = events.unbounded_send(Event::Started("chat".into()));
                let guard = DropGuard {
                    name: "chat".into(),
                    events,
                    finished: false,
                };
                let messages = request.into_inner();
                let stream = futures::stream::unfold(
                    (messages, guard),
                    |(mut messages, guard)| async move {
                        match messages.message().await {
                            Ok(Some(message)) => match parse_failure(&message.text) {
                                Some(status) => Some((Err(status), (messages, guard))),
                                None => Some((Ok(message), (messages, guard))),
                            },
                            Ok(None) => {
                                guard.finish();
                                None
                            }
                            Err(status) => Some((Err(status), (messages, guard))),
                        }
                    },
                );
                let stream: BoxStream<Msg> = Box::pin(stream);
                Ok(Response::new(stream))
            }),
            "Peer" => call.unary(move |request: Request<Msg>| async move {
                let tag = request.extensions().get::<PeerTag>().cloned();
                Ok(Response::new(Msg::text(
                    tag.map(|tag| tag.0).unwrap_or_default(),
                )))
            }),
            _ => call.unimplemented(),
        }
    }
}

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
    let service = EchoService {
        runtime: runtime(),
        events,
    };
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
