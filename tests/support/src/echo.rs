//! The echo service every test suite of the project calls: the four call
//! kinds, metadata, trailers, failures on request, and events that tell a
//! test when a handler started, finished or was dropped.

use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use p2p_grpc::rt::SharedRuntime;
use p2p_grpc::server::{CallFuture, ServerCall, Service};
use p2p_grpc::{BoxStream, Code, Request, Response, Status, Streaming};

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
    events: Option<mpsc::UnboundedSender<Event>>,
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
        if let Some(events) = &self.events {
            let _ = events.unbounded_send(event);
        }
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
/// - `Peer`: returns the `PeerTag` extension the transport attached (over
///   libp2p, the calling peer's id when there is none).
#[derive(Clone)]
pub struct EchoService {
    pub runtime: SharedRuntime,
    /// Where handler events go (`None`: nowhere).
    pub events: Option<mpsc::UnboundedSender<Event>>,
    /// Most messages `Expand` sends for one request (the fuzz targets cap
    /// it, so that a fuzzed count of four billion stays a short run).
    pub max_expand: u32,
}

impl EchoService {
    /// The service, reporting its handlers' events to `events`.
    pub fn new(runtime: SharedRuntime, events: Option<mpsc::UnboundedSender<Event>>) -> Self {
        EchoService {
            runtime,
            events,
            max_expand: u32::MAX,
        }
    }

    fn report(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.unbounded_send(event);
        }
    }
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
                this.report(Event::Started(name));
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
                        total.count = total.count.wrapping_add(message.count);
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
                let count = request.count.min(this.max_expand);
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
                this.report(Event::Started("chat".into()));
                let guard = DropGuard {
                    name: "chat".into(),
                    events: this.events.clone(),
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
                #[cfg(feature = "libp2p")]
                let tag = tag.or_else(|| request.peer_id().map(|peer| PeerTag(peer.to_string())));
                Ok(Response::new(Msg::text(
                    tag.map(|tag| tag.0).unwrap_or_default(),
                )))
            }),
            _ => call.unimplemented(),
        }
    }
}
