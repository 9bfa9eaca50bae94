//! The workloads, written once against [`Client`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use futures::StreamExt;
use p2p_grpc::rt::SharedRuntime;

use crate::stacks::{Client, Result};

/// How long to warm up and to measure.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub warmup: Duration,
    pub measure: Duration,
}

/// Latency percentiles of sequential unary calls, in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub calls: usize,
}

/// Sequential unary calls (concurrency 1): p50 and p99.
pub async fn unary_latency(
    client: Arc<dyn Client>,
    size: usize,
    timing: Timing,
) -> Result<Latency> {
    let payload = Bytes::from(vec![1u8; size]);
    // BENCH_CALLS=N: N warm-up calls then N measured ones instead of timed
    // phases (for instruction counts under callgrind: the difference of two
    // runs with different N, divided by 2 × the difference, is the cost of
    // one call without the setup).
    let fixed: Option<usize> = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok());
    if let Some(n) = fixed {
        for _ in 0..n {
            client.unary(payload.clone()).await?;
        }
    } else {
        let end = Instant::now() + timing.warmup;
        while Instant::now() < end {
            client.unary(payload.clone()).await?;
        }
    }
    let mut samples: Vec<u32> = Vec::with_capacity(1 << 16);
    let end = Instant::now() + timing.measure;
    loop {
        let start = Instant::now();
        let done = match fixed {
            Some(n) => samples.len() >= n,
            None => start >= end,
        };
        if done {
            break;
        }
        client.unary(payload.clone()).await?;
        samples.push(start.elapsed().as_nanos() as u32);
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q) as usize).min(samples.len() - 1);
        f64::from(samples[i]) / 1000.0
    };
    Ok(Latency {
        p50_us: at(0.50),
        p99_us: at(0.99),
        calls: samples.len(),
    })
}

/// Runs `concurrency` tasks (spread over `clients`) that make unary calls
/// back to back until `duration` passes; returns the calls completed.
async fn unary_burst(
    rt: &SharedRuntime,
    clients: &[Arc<dyn Client>],
    concurrency: usize,
    payload: &Bytes,
    duration: Duration,
) -> Result<u64> {
    let end = Instant::now() + duration;
    let mut done = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let client = clients[i % clients.len()].clone();
        let payload = payload.clone();
        let (tx, rx) = oneshot::channel::<Result<u64>>();
        rt.spawn(Box::pin(async move {
            let mut calls = 0u64;
            let result = async {
                while Instant::now() < end {
                    client.unary(payload.clone()).await?;
                    calls += 1;
                }
                Ok(calls)
            }
            .await;
            let _ = tx.send(result);
        }));
        done.push(rx);
    }
    let mut total = 0;
    for rx in done {
        total += rx.await.map_err(|_| "a call task vanished")??;
    }
    Ok(total)
}

/// Unary calls per second with `concurrency` calls in flight over `clients`.
pub async fn unary_throughput(
    rt: SharedRuntime,
    clients: Vec<Arc<dyn Client>>,
    concurrency: usize,
    size: usize,
    timing: Timing,
) -> Result<f64> {
    let payload = Bytes::from(vec![1u8; size]);
    unary_burst(&rt, &clients, concurrency, &payload, timing.warmup).await?;
    let start = Instant::now();
    let calls = unary_burst(&rt, &clients, concurrency, &payload, timing.measure).await?;
    Ok(calls as f64 / start.elapsed().as_secs_f64())
}

/// Server streaming of `size`-byte messages on one call: MB/s (10^6 bytes
/// of payload per second).
pub async fn streaming(client: Arc<dyn Client>, size: u32, timing: Timing) -> Result<f64> {
    let mut stream = client.stream(size).await?;
    let warm_end = Instant::now() + timing.warmup;
    while Instant::now() < warm_end {
        stream.next().await.ok_or("stream ended")??;
    }
    let start = Instant::now();
    let end = start + timing.measure;
    let mut bytes = 0u64;
    while Instant::now() < end {
        bytes += stream.next().await.ok_or("stream ended")?? as u64;
    }
    let rate = bytes as f64 / start.elapsed().as_secs_f64() / 1e6;
    drop(stream);
    Ok(rate)
}

/// Bidi ping-pong of `size`-byte messages on one call: round trips/s.
pub async fn ping_pong(client: Arc<dyn Client>, size: usize, timing: Timing) -> Result<f64> {
    let payload = Bytes::from(vec![2u8; size]);
    let mut call = client.ping_pong().await?;
    let warm_end = Instant::now() + timing.warmup;
    while Instant::now() < warm_end {
        call.round_trip(payload.clone()).await?;
    }
    let start = Instant::now();
    let end = start + timing.measure;
    let mut trips = 0u64;
    while Instant::now() < end {
        call.round_trip(payload.clone()).await?;
        trips += 1;
    }
    Ok(trips as f64 / start.elapsed().as_secs_f64())
}
