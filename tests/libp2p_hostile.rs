//! Hostile peers over libp2p (`GrpcStream`), over the memory transport and
//! over TCP: a stream closed in the middle of a message, streams that never
//! speak, a 4 GiB length prefix with no data, more streams than a peer may
//! have, and a peer that trickles a request in byte by byte. Each behaviour
//! has a fixed expected outcome; meanwhile other streams and peers are
//! served, no task panics, and the per-peer connection slots come back.
//!
//! Raw peers speak through the node's control: `open_stream` to the
//! server's protocol, then either bytes by hand or a bare `h2` client over
//! `tokio_util::compat` on the libp2p stream.
#![cfg(feature = "libp2p")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::alloc::{largest_allocation, Counting};
use common::carriers::{frame, next_message, read_response, still_served, RawH2};
use common::libp2p::{serve, Net, Peer, NETS};
use common::watch::{run_watched, ALLOCATION_CEILING};
use common::*;
use futures::future::{join_all, Either};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use p2p_grpc::client::Grpc;
use p2p_grpc::{Code, Request, Server};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---------------------------------------------------------------------------
// Nodes.

/// Waits until `check` holds. The states checked here change in the same
/// task poll that closes the stream the test just saw closed, so the first
/// checks nearly always pass; the bounded retry only covers the moment the
/// server's thread may take to finish that poll.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if check() {
            return;
        }
        yield_now().await;
    }
    for _ in 0..1_000 {
        if check() {
            return;
        }
        runtime().sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: still not true after 1000 yields and 10 s");
}

// ---------------------------------------------------------------------------
// The hostile peers.

#[test]
fn a_stream_closed_in_the_middle_of_a_message_ends_its_calls_only() {
    run_watched(async {
        for net in NETS {
            let mut server = serve(net, |b| b).await;
            let peer = Peer::new(net, &server);

            // A bidi call in flight on a well-behaved channel of the same peer.
            let grpc = peer.client(&server);
            let (mut sender, mut replies) = open_chat(&grpc, 1).await;
            assert_eq!(
                next_event(&mut server.events).await,
                Event::Started("chat".into())
            );

            // On a second stream: a bidi call that got one whole message
            // through, then half of the next one...
            let mut raw = RawH2::over(Box::new(peer.raw_stream(&server).await)).await;
            let (response, mut chat) = raw.start(CHAT).await;
            chat.send_data(frame(&Msg::count("whole", 7)), false)
                .unwrap();
            let mut chat_body = response.await.unwrap().into_body();
            assert_eq!(next_message(&mut chat_body).await.count, 7);
            assert_eq!(
                next_event(&mut server.events).await,
                Event::Started("chat".into())
            );
            let half = frame(&Msg::text("h".repeat(200)));
            chat.send_data(half.slice(..half.len() / 2), false).unwrap();
            // ...and a unary call with half of its only message.
            let (_unary_response, mut unary) = raw.start(SLOW).await;
            let half = frame(&Msg::count("never-started", 1));
            unary
                .send_data(half.slice(..half.len() / 2), false)
                .unwrap();
            raw.sync().await;
            assert_eq!(server.grpc.connections_of(&peer.id()), 2, "{net:?}");

            // The stream goes away mid-message.
            raw.drop_stream();
            // The bidi handler is dropped; the unary one never started
            // (its request never completed): the next event is the drop.
            assert_eq!(
                next_event(&mut server.events).await,
                Event::Dropped("chat".into()),
                "{net:?}"
            );
            let server_grpc = &server.grpc;
            let id = peer.id();
            until("the slot of the dropped stream is freed", || {
                server_grpc.connections_of(&id) == 1
            })
            .await;

            // The call in flight on the other stream goes on and ends well.
            feed(&mut sender, Msg::count("ping", 2)).await;
            assert_eq!(replies.message().await.unwrap().unwrap().count, 2);
            drop(sender);
            assert!(replies.message().await.unwrap().is_none());
            assert_eq!(
                next_event(&mut server.events).await,
                Event::Finished("chat".into())
            );
            // New calls work, from this peer and from another.
            still_served(&grpc, "same peer").await;
            still_served(&Peer::new(net, &server).client(&server), "other peer").await;
        }
    });
}

#[test]
fn streams_that_never_speak_are_closed_at_the_handshake_timeout() {
    run_watched(async {
        for net in NETS {
            let handshake_timeout = Duration::from_millis(600);
            let server = serve(net, |b| {
                b.server(Server::builder().handshake_timeout(handshake_timeout))
                    .max_connections_per_peer(Some(3))
            })
            .await;
            let silent = Peer::new(net, &server);
            let id = silent.id();

            // Three streams (the peer's limit) that never send a byte.
            let mut streams = Vec::new();
            for _ in 0..3 {
                streams.push(silent.raw_stream(&server).await);
            }
            let server_grpc = &server.grpc;
            until("the silent streams are being served", || {
                server_grpc.connections_of(&id) == 3
            })
            .await;

            // Meanwhile another peer is served, and a fourth silent stream
            // is refused at once: closed without a byte of HTTP/2 (a served
            // stream first gets the server's SETTINGS).
            let other = Peer::new(net, &server);
            still_served(&other.client(&server), "other peer").await;
            let mut fourth = silent.raw_stream(&server).await;
            let mut got = Vec::new();
            let _ = fourth.read_to_end(&mut got).await;
            assert!(got.is_empty(), "{net:?}: the extra stream got {got:?}");
            assert_eq!(server.grpc.connections_of(&id), 3, "{net:?}");

            // The server closes each silent stream after the timeout: the
            // peer reads the server's SETTINGS, then the end of the stream.
            let started = std::time::Instant::now();
            let reads = join_all(streams.iter_mut().map(|stream| async move {
                let mut got = Vec::new();
                let _ = stream.read_to_end(&mut got).await;
                got
            }))
            .await;
            for got in reads {
                assert!(!got.is_empty(), "{net:?}: no SETTINGS before the close");
            }
            assert!(started.elapsed() < handshake_timeout * 10, "{net:?}");
            until("the silent peer's slots are freed", || {
                server_grpc.connections_of(&id) == 0
            })
            .await;

            // The slots are free again: the same peer is served.
            let grpc = silent.wrapped(&server).await.unwrap();
            still_served(&grpc, "silent peer, speaking now").await;
            assert_eq!(server.grpc.connections_of(&id), 1);
        }
    });
}

#[test]
fn a_declared_length_of_4_gib_with_no_data_is_resource_exhausted() {
    run_watched(async {
        for net in NETS {
            let server = serve(net, |b| b).await;
            let peer = Peer::new(net, &server);
            let mut raw = RawH2::over(Box::new(peer.raw_stream(&server).await)).await;

            // 0xffff_ffff bytes declared, none sent, the stream left open.
            let (response, mut body) = raw.start(UNARY).await;
            body.send_data(Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]), false)
                .unwrap();
            let (status, messages) = read_response(response).await;
            assert_eq!(
                status.code(),
                Code::ResourceExhausted,
                "{net:?}: {status:?}"
            );
            assert!(messages.is_empty());
            let largest = largest_allocation();
            assert!(largest < ALLOCATION_CEILING, "{net:?}: allocated {largest}");

            // The same libp2p stream keeps serving.
            let (response, mut body) = raw.start(UNARY).await;
            body.send_data(frame(&Msg::text("after")), true).unwrap();
            let (status, messages) = read_response(response).await;
            assert_eq!(status.code(), Code::Ok, "{status:?}");
            assert_eq!(messages, [Msg::text("after")]);
        }
    });
}

#[test]
fn a_declared_length_of_4_gib_under_no_limit_reserves_nothing() {
    run_watched(async {
        for net in NETS {
            // With the message limit lifted, the memory budget still refuses
            // a message it could never hold.
            let server = serve(net, |b| {
                b.server(Server::builder().max_decoding_message_size(usize::MAX))
            })
            .await;
            let peer = Peer::new(net, &server);
            let mut raw = RawH2::over(Box::new(peer.raw_stream(&server).await)).await;
            let (response, mut body) = raw.start(UNARY).await;
            body.send_data(Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]), false)
                .unwrap();
            let (status, _) = read_response(response).await;
            assert_eq!(
                status.code(),
                Code::ResourceExhausted,
                "{net:?}: {status:?}"
            );
            assert!(status.message().contains("memory budget"), "{status:?}");
            // With the budget lifted too the prefix is accepted: the server
            // waits for the data, holding only what arrived.
            let server = serve(net, |b| {
                b.server(
                    Server::builder()
                        .max_decoding_message_size(usize::MAX)
                        .memory_budget(None),
                )
            })
            .await;
            let peer = Peer::new(net, &server);
            let mut raw = RawH2::over(Box::new(peer.raw_stream(&server).await)).await;
            let (response, mut body) = raw.start(UNARY).await;
            body.send_data(Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]), false)
                .unwrap();
            raw.sync().await;
            let largest = largest_allocation();
            assert!(largest < ALLOCATION_CEILING, "{net:?}: allocated {largest}");
            // The request ends there: a truncated message.
            body.send_data(Bytes::new(), true).unwrap();
            let (status, _) = read_response(response).await;
            assert_eq!(status.code(), Code::Internal, "{net:?}: {status:?}");
            let largest = largest_allocation();
            assert!(largest < ALLOCATION_CEILING, "{net:?}: allocated {largest}");
        }
    });
}

#[test]
fn streams_beyond_the_per_peer_limit_are_refused_and_the_others_work() {
    run_watched(async {
        for net in NETS {
            let server = serve(net, |b| b.max_connections_per_peer(Some(3))).await;
            let greedy = Peer::new(net, &server);
            let id = greedy.id();
            // Connect first, so that the six streams are opened together.
            greedy.node.dial(server.addr.clone()).await.unwrap();

            // Six streams at once: three are served, three refused.
            let clients = join_all((0..6).map(|_| async {
                let grpc = greedy.wrapped(&server).await.ok()?;
                let reply = grpc
                    .unary::<_, Msg>(Request::new(Msg::text("mine")), UNARY)
                    .await;
                match reply {
                    Ok(reply) => {
                        assert_eq!(reply.get_ref().text, "mine");
                        Some(grpc)
                    }
                    Err(status) => {
                        assert_eq!(status.code(), Code::Unavailable, "{net:?}: {status:?}");
                        None
                    }
                }
            }))
            .await;
            let mut kept: Vec<Grpc> = clients.into_iter().flatten().collect();
            assert_eq!(kept.len(), 3, "{net:?}");
            assert_eq!(server.grpc.connections_of(&id), 3, "{net:?}");

            // Another peer is not affected by this one's limit.
            still_served(&Peer::new(net, &server).client(&server), "other peer").await;
            // The kept streams keep working.
            for grpc in &kept {
                still_served(grpc, "kept").await;
            }
            // Once one closes, its slot serves a new stream.
            drop(kept.pop());
            let server_grpc = &server.grpc;
            until("the closed stream's slot is freed", || {
                server_grpc.connections_of(&id) == 2
            })
            .await;
            let grpc = greedy.wrapped(&server).await.unwrap();
            still_served(&grpc, "in the freed slot").await;
            assert_eq!(server.grpc.connections_of(&id), 3, "{net:?}");
            // And the limit holds again.
            let refused = match greedy.wrapped(&server).await {
                Err(_) => true,
                Ok(grpc) => grpc
                    .unary::<_, Msg>(Request::new(Msg::text("one too many")), UNARY)
                    .await
                    .is_err_and(|status| status.code() == Code::Unavailable),
            };
            assert!(refused, "{net:?}");
        }
    });
}

#[test]
fn a_peer_trickling_a_request_is_closed_by_the_idle_timeout() {
    run_watched(async {
        for net in NETS {
            let idle_timeout = Duration::from_millis(500);
            let server = serve(net, |b| {
                b.server(Server::builder().idle_timeout(idle_timeout))
            })
            .await;
            let trickler = Peer::new(net, &server);
            let id = trickler.id();
            // Before the stream exists, so before the server's idle timer.
            let started = std::time::Instant::now();
            let stream = trickler.raw_stream(&server).await;
            let (mut reader, mut writer) = stream.split();

            // A valid preface and SETTINGS, then a HEADERS frame declaring
            // 16000 bytes of header block, sent one byte every 20 ms: it
            // would take five minutes to complete.
            writer
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .await
                .unwrap();
            writer
                .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
                .await
                .unwrap();
            writer
                .write_all(&[0, 0x3e, 0x80, 1, 4, 0, 0, 0, 1])
                .await
                .unwrap();
            writer.flush().await.unwrap();
            let trickle = async {
                for _ in 0..500 {
                    if writer.write_all(&[0x40]).await.is_err() || writer.flush().await.is_err() {
                        return true;
                    }
                    runtime().sleep(Duration::from_millis(20)).await;
                }
                false
            };
            let closed = async {
                let mut got = Vec::new();
                let _ = reader.read_to_end(&mut got).await;
            };
            // Meanwhile another peer is served.
            let other = async {
                still_served(&Peer::new(net, &server).client(&server), "other peer").await;
            };
            let (closed, trickle) = (std::pin::pin!(closed), std::pin::pin!(trickle));
            let ((), outcome) = futures::join!(other, futures::future::select(closed, trickle));
            match outcome {
                // The server closed the stream while the peer trickled.
                Either::Left(((), _)) => {}
                Either::Right((write_failed, _)) => {
                    assert!(write_failed, "{net:?}: still open after 10 s of trickling");
                }
            }
            assert!(started.elapsed() >= idle_timeout, "{net:?}");
            let server_grpc = &server.grpc;
            until("the trickler's slot is freed", || {
                server_grpc.connections_of(&id) == 0
            })
            .await;
            // The same peer, speaking properly, is served.
            still_served(&trickler.client(&server), "trickler, speaking now").await;
        }
    });
}

/// The raw helpers are for hostile peers only: check the response reader
/// against a well-formed call, so that a failure above is not the helper's.
#[test]
fn the_raw_client_reads_a_well_formed_call() {
    run_watched(async {
        let server = serve(Net::Memory, |b| b).await;
        let peer = Peer::new(Net::Memory, &server);
        let mut raw = RawH2::over(Box::new(peer.raw_stream(&server).await)).await;
        let (response, mut body) = raw.start(EXPAND).await;
        body.send_data(frame(&Msg::count("x", 3)), true).unwrap();
        let (status, messages) = read_response(response).await;
        assert_eq!(status.code(), Code::Ok);
        assert_eq!(messages.len(), 3);
    });
}

/// The serving node closing a peer's libp2p connection (here with
/// `Node::disconnect`; also `Node::shutdown`, or an idle connection
/// timeout) frees that peer's connection slots, even for gRPC connections
/// with nothing to send. yamux does not wake a pending reader when its own
/// side closes the connection (libp2p/rust-yamux#216), so without a remedy
/// such connections never end and the peer is locked out once it reaches
/// its limit.
#[test]
fn connections_closed_by_the_serving_node_free_their_slots() {
    run_watched(async {
        for net in NETS {
            let server = serve(net, |b| b.max_connections_per_peer(Some(1))).await;
            let peer = Peer::new(net, &server);
            let id = peer.id();
            let grpc = peer.client(&server);
            still_served(&grpc, "before").await;
            assert_eq!(server.grpc.connections_of(&id), 1);

            // The server's node drops the peer; the gRPC connection was idle.
            server.node.disconnect(id).await;
            let server_grpc = &server.grpc;
            until("the disconnected peer's slot is freed", || {
                server_grpc.connections_of(&id) == 0
            })
            .await;
            // The peer comes back through the same channel and is served.
            still_served(&grpc, "after").await;
        }
    });
}

/// A client that cancels many calls on one long-lived connection keeps
/// it. After a cancellation the server's frames still in flight reach a
/// stream the client has forgotten (h2 remembers 50 reset streams), and
/// the client's h2 answers each with a RST_STREAM it counts against a
/// lifetime limit of 1024 "error resets" (hyperium/h2#856): once past it,
/// the client tore its own connection down with ENHANCE_YOUR_CALM, failing
/// every call on it with RESOURCE_EXHAUSTED. Found by the soak run.
#[test]
fn a_client_cancelling_many_calls_keeps_its_connection() {
    run_watched(async {
        let server = serve(Net::Memory, |b| b).await;
        let peer = Peer::new(Net::Memory, &server);
        let grpc = peer.client(&server);
        for i in 0..1_500 {
            // A long stream the server keeps writing; read one message,
            // drop the rest. (Messages of 300 bytes: h2 also limits how
            // many DATA frames under 256 bytes may wait unread.)
            let request = Msg {
                payload: vec![7; 300],
                ..Msg::count("many", 40)
            };
            let mut replies = grpc
                .server_streaming::<_, Msg>(Request::new(request), EXPAND)
                .await
                .unwrap_or_else(|status| panic!("call {i}: {status:?}"))
                .into_inner();
            replies
                .message()
                .await
                .unwrap_or_else(|status| panic!("call {i}: {status:?}"))
                .unwrap();
            drop(replies);
        }
        still_served(&grpc, "after many cancellations").await;
        assert_eq!(
            server.grpc.connections_of(&peer.id()),
            1,
            "one connection throughout"
        );
    });
}

/// A slow reader of a fast stream of small messages keeps its connection.
///
/// Since h2 0.4.16 a receiver may hold only so many unread DATA frames
/// under 256 bytes (a budget of half the connection window,
/// "too_many_data_frames"): 10,000 messages of a few bytes sent one DATA
/// frame each would exhaust it while the client reads slowly, and its h2
/// would tear the connection down. The server gathers the messages that
/// are ready into one write, so they travel in a few large frames.
#[test]
fn a_slow_reader_of_many_small_messages_keeps_its_connection() {
    run_watched(async {
        let server = serve(Net::Memory, |b| b).await;
        let peer = Peer::new(Net::Memory, &server);
        let grpc = peer.client(&server);
        let mut replies = grpc
            .server_streaming::<_, Msg>(Request::new(Msg::count("small", 10_000)), EXPAND)
            .await
            .unwrap()
            .into_inner();
        replies.message().await.unwrap().unwrap();
        // A slow consumer: the server meanwhile writes what flow control
        // allows (all of it).
        runtime().sleep(Duration::from_millis(300)).await;
        let mut count = 1;
        while let Some(message) = replies
            .message()
            .await
            .unwrap_or_else(|status| panic!("after {count} messages: {status:?}"))
        {
            assert_eq!(message.count, count);
            count += 1;
        }
        assert_eq!(count, 10_000);
    });
}
