//! Interceptors on servers and channels: the order of their hooks, what
//! they see of each call kind, the metadata and extensions they add, the
//! calls they refuse, and the end of calls that end early.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::channel::mpsc;
use futures::StreamExt;
use p2p_grpc::client::{self, Grpc};
use p2p_grpc::server::{self, CallInfo};
use p2p_grpc::{CallKind, CallStats, Code, MetadataMap, Request, Status};
use prost::Message;

/// What an interceptor saw when a call ended.
#[derive(Debug, Clone, PartialEq)]
struct Ended {
    name: &'static str,
    method: String,
    kind: CallKind,
    code: Code,
    stats: CallStats,
}

/// An interceptor that logs each hook as `"<name> <hook> <method>"` and
/// reports each end.
#[derive(Clone)]
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    ends: mpsc::UnboundedSender<Ended>,
    /// Server side: refuse calls whose metadata has `x-deny`.
    deny: bool,
}

impl Recorder {
    fn note(&self, hook: &str, method: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} {hook} {method}", self.name));
    }
}

impl server::Interceptor for Recorder {
    async fn on_start(&self, call: &mut server::CallStart) -> Result<(), Status> {
        let info = call.info();
        self.note("start", info.method());
        if let Some(token) = info.metadata().get("authorization") {
            let token = token.to_owned();
            self.note(&format!("token={token}"), info.method());
        }
        if self.deny && info.metadata().get("x-deny").is_some() {
            return Err(Status::permission_denied(format!("{} says no", self.name)));
        }
        Ok(())
    }

    fn on_response_headers(&self, call: &CallInfo<'_>, headers: &mut MetadataMap) {
        self.note("headers", call.method());
        headers
            .insert(&format!("x-{}-header", self.name), "1")
            .unwrap();
    }

    fn on_end(&self, call: &mut server::CallEnd<'_>) {
        let info = call.info();
        self.note("end", info.method());
        if let Some(trailers) = call.trailers_mut() {
            trailers
                .insert(&format!("x-{}-trailer", self.name), "1")
                .unwrap();
        }
        let _ = self.ends.unbounded_send(Ended {
            name: self.name,
            method: info.method().to_owned(),
            kind: info.kind(),
            code: call.status().code(),
            stats: call.stats(),
        });
    }
}

impl client::Interceptor for Recorder {
    async fn on_start(&self, call: &mut client::CallStart) -> Result<(), Status> {
        self.note("start", call.info().method());
        if self.deny {
            return Err(Status::unauthenticated(format!(
                "{} has no token",
                self.name
            )));
        }
        Ok(())
    }

    fn on_end(&self, call: &client::CallEnd<'_>) {
        self.note("end", call.info().method());
        let _ = self.ends.unbounded_send(Ended {
            name: self.name,
            method: call.info().method().to_owned(),
            kind: call.info().kind(),
            code: call.status().code(),
            stats: call.stats(),
        });
    }
}

struct Recorders {
    log: Arc<Mutex<Vec<String>>>,
    ends: mpsc::UnboundedReceiver<Ended>,
    sender: mpsc::UnboundedSender<Ended>,
}

impl Recorders {
    fn new() -> Self {
        let (sender, ends) = mpsc::unbounded();
        Recorders {
            log: Arc::default(),
            ends,
            sender,
        }
    }

    fn make(&self, name: &'static str, deny: bool) -> Recorder {
        Recorder {
            name,
            log: self.log.clone(),
            ends: self.sender.clone(),
            deny,
        }
    }

    fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    async fn next_end(&mut self) -> Ended {
        self.ends.next().await.expect("the recorders are alive")
    }
}

fn payload(text: &str) -> u64 {
    Msg::text(text).encoded_len() as u64
}

fn stats(sent: &[&str], received: &[&str]) -> CallStats {
    CallStats {
        messages_sent: sent.len() as u64,
        messages_received: received.len() as u64,
        bytes_sent: sent.iter().map(|t| payload(t)).sum(),
        bytes_received: received.iter().map(|t| payload(t)).sum(),
    }
}

fn lines(method: &str, hooks: &[&str]) -> Vec<String> {
    hooks
        .iter()
        .map(|hook| format!("{hook} {method}"))
        .collect()
}

#[test]
fn server_hooks_run_in_order_around_each_kind() {
    run(async {
        let mut recorders = Recorders::new();
        let (a, b) = (recorders.make("a", false), recorders.make("b", false));
        let (server, _events) = echo_server(|builder| builder.interceptor(a).interceptor(b));
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await);
            let order = [
                "a start",
                "b start",
                "b headers",
                "a headers",
                "b end",
                "a end",
            ];

            let response = grpc
                .unary::<_, Msg>(Request::new(Msg::text("one")), UNARY)
                .await
                .unwrap();
            assert_eq!(response.metadata().get("x-a-header"), Some("1"));
            assert_eq!(response.metadata().get("x-b-header"), Some("1"));
            assert_eq!(response.trailers().get("x-a-trailer"), Some("1"));
            assert_eq!(response.trailers().get("x-b-trailer"), Some("1"));
            assert_eq!(
                recorders.take_log(),
                lines("Unary", &order),
                "{transport:?}"
            );

            let requests = futures::stream::iter(["x", "yy", "zzz"].map(Msg::text));
            let response = grpc
                .client_streaming::<_, _, Msg>(Request::new(requests), COLLECT)
                .await
                .unwrap();
            assert_eq!(response.get_ref().text, "xyyzzz");
            assert_eq!(recorders.take_log(), lines("Collect", &order));

            let mut replies = grpc
                .server_streaming::<_, Msg>(Request::new(Msg::count("", 3)), EXPAND)
                .await
                .unwrap()
                .into_inner();
            let mut texts = Vec::new();
            while let Some(reply) = replies.message().await.unwrap() {
                texts.push(reply.text);
            }
            assert_eq!(texts, ["0", "1", "2"]);
            let trailers = replies.trailers().await.unwrap().unwrap();
            assert_eq!(trailers.get("x-b-trailer"), Some("1"));
            assert_eq!(recorders.take_log(), lines("Expand", &order));

            let requests = futures::stream::iter(["p", "q"].map(Msg::text));
            let mut replies = grpc
                .streaming::<_, _, Msg>(Request::new(requests), CHAT)
                .await
                .unwrap();
            let mut texts = Vec::new();
            while let Some(reply) = replies.message().await.unwrap() {
                texts.push(reply.text);
            }
            assert_eq!(texts, ["p", "q"]);
            assert_eq!(recorders.take_log(), lines("Chat", &order));

            // What each end saw: kind, status, and what the call moved.
            let mut ends = Vec::new();
            for _ in 0..8 {
                ends.push(recorders.next_end().await);
            }
            let expected = [
                ("Unary", CallKind::Unary, stats(&["one"], &["one"])),
                (
                    "Collect",
                    CallKind::ClientStreaming,
                    stats(&["xyyzzz"], &["x", "yy", "zzz"]),
                ),
                (
                    "Expand",
                    CallKind::ServerStreaming,
                    CallStats {
                        messages_sent: 3,
                        messages_received: 1,
                        bytes_sent: (0..3)
                            .map(|i| {
                                Msg {
                                    text: i.to_string(),
                                    count: i,
                                    ..Msg::default()
                                }
                                .encoded_len() as u64
                            })
                            .sum(),
                        bytes_received: Msg::count("", 3).encoded_len() as u64,
                    },
                ),
                (
                    "Chat",
                    CallKind::BidiStreaming,
                    stats(&["p", "q"], &["p", "q"]),
                ),
            ];
            for (i, (method, kind, stats)) in expected.into_iter().enumerate() {
                for (j, name) in ["b", "a"].into_iter().enumerate() {
                    assert_eq!(
                        ends[2 * i + j],
                        Ended {
                            name,
                            method: method.to_owned(),
                            kind,
                            code: Code::Ok,
                            stats,
                        }
                    );
                }
            }
        }
    });
}

#[test]
fn a_refusing_server_interceptor_stops_the_chain_and_the_handler() {
    run(async {
        let mut recorders = Recorders::new();
        let (a, b, c) = (
            recorders.make("a", false),
            recorders.make("b", true),
            recorders.make("c", false),
        );
        let (server, mut events) =
            echo_server(|builder| builder.interceptor(a).interceptor(b).interceptor(c));
        let grpc = Grpc::new(memory_channel(&server).await);
        let mut request = Request::new(Msg::count("never", 5000));
        request.metadata_mut().insert("x-deny", "1").unwrap();
        let status = grpc.unary::<_, Msg>(request, SLOW).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(status.message(), "b says no");
        // The status is the only answer; the ends that ran added trailers.
        assert_eq!(status.metadata().get("x-b-trailer"), Some("1"));
        assert_eq!(status.metadata().get("x-a-trailer"), Some("1"));
        assert_eq!(status.metadata().get("x-c-trailer"), None);
        assert_eq!(
            recorders.take_log(),
            ["a start Slow", "b start Slow", "b end Slow", "a end Slow"]
        );
        for name in ["b", "a"] {
            let end = recorders.next_end().await;
            assert_eq!((end.name, end.code), (name, Code::PermissionDenied));
        }

        // The other kinds are refused the same way.
        let denied = || {
            let mut metadata = MetadataMap::new();
            metadata.insert("x-deny", "1").unwrap();
            metadata
        };
        let mut request = Request::new(futures::stream::iter([Msg::text("c")]));
        *request.metadata_mut() = denied();
        let status = grpc
            .client_streaming::<_, _, Msg>(request, COLLECT)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        let mut request = Request::new(Msg::count("", 3));
        *request.metadata_mut() = denied();
        let status = grpc
            .server_streaming::<_, Msg>(request, EXPAND)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        let mut request = Request::new(futures::stream::iter([Msg::text("c")]));
        *request.metadata_mut() = denied();
        let mut replies = grpc.streaming::<_, _, Msg>(request, CHAT).await.unwrap();
        assert_eq!(
            replies.message().await.unwrap_err().code(),
            Code::PermissionDenied
        );
        for method in ["Collect", "Expand", "Chat"] {
            for name in ["b", "a"] {
                let end = recorders.next_end().await;
                assert_eq!(
                    (end.name, end.method.as_str(), end.code),
                    (name, method, Code::PermissionDenied)
                );
            }
        }
        assert!(!recorders
            .take_log()
            .iter()
            .any(|line| line.starts_with("c ")));

        // The handler never ran: the next call's start is the first event.
        let response = grpc
            .unary::<_, Msg>(Request::new(Msg::count("runs", 0)), SLOW)
            .await
            .unwrap();
        assert_eq!(response.get_ref().text, "runs");
        assert_eq!(next_event(&mut events).await, Event::Started("runs".into()));
    });
}

/// Adds `x-echo` to the request metadata and a [`PeerTag`] to its
/// extensions, after an asynchronous wait.
struct Enrich;

impl server::Interceptor for Enrich {
    async fn on_start(&self, call: &mut server::CallStart) -> Result<(), Status> {
        runtime().sleep(Duration::from_millis(1)).await;
        call.metadata_mut().insert("x-echo", "added").unwrap();
        call.extensions_mut().insert(PeerTag("tagged".into()));
        Ok(())
    }
}

#[test]
fn server_interceptors_hand_the_handler_metadata_and_extensions() {
    run(async {
        let (server, _events) = echo_server(|builder| builder.interceptor(Enrich));
        let grpc = Grpc::new(memory_channel(&server).await);
        let response = grpc
            .unary::<_, Msg>(Request::new(Msg::text("hi")), UNARY)
            .await
            .unwrap();
        assert_eq!(response.metadata().get("x-echo"), Some("added"));
        let response = grpc
            .unary::<_, Msg>(Request::new(Msg::text("")), PEER)
            .await
            .unwrap();
        assert_eq!(response.get_ref().text, "tagged");
    });
}

/// A call from a bare h2 client, with `grpc-timeout: timeout`, that waits
/// for the server's answer however long it takes: its status.
async fn call_with_timeout(
    server: &p2p_grpc::Server,
    path: &str,
    message: Msg,
    timeout: &str,
) -> Status {
    use tokio_util::compat::FuturesAsyncReadCompatExt;
    let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
    let served = server.clone();
    runtime().spawn(Box::pin(async move {
        let _ = served.serve_connection(server_io).await;
    }));
    let (send, connection) = h2::client::handshake(client_io.compat()).await.unwrap();
    runtime().spawn(Box::pin(async move {
        let _ = connection.await;
    }));
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", timeout)
        .body(())
        .unwrap();
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.encoded_len() as u32).to_be_bytes());
    body.extend_from_slice(&message.encode_to_vec());
    let mut send = send.ready().await.unwrap();
    let (response, mut stream) = send.send_request(request, false).unwrap();
    stream.send_data(body.into(), true).unwrap();
    let response = response.await.unwrap();
    match Status::from_header_map(response.headers()) {
        Some(status) => status,
        None => {
            let mut body = response.into_body();
            while body.data().await.is_some() {}
            Status::from_header_map(&body.trailers().await.unwrap().unwrap()).unwrap()
        }
    }
}

#[test]
fn server_ends_report_failures_deadlines_and_resets() {
    run(async {
        let mut recorders = Recorders::new();
        let a = recorders.make("a", false);
        let (server, mut events) = echo_server(|builder| builder.interceptor(a));
        let grpc = Grpc::new(memory_channel(&server).await);

        // A handler's error, as a trailers-only answer: no headers hook.
        let status = grpc
            .unary::<_, Msg>(Request::new(Msg::text("fail:5:gone")), UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.metadata().get("x-a-trailer"), Some("1"));
        assert_eq!(recorders.take_log(), ["a start Unary", "a end Unary"]);
        assert_eq!(recorders.next_end().await.code, Code::NotFound);

        // A stream that fails after two messages.
        let mut replies = grpc
            .server_streaming::<_, Msg>(Request::new(Msg::count("fail:2", 5)), EXPAND)
            .await
            .unwrap()
            .into_inner();
        assert_eq!(replies.message().await.unwrap().unwrap().text, "0");
        assert_eq!(replies.message().await.unwrap().unwrap().text, "1");
        assert_eq!(replies.message().await.unwrap_err().code(), Code::Aborted);
        let end = recorders.next_end().await;
        assert_eq!((end.code, end.stats.messages_sent), (Code::Aborted, 2));

        // The deadline passes while the handler waits. (A raw client, which
        // does not cancel at its own deadline, so that the server's comes
        // first.)
        let status = call_with_timeout(&server, SLOW, Msg::count("slow", 60_000), "50m").await;
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(recorders.next_end().await.code, Code::DeadlineExceeded);
        assert_eq!(next_event(&mut events).await, Event::Started("slow".into()));

        // The client resets a bidi call.
        recorders.take_log();
        let (sender, replies) = open_chat(&grpc, 1).await;
        assert_eq!(next_event(&mut events).await, Event::Dropped("slow".into()));
        assert_eq!(next_event(&mut events).await, Event::Started("chat".into()));
        // The response stream alone: with the request source dropped too,
        // the client's pump may end the requests (END_STREAM) first.
        drop(replies);
        let end = recorders.next_end().await;
        assert_eq!(
            (end.kind, end.code, end.stats.messages_sent),
            (CallKind::BidiStreaming, Code::Cancelled, 1)
        );
        drop(sender);
        assert_eq!(
            recorders.take_log(),
            ["a start Chat", "a headers Chat", "a end Chat"]
        );
    });
}

#[test]
fn authorize_is_an_interceptor_in_its_place_in_the_chain() {
    run(async {
        let mut recorders = Recorders::new();
        let (a, b) = (recorders.make("a", false), recorders.make("b", false));
        let (server, _events) = echo_server(|builder| {
            builder
                .interceptor(a)
                .authorize(|call: &CallInfo<'_>| match call.metadata().get("x-deny") {
                    Some(_) => Err(Status::permission_denied("not you")),
                    None => Ok(()),
                })
                .interceptor(b)
        });
        let grpc = Grpc::new(memory_channel(&server).await);
        let mut request = Request::new(Msg::text("x"));
        request.metadata_mut().insert("x-deny", "1").unwrap();
        let status = grpc.unary::<_, Msg>(request, UNARY).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(recorders.take_log(), ["a start Unary", "a end Unary"]);
        assert_eq!(recorders.next_end().await.code, Code::PermissionDenied);
        grpc.unary::<_, Msg>(Request::new(Msg::text("x")), UNARY)
            .await
            .unwrap();
        assert_eq!(
            recorders.take_log(),
            lines(
                "Unary",
                &[
                    "a start",
                    "b start",
                    "b headers",
                    "a headers",
                    "b end",
                    "a end"
                ]
            )
        );
    });
}

/// Adds a bearer token that it waits for: an asynchronous token source.
struct Token(futures::lock::Mutex<mpsc::UnboundedReceiver<String>>);

impl client::Interceptor for Token {
    async fn on_start(&self, call: &mut client::CallStart) -> Result<(), Status> {
        let token = self
            .0
            .lock()
            .await
            .next()
            .await
            .ok_or_else(|| Status::unauthenticated("no token"))?;
        call.metadata_mut()
            .insert("authorization", &format!("Bearer {token}"))
            .map_err(|err| Status::internal(err.to_string()))?;
        Ok(())
    }
}

#[test]
fn client_hooks_run_in_order_and_add_metadata_for_each_kind() {
    run(async {
        let mut on_server = Recorders::new();
        let server_side = on_server.make("s", false);
        let (server, _events) = echo_server(|builder| builder.interceptor(server_side));
        let mut on_client = Recorders::new();
        let (tokens, source) = mpsc::unbounded();
        let channel = memory_channel(&server)
            .await
            .with_interceptor(on_client.make("a", false))
            .with_interceptor(Token(futures::lock::Mutex::new(source)))
            .with_interceptor(on_client.make("b", false));
        let grpc = Grpc::new(channel.clone());
        for (i, method) in ["Unary", "Collect", "Expand", "Chat"]
            .into_iter()
            .enumerate()
        {
            tokens.unbounded_send(format!("t{i}")).unwrap();
            let (kind, stats) = match method {
                "Unary" => {
                    grpc.unary::<_, Msg>(Request::new(Msg::text("u")), UNARY)
                        .await
                        .unwrap();
                    (CallKind::Unary, stats(&["u"], &["u"]))
                }
                "Collect" => {
                    let requests = futures::stream::iter(["c", "d"].map(Msg::text));
                    grpc.client_streaming::<_, _, Msg>(Request::new(requests), COLLECT)
                        .await
                        .unwrap();
                    (CallKind::ClientStreaming, stats(&["c", "d"], &["cd"]))
                }
                "Expand" => {
                    let mut replies = grpc
                        .server_streaming::<_, Msg>(Request::new(Msg::count("", 1)), EXPAND)
                        .await
                        .unwrap()
                        .into_inner();
                    while replies.message().await.unwrap().is_some() {}
                    let reply = Msg {
                        text: "0".into(),
                        ..Msg::default()
                    };
                    (
                        CallKind::ServerStreaming,
                        CallStats {
                            messages_sent: 1,
                            messages_received: 1,
                            bytes_sent: Msg::count("", 1).encoded_len() as u64,
                            bytes_received: reply.encoded_len() as u64,
                        },
                    )
                }
                _ => {
                    let requests = futures::stream::iter(["e"].map(Msg::text));
                    let mut replies = grpc
                        .streaming::<_, _, Msg>(Request::new(requests), CHAT)
                        .await
                        .unwrap();
                    while replies.message().await.unwrap().is_some() {}
                    (CallKind::BidiStreaming, stats(&["e"], &["e"]))
                }
            };
            assert_eq!(
                on_client.take_log(),
                lines(method, &["a start", "b start", "b end", "a end"]),
                "{method}"
            );
            for name in ["b", "a"] {
                let end = on_client.next_end().await;
                assert_eq!(
                    end,
                    Ended {
                        name,
                        method: method.to_owned(),
                        kind,
                        code: Code::Ok,
                        stats,
                    }
                );
            }
            // The server saw the token the client fetched for this call.
            assert_eq!(on_server.next_end().await.method, method);
            let seen = on_server.take_log();
            assert_eq!(seen[1], format!("s token=Bearer t{i} {method}"));
        }
        // The channel the interceptors were added to is not changed.
        let plain = Grpc::new(channel.clone());
        drop(plain);
    });
}

#[test]
fn a_refusing_client_interceptor_fails_the_call_before_it_is_sent() {
    run(async {
        let mut on_server = Recorders::new();
        let server_side = on_server.make("s", false);
        let (server, _events) = echo_server(|builder| builder.interceptor(server_side));
        let mut on_client = Recorders::new();
        let bare = memory_channel(&server).await;
        let channel = bare
            .with_interceptor(on_client.make("a", false))
            .with_interceptor(on_client.make("b", true))
            .with_interceptor(on_client.make("c", false));
        let grpc = Grpc::new(channel);
        let status = grpc
            .unary::<_, Msg>(Request::new(Msg::text("x")), UNARY)
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unauthenticated, "b has no token")
        );
        let requests = futures::stream::iter(["e"].map(Msg::text));
        let status = grpc
            .streaming::<_, _, Msg>(Request::new(requests), CHAT)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(
            on_client.take_log(),
            [
                "a start Unary",
                "b start Unary",
                "b end Unary",
                "a end Unary",
                "a start Chat",
                "b start Chat",
                "b end Chat",
                "a end Chat"
            ]
        );
        for _ in 0..4 {
            assert_eq!(on_client.next_end().await.code, Code::Unauthenticated);
        }
        // Nothing reached the server; the channel without them still works.
        Grpc::new(bare)
            .unary::<_, Msg>(Request::new(Msg::text("x")), UNARY)
            .await
            .unwrap();
        assert_eq!(on_server.next_end().await.method, "Unary");
        assert_eq!(on_server.take_log()[0], "s start Unary");
    });
}

#[test]
fn client_ends_report_errors_deadlines_and_drops() {
    run(async {
        let (server, mut events) = echo_server(|builder| builder);
        let mut on_client = Recorders::new();
        let grpc = Grpc::new(
            memory_channel(&server)
                .await
                .with_interceptor(on_client.make("a", false)),
        );

        let mut replies = grpc
            .server_streaming::<_, Msg>(Request::new(Msg::count("fail:1", 3)), EXPAND)
            .await
            .unwrap()
            .into_inner();
        assert!(replies.message().await.unwrap().is_some());
        assert_eq!(replies.message().await.unwrap_err().code(), Code::Aborted);
        let end = on_client.next_end().await;
        assert_eq!((end.code, end.stats.messages_received), (Code::Aborted, 1));

        let mut request = Request::new(Msg::count("slow", 60_000));
        request.set_timeout(Duration::from_millis(50));
        let status = grpc.unary::<_, Msg>(request, SLOW).await.unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(on_client.next_end().await.code, Code::DeadlineExceeded);
        assert_eq!(next_event(&mut events).await, Event::Started("slow".into()));

        // The caller drops a bidi call's stream, and a unary call's future.
        let (sender, replies) = open_chat(&grpc, 1).await;
        drop((sender, replies));
        let end = on_client.next_end().await;
        assert_eq!((end.method.as_str(), end.code), ("Chat", Code::Cancelled));
        {
            let call = grpc.unary::<_, Msg>(Request::new(Msg::count("dropped", 60_000)), SLOW);
            let mut call = std::pin::pin!(call);
            futures::future::poll_immediate(call.as_mut()).await;
        }
        let end = on_client.next_end().await;
        assert_eq!((end.method.as_str(), end.code), ("Slow", Code::Cancelled));
    });
}
