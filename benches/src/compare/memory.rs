//! Memory: bytes per idle connection and RSS growth with 10,000 calls in
//! flight, each contender in a fresh child process.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use p2p_grpc_bench::Gate;

use crate::exec::{Exec, ExecKind};
use crate::stacks::{self, Result, Stack};
use crate::Contender;

/// Connections the in-flight calls are spread over.
const HOLD_CONNECTIONS: usize = 10;

pub fn contenders() -> Vec<Contender> {
    [
        (Stack::P2p, ExecKind::Smol1),
        (Stack::P2p, ExecKind::TokioCt),
        (Stack::P2p, ExecKind::TokioMt),
        (Stack::Tonic, ExecKind::TokioCt),
        (Stack::Tonic, ExecKind::TokioMt),
    ]
    .into_iter()
    .map(|(stack, exec)| Contender { stack, exec })
    .collect()
}

/// VmRSS of this process, in bytes.
pub fn vmrss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs the memory workload of `contender` in a child process: (bytes per
/// idle connection, RSS growth with the calls in flight).
pub fn spawn_child(contender: Contender, quick: bool) -> Result<(f64, f64)> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["--memory-child", contender.stack.id(), contender.exec.id()]);
    if quick {
        command.arg("--quick");
    }
    let output = command.output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MEM "))
        .ok_or_else(|| {
            format!(
                "no MEM line; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let mut parts = line.split_whitespace().map(str::parse::<f64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(idle)), Some(Ok(peak))) => {
            eprintln!(
                "   {}: {:.1} KiB per idle connection; +{:.1} MiB with the calls in flight",
                contender.name(),
                idle / 1024.0,
                peak / 1048576.0
            );
            Ok((idle, peak))
        }
        _ => Err(format!("bad MEM line {line:?}").into()),
    }
}

/// The child: prints `MEM <bytes per idle connection> <growth in flight>`.
pub fn child(stack: &str, exec: &str, quick: bool) {
    let stack = Stack::from_id(stack).expect("known stack");
    let exec = Exec::new(ExecKind::from_id(exec).expect("known executor"));
    let rt = exec.runtime();
    let (connections, in_flight) = if quick { (100, 1000) } else { (1000, 10_000) };
    let result = exec.run(async move {
        let gate = Arc::new(Gate::default());
        let server = stacks::serve(stack, rt.clone(), gate.clone(), 10_000).await?;
        let payload = Bytes::from(vec![1u8; 64]);
        // Warm up allocator and code paths with one connection.
        let warm = stacks::connect(stack, rt.clone(), server.addr).await?;
        warm.unary(payload.clone()).await?;

        let before = vmrss();
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            let client = stacks::connect(stack, rt.clone(), server.addr).await?;
            client.unary(payload.clone()).await?;
            clients.push(client);
        }
        // Let the connections settle (idle, buffers released).
        rt.sleep(Duration::from_millis(200)).await;
        let idle = (vmrss().saturating_sub(before)) as f64 / connections as f64;

        // Ten connections of 1000 calls each: with all 10,000 on one
        // connection, the burst of small responses when the gate opens
        // trips h2 0.4.20's small-DATA-frame flood guard on the client
        // (GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames").
        let before = vmrss();
        let mut held = Vec::new();
        for _ in 0..HOLD_CONNECTIONS {
            held.push(stacks::connect(stack, rt.clone(), server.addr).await?);
        }
        let mut done = Vec::with_capacity(in_flight);
        for i in 0..in_flight {
            let client = held[i % HOLD_CONNECTIONS].clone();
            let payload = payload.clone();
            let (tx, rx) = oneshot::channel();
            rt.spawn(Box::pin(async move {
                let _ = tx.send(client.hold(payload).await);
            }));
            done.push(rx);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while gate.arrived.load(Ordering::SeqCst) < in_flight {
            if Instant::now() > deadline {
                return Err(format!(
                    "only {} of {in_flight} calls arrived",
                    gate.arrived.load(Ordering::SeqCst)
                )
                .into());
            }
            rt.sleep(Duration::from_millis(10)).await;
        }
        let peak = vmrss().saturating_sub(before) as f64;
        gate.open();
        for rx in done {
            rx.await.map_err(|_| "a held call vanished")??;
        }
        drop(clients);
        Ok::<_, stacks::BoxError>((idle, peak))
    });
    match result {
        Ok((idle, peak)) => println!("MEM {idle} {peak}"),
        Err(err) => eprintln!("memory workload failed: {err}"),
    }
    std::process::exit(0);
}
