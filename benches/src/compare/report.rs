//! Results, markdown tables and the README section.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::workloads::Timing;

/// What was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    P50,
    P99,
    Unary64,
    Unary64x4,
    Unary64Proc2,
    Unary64x4Proc2,
    Stream,
    PingPong,
    Libp2pUnaryTcp,
    Libp2pStreamTcp,
    Libp2pUnaryMem,
    Libp2pStreamMem,
    MemIdle,
    MemPeak,
}

impl Metric {
    pub const ALL: [Metric; 14] = [
        Metric::P50,
        Metric::P99,
        Metric::Unary64,
        Metric::Unary64x4,
        Metric::Unary64Proc2,
        Metric::Unary64x4Proc2,
        Metric::Stream,
        Metric::PingPong,
        Metric::Libp2pUnaryTcp,
        Metric::Libp2pStreamTcp,
        Metric::Libp2pUnaryMem,
        Metric::Libp2pStreamMem,
        Metric::MemIdle,
        Metric::MemPeak,
    ];

    fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| format!("{m:?}") == name)
    }

    fn title(self) -> &'static str {
        match self {
            Metric::P50 => "unary p50 µs (c=1)",
            Metric::P99 => "unary p99 µs (c=1)",
            Metric::Unary64 => "unary calls/s, 64 in flight, 1 conn",
            Metric::Unary64x4 => "unary calls/s, 64 in flight, 4 conns",
            Metric::Unary64Proc2 => "same, 1 conn, 2 processes",
            Metric::Unary64x4Proc2 => "same, 4 conns, 2 processes",
            Metric::Stream => "server streaming 1 MiB, MB/s",
            Metric::PingPong => "bidi ping-pong 1 KiB, round trips/s",
            Metric::Libp2pUnaryTcp => "unary calls/s, 64 in flight (TCP)",
            Metric::Libp2pStreamTcp => "1 MiB messages, MB/s (TCP)",
            Metric::Libp2pUnaryMem => "unary calls/s, 64 in flight (memory)",
            Metric::Libp2pStreamMem => "1 MiB messages, MB/s (memory)",
            Metric::MemIdle => "bytes per idle connection",
            Metric::MemPeak => "RSS growth with 10,000 calls in flight",
        }
    }

    fn lower_is_better(self) -> bool {
        matches!(
            self,
            Metric::P50 | Metric::P99 | Metric::MemIdle | Metric::MemPeak
        )
    }
}

/// Every figure of the run.
#[derive(Default)]
pub struct Results {
    rows: Vec<(Metric, String, f64)>,
}

impl Results {
    pub fn push(&mut self, metric: Metric, name: &str, value: f64) {
        self.rows.push((metric, name.to_owned(), value));
    }

    pub fn get(&self, metric: Metric, name: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|(m, n, _)| *m == metric && n == name)
            .map(|(_, _, v)| *v)
    }

    /// Prints every figure as a `RESULT` line (child processes do this).
    pub fn print_lines(&self) {
        for (m, n, v) in &self.rows {
            println!("RESULT\t{m:?}\t{n}\t{v}");
        }
    }

    /// Takes in the `RESULT` lines of a child's output.
    pub fn parse_lines(&mut self, output: &str) -> usize {
        let mut count = 0;
        for line in output.lines() {
            let mut parts = line.split('\t');
            if parts.next() != Some("RESULT") {
                continue;
            }
            let (Some(m), Some(n), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if let (Some(m), Ok(v)) = (Metric::from_name(m), v.parse::<f64>()) {
                self.push(m, n, v);
                count += 1;
            }
        }
        count
    }

    fn names(&self, metrics: &[Metric]) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (m, n, _) in &self.rows {
            if metrics.contains(m) && !names.contains(n) {
                names.push(n.clone());
            }
        }
        names
    }

    /// The best p2p-grpc figure for `metric` and its configuration.
    fn best_p2p(&self, metric: Metric) -> Option<(String, f64)> {
        self.rows
            .iter()
            .filter(|(m, n, _)| *m == metric && n.starts_with("p2p-grpc"))
            .map(|(_, n, v)| (n.clone(), *v))
            .reduce(|a, b| {
                let b_better = if metric.lower_is_better() {
                    b.1 < a.1
                } else {
                    b.1 > a.1
                };
                if b_better {
                    b
                } else {
                    a
                }
            })
    }
}

fn fmt_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::P50 | Metric::P99 => format!("{v:.1}"),
        Metric::MemIdle => format!("{:.1} KiB", v / 1024.0),
        Metric::MemPeak => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        _ if v >= 100.0 => group(v.round() as u64),
        _ => format!("{v:.1}"),
    }
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn table(out: &mut String, results: &Results, metrics: &[Metric]) {
    let names = results.names(metrics);
    let _ = write!(out, "| contender |");
    for m in metrics {
        let _ = write!(out, " {} |", m.title());
    }
    let _ = write!(out, "\n|---|");
    for _ in metrics {
        let _ = write!(out, "---:|");
    }
    out.push('\n');
    for name in names {
        let _ = write!(out, "| {name} |");
        for &m in metrics {
            match results.get(m, &name) {
                Some(v) => {
                    let _ = write!(out, " {} |", fmt_value(m, v));
                }
                None => out.push_str(" — |"),
            }
        }
        out.push('\n');
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "—".into(),
    }
}

const TONIC_CT: &str = "tonic, tokio current-thread";
const TONIC_MT: &str = "tonic, tokio multi-thread";
const BARE_H2: &str = "bare h2, smol 1 thread";
const P2P_TOKIO_CT: &str = "p2p-grpc, tokio current-thread";
pub const LP_GRPC: &str = "p2p-grpc GrpcStream";
pub const LP_BARE: &str = "bare libp2p stream (floor)";
pub const LP_RR: &str = "libp2p-request-response";

/// The machine the run was on.
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub rustc: String,
    pub date: String,
    pub kernel: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            rustc: env!("BENCH_RUSTC_VERSION").to_owned(),
            date: today(),
            kernel,
        }
    }
}

/// Today's UTC date, YYYY-MM-DD.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

pub fn render(results: &Results, machine: &Machine, timing: Timing, quick: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {} cores ({}), Linux {}; {}; {}; profile `bench`; warm-up {:.1} s, each figure measured for {:.1} s{}.\n",
        machine.nproc,
        machine.cpu,
        machine.kernel,
        machine.rustc,
        machine.date,
        timing.warmup.as_secs_f64(),
        timing.measure.as_secs_f64(),
        if quick { " (--quick: smoke figures, not for comparison)" } else { "" }
    );

    let grpc = [
        Metric::P50,
        Metric::P99,
        Metric::Unary64,
        Metric::Unary64x4,
        Metric::Unary64Proc2,
        Metric::Unary64x4Proc2,
        Metric::Stream,
        Metric::PingPong,
    ];
    let _ = writeln!(
        out,
        "### gRPC over loopback TCP (client and server in one process unless noted)\n"
    );
    table(&mut out, results, &grpc);

    let _ = writeln!(
        out,
        "\n### Ratios: p2p-grpc ÷ each peer\n\nBest p2p-grpc configuration per row; above 1 is better for p2p-grpc except for latency rows (µs), where below 1 is better. The last column compares the same executor (tokio current-thread) on both sides.\n"
    );
    let _ = writeln!(
        out,
        "| workload | best p2p-grpc | ÷ tonic (tokio ct) | ÷ tonic (tokio mt) | ÷ bare h2 | p2p-grpc tokio ct ÷ tonic tokio ct |\n|---|---|---:|---:|---:|---:|"
    );
    for m in grpc {
        let Some((name, best)) = results.best_p2p(m) else {
            continue;
        };
        let config = name.trim_start_matches("p2p-grpc, ");
        let _ = writeln!(
            out,
            "| {} | {} ({}) | {} | {} | {} | {} |",
            m.title(),
            fmt_value(m, best),
            config,
            ratio(Some(best), results.get(m, TONIC_CT)),
            ratio(Some(best), results.get(m, TONIC_MT)),
            ratio(Some(best), results.get(m, BARE_H2)),
            ratio(results.get(m, P2P_TOKIO_CT), results.get(m, TONIC_CT)),
        );
    }

    let lp = [
        Metric::Libp2pUnaryTcp,
        Metric::Libp2pStreamTcp,
        Metric::Libp2pUnaryMem,
        Metric::Libp2pStreamMem,
    ];
    if !results.names(&lp).is_empty() {
        let _ = writeln!(
            out,
            "\n### Over libp2p (TCP + noise + yamux, and the memory transport + noise + yamux; smol, 1 thread)\n"
        );
        table(&mut out, results, &lp);
        let _ = writeln!(out);
        for (label, peer) in [
            ("p2p-grpc ÷ request-response", LP_RR),
            ("p2p-grpc ÷ bare stream", LP_BARE),
        ] {
            let _ = write!(out, "| {label} |");
            for m in lp {
                let _ = write!(
                    out,
                    " {} |",
                    ratio(results.get(m, LP_GRPC), results.get(m, peer))
                );
            }
            out.push('\n');
        }
        // Markdown needs the ratio rows under a header of their own.
        let header = format!(
            "| ratio |{}\n|---|{}\n",
            lp.iter()
                .map(|m| format!(" {} |", m.title()))
                .collect::<String>(),
            lp.iter().map(|_| "---:|").collect::<String>()
        );
        let at = out
            .rfind("| p2p-grpc ÷ request-response")
            .unwrap_or(out.len());
        out.insert_str(at, &header);
    }

    let mem = [Metric::MemIdle, Metric::MemPeak];
    if !results.names(&mem).is_empty() {
        let _ = writeln!(
            out,
            "\n### Memory (fresh process each; VmRSS from /proc/self/status)\n\nIdle: 1000 loopback connections, one call each, RSS growth ÷ 1000 (client and server sides both in the process). In flight: 10,000 `Hold` calls waiting in the handler, over 10 connections (the server's max_concurrent_streams raised to 10,000), RSS growth from before those connections opened.\n"
        );
        table(&mut out, results, &mem);
    }

    let _ = writeln!(out, "\n### Targets\n");
    let mut target = |label: &str, met: Option<bool>, detail: String| {
        let verdict = match met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(out, "- {label}: {verdict} ({detail})");
    };
    let best = |m| results.best_p2p(m).map(|(_, v)| v);
    let r = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let c64 = r(
        best(Metric::Unary64),
        results.get(Metric::Unary64, TONIC_CT),
    );
    target(
        "unary calls/s at concurrency 64 ≥ 1.3 × tonic (current-thread)",
        c64.map(|x| x >= 1.3),
        format!("{} ×", c64.map_or("—".into(), |x| format!("{x:.2}"))),
    );
    let p50 = r(best(Metric::P50), results.get(Metric::P50, TONIC_CT));
    target(
        "unary p50 at concurrency 1 below tonic's",
        p50.map(|x| x < 1.0),
        format!(
            "{} × tonic's",
            p50.map_or("—".into(), |x| format!("{x:.2}"))
        ),
    );
    let stream = r(best(Metric::Stream), results.get(Metric::Stream, BARE_H2));
    target(
        "streaming MB/s ≥ 0.9 × bare h2",
        stream.map(|x| x >= 0.9),
        format!("{} ×", stream.map_or("—".into(), |x| format!("{x:.2}"))),
    );
    let lp_tcp = r(
        results.get(Metric::Libp2pUnaryTcp, LP_GRPC),
        results.get(Metric::Libp2pUnaryTcp, LP_RR),
    );
    let lp_mem = r(
        results.get(Metric::Libp2pUnaryMem, LP_GRPC),
        results.get(Metric::Libp2pUnaryMem, LP_RR),
    );
    target(
        "gRPC over libp2p ≥ 2 × libp2p-request-response calls/s",
        lp_tcp.zip(lp_mem).map(|(a, b)| a >= 2.0 && b >= 2.0),
        format!(
            "TCP {} ×, memory {} ×",
            lp_tcp.map_or("—".into(), |x| format!("{x:.2}")),
            lp_mem.map_or("—".into(), |x| format!("{x:.2}"))
        ),
    );
    out
}

const START: &str = "<!-- results:start -->";
const END: &str = "<!-- results:end -->";

/// Replaces the text between the results markers of `benches/README.md`.
pub fn write_readme(section: &str) -> std::io::Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = std::fs::read_to_string(&path)?;
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        return Err(std::io::Error::other(
            "results markers not found in README.md",
        ));
    };
    let mut new = String::with_capacity(text.len() + section.len());
    new.push_str(&text[..start + START.len()]);
    new.push('\n');
    new.push_str(section);
    new.push_str(&text[end..]);
    std::fs::write(&path, new)?;
    Ok(path)
}
