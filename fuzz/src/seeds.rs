//! The seed corpora, `fuzz/seeds/<target>/<name>`: written by
//! `cargo test --manifest-path fuzz/Cargo.toml -- --ignored write_seeds`.
//!
//! Structured seeds are built with each target's input builders; raw seeds
//! are bytes captured from a real exchange between our client and our
//! server (what the client wrote, for `server_connection`; what the server
//! wrote, for `client_responses`).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures::io::{AsyncRead, AsyncWrite};
use futures::StreamExt;
use p2p_grpc::client::{ChannelBuilder, Grpc};
use p2p_grpc::io::{duplex, Duplex};
use p2p_grpc::server::Server;
use p2p_grpc::wire::compression::compress;
use p2p_grpc::wire::framing::encode_message;
use p2p_grpc::{CompressionEncoding, Request};
use prost::Message as _;

use crate::client_responses::{self as cr, Action, Spec};
use crate::echo::{self, Msg};
use crate::frames;
use crate::header_parsing::ops;
use crate::input::Output;
use crate::server_connection::{self as sc, Config, Op};
use crate::sim::Sim;

/// One seed: target, file name, bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds = Vec::new();
    seeds.extend(message_decoder());
    seeds.extend(header_parsing());
    seeds.extend(server_connection());
    seeds.extend(client_responses());
    seeds.extend(yamux_split());
    seeds.extend(grpc_stream());
    seeds.extend(client_keepalive());
    seeds
}

fn encoded(msg: &Msg, gzip: bool) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let encoding = gzip.then_some(CompressionEncoding::Gzip);
    encode_message(msg, encoding, usize::MAX, &mut buf).unwrap();
    buf.to_vec()
}

fn compressed(encoding: CompressionEncoding, data: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    compress(encoding, data, &mut out).unwrap();
    out.to_vec()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    compressed(CompressionEncoding::Gzip, data)
}

fn message_decoder() -> Vec<Seed> {
    use crate::message_decoder::encode;
    let t = "message_decoder";
    let hello = Msg::count("hello", 3);
    let big = Msg {
        text: "x".repeat(3000),
        payload: vec![7; 2000],
        count: 1,
    };
    let mut several = encoded(&hello, false);
    several.extend(encoded(&hello, true));
    several.extend(frames::grpc_message(false, b""));
    several.extend(encoded(&big, false));
    several.extend(encoded(&big, true));
    let mut bomb = frames::grpc_message(true, &gzip(&vec![0u8; 256 * 1024]));
    bomb.extend(encoded(&hello, false));
    let mut truncated = encoded(&hello, false);
    truncated.extend(&encoded(&big, false)[..100]);
    vec![
        (
            t,
            "one_message".into(),
            encode(0xFFFF, true, &[], &encoded(&hello, false)),
        ),
        (
            t,
            "several_split".into(),
            encode(0xFFFF, true, &[1, 2, 3, 7, 0, 0x81, 0xa0], &several),
        ),
        (
            t,
            "several_at_end".into(),
            encode(8000, false, &[5, 0x90], &several),
        ),
        (t, "gzip_bomb".into(), encode(1024, true, &[0x84], &bomb)),
        (
            t,
            "too_large".into(),
            encode(10, true, &[3], &encoded(&hello, false)),
        ),
        (
            t,
            "invalid_flag".into(),
            encode(100, true, &[], &[0, 0, 0, 0, 1, 8, 2, 0, 0]),
        ),
        (
            t,
            "truncated".into(),
            encode(0xFFFF, true, &[64], &truncated),
        ),
    ]
}

fn header_parsing() -> Vec<Seed> {
    let t = "header_parsing";
    let mut timeouts = Output::new();
    for v in [
        &b"100m"[..],
        b"1H",
        b"99999999n",
        b"00001S",
        b"5M",
        b"7u",
        b"123456789S",
        b"10s",
        b"S",
        b"",
    ] {
        ops::timeout_parse(&mut timeouts, v);
    }
    for d in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(100),
        Duration::new(100_000, 1),
        Duration::from_secs(99_999_999 * 3600),
        Duration::MAX,
    ] {
        ops::timeout_format(&mut timeouts, d);
    }

    let mut messages = Output::new();
    for v in [
        &b"plain text ~"[..],
        b"100% done\n",
        b"%C3%A9t%C3%A9",
        b"50% off %zz %4",
        b"%FF%FE",
        "caf\u{e9} \u{1F600}".as_bytes(),
    ] {
        ops::grpc_message(&mut messages, v);
    }

    let mut metadata = Output::new();
    ops::metadata(&mut metadata, 0, b"x-user", b"alice");
    ops::metadata(&mut metadata, 1, b"X-User", b"bob");
    ops::metadata(&mut metadata, 2, b"trace-bin", &[0, 1, 2, 255]);
    ops::metadata(&mut metadata, 3, b"trace-bin", b"");
    ops::metadata(&mut metadata, 0, b"grpc-status", b"0");
    ops::metadata(&mut metadata, 0, b"a b", b"v");
    ops::metadata(&mut metadata, 0, b"k", b"tab\there");
    ops::metadata(&mut metadata, 0, b"k-bin", b"ascii");
    ops::metadata(&mut metadata, 2, b"k", b"binary");
    ops::metadata(&mut metadata, 4, b"bad key\n", b"");
    ops::metadata(&mut metadata, 5, b"x-user", b"");
    ops::metadata(&mut metadata, 0, b"user-agent", b"me");

    let mut status = Output::new();
    ops::status(
        &mut status,
        &[
            (b"grpc-status", b"3"),
            (b"grpc-message", b"%F0%9F%98%80 100%25 done%0A"),
            (b"grpc-status-details-bin", b"CAMSBG9vcHM"),
            (b"x-retry", b"no"),
            (b"x-blob-bin", b"AAEC/w,AQ=="),
            (b"content-type", b"application/grpc"),
            (b"x-bad", b"caf\xc3\xa9"),
        ],
    );
    ops::status(
        &mut status,
        &[
            (b"grpc-status", b" 05 "),
            (b"grpc-status-details-bin", b"!!!"),
        ],
    );
    ops::status(&mut status, &[(b"grpc-status", b"garbage")]);
    ops::status(&mut status, &[(b"x-other", b"1")]);

    let mut compression = Output::new();
    for v in [
        &b"gzip"[..],
        b"identity",
        b" gzip ",
        b"br",
        b"GZIP",
        b"deflate, gzip , snappy",
        b"\xffzz",
        b"deflate",
        b" zstd",
        b"Deflate",
        b"zstd,gzip",
    ] {
        ops::encoding(&mut compression, v);
    }
    for &encoding in CompressionEncoding::ALL {
        let hello = compressed(encoding, b"hello hello hello hello");
        ops::decompress(&mut compression, encoding, 100, &hello);
        let bomb = compressed(encoding, &vec![0u8; 60_000]);
        ops::decompress(&mut compression, encoding, 1000, &bomb);
        ops::decompress(
            &mut compression,
            encoding,
            100,
            b"definitely not compressed",
        );
    }
    let mut two = gzip(b"abc");
    two.extend(gzip(b"def"));
    ops::decompress(&mut compression, CompressionEncoding::Gzip, 6, &two);

    vec![
        (t, "timeouts".into(), timeouts.finish()),
        (t, "messages".into(), messages.finish()),
        (t, "metadata".into(), metadata.finish()),
        (t, "status".into(), status.finish()),
        (t, "compression".into(), compression.finish()),
    ]
}

fn fields(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// A template request on `stream` to `PATHS[path]`.
fn request(stream: u8, path: u8, template: u8, extra: &[(&str, &str)]) -> Op {
    Op::Request {
        stream,
        flags: 0,
        path,
        custom_path: Vec::new(),
        template,
        extra: fields(extra),
    }
}

fn message(stream: u8, end_stream: bool, text: &str, count: u32) -> Op {
    Op::Message {
        stream,
        end_stream,
        gzip: false,
        text: text.as_bytes().to_vec(),
        count,
        payload: Vec::new(),
    }
}

const P_UNARY: u8 = 0;
const P_SLOW: u8 = 1;
const P_COLLECT: u8 = 2;
const P_EXPAND: u8 = 3;
const P_CHAT: u8 = 4;
const P_PEER: u8 = 5;
const P_MISSING: u8 = 6;
const P_OTHER: u8 = 7;

fn server_connection() -> Vec<Seed> {
    let t = "server_connection";
    let ack = Op::Settings {
        ack: true,
        values: Vec::new(),
    };
    let structured =
        |config: Config, ops: Vec<Op>| sc::Scenario::structured(config, true, ops).encode();
    let mut seeds: Vec<Seed> = vec![
        (
            t,
            "unary".into(),
            structured(
                Config::Default,
                vec![
                    ack.clone(),
                    request(
                        1,
                        P_UNARY,
                        0,
                        &[("x-echo", "hi"), ("x-trailer-bin", "AAEC")],
                    ),
                    message(1, true, "hello", 1),
                ],
            ),
        ),
        (
            t,
            "unary_fail_status".into(),
            structured(
                Config::Default,
                vec![
                    request(1, P_UNARY, 0, &[]),
                    message(1, true, "fail:5:not here", 0),
                ],
            ),
        ),
        (
            t,
            "slow_deadline".into(),
            structured(
                Config::Default,
                vec![
                    request(1, P_SLOW, 0, &[("grpc-timeout", "10m")]),
                    message(1, true, "slow", 50),
                    Op::Sleep { millis: 20 },
                ],
            ),
        ),
        (
            t,
            "collect".into(),
            structured(
                Config::Default,
                vec![
                    request(1, P_COLLECT, 8, &[]),
                    message(1, false, "a", 1),
                    Op::Message {
                        stream: 1,
                        end_stream: false,
                        gzip: true,
                        text: b"b".to_vec(),
                        count: 2,
                        payload: vec![1; 100],
                    },
                    message(1, true, "c", 3),
                ],
            ),
        ),
        (
            t,
            "collect_gzip".into(),
            structured(
                Config::Gzip,
                vec![
                    request(1, P_COLLECT, 8 | 16, &[]),
                    Op::Message {
                        stream: 1,
                        end_stream: true,
                        gzip: true,
                        text: b"zip".to_vec(),
                        count: 2,
                        payload: vec![1; 100],
                    },
                ],
            ),
        ),
        (
            t,
            "expand".into(),
            structured(
                Config::Default,
                vec![
                    request(1, P_EXPAND, 0, &[]),
                    message(1, true, "", 5),
                    Op::WindowUpdate {
                        stream: 0,
                        increment: 100_000,
                    },
                ],
            ),
        ),
        (
            t,
            "expand_tiny_windows".into(),
            structured(
                Config::TinyWindows,
                vec![
                    request(1, P_EXPAND, 0, &[]),
                    message(1, true, "fail:3", 10),
                    Op::Sleep { millis: 0 },
                    Op::WindowUpdate {
                        stream: 1,
                        increment: 200,
                    },
                    Op::WindowUpdate {
                        stream: 0,
                        increment: 200,
                    },
                ],
            ),
        ),
        (
            t,
            "chat_and_reset".into(),
            structured(
                Config::Default,
                vec![
                    request(1, P_CHAT, 0, &[]),
                    message(1, false, "one", 1),
                    Op::Sleep { millis: 0 },
                    message(1, false, "two", 2),
                    Op::RstStream { stream: 1, code: 8 },
                    request(3, P_CHAT, 0, &[]),
                    message(3, true, "three", 3),
                ],
            ),
        ),
        (
            t,
            "peer_authorize".into(),
            structured(
                Config::Authorize,
                vec![
                    request(1, P_PEER, 0, &[]),
                    message(1, true, "", 0),
                    request(3, P_UNARY, 0, &[]),
                    message(3, true, "ok", 0),
                ],
            ),
        ),
        (
            t,
            "bad_requests".into(),
            structured(
                Config::Default,
                vec![
                    request(1, P_MISSING, 0, &[]),
                    request(3, P_OTHER, 0, &[]),
                    request(5, P_UNARY, 1, &[]),
                    request(7, P_UNARY, 2, &[("content-type", "application/json")]),
                    request(9, P_UNARY, 0, &[("grpc-encoding", "br")]),
                    request(11, P_UNARY, 0, &[("grpc-timeout", "forever")]),
                    Op::Request {
                        stream: 13,
                        flags: 1,
                        path: 12,
                        custom_path: b"/test.Echo/Unary/extra".to_vec(),
                        template: 0,
                        extra: Vec::new(),
                    },
                    Op::Data {
                        stream: 15,
                        end_stream: true,
                        wrap: 1,
                        payload: b"orphan".to_vec(),
                    },
                ],
            ),
        ),
        (
            t,
            "bad_messages".into(),
            structured(
                Config::SmallLimits,
                vec![
                    request(1, P_UNARY, 0, &[]),
                    Op::Data {
                        stream: 1,
                        end_stream: true,
                        wrap: 0,
                        payload: vec![0, 0xff, 0xff, 0xff, 0xff],
                    },
                    request(3, P_UNARY, 0, &[]),
                    Op::Data {
                        stream: 3,
                        end_stream: true,
                        wrap: 2,
                        payload: vec![0x0a; 5000],
                    },
                    request(5, P_COLLECT, 0, &[]),
                    Op::Data {
                        stream: 5,
                        end_stream: true,
                        wrap: 0,
                        payload: vec![7, 0, 0],
                    },
                ],
            ),
        ),
        (
            t,
            "control_frames".into(),
            structured(
                Config::KeepAlive,
                vec![
                    Op::Ping {
                        ack: false,
                        data: *b"pingpong",
                    },
                    Op::Settings {
                        ack: false,
                        values: vec![(1, 4096), (3, 10), (4, 65535), (5, 16384), (6, 8192)],
                    },
                    Op::Priority {
                        stream: 1,
                        data: [0, 0, 0, 0, 16],
                    },
                    Op::Headers {
                        stream: 1,
                        flags: 2,
                        fields: fields(&[(":method", "POST"), (":scheme", "http")]),
                    },
                    Op::Continuation {
                        stream: 1,
                        end_headers: true,
                        fields: fields(&[
                            (":path", echo::UNARY),
                            (":authority", "x"),
                            ("content-type", "application/grpc+proto"),
                        ]),
                    },
                    message(1, true, "continued", 0),
                    Op::Sleep { millis: 1500 },
                    Op::Raw {
                        kind: 0xaa,
                        flags: 0,
                        stream: 0,
                        payload: b"unknown frame type".to_vec(),
                    },
                    Op::GoAway {
                        last: 1,
                        code: 0,
                        debug: b"bye".to_vec(),
                    },
                ],
            ),
        ),
        (
            t,
            "shutdown_during_call".into(),
            structured(
                Config::Shutdown,
                vec![
                    request(1, P_SLOW, 0, &[]),
                    message(1, true, "slow", 10_000),
                    request(3, P_CHAT, 0, &[]),
                ],
            ),
        ),
        (
            t,
            "small_responses".into(),
            structured(
                Config::SmallResponses,
                vec![
                    request(1, P_UNARY, 0, &[]),
                    message(1, true, &"x".repeat(40), 0),
                ],
            ),
        ),
    ];
    // What our own client writes, as raw input (the preface stripped: the
    // target writes it).
    for (name, bytes) in captured_client_bytes() {
        let raw = bytes[frames::PREFACE.len()..].to_vec();
        seeds.push((
            t,
            name,
            sc::Scenario::raw(Config::Default, false, raw).encode(),
        ));
    }
    seeds
}

fn yamux_split() -> Vec<Seed> {
    use crate::yamux_split::{encode, Frame};
    let t = "yamux_split";
    let data = |flags, stream, len_code| Frame::Yamux {
        kind: 0,
        flags,
        stream,
        len_code,
    };
    let other = |kind, flags, len_code| Frame::Yamux {
        kind,
        flags,
        stream: 1,
        len_code,
    };
    // 16,384 * 64 bytes = 1 MiB: the longest frame that passes whole.
    vec![
        (
            t,
            "small_frames".into(),
            encode(
                &[],
                &[
                    data(0x1, 1, 4),
                    other(1, 0x2, 500),
                    other(2, 0x1, 7),
                    data(0x4, 1, 0),
                ],
            ),
        ),
        (
            t,
            "exactly_one_mib".into(),
            encode(&[200], &[data(0x1, 3, 16_384), other(3, 0, 0)]),
        ),
        (
            t,
            "two_and_a_half_mib_with_fin".into(),
            encode(&[5, 255, 1], &[data(0x2 | 0x4, 5, 40_000), data(0, 7, 3)]),
        ),
        (
            t,
            // Found by the fuzzer: a flag the spec does not define, on a
            // frame that is split (it stays on every piece).
            "unknown_flag_on_a_long_frame".into(),
            encode(&[0, 9], &[data(0x40, 1, 0xff0c), data(0, 0, 0)]),
        ),
        (
            t,
            "long_then_garbage".into(),
            encode(
                &[0, 9],
                &[
                    data(0x1 | 0x8, 9, 16_385),
                    Frame::Raw(vec![0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]),
                    data(0, 9, 20_000),
                ],
            ),
        ),
    ]
}

fn grpc_stream() -> Vec<Seed> {
    use crate::grpc_stream::{Spec, FLAG_AUTHORIZE, FLAG_CALL_LIMIT, FLAG_SHUTDOWN};
    let t = "grpc_stream";
    let scenarios: std::collections::HashMap<String, sc::Scenario> = server_connection()
        .into_iter()
        .map(|(_, name, bytes)| (name, sc::Scenario::read(&bytes)))
        .collect();
    let of = |name: &str| scenarios[name].clone();
    let limit = |n: u8| n << 2;
    let spec = |flags: u8, streams: Vec<(usize, sc::Scenario)>| Spec { flags, streams }.encode();
    vec![
        (
            t,
            "two_peers".into(),
            spec(
                FLAG_AUTHORIZE,
                vec![(0, of("unary")), (1, of("raw_all_kinds"))],
            ),
        ),
        (
            t,
            "over_the_peer_limit".into(),
            spec(
                limit(1),
                vec![(0, of("unary")), (0, of("expand")), (1, of("collect"))],
            ),
        ),
        (
            t,
            "refused_peer".into(),
            spec(
                FLAG_AUTHORIZE | limit(2),
                vec![(3, of("unary")), (2, of("raw_unary"))],
            ),
        ),
        (
            t,
            "shutdown_during_calls".into(),
            spec(
                FLAG_SHUTDOWN,
                vec![(0, of("shutdown_during_call")), (1, of("raw_chat"))],
            ),
        ),
        (
            t,
            "call_limit_and_hostile_frames".into(),
            spec(
                FLAG_CALL_LIMIT | limit(3),
                vec![
                    (0, of("raw_all_kinds")),
                    (0, of("control_frames")),
                    (0, of("bad_requests")),
                    (0, of("bad_messages")),
                ],
            ),
        ),
    ]
}

fn client_keepalive() -> Vec<Seed> {
    use crate::client_keepalive::{Op, Scenario, ENHANCE_YOUR_CALM, TOO_MANY_PINGS};
    let t = "client_keepalive";
    let sleep = |millis| Op::Sleep { millis };
    // Timeout 1 s (bits 1-2 = 1), one call at once (bits 4-5 = 1).
    let flags = (1 << 1) | (1 << 4);
    let scenario = |flags: u8, interval: u8, ops: Vec<Op>| {
        Scenario {
            flags,
            interval,
            deadline_ms: 30_000,
            ops,
        }
        .encode()
    };
    vec![
        (
            t,
            // Pings every 2 s are answered for a while, then one is not.
            "answered_then_silent".into(),
            scenario(
                flags,
                20,
                vec![
                    Op::SettingsAck,
                    sleep(2_100),
                    Op::Pong,
                    sleep(2_050),
                    Op::Pong,
                    sleep(5_000),
                    Op::Respond,
                ],
            ),
        ),
        (
            t,
            "too_many_pings".into(),
            scenario(
                flags,
                10,
                vec![
                    Op::SettingsAck,
                    sleep(1_050),
                    Op::Pong,
                    Op::Respond,
                    Op::GoAway {
                        last: 1,
                        code: ENHANCE_YOUR_CALM,
                        debug: TOO_MANY_PINGS.to_vec(),
                    },
                    sleep(100),
                ],
            ),
        ),
        (
            t,
            "server_pings_and_calls".into(),
            scenario(
                flags | super::client_keepalive::FLAG_DEADLINE | 1,
                5,
                vec![
                    Op::SettingsAck,
                    Op::Ping(*b"ping-one"),
                    Op::Call,
                    Op::Call,
                    sleep(300),
                    Op::Fail { code: 14 },
                    Op::Reset { code: 8 },
                    Op::Ping(*b"ping-two"),
                    Op::PongWith(*b"wrong!!!"),
                    sleep(600),
                    Op::Pong,
                    Op::Respond,
                    Op::Settings(vec![(3, 1), (4, 100)]),
                    sleep(2_000),
                ],
            ),
        ),
        (
            t,
            "goaway_then_calls".into(),
            scenario(
                flags,
                50,
                vec![
                    Op::SettingsAck,
                    Op::GoAway {
                        last: 0,
                        code: 0,
                        debug: b"bye".to_vec(),
                    },
                    Op::Call,
                    sleep(10),
                    Op::Raw(vec![0, 0, 8, 6, 0, 0, 0, 0, 0]),
                ],
            ),
        ),
    ]
}

fn client_responses() -> Vec<Seed> {
    let t = "client_responses";
    let headers = |template: u8, fields_: &[(&str, &str)]| Action::Headers {
        status: 0,
        end_stream: false,
        template,
        code: 0,
        fields: fields(fields_),
    };
    let msg = |text: &str, gzip: bool| Action::Message {
        end_stream: false,
        gzip,
        text: text.as_bytes().to_vec(),
        count: 1,
    };
    let trailers = |code: u8, message: &str| Action::Trailers {
        code,
        message: message.as_bytes().to_vec(),
        fields: fields(&[("x-trailer", "t"), ("x-blob-bin", "AAEC")]),
    };
    let ok = |read_request: bool| Spec {
        read_request,
        actions: vec![
            headers(1, &[("x-echo", "hi")]),
            msg("reply", false),
            trailers(0, ""),
        ],
    };
    let stream_ok = Spec {
        read_request: true,
        actions: vec![
            headers(1, &[]),
            msg("0", false),
            msg("1", false),
            Action::Sleep { millis: 5 },
            msg("2", false),
            trailers(0, ""),
        ],
    };
    let scenario = |flags: u8, deadline_ms: u16, unary: Spec, streaming: Spec| {
        cr::Scenario {
            flags,
            deadline_ms,
            unary,
            streaming,
            raw: Vec::new(),
        }
        .encode()
    };
    let mut seeds: Vec<Seed> = vec![
        (
            t,
            "happy".into(),
            scenario(0, 0, ok(true), stream_ok.clone()),
        ),
        (
            t,
            "gzip".into(),
            scenario(
                cr::FLAG_ACCEPT_GZIP | cr::FLAG_SEND_GZIP,
                0,
                Spec {
                    read_request: true,
                    actions: vec![headers(3, &[]), msg("zipped", true), trailers(0, "")],
                },
                Spec {
                    read_request: false,
                    actions: vec![
                        headers(3, &[]),
                        msg("a", true),
                        msg("b", false),
                        trailers(13, "bad %zz"),
                    ],
                },
            ),
        ),
        (
            t,
            "trailers_only".into(),
            scenario(
                0,
                0,
                Spec {
                    read_request: false,
                    actions: vec![Action::Headers {
                        status: 0,
                        end_stream: true,
                        template: 1 | 4,
                        code: 5,
                        fields: fields(&[("grpc-message", "not%20found")]),
                    }],
                },
                Spec {
                    read_request: false,
                    actions: vec![Action::Headers {
                        status: 0,
                        end_stream: true,
                        template: 1 | 4,
                        code: 0,
                        fields: Vec::new(),
                    }],
                },
            ),
        ),
        (
            t,
            "http_errors".into(),
            scenario(
                0,
                0,
                Spec {
                    read_request: true,
                    actions: vec![Action::Headers {
                        status: 204,
                        end_stream: true,
                        template: 0,
                        code: 0,
                        fields: Vec::new(),
                    }],
                },
                Spec {
                    read_request: true,
                    actions: vec![
                        headers(0, &[("content-type", "text/html")]),
                        Action::Data {
                            end_stream: true,
                            bytes: b"<html>".to_vec(),
                        },
                    ],
                },
            ),
        ),
        (
            t,
            "bad_bodies".into(),
            scenario(
                cr::FLAG_SMALL_LIMIT,
                0,
                Spec {
                    read_request: true,
                    actions: vec![
                        headers(1, &[]),
                        Action::Data {
                            end_stream: false,
                            bytes: vec![0, 0, 0, 1, 0],
                        },
                        trailers(0, ""),
                    ],
                },
                Spec {
                    read_request: true,
                    actions: vec![
                        headers(1, &[("grpc-encoding", "br")]),
                        msg("x", true),
                        Action::Data {
                            end_stream: true,
                            bytes: vec![0, 0, 0],
                        },
                    ],
                },
            ),
        ),
        (
            t,
            "resets".into(),
            scenario(
                0,
                0,
                Spec {
                    read_request: false,
                    actions: vec![headers(1, &[]), Action::Reset { reason: 8 }],
                },
                Spec {
                    read_request: false,
                    actions: vec![Action::Reset { reason: 7 }],
                },
            ),
        ),
        (
            t,
            "goaway_and_drop".into(),
            scenario(
                0,
                0,
                Spec {
                    read_request: true,
                    actions: vec![
                        headers(1, &[]),
                        msg("m", false),
                        Action::GoAway { reason: 0 },
                        trailers(0, ""),
                    ],
                },
                Spec {
                    read_request: true,
                    actions: vec![headers(1, &[]), msg("m", false), Action::Drop],
                },
            ),
        ),
        (
            t,
            "deadlines".into(),
            scenario(
                cr::FLAG_UNARY_DEADLINE | cr::FLAG_STREAM_DEADLINE,
                50,
                Spec {
                    read_request: true,
                    actions: vec![Action::Sleep { millis: 100 }, headers(1, &[])],
                },
                Spec {
                    read_request: true,
                    actions: vec![
                        headers(1, &[]),
                        msg("early", false),
                        Action::Sleep { millis: 60 },
                        msg("late", false),
                        trailers(0, ""),
                    ],
                },
            ),
        ),
    ];
    // What our own server writes, as raw input.
    let (unary, streaming) = captured_server_bytes();
    let raw = |flags: u8, bytes: Vec<u8>| {
        cr::Scenario {
            flags: cr::FLAG_RAW | flags,
            deadline_ms: 0,
            raw: bytes,
            ..cr::Scenario::default()
        }
        .encode()
    };
    seeds.push((t, "raw_unary".into(), raw(0, unary)));
    seeds.push((
        t,
        "raw_streaming".into(),
        raw(cr::FLAG_RAW_STREAMING, streaming),
    ));
    seeds
}

/// An IO that records what is written through it.
struct Recorder {
    io: Duplex,
    written: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            self.written.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Runs `calls` with our client against our echo server, recording what
/// `side` wrote.
fn capture<F, Fut>(side: Side, calls: F) -> Vec<u8>
where
    F: FnOnce(Grpc) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let sim = Sim::new();
    let runtime = sim.runtime();
    let server = Server::builder()
        .runtime(runtime.clone())
        .add_service(crate::echo_service(runtime.clone()))
        .build()
        .unwrap();
    let (client_io, server_io) = duplex(1 << 20);
    let written = Arc::new(Mutex::new(Vec::new()));
    let record = |io: Duplex, wanted: Side| Recorder {
        io,
        written: if side == wanted {
            written.clone()
        } else {
            Arc::new(Mutex::new(Vec::new()))
        },
    };
    let client_io = record(client_io, Side::Client);
    let server_io = record(server_io, Side::Server);
    let client = async {
        let channel = ChannelBuilder::default()
            .runtime(runtime.clone())
            .connect(client_io)
            .await
            .unwrap();
        calls(Grpc::new(channel)).await;
    };
    let serve = server.serve_connection(server_io);
    sim.block_on(async { futures::join!(client, serve) })
        .expect("a capture run ends");
    let bytes = written.lock().unwrap().clone();
    bytes
}

async fn unary_call(grpc: &Grpc) {
    let mut request = Request::new(Msg::count("hello", 1));
    request.metadata_mut().insert("x-echo", "hi").unwrap();
    let reply = grpc.unary::<_, Msg>(request, echo::UNARY).await.unwrap();
    assert_eq!(reply.into_inner().text, "hello");
}

async fn expand_call(grpc: &Grpc) {
    let response = grpc
        .server_streaming::<_, Msg>(Request::new(Msg::count("", 3)), echo::EXPAND)
        .await
        .unwrap();
    let got: Vec<_> = response.into_inner().collect().await;
    assert_eq!(got.len(), 3);
}

/// What our client writes for each call kind, and for all four on one
/// connection.
fn captured_client_bytes() -> Vec<(String, Vec<u8>)> {
    let collect = |grpc: Grpc| async move {
        let messages = futures::stream::iter(vec![Msg::text("a"), Msg::count("b", 2)]);
        let reply = grpc
            .clone()
            .send_compressed(CompressionEncoding::Gzip)
            .client_streaming::<_, _, Msg>(Request::new(messages), echo::COLLECT)
            .await
            .unwrap();
        assert_eq!(reply.into_inner().text, "ab");
    };
    let chat = |grpc: Grpc| async move {
        let messages = futures::stream::iter(vec![Msg::text("x"), Msg::text("y")]);
        let replies = grpc
            .streaming::<_, _, Msg>(Request::new(messages), echo::CHAT)
            .await
            .unwrap();
        let got: Vec<_> = replies.collect().await;
        assert_eq!(got.len(), 2);
    };
    let deadline = |grpc: Grpc| async move {
        let request =
            Request::new(Msg::count("slow", 1000)).with_timeout(Duration::from_millis(10));
        let err = grpc.unary::<_, Msg>(request, echo::SLOW).await.unwrap_err();
        assert_eq!(err.code(), p2p_grpc::Code::DeadlineExceeded);
    };
    vec![
        (
            "raw_unary".into(),
            capture(Side::Client, |grpc| async move { unary_call(&grpc).await }),
        ),
        (
            "raw_expand".into(),
            capture(Side::Client, |grpc| async move { expand_call(&grpc).await }),
        ),
        ("raw_collect".into(), capture(Side::Client, collect)),
        ("raw_chat".into(), capture(Side::Client, chat)),
        ("raw_deadline".into(), capture(Side::Client, deadline)),
        (
            "raw_all_kinds".into(),
            capture(Side::Client, |grpc| async move {
                unary_call(&grpc).await;
                expand_call(&grpc).await;
                collect(grpc.clone()).await;
                chat(grpc).await;
            }),
        ),
    ]
}

/// What our server writes for a unary call, and for a server-streaming one.
fn captured_server_bytes() -> (Vec<u8>, Vec<u8>) {
    (
        capture(Side::Server, |grpc| async move { unary_call(&grpc).await }),
        capture(Side::Server, |grpc| async move { expand_call(&grpc).await }),
    )
}

/// The directory of a target's seeds.
pub fn dir(target: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target)
}

#[allow(dead_code)]
fn _assert_message_trait(m: &Msg) -> usize {
    m.encoded_len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regenerates `fuzz/seeds/`: `cargo test -- --ignored write_seeds`.
    #[test]
    #[ignore]
    fn write_seeds() {
        for (target, _) in crate::TARGETS {
            let dir = dir(target);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
        }
        for (target, name, bytes) in all() {
            std::fs::write(dir(target).join(name), bytes).unwrap();
        }
    }

    /// Every committed seed runs through its target without failing.
    #[test]
    fn every_seed_passes() {
        let mut count = 0;
        for (target, run) in crate::TARGETS {
            // Every target has committed seeds: a missing folder is a
            // failure, not a target with nothing to check.
            let entries = std::fs::read_dir(dir(target))
                .unwrap_or_else(|err| panic!("no seed folder for {target}: {err}"));
            let mut of_target = 0;
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                eprintln!("{}", path.display());
                run(&data);
                of_target += 1;
            }
            assert!(of_target > 0, "the seed folder of {target} is empty");
            count += of_target;
        }
        eprintln!("{count} seeds passed");
    }

    /// The generated seeds pass too (and reach what they are meant to).
    #[test]
    fn generated_seeds_pass() {
        for (target, name, data) in all() {
            let run = crate::TARGETS.iter().find(|(t, _)| *t == target).unwrap().1;
            eprintln!("{target}/{name}");
            run(&data);
        }
    }
}

#[cfg(test)]
mod goals {
    use super::*;

    fn seed(target: &str, name: &str) -> Vec<u8> {
        all()
            .into_iter()
            .find(|(t, n, _)| *t == target && n == name)
            .unwrap()
            .2
    }

    /// The libp2p layer's seeds: the per-peer limit refuses exactly the
    /// streams over it, the hook sees the peers it should.
    #[test]
    fn grpc_stream_seeds_give_their_outcomes() {
        use crate::grpc_stream::{execute, peers, Spec};
        let run = |name: &str| execute(&Spec::read(&seed("grpc_stream", name)));
        let peers = peers();
        let two = run("two_peers");
        assert_eq!(two.refused, [false, false]);
        assert!(two.authorized.contains(&peers[0]), "{two:?}");
        assert!(two.authorized.contains(&peers[1]), "{two:?}");
        let limited = run("over_the_peer_limit");
        assert_eq!(limited.refused, [false, true, false]);
        let refused = run("refused_peer");
        assert_eq!(refused.refused, [false, false]);
        assert!(refused.authorized.contains(&peers[3]), "{refused:?}");
        let shutdown = run("shutdown_during_calls");
        assert_eq!(shutdown.refused, [false, false]);
        let four = run("call_limit_and_hostile_frames");
        assert_eq!(four.refused, [false, false, false, true]);
    }

    /// The keepalive seeds: answered PINGs keep the connection, the first
    /// unanswered one ends it at the timeout, `too_many_pings` doubles the
    /// interval.
    #[test]
    fn client_keepalive_seeds_give_their_outcomes() {
        use crate::client_keepalive::{execute, Scenario};
        use std::time::Duration;
        let run = |name: &str| execute(&Scenario::read(&seed("client_keepalive", name)));
        let secs = Duration::from_secs;
        let silent = run("answered_then_silent");
        // The interval runs from each PONG: 2 s, 2.1 + 2 s, 4.15 + 2 s; the
        // third is not answered and the connection ends 1 s later.
        let ms = Duration::from_millis;
        assert_eq!(silent.pings, [secs(2), ms(4_100), ms(6_150)]);
        assert_eq!(silent.eof, Some(ms(7_150)), "{silent:?}");
        assert_eq!(silent.calls, [Err(p2p_grpc::Code::Unavailable)]);
        let calm = run("too_many_pings");
        assert_eq!(calm.pings, [secs(1)]);
        assert_eq!(calm.calls, [Ok(())]);
        assert_eq!(calm.interval_after, Some(secs(2)));
        let busy = run("server_pings_and_calls");
        assert!(busy.calls.iter().any(|r| r.is_ok()), "{busy:?}");
        assert!(
            busy.calls.contains(&Err(p2p_grpc::Code::Unavailable)),
            "{busy:?}"
        );
        let away = run("goaway_then_calls");
        assert_eq!(away.calls.len(), 2, "{away:?}");
        assert!(away.calls.iter().all(|r| r.is_err()), "{away:?}");
    }

    fn server(name: &str) -> sc::Outcome {
        sc::execute(&sc::Scenario::read(&seed("server_connection", name)))
    }

    fn client(name: &str) -> cr::Outcome {
        cr::execute(&cr::Scenario::read(&seed("client_responses", name)))
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// The server seeds reach the handlers: the echoed text comes back.
    #[test]
    fn server_seeds_reach_the_service() {
        for (name, echoed) in [
            ("unary", &b"hello"[..]),
            ("raw_unary", b"hello"),
            ("collect", b"abc"),
            ("chat_and_reset", b"three"),
            ("peer_authorize", b"ok"),
            ("control_frames", b"continued"),
            ("raw_all_kinds", b"ab"),
        ] {
            let outcome = server(name);
            assert!(outcome.tasks_spawned >= 1, "{name}: {outcome:?}");
            assert!(
                contains(&outcome.output, echoed),
                "{name}: no {echoed:?} in the output"
            );
        }
        assert_eq!(
            server("slow_deadline").virtual_time,
            Duration::from_millis(20)
        );
        assert!(server("control_frames").virtual_time >= Duration::from_millis(1500));
    }

    /// The client seeds give the outcomes they were written for.
    #[test]
    fn client_seeds_give_their_outcomes() {
        let happy = client("happy");
        assert_eq!(happy.unary.unwrap().unwrap().text, "reply");
        assert_eq!(happy.streamed.len(), 3);
        assert_eq!(happy.stream_end, Some(Ok(())));

        let gzip = client("gzip");
        assert_eq!(gzip.unary.unwrap().unwrap().text, "zipped");
        assert_eq!(gzip.streamed.len(), 2);
        assert_eq!(
            gzip.stream_end.unwrap().unwrap_err().0,
            p2p_grpc::Code::Internal
        );

        let trailers_only = client("trailers_only");
        assert_eq!(
            trailers_only.unary.unwrap().unwrap_err(),
            (p2p_grpc::Code::NotFound, "not found".to_owned())
        );

        let deadlines = client("deadlines");
        assert_eq!(
            deadlines.unary.unwrap().unwrap_err().0,
            p2p_grpc::Code::DeadlineExceeded
        );
        assert_eq!(deadlines.streamed.len(), 1);
        assert_eq!(
            deadlines.stream_end.unwrap().unwrap_err().0,
            p2p_grpc::Code::DeadlineExceeded
        );

        assert_eq!(client("raw_unary").unary.unwrap().unwrap().text, "hello");
        assert_eq!(client("raw_streaming").streamed.len(), 3);
    }
}
