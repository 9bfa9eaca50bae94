//! Hostile peers: each behaviour has a fixed expected outcome, and the
//! server keeps serving everyone else with bounded memory. The behaviours
//! that make sense on any byte stream run over every carrier: an in-memory
//! pipe, TCP, and `GrpcStream` on libp2p's memory transport and TCP
//! (`libp2p_hostile.rs` has the ones only libp2p has: per-peer slots,
//! handshake timeouts of streams).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::carriers::{carriers, grpc_request, still_served, Carrier, Limits, RawH2, Target};
use common::watch::run_watched;
use common::*;
use p2p_grpc::client::Grpc;
use p2p_grpc::{Channel, Request};
use tokio_util::compat::FuturesAsyncReadCompatExt;

#[test]
fn a_reader_that_never_reads_bounds_the_servers_memory() {
    run_watched(async {
        for carrier in carriers() {
            let flood = Flood::default();
            let produced = flood.produced.clone();
            let target = Target::serve(carrier, Limits::default(), |b| b.add_service(flood)).await;
            let grpc = target.client().await;
            // Start the flood and never read it.
            let response = grpc
                .server_streaming::<_, Msg>(Request::new(Msg::default()), FLOOD)
                .await
                .unwrap();
            // Other calls on the same connection go on.
            still_served(&grpc, "meanwhile").await;
            // Give an unbounded sender every chance to overproduce.
            runtime().sleep(Duration::from_millis(300)).await;
            let held = produced.load(Ordering::SeqCst);
            // Flow control (HTTP/2: 1 MiB per stream, 2 MiB per
            // connection; yamux's window below it over libp2p) and h2's send
            // buffer bound what the server holds: a few dozen 64 KiB
            // messages, not the thousands an unbounded sender would make.
            assert!(
                held <= 64,
                "{carrier:?}: {held} messages produced for a reader that reads none"
            );
            // Reading resumes the flow, and the bound holds all along.
            let mut stream = response.into_inner();
            for read in 1..=100 {
                stream.message().await.unwrap().unwrap();
                let ahead = produced.load(Ordering::SeqCst) - read;
                assert!(
                    ahead <= 64,
                    "{carrier:?}: {ahead} messages ahead of the reader"
                );
            }
        }
    });
}

#[test]
fn calls_beyond_the_per_connection_limit_wait_their_turn() {
    run_watched(async {
        for carrier in carriers() {
            let limits = Limits {
                calls_per_connection: Some(4),
                ..Limits::default()
            };
            let mut target = Target::serve(carrier, limits, |b| b).await;
            let grpc = target.client().await;
            // One call first, so that the server's SETTINGS (the limit) have
            // arrived and the count below starts from a settled connection.
            grpc.unary::<_, Msg>(Request::new(Msg::count("first", 0)), SLOW)
                .await
                .unwrap();
            assert_eq!(
                next_event(&mut target.events).await,
                Event::Started("first".into())
            );
            assert_eq!(
                next_event(&mut target.events).await,
                Event::Finished("first".into())
            );
            let calls = (0..20).map(|i| {
                let grpc = grpc.clone();
                async move {
                    grpc.unary::<_, Msg>(Request::new(Msg::count(format!("c{i}"), 100)), SLOW)
                        .await
                        .unwrap()
                }
            });
            let events = &mut target.events;
            let watch = async {
                let (mut running, mut most, mut ended) = (0i32, 0i32, 0);
                while ended < 20 {
                    match next_event(events).await {
                        Event::Started(_) => running += 1,
                        Event::Finished(_) | Event::Dropped(_) => {
                            running -= 1;
                            ended += 1;
                        }
                    }
                    most = most.max(running);
                }
                most
            };
            let (replies, most) = futures::join!(futures::future::join_all(calls), watch);
            assert_eq!(replies.len(), 20);
            // At most 4 at once, and the limit was reached: 20 calls sent
            // together, each 100 ms long, do not trickle in one by one.
            assert_eq!(
                most, 4,
                "{carrier:?}: {most} calls ran at once with a limit of 4"
            );
        }
    });
}

#[test]
fn a_rapid_reset_flood_leaves_the_server_serving() {
    run_watched(async {
        for carrier in carriers() {
            let target = Target::serve(carrier, Limits::default(), |b| b).await;
            let mut raw = RawH2::over(target.raw().await).await;
            // Open and reset thousands of streams as fast as h2 lets us.
            let mut opened = 0;
            for _ in 0..3000 {
                let Ok(mut ready) = raw.send.clone().ready().await else {
                    break;
                };
                let Ok((_response, mut stream)) = ready.send_request(grpc_request(SLOW), false)
                else {
                    break;
                };
                stream.send_reset(h2::Reason::CANCEL);
                opened += 1;
            }
            // Two outcomes only, depending on how fast the server accepts:
            // it kept up with every reset, or h2's rapid-reset guard cut the
            // flood off with GOAWAY ENHANCE_YOUR_CALM; never another error.
            match raw.send.clone().ready().await {
                Ok(_) => assert_eq!(opened, 3000, "{carrier:?}: stopped without an error"),
                Err(err) => {
                    // The server closes right after its GOAWAY, and the
                    // flood's own writes may meet the closed stream before
                    // the GOAWAY is read: a broken pipe (on a pipe) or, over
                    // TCP, the RST the kernel sends for the flood still
                    // unread in the server's socket.
                    let closed = err.get_io().is_some_and(|io| {
                        matches!(
                            io.kind(),
                            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                        )
                    });
                    assert!(
                        err.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)
                            || (matches!(carrier, Carrier::Pipe | Carrier::Tcp) && closed),
                        "{carrier:?}: {err}"
                    );
                    assert!(opened < 3000, "{carrier:?}");
                }
            }
            raw.drop_stream();
            // Others are served.
            still_served(&target.client().await, "after the flood").await;
            still_served(&target.other_client().await, "another client").await;
        }
    });
}

#[test]
fn a_header_block_past_the_limit_is_refused() {
    run_watched(async {
        for carrier in carriers() {
            let limits = Limits {
                header_list_size: Some(8 * 1024),
                ..Limits::default()
            };
            let target = Target::serve(carrier, limits, |b| b).await;
            let grpc = target.client().await;
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
                "{carrier:?}: {status:?}"
            );
            assert!(
                status.message().contains("header_list_way_too_large"),
                "{carrier:?}: {status:?}"
            );
            // Other calls are served, on a fresh connection at worst.
            still_served(&target.client().await, "slim").await;
        }
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
