//! Deadlines (`grpc-timeout`) and cancellation, seen from both ends.

mod common;

use std::future::Future;
use std::time::Duration;

use common::*;
use futures::FutureExt;
use p2p_grpc::client::Grpc;
use p2p_grpc::{Code, Request};

#[test]
fn unary_deadline_fires_and_drops_the_handler() {
    run(async {
        let (server, mut events) = echo_server(|b| b);
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await);
            let request =
                Request::new(Msg::count("late", 30_000)).with_timeout(Duration::from_millis(100));
            let status = grpc.unary::<_, Msg>(request, SLOW).await.unwrap_err();
            assert_eq!(status.code(), Code::DeadlineExceeded, "{transport:?}");
            assert_eq!(next_event(&mut events).await, Event::Started("late".into()));
            // The server gives up too: the handler is dropped, not left running.
            assert_eq!(next_event(&mut events).await, Event::Dropped("late".into()));
        }
    });
}

#[test]
fn a_deadline_that_does_not_fire_changes_nothing() {
    run(async {
        let (server, mut events) = echo_server(|b| b);
        let grpc = Grpc::new(memory_channel(&server).await);
        let request = Request::new(Msg::count("quick", 10)).with_timeout(Duration::from_secs(30));
        let response = grpc.unary::<_, Msg>(request, SLOW).await.unwrap();
        assert_eq!(response.get_ref().text, "quick");
        assert_eq!(
            next_event(&mut events).await,
            Event::Started("quick".into())
        );
        assert_eq!(
            next_event(&mut events).await,
            Event::Finished("quick".into())
        );
        // Streaming calls under a generous deadline run to the end.
        let response = grpc
            .server_streaming::<_, Msg>(
                Request::new(Msg::count("", 20)).with_timeout(Duration::from_secs(30)),
                EXPAND,
            )
            .await
            .unwrap();
        let items: Vec<_> = futures::StreamExt::collect(response.into_inner()).await;
        assert_eq!(items.len(), 20);
        assert!(items.iter().all(Result::is_ok));
    });
}

#[test]
fn streaming_deadline_ends_the_stream_on_both_sides() {
    run(async {
        let (server, mut events) = echo_server(|b| b);
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await);
            let (mut sender, receiver) = feeder();
            let request = Request::new(receiver).with_timeout(Duration::from_millis(300));
            let mut replies = grpc.streaming::<_, _, Msg>(request, CHAT).await.unwrap();
            feed(&mut sender, Msg::text("before")).await;
            assert_eq!(replies.message().await.unwrap().unwrap().text, "before");
            assert_eq!(next_event(&mut events).await, Event::Started("chat".into()));
            // The client keeps the stream open; the deadline ends it.
            let status = replies.message().await.unwrap_err();
            assert_eq!(status.code(), Code::DeadlineExceeded, "{transport:?}");
            assert_eq!(next_event(&mut events).await, Event::Dropped("chat".into()));
            drop(sender);
        }
    });
}

#[test]
fn dropping_a_unary_call_cancels_the_server_handler() {
    run(async {
        let (server, mut events) = echo_server(|b| b);
        for transport in TRANSPORTS {
            let grpc = Grpc::new(channel(&server, transport).await);
            let call = grpc
                .unary::<_, Msg>(Request::new(Msg::count("abandoned", 60_000)), SLOW)
                .boxed();
            // Drive the call until the handler runs, then drop it.
            let mut call = Some(call);
            let event = {
                let started = next_event(&mut events);
                futures::pin_mut!(started);
                futures::future::poll_fn(|cx| {
                    if let Some(call) = call.as_mut() {
                        assert!(call.as_mut().poll(cx).is_pending());
                    }
                    started.as_mut().poll(cx)
                })
                .await
            };
            assert_eq!(event, Event::Started("abandoned".into()));
            drop(call.take());
            assert_eq!(
                next_event(&mut events).await,
                Event::Dropped("abandoned".into()),
                "{transport:?}"
            );
            // Other calls on the connection are unaffected.
            grpc.unary::<_, Msg>(Request::new(Msg::text("next")), UNARY)
                .await
                .unwrap();
        }
    });
}

#[test]
fn dropping_a_response_stream_cancels_the_bidi_handler() {
    run(async {
        let (server, mut events) = echo_server(|b| b);
        let grpc = Grpc::new(memory_channel(&server).await);
        let (mut sender, receiver) = feeder();
        let mut replies = grpc
            .streaming::<_, _, Msg>(Request::new(receiver), CHAT)
            .await
            .unwrap();
        feed(&mut sender, Msg::text("hi")).await;
        assert_eq!(replies.message().await.unwrap().unwrap().text, "hi");
        assert_eq!(next_event(&mut events).await, Event::Started("chat".into()));
        drop(replies);
        assert_eq!(next_event(&mut events).await, Event::Dropped("chat".into()));
    });
}

#[test]
fn server_sees_the_timeout_the_client_sent() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let grpc = Grpc::new(memory_channel(&server).await);
        let sent = Duration::from_secs(5 * 3600);
        let request = Request::new(Msg::text("t")).with_timeout(sent);
        let response = grpc.unary::<_, Msg>(request, UNARY).await.unwrap();
        let seen: u64 = response
            .metadata()
            .get("x-timeout-ms")
            .unwrap()
            .parse()
            .unwrap();
        // grpc-timeout rounds up to its unit, never down.
        assert!(seen >= sent.as_millis() as u64, "{seen}");
        assert!(seen <= sent.as_millis() as u64 + 1000, "{seen}");
        // Without a timeout, none reaches the server.
        let response = grpc
            .unary::<_, Msg>(Request::new(Msg::text("t")), UNARY)
            .await
            .unwrap();
        assert!(response.metadata().get("x-timeout-ms").is_none());
    });
}
