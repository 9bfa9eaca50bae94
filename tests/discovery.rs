//! Finding peers with no address known: a node joins the DHT through a
//! bootstrap peer, announces the gRPC protocol it serves, and another node
//! finds it among the protocol's providers and calls it by peer id alone.

mod common;

use std::time::Duration;

use common::libp2p::*;
use common::*;
use p2p_grpc::client::Grpc;
use p2p_grpc::libp2p::libp2p::Multiaddr;
use p2p_grpc::libp2p::{GrpcStream, Node, NodeError, DEFAULT_PROTOCOL};
use p2p_grpc::Request;

/// A node of `net` that joins the DHT through `bootstrap`.
fn joining(net: Net, bootstrap: &Multiaddr) -> Node {
    let builder = Node::builder().bootstrap_peer(bootstrap.clone());
    match net {
        Net::Memory => builder.memory_transport(),
        Net::Tcp => builder.tcp_transport(),
    }
    .build()
    .unwrap()
}

#[test]
fn a_provider_found_in_the_dht_is_called_by_peer_id_alone() {
    run(async {
        for net in NETS {
            // A bootstrap node that serves nothing but the DHT.
            let hub = net.node(None);
            let hub_addr = hub.listen_on(net.any_addr()).await.unwrap();

            // A node that serves the echo service, joins and announces it.
            let server = serve_on(joining(net, &hub_addr), net.any_addr(), |b| b).await;
            server.node.bootstrap().await.unwrap();
            server.node.provide(DEFAULT_PROTOCOL).await.unwrap();

            // A node that knows only the hub.
            let caller = joining(net, &hub_addr);
            caller.listen_on(net.any_addr()).await.unwrap();
            caller.bootstrap().await.unwrap();
            let providers = caller.find_providers(DEFAULT_PROTOCOL).await.unwrap();
            assert_eq!(
                providers.into_iter().collect::<Vec<_>>(),
                [server.peer()],
                "{net:?}"
            );

            // Its GrpcStream looks the provider up and calls it.
            let grpc_stream = GrpcStream::builder()
                .discovery(&caller)
                .build(caller.control())
                .unwrap();
            let grpc = Grpc::new(grpc_stream.client(server.peer()));
            let reply = grpc
                .unary::<_, Msg>(Request::new(Msg::text("")), PEER)
                .await
                .unwrap();
            assert_eq!(reply.into_inner().text, caller.peer_id().to_string());

            // Once connected, identify tells which protocols it serves.
            let mut supporting = caller.peers_supporting(DEFAULT_PROTOCOL).await;
            while supporting.is_empty() {
                runtime().sleep(Duration::from_millis(5)).await;
                supporting = caller.peers_supporting(DEFAULT_PROTOCOL).await;
            }
            assert_eq!(supporting, [server.peer()]);
            assert!(caller
                .peers_supporting(p2p_grpc::libp2p::libp2p::StreamProtocol::new("/other/1"))
                .await
                .is_empty());
            for node in [&caller, &server.node, &hub] {
                node.shutdown().await;
            }
        }
    });
}

#[test]
fn a_channel_with_discovery_looks_up_a_peer_it_cannot_reach() {
    run(async {
        let hub = Net::Memory.node(None);
        let hub_addr = hub.listen_on(Net::Memory.any_addr()).await.unwrap();
        let server = serve_on(
            joining(Net::Memory, &hub_addr),
            Net::Memory.any_addr(),
            |b| b,
        )
        .await;
        server.node.bootstrap().await.unwrap();

        // The caller knows the hub only, and has asked the DHT nothing yet
        // (Kademlia's own bootstrap waits half a second after the hub
        // entered its routing table): the peer id alone does not reach the
        // server...
        let caller = joining(Net::Memory, &hub_addr);
        assert!(matches!(
            caller.open_stream(server.peer(), DEFAULT_PROTOCOL).await,
            Err(NodeError::OpenStream(_))
        ));

        // ...but a channel that may look it up does.
        let discovering = GrpcStream::builder()
            .discovery(&caller)
            .build(caller.control())
            .unwrap();
        let reply = Grpc::new(discovering.client(server.peer()))
            .unary::<_, Msg>(Request::new(Msg::text("")), PEER)
            .await
            .unwrap();
        assert_eq!(reply.into_inner().text, caller.peer_id().to_string());
    });
}

#[test]
fn lookups_say_why_they_fail() {
    run(async {
        let hub = Net::Memory.node(None);
        let hub_addr = hub.listen_on(Net::Memory.any_addr()).await.unwrap();
        let server = serve_on(
            joining(Net::Memory, &hub_addr),
            Net::Memory.any_addr(),
            |b| b,
        )
        .await;
        server.node.bootstrap().await.unwrap();
        let caller = joining(Net::Memory, &hub_addr);
        caller.bootstrap().await.unwrap();

        // A lookup of a peer nobody knows fails with its id.
        let stranger = Net::Memory.node(None);
        match caller.find_peer(stranger.peer_id()).await {
            Err(NodeError::PeerNotFound(peer)) => assert_eq!(peer, stranger.peer_id()),
            other => panic!("expected PeerNotFound, got {other:?}"),
        }
        // The server's is found.
        let addrs = caller.find_peer(server.peer()).await.unwrap();
        assert!(!addrs.is_empty());

        // A node with no peer at all cannot ask anyone.
        let alone = Net::Memory.node(None);
        assert!(matches!(
            alone.find_peer(server.peer()).await,
            Err(NodeError::NoKnownPeers)
        ));
        assert!(matches!(
            alone.bootstrap().await,
            Err(NodeError::NoKnownPeers)
        ));

        // A bootstrap address without a peer id is refused.
        let bad = Node::builder()
            .memory_transport()
            .bootstrap_peer("/memory/1234".parse().unwrap())
            .build();
        assert!(matches!(bad, Err(NodeError::Dial { .. })));
    });
}

#[test]
fn a_balanced_channel_spreads_calls_over_providers_and_tells_who_served() {
    run(async {
        let net = Net::Memory;
        let hub = net.node(None);
        let hub_addr = hub.listen_on(net.any_addr()).await.unwrap();
        let mut servers = Vec::new();
        for _ in 0..3 {
            let server = serve_on(joining(net, &hub_addr), net.any_addr(), |b| b).await;
            server.node.bootstrap().await.unwrap();
            server.node.provide(DEFAULT_PROTOCOL).await.unwrap();
            servers.push(server);
        }
        let caller = joining(net, &hub_addr);
        caller.bootstrap().await.unwrap();
        let providers = caller.find_providers(DEFAULT_PROTOCOL).await.unwrap();
        assert_eq!(providers.len(), 3);
        let grpc_stream = GrpcStream::builder()
            .discovery(&caller)
            .build(caller.control())
            .unwrap();
        let channel = grpc_stream
            .balanced_client(providers, p2p_grpc::client::LoadBalancing::RoundRobin)
            .unwrap();
        let grpc = Grpc::new(channel.clone());
        let index = |peer| servers.iter().position(|s| s.peer() == peer).unwrap();

        // Providers join the rotation as their connections come up (the
        // connected ones share the calls meanwhile): call until all three
        // are in.
        while channel.connected_endpoints() != 3 {
            grpc.unary::<_, Msg>(Request::new(Msg::text("")), PEER)
                .await
                .unwrap();
        }
        // Round robin: each provider serves one call in three, and each
        // response says which.
        let mut served = [0; 3];
        for _ in 0..6 {
            let reply = grpc
                .unary::<_, Msg>(Request::new(Msg::text("")), PEER)
                .await
                .unwrap();
            assert_eq!(reply.get_ref().text, caller.peer_id().to_string());
            served[index(reply.peer_id().unwrap())] += 1;
        }
        assert_eq!(served, [2, 2, 2]);
        let mut replies = grpc
            .server_streaming::<_, Msg>(Request::new(Msg::count("", 1)), EXPAND)
            .await
            .unwrap();
        assert!(replies.peer_id().is_some());
        while replies.get_mut().message().await.unwrap().is_some() {}
        let (_sender, chat) = open_chat(&grpc, 1).await;
        let chat_peer = chat.peer_id().unwrap();
        assert!(servers.iter().any(|s| s.peer() == chat_peer));
        drop(chat);

        // One provider goes away: the others share its turns.
        servers[1].node.shutdown().await;
        while channel.connected_endpoints() != 2 {
            // A call routed to it before its end was seen may fail.
            let _ = grpc
                .unary::<_, Msg>(Request::new(Msg::text("")), PEER)
                .await;
            runtime().sleep(Duration::from_millis(5)).await;
        }
        let mut served = [0; 3];
        for _ in 0..4 {
            let reply = grpc
                .unary::<_, Msg>(Request::new(Msg::text("")), PEER)
                .await
                .unwrap();
            served[index(reply.peer_id().unwrap())] += 1;
        }
        assert_eq!(served, [2, 0, 2]);

        // An empty set of peers is no channel.
        let empty = grpc_stream.balanced_client([], p2p_grpc::client::LoadBalancing::RoundRobin);
        assert!(empty.unwrap_err().is_invalid_target());
    });
}

#[test]
fn a_providers_channel_takes_a_new_provider_when_one_fails() {
    run(async {
        let net = Net::Memory;
        let hub = net.node(None);
        let hub_addr = hub.listen_on(net.any_addr()).await.unwrap();
        let provider = || async {
            let server = serve_on(joining(net, &hub_addr), net.any_addr(), |b| b).await;
            server.node.bootstrap().await.unwrap();
            server.node.provide(DEFAULT_PROTOCOL).await.unwrap();
            server
        };
        let first = provider().await;
        let second = provider().await;
        let caller = joining(net, &hub_addr);
        caller.bootstrap().await.unwrap();
        let grpc_stream = GrpcStream::builder()
            .discovery(&caller)
            .build(caller.control())
            .unwrap();
        let channel = grpc_stream
            .providers_client(&caller, p2p_grpc::client::LoadBalancing::RoundRobin)
            .await
            .unwrap();
        let grpc = Grpc::new(channel.clone());
        let served_by = || async {
            grpc.unary::<_, Msg>(Request::new(Msg::text("")), PEER)
                .await
                .map(|reply| reply.peer_id().unwrap())
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4 {
            seen.insert(served_by().await.unwrap());
        }
        assert_eq!(seen, [first.peer(), second.peer()].into_iter().collect());

        // A third provider announces itself; the first goes away.
        let third = provider().await;
        first.node.shutdown().await;
        // The channel notices the failure, asks the DHT again, and the new
        // provider joins the rotation.
        loop {
            match served_by().await {
                Ok(peer) if peer == third.peer() => break,
                Ok(peer) => assert_ne!(peer, first.peer()),
                Err(status) => assert_eq!(status.code(), p2p_grpc::Code::Unavailable),
            }
            runtime().sleep(Duration::from_millis(5)).await;
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4 {
            seen.insert(served_by().await.unwrap());
        }
        assert_eq!(seen, [second.peer(), third.peer()].into_iter().collect());

        // Without providers there is no channel.
        let lonely = GrpcStream::builder()
            .protocol(p2p_grpc::libp2p::libp2p::StreamProtocol::new("/nobody/1"))
            .build(caller.control())
            .unwrap();
        assert!(matches!(
            lonely
                .providers_client(&caller, p2p_grpc::client::LoadBalancing::RoundRobin)
                .await,
            Err(p2p_grpc::libp2p::GrpcStreamError::NoProviders(_))
        ));
    });
}
