//! A `Node` that strangers cannot exhaust, over TCP with noise and yamux:
//! connections past the incoming limit are refused while the others are
//! served, a peer opening more yamux streams than allowed loses its own
//! connection only, and handshakes that stall are dropped at the handshake
//! timeout, giving their slots back. Each time the node's counts return to
//! what they were.
#![cfg(feature = "libp2p")]

mod common;

use std::io::Write;
use std::time::Duration;

use common::carriers::still_served;
use common::libp2p::{serve_on, Net, Peer};
use common::*;
use futures::future::join_all;
use futures::StreamExt;
use p2p_grpc::libp2p::libp2p::connection_limits::ConnectionLimits;
use p2p_grpc::libp2p::libp2p::{Multiaddr, StreamProtocol};
use p2p_grpc::libp2p::{default_connection_limits, Node};

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

#[test]
fn a_peer_opening_more_streams_than_allowed_loses_only_its_own_connection() {
    run(async {
        let server = serve_on(
            tcp_node(|b| b.max_streams_per_connection(32)),
            tcp_addr(),
            |b| b,
        )
        .await;
        // The server holds every stream of this protocol open, unread.
        const HOLD: StreamProtocol = StreamProtocol::new("/hold/1");
        let mut incoming = server.node.control().accept(HOLD).unwrap();
        let (held_tx, mut held) = futures::channel::mpsc::unbounded();
        runtime().spawn(Box::pin(async move {
            let mut kept = Vec::new();
            while let Some((_peer, stream)) = incoming.next().await {
                kept.push(stream);
                let _ = held_tx.unbounded_send(kept.len());
            }
        }));
        // A well-behaved peer, calling meanwhile.
        let good = Peer::new(Net::Tcp, &server);
        still_served(&good.client(&server), "before").await;
        // The attacker allows itself far more streams than the server does.
        let attacker = tcp_node(|b| b.max_streams_per_connection(1000));
        attacker.add_address(server.peer(), server.addr.clone());
        let mut opened = Vec::new();
        let mut refused = false;
        for _ in 0..100 {
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
        assert!(most <= 32, "{most} streams held");
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
        // Two connections that start multistream-select and stop there.
        let stalled: Vec<std::net::TcpStream> = (0..2)
            .map(|_| {
                let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                socket.write_all(b"\x13/multistream/1.0.0\n").unwrap();
                socket
            })
            .collect();
        // Both are dropped at the timeout (the server closes them: reads
        // end), and a real peer is served after.
        let ends = blocking_reads_end(stalled).await;
        assert!(
            ends.iter()
                .all(|waited| *waited >= Duration::from_millis(400)),
            "{ends:?}"
        );
        assert!(
            ends.iter().all(|waited| *waited < Duration::from_secs(10)),
            "{ends:?}"
        );
        let peer = Peer::new(Net::Tcp, &server);
        still_served(&peer.client(&server), "after the stalled ones").await;
    });
}

/// Reads each socket until the server closes it; how long each took.
async fn blocking_reads_end(sockets: Vec<std::net::TcpStream>) -> Vec<Duration> {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let waited: Vec<Duration> = sockets
            .into_iter()
            .map(|mut socket| {
                socket
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(&mut socket, &mut sink);
                start.elapsed()
            })
            .collect();
        let _ = tx.send(waited);
    });
    rx.await.unwrap()
}
