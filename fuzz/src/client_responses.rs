//! Target `client_responses`: the client fed arbitrary server responses.
//!
//! A fake server completes the HTTP/2 handshake with `h2::server` and
//! answers a unary call, then a server-streaming call, each with a fuzzed
//! sequence of [`Action`]s: response headers (any status, content-type,
//! `grpc-encoding`, `grpc-status`, metadata), DATA (raw bytes or encoded
//! messages, compressed or not), trailers, a stream reset, a GOAWAY, a
//! dropped connection, virtual sleeps. Going through h2 keeps the bytes valid
//! HTTP/2 while the gRPC layer sees arbitrary content. A second, raw mode
//! writes fuzz bytes as the server side of the pipe.
//!
//! Checked: `Grpc::unary` / `server_streaming` return `Ok` or a `Status`,
//! never panic or hang (on the [`Sim`] executor every task must end); an
//! error status never carries code `OK`; a unary call succeeds only if the
//! server sent `grpc-status: 0`.
//!
//! Input layout (see [`Input`]):
//! - `u8` flags ([`FLAG_RAW`] ...); `u16` deadline in virtual milliseconds
//!   (used when a deadline flag is set);
//! - raw mode: the rest, written by the server as is;
//! - structured mode: two [`Spec`]s (the unary call, the streaming call).

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::channel::mpsc;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use p2p_grpc::client::{ChannelBuilder, Grpc};
use p2p_grpc::rt::{Runtime, SharedRuntime};
use p2p_grpc::wire::framing::encode_message;
use p2p_grpc::{Code, CompressionEncoding, Request, Status};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use crate::echo::{Msg, EXPAND, UNARY};
use crate::input::{Input, Output};
use crate::sim::Sim;

/// Raw mode: the server side writes the input bytes.
pub const FLAG_RAW: u8 = 1;
/// The client advertises gzip (`grpc-accept-encoding`).
pub const FLAG_ACCEPT_GZIP: u8 = 2;
/// The client accepts responses of at most 64 bytes.
pub const FLAG_SMALL_LIMIT: u8 = 4;
/// The client compresses its requests.
pub const FLAG_SEND_GZIP: u8 = 8;
/// The unary call has a deadline.
pub const FLAG_UNARY_DEADLINE: u8 = 16;
/// The streaming call has a deadline.
pub const FLAG_STREAM_DEADLINE: u8 = 32;
/// Raw mode: make the server-streaming call instead of the unary one.
pub const FLAG_RAW_STREAMING: u8 = 64;

/// One step of the fake server's answer.
#[derive(Debug, Clone)]
pub enum Action {
    /// 0: response headers; `template` bit 0: `content-type:
    /// application/grpc`, bit 1: `grpc-encoding: gzip`, bit 2: `grpc-status`
    /// = `code` (a trailers-only response when `end_stream`). `status` 0
    /// means 200, else 200 + status % 800.
    Headers {
        status: u16,
        end_stream: bool,
        template: u8,
        code: u8,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// 1: a DATA frame of raw bytes.
    Data { end_stream: bool, bytes: Vec<u8> },
    /// 2: a DATA frame holding one echo `Msg` (gzip-compressed if `gzip`).
    Message {
        end_stream: bool,
        gzip: bool,
        text: Vec<u8>,
        count: u32,
    },
    /// 3: trailers; `code` 255: no `grpc-status` added, else `grpc-status`
    /// = `code` in decimal (so 17 to 254 are invalid codes).
    Trailers {
        code: u8,
        message: Vec<u8>,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// 4: RST_STREAM.
    Reset { reason: u32 },
    /// 5: GOAWAY on the connection.
    GoAway { reason: u32 },
    /// 6: the server drops the connection.
    Drop,
    /// 7: the server waits `millis` of virtual time.
    Sleep { millis: u16 },
}

/// How the fake server answers one call.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Read the whole request before answering.
    pub read_request: bool,
    pub actions: Vec<Action>,
}

fn read_fields(input: &mut Input<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let count = input.u8() % 8;
    (0..count)
        .map(|_| (input.bytes8().to_vec(), input.bytes8().to_vec()))
        .collect()
}

fn write_fields(out: &mut Output, fields: &[(Vec<u8>, Vec<u8>)]) {
    out.u8(fields.len() as u8);
    for (name, value) in fields {
        out.bytes8(name).bytes8(value);
    }
}

impl Action {
    fn read(input: &mut Input<'_>) -> Action {
        match input.u8() % 8 {
            0 => Action::Headers {
                status: input.u16(),
                end_stream: input.bool(),
                template: input.u8(),
                code: input.u8(),
                fields: read_fields(input),
            },
            1 => Action::Data {
                end_stream: input.bool(),
                bytes: input.bytes16().to_vec(),
            },
            2 => Action::Message {
                end_stream: input.bool(),
                gzip: input.bool(),
                text: input.bytes8().to_vec(),
                count: input.u32(),
            },
            3 => Action::Trailers {
                code: input.u8(),
                message: input.bytes8().to_vec(),
                fields: read_fields(input),
            },
            4 => Action::Reset {
                reason: input.u32(),
            },
            5 => Action::GoAway {
                reason: input.u32(),
            },
            6 => Action::Drop,
            _ => Action::Sleep {
                millis: input.u16(),
            },
        }
    }

    fn write(&self, out: &mut Output) {
        match self {
            Action::Headers {
                status,
                end_stream,
                template,
                code,
                fields,
            } => {
                out.u8(0)
                    .u16(*status)
                    .bool(*end_stream)
                    .u8(*template)
                    .u8(*code);
                write_fields(out, fields);
            }
            Action::Data { end_stream, bytes } => {
                out.u8(1).bool(*end_stream).bytes16(bytes);
            }
            Action::Message {
                end_stream,
                gzip,
                text,
                count,
            } => {
                out.u8(2)
                    .bool(*end_stream)
                    .bool(*gzip)
                    .bytes8(text)
                    .u32(*count);
            }
            Action::Trailers {
                code,
                message,
                fields,
            } => {
                out.u8(3).u8(*code).bytes8(message);
                write_fields(out, fields);
            }
            Action::Reset { reason } => {
                out.u8(4).u32(*reason);
            }
            Action::GoAway { reason } => {
                out.u8(5).u32(*reason);
            }
            Action::Drop => {
                out.u8(6);
            }
            Action::Sleep { millis } => {
                out.u8(7).u16(*millis);
            }
        }
    }

    /// Whether this action sends `grpc-status: 0` (in headers or trailers).
    fn sends_ok_status(&self) -> bool {
        let (code, fields, template_has_code) = match self {
            Action::Headers {
                template,
                code,
                fields,
                ..
            } => (*code, fields, template & 4 != 0),
            Action::Trailers { code, fields, .. } => (*code, fields, *code != 255),
            _ => return false,
        };
        (template_has_code && Code::from_bytes(code.to_string().as_bytes()) == Code::Ok)
            || fields.iter().any(|(name, value)| {
                name.eq_ignore_ascii_case(b"grpc-status") && Code::from_bytes(value) == Code::Ok
            })
    }
}

impl Spec {
    fn read(input: &mut Input<'_>) -> Spec {
        let read_request = input.bool();
        let count = input.u8() % 16;
        let actions = (0..count).map(|_| Action::read(input)).collect();
        Spec {
            read_request,
            actions,
        }
    }

    fn write(&self, out: &mut Output) {
        out.bool(self.read_request).u8(self.actions.len() as u8);
        for action in &self.actions {
            action.write(out);
        }
    }
}

/// A whole input.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub flags: u8,
    pub deadline_ms: u16,
    pub unary: Spec,
    pub streaming: Spec,
    pub raw: Vec<u8>,
}

impl Scenario {
    pub fn read(data: &[u8]) -> Scenario {
        let mut input = Input::new(data);
        let flags = input.u8();
        let deadline_ms = input.u16();
        if flags & FLAG_RAW != 0 {
            return Scenario {
                flags,
                deadline_ms,
                raw: input.rest().to_vec(),
                ..Scenario::default()
            };
        }
        let unary = Spec::read(&mut input);
        let streaming = Spec::read(&mut input);
        Scenario {
            flags,
            deadline_ms,
            unary,
            streaming,
            raw: Vec::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Output::new();
        out.u8(self.flags).u16(self.deadline_ms);
        if self.flags & FLAG_RAW != 0 {
            out.raw(&self.raw);
        } else {
            self.unary.write(&mut out);
            self.streaming.write(&mut out);
        }
        out.finish()
    }
}

fn header_map(fields: &[(Vec<u8>, Vec<u8>)], map: &mut HeaderMap) {
    for (name, value) in fields {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            map.append(name, value);
        }
    }
}

enum ConnCommand {
    GoAway(h2::Reason),
    Drop,
}

/// Answers one call as `spec` says. Errors from h2 (sending what HTTP/2
/// forbids, a stream already closed) are ignored: the next action goes on.
async fn respond(
    spec: Spec,
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    commands: mpsc::UnboundedSender<ConnCommand>,
    runtime: SharedRuntime,
) {
    let mut body = request.into_body();
    if spec.read_request {
        while let Some(chunk) = body.data().await {
            match chunk {
                Ok(chunk) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
                Err(_) => break,
            }
        }
    }
    let mut send: Option<h2::SendStream<Bytes>> = None;
    for action in spec.actions {
        match action {
            Action::Headers {
                status,
                end_stream,
                template,
                code,
                fields,
            } => {
                let mut response = http::Response::new(());
                *response.status_mut() = match status {
                    0 => StatusCode::OK,
                    s => StatusCode::from_u16(200 + s % 800).unwrap_or(StatusCode::OK),
                };
                let map = response.headers_mut();
                if template & 1 != 0 {
                    map.insert("content-type", HeaderValue::from_static("application/grpc"));
                }
                if template & 2 != 0 {
                    map.insert("grpc-encoding", HeaderValue::from_static("gzip"));
                }
                if template & 4 != 0 {
                    map.insert("grpc-status", HeaderValue::from(u16::from(code)));
                }
                header_map(&fields, map);
                if let Ok(stream) = respond.send_response(response, end_stream) {
                    send = Some(stream);
                }
            }
            Action::Data { end_stream, bytes } => {
                if let Some(send) = send.as_mut() {
                    let _ = send.send_data(Bytes::from(bytes), end_stream);
                }
            }
            Action::Message {
                end_stream,
                gzip,
                text,
                count,
            } => {
                if let Some(send) = send.as_mut() {
                    let msg = Msg {
                        text: String::from_utf8_lossy(&text).into_owned(),
                        count,
                        payload: Vec::new(),
                    };
                    let mut buf = BytesMut::new();
                    let encoding = gzip.then_some(CompressionEncoding::Gzip);
                    encode_message(&msg, encoding, usize::MAX, &mut buf).unwrap();
                    let _ = send.send_data(buf.freeze(), end_stream);
                }
            }
            Action::Trailers {
                code,
                message,
                fields,
            } => {
                if let Some(send) = send.as_mut() {
                    let mut map = HeaderMap::new();
                    if code != 255 {
                        map.insert("grpc-status", HeaderValue::from(u16::from(code)));
                    }
                    if let Ok(message) = HeaderValue::from_bytes(&message) {
                        if !message.is_empty() {
                            map.insert("grpc-message", message);
                        }
                    }
                    header_map(&fields, &mut map);
                    let _ = send.send_trailers(map);
                }
            }
            Action::Reset { reason } => match send.as_mut() {
                Some(send) => send.send_reset(reason.into()),
                None => respond.send_reset(reason.into()),
            },
            Action::GoAway { reason } => {
                let _ = commands.unbounded_send(ConnCommand::GoAway(reason.into()));
            }
            Action::Drop => {
                let _ = commands.unbounded_send(ConnCommand::Drop);
            }
            Action::Sleep { millis } => {
                runtime.sleep(Duration::from_millis(millis.into())).await;
            }
        }
    }
    // Dropping the handles of a stream that was not ended resets it.
}

/// The h2 side: accepts calls and answers the first with `unary`, the
/// second with `streaming`, any later one with a reset.
async fn fake_server(io: p2p_grpc::io::Duplex, specs: [Spec; 2], runtime: SharedRuntime) {
    let Ok(mut connection) = h2::server::handshake(io.compat()).await else {
        return;
    };
    let (commands, mut received) = mpsc::unbounded();
    let mut specs = specs.into_iter();
    loop {
        #[allow(clippy::large_enum_variant)]
        enum Next {
            Call(
                http::Request<h2::RecvStream>,
                h2::server::SendResponse<Bytes>,
            ),
            Command(ConnCommand),
            End,
        }
        let next = poll_fn(|cx| {
            if let Poll::Ready(Some(command)) = received.poll_next_unpin(cx) {
                return Poll::Ready(Next::Command(command));
            }
            match connection.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    Poll::Ready(Next::Call(request, respond))
                }
                Poll::Ready(_) => Poll::Ready(Next::End),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match next {
            Next::Call(request, respond_to) => {
                let spec = specs.next().unwrap_or(Spec {
                    read_request: false,
                    actions: vec![Action::Reset { reason: 8 }],
                });
                runtime.spawn(Box::pin(respond(
                    spec,
                    request,
                    respond_to,
                    commands.clone(),
                    runtime.clone(),
                )));
            }
            Next::Command(ConnCommand::GoAway(reason)) => connection.abrupt_shutdown(reason),
            Next::Command(ConnCommand::Drop) | Next::End => return,
        }
    }
}

/// Whether `bytes` (what the client wrote) hold a HEADERS frame after the
/// connection preface.
fn saw_request_headers(bytes: &[u8]) -> bool {
    let mut pos = crate::frames::PREFACE.len();
    while pos + 9 <= bytes.len() {
        if bytes[pos + 3] == crate::frames::HEADERS {
            return true;
        }
        let len = u32::from_be_bytes([0, bytes[pos], bytes[pos + 1], bytes[pos + 2]]) as usize;
        pos += 9 + len;
    }
    false
}

/// The raw side: waits for the client's request HEADERS (h2 rejects a
/// response on a stream it has not opened yet), writes the bytes, closes,
/// and reads until the client is gone.
async fn raw_server(io: p2p_grpc::io::Duplex, bytes: Vec<u8>) {
    let (mut reader, mut writer) = io.split();
    let (request_seen, seen) = futures::channel::oneshot::channel::<()>();
    let write = async {
        let _ = seen.await;
        let _ = writer.write_all(&bytes).await;
        let _ = writer.close().await;
    };
    let read = async {
        let mut request_seen = Some(request_seen);
        let mut received = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if request_seen.is_some() {
                received.extend_from_slice(&buf[..n]);
                if saw_request_headers(&received) {
                    let _ = request_seen.take().map(|s| s.send(()));
                }
            }
        }
        // At EOF without a request, dropping the sender lets the write go.
    };
    futures::join!(write, read);
}

/// What the client saw (for tests).
#[derive(Debug, Default)]
pub struct Outcome {
    pub unary: Option<Result<Msg, (Code, String)>>,
    pub streamed: Vec<Msg>,
    pub stream_end: Option<Result<(), (Code, String)>>,
}

fn err(status: Status) -> (Code, String) {
    (status.code(), status.message().to_owned())
}

fn check_status(status: &Status) {
    assert_ne!(status.code(), Code::Ok, "an error with code OK: {status:?}");
    let _ = (status.to_string(), format!("{status:?}"));
}

pub fn execute(scenario: &Scenario) -> Outcome {
    let sim = Sim::new();
    let runtime = sim.runtime();
    let (client_io, server_io) = p2p_grpc::io::duplex(1 << 20);
    let flags = scenario.flags;
    let raw = flags & FLAG_RAW != 0;
    let deadline = Duration::from_millis(scenario.deadline_ms.into());

    let server = {
        let runtime = runtime.clone();
        let scenario = scenario.clone();
        async move {
            if raw {
                raw_server(server_io, scenario.raw).await;
            } else {
                fake_server(server_io, [scenario.unary, scenario.streaming], runtime).await;
            }
        }
    };
    let client = async {
        let mut outcome = Outcome::default();
        let channel = match ChannelBuilder::default()
            .runtime(runtime.clone())
            .connect(client_io)
            .await
        {
            Ok(channel) => channel,
            Err(_) => return outcome,
        };
        let mut grpc = Grpc::new(channel);
        if flags & FLAG_ACCEPT_GZIP != 0 {
            grpc = grpc.accept_compressed(CompressionEncoding::Gzip);
        }
        if flags & FLAG_SMALL_LIMIT != 0 {
            grpc = grpc.max_decoding_message_size(64);
        }
        if flags & FLAG_SEND_GZIP != 0 {
            grpc = grpc.send_compressed(CompressionEncoding::Gzip);
        }
        let request = |deadline_flag: u8| {
            let mut request = Request::new(Msg::count("hello", 3));
            if flags & deadline_flag != 0 {
                request.set_timeout(deadline);
            }
            request
        };
        let do_unary = !raw || flags & FLAG_RAW_STREAMING == 0;
        let do_streaming = !raw || flags & FLAG_RAW_STREAMING != 0;
        if do_unary {
            let result = grpc
                .unary::<Msg, Msg>(request(FLAG_UNARY_DEADLINE), UNARY)
                .await;
            match &result {
                Ok(response) => {
                    if !raw {
                        assert!(
                            scenario.unary.actions.iter().any(Action::sends_ok_status),
                            "unary call succeeded without grpc-status 0"
                        );
                    }
                    let _ = response.trailers().len();
                }
                Err(status) => check_status(status),
            }
            outcome.unary = Some(result.map(|r| r.into_inner()).map_err(err));
        }
        if do_streaming {
            match grpc
                .server_streaming::<Msg, Msg>(request(FLAG_STREAM_DEADLINE), EXPAND)
                .await
            {
                Ok(response) => {
                    let _ = response.metadata().len();
                    let mut messages = response.into_inner();
                    let end = loop {
                        match messages.message().await {
                            Ok(Some(msg)) => outcome.streamed.push(msg),
                            Ok(None) => break Ok(()),
                            Err(status) => {
                                check_status(&status);
                                break Err(err(status));
                            }
                        }
                    };
                    // After the end, the stream stays ended.
                    assert!(matches!(messages.message().await, Ok(None)));
                    match messages.trailers().await {
                        Ok(_) => {}
                        Err(status) => check_status(&status),
                    }
                    outcome.stream_end = Some(end);
                }
                Err(status) => {
                    check_status(&status);
                    outcome.stream_end = Some(Err(err(status)));
                }
            }
        }
        outcome
    };
    let finished = sim
        .block_on(async { futures::join!(server, client) })
        .unwrap_or_else(|err| panic!("client calls did not end: {err:?}"));
    finished.output.1
}

pub fn run(data: &[u8]) {
    execute(&Scenario::read(data));
}
