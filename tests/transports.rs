//! gRPC over the other transports of a `Node`: WebSocket over TCP, and a
//! circuit relay between three nodes in one process (the listener reachable
//! only through the relay).

mod common;

use common::libp2p::*;
use common::*;
use futures::StreamExt;
use p2p_grpc::client::Grpc;
use p2p_grpc::libp2p::libp2p::multiaddr::Protocol;
use p2p_grpc::libp2p::libp2p::Multiaddr;
use p2p_grpc::libp2p::{GrpcStream, Node};
use p2p_grpc::Request;

/// The four kinds, and the peer id the server saw, over `grpc`.
async fn calls_work(grpc: &Grpc, caller: &Node) {
    let reply = grpc
        .unary::<_, Msg>(Request::new(Msg::text("")), PEER)
        .await
        .unwrap();
    assert_eq!(reply.into_inner().text, caller.peer_id().to_string());
    let requests = futures::stream::iter(["a", "b"].map(Msg::text));
    let total = grpc
        .client_streaming::<_, _, Msg>(Request::new(requests), COLLECT)
        .await
        .unwrap();
    assert_eq!(total.into_inner().text, "ab");
    let replies = grpc
        .server_streaming::<_, Msg>(Request::new(Msg::count("", 3)), EXPAND)
        .await
        .unwrap()
        .into_inner();
    let texts: Vec<String> = replies.map(|m| m.unwrap().text).collect().await;
    assert_eq!(texts, ["0", "1", "2"]);
    let (_sender, mut replies) = open_chat(grpc, 9).await;
    drop(_sender);
    assert!(replies.message().await.unwrap().is_none());
}

#[test]
fn grpc_over_websocket() {
    run(async {
        let server = serve_on(
            Net::Tcp.node(None),
            "/ip4/127.0.0.1/tcp/0/ws".parse().unwrap(),
            |b| b,
        )
        .await;
        assert!(
            server.addr.iter().any(|p| matches!(p, Protocol::Ws(_))),
            "{}",
            server.addr
        );
        let caller = Net::Tcp.node(None);
        caller.add_address(server.peer(), server.addr.clone());
        let grpc = Grpc::new(
            GrpcStream::new(caller.control())
                .unwrap()
                .client(server.peer()),
        );
        calls_work(&grpc, &caller).await;
    });
}

#[test]
fn grpc_through_a_circuit_relay() {
    run(async {
        let relay = Node::builder()
            .tcp_transport()
            .relay_server(Default::default())
            .build()
            .unwrap();
        let relay_addr = relay
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .await
            .unwrap();
        // A relay serves once it knows the address others reach it at.
        relay.add_external_address(relay_addr.clone());

        // The server has no listener of its own: only its reservation on
        // the relay.
        let circuit = relay_addr.clone().with(Protocol::P2pCircuit);
        let server = serve_on(Net::Tcp.node(None), circuit, |b| b).await;
        assert!(
            server.addr.to_string().contains("/p2p-circuit/p2p/"),
            "{}",
            server.addr
        );
        assert_eq!(
            server.node.listen_addrs().await,
            std::slice::from_ref(&server.addr)
        );

        let caller = Net::Tcp.node(None);
        let dialed: Multiaddr = server.addr.clone();
        assert_eq!(caller.dial(dialed).await.unwrap(), server.peer());
        let grpc = Grpc::new(
            GrpcStream::new(caller.control())
                .unwrap()
                .client(server.peer()),
        );
        calls_work(&grpc, &caller).await;
        // The relay carried it: both ends are connected to it.
        let through = relay.connected_peers().await;
        assert!(through.contains(&server.peer()) && through.contains(&caller.peer_id()));
    });
}

/// QUIC (feature `quic`): the calls go over `/udp/<port>/quic-v1`, with
/// no TCP connection between the two nodes.
#[cfg(feature = "quic")]
#[test]
fn grpc_over_quic() {
    run(async {
        let server = serve_on(
            Net::Tcp.node(None),
            "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
            |b| b,
        )
        .await;
        assert!(
            server.addr.iter().any(|p| matches!(p, Protocol::QuicV1)),
            "{}",
            server.addr
        );
        let caller = Net::Tcp.node(None);
        assert_eq!(
            caller.dial(server.addr.clone()).await.unwrap(),
            server.peer()
        );
        let grpc = Grpc::new(
            GrpcStream::new(caller.control())
                .unwrap()
                .client(server.peer()),
        );
        calls_work(&grpc, &caller).await;
    });
}

/// Without the `quic` feature a QUIC address is refused with an error, not
/// a panic.
#[cfg(not(feature = "quic"))]
#[test]
fn a_quic_address_without_the_feature_is_an_error() {
    run(async {
        let node = Net::Tcp.node(None);
        let err = node
            .listen_on("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("quic-v1"), "{err}");
    });
}
