//! The four call kinds, with metadata, trailers and statuses, over an
//! in-memory pipe and over TCP.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use futures::StreamExt;
use p2p_grpc::client::Grpc;
use p2p_grpc::{Channel, Code, Request};

#[test]
fn unary_echoes_message_metadata_and_trailers() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await);
            let mut request = Request::new(Msg::count("hello", 7));
            request
                .metadata_mut()
                .insert("x-echo", "ascii value")
                .unwrap();
            request
                .metadata_mut()
                .insert_bin("x-trailer-bin", [0u8, 1, 2, 255])
                .unwrap();
            let response = grpc.unary::<_, Msg>(request, UNARY).await.unwrap();
            assert_eq!(response.get_ref(), &Msg::count("hello", 7), "{transport:?}");
            assert_eq!(response.metadata().get("x-echo"), Some("ascii value"));
            assert_eq!(
                response
                    .trailers()
                    .get_bin("x-trailer-bin")
                    .unwrap()
                    .unwrap(),
                &[0u8, 1, 2, 255][..]
            );
        }
    });
}

#[test]
fn error_status_keeps_code_and_special_characters() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let message = "tab\t newline\n percent 100% unicode \u{1F600} \u{e9}";
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await);
            for code in [
                Code::InvalidArgument,
                Code::NotFound,
                Code::Internal,
                Code::Unauthenticated,
            ] {
                let text = format!("fail:{}:{message}", code as i32);
                let status = grpc
                    .unary::<_, Msg>(Request::new(Msg::text(text)), UNARY)
                    .await
                    .unwrap_err();
                assert_eq!(status.code(), code, "{transport:?}");
                assert_eq!(status.message(), message);
            }
        }
    });
}

#[test]
fn unknown_method_and_service_are_unimplemented() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let grpc = Grpc::new(memory_channel(&server).await);
        let status = grpc
            .unary::<_, Msg>(Request::new(Msg::default()), MISSING)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        let status = grpc
            .unary::<_, Msg>(Request::new(Msg::default()), "/nope.Service/Call")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        // The connection still serves calls.
        grpc.unary::<_, Msg>(Request::new(Msg::text("ok")), UNARY)
            .await
            .unwrap();
    });
}

#[test]
fn client_streaming_collects_every_message() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await);
            let messages = futures::stream::iter((0..100).map(|i| Msg::count(format!("{i},"), i)));
            let response = grpc
                .client_streaming::<_, _, Msg>(Request::new(messages), COLLECT)
                .await
                .unwrap();
            let expected: String = (0..100).map(|i| format!("{i},")).collect();
            assert_eq!(response.get_ref().text, expected, "{transport:?}");
            assert_eq!(response.get_ref().count, (0..100).sum::<u32>());
            // An empty stream is a valid call.
            let response = grpc
                .client_streaming::<_, _, Msg>(
                    Request::new(futures::stream::empty::<Msg>()),
                    COLLECT,
                )
                .await
                .unwrap();
            assert_eq!(response.into_inner(), Msg::default());
        }
    });
}

#[test]
fn client_streaming_server_error_reaches_client() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let grpc = Grpc::new(memory_channel(&server).await);
        let messages = futures::stream::iter(vec![
            Msg::text("a"),
            Msg::text("fail:9:no way"),
            Msg::text("c"),
        ]);
        let status = grpc
            .client_streaming::<_, _, Msg>(Request::new(messages), COLLECT)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "no way");
    });
}

#[test]
fn server_streaming_delivers_in_order_and_ends() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await);
            let response = grpc
                .server_streaming::<_, Msg>(Request::new(Msg::count("", 500)), EXPAND)
                .await
                .unwrap();
            let mut stream = response.into_inner();
            let mut seen = 0;
            while let Some(message) = stream.message().await.unwrap() {
                assert_eq!(message.count, seen, "{transport:?}");
                seen += 1;
            }
            assert_eq!(seen, 500);
            assert!(stream.message().await.unwrap().is_none());
        }
    });
}

#[test]
fn server_streaming_error_mid_stream_arrives_after_messages() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let grpc = Grpc::new(memory_channel(&server).await);
        let response = grpc
            .server_streaming::<_, Msg>(Request::new(Msg::count("fail:3", 10)), EXPAND)
            .await
            .unwrap();
        let items: Vec<_> = response.into_inner().collect().await;
        assert_eq!(items.len(), 4);
        assert!(items[..3].iter().all(|item| item.is_ok()));
        let status = items[3].as_ref().unwrap_err();
        assert_eq!(status.code(), Code::Aborted);
        assert_eq!(status.message(), "failed after 3");
    });
}

#[test]
fn server_streaming_of_nothing_ends_cleanly() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let grpc = Grpc::new(memory_channel(&server).await);
        let response = grpc
            .server_streaming::<_, Msg>(Request::new(Msg::count("", 0)), EXPAND)
            .await
            .unwrap();
        let mut stream = response.into_inner();
        assert!(stream.message().await.unwrap().is_none());
        assert!(stream.trailers().await.unwrap().is_some());
    });
}

#[test]
fn bidi_interleaves_requests_and_responses() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await);
            let (mut sender, receiver) = feeder();
            // The first message goes out before any response header exists.
            feed(&mut sender, Msg::count("ping", 0)).await;
            let mut replies = grpc
                .streaming::<_, _, Msg>(Request::new(receiver), CHAT)
                .await
                .unwrap();
            assert_eq!(replies.message().await.unwrap().unwrap().text, "ping");
            for i in 1..50 {
                feed(&mut sender, Msg::count("ping", i)).await;
                let reply = replies.message().await.unwrap().unwrap();
                assert_eq!(reply.count, i, "{transport:?}");
            }
            drop(sender);
            assert!(replies.message().await.unwrap().is_none());
        }
    });
}

#[test]
fn bidi_server_error_ends_the_stream_with_status() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let grpc = Grpc::new(memory_channel(&server).await);
        let (mut sender, receiver) = feeder();
        let mut replies = grpc
            .streaming::<_, _, Msg>(Request::new(receiver), CHAT)
            .await
            .unwrap();
        feed(&mut sender, Msg::text("one")).await;
        assert_eq!(replies.message().await.unwrap().unwrap().text, "one");
        feed(&mut sender, Msg::text("fail:10:stop it")).await;
        let status = replies.message().await.unwrap_err();
        assert_eq!(status.code(), Code::Aborted);
        assert_eq!(status.message(), "stop it");
        assert!(replies.next().await.is_none());
    });
}

#[test]
fn empty_and_multi_megabyte_messages_round_trip() {
    run(async {
        let (server, _events) = echo_server(|b| b.max_decoding_message_size(16 * 1024 * 1024));
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await)
                .max_decoding_message_size(16 * 1024 * 1024);
            let empty = grpc
                .unary::<_, Msg>(Request::new(Msg::default()), UNARY)
                .await
                .unwrap();
            assert_eq!(empty.into_inner(), Msg::default());
            let payload: Vec<u8> = (0..6 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
            let big = Msg {
                payload: payload.clone(),
                ..Msg::default()
            };
            let echoed = grpc
                .unary::<_, Msg>(Request::new(big), UNARY)
                .await
                .unwrap();
            assert_eq!(echoed.get_ref().payload, payload, "{transport:?}");
            // Several big messages streamed back.
            let response = grpc
                .server_streaming::<_, Msg>(
                    Request::new(Msg {
                        payload: payload[..2 * 1024 * 1024].to_vec(),
                        count: 4,
                        ..Msg::default()
                    }),
                    EXPAND,
                )
                .await
                .unwrap();
            let items: Vec<_> = response.into_inner().collect().await;
            assert_eq!(items.len(), 4);
            for item in items {
                assert_eq!(item.unwrap().payload.len(), 2 * 1024 * 1024);
            }
        }
    });
}

#[test]
fn a_thousand_concurrent_calls_share_one_connection() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let addr = tcp_server(&server);
        for transport in TRANSPORTS {
            // A channel that counts the connections it opens.
            let connects = Arc::new(AtomicUsize::new(0));
            let counted = connects.clone();
            let served = server.clone();
            let channel = Channel::builder()
                .connect_lazy(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let served = served.clone();
                    async move {
                        match transport {
                            Transport::Tcp => runtime().tcp_connect(addr).await,
                            Transport::Memory => {
                                let (client_io, server_io) = p2p_grpc::io::duplex(256 * 1024);
                                runtime().spawn(Box::pin(async move {
                                    let _ = served.serve_connection(server_io).await;
                                }));
                                Ok(Box::new(client_io) as p2p_grpc::io::BoxIo)
                            }
                        }
                    }
                })
                .unwrap();
            let grpc = Grpc::new(channel);
            let calls = (0..1000u32).map(|i| {
                let grpc = grpc.clone();
                async move {
                    let response = grpc
                        .unary::<_, Msg>(Request::new(Msg::count("c", i)), UNARY)
                        .await
                        .unwrap();
                    assert_eq!(response.get_ref().count, i);
                }
            });
            futures::future::join_all(calls).await;
            assert_eq!(connects.load(Ordering::SeqCst), 1, "{transport:?}");
            assert_eq!(server.connection_count(), 1, "{transport:?}");
            drop(grpc);
            until(|| server.connection_count() == 0).await;
        }
    });
}

#[test]
fn transport_extensions_reach_the_handler() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let mut extensions = http::Extensions::new();
        extensions.insert(PeerTag("peer-42".into()));
        let served = server.clone();
        runtime().spawn(Box::pin(async move {
            let _ = served.serve_connection_with(server_io, extensions).await;
        }));
        let grpc = Grpc::new(p2p_grpc::Channel::connect(client_io).await.unwrap());
        let response = grpc
            .unary::<_, Msg>(Request::new(Msg::default()), PEER)
            .await
            .unwrap();
        assert_eq!(response.get_ref().text, "peer-42");
    });
}

#[test]
fn oversize_messages_are_resource_exhausted_both_ways() {
    run(async {
        let (server, _events) = echo_server(|b| b.max_decoding_message_size(1024));
        let grpc = Grpc::new(memory_channel(&server).await);
        let big = Msg {
            payload: vec![7; 4096],
            ..Msg::default()
        };
        let status = grpc
            .unary::<_, Msg>(Request::new(big.clone()), UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        // Client-side encoding limit: nothing is sent.
        let limited = grpc.clone().max_encoding_message_size(100);
        let status = limited
            .unary::<_, Msg>(Request::new(big), UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        // Client-side decoding limit on a response.
        let small_reader = grpc.clone().max_decoding_message_size(10);
        let status = small_reader
            .unary::<_, Msg>(
                Request::new(Msg::text("a text longer than ten bytes")),
                UNARY,
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        // The connection keeps working.
        grpc.unary::<_, Msg>(Request::new(Msg::text("fine")), UNARY)
            .await
            .unwrap();
    });
}
