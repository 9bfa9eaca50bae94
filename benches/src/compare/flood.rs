//! Fairness under a frame flood, beside tonic: a legitimate client's
//! latency while another connection floods the server with PING or
//! SETTINGS frames and reads the ACKs (so the server never stops reading);
//! a flooding connection the server closes is replaced at once.
//!
//! `cargo bench -p p2p-grpc-bench --bench compare -- --flood [--rounds N]`
//!
//! The server runs in a child process pinned to CPU 0 (p2p-grpc on one
//! smol thread, tonic on a current-thread tokio runtime). The legitimate
//! client is `h2load` (one connection, one call at a time, 64-byte
//! `UnaryCall`s for [`SECONDS`] s, each call's latency from its
//! `--log-file`); the flooder is this binary again (`--flood-child ADDR
//! KIND`), both pinned to CPU 1, the flooder under `SCHED_IDLE` (`chrt
//! --idle`: it runs only while the client waits, so it cannot delay the
//! client's own wake-ups; at `nice 10` a flooder that reconnects thousands
//! of times a second did, by milliseconds). Each round measures the client unloaded, then
//! under the flood, against a fresh server; rounds alternate the stacks
//! (ABBA). Reported: p50 and p99 latency and calls completed, unloaded and
//! flooded, their ratio, and the bound issue 15 sets: flooded p99 within
//! 5 × unloaded p99.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use p2p_grpc_bench::pb;
use p2p_grpc_test_support::frames;

use crate::h2load::{frame, median, start, Server, ONE_CORE};
use crate::stacks::Result;

/// Seconds of calls per measurement.
const SECONDS: &str = "5";

/// PING frames written per batch by the flooder.
const BATCH: usize = 256;

/// What one measurement saw.
#[derive(Clone, Copy, Debug)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
    calls: usize,
    /// The server's CPU time over the measurement, in seconds.
    server_cpu: f64,
    /// Units of the flood the server took ([`Flood::unit`]; 0 unloaded).
    units: u64,
    /// Connections the flooder opened (0 unloaded).
    connections: u64,
}

/// CPU time (user + system) of process `pid` so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14,
    // stime 15 (clock ticks, 100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

/// Runs h2load as the legitimate client and reads its per-call latencies.
fn measure(addr: &str, pid: u32, body: &std::path::Path, log: &std::path::Path) -> Result<Latency> {
    // h2load appends to its log: start each measurement with a new one.
    let _ = std::fs::remove_file(log);
    let cpu_before = cpu_seconds(pid);
    let output = Command::new("taskset")
        .args(["-c", "1", "h2load", "-c", "1", "-m", "1", "-D", SECONDS])
        .arg("-d")
        .arg(body)
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .arg("--log-file")
        .arg(log)
        .arg(format!("http://{addr}/bench.Bench/Unary"))
        .output()
        .map_err(|err| format!("cannot run h2load (nghttp2-client): {err}"))?;
    let server_cpu = cpu_seconds(pid) - cpu_before;
    if !output.status.success() {
        return Err(format!("h2load failed: {}", String::from_utf8_lossy(&output.stdout)).into());
    }
    // Each line: start time (µs since the epoch), HTTP status, duration (µs).
    let text = std::fs::read_to_string(log)?;
    let mut durations = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < 3 {
            continue;
        }
        if fields[1] != "200" {
            return Err(format!("a call ended with HTTP {}", fields[1]).into());
        }
        durations.push(fields[2].trim().parse::<f64>()?);
    }
    if durations.is_empty() {
        return Err("h2load logged no call".into());
    }
    durations.sort_by(f64::total_cmp);
    let at = |q: f64| durations[((durations.len() - 1) as f64 * q).round() as usize];
    Ok(Latency {
        p50_us: at(0.50),
        p99_us: at(0.99),
        calls: durations.len(),
        server_cpu,
        units: 0,
        connections: 0,
    })
}

/// What the flooder writes: PING frames (the server must ACK each, unless
/// a ping policy cuts the connection off), empty SETTINGS frames (always
/// ACKed), requests reset as soon as they are sent (HEADERS then
/// RST_STREAM, the "rapid reset" of CVE-2023-44487), an endless header
/// block (HEADERS without END_HEADERS, then CONTINUATION frames), or a
/// connection error (a DATA frame on stream 0) on each new connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flood {
    Ping,
    Settings,
    Reset,
    Continuation,
    ConnectionError,
}

impl Flood {
    const ALL: [Flood; 5] = [
        Flood::Ping,
        Flood::Settings,
        Flood::Reset,
        Flood::Continuation,
        Flood::ConnectionError,
    ];

    fn id(self) -> &'static str {
        match self {
            Flood::Ping => "ping",
            Flood::Settings => "settings",
            Flood::Reset => "reset",
            Flood::Continuation => "continuation",
            Flood::ConnectionError => "connection-error",
        }
    }

    fn from_id(id: &str) -> Option<Flood> {
        Flood::ALL.into_iter().find(|f| f.id() == id)
    }

    /// The frame type whose ACKs count, for the floods the server answers.
    fn acked(self) -> Option<u8> {
        match self {
            Flood::Ping => Some(frames::PING),
            Flood::Settings => Some(frames::SETTINGS),
            _ => None,
        }
    }

    /// What one unit of the flood is, for the table.
    fn unit(self) -> &'static str {
        match self {
            Flood::Ping | Flood::Settings => "frames ACKed",
            Flood::Reset => "streams reset",
            Flood::Continuation => "CONTINUATIONs written",
            Flood::ConnectionError => "connections",
        }
    }

    /// What a new connection starts with, after the preface and SETTINGS.
    fn opening(self) -> Vec<u8> {
        let mut out = Vec::new();
        if self == Flood::Continuation {
            let block = frames::request_block("/bench.Bench/Unary");
            frames::frame(&mut out, frames::HEADERS, 0, 1, &block);
        }
        out
    }

    /// [`BATCH`] units of the flood; `stream` is the connection's next
    /// client stream id.
    fn batch(self, stream: &mut u32) -> Vec<u8> {
        let mut out = Vec::new();
        let block = frames::request_block("/bench.Bench/Unary");
        for i in 0..BATCH as u64 {
            match self {
                Flood::Ping => frames::frame(&mut out, frames::PING, 0, 0, &i.to_be_bytes()),
                Flood::Settings => frames::frame(&mut out, frames::SETTINGS, 0, 0, &[]),
                Flood::Reset => {
                    frames::frame(
                        &mut out,
                        frames::HEADERS,
                        frames::END_HEADERS,
                        *stream,
                        &block,
                    );
                    frames::frame(
                        &mut out,
                        frames::RST_STREAM,
                        0,
                        *stream,
                        &8u32.to_be_bytes(),
                    );
                    *stream += 2;
                }
                Flood::Continuation => {
                    // One header field, `x-a: 0123456789`, per frame.
                    let field = [&[0u8, 3][..], b"x-a", &[10], b"0123456789"].concat();
                    frames::frame(&mut out, frames::CONTINUATION, 0, 1, &field);
                }
                Flood::ConnectionError => {
                    frames::frame(&mut out, frames::DATA, 0, 0, &[0; 8]);
                }
            }
        }
        out
    }
}

/// Reads frames until the connection ends, counting the ACKs of `kind`.
fn count_acks(mut reader: TcpStream, kind: Option<u8>, acks: &AtomicU64) {
    let mut header = [0u8; 9];
    let mut payload = vec![0u8; 64 * 1024];
    while reader.read_exact(&mut header).is_ok() {
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut left = len;
        while left > 0 {
            let n = left.min(payload.len());
            if reader.read_exact(&mut payload[..n]).is_err() {
                return;
            }
            left -= n;
        }
        if Some(header[3]) == kind && header[4] & 0x1 != 0 {
            acks.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The flooder (`--flood-child ADDR KIND`): HTTP/2 connections that write
/// frames of `KIND` as fast as they can and read everything the server
/// sends, until its stdin closes; a connection the server closes (a ping
/// policy's GOAWAY) is replaced at once, as a determined attacker would.
/// Prints the ACKs read and the connections opened.
pub fn child(addr: &str, kind: &str) {
    let flood = Flood::from_id(kind).expect("a known flood kind");
    let acks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        stopped.store(true, Ordering::SeqCst);
    });
    let mut connections = 0u64;
    let mut written = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut socket) = TcpStream::connect(addr) else {
            break;
        };
        connections += 1;
        socket.set_nodelay(true).unwrap();
        let reader = socket.try_clone().unwrap();
        let counted = acks.clone();
        std::thread::spawn(move || count_acks(reader, flood.acked(), &counted));
        let mut start = frames::PREFACE.to_vec();
        frames::frame(&mut start, frames::SETTINGS, 0, 0, &[]);
        start.extend(flood.opening());
        if socket.write_all(&start).is_err() {
            continue;
        }
        let mut stream = 1;
        while !stop.load(Ordering::SeqCst) {
            if socket.write_all(&flood.batch(&mut stream)).is_err() {
                break;
            }
            written += BATCH as u64;
            if flood == Flood::ConnectionError {
                // One error per connection: wait for the server to close it.
                let _ = socket.shutdown(std::net::Shutdown::Write);
                let _ = socket.read_to_end(&mut Vec::new());
                break;
            }
        }
    }
    // Let the readers take what is in flight.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let units = match flood {
        Flood::Ping | Flood::Settings => acks.load(Ordering::Relaxed),
        Flood::ConnectionError => connections,
        Flood::Reset | Flood::Continuation => written,
    };
    println!("UNITS {units} CONNECTIONS {connections}");
}

/// One round for one server: unloaded, then flooded with `flood`.
fn round(
    server: Server,
    flood: Flood,
    body: &std::path::Path,
    dir: &std::path::Path,
) -> Result<(Latency, Latency)> {
    let (mut child, addr) = start(server)?;
    let pid = child.id();
    let unloaded = measure(&addr, pid, body, &dir.join("unloaded.log"));
    let flooded = unloaded.as_ref().ok().map(|_| -> Result<Latency> {
        let exe = std::env::current_exe()?;
        // The flooder shares CPU 1 with the legitimate client, and runs only
        // when the client does not want the CPU.
        let mut flooder = Command::new("taskset")
            .args(["-c", "1", "chrt", "--idle", "0"])
            .arg(exe)
            .args(["--flood-child", &addr, flood.id()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let flooded = measure(&addr, pid, body, &dir.join("flooded.log"));
        drop(flooder.stdin.take());
        let mut report = String::new();
        if let Some(mut out) = flooder.stdout.take() {
            let _ = out.read_to_string(&mut report);
        }
        let _ = flooder.wait();
        let field = |name: &str| -> u64 {
            let mut words = report.split_whitespace();
            words
                .position(|w| w == name)
                .and_then(|_| words.next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let mut flooded = flooded?;
        flooded.units = field("UNITS");
        flooded.connections = field("CONNECTIONS");
        Ok(flooded)
    });
    drop(child.stdin.take());
    let _ = child.wait();
    let unloaded = unloaded?;
    let flooded = flooded.ok_or("no flooded run")??;
    Ok((unloaded, flooded))
}

/// Runs the comparison and prints a markdown table.
pub fn run(rounds: usize) -> Result<()> {
    let servers = ONE_CORE;
    let dir = std::env::temp_dir().join(format!("p2p-grpc-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let body = frame(&pb::Payload {
        payload: vec![0x5a; 64].into(),
    });
    let path = dir.join("body");
    std::fs::File::create(&path)?.write_all(&body)?;
    println!(
        "| flood | server | unloaded p50 / p99 (µs) | calls in {SECONDS} s | flooded p50 / p99 (µs) | calls in {SECONDS} s | flooded p99 ÷ unloaded p99 | within 5 × | flood units | flooder connections | server CPU per unit (ns) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|");
    let mut summary = Vec::new();
    for flood in Flood::ALL {
        let mut results: Vec<Vec<(Latency, Latency)>> = vec![Vec::new(), Vec::new()];
        for r in 0..rounds {
            let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                results[i].push(round(servers[i].1, flood, &path, &dir)?);
            }
        }
        let mut flooded_p99 = Vec::new();
        for (i, (name, _)) in servers.iter().enumerate() {
            let pick = |f: &dyn Fn(&(Latency, Latency)) -> f64| {
                let mut v: Vec<f64> = results[i].iter().map(f).collect();
                median(&mut v)
            };
            let (u50, u99, uc) = (
                pick(&|r| r.0.p50_us),
                pick(&|r| r.0.p99_us),
                pick(&|r| r.0.calls as f64),
            );
            let (f50, f99, fc) = (
                pick(&|r| r.1.p50_us),
                pick(&|r| r.1.p99_us),
                pick(&|r| r.1.calls as f64),
            );
            let ratio = pick(&|r| r.1.p99_us / r.0.p99_us);
            let units = pick(&|r| r.1.units as f64);
            let connections = pick(&|r| r.1.connections as f64);
            // The flood's share of the server's CPU: all of it, less what
            // the legitimate calls served meanwhile cost at the unloaded
            // rate, per frame the server answered.
            let ns = if units == 0.0 {
                "—".to_owned()
            } else {
                format!(
                    "{:.0}",
                    pick(&|r| {
                        let per_call = r.0.server_cpu / r.0.calls.max(1) as f64;
                        let flood = (r.1.server_cpu - per_call * r.1.calls as f64).max(0.0);
                        flood / r.1.units.max(1) as f64 * 1e9
                    })
                )
            };
            flooded_p99.push(f99);
            println!(
                "| {} | {name} | {u50:.0} / {u99:.0} | {uc:.0} | {f50:.0} / {f99:.0} | {fc:.0} | {ratio:.1} | {} | {units:.0} {} | {connections:.0} | {ns} |",
                flood.id(),
                if ratio <= 5.0 { "yes" } else { "no" },
                flood.unit()
            );
        }
        summary.push((flood, flooded_p99[0] / flooded_p99[1]));
    }
    for (flood, ratio) in summary {
        println!(
            "{} flood: flooded p99, p2p-grpc ÷ tonic: {ratio:.2}",
            flood.id()
        );
    }
    println!("(medians of {rounds} rounds, a fresh server each)");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
