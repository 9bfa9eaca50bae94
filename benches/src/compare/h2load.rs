//! The server alone under a neutral load generator: `h2load` (Debian's
//! `nghttp2-client`) drives p2p-grpc's and tonic's server with the same
//! unary calls, in ABBA rounds with a fresh server process per run, and the
//! medians and bests are compared as ratios.
//!
//! `cargo bench -p p2p-grpc-bench --bench compare -- --h2load [--rounds N]`
//!
//! - **One core**: the server pinned to CPU 0 (`taskset -c 0`), h2load to
//!   CPU 1; p2p-grpc on one smol thread against tonic on a current-thread
//!   tokio runtime.
//! - **Two threads**: the server on two threads (smol, tokio multi-thread),
//!   unpinned, h2load beside it (a 2-core machine has no third core).
//!
//! h2load counts any HTTP 200 as a success, so every run is also checked:
//! all `N` calls ended with a 2xx, and the DATA bytes received are exactly
//! `N` responses of the expected size (an error status has no message).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use bytes::{BufMut, BytesMut};
use p2p_grpc_bench::pb;
use prost::Message;

use crate::exec::ExecKind;
use crate::stacks::{Result, Stack};

/// Calls per run.
const CALLS: usize = 200_000;
/// h2load's connections and streams per connection (4 × 32).
const CONNECTIONS: &str = "4";
const STREAMS: &str = "32";

/// One server configuration of a comparison.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Server {
    pub(crate) stack: Stack,
    pub(crate) exec: ExecKind,
    pub(crate) pin: Option<&'static str>,
}

/// What h2load measured, and whether the run is valid.
#[derive(Debug)]
struct Run {
    requests_per_second: f64,
    /// What the server allocated during the run, when it counted.
    allocations: Option<u64>,
    /// The server's threads' nonvoluntary context switches over its life
    /// (`/proc`; `None` where there is none): thousands mean a thread of
    /// its own (async-io's helper) kept preempting the executor.
    preempted: Option<u64>,
}

/// The nonvoluntary context switches of every thread of process `pid`.
fn preempted(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let status = std::fs::read_to_string(task.ok()?.path().join("status")).ok()?;
        total += status
            .lines()
            .find_map(|line| line.strip_prefix("nonvoluntary_ctxt_switches:"))?
            .trim()
            .parse::<u64>()
            .ok()?;
    }
    Some(total)
}

/// Set for a `--serve-child`: it counts its allocations from the moment it
/// listens, and prints `ALLOCATIONS n` when its stdin closes.
pub(crate) const COUNT_ALLOCATIONS: &str = "BENCH_COUNT_ALLOCATIONS";

/// A gRPC message frame: the 5-byte prefix and the encoded payload.
pub(crate) fn frame(message: &pb::Payload) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_u8(0);
    buf.put_u32(message.encoded_len() as u32);
    message.encode(&mut buf).expect("encoding to a BytesMut");
    buf.to_vec()
}

/// Starts the server in a child process (this binary, `--serve-child`).
pub(crate) fn start(server: Server) -> Result<(std::process::Child, String)> {
    start_counting(server, false)
}

/// [`start`], the child counting its allocations if `count`.
fn start_counting(server: Server, count: bool) -> Result<(std::process::Child, String)> {
    let exe = std::env::current_exe()?;
    let mut command = match server.pin {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.args(["-c", cpus]).arg(exe);
            command
        }
        None => Command::new(exe),
    };
    if count {
        command.env(COUNT_ALLOCATIONS, "1");
    }
    let mut child = command
        .args(["--serve-child", server.stack.id(), server.exec.id()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    // The child prints nothing more before it exits: nothing is left in
    // the buffer, and what it prints then is read from the pipe itself.
    child.stdout = Some(stdout.into_inner());
    let addr = line
        .trim()
        .strip_prefix("LISTENING ")
        .ok_or_else(|| format!("unexpected server output {line:?}"))?
        .to_owned();
    Ok((child, addr))
}

/// One h2load run against a fresh server; checks every call succeeded and
/// brought back one response of `response_len` bytes. With `count`, the
/// server counts what it allocates meanwhile.
fn run_once(
    server: Server,
    body: &std::path::Path,
    response_len: usize,
    count: bool,
) -> Result<Run> {
    let (mut child, addr) = start_counting(server, count)?;
    let mut command = Command::new("taskset");
    command.args(["-c", if server.pin.is_some() { "1" } else { "0,1" }]);
    let output = command
        .arg("h2load")
        .args(["-n", &CALLS.to_string(), "-c", CONNECTIONS, "-m", STREAMS])
        .arg("-d")
        .arg(body)
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .arg(format!("http://{addr}/bench.Bench/Unary"))
        .output();
    let switches = preempted(child.id());
    // The server ends when its stdin closes.
    drop(child.stdin.take());
    let mut rest = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut rest)?;
    }
    let _ = child.wait();
    let output = output.map_err(|err| format!("cannot run h2load (nghttp2-client): {err}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!("h2load failed: {text}").into());
    }
    let mut run = parse(&text, response_len).map_err(|err| format!("{err}\n{text}"))?;
    run.preempted = switches;
    if count {
        let allocations = rest
            .lines()
            .find_map(|line| line.strip_prefix("ALLOCATIONS "))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("the server reported no allocations: {rest:?}"))?;
        run.allocations = Some(allocations);
    }
    Ok(run)
}

/// Reads h2load's report and checks it.
fn parse(text: &str, response_len: usize) -> std::result::Result<Run, String> {
    let number = |line: &str, after: &str| -> Option<f64> {
        let rest = &line[line.find(after)? + after.len()..];
        rest.split_whitespace()
            .next()?
            .replace(',', "")
            .parse()
            .ok()
    };
    let mut requests_per_second = None;
    let mut ok_2xx = None;
    let mut data_bytes = None;
    for line in text.lines() {
        if line.starts_with("finished in") {
            requests_per_second = line
                .split(", ")
                .find(|part| part.ends_with("req/s"))
                .and_then(|part| part.trim_end_matches(" req/s").parse::<f64>().ok());
        }
        if line.starts_with("status codes:") {
            ok_2xx = number(line, "status codes: ");
        }
        if line.starts_with("traffic:") {
            // "traffic: T total, H headers (...), D data" (raw bytes in
            // parentheses on newer versions): take the figure before " data".
            data_bytes = line
                .split(", ")
                .find(|part| part.trim_end().ends_with("data"))
                .and_then(|part| {
                    // "4.77MB (5000000) data": the exact count is in the
                    // parentheses; older versions print only "5000000 data".
                    let figure = match (part.find('('), part.find(')')) {
                        (Some(open), Some(close)) if open < close => &part[open + 1..close],
                        _ => part.split_whitespace().next()?,
                    };
                    figure.parse::<f64>().ok()
                });
        }
    }
    let requests_per_second = requests_per_second.ok_or("no req/s in h2load's report")?;
    if ok_2xx != Some(CALLS as f64) {
        return Err(format!("{ok_2xx:?} calls ended with 2xx, not {CALLS}"));
    }
    let expected = (CALLS * response_len) as f64;
    match data_bytes {
        Some(data) if data == expected => {}
        other => {
            return Err(format!(
                "DATA bytes {other:?}, expected {expected} ({CALLS} responses of {response_len})"
            ))
        }
    }
    Ok(Run {
        requests_per_second,
        allocations: None,
        preempted: None,
    })
}

/// The middle value (the upper one of an even count).
pub(crate) fn median<T: Copy + PartialOrd>(values: &mut [T]) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

/// The servers compared on one core: p2p-grpc on one smol thread and tonic
/// on a current-thread tokio runtime, each pinned to CPU 0.
pub(crate) const ONE_CORE: [(&str, Server); 2] = [
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

/// Runs the comparison and prints a markdown table.
pub fn run(rounds: usize) -> Result<()> {
    let comparisons = [
        ("one core", ONE_CORE[0].1, ONE_CORE[1].1),
        (
            "two threads",
            Server {
                stack: Stack::P2p,
                exec: ExecKind::Smol2,
                pin: None,
            },
            Server {
                stack: Stack::Tonic,
                exec: ExecKind::TokioMt,
                pin: None,
            },
        ),
    ];
    let dir = std::env::temp_dir().join(format!("p2p-grpc-h2load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // (workload, request body file, response length): the echo answers
    // with the message it got.
    let mut workloads = Vec::new();
    for (workload, size) in [("UnaryCall, 64 B", 64usize), ("EmptyCall, 0 B", 0)] {
        let body = frame(&pb::Payload {
            payload: vec![0x5a; size].into(),
        });
        let path = dir.join(format!("body-{size}"));
        std::fs::File::create(&path)?.write_all(&body)?;
        workloads.push((workload, path, body.len()));
    }
    println!("| server | workload | p2p-grpc median | tonic median | ratio of medians | ratio of bests | p2p-grpc server preempted, most in a run |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (name, ours, theirs) in comparisons {
        for (workload, path, response_len) in &workloads {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut most_preempted = None::<u64>;
            for round in 0..rounds {
                // ABBA: the order alternates, so drift hits both alike.
                let order = if round % 2 == 0 {
                    [true, false]
                } else {
                    [false, true]
                };
                for first_ours in order {
                    let server = if first_ours { ours } else { theirs };
                    let run = run_once(server, path, *response_len, false)?;
                    if first_ours {
                        most_preempted = most_preempted.max(run.preempted);
                        a.push(run.requests_per_second);
                    } else {
                        b.push(run.requests_per_second);
                    }
                }
            }
            let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
            let (best_a, best_b) = (best(&a), best(&b));
            let (median_a, median_b) = (median(&mut a), median(&mut b));
            let most_preempted = most_preempted.map_or("-".to_owned(), |n| n.to_string());
            println!(
                "| {name} | {workload} | {median_a:.0} | {median_b:.0} | {:.2} | {:.2} | {most_preempted} |",
                median_a / median_b,
                best_a / best_b
            );
        }
    }
    // Allocations, counted by the server's own allocator in one more run
    // each (not in the timed ones: counting costs a few atomics per
    // allocation).
    println!();
    println!("| server, one core | allocations per call: UnaryCall, 64 B | EmptyCall, 0 B |");
    println!("|---|---:|---:|");
    for (name, server) in ONE_CORE {
        let mut cells = Vec::new();
        for (_, path, response_len) in &workloads {
            let run = run_once(server, path, *response_len, true)?;
            let allocations = run.allocations.ok_or("no allocation count")?;
            cells.push(format!("{:.1}", allocations as f64 / CALLS as f64));
        }
        println!("| {name} | {} |", cells.join(" | "));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
