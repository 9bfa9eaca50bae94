//! Hostile peers: each behaviour has a fixed expected outcome, and the
//! server keeps serving everyone else with bounded memory.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::AsyncWriteExt;
use p2p_grpc::client::Grpc;
use p2p_grpc::{Channel, Request};
use tokio_util::compat::FuturesAsyncReadCompatExt;

#[test]
fn a_reader_that_never_reads_bounds_the_servers_memory() {
    run(async {
        let produced = Arc::new(AtomicUsize::new(0));
        let (server, _events) = echo_server(|b| {
            b.add_service(Flood {
                produced: produced.clone(),
            })
        });
        let grpc = Grpc::new(memory_channel(&server).await);
        // Start the flood and never read it.
        let response = grpc
            .server_streaming::<_, Msg>(Request::new(Msg::default()), FLOOD)
            .await
            .unwrap();
        // Other calls on the same connection go on.
        for i in 0..20 {
            let reply = grpc
                .unary::<_, Msg>(Request::new(Msg::count("meanwhile", i)), UNARY)
                .await
                .unwrap();
            assert_eq!(reply.get_ref().count, i);
        }
        // Give an unbounded sender every chance to overproduce.
        runtime().sleep(Duration::from_millis(300)).await;
        let held = produced.load(Ordering::SeqCst);
        // Flow-control windows (1 MiB per stream, 2 MiB per connection) and
        // h2's send buffer bound what the server holds: a few dozen 64 KiB
        // messages, not the thousands an unbounded sender would make.
        assert!(
            held <= 48,
            "server produced {held} messages for a reader that reads none"
        );
        // Reading resumes the flow, and the bound holds all along: what was
        // produced and not read stays within the windows.
        let mut stream = response.into_inner();
        for read in 1..=100 {
            stream.message().await.unwrap().unwrap();
            let ahead = produced.load(Ordering::SeqCst) - read;
            assert!(ahead <= 48, "{ahead} messages ahead of the reader");
        }
    });
}

#[test]
fn calls_beyond_the_stream_limit_wait_their_turn() {
    run(async {
        let (server, mut events) = echo_server(|b| b.max_concurrent_streams(Some(4)));
        let grpc = Grpc::new(memory_channel(&server).await);
        let calls = (0..20).map(|i| {
            let grpc = grpc.clone();
            async move {
                grpc.unary::<_, Msg>(Request::new(Msg::count(format!("c{i}"), 20)), SLOW)
                    .await
                    .unwrap()
            }
        });
        let watch = async {
            let (mut running, mut most, mut finished) = (0i32, 0i32, 0);
            while finished < 20 {
                match next_event(&mut events).await {
                    Event::Started(_) => running += 1,
                    Event::Finished(_) | Event::Dropped(_) => {
                        running -= 1;
                        finished += 1;
                    }
                }
                most = most.max(running);
            }
            most
        };
        let (replies, most) = futures::join!(futures::future::join_all(calls), watch);
        assert_eq!(replies.len(), 20);
        assert!(most <= 4, "{most} calls ran at once with a limit of 4");
    });
}

#[test]
fn a_rapid_reset_flood_leaves_the_server_serving() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let (client_io, server_io) = p2p_grpc::io::duplex(256 * 1024);
        let served = server.clone();
        let (ended_tx, ended_rx) = futures::channel::oneshot::channel();
        runtime().spawn(Box::pin(async move {
            let _ = ended_tx.send(served.serve_connection(server_io).await);
        }));
        let (send, connection) = h2::client::handshake(client_io.compat()).await.unwrap();
        runtime().spawn(Box::pin(async move {
            let _ = connection.await;
        }));
        // Open and reset thousands of streams as fast as h2 lets us.
        let mut opened = 0;
        for _ in 0..5000 {
            let Ok(mut ready) = send.clone().ready().await else {
                break;
            };
            let request = http::Request::builder()
                .method("POST")
                .uri(format!("http://localhost{SLOW}"))
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let Ok((_response, mut stream)) = ready.send_request(request, false) else {
                break;
            };
            stream.send_reset(h2::Reason::CANCEL);
            opened += 1;
        }
        assert!(opened > 0);
        drop(send);
        // Two outcomes only, depending on how fast the server accepts: it
        // kept up with every reset (the connection then ends when the
        // client leaves), or h2's rapid-reset guard cut the flood off with
        // GOAWAY ENHANCE_YOUR_CALM, which serving the connection reports.
        match ended_rx.await.unwrap() {
            Ok(()) => assert_eq!(opened, 5000, "stopped without an error"),
            Err(err) => {
                assert_eq!(err.http2_code(), Some(0xb), "{err}");
                assert!(err.is_http2(), "{err}");
                assert!(opened < 5000);
            }
        }
        let grpc = Grpc::new(memory_channel(&server).await);
        grpc.unary::<_, Msg>(Request::new(Msg::text("after the flood")), UNARY)
            .await
            .unwrap();
    });
}

#[test]
fn a_header_block_past_the_limit_is_refused() {
    run(async {
        let (server, _events) = echo_server(|b| b.max_header_list_size(8 * 1024));
        let grpc = Grpc::new(memory_channel(&server).await);
        let mut request = Request::new(Msg::text("fat"));
        request
            .metadata_mut()
            .insert("x-padding", &"p".repeat(32 * 1024))
            .unwrap();
        let status = grpc.unary::<_, Msg>(request, UNARY).await.unwrap_err();
        // h2 closes the connection with GOAWAY ENHANCE_YOUR_CALM.
        assert_eq!(
            status.code(),
            p2p_grpc::Code::ResourceExhausted,
            "{status:?}"
        );
        assert!(
            status.message().contains("header_list_way_too_large"),
            "{status:?}"
        );
        // Other calls are served, on a fresh connection at worst.
        let grpc = Grpc::new(memory_channel(&server).await);
        grpc.unary::<_, Msg>(Request::new(Msg::text("slim")), UNARY)
            .await
            .unwrap();
    });
}

#[test]
fn a_peer_that_never_completes_a_request_is_closed_when_idle() {
    run(async {
        let (server, _events) = echo_server(|b| b.idle_timeout(Duration::from_millis(200)));
        let (mut trickler, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let served = server.clone();
        let (ended_tx, ended_rx) = futures::channel::oneshot::channel();
        runtime().spawn(Box::pin(async move {
            let _ = ended_tx.send(served.serve_connection(server_io).await);
        }));
        // A valid preface and SETTINGS, then the first bytes of a HEADERS
        // frame that never completes.
        trickler
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        trickler
            .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
            .await
            .unwrap();
        trickler
            .write_all(&[0, 0, 40, 1, 4, 0, 0, 0, 1, 0x83])
            .await
            .unwrap();
        let ended = ended_rx.await.unwrap();
        assert!(ended.is_ok(), "{ended:?}");
        drop(trickler);
    });
}

#[test]
fn idle_timeout_spares_connections_with_running_calls() {
    run(async {
        let (server, mut events) = echo_server(|b| b.idle_timeout(Duration::from_millis(100)));
        let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let served = server.clone();
        let (ended_tx, ended_rx) = futures::channel::oneshot::channel();
        runtime().spawn(Box::pin(async move {
            let _ = ended_tx.send(served.serve_connection(server_io).await);
        }));
        let grpc = Grpc::new(Channel::connect(client_io).await.unwrap());
        // A call longer than the idle timeout completes.
        let reply = grpc
            .unary::<_, Msg>(Request::new(Msg::count("long", 400)), SLOW)
            .await
            .unwrap();
        assert_eq!(reply.get_ref().text, "long");
        assert_eq!(next_event(&mut events).await, Event::Started("long".into()));
        assert_eq!(
            next_event(&mut events).await,
            Event::Finished("long".into())
        );
        // Then, with nothing running, the connection is closed.
        assert!(ended_rx.await.unwrap().is_ok());
        let status = grpc
            .unary::<_, Msg>(Request::new(Msg::text("late")), UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), p2p_grpc::Code::Unavailable);
    });
}

/// A bare h2 server that refuses the first `refusals` streams with
/// REFUSED_STREAM, then answers every call with `Msg::text("served")`.
async fn refusing_server(refusals: usize) -> Channel {
    let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
    runtime().spawn(Box::pin(async move {
        let mut connection = h2::server::handshake(server_io.compat()).await.unwrap();
        let mut refused = 0;
        while let Some(Ok((_request, mut respond))) = connection.accept().await {
            if refused < refusals {
                refused += 1;
                respond.send_reset(h2::Reason::REFUSED_STREAM);
                continue;
            }
            let response = http::Response::builder()
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let mut send = respond.send_response(response, false).unwrap();
            let body = prost::Message::encode_to_vec(&Msg::text("served"));
            let mut framed = vec![0u8];
            framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
            framed.extend_from_slice(&body);
            send.send_data(framed.into(), false).unwrap();
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            send.send_trailers(trailers).unwrap();
        }
    }));
    Channel::connect(client_io).await.unwrap()
}

#[test]
fn a_refused_unary_request_is_sent_again() {
    run(async {
        // Refused three times: the fourth attempt is served.
        let grpc = Grpc::new(refusing_server(3).await);
        let reply = grpc
            .unary::<_, Msg>(Request::new(Msg::default()), UNARY)
            .await
            .unwrap();
        assert_eq!(reply.get_ref().text, "served");
        let stream = grpc
            .server_streaming::<_, Msg>(Request::new(Msg::default()), EXPAND)
            .await
            .unwrap();
        let items: Vec<_> = futures::StreamExt::collect(stream.into_inner()).await;
        assert_eq!(items.len(), 1);
        // Refused more often than that: the call fails, UNAVAILABLE.
        let grpc = Grpc::new(refusing_server(4).await);
        let status = grpc
            .unary::<_, Msg>(Request::new(Msg::default()), UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), p2p_grpc::Code::Unavailable, "{status:?}");
    });
}
