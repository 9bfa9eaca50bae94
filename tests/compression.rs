//! gzip compression per call, both directions.

mod common;

use common::*;
use futures::StreamExt;
use p2p_grpc::client::Grpc;
use p2p_grpc::compression::MessageCompression;
use p2p_grpc::server::{CallFuture, ServerCall, Service};
use p2p_grpc::{BoxStream, CompressionEncoding, Request, Response};

fn compressible(n: usize) -> Msg {
    Msg {
        text: "squeeze me ".repeat(n),
        payload: vec![b'z'; 64 * 1024],
        ..Msg::default()
    }
}

#[test]
fn client_sends_gzip_and_server_decodes() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await)
                .send_compressed(CompressionEncoding::Gzip);
            let messages = futures::stream::iter(vec![compressible(10), compressible(20)]);
            let response = grpc
                .client_streaming::<_, _, Msg>(Request::new(messages), COLLECT)
                .await
                .unwrap();
            assert_eq!(
                response.metadata().get("x-compressed"),
                Some("true,true"),
                "{transport:?}"
            );
            assert_eq!(response.get_ref().payload.len(), 128 * 1024);
            // Without send_compressed, requests go out plain.
            let plain = Grpc::new(grpc.channel().clone());
            let response = plain
                .client_streaming::<_, _, Msg>(
                    Request::new(futures::stream::iter(vec![compressible(1)])),
                    COLLECT,
                )
                .await
                .unwrap();
            assert_eq!(response.metadata().get("x-compressed"), Some("false"));
        }
    });
}

#[test]
fn server_compresses_when_the_client_accepts() {
    run(async {
        let (server, _events) = echo_server(|b| b.send_compressed(CompressionEncoding::Gzip));
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await)
                .accept_compressed(CompressionEncoding::Gzip);
            let response = grpc
                .server_streaming::<_, Msg>(
                    Request::new(Msg {
                        payload: vec![b'a'; 100_000],
                        count: 3,
                        ..Msg::default()
                    }),
                    EXPAND,
                )
                .await
                .unwrap();
            let mut stream = response.into_inner();
            let mut seen = 0;
            while let Some(message) = stream.next().await {
                assert_eq!(message.unwrap().payload.len(), 100_000);
                assert!(stream.last_message_compressed(), "{transport:?}");
                seen += 1;
            }
            assert_eq!(seen, 3);
            // Unary responses are compressed too, and decode transparently.
            let echoed = grpc
                .unary::<_, Msg>(Request::new(compressible(5)), UNARY)
                .await
                .unwrap();
            assert_eq!(echoed.into_inner(), compressible(5));
            // A client that does not ask gets plain responses.
            let plain = Grpc::new(grpc.channel().clone());
            let response = plain
                .server_streaming::<_, Msg>(Request::new(Msg::count("", 1)), EXPAND)
                .await
                .unwrap();
            let mut stream = response.into_inner();
            stream.message().await.unwrap().unwrap();
            assert!(!stream.last_message_compressed());
        }
    });
}

#[test]
fn compressed_payload_over_the_limit_after_inflation_is_rejected() {
    run(async {
        // 64 KiB of 'z' compresses to a few hundred bytes but inflates past
        // the server's 16 KiB limit: a bomb in miniature, in every codec.
        let (server, _events) = echo_server(|b| b.max_decoding_message_size(16 * 1024));
        let channel = memory_channel(&server).await;
        for &encoding in CompressionEncoding::ALL {
            let grpc = Grpc::new(channel.clone()).send_compressed(encoding);
            let status = grpc
                .unary::<_, Msg>(Request::new(compressible(1)), UNARY)
                .await
                .unwrap_err();
            assert_eq!(
                status.code(),
                p2p_grpc::Code::ResourceExhausted,
                "{encoding:?}"
            );
        }
        // The connection serves other calls still.
        let grpc = Grpc::new(channel).send_compressed(CompressionEncoding::Deflate);
        grpc.unary::<_, Msg>(Request::new(Msg::text("small")), UNARY)
            .await
            .unwrap();
    });
}

#[test]
fn a_client_switches_compression_message_by_message() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let grpc =
            Grpc::new(memory_channel(&server).await).send_compressed(CompressionEncoding::Gzip);
        let switch = MessageCompression::new();
        let flags = switch.clone();
        let messages = futures::stream::iter([true, false, false, true]).map(move |compress| {
            flags.set(compress);
            compressible(3)
        });
        let mut request = Request::new(messages);
        request.extensions_mut().insert(switch);
        let response = grpc
            .client_streaming::<_, _, Msg>(request, COLLECT)
            .await
            .unwrap();
        assert_eq!(
            response.metadata().get("x-compressed"),
            Some("true,false,false,true")
        );
    });
}

/// Streams four messages, compressed or not as the request's `text` says
/// ("1" compressed, "0" plain), through a `MessageCompression` switch.
struct Mixed;

impl Service for Mixed {
    fn name(&self) -> &'static str {
        "test.Mixed"
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        match method {
            "Pour" => call.server_streaming(|request: Request<Msg>| async move {
                let switch = MessageCompression::new();
                let flags = switch.clone();
                let plan: Vec<bool> = request.get_ref().text.chars().map(|c| c == '1').collect();
                let stream = futures::stream::iter(plan).map(move |compress| {
                    flags.set(compress);
                    Ok(compressible(2))
                });
                let stream: BoxStream<Msg> = Box::pin(stream);
                let mut response = Response::new(stream);
                response.extensions_mut().insert(switch);
                Ok(response)
            }),
            _ => call.unimplemented(),
        }
    }
}

#[test]
fn a_server_switches_compression_message_by_message() {
    run(async {
        let (server, _events) = echo_server(|b| {
            b.send_compressed(CompressionEncoding::Gzip)
                .add_service(Mixed)
        });
        let grpc =
            Grpc::new(memory_channel(&server).await).accept_compressed(CompressionEncoding::Gzip);
        let response = grpc
            .server_streaming::<_, Msg>(Request::new(Msg::text("1001")), "/test.Mixed/Pour")
            .await
            .unwrap();
        let mut stream = response.into_inner();
        let mut seen = Vec::new();
        while let Some(message) = stream.message().await.unwrap() {
            assert_eq!(message, compressible(2));
            seen.push(stream.last_message_compressed());
        }
        assert_eq!(seen, [true, false, false, true]);
    });
}
