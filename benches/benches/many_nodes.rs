//! Many libp2p nodes in one process, on the memory transport: they join a
//! Kademlia DHT through one bootstrap node and make gRPC calls between
//! random pairs, each caller knowing nothing of its callee but its peer id.
//!
//! ```text
//! cargo bench -p p2p-grpc-bench --bench many_nodes
//! cargo bench -p p2p-grpc-bench --bench many_nodes -- --sizes 10,50 --calls 500
//! ```
//!
//! For each network size N (default 10, 25, 50, 100), on smol:
//! - **memory per node**: VmRSS growth while the N nodes start, serve, join
//!   and bootstrap, divided by N;
//! - **join**: for each node, building it, listening and Kademlia's
//!   bootstrap (its own lookup and a refresh of its buckets);
//! - **first call**: then, its first call to a random earlier node, known
//!   by peer id only (a DHT lookup if the routing table lacks it, dial,
//!   noise, yamux, HTTP/2 handshake, the call); and the whole, from the
//!   start of the node to that first reply;
//! - **calls/s**: `--calls` unary calls (default 20,000), 64 in flight,
//!   each between a random pair, once every node has joined; each node
//!   keeps one channel per peer, which opens its libp2p stream (and the
//!   connection, if there is none yet) at its first call. Of 9,900 pairs
//!   among 100 nodes most are first used during the run, so this counts
//!   connection set-up too; `pairs used` says how many.
//!
//! Every call must succeed: a failure ends the run with exit status 1.

use std::time::{Duration, Instant};

use futures::StreamExt;
use p2p_grpc::libp2p::libp2p::Multiaddr;
use p2p_grpc::libp2p::{GrpcStream, Node};
use p2p_grpc_bench::pb::bench_client::BenchClient;
use p2p_grpc_bench::pb::bench_server::BenchServer;
use p2p_grpc_bench::pb::Payload;
use p2p_grpc_bench::P2pBench;

/// VmRSS of this process, in bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

struct Member {
    node: Node,
    /// Serves the bench service; its client channels look peers up in the
    /// DHT.
    grpc: GrpcStream,
}

async fn member(hub: &Multiaddr) -> Member {
    let node = Node::builder()
        .memory_transport()
        .bootstrap_peer(hub.clone())
        .build()
        .expect("node");
    let grpc = GrpcStream::builder()
        .add_service(BenchServer::new(P2pBench::default()))
        .discovery(&node)
        .build(node.control())
        .expect("grpc stream");
    grpc.serve().expect("serve");
    node.listen_on("/memory/0".parse().unwrap())
        .await
        .expect("listen");
    node.bootstrap().await.expect("bootstrap");
    Member { node, grpc }
}

async fn call(from: &Member, to: &Member) -> Result<(), p2p_grpc::Status> {
    unary(from.grpc.client(to.node.peer_id())).await
}

async fn unary(channel: p2p_grpc::Channel) -> Result<(), p2p_grpc::Status> {
    let reply = BenchClient::new(channel)
        .unary(Payload {
            payload: vec![7u8; 64].into(),
        })
        .await?;
    if reply.get_ref().payload.len() != 64 {
        return Err(p2p_grpc::Status::internal("wrong reply"));
    }
    Ok(())
}

struct Row {
    nodes: usize,
    rss_per_node: u64,
    join_median: Duration,
    join_max: Duration,
    first_call_median: Duration,
    first_call_max: Duration,
    start_to_call_median: Duration,
    calls_per_second: f64,
    pairs_used: usize,
}

async fn network(size: usize, calls: usize) -> Row {
    let hub = Node::builder().memory_transport().build().expect("hub");
    let hub_addr = hub.listen_on("/memory/0".parse().unwrap()).await.unwrap();
    let before = rss();
    let mut members: Vec<Member> = Vec::with_capacity(size);
    let mut first_calls = Vec::with_capacity(size);
    let mut joins = Vec::with_capacity(size);
    for i in 0..size {
        let started = Instant::now();
        let joined = member(&hub_addr).await;
        joins.push(started.elapsed());
        if i > 0 {
            let to = &members[fastrand::usize(..i)];
            let calling = Instant::now();
            if let Err(status) = call(&joined, to).await {
                eprintln!("first call of node {i} failed: {status}");
                std::process::exit(1);
            }
            first_calls.push((started.elapsed(), calling.elapsed()));
        }
        members.push(joined);
    }
    joins.sort();
    let rss_per_node = rss().saturating_sub(before) / size as u64;
    let mut calls_alone: Vec<Duration> = first_calls.iter().map(|(_, call)| *call).collect();
    calls_alone.sort();
    let mut from_start: Vec<Duration> = first_calls.iter().map(|(all, _)| *all).collect();
    from_start.sort();

    // One channel per ordered pair, made lazily (it opens its libp2p
    // stream at its first call), as a node that calls its peers keeps one
    // per peer.
    let channels: Vec<Vec<p2p_grpc::Channel>> = members
        .iter()
        .map(|from| {
            members
                .iter()
                .map(|to| from.grpc.client(to.node.peer_id()))
                .collect()
        })
        .collect();
    let pairs: Vec<(usize, usize)> = (0..calls)
        .map(|_| {
            let from = fastrand::usize(..members.len());
            let mut to = fastrand::usize(..members.len() - 1);
            if to >= from {
                to += 1;
            }
            (from, to)
        })
        .collect();
    let pairs_used = pairs.iter().collect::<std::collections::HashSet<_>>().len();
    let by_pair = &channels;
    let started = Instant::now();
    let failures = futures::stream::iter(pairs)
        .map(|(from, to)| async move { unary(by_pair[from][to].clone()).await })
        .buffer_unordered(64)
        .filter(|result| std::future::ready(result.is_err()))
        .count()
        .await;
    let elapsed = started.elapsed();
    if failures > 0 {
        eprintln!("{failures} of {calls} calls failed in a network of {size}");
        std::process::exit(1);
    }
    drop(channels);
    for member in &members {
        member.node.shutdown().await;
    }
    hub.shutdown().await;
    Row {
        nodes: size,
        rss_per_node,
        join_median: joins[joins.len() / 2],
        join_max: *joins.last().unwrap(),
        first_call_median: calls_alone[calls_alone.len() / 2],
        first_call_max: *calls_alone.last().unwrap(),
        start_to_call_median: from_start[from_start.len() / 2],
        calls_per_second: calls as f64 / elapsed.as_secs_f64(),
        pairs_used,
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let sizes: Vec<usize> = value("--sizes")
        .map(|s| s.split(',').map(|n| n.parse().expect("a size")).collect())
        .unwrap_or_else(|| vec![10, 25, 50, 100]);
    let calls: usize = value("--calls").map_or(20_000, |n| n.parse().expect("a count"));
    println!(
        "| nodes | RSS per node | join (median / slowest) | first call (median / slowest) | start to first reply (median) | calls/s (64 in flight) | pairs used |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for size in sizes {
        let row = p2p_grpc::rt::block_on(network(size.max(2), calls));
        println!(
            "| {} | {:.0} KiB | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.1} ms | {:.0} | {} of {} |",
            row.nodes,
            row.rss_per_node as f64 / 1024.0,
            ms(row.join_median),
            ms(row.join_max),
            ms(row.first_call_median),
            ms(row.first_call_max),
            ms(row.start_to_call_median),
            row.calls_per_second,
            row.pairs_used,
            row.nodes * (row.nodes - 1)
        );
    }
}
