//! Memory under zero-window readers, beside tonic: the server's resident
//! memory before, at the peak and after an attacker that opens 200 streams,
//! asks each for 8 MiB (`ServerStream`, 8 × 1 MiB) and never reads nor
//! opens a window (127 KiB of DATA can arrive in all).
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
use prost::Message;

use crate::exec::ExecKind;
use crate::h2load::{start, Server};
use crate::stacks::{Result, Stack};

/// Streams the attacker opens.
const STREAMS: u32 = 200;

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The attacker's bytes: the preface, empty SETTINGS, then each stream's
/// request (HPACK literals) asking for 8 × 1 MiB.
fn attack() -> Vec<u8> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(&mut out, 0x4, 0, 0, &[]);
    let request = pb::StreamRequest {
        count: 8,
        size: 1 << 20,
    }
    .encode_to_vec();
    let mut body = vec![0];
    body.extend_from_slice(&(request.len() as u32).to_be_bytes());
    body.extend_from_slice(&request);
    for i in 0..STREAMS {
        let stream = 2 * i + 1;
        let mut block = Vec::new();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/bench.Bench/ServerStream"),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ] {
            block.extend_from_slice(&[0, name.len() as u8]);
            block.extend_from_slice(name.as_bytes());
            block.push(value.len() as u8);
            block.extend_from_slice(value.as_bytes());
        }
        frame(&mut out, 0x1, 0x4, stream, &block);
        frame(&mut out, 0x0, 0x1, stream, &body);
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
fn run_once(server: Server) -> Result<(u64, u64, u64)> {
    let (mut child, addr) = start(server)?;
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib(pid);
    let mut socket = TcpStream::connect(&addr)?;
    socket.write_all(&attack())?;
    let mut peak = before;
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(3) {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(socket);
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(pid);
    drop(child.stdin.take());
    let _ = child.wait();
    Ok((before, peak, after))
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// Runs the comparison and prints a markdown table.
pub fn run(rounds: usize) -> Result<()> {
    let servers = [
        (
            "p2p-grpc (smol, 1 thread)",
            Server {
                stack: Stack::P2p,
                exec: ExecKind::Smol1,
                pin: Some("0"),
            },
        ),
        (
            "tonic (tokio current-thread)",
            Server {
                stack: Stack::Tonic,
                exec: ExecKind::TokioCt,
                pin: Some("0"),
            },
        ),
    ];
    let mut results: Vec<Vec<(u64, u64, u64)>> = vec![Vec::new(), Vec::new()];
    for r in 0..rounds {
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            results[i].push(run_once(servers[i].1)?);
        }
    }
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    println!("| server ({STREAMS} zero-window streams × 8 MiB asked) | RSS before (MiB) | peak | after the attacker left | after − before |");
    println!("|---|---:|---:|---:|---:|");
    for (i, (name, _)) in servers.iter().enumerate() {
        let mut before: Vec<u64> = results[i].iter().map(|r| r.0).collect();
        let mut peak: Vec<u64> = results[i].iter().map(|r| r.1).collect();
        let mut after: Vec<u64> = results[i].iter().map(|r| r.2).collect();
        let (b, p, a) = (median(&mut before), median(&mut peak), median(&mut after));
        println!(
            "| {name} | {} | {} | {} | {:+.1} |",
            mib(b),
            mib(p),
            mib(a),
            (a as f64 - b as f64) / 1024.0
        );
    }
    println!("(medians of {rounds} runs, a fresh server each)");
    Ok(())
}
