//! `cargo bench -p p2p-grpc-bench --bench compare [-- --quick] [-- --write]`
//!
//! Runs every contender in one run, on the same machine and build profile,
//! with the same workloads, and prints markdown tables of absolute figures
//! and ratios (p2p-grpc ÷ each peer). `--write` (or `BENCH_WRITE=1`) also
//! rewrites the results section of `benches/README.md`. `--quick` (or
//! `BENCH_QUICK=1`) shortens every measurement for a smoke run.
//!
//! `-- --h2load [--rounds N]` measures the servers alone under h2load
//! instead (see `h2load.rs`); `-- --flood` a client's latency while another
//! connection floods PING (`flood.rs`); `-- --stalled` the server's memory
//! under zero-window readers (`stalled.rs`).
//!
//! Hidden flags, used when the binary spawns itself: `--serve-child STACK
//! EXEC` (a server in its own process), `--memory-child STACK EXEC` (the
//! memory workload in a fresh process) and `--flood-child ADDR KIND` (the
//! flooder).

mod bare_h2;
mod contender;
mod exec;
mod flood;
mod h2load;
mod libp2p_bench;
mod memory;
mod report;
mod stacks;
mod stalled;
mod workloads;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exec::{Exec, ExecKind};
use p2p_grpc_bench::Gate;
use report::{Metric, Results};
use stacks::{Result, Stack};
use workloads::Timing;

/// One stack on one executor.
#[derive(Clone, Copy, Debug)]
pub struct Contender {
    pub stack: Stack,
    pub exec: ExecKind,
}

impl Contender {
    pub fn name(&self) -> String {
        match self.stack {
            Stack::P2p => format!("p2p-grpc, {}", self.exec.label()),
            Stack::Tonic => format!("tonic, {}", self.exec.label()),
            Stack::BareH2 => format!("bare h2, {}", self.exec.label()),
        }
    }
}

/// p2p-grpc on every runtime, then the peers. Bare h2 runs on the executor
/// p2p-grpc does best on here (one smol thread).
pub fn contenders() -> Vec<Contender> {
    let mut all: Vec<Contender> = [
        ExecKind::Smol1,
        ExecKind::Smol2,
        ExecKind::AsyncStd,
        ExecKind::TokioMt,
        ExecKind::TokioCt,
    ]
    .into_iter()
    .map(|exec| Contender {
        stack: Stack::P2p,
        exec,
    })
    .collect();
    all.push(Contender {
        stack: Stack::Tonic,
        exec: ExecKind::TokioCt,
    });
    all.push(Contender {
        stack: Stack::Tonic,
        exec: ExecKind::TokioMt,
    });
    all.push(Contender {
        stack: Stack::BareH2,
        exec: ExecKind::Smol1,
    });
    all
}

pub const UNARY_SIZE: usize = 64;
pub const STREAM_SIZE: u32 = 1024 * 1024;
pub const PING_SIZE: usize = 1024;
pub const CONCURRENCY: usize = 64;

struct Options {
    quick: bool,
    write: bool,
    only: Option<String>,
    skip_libp2p: bool,
    skip_memory: bool,
}

/// Counts allocations only where asked ([`h2load::COUNT_ALLOCATIONS`]):
/// off, it costs each allocation one load.
#[global_allocator]
static ALLOCATOR: p2p_grpc_test_support::alloc::Counting = p2p_grpc_test_support::alloc::Counting;

fn main() {
    p2p_grpc_test_support::alloc::set_counting(false);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds = |default: usize| {
        args.iter()
            .position(|a| a == "--rounds")
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    // The comparisons that measure the servers alone: (flag, default
    // rounds, run, what failed).
    type Comparison = (&'static str, usize, fn(usize) -> stacks::Result<()>);
    let comparisons: [Comparison; 3] = [
        ("--h2load", 4, h2load::run),
        ("--flood", 4, flood::run),
        ("--stalled", 3, stalled::run),
    ];
    for (flag, default, run) in comparisons {
        if args.iter().any(|a| a == flag) {
            if let Err(err) = run(rounds(default)) {
                eprintln!("{flag} benchmark failed: {err}");
                std::process::exit(1);
            }
            return;
        }
    }
    if let Some(i) = args.iter().position(|a| a == "--flood-child") {
        flood::child(&args[i + 1], &args[i + 2]);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--serve-child") {
        serve_child(&args[i + 1], &args[i + 2]);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--memory-child") {
        memory::child(
            &args[i + 1],
            &args[i + 2],
            args.iter().any(|a| a == "--quick"),
        );
        return;
    }
    let quick_arg = args.iter().any(|a| a == "--quick");
    if let Some(i) = args.iter().position(|a| a == "--contender-child") {
        let contender = Contender {
            stack: Stack::from_id(&args[i + 1]).expect("known stack"),
            exec: ExecKind::from_id(&args[i + 2]).expect("known executor"),
        };
        let mut results = Results::default();
        let timing = timing(quick_arg);
        if let Err(err) = run_in_process(contender, timing, &mut results) {
            eprintln!("   failed: {err}");
        }
        if std::env::var_os("BENCH_WORKLOAD").is_none() {
            if let Err(err) = run_two_process(contender, timing, &mut results) {
                eprintln!("   two-process failed: {err}");
            }
        }
        results.print_lines();
        return;
    }
    if args.iter().any(|a| a == "--libp2p-child") {
        let mut results = Results::default();
        if let Err(err) = libp2p_bench::run(timing(quick_arg), &mut results) {
            eprintln!("   libp2p failed: {err}");
        }
        results.print_lines();
        return;
    }
    let env_on = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0");
    let options = Options {
        quick: args.iter().any(|a| a == "--quick") || env_on("BENCH_QUICK"),
        write: args.iter().any(|a| a == "--write") || env_on("BENCH_WRITE"),
        only: args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1).cloned()),
        skip_libp2p: args.iter().any(|a| a == "--no-libp2p"),
        skip_memory: args.iter().any(|a| a == "--no-memory"),
    };
    let timing = timing(options.quick);
    let started = Instant::now();
    let load_before = report::loadavg();
    let mut results = Results::default();

    for contender in contenders() {
        let name = contender.name();
        if options
            .only
            .as_ref()
            .is_some_and(|only| !name.contains(only.as_str()))
        {
            continue;
        }
        eprintln!("== {name}");
        let args = [
            "--contender-child",
            contender.stack.id(),
            contender.exec.id(),
        ];
        if let Err(err) = run_child(&args, options.quick, &mut results) {
            eprintln!("   failed: {err}");
        }
    }
    if !options.skip_libp2p && options.only.is_none() {
        eprintln!("== libp2p");
        if let Err(err) = run_child(&["--libp2p-child"], options.quick, &mut results) {
            eprintln!("   libp2p failed: {err}");
        }
    }
    if !options.skip_memory && options.only.is_none() {
        eprintln!("== memory");
        for contender in memory::contenders() {
            match memory::spawn_child(contender, options.quick) {
                Ok((idle, peak)) => {
                    results.push(Metric::MemIdle, &contender.name(), idle);
                    results.push(Metric::MemPeak, &contender.name(), peak);
                }
                Err(err) => eprintln!("   {}: {err}", contender.name()),
            }
        }
    }
    let load_after = report::loadavg();
    let elapsed = started.elapsed();
    let markdown = report::render(&results, &report::Machine::detect(), timing, options.quick);
    println!("{markdown}");
    println!(
        "run took {:.0} s; load average before {load_before}, after {load_after}",
        elapsed.as_secs_f64()
    );
    if options.write {
        let section = format!(
            "{markdown}\nThe run took {:.0} s; load average (1, 5, 15 min) before: {load_before}; after: {load_after}.\n",
            elapsed.as_secs_f64()
        );
        match report::write_readme(&section) {
            Ok(path) => eprintln!("wrote {}", path.display()),
            Err(err) => eprintln!("could not write the README: {err}"),
        }
    }
}

fn timing(quick: bool) -> Timing {
    if quick {
        Timing {
            warmup: Duration::from_millis(100),
            measure: Duration::from_millis(300),
        }
    } else {
        Timing {
            warmup: Duration::from_millis(500),
            measure: Duration::from_secs(2),
        }
    }
}

/// Runs this binary with `args` in a fresh process (no executor threads or
/// allocator state left over from other contenders) and collects its
/// `RESULT` lines.
fn run_child(args: &[&str], quick: bool, results: &mut Results) -> Result<()> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(args).stderr(Stdio::inherit());
    if quick {
        command.arg("--quick");
    }
    let output = command.output()?;
    let got = results.parse_lines(&String::from_utf8_lossy(&output.stdout));
    if got == 0 {
        return Err(format!("no results ({})", output.status).into());
    }
    Ok(())
}

fn run_in_process(contender: Contender, timing: Timing, results: &mut Results) -> Result<()> {
    let exec = Exec::new(contender.exec);
    let rt = exec.runtime();
    let stack = contender.stack;
    let figures = exec.run(async move {
        let server = stacks::serve(stack, rt.clone(), Arc::new(Gate::default()), 1024).await?;
        let addr = server.addr;
        let one = stacks::connect(stack, rt.clone(), addr).await?;
        let mut four = vec![one.clone()];
        for _ in 1..4 {
            four.push(stacks::connect(stack, rt.clone(), addr).await?);
        }
        // BENCH_WORKLOAD=latency|c64|c64x4|stream|ping runs one workload
        // (for profiling); the others report zero and are left out.
        let only = std::env::var("BENCH_WORKLOAD").ok();
        let wants = |w: &str| only.as_deref().is_none_or(|o| o == w);
        let mut latency = workloads::Latency {
            p50_us: 0.0,
            p99_us: 0.0,
            calls: 0,
        };
        let (mut c64, mut c64x4, mut stream, mut ping) = (0.0, 0.0, 0.0, 0.0);
        if wants("latency") {
            latency = workloads::unary_latency(one.clone(), UNARY_SIZE, timing).await?;
        }
        if wants("c64") {
            c64 = workloads::unary_throughput(
                rt.clone(),
                vec![one.clone()],
                CONCURRENCY,
                UNARY_SIZE,
                timing,
            )
            .await?;
        }
        if wants("c64x4") {
            c64x4 = workloads::unary_throughput(
                rt.clone(),
                four.clone(),
                CONCURRENCY,
                UNARY_SIZE,
                timing,
            )
            .await?;
        }
        if wants("stream") {
            stream = workloads::streaming(one.clone(), STREAM_SIZE, timing).await?;
        }
        if wants("ping") {
            ping = workloads::ping_pong(one.clone(), PING_SIZE, timing).await?;
        }
        drop((one, four));
        server.stop().await;
        Ok::<_, stacks::BoxError>((latency, c64, c64x4, stream, ping))
    })?;
    let (latency, c64, c64x4, stream, ping) = figures;
    let name = contender.name();
    eprintln!(
        "   p50 {:.1} us, p99 {:.1} us ({} calls); c64 {:.0}/s; c64 x4 conns {:.0}/s; stream {:.0} MB/s; ping-pong {:.0}/s",
        latency.p50_us, latency.p99_us, latency.calls, c64, c64x4, stream, ping
    );
    for (metric, value) in [
        (Metric::P50, latency.p50_us),
        (Metric::P99, latency.p99_us),
        (Metric::Unary64, c64),
        (Metric::Unary64x4, c64x4),
        (Metric::Stream, stream),
        (Metric::PingPong, ping),
    ] {
        if value > 0.0 {
            results.push(metric, &name, value);
        }
    }
    Ok(())
}

/// Workload 2 with the server in a child process (this binary, re-run with
/// `--serve-child`), the client here, on the same executor kind.
fn run_two_process(contender: Contender, timing: Timing, results: &mut Results) -> Result<()> {
    let (mut child, addr) = h2load::start(h2load::Server {
        stack: contender.stack,
        exec: contender.exec,
        pin: None,
    })?;
    let addr: std::net::SocketAddr = addr.parse()?;
    let exec = Exec::new(contender.exec);
    let rt = exec.runtime();
    let stack = contender.stack;
    let figures = exec.run(async move {
        let one = stacks::connect(stack, rt.clone(), addr).await?;
        let mut four = vec![one.clone()];
        for _ in 1..4 {
            four.push(stacks::connect(stack, rt.clone(), addr).await?);
        }
        let c64 = workloads::unary_throughput(
            rt.clone(),
            vec![one.clone()],
            CONCURRENCY,
            UNARY_SIZE,
            timing,
        )
        .await?;
        let c64x4 =
            workloads::unary_throughput(rt.clone(), four, CONCURRENCY, UNARY_SIZE, timing).await?;
        Ok::<_, stacks::BoxError>((c64, c64x4))
    });
    // Closing stdin tells the child to exit.
    drop(child.stdin.take());
    let _ = child.wait();
    let (c64, c64x4) = figures?;
    eprintln!("   two processes: c64 {c64:.0}/s; c64 x4 conns {c64x4:.0}/s");
    let name = contender.name();
    results.push(Metric::Unary64Proc2, &name, c64);
    results.push(Metric::Unary64x4Proc2, &name, c64x4);
    Ok(())
}

/// The child side of [`run_two_process`]: serves until stdin closes.
fn serve_child(stack: &str, exec: &str) {
    let stack = Stack::from_id(stack).expect("known stack");
    let exec = Exec::new(ExecKind::from_id(exec).expect("known executor"));
    let rt = exec.runtime();
    exec.run(async move {
        let server = stacks::serve(stack, rt, Arc::new(Gate::default()), 1024)
            .await
            .expect("serving");
        let counting = std::env::var_os(h2load::COUNT_ALLOCATIONS).is_some();
        p2p_grpc_test_support::alloc::set_counting(counting);
        let allocated_before = p2p_grpc_test_support::alloc::allocations();
        println!("LISTENING {}", server.addr);
        std::io::stdout().flush().expect("stdout");
        // Wait for the parent to close stdin, off the executor threads.
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_line(&mut String::new());
            let _ = tx.send(());
        });
        let _ = rx.await;
        if counting {
            let allocated = p2p_grpc_test_support::alloc::allocations() - allocated_before;
            println!("ALLOCATIONS {allocated}");
            std::io::stdout().flush().expect("stdout");
        }
        std::process::exit(0);
    });
}
