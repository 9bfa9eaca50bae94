//! A `Node` that strangers cannot exhaust, over TCP with noise and yamux:
//! connections past the incoming limit are refused while the others are
//! served, a peer opening more yamux streams than allowed loses its own
//! connection only, handshakes that stall (before noise, or halfway
//! through it) are dropped at the handshake timeout, giving their slots
//! back, and a node over its memory limit takes no new connection. Each time the node's counts return to
//! what they were.
#![cfg(feature = "libp2p")]

mod common;

use std::io::Write;
use std::time::Duration;

use common::carriers::still_served;
use common::libp2p::{serve_on, Net, Peer};
use common::*;
use futures::future::join_all;
use futures::{AsyncReadExt, FutureExt, StreamExt};
use p2p_grpc::libp2p::libp2p::connection_limits::ConnectionLimits;
use p2p_grpc::libp2p::libp2p::{Multiaddr, StreamProtocol};
use p2p_grpc::libp2p::{default_connection_limits, MemoryLimit, Node};

fn tcp_node(
    configure: impl FnOnce(p2p_grpc::libp2p::NodeBuilder) -> p2p_grpc::libp2p::NodeBuilder,
) -> Node {
    configure(Node::builder().tcp_transport()).build().unwrap()
}

fn tcp_addr() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

/// Waits until the node's connected peers number `count`.
async fn peers_become(node: &Node, count: usize) {
    for _ in 0..2_000 {
        if node.connected_peers().await.len() == count {
            return;
        }
        runtime().sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "connected peers: {} (expected {count})",
        node.connected_peers().await.len()
    );
}

#[test]
fn connections_past_the_incoming_limit_are_refused_and_the_others_served() {
    run(async {
        let limits = default_connection_limits().with_max_established_incoming(Some(8));
        let server = serve_on(tcp_node(|b| b.connection_limits(limits)), tcp_addr(), |b| b).await;
        // Twenty strangers dial at once.
        let strangers: Vec<Node> = (0..20).map(|_| Net::Tcp.node(None)).collect();
        join_all(strangers.iter().map(|node| {
            let addr = server.addr.clone();
            async move {
                let _ = node.dial(addr).await;
            }
        }))
        .await;
        // Exactly eight are kept; the refused ones see their connection end.
        peers_become(&server.node, 8).await;
        let held = server.node.connected_peers().await;
        let kept: Vec<&Node> = strangers
            .iter()
            .filter(|node| held.contains(&node.peer_id()))
            .collect();
        assert_eq!(kept.len(), 8);
        // The kept ones are served.
        for node in &kept {
            let grpc = p2p_grpc::client::Grpc::new(
                p2p_grpc::libp2p::GrpcStream::new(node.control())
                    .unwrap()
                    .client(server.peer()),
            );
            grpc.unary::<_, Msg>(p2p_grpc::Request::new(Msg::text("kept")), UNARY)
                .await
                .unwrap();
        }
        // When the strangers go, the slots come back: a new peer is served.
        for node in &strangers {
            node.shutdown().await;
        }
        peers_become(&server.node, 0).await;
        let peer = Peer::new(Net::Tcp, &server);
        still_served(&peer.client(&server), "after the strangers").await;
        peers_become(&server.node, 1).await;
    });
}

/// Resident memory of this process, in bytes (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[test]
fn two_thousand_connections_from_one_host_are_held_to_the_limits() {
    run(async {
        // The default limits: 1,024 established incoming, 128 in their
        // handshakes, 4 per peer.
        let server = serve_on(tcp_node(|b| b), tcp_addr(), |b| b).await;
        let good = Peer::new(Net::Tcp, &server);
        let good_client = good.client(&server);
        still_served(&good_client, "before").await;
        let rss_before = rss();
        // 500 identities on this host, each dialing 4 connections at once
        // (2,000), in waves of 50 identities, without closing any.
        let strangers: Vec<Node> = (0..500).map(|_| Net::Tcp.node(None)).collect();
        let mut most = p2p_grpc::libp2p::ConnectionCounts::default();
        for wave in strangers.chunks(50) {
            let dials = wave.iter().flat_map(|node| {
                let addr = server.addr.clone();
                (0..4).map(move |_| {
                    let addr = addr.clone();
                    async move { node.dial(addr).await.is_ok() }
                })
            });
            // (A dialer may see its connection established for a moment
            // before the server's limit closes it.)
            join_all(dials).await;
            let counts = server.node.connection_counts().await;
            assert!(counts.established_incoming <= 1024, "{counts:?}");
            assert!(counts.pending_incoming <= 128, "{counts:?}");
            most.established_incoming = most.established_incoming.max(counts.established_incoming);
            // The good peer is served throughout.
            still_served(&good_client, "during").await;
        }
        let held = server.node.connection_counts().await;
        let rss_held = rss();
        eprintln!(
            "2,000 dials: the server holds {held:?}, \
             most {most:?}; this process (both sides) {} MiB -> {} MiB",
            rss_before >> 20,
            rss_held >> 20
        );
        // The server kept what its limit allows (the good peer holds one).
        assert_eq!(held.established_incoming, 1024, "{held:?}");
        // When the strangers go, the counts come back to the good peer's
        // connection alone.
        for node in &strangers {
            node.shutdown().await;
        }
        drop(strangers);
        for _ in 0..2_000 {
            if server.node.connection_counts().await.established_incoming == 1 {
                break;
            }
            runtime().sleep(Duration::from_millis(5)).await;
        }
        let after = server.node.connection_counts().await;
        assert_eq!(after.established_incoming, 1, "{after:?}");
        assert_eq!(after.pending_incoming, 0, "{after:?}");
        assert_eq!(server.node.connected_peers().await, [good.id()]);
        still_served(&good_client, "after").await;
    });
}

#[test]
fn a_peer_opening_more_streams_than_allowed_loses_only_its_own_connection() {
    run(async {
        // The default limit: 256 streams per connection.
        let server = serve_on(tcp_node(|b| b), tcp_addr(), |b| b).await;
        // The server holds every stream of this protocol open, unread, and
        // reports how many are alive at once. The attacker never writes
        // on them, so a read that completes (end or error) means the stream's
        // connection is gone: the attacker may dial again once its first
        // connection is dropped (streams open lazily and do not see the
        // close at once), and its new connection's streams are counted
        // anew.
        const HOLD: StreamProtocol = StreamProtocol::new("/hold/1");
        let mut incoming = server.node.control().accept(HOLD).unwrap();
        let (held_tx, mut held) = futures::channel::mpsc::unbounded();
        runtime().spawn(Box::pin(async move {
            let mut kept = Vec::new();
            while let Some((_peer, stream)) = incoming.next().await {
                kept.retain_mut(|stream: &mut p2p_grpc::libp2p::libp2p::Stream| {
                    stream.read(&mut [0u8; 1]).now_or_never().is_none()
                });
                kept.push(stream);
                let _ = held_tx.unbounded_send(kept.len());
            }
        }));
        // A well-behaved peer, calling meanwhile.
        let good = Peer::new(Net::Tcp, &server);
        still_served(&good.client(&server), "before").await;
        // The attacker allows itself far more streams than the server does.
        let attacker = tcp_node(|b| b.max_streams_per_connection(2000));
        attacker.add_address(server.peer(), server.addr.clone());
        let mut opened = Vec::new();
        let mut refused = false;
        for _ in 0..1000 {
            match attacker.open_stream(server.peer(), HOLD).await {
                Ok(stream) => opened.push(stream),
                Err(_) => {
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused, "the server took {} streams", opened.len());
        // The server held at most its limit, then dropped the connection.
        let mut most = 0;
        while let Ok(count) = held.try_recv() {
            most = count;
        }
        assert!(most <= 256, "{most} streams held");
        assert!(most >= 200, "{most} streams held");
        drop(opened);
        peers_become(&server.node, 1).await;
        assert!(!server
            .node
            .connected_peers()
            .await
            .contains(&attacker.peer_id()));
        // The good peer never noticed.
        still_served(&good.client(&server), "after").await;
    });
}

#[test]
fn a_node_over_its_memory_limit_refuses_new_connections_both_ways() {
    run(async {
        // Every process holds more than one byte of memory: every new
        // connection is refused, as when memory runs short.
        let full = serve_on(
            tcp_node(|b| b.max_memory(MemoryLimit::Bytes(1))),
            tcp_addr(),
            |b| b,
        )
        .await;
        let other = serve_on(tcp_node(|b| b), tcp_addr(), |b| b).await;
        let stranger = Net::Tcp.node(None);
        let refused = stranger.dial(full.addr.clone()).await;
        assert!(refused.is_err(), "{refused:?}");
        // Nor does it dial out.
        let dialed = full.node.dial(other.addr.clone()).await;
        assert!(dialed.is_err(), "{dialed:?}");
        assert!(full.node.connected_peers().await.is_empty());
        // A node with room (the default limit) takes the same stranger.
        assert_eq!(
            stranger.dial(other.addr.clone()).await.unwrap(),
            other.peer()
        );
        let peer = Peer::new(Net::Tcp, &other);
        still_served(&peer.client(&other), "under the limit").await;
    });
}

/// A whole `Expand` call on `stream`.
fn expand_call(out: &mut Vec<u8>, stream: u32, request: &Msg) {
    let body = p2p_grpc_test_support::carriers::frame(request);
    frames::request(out, stream, "/test.Echo/Expand", &body);
}

#[test]
fn a_peer_that_never_reads_its_streams_costs_the_server_a_message_per_call() {
    run(async {
        let server = serve_on(tcp_node(|b| b), tcp_addr(), |b| b).await;
        let good = Peer::new(Net::Tcp, &server);
        let good_client = good.client(&server);
        still_served(&good_client, "before").await;
        // The attacker opens HTTP/2 windows as wide as they go, asks for
        // 3.8 MB on each of two calls on each of two streams, and never
        // reads: its yamux windows close once 256 KiB are in flight, and
        // the server's writes stall.
        let attacker = Net::Tcp.node(None);
        attacker.add_address(server.peer(), server.addr.clone());
        let request = Msg {
            text: String::new(),
            payload: vec![7; 60_000],
            count: 64,
        };
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut stream = attacker
                .open_stream(server.peer(), p2p_grpc::libp2p::DEFAULT_PROTOCOL)
                .await
                .unwrap();
            let mut bytes = frames::wide_open_preface();
            expand_call(&mut bytes, 1, &request);
            expand_call(&mut bytes, 3, &request);
            futures::AsyncWriteExt::write_all(&mut stream, &bytes)
                .await
                .unwrap();
            held.push(stream);
        }
        // The calls asked for 4 x 64 replies of 60 KB (15 MB), with windows
        // that would let all of it be queued. The server holds, and counts
        // in its memory budget, no more than what h2 queues per stalled
        // call (its send buffer, 1 MiB), the batch h2 is partway through
        // writing (counted until its last byte is out) and the reply being
        // handed over: a handler's next reply waits until h2 has room.
        let asked = 4 * 64 * 60_000;
        let reply = 60_000 + 64;
        let queued = 1024 * 1024 + 2 * reply;
        let grpc_server = server.grpc.grpc_server();
        let mut in_use = 0;
        let mut steady = 0;
        for _ in 0..1_000 {
            runtime().sleep(Duration::from_millis(10)).await;
            let now = grpc_server.memory_in_use();
            steady = if now > 0 && now == in_use {
                steady + 1
            } else {
                0
            };
            in_use = now;
            if steady == 10 {
                break;
            }
        }
        eprintln!("stalled: {in_use} bytes of the memory budget in use (asked for {asked})");
        assert!(in_use > 0, "{in_use}");
        assert!(in_use <= 4 * queued, "{in_use}");
        // Others are served meanwhile.
        still_served(&good_client, "while stalled").await;
        // The attacker goes: everything it held comes back.
        drop(held);
        attacker.shutdown().await;
        peers_become(&server.node, 1).await;
        for _ in 0..1_000 {
            if grpc_server.memory_in_use() == 0
                && server.grpc.connections_of(&attacker.peer_id()) == 0
            {
                break;
            }
            runtime().sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(grpc_server.memory_in_use(), 0);
        assert_eq!(server.grpc.connections_of(&attacker.peer_id()), 0);
        assert_eq!(
            server.node.connection_counts().await.established_incoming,
            1
        );
        still_served(&good_client, "after").await;
    });
}

#[test]
fn stalled_handshakes_are_dropped_at_the_handshake_timeout_and_free_their_slots() {
    run(async {
        let limits = ConnectionLimits::default().with_max_pending_incoming(Some(2));
        let server = serve_on(
            tcp_node(|b| {
                b.connection_limits(limits)
                    .handshake_timeout(Duration::from_millis(500))
            }),
            tcp_addr(),
            |b| b,
        )
        .await;
        let port = server
            .addr
            .iter()
            .find_map(|p| match p {
                p2p_grpc::libp2p::libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap();
        // One connection starts multistream-select and stops there; the
        // other agrees on noise and sends the first handshake message (an
        // ephemeral key: any 32 bytes are one), then stops halfway.
        let mut at_the_start = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        at_the_start.write_all(b"\x13/multistream/1.0.0\n").unwrap();
        let mut halfway = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        halfway
            .write_all(b"\x13/multistream/1.0.0\n\x07/noise\n")
            .unwrap();
        let mut first_message = vec![0, 32];
        first_message.extend_from_slice(&[7; 32]);
        halfway.write_all(&first_message).unwrap();
        // Both are dropped at the timeout (the server closes them: reads
        // end), and a real peer is served after.
        let ends = blocking_reads_end(vec![at_the_start, halfway]).await;
        assert!(
            ends.iter()
                .all(|(waited, _)| *waited >= Duration::from_millis(400)),
            "{ends:?}"
        );
        assert!(
            ends.iter()
                .all(|(waited, _)| *waited < Duration::from_secs(10)),
            "{ends:?}"
        );
        // The second got the server's answer first: the two protocol
        // confirmations (28 bytes), then noise's second message, which
        // carries the server's static key and signed identity.
        assert_eq!(ends[0].1, 20, "{ends:?}");
        assert!(ends[1].1 > 28 + 100, "{ends:?}");
        // The slots are free once the server's swarm has counted the two
        // out, which may come a moment after the sockets closed.
        while server.node.connection_counts().await.pending_incoming > 0 {
            runtime().sleep(Duration::from_millis(5)).await;
        }
        let peer = Peer::new(Net::Tcp, &server);
        still_served(&peer.client(&server), "after the stalled ones").await;
    });
}

/// Reads each socket until the server closes it; how long each took, and
/// how many bytes it read.
async fn blocking_reads_end(sockets: Vec<std::net::TcpStream>) -> Vec<(Duration, usize)> {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let waited: Vec<(Duration, usize)> = sockets
            .into_iter()
            .map(|mut socket| {
                socket
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(&mut socket, &mut sink);
                (start.elapsed(), sink.len())
            })
            .collect();
        let _ = tx.send(waited);
    });
    rx.await.unwrap()
}
