//! Graceful shutdown: running calls finish, new ones are refused, and calls
//! past the grace period are cut off; a client that goes says so.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::FutureExt;
use p2p_grpc::client::Grpc;
use p2p_grpc::{Channel, Code, Request};

#[test]
fn running_calls_finish_and_new_ones_are_refused() {
    run(async {
        for transport in TRANSPORTS {
            // A server is shut down for good: one per transport.
            let (server, mut events) = echo_server(|b| b);
            let grpc = Grpc::new(channel(&server, transport).await);
            let slow = spawn_call(&grpc, Msg::count("in-flight", 300), SLOW);
            assert_eq!(
                next_event(&mut events).await,
                Event::Started("in-flight".into())
            );
            let stopping = server.clone();
            let shutdown = runtime_spawn(
                async move { stopping.shutdown(Duration::from_secs(30)).await }.boxed(),
            );
            let response = slow.await.unwrap();
            assert_eq!(
                response.unwrap().get_ref().text,
                "in-flight",
                "{transport:?}"
            );
            assert_eq!(
                next_event(&mut events).await,
                Event::Finished("in-flight".into())
            );
            shutdown.await.unwrap();
            assert_eq!(server.connection_count(), 0);
            // The connection is gone: new calls fail.
            let status = grpc
                .unary::<_, Msg>(Request::new(Msg::text("too late")), UNARY)
                .await
                .unwrap_err();
            assert_eq!(
                status.code(),
                Code::Unavailable,
                "{transport:?}: {status:?}"
            );
        }
    });
}

#[test]
fn calls_past_the_grace_period_are_cut_off() {
    run(async {
        let (server, mut events) = echo_server(|b| b);
        let grpc = Grpc::new(memory_channel(&server).await);
        let stuck = spawn_call(&grpc, Msg::count("stuck", 60_000), SLOW);
        assert_eq!(
            next_event(&mut events).await,
            Event::Started("stuck".into())
        );
        server.shutdown(Duration::from_millis(100)).await;
        assert_eq!(
            next_event(&mut events).await,
            Event::Dropped("stuck".into())
        );
        let status = stuck.await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(server.connection_count(), 0);
    });
}

#[test]
fn shutdown_stops_the_tcp_listener() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let addr = tcp_server(&server);
        let grpc = Grpc::new(p2p_grpc::Channel::connect_tcp(addr).await.unwrap());
        grpc.unary::<_, Msg>(Request::new(Msg::text("before")), UNARY)
            .await
            .unwrap();
        server.shutdown(Duration::from_secs(5)).await;
        // New connections are no longer served.
        match p2p_grpc::Channel::connect_tcp(addr).await {
            Err(_) => {}
            Ok(channel) => {
                let status = Grpc::new(channel)
                    .unary::<_, Msg>(Request::new(Msg::text("after")), UNARY)
                    .await
                    .unwrap_err();
                assert_eq!(status.code(), Code::Unavailable);
            }
        }
    });
}

/// Starts a unary call in a task of its own.
fn spawn_call(
    grpc: &Grpc,
    message: Msg,
    path: &'static str,
) -> futures::channel::oneshot::Receiver<Result<p2p_grpc::Response<Msg>, p2p_grpc::Status>> {
    let grpc = grpc.clone();
    runtime_spawn(async move { grpc.unary::<_, Msg>(Request::new(message), path).await }.boxed())
}

/// Spawns `future` on the test runtime; the returned receiver yields its output.
fn runtime_spawn<T: Send + 'static>(
    future: futures::future::BoxFuture<'static, T>,
) -> futures::channel::oneshot::Receiver<T> {
    let (tx, rx) = futures::channel::oneshot::channel();
    runtime().spawn(Box::pin(async move {
        let _ = tx.send(future.await);
    }));
    rx
}

#[test]
fn a_dropped_channel_says_goodbye_with_goaway() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let read = Arc::new(Mutex::new(Vec::new()));
        let recording = common::recording::Recording::new(server_io, read.clone());
        let (ended_tx, ended_rx) = futures::channel::oneshot::channel();
        let serving = server.clone();
        runtime().spawn(Box::pin(async move {
            let _ = ended_tx.send(serving.serve_connection(recording).await);
        }));
        let grpc = Grpc::new(Channel::connect(client_io).await.unwrap());
        grpc.unary::<_, Msg>(Request::new(Msg::text("one")), UNARY)
            .await
            .unwrap();
        drop(grpc);
        // The server sees a clean end: the client's last frame is a GOAWAY
        // with NO_ERROR, not a connection that just stops.
        ended_rx.await.unwrap().unwrap();
        let frames = common::recording::frames(&read.lock().unwrap(), true);
        let (kind, payload) = frames.last().expect("frames");
        assert_eq!(*kind, 7, "last frame of {frames:?}");
        assert_eq!(payload[4..8], [0, 0, 0, 0], "error code NO_ERROR");
    });
}
