//! Memory under zero-window readers, beside tonic: the server's resident
//! memory before, at the peak and after an attacker whose streams each ask
//! for 8 MiB (`ServerStream`, 8 × 1 MiB) and who never reads its socket.
//! Three scenarios:
//! - 200 streams on one connection, windows left at 64 KiB and never
//!   opened (127 KiB of DATA can arrive in all);
//! - 10,000 streams over 100 connections, the same (issue 15's scale);
//! - 10,000 streams over 100 connections with every window opened wide
//!   (2^31 − 1), asking for 128 × 64 KiB each: flow control lets the
//!   server queue all it likes, and only its own buffers bound it. A server past [`CAP_KIB`] is killed and its
//!   peak shown as over the cap.
//!
//! `cargo bench -p p2p-grpc-bench --bench compare -- --stalled [--rounds N]`
//!
//! A fresh server child process per run (p2p-grpc on one smol thread,
//! tonic on a current-thread tokio runtime, each pinned to CPU 0). `VmRSS`
//! is read from `/proc/<pid>/status`: once the server listens, every 20 ms
//! for 3 s with the attacker connected (the peak), and 2 s after the
//! attacker closed its connection (the after). Memory must come back with
//! the default allocator and no environment variables (issue 15).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use p2p_grpc_bench::pb;
use p2p_grpc_test_support::frames;
use prost::Message;

use crate::h2load::{median, start, Server, ONE_CORE};
use crate::stacks::Result;

/// A server whose RSS passes this is killed (a runaway; 3 GiB).
const CAP_KIB: u64 = 3 * 1024 * 1024;

/// One attack: connections, streams on each, and whether windows open wide.
#[derive(Clone, Copy)]
struct Scenario {
    connections: usize,
    streams: u32,
    wide: bool,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        connections: 1,
        streams: 200,
        wide: false,
    },
    Scenario {
        connections: 100,
        streams: 100,
        wide: false,
    },
    Scenario {
        connections: 100,
        streams: 100,
        wide: true,
    },
];

impl Scenario {
    fn label(&self) -> String {
        let total = self.connections * self.streams as usize;
        let windows = if self.wide {
            "windows wide open"
        } else {
            "windows closed"
        };
        format!(
            "{total} streams on {} connection{}, {windows}",
            self.connections,
            if self.connections == 1 { "" } else { "s" }
        )
    }
}

/// The attacker's bytes: the preface, SETTINGS (empty, or opening every
/// window wide when `wide`), then each stream's request asking for 8 MiB.
fn attack(streams: u32, wide: bool) -> Vec<u8> {
    let mut out = if wide {
        frames::wide_open_preface()
    } else {
        let mut out = frames::PREFACE.to_vec();
        frames::frame(&mut out, frames::SETTINGS, 0, 0, &[]);
        out
    };
    let request = pb::StreamRequest {
        // 8 MiB either way; in smaller messages when the windows are
        // open, so that no single message is larger than what HTTP/2
        // stacks queue per stream (h2's send buffer is 400 KiB to 1 MiB).
        count: if wide { 128 } else { 8 },
        size: if wide { 64 << 10 } else { 1 << 20 },
    }
    .encode_to_vec();
    let mut body = vec![0];
    body.extend_from_slice(&(request.len() as u32).to_be_bytes());
    body.extend_from_slice(&request);
    for i in 0..streams {
        frames::request(&mut out, 2 * i + 1, "/bench.Bench/ServerStream", &body);
    }
    out
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One run: RSS before, at the peak and after, in KiB.
fn run_once(server: Server, scenario: Scenario) -> Result<(u64, u64, u64)> {
    let (mut child, addr) = start(server)?;
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib(pid);
    let bytes = attack(scenario.streams, scenario.wide);
    let mut sockets = Vec::new();
    for _ in 0..scenario.connections {
        let mut socket = TcpStream::connect(&addr)?;
        socket.write_all(&bytes)?;
        sockets.push(socket);
    }
    let mut peak = before;
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(3) {
        peak = peak.max(rss_kib(pid));
        if peak > CAP_KIB {
            let _ = child.kill();
            let _ = child.wait();
            return Ok((before, peak, u64::MAX));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(sockets);
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(pid);
    drop(child.stdin.take());
    let _ = child.wait();
    Ok((before, peak, after))
}

/// Runs the comparison and prints a markdown table.
pub fn run(rounds: usize) -> Result<()> {
    let servers = ONE_CORE;
    let mib = |kib: u64| {
        if kib == u64::MAX {
            "killed".to_owned()
        } else {
            format!("{:.1}", kib as f64 / 1024.0)
        }
    };
    println!("| attack (each stream asks for 8 MiB, the socket is never read) | server | RSS before (MiB) | peak | after the attacker left | after − before |");
    println!("|---|---|---:|---:|---:|---:|");
    for scenario in SCENARIOS {
        let mut results: Vec<Vec<(u64, u64, u64)>> = vec![Vec::new(), Vec::new()];
        for r in 0..rounds {
            let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                results[i].push(run_once(servers[i].1, scenario)?);
            }
        }
        for (i, (name, _)) in servers.iter().enumerate() {
            let mut before: Vec<u64> = results[i].iter().map(|r| r.0).collect();
            let mut peak: Vec<u64> = results[i].iter().map(|r| r.1).collect();
            let mut after: Vec<u64> = results[i].iter().map(|r| r.2).collect();
            let (b, p, a) = (median(&mut before), median(&mut peak), median(&mut after));
            let growth = if a == u64::MAX {
                "—".to_owned()
            } else {
                format!("{:+.1}", (a as f64 - b as f64) / 1024.0)
            };
            let peak = if p > CAP_KIB {
                format!("> {}", mib(CAP_KIB))
            } else {
                mib(p)
            };
            println!(
                "| {} | {name} | {} | {peak} | {} | {growth} |",
                scenario.label(),
                mib(b),
                mib(a),
            );
        }
    }
    println!("(medians of {rounds} runs, a fresh server each; p2p-grpc with its default memory budget, 256 MiB)");
    Ok(())
}
