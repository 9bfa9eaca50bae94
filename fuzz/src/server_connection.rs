//! Target `server_connection`: a whole server connection (the echo service)
//! fed arbitrary bytes after a valid HTTP/2 client preface, over the
//! in-memory duplex pipe, on the deterministic [`Sim`] executor.
//!
//! Checked: no panic; the connection and every call task it spawned end
//! once the input is over and the write side closed (no hang, no task left
//! behind, no busy loop); the server's first bytes are its SETTINGS frame;
//! memory stays under libFuzzer's `-rss_limit_mb`.
//!
//! Input layout (see [`Input`]):
//! - `u8` flags: bit 0 = structured frames (else raw bytes); bit 1 = send a
//!   default client SETTINGS frame after the preface; bits 2-4 = server
//!   configuration ([`Config`]); bit 5 = attach a `PeerTag` extension;
//! - raw mode: the rest, written as is after the preface;
//! - structured mode: a sequence of operations ([`Op`]), each an opcode
//!   byte (modulo 13) and its arguments, written as HTTP/2 frames with
//!   literal (non-Huffman) HPACK header blocks; `Sleep` lets virtual time
//!   pass between writes (deadlines, keepalive and idle timers fire).

use std::time::Duration;

use bytes::BytesMut;
use futures::{AsyncReadExt, AsyncWriteExt};
use p2p_grpc::server::Server;
use p2p_grpc::wire::compression::compress;
use p2p_grpc::wire::framing::encode_message;
use p2p_grpc::{CompressionEncoding, Status};

use crate::echo::{Msg, PeerTag};
use crate::frames::{self, END_HEADERS, END_STREAM};
use crate::input::{Input, Output};
use crate::sim::Sim;

/// Server configurations, chosen by bits 2-4 of the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Config {
    Default = 0,
    /// 64-byte requests, 2 concurrent streams, 256-byte header lists.
    SmallLimits = 1,
    /// Responses gzip-compressed when accepted.
    Gzip = 2,
    /// A PING every second, the connection dropped after 1 s without PONG.
    KeepAlive = 3,
    /// 100-byte stream windows, 1000-byte connection window.
    TinyWindows = 4,
    /// An authorisation hook refusing `Peer` calls.
    Authorize = 5,
    /// Responses over 16 bytes refused.
    SmallResponses = 6,
    /// `Server::shutdown` (100 ms grace) once the input is written.
    Shutdown = 7,
}

impl Config {
    fn from_bits(b: u8) -> Config {
        match b & 7 {
            0 => Config::Default,
            1 => Config::SmallLimits,
            2 => Config::Gzip,
            3 => Config::KeepAlive,
            4 => Config::TinyWindows,
            5 => Config::Authorize,
            6 => Config::SmallResponses,
            _ => Config::Shutdown,
        }
    }
}

pub const FLAG_STRUCTURED: u8 = 1;
pub const FLAG_SETTINGS: u8 = 2;
pub const FLAG_PEER: u8 = 32;

/// The paths a template request can name (selector modulo 16; 10 and up
/// read a path from the input).
pub const PATHS: [&str; 10] = [
    crate::echo::UNARY,
    crate::echo::SLOW,
    crate::echo::COLLECT,
    crate::echo::EXPAND,
    crate::echo::CHAT,
    crate::echo::PEER,
    crate::echo::MISSING,
    "/other.Service/Method",
    "/test.Echo/",
    "/",
];

/// Operations of the structured mode. The opcode is the discriminant.
#[derive(Debug, Clone)]
pub enum Op {
    /// 0: a gRPC request HEADERS frame from a template plus extra fields.
    /// `template` bits: 0 GET instead of POST, 1 no content-type, 2 no te,
    /// 3 grpc-encoding gzip, 4 grpc-accept-encoding gzip, 5 no scheme and
    /// authority. `flags` bits: 0 END_STREAM, 1 no END_HEADERS.
    Request {
        stream: u8,
        flags: u8,
        path: u8,
        custom_path: Vec<u8>,
        template: u8,
        extra: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// 1: a HEADERS frame of exactly these fields (trailers, or a request
    /// with fuzzed pseudo-headers). `flags` as for `Request`.
    Headers {
        stream: u8,
        flags: u8,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// 2: a DATA frame; `wrap` 0: the payload as is, 1: one gRPC message, 2:
    /// one gzip-compressed gRPC message.
    Data {
        stream: u8,
        end_stream: bool,
        wrap: u8,
        payload: Vec<u8>,
    },
    /// 3: a DATA frame holding one encoded echo `Msg`.
    Message {
        stream: u8,
        end_stream: bool,
        gzip: bool,
        text: Vec<u8>,
        count: u32,
        payload: Vec<u8>,
    },
    /// 4
    RstStream { stream: u8, code: u32 },
    /// 5
    Settings { ack: bool, values: Vec<(u16, u32)> },
    /// 6
    WindowUpdate { stream: u8, increment: u32 },
    /// 7
    Ping { ack: bool, data: [u8; 8] },
    /// 8
    GoAway {
        last: u32,
        code: u32,
        debug: Vec<u8>,
    },
    /// 9: a CONTINUATION frame.
    Continuation {
        stream: u8,
        end_headers: bool,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// 10: any frame.
    Raw {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    },
    /// 11
    Priority { stream: u8, data: [u8; 5] },
    /// 12: write what came before, then let `millis` of virtual time pass.
    Sleep { millis: u16 },
}

fn read_fields(input: &mut Input<'_>, max: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
    let count = input.u8() % max;
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

impl Op {
    pub fn read(input: &mut Input<'_>) -> Op {
        match input.u8() % 13 {
            0 => {
                let stream = input.u8();
                let flags = input.u8();
                let path = input.u8();
                let custom_path = if path % 16 >= PATHS.len() as u8 {
                    input.bytes8().to_vec()
                } else {
                    Vec::new()
                };
                let template = input.u8();
                let extra = read_fields(input, 16);
                Op::Request {
                    stream,
                    flags,
                    path,
                    custom_path,
                    template,
                    extra,
                }
            }
            1 => Op::Headers {
                stream: input.u8(),
                flags: input.u8(),
                fields: read_fields(input, 16),
            },
            2 => Op::Data {
                stream: input.u8(),
                end_stream: input.bool(),
                wrap: input.u8(),
                payload: input.bytes16().to_vec(),
            },
            3 => Op::Message {
                stream: input.u8(),
                end_stream: input.bool(),
                gzip: input.bool(),
                text: input.bytes8().to_vec(),
                count: input.u32(),
                payload: input.bytes8().to_vec(),
            },
            4 => Op::RstStream {
                stream: input.u8(),
                code: input.u32(),
            },
            5 => {
                let ack = input.bool();
                let count = input.u8() % 8;
                let values = (0..count).map(|_| (input.u16(), input.u32())).collect();
                Op::Settings { ack, values }
            }
            6 => Op::WindowUpdate {
                stream: input.u8(),
                increment: input.u32(),
            },
            7 => {
                let ack = input.bool();
                let mut data = [0u8; 8];
                data.copy_from_slice(&{
                    let mut d = input.take(8).to_vec();
                    d.resize(8, 0);
                    d
                });
                Op::Ping { ack, data }
            }
            8 => Op::GoAway {
                last: input.u32(),
                code: input.u32(),
                debug: input.bytes8().to_vec(),
            },
            9 => Op::Continuation {
                stream: input.u8(),
                end_headers: input.bool(),
                fields: read_fields(input, 16),
            },
            10 => Op::Raw {
                kind: input.u8(),
                flags: input.u8(),
                stream: input.u32(),
                payload: input.bytes16().to_vec(),
            },
            11 => {
                let stream = input.u8();
                let mut data = [0u8; 5];
                for b in &mut data {
                    *b = input.u8();
                }
                Op::Priority { stream, data }
            }
            _ => Op::Sleep {
                millis: input.u16(),
            },
        }
    }

    /// The inverse of [`Op::read`] (for seeds).
    pub fn write(&self, out: &mut Output) {
        match self {
            Op::Request {
                stream,
                flags,
                path,
                custom_path,
                template,
                extra,
            } => {
                out.u8(0).u8(*stream).u8(*flags).u8(*path);
                if path % 16 >= PATHS.len() as u8 {
                    out.bytes8(custom_path);
                }
                out.u8(*template);
                write_fields(out, extra);
            }
            Op::Headers {
                stream,
                flags,
                fields,
            } => {
                out.u8(1).u8(*stream).u8(*flags);
                write_fields(out, fields);
            }
            Op::Data {
                stream,
                end_stream,
                wrap,
                payload,
            } => {
                out.u8(2)
                    .u8(*stream)
                    .bool(*end_stream)
                    .u8(*wrap)
                    .bytes16(payload);
            }
            Op::Message {
                stream,
                end_stream,
                gzip,
                text,
                count,
                payload,
            } => {
                out.u8(3)
                    .u8(*stream)
                    .bool(*end_stream)
                    .bool(*gzip)
                    .bytes8(text)
                    .u32(*count)
                    .bytes8(payload);
            }
            Op::RstStream { stream, code } => {
                out.u8(4).u8(*stream).u32(*code);
            }
            Op::Settings { ack, values } => {
                out.u8(5).bool(*ack).u8(values.len() as u8);
                for (id, value) in values {
                    out.u16(*id).u32(*value);
                }
            }
            Op::WindowUpdate { stream, increment } => {
                out.u8(6).u8(*stream).u32(*increment);
            }
            Op::Ping { ack, data } => {
                out.u8(7).bool(*ack).raw(data);
            }
            Op::GoAway { last, code, debug } => {
                out.u8(8).u32(*last).u32(*code).bytes8(debug);
            }
            Op::Continuation {
                stream,
                end_headers,
                fields,
            } => {
                out.u8(9).u8(*stream).bool(*end_headers);
                write_fields(out, fields);
            }
            Op::Raw {
                kind,
                flags,
                stream,
                payload,
            } => {
                out.u8(10)
                    .u8(*kind)
                    .u8(*flags)
                    .u32(*stream)
                    .bytes16(payload);
            }
            Op::Priority { stream, data } => {
                out.u8(11).u8(*stream).raw(data);
            }
            Op::Sleep { millis } => {
                out.u8(12).u16(*millis);
            }
        }
    }

    /// Appends the frame bytes; `Sleep` is handled by the caller.
    fn to_bytes(&self, out: &mut Vec<u8>) {
        let as_refs = |fields: &[(Vec<u8>, Vec<u8>)]| -> Vec<u8> {
            let refs: Vec<(&[u8], &[u8])> = fields
                .iter()
                .map(|(n, v)| (n.as_slice(), v.as_slice()))
                .collect();
            frames::header_block(&refs)
        };
        let header_flags = |flags: u8| {
            let mut f = 0;
            if flags & 1 != 0 {
                f |= END_STREAM;
            }
            if flags & 2 == 0 {
                f |= END_HEADERS;
            }
            f
        };
        match self {
            Op::Request {
                stream,
                flags,
                path,
                custom_path,
                template,
                extra,
            } => {
                let path: &[u8] = match PATHS.get((path % 16) as usize) {
                    Some(p) => p.as_bytes(),
                    None => custom_path,
                };
                let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                let mut add = |n: &[u8], v: &[u8]| fields.push((n.to_vec(), v.to_vec()));
                let method: &[u8] = if template & 1 == 0 { b"POST" } else { b"GET" };
                add(b":method", method);
                if template & 32 == 0 {
                    add(b":scheme", b"http");
                    add(b":authority", b"localhost");
                }
                add(b":path", path);
                if template & 2 == 0 {
                    add(b"content-type", b"application/grpc");
                }
                if template & 4 == 0 {
                    add(b"te", b"trailers");
                }
                if template & 8 != 0 {
                    add(b"grpc-encoding", b"gzip");
                }
                if template & 16 != 0 {
                    add(b"grpc-accept-encoding", b"gzip");
                }
                fields.extend(extra.iter().cloned());
                let block = as_refs(&fields);
                frames::frame(
                    out,
                    frames::HEADERS,
                    header_flags(*flags),
                    (*stream).into(),
                    &block,
                );
            }
            Op::Headers {
                stream,
                flags,
                fields,
            } => {
                let block = as_refs(fields);
                frames::frame(
                    out,
                    frames::HEADERS,
                    header_flags(*flags),
                    (*stream).into(),
                    &block,
                );
            }
            Op::Data {
                stream,
                end_stream,
                wrap,
                payload,
            } => {
                let body = match wrap % 3 {
                    0 => payload.clone(),
                    1 => frames::grpc_message(false, payload),
                    _ => {
                        let mut gz = BytesMut::new();
                        compress(CompressionEncoding::Gzip, payload, &mut gz).unwrap();
                        frames::grpc_message(true, &gz)
                    }
                };
                let flags = if *end_stream { END_STREAM } else { 0 };
                frames::frame(out, frames::DATA, flags, (*stream).into(), &body);
            }
            Op::Message {
                stream,
                end_stream,
                gzip,
                text,
                count,
                payload,
            } => {
                let msg = Msg {
                    text: String::from_utf8_lossy(text).into_owned(),
                    count: *count,
                    payload: payload.clone(),
                };
                let mut buf = BytesMut::new();
                let encoding = gzip.then_some(CompressionEncoding::Gzip);
                encode_message(&msg, encoding, usize::MAX, &mut buf).unwrap();
                let flags = if *end_stream { END_STREAM } else { 0 };
                frames::frame(out, frames::DATA, flags, (*stream).into(), &buf);
            }
            Op::RstStream { stream, code } => {
                frames::frame(
                    out,
                    frames::RST_STREAM,
                    0,
                    (*stream).into(),
                    &code.to_be_bytes(),
                );
            }
            Op::Settings { ack, values } => {
                if *ack {
                    frames::frame(out, frames::SETTINGS, frames::ACK, 0, &[]);
                } else {
                    frames::settings(out, values);
                }
            }
            Op::WindowUpdate { stream, increment } => {
                frames::frame(
                    out,
                    frames::WINDOW_UPDATE,
                    0,
                    (*stream).into(),
                    &increment.to_be_bytes(),
                );
            }
            Op::Ping { ack, data } => {
                let flags = if *ack { frames::ACK } else { 0 };
                frames::frame(out, frames::PING, flags, 0, data);
            }
            Op::GoAway { last, code, debug } => {
                let mut payload = last.to_be_bytes().to_vec();
                payload.extend_from_slice(&code.to_be_bytes());
                payload.extend_from_slice(debug);
                frames::frame(out, frames::GOAWAY, 0, 0, &payload);
            }
            Op::Continuation {
                stream,
                end_headers,
                fields,
            } => {
                let block = as_refs(fields);
                let flags = if *end_headers { END_HEADERS } else { 0 };
                frames::frame(out, frames::CONTINUATION, flags, (*stream).into(), &block);
            }
            Op::Raw {
                kind,
                flags,
                stream,
                payload,
            } => frames::frame(out, *kind, *flags, *stream, payload),
            Op::Priority { stream, data } => {
                frames::frame(out, frames::PRIORITY, 0, (*stream).into(), data);
            }
            Op::Sleep { .. } => {}
        }
    }
}

/// A whole input: flags and operations (structured) or raw bytes.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub flags: u8,
    pub config: Config,
    pub ops: Vec<Op>,
    pub raw: Vec<u8>,
}

impl Scenario {
    pub fn structured(config: Config, settings: bool, ops: Vec<Op>) -> Self {
        let mut flags = FLAG_STRUCTURED | (config as u8) << 2;
        if settings {
            flags |= FLAG_SETTINGS;
        }
        Scenario {
            flags,
            config,
            ops,
            raw: Vec::new(),
        }
    }

    pub fn raw(config: Config, settings: bool, raw: Vec<u8>) -> Self {
        let mut flags = (config as u8) << 2;
        if settings {
            flags |= FLAG_SETTINGS;
        }
        Scenario {
            flags,
            config,
            ops: Vec::new(),
            raw,
        }
    }

    pub fn read(data: &[u8]) -> Scenario {
        let mut input = Input::new(data);
        let flags = input.u8();
        let config = Config::from_bits(flags >> 2);
        let mut ops = Vec::new();
        let mut raw = Vec::new();
        if flags & FLAG_STRUCTURED != 0 {
            while !input.is_empty() {
                ops.push(Op::read(&mut input));
            }
        } else {
            raw = input.rest().to_vec();
        }
        Scenario {
            flags,
            config,
            ops,
            raw,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Output::new();
        out.u8(self.flags);
        if self.flags & FLAG_STRUCTURED != 0 {
            for op in &self.ops {
                op.write(&mut out);
            }
        } else {
            out.raw(&self.raw);
        }
        out.finish()
    }

    /// The bytes to write, in segments separated by virtual sleeps.
    /// The bytes to write, each followed by an optional virtual sleep: the
    /// client preface first.
    pub fn segments(&self) -> Vec<(Vec<u8>, Option<Duration>)> {
        let mut first = frames::PREFACE.to_vec();
        if self.flags & FLAG_SETTINGS != 0 {
            frames::settings(&mut first, &[]);
        }
        let mut segments = vec![(first, None)];
        if self.flags & FLAG_STRUCTURED == 0 {
            segments[0].0.extend_from_slice(&self.raw);
            return segments;
        }
        for op in &self.ops {
            match op {
                Op::Sleep { millis } => {
                    segments.last_mut().unwrap().1 = Some(Duration::from_millis((*millis).into()));
                    segments.push((Vec::new(), None));
                }
                op => op.to_bytes(&mut segments.last_mut().unwrap().0),
            }
        }
        segments
    }
}

fn build_server(config: Config, sim: &Sim) -> Server {
    server_builder(config, sim)
        .build()
        .expect("a runtime was given")
}

/// The echo server of `config` on `sim`, not yet built (the `grpc_stream`
/// target hands it to a `GrpcStream`).
pub fn server_builder(config: Config, sim: &Sim) -> p2p_grpc::server::ServerBuilder {
    let runtime = sim.runtime();
    let mut builder = Server::builder()
        .runtime(runtime.clone())
        .add_service(crate::echo_service(runtime));
    builder = match config {
        Config::Default | Config::Shutdown => builder,
        Config::SmallLimits => builder
            .max_decoding_message_size(64)
            .max_concurrent_streams(Some(2))
            .max_header_list_size(256),
        Config::Gzip => builder.send_compressed(CompressionEncoding::Gzip),
        Config::KeepAlive => builder.keepalive(Duration::from_secs(1), Duration::from_secs(1)),
        Config::TinyWindows => builder
            .initial_stream_window_size(100)
            .initial_connection_window_size(1000),
        Config::Authorize => builder.authorize(|info| match info.method() {
            "Peer" => Err(Status::permission_denied("no peers here")),
            _ => Ok(()),
        }),
        Config::SmallResponses => builder.max_encoding_message_size(16),
    };
    builder
}

/// What a run observed (for tests and seed checks).
#[derive(Debug)]
pub struct Outcome {
    pub serve_ok: bool,
    /// Everything the server wrote.
    pub output: Vec<u8>,
    pub virtual_time: Duration,
    pub tasks_spawned: usize,
}

/// Runs one scenario; panics when the connection does not end cleanly.
pub fn execute(scenario: &Scenario) -> Outcome {
    let sim = Sim::new();
    let server = build_server(scenario.config, &sim);
    let (client_io, server_io) = p2p_grpc::io::duplex(1 << 20);
    let (mut reader, mut writer) = client_io.split();
    let mut extensions = http::Extensions::new();
    if scenario.flags & FLAG_PEER != 0 {
        extensions.insert(PeerTag("fuzz-peer".into()));
    }
    let segments = scenario.segments();
    let runtime = sim.runtime();
    let shutdown = scenario.config == Config::Shutdown;

    let serve = server.serve_connection_with(server_io, extensions);
    let write = async {
        for (bytes, sleep) in segments {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
            if let Some(duration) = sleep {
                runtime.sleep(duration).await;
            }
        }
        // Let the server take in everything before the end of input: h2
        // drops requests still queued for accept when it reads EOF. A zero
        // virtual sleep fires once every task is idle.
        runtime.sleep(Duration::ZERO).await;
        if shutdown {
            server.shutdown(Duration::from_millis(100)).await;
        }
        let _ = writer.close().await;
    };
    let read = async {
        let mut output = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                // Keep the start only: enough to check the preface.
                Ok(n) if output.len() < 64 * 1024 => output.extend_from_slice(&buf[..n]),
                Ok(_) => {}
            }
        }
        output
    };
    let finished = sim
        .block_on(async { futures::join!(serve, write, read) })
        .unwrap_or_else(|err| panic!("server connection did not end: {err:?}"));
    let (served, (), output) = finished.output;
    assert_eq!(server.connection_count(), 0, "connection still counted");
    // The server speaks first: its preface is a SETTINGS frame on stream 0.
    if output.len() >= 9 {
        assert_eq!(output[3], frames::SETTINGS, "server preface");
        assert_eq!(&output[5..9], &[0, 0, 0, 0], "server preface stream");
    }
    Outcome {
        serve_ok: served.is_ok(),
        output,
        virtual_time: finished.virtual_time,
        tasks_spawned: finished.spawned,
    }
}

pub fn run(data: &[u8]) {
    execute(&Scenario::read(data));
}
