//! Target `client_keepalive`: the client's keepalive and GOAWAY paths, over
//! the in-memory pipe on the deterministic [`Sim`] executor, against a
//! scripted server that reads the client's frames and answers (or does not
//! answer) its PINGs, sends PINGs and GOAWAYs of its own, answers calls,
//! resets them, lets virtual time pass and hangs up.
//!
//! Checked:
//! - no panic, and every call and every task ends (no hang);
//! - the client never sends two PINGs closer than its keepalive interval;
//! - a PING left unanswered for the keepalive timeout ends the connection
//!   by then: the server reads the end of the stream no later;
//! - every PING the server sends is acknowledged with its payload while the
//!   connection lives (h2's duty, checked from outside; not with raw bytes,
//!   which may hold PINGs of their own);
//! - the interval a `too_many_pings` GOAWAY leaves behind is the configured
//!   one doubled at most once per such GOAWAY;
//! - no more calls succeed than the server answered with `grpc-status: 0`,
//!   and a failed call never carries `OK`.
//!
//! Input layout (see [`Input`]):
//! - `u8` flags: bit 0 ping while idle; bits 1-2 the timeout (100 ms,
//!   1 s, 5 s, 30 s); bit 3 calls have a deadline; bits 4-5 calls started
//!   at once (0 to 3);
//! - `u8` interval in units of 100 ms (at least 100 ms);
//! - `u16` call deadline in virtual milliseconds (with bit 3);
//! - then [`Op`]s, each an opcode byte (modulo 12) and its arguments; the
//!   sleeps add up to [`MAX_SLEEP`] at most.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::stream::FuturesUnordered;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use p2p_grpc::client::{ChannelBuilder, Grpc};
use p2p_grpc::{Code, Request};
use prost::Message as _;

use crate::echo::{Msg, UNARY};
use crate::frames::{self, ACK, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING};
use crate::input::{Input, Output};
use crate::sim::Sim;

pub const FLAG_WHILE_IDLE: u8 = 1;
pub const FLAG_DEADLINE: u8 = 8;

/// The most virtual time a scenario's sleeps add up to.
pub const MAX_SLEEP: Duration = Duration::from_secs(120);

/// HTTP/2 `ENHANCE_YOUR_CALM`.
pub const ENHANCE_YOUR_CALM: u32 = 0xb;
/// The GOAWAY debug data of a server that was pinged too often.
pub const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// One step of the scripted server.
#[derive(Debug, Clone)]
pub enum Op {
    /// 0: SETTINGS ACK.
    SettingsAck,
    /// 1: PING ACK with the payload of the client's latest PING.
    Pong,
    /// 2: PING ACK with this payload (unsolicited, or wrong).
    PongWith([u8; 8]),
    /// 3: a PING the client must acknowledge.
    Ping([u8; 8]),
    /// 4: GOAWAY; `last` 0: stream 0, 1: the client's latest stream,
    /// else `last` itself.
    GoAway {
        last: u32,
        code: u32,
        debug: Vec<u8>,
    },
    /// 5: a whole `grpc-status: 0` response to the oldest unanswered call.
    Respond,
    /// 6: a response to the oldest unanswered call with this status code
    /// and no message (trailers only).
    Fail { code: u8 },
    /// 7: RST_STREAM of the oldest unanswered call.
    Reset { code: u32 },
    /// 8: let virtual time pass.
    Sleep { millis: u16 },
    /// 9: the client starts one more call.
    Call,
    /// 10: these bytes as they are.
    Raw(Vec<u8>),
    /// 11: SETTINGS with these values.
    Settings(Vec<(u16, u32)>),
}

impl Op {
    fn read(input: &mut Input<'_>) -> Op {
        let eight = |input: &mut Input<'_>| {
            let mut data = [0u8; 8];
            data.copy_from_slice(&{
                let mut v = input.take(8).to_vec();
                v.resize(8, 0);
                v
            });
            data
        };
        match input.u8() % 12 {
            0 => Op::SettingsAck,
            1 => Op::Pong,
            2 => Op::PongWith(eight(input)),
            3 => Op::Ping(eight(input)),
            4 => Op::GoAway {
                last: input.u32(),
                code: input.u32(),
                debug: input.bytes8().to_vec(),
            },
            5 => Op::Respond,
            6 => Op::Fail { code: input.u8() },
            7 => Op::Reset { code: input.u32() },
            8 => Op::Sleep {
                millis: input.u16(),
            },
            9 => Op::Call,
            10 => Op::Raw(input.bytes8().to_vec()),
            _ => {
                let count = input.u8() % 8;
                Op::Settings((0..count).map(|_| (input.u16(), input.u32())).collect())
            }
        }
    }

    fn write(&self, out: &mut Output) {
        match self {
            Op::SettingsAck => out.u8(0),
            Op::Pong => out.u8(1),
            Op::PongWith(data) => out.u8(2).raw(data),
            Op::Ping(data) => out.u8(3).raw(data),
            Op::GoAway { last, code, debug } => out.u8(4).u32(*last).u32(*code).bytes8(debug),
            Op::Respond => out.u8(5),
            Op::Fail { code } => out.u8(6).u8(*code),
            Op::Reset { code } => out.u8(7).u32(*code),
            Op::Sleep { millis } => out.u8(8).u16(*millis),
            Op::Call => out.u8(9),
            Op::Raw(bytes) => out.u8(10).bytes8(bytes),
            Op::Settings(values) => {
                out.u8(11).u8(values.len() as u8);
                for (id, value) in values {
                    out.u16(*id).u32(*value);
                }
                out
            }
        };
    }
}

/// One input.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub flags: u8,
    /// In units of 100 ms.
    pub interval: u8,
    pub deadline_ms: u16,
    pub ops: Vec<Op>,
}

impl Scenario {
    pub fn read(data: &[u8]) -> Scenario {
        let mut input = Input::new(data);
        let flags = input.u8();
        let interval = input.u8();
        let deadline_ms = input.u16();
        let mut ops = Vec::new();
        while !input.is_empty() {
            ops.push(Op::read(&mut input));
        }
        Scenario {
            flags,
            interval,
            deadline_ms,
            ops,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Output::new();
        out.u8(self.flags).u8(self.interval).u16(self.deadline_ms);
        for op in &self.ops {
            op.write(&mut out);
        }
        out.finish()
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(100 * u64::from(self.interval.max(1)))
    }

    pub fn timeout(&self) -> Duration {
        [100, 1_000, 5_000, 30_000]
            .map(Duration::from_millis)
            .get(usize::from((self.flags >> 1) & 3))
            .copied()
            .unwrap()
    }
}

/// What the server read from the client, as it happened.
#[derive(Debug, Default)]
struct Seen {
    /// Virtual times of the client's PINGs, with their payloads.
    pings: Vec<(Duration, [u8; 8])>,
    /// Virtual times the server acknowledged each client PING.
    pongs: Vec<(Duration, [u8; 8])>,
    /// Payloads of the client's PING ACKs.
    acks: Vec<[u8; 8]>,
    /// Streams the client opened, in order, and whether answered.
    streams: Vec<(u32, bool)>,
    /// When the client's side ended.
    eof: Option<Duration>,
}

/// What a run observed (for tests and seed checks).
#[derive(Debug)]
pub struct Outcome {
    /// Virtual times of the client's PINGs.
    pub pings: Vec<Duration>,
    /// When the client's side of the connection ended.
    pub eof: Option<Duration>,
    /// Each call's result: `Ok` or the status code.
    pub calls: Vec<Result<(), Code>>,
    /// The channel's keepalive interval afterwards.
    pub interval_after: Option<Duration>,
}

fn oldest_open(seen: &RefCell<Seen>) -> Option<u32> {
    let mut seen = seen.borrow_mut();
    let open = seen.streams.iter_mut().find(|(_, answered)| !answered)?;
    open.1 = true;
    Some(open.0)
}

/// Reads the client's frames into `seen` until the stream ends.
async fn read_client(
    mut reader: futures::io::ReadHalf<p2p_grpc::io::Duplex>,
    seen: Rc<RefCell<Seen>>,
    sim: Sim,
) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut preface_left = frames::PREFACE.len();
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let skip = preface_left.min(buf.len());
        buf.drain(..skip);
        preface_left -= skip;
        while buf.len() >= 9 {
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload = &buf[9..9 + len];
            let mut seen = seen.borrow_mut();
            match kind {
                PING if len == 8 => {
                    let data: [u8; 8] = payload.try_into().unwrap();
                    if flags & ACK != 0 {
                        seen.acks.push(data);
                    } else {
                        seen.pings.push((sim.now(), data));
                    }
                }
                HEADERS if !seen.streams.iter().any(|(s, _)| *s == stream) => {
                    seen.streams.push((stream, false));
                }
                _ => {}
            }
            drop(seen);
            buf.drain(..9 + len);
        }
    }
    seen.borrow_mut().eof = Some(sim.now());
}

/// Runs one scenario; panics when a check fails.
pub fn execute(scenario: &Scenario) -> Outcome {
    let sim = Sim::new();
    let runtime = sim.runtime();
    let (client_io, server_io) = p2p_grpc::io::duplex(1 << 20);
    let (server_reader, mut server_writer) = server_io.split();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let (calls_tx, mut calls_rx) = mpsc::unbounded::<()>();
    let interval = scenario.interval();
    let timeout = scenario.timeout();
    for _ in 0..(scenario.flags >> 4) & 3 {
        let _ = calls_tx.unbounded_send(());
    }

    let builder = ChannelBuilder::default()
        .runtime(runtime.clone())
        .keepalive(interval, timeout)
        .keepalive_while_idle(scenario.flags & FLAG_WHILE_IDLE != 0)
        .keepalive_floor_for_tests(Duration::ZERO);
    let mut answered_ok = 0usize;
    let mut too_many_pings = 0u32;
    let mut sleep_left = MAX_SLEEP;

    let server = async {
        let mut preface = Vec::new();
        frames::settings(&mut preface, &[]);
        let _ = server_writer.write_all(&preface).await;
        for op in &scenario.ops {
            let mut out = Vec::new();
            match op {
                Op::SettingsAck => frames::frame(&mut out, frames::SETTINGS, ACK, 0, &[]),
                Op::Pong => {
                    let last = seen.borrow().pings.last().map(|(_, data)| *data);
                    if let Some(data) = last {
                        frames::frame(&mut out, PING, ACK, 0, &data);
                        seen.borrow_mut().pongs.push((sim.now(), data));
                    }
                }
                Op::PongWith(data) => {
                    frames::frame(&mut out, PING, ACK, 0, data);
                    if seen.borrow().pings.iter().any(|(_, d)| d == data) {
                        seen.borrow_mut().pongs.push((sim.now(), *data));
                    }
                }
                Op::Ping(data) => frames::frame(&mut out, PING, 0, 0, data),
                Op::GoAway { last, code, debug } => {
                    let last = match last {
                        0 => 0,
                        1 => seen.borrow().streams.last().map_or(0, |(s, _)| *s),
                        n => *n,
                    };
                    let mut payload = (last & 0x7fff_ffff).to_be_bytes().to_vec();
                    payload.extend_from_slice(&code.to_be_bytes());
                    payload.extend_from_slice(debug);
                    frames::frame(&mut out, GOAWAY, 0, 0, &payload);
                    if *code == ENHANCE_YOUR_CALM && debug.as_slice() == TOO_MANY_PINGS {
                        too_many_pings += 1;
                    }
                }
                Op::Respond | Op::Fail { .. } => {
                    let Some(stream) = oldest_open(&seen) else {
                        continue;
                    };
                    let code = match op {
                        Op::Fail { code } => code.to_string(),
                        _ => "0".to_owned(),
                    };
                    let headers = frames::header_block(&[
                        (b":status", b"200"),
                        (b"content-type", b"application/grpc"),
                    ]);
                    frames::frame(&mut out, HEADERS, END_HEADERS, stream, &headers);
                    if code == "0" {
                        let reply = Msg::text("pong").encode_to_vec();
                        let body = frames::grpc_message(false, &reply);
                        frames::frame(&mut out, frames::DATA, 0, stream, &body);
                        answered_ok += 1;
                    }
                    let trailers = frames::header_block(&[(b"grpc-status", code.as_bytes())]);
                    frames::frame(
                        &mut out,
                        HEADERS,
                        END_HEADERS | END_STREAM,
                        stream,
                        &trailers,
                    );
                }
                Op::Reset { code } => {
                    let Some(stream) = oldest_open(&seen) else {
                        continue;
                    };
                    frames::frame(&mut out, frames::RST_STREAM, 0, stream, &code.to_be_bytes());
                }
                Op::Sleep { millis } => {
                    // At most MAX_SLEEP in all: a 100 ms keepalive over
                    // hours of virtual time would be millions of timers.
                    let sleep = Duration::from_millis(u64::from(*millis)).min(sleep_left);
                    sleep_left -= sleep;
                    runtime.sleep(sleep).await;
                }
                Op::Call => {
                    let _ = calls_tx.unbounded_send(());
                }
                Op::Raw(bytes) => out.extend_from_slice(bytes),
                Op::Settings(values) => frames::settings(&mut out, values),
            }
            if !out.is_empty() && server_writer.write_all(&out).await.is_err() {
                break;
            }
        }
        // Hang up: the client sees the end of the stream.
        calls_tx.close_channel();
        runtime.sleep(Duration::ZERO).await;
        let _ = server_writer.close().await;
        drop(server_writer);
    };
    let read = read_client(server_reader, seen.clone(), sim.clone());
    let client = async {
        let channel = match builder.connect(client_io).await {
            Ok(channel) => channel,
            Err(_) => return (Vec::new(), None),
        };
        let grpc = Grpc::new(channel.clone());
        let mut running = FuturesUnordered::new();
        let mut results = Vec::new();
        let mut commands_open = true;
        loop {
            futures::select! {
                command = calls_rx.next() => match command {
                    Some(()) => {
                        let grpc = grpc.clone();
                        let mut request = Request::new(Msg::text("ping"));
                        if scenario.flags & FLAG_DEADLINE != 0 {
                            request.set_timeout(Duration::from_millis(
                                u64::from(scenario.deadline_ms.max(1)),
                            ));
                        }
                        running.push(async move { grpc.unary::<Msg, Msg>(request, UNARY).await });
                    }
                    None => commands_open = false,
                },
                result = running.select_next_some() => {
                    results.push(match result {
                        Ok(_) => Ok(()),
                        Err(status) => {
                            assert_ne!(status.code(), Code::Ok, "{status:?}");
                            Err(status.code())
                        }
                    });
                }
                complete => break,
            }
            if !commands_open && running.is_empty() {
                break;
            }
        }
        (results, channel.keepalive_interval())
    };
    let finished = sim
        .block_on(async { futures::join!(server, read, client) })
        .unwrap_or_else(|err| panic!("the client did not end: {err:?}"));
    let ((), (), (calls, interval_after)) = finished.output;
    let seen = seen.borrow();

    // PINGs never closer than the interval (backing off only widens it).
    for pair in seen.pings.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= interval,
            "PINGs at {:?} and {:?}, interval {interval:?}",
            pair[0].0,
            pair[1].0
        );
    }
    // A PING unanswered for the timeout ends the connection by then.
    for (at, data) in &seen.pings {
        // (h2 gives every PING the same payload: an answer is a PONG sent
        // between the PING and its timeout.)
        let answered = seen
            .pongs
            .iter()
            .any(|(when, d)| d == data && *at <= *when && *when <= *at + timeout);
        if !answered {
            let eof = seen.eof.expect("the client's side ended");
            assert!(
                eof <= *at + timeout,
                "PING at {at:?} unanswered, timeout {timeout:?}, connection open until {eof:?}"
            );
        }
    }
    // Every PING of the server is acknowledged while the connection lives:
    // the acks are the server's pings, in order, a prefix of them (raw
    // bytes may hold PINGs of their own: then this is not checked).
    let raw = scenario.ops.iter().any(|op| matches!(op, Op::Raw(_)));
    let sent: Vec<[u8; 8]> = scenario
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Ping(data) => Some(*data),
            _ => None,
        })
        .collect();
    assert!(
        raw || sent.starts_with(&seen.acks),
        "acks {:?} of pings {sent:?}",
        seen.acks
    );
    // Backing off: doubled at most once per too_many_pings GOAWAY.
    if let Some(after) = interval_after {
        let doublings =
            (0..=too_many_pings).find(|&k| interval.saturating_mul(1 << k.min(31)) == after);
        assert!(
            doublings.is_some(),
            "interval {after:?} from {interval:?} after {too_many_pings} GOAWAYs"
        );
    }
    let succeeded = calls.iter().filter(|r| r.is_ok()).count();
    assert!(
        succeeded <= answered_ok,
        "{succeeded} calls succeeded, {answered_ok} answered"
    );
    Outcome {
        pings: seen.pings.iter().map(|(at, _)| *at).collect(),
        eof: seen.eof,
        calls,
        interval_after,
    }
}

pub fn run(data: &[u8]) {
    execute(&Scenario::read(data));
}
