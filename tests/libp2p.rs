//! `GrpcStream`: gRPC over libp2p streams, over libp2p's memory transport
//! and over TCP. The four call kinds, the remote peer id in every handler
//! kind, bursts of inbound streams, a peer going away and coming back,
//! authorisation, limits, graceful shutdown and junk on a stream.
#![cfg(feature = "libp2p")]

mod common;

use std::time::Duration;

use common::libp2p::{Net, Peer, Served, NETS};
use common::*;
use futures::channel::{mpsc, oneshot};
use futures::future::join_all;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::StreamExt;
use p2p_grpc::client::Grpc;
use p2p_grpc::libp2p::libp2p::identity::Keypair;
use p2p_grpc::libp2p::libp2p::{Multiaddr, StreamProtocol};
use p2p_grpc::libp2p::{GrpcStream, GrpcStreamBuilder, GrpcStreamError, Node, DEFAULT_PROTOCOL};
use p2p_grpc::server::{CallFuture, ServerCall, Service};
use p2p_grpc::{BoxStream, Channel, Code, Request, Response, Status, Streaming};

const WHO_UNARY: &str = "/test.Who/Unary";
const WHO_COLLECT: &str = "/test.Who/Collect";
const WHO_EXPAND: &str = "/test.Who/Expand";
const WHO_CHAT: &str = "/test.Who/Chat";

/// Answers every call kind with the libp2p peer id its handler sees
/// (`Request::peer_id`), as text.
struct WhoService;

fn peer_text<T>(request: &Request<T>) -> String {
    request
        .peer_id()
        .map(|peer| peer.to_string())
        .unwrap_or_default()
}

impl Service for WhoService {
    fn name(&self) -> &'static str {
        "test.Who"
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        match method {
            "Unary" => call.unary(|request: Request<Msg>| async move {
                Ok(Response::new(Msg::text(peer_text(&request))))
            }),
            "Collect" => call.client_streaming(|request: Request<Streaming<Msg>>| async move {
                let peer = peer_text(&request);
                let mut messages = request.into_inner();
                let mut count = 0;
                while messages.message().await?.is_some() {
                    count += 1;
                }
                Ok(Response::new(Msg::count(peer, count)))
            }),
            "Expand" => call.server_streaming(|request: Request<Msg>| async move {
                let peer = peer_text(&request);
                let count = request.get_ref().count;
                let stream: BoxStream<Msg> = Box::pin(futures::stream::iter(
                    (0..count).map(move |i| Ok(Msg::count(peer.clone(), i))),
                ));
                Ok(Response::new(stream))
            }),
            "Chat" => call.streaming(|request: Request<Streaming<Msg>>| async move {
                let peer = peer_text(&request);
                let messages = request.into_inner();
                let stream: BoxStream<Msg> = Box::pin(messages.map(move |message| {
                    message.map(|message| Msg::count(peer.clone(), message.count))
                }));
                Ok(Response::new(stream))
            }),
            _ => call.unimplemented(),
        }
    }
}

/// Serves on `node` with the who service beside the echo service.
async fn serve_on(
    node: Node,
    listen: Multiaddr,
    configure: impl FnOnce(GrpcStreamBuilder) -> GrpcStreamBuilder,
) -> Served {
    common::libp2p::serve_on(node, listen, |b| configure(b.add_service(WhoService))).await
}

async fn serve(net: Net, configure: impl FnOnce(GrpcStreamBuilder) -> GrpcStreamBuilder) -> Served {
    serve_on(net.node(None), net.any_addr(), configure).await
}

async fn four_call_kinds(grpc: &Grpc) {
    let reply = grpc
        .unary::<_, Msg>(Request::new(Msg::count("hello", 3)), UNARY)
        .await
        .unwrap();
    assert_eq!(reply.into_inner(), Msg::count("hello", 3));

    let messages = futures::stream::iter(vec![Msg::count("a", 1), Msg::count("b", 2)]);
    let reply = grpc
        .client_streaming::<_, _, Msg>(Request::new(messages), COLLECT)
        .await
        .unwrap();
    assert_eq!(reply.into_inner(), Msg::count("ab", 3));

    let replies = grpc
        .server_streaming::<_, Msg>(Request::new(Msg::count("x", 5)), EXPAND)
        .await
        .unwrap()
        .into_inner();
    let texts: Vec<String> = replies.map(|reply| reply.unwrap().text).collect().await;
    assert_eq!(texts, ["0", "1", "2", "3", "4"]);

    let (mut sender, mut replies) = open_chat(grpc, 0).await;
    for i in 1..10 {
        feed(&mut sender, Msg::count("ping", i)).await;
        assert_eq!(replies.message().await.unwrap().unwrap().count, i);
    }
    drop(sender);
    assert!(replies.message().await.unwrap().is_none());
}

/// Checks that every handler kind of the who service sees `expected`.
async fn every_handler_sees(grpc: &Grpc, expected: &str) {
    let reply = grpc
        .unary::<_, Msg>(Request::new(Msg::default()), WHO_UNARY)
        .await
        .unwrap();
    assert_eq!(reply.get_ref().text, expected, "unary");

    let messages = futures::stream::iter(vec![Msg::default(), Msg::default()]);
    let reply = grpc
        .client_streaming::<_, _, Msg>(Request::new(messages), WHO_COLLECT)
        .await
        .unwrap();
    assert_eq!(
        reply.get_ref(),
        &Msg::count(expected, 2),
        "client streaming"
    );

    let replies: Vec<Msg> = grpc
        .server_streaming::<_, Msg>(Request::new(Msg::count("", 3)), WHO_EXPAND)
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(replies.len(), 3);
    assert!(
        replies.iter().all(|m| m.text == expected),
        "server streaming"
    );

    let (mut sender, receiver) = feeder();
    feed(&mut sender, Msg::count("", 7)).await;
    let mut replies = grpc
        .streaming::<_, _, Msg>(Request::new(receiver), WHO_CHAT)
        .await
        .unwrap();
    assert_eq!(
        replies.message().await.unwrap().unwrap(),
        Msg::count(expected, 7),
        "bidi"
    );
    drop(sender);
    assert!(replies.message().await.unwrap().is_none());
}

#[test]
fn four_call_kinds_over_memory_and_tcp() {
    run(async {
        for net in NETS {
            let server = serve(net, |b| b).await;
            let client = Peer::new(net, &server);
            four_call_kinds(&client.to(server.peer())).await;
        }
    });
}

#[test]
fn every_handler_kind_sees_the_remote_peer_id() {
    run(async {
        for net in NETS {
            let server = serve(net, |b| b).await;
            let client = Peer::new(net, &server);
            every_handler_sees(&client.to(server.peer()), &client.name()).await;

            // The same over a stream opened by hand and wrapped.
            let stream = client
                .node
                .open_stream(server.peer(), DEFAULT_PROTOCOL)
                .await
                .unwrap();
            let channel = client.grpc.wrap_client(stream).await.unwrap();
            every_handler_sees(&Grpc::new(channel), &client.name()).await;
        }
    });
}

#[test]
fn sixty_four_peers_opening_streams_at_once_are_all_served() {
    run(async {
        for net in NETS {
            let server = serve(net, |b| b).await;
            let clients: Vec<Peer> = (0..64).map(|_| Peer::new(net, &server)).collect();
            // Connect first, so that the 64 streams are opened together.
            let dialed = join_all(clients.iter().map(|c| c.node.dial(server.addr.clone()))).await;
            assert!(dialed
                .iter()
                .all(|peer| peer.as_ref().ok() == Some(&server.peer())));
            let server_peer = server.peer();
            let replies = join_all(clients.iter().map(|client| async move {
                client
                    .to(server_peer)
                    .unary::<_, Msg>(Request::new(Msg::default()), WHO_UNARY)
                    .await
            }))
            .await;
            for (client, reply) in clients.iter().zip(replies) {
                let reply = reply.unwrap_or_else(|status| panic!("{net:?}: {status:?}"));
                assert_eq!(reply.get_ref().text, client.name());
            }
        }
    });
}

#[test]
fn a_peer_going_away_fails_the_call_and_the_channel_recovers_when_it_is_back() {
    run(async {
        for net in NETS {
            let keypair = Keypair::generate_ed25519();
            let server = serve_on(net.node(Some(keypair.clone())), net.any_addr(), |b| b).await;
            let server_peer = server.peer();
            let client = Peer::new(net, &server);
            let grpc = client.to(server_peer);
            grpc.unary::<_, Msg>(Request::new(Msg::text("before")), UNARY)
                .await
                .unwrap();

            // A bidi call in flight.
            let (_sender, mut replies) = open_chat(&grpc, 1).await;

            // The server goes away.
            server.node.shutdown().await;
            drop(server.grpc);
            let status = match replies.message().await {
                Err(status) => status,
                Ok(Some(_)) => panic!("a reply after the server went away"),
                Ok(None) => panic!("the call ended without a status"),
            };
            assert_eq!(status.code(), Code::Unavailable, "{net:?}: {status:?}");

            // While it is away, calls fail.
            let status = grpc
                .unary::<_, Msg>(Request::new(Msg::text("away")), UNARY)
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::Unavailable, "{net:?}: {status:?}");

            // The client's node has seen the old connection end (else its
            // next stream could be opened on a connection being torn down).
            let mut gone = false;
            for _ in 0..2_000 {
                if !client.node.connected_peers().await.contains(&server_peer) {
                    gone = true;
                    break;
                }
                runtime().sleep(Duration::from_millis(5)).await;
            }
            assert!(
                gone,
                "{net:?}: the client still has a connection to the server"
            );

            // It comes back with the same identity and address.
            let mut listen = server.addr.clone();
            listen.pop();
            let back = serve_on(net.node(Some(keypair)), listen, |b| b).await;
            assert_eq!(back.peer(), server_peer);
            // The channel backs off after the failed attempts while the
            // peer was away: a call that waits for ready goes through as
            // soon as the backoff allows.
            let mut request =
                Request::new(Msg::text("after")).with_timeout(Duration::from_secs(30));
            request.set_wait_for_ready(true);
            let reply = grpc
                .unary::<_, Msg>(request, UNARY)
                .await
                .unwrap_or_else(|status| panic!("{net:?}: {status:?}"));
            assert_eq!(reply.get_ref().text, "after");
            let reply = grpc
                .unary::<_, Msg>(Request::new(Msg::default()), WHO_UNARY)
                .await
                .unwrap();
            assert_eq!(reply.get_ref().text, client.name());
        }
    });
}

#[test]
fn the_authorisation_hook_sees_peer_and_method() {
    run(async {
        for net in NETS {
            let denied = net.node(None);
            let denied_id = denied.peer_id();
            let server = serve(net, move |b| {
                b.authorize(move |peer, info| {
                    if peer == denied_id
                        && info.method() == "Unary"
                        && info.service() == "test.Echo"
                    {
                        Err(Status::permission_denied("not you"))
                    } else {
                        Ok(())
                    }
                })
            })
            .await;
            denied.add_address(server.peer(), server.addr.clone());
            let denied = Peer {
                grpc: GrpcStream::new(denied.control()).unwrap(),
                node: denied,
            };
            let allowed = Peer::new(net, &server);

            let grpc = denied.to(server.peer());
            let status = grpc
                .unary::<_, Msg>(Request::new(Msg::text("hi")), UNARY)
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::PermissionDenied);
            assert_eq!(status.message(), "not you");
            // Other methods stay allowed to the same peer on the same channel.
            every_handler_sees(&grpc, &denied.name()).await;
            // And the method stays allowed to other peers.
            allowed
                .to(server.peer())
                .unary::<_, Msg>(Request::new(Msg::text("hi")), UNARY)
                .await
                .unwrap();

            // Calls with no libp2p peer (the same server over TCP) are refused.
            let channel = Channel::connect_tcp(tcp_server(server.grpc.grpc_server()))
                .await
                .unwrap();
            let status = Grpc::new(channel)
                .unary::<_, Msg>(Request::new(Msg::default()), WHO_UNARY)
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated);
        }
    });
}

#[test]
fn the_same_server_serves_tcp_without_a_peer_id() {
    run(async {
        let server = serve(Net::Memory, |b| b).await;
        let channel = Channel::connect_tcp(tcp_server(server.grpc.grpc_server()))
            .await
            .unwrap();
        let grpc = Grpc::new(channel);
        four_call_kinds(&grpc).await;
        every_handler_sees(&grpc, "").await;
    });
}

#[test]
fn shutdown_lets_running_calls_finish_and_refuses_new_streams() {
    run(async {
        for net in NETS {
            let mut server = serve(net, |b| b).await;
            let client = Peer::new(net, &server);
            let grpc = client.to(server.peer());
            let (result_tx, result) = oneshot::channel();
            let slow = grpc.clone();
            runtime().spawn(Box::pin(async move {
                let reply = slow
                    .unary::<_, Msg>(Request::new(Msg::count("slow", 1_000)), SLOW)
                    .await;
                let _ = result_tx.send(reply);
            }));
            assert_eq!(
                next_event(&mut server.events).await,
                Event::Started("slow".into())
            );

            let fresh = client.to(server.peer());
            let ((), late) = futures::join!(server.grpc.shutdown(Duration::from_secs(30)), async {
                // `join!` polled the shutdown first: it has begun.
                assert!(server.grpc.is_shutting_down());
                fresh
                    .unary::<_, Msg>(Request::new(Msg::text("late")), UNARY)
                    .await
            });
            let status = late.unwrap_err();
            assert_eq!(status.code(), Code::Unavailable, "{net:?}: {status:?}");

            let reply = result.await.unwrap().unwrap();
            assert_eq!(reply.get_ref().text, "slow");
            assert_eq!(
                next_event(&mut server.events).await,
                Event::Finished("slow".into())
            );
            assert_eq!(server.grpc.grpc_server().connection_count(), 0);

            // Nothing is accepted any more, on any channel.
            let status = grpc
                .unary::<_, Msg>(Request::new(Msg::text("later")), UNARY)
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::Unavailable, "{net:?}: {status:?}");
            assert!(matches!(
                server.grpc.accept().await,
                Err(GrpcStreamError::Serving)
            ));
            assert!(matches!(
                server.grpc.serve(),
                Err(GrpcStreamError::ShutDown)
            ));
        }
    });
}

#[test]
fn a_stream_of_junk_does_not_disturb_other_streams() {
    run(async {
        for net in NETS {
            let server = serve(net, |b| b).await;
            let client = Peer::new(net, &server);
            let grpc = client.to(server.peer());

            // A call in flight on one stream.
            let (mut sender, mut replies) = open_chat(&grpc, 1).await;

            // Junk instead of HTTP/2 on another stream.
            let mut junk = client
                .node
                .open_stream(server.peer(), DEFAULT_PROTOCOL)
                .await
                .unwrap();
            junk.write_all(b"GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n\x00\xff\xfe junk junk")
                .await
                .unwrap();
            junk.flush().await.unwrap();
            // The server gives up on it and closes it (EOF or a reset).
            let mut answer = Vec::new();
            let _ = junk.read_to_end(&mut answer).await;

            // The call in flight goes on, and new calls work.
            feed(&mut sender, Msg::count("ping", 2)).await;
            assert_eq!(replies.message().await.unwrap().unwrap().count, 2);
            drop(sender);
            assert!(replies.message().await.unwrap().is_none());
            let other = client.to(server.peer());
            four_call_kinds(&other).await;
        }
    });
}

#[test]
fn streams_beyond_the_per_peer_limit_are_closed() {
    run(async {
        let server = serve(Net::Memory, |b| b.max_connections_per_peer(Some(2))).await;
        let client = Peer::new(Net::Memory, &server);
        let client_peer = client.node.peer_id();
        let mut kept = Vec::new();
        for _ in 0..2 {
            let stream = client
                .node
                .open_stream(server.peer(), DEFAULT_PROTOCOL)
                .await
                .unwrap();
            let grpc = Grpc::new(client.grpc.wrap_client(stream).await.unwrap());
            let reply = grpc
                .unary::<_, Msg>(Request::new(Msg::default()), WHO_UNARY)
                .await
                .unwrap();
            assert_eq!(reply.get_ref().text, client.name());
            kept.push(grpc);
        }
        assert_eq!(server.grpc.connections_of(&client_peer), 2);

        let stream = client
            .node
            .open_stream(server.peer(), DEFAULT_PROTOCOL)
            .await
            .unwrap();
        if let Ok(channel) = client.grpc.wrap_client(stream).await {
            let status = Grpc::new(channel)
                .unary::<_, Msg>(Request::new(Msg::default()), WHO_UNARY)
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::Unavailable);
        }
        // The kept connections still work.
        for grpc in &kept {
            grpc.unary::<_, Msg>(Request::new(Msg::default()), WHO_UNARY)
                .await
                .unwrap();
        }
        assert_eq!(server.grpc.connections_of(&client_peer), 2);
    });
}

#[test]
fn calls_per_connection_limit_queues_extra_calls() {
    run(async {
        let mut server = serve(Net::Memory, |b| b.max_calls_per_connection(Some(1))).await;
        let client = Peer::new(Net::Memory, &server);
        let grpc = client.to(server.peer());
        // Settle the connection (and its SETTINGS) first.
        grpc.unary::<_, Msg>(Request::new(Msg::default()), UNARY)
            .await
            .unwrap();
        let first = grpc.clone();
        let second = grpc.clone();
        let (a, b) = futures::join!(
            first.unary::<_, Msg>(Request::new(Msg::count("a", 200)), SLOW),
            second.unary::<_, Msg>(Request::new(Msg::count("b", 200)), SLOW),
        );
        a.unwrap();
        b.unwrap();
        // One call at a time: the second started after the first finished.
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(next_event(&mut server.events).await);
        }
        assert!(
            matches!(&seen[..], [Event::Started(x), Event::Finished(y), Event::Started(_), Event::Finished(_)] if x == y),
            "{seen:?}"
        );
    });
}

#[test]
fn accept_and_handle_by_hand_then_serve() {
    run(async {
        let node = Net::Memory.node(None);
        let grpc = GrpcStream::builder()
            .add_service(WhoService)
            .build(node.control())
            .unwrap();
        // One acceptor per protocol and control.
        assert!(matches!(
            GrpcStream::new(node.control()),
            Err(GrpcStreamError::AlreadyRegistered(_))
        ));
        let addr = node.listen_on(Net::Memory.any_addr()).await.unwrap();
        let client = Node::builder().memory_transport().build().unwrap();
        client.add_address(node.peer_id(), addr);
        let client_grpc = GrpcStream::new(client.control()).unwrap();
        let first = Grpc::new(client_grpc.client(node.peer_id()));

        let server = grpc.clone();
        let (accepted, reply) = futures::join!(
            async {
                let (peer, stream) = server.accept().await.unwrap();
                let task = server.clone();
                runtime().spawn(Box::pin(async move {
                    let _ = task.handle(peer, stream).await;
                }));
                peer
            },
            first.unary::<_, Msg>(Request::new(Msg::default()), WHO_UNARY)
        );
        assert_eq!(accepted, client.peer_id());
        assert_eq!(reply.unwrap().get_ref().text, client.peer_id().to_string());

        let handle = grpc.serve().unwrap();
        assert!(matches!(grpc.serve(), Err(GrpcStreamError::Serving)));
        assert!(matches!(grpc.accept().await, Err(GrpcStreamError::Serving)));
        let fresh = Grpc::new(client_grpc.client(node.peer_id()));
        fresh
            .unary::<_, Msg>(Request::new(Msg::default()), WHO_UNARY)
            .await
            .unwrap();
        grpc.shutdown(Duration::from_secs(5)).await;
        handle.await;
    });
}

#[test]
fn one_protocol_per_service() {
    run(async {
        let echo_protocol = StreamProtocol::new("/echo/1");
        let who_protocol = StreamProtocol::new("/who/1");
        let node = Net::Memory.node(None);
        let (events, _events) = mpsc::unbounded();
        let echo = GrpcStream::builder()
            .protocol(echo_protocol.clone())
            .add_service(EchoService::new(runtime(), Some(events)))
            .build(node.control())
            .unwrap();
        let who = GrpcStream::builder()
            .protocol(who_protocol.clone())
            .add_service(WhoService)
            .build(node.control())
            .unwrap();
        echo.serve().unwrap();
        who.serve().unwrap();
        let addr = node.listen_on(Net::Memory.any_addr()).await.unwrap();

        let client = Net::Memory.node(None);
        client.add_address(node.peer_id(), addr);
        let for_echo = GrpcStream::builder()
            .protocol(echo_protocol)
            .build(client.control())
            .unwrap();
        let for_who = GrpcStream::builder()
            .protocol(who_protocol)
            .build(client.control())
            .unwrap();
        four_call_kinds(&Grpc::new(for_echo.client(node.peer_id()))).await;
        every_handler_sees(
            &Grpc::new(for_who.client(node.peer_id())),
            &client.peer_id().to_string(),
        )
        .await;
        // Each protocol only reaches its own service.
        let status = Grpc::new(for_echo.client(node.peer_id()))
            .unary::<_, Msg>(Request::new(Msg::default()), WHO_UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
    });
}

/// SETTINGS_MAX_FRAME_SIZE in the first SETTINGS frame read from `stream`
/// (what a server sends first, or, with `client`, what a client sends after
/// its preface).
async fn advertised_max_frame_size(
    stream: &mut p2p_grpc::libp2p::libp2p::Stream,
    client: bool,
) -> u32 {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let whole = !client || bytes.len() >= frames::PREFACE.len();
        let frames = if whole {
            common::recording::frames(&bytes, client)
        } else {
            Vec::new()
        };
        if let Some((_, settings)) = frames.iter().find(|(kind, _)| *kind == frames::SETTINGS) {
            return settings
                .chunks(6)
                .find(|setting| setting[..2] == [0, 5])
                .map_or(16_384, |setting| {
                    u32::from_be_bytes(setting[2..6].try_into().unwrap())
                });
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the stream ended before a SETTINGS frame");
        bytes.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_grpc_streams_connections_take_64_kib_frames_unless_told_otherwise() {
    run(async {
        let net = Net::Memory;
        for (set, expected) in [
            (None, 65_536),
            (Some(16_384), 16_384),
            (Some(1 << 20), 1 << 20),
        ] {
            // The server's SETTINGS.
            let server = serve(net, |b| match set {
                Some(size) => b.server(p2p_grpc::Server::builder().max_frame_size(size)),
                None => b,
            })
            .await;
            let client = Peer::new(net, &server);
            let mut stream = client.raw_stream(&server).await;
            let mut hello = frames::PREFACE.to_vec();
            frames::frame(&mut hello, frames::SETTINGS, 0, 0, &[]);
            stream.write_all(&hello).await.unwrap();
            assert_eq!(
                advertised_max_frame_size(&mut stream, false).await,
                expected
            );

            // The client's SETTINGS, on a stream a raw node accepts.
            let raw = net.node(None);
            let mut incoming = raw.control().accept(DEFAULT_PROTOCOL).unwrap();
            let addr = raw.listen_on(net.any_addr()).await.unwrap();
            let caller = net.node(None);
            caller.add_address(raw.peer_id(), addr);
            let calling = GrpcStream::builder()
                .channel(match set {
                    Some(size) => Channel::builder().max_frame_size(size),
                    None => Channel::builder(),
                })
                .build(caller.control())
                .unwrap();
            let grpc = Grpc::new(calling.client(raw.peer_id()));
            runtime().spawn(Box::pin(async move {
                let _ = grpc
                    .unary::<_, Msg>(Request::new(Msg::text("hello")), common::UNARY)
                    .await;
            }));
            let (_, mut stream) = incoming.next().await.unwrap();
            assert_eq!(advertised_max_frame_size(&mut stream, true).await, expected);
        }
    });
}
