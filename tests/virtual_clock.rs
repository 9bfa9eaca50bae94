//! Timing behaviour on the virtual clock of the test-support executor: the
//! clock jumps to the next timer whenever nothing else can run, so minutes
//! and hours pass at once and every instant can be asserted exactly. The
//! runtime goes to the builders like any other.

mod common;

use std::time::Duration;

use common::sim::Sim;
use common::*;
use futures::AsyncWriteExt;
use p2p_grpc::client::Grpc;
use p2p_grpc::server::ServerBuilder;
use p2p_grpc::{Channel, Code, Request, Server};

const MINUTE: Duration = Duration::from_secs(60);

/// A server of the echo service on `sim`, and a channel to it over an
/// in-memory pipe (configured by `channel`).
async fn connect(
    sim: &Sim,
    server: impl FnOnce(p2p_grpc::server::ServerBuilder) -> p2p_grpc::server::ServerBuilder,
    channel: impl FnOnce(p2p_grpc::client::ChannelBuilder) -> p2p_grpc::client::ChannelBuilder,
) -> (Server, Channel) {
    let server = server(Server::builder().runtime(sim.runtime()))
        .add_service(EchoService::new(sim.runtime(), None))
        .build()
        .unwrap();
    let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
    let serving = server.clone();
    sim.runtime().spawn(Box::pin(async move {
        let _ = serving.serve_connection(server_io).await;
    }));
    let channel = channel(Channel::builder().runtime(sim.runtime()))
        .connect(client_io)
        .await
        .unwrap();
    (server, channel)
}

#[test]
fn a_deadline_ends_the_call_exactly_when_it_passes() {
    let sim = Sim::new();
    let run = sim.block_on(async {
        let (_server, channel) = connect(&sim, |b| b, |b| b).await;
        // The handler sleeps an hour; the client allows thirty minutes.
        let request = Request::new(Msg::count("slow", 60 * 60 * 1000)).with_timeout(30 * MINUTE);
        let status = Grpc::new(channel)
            .unary::<_, Msg>(request, SLOW)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(sim.now(), 30 * MINUTE);
    });
    run.unwrap();
}

#[test]
fn a_grace_period_cuts_off_calls_exactly_at_its_end() {
    let sim = Sim::new();
    let run = sim.block_on(async {
        let (server, channel) = connect(&sim, |b| b, |b| b).await;
        let grpc = Grpc::new(channel);
        let call = grpc.unary::<_, Msg>(Request::new(Msg::count("long", 60 * 60 * 1000)), SLOW);
        let shutdown = async {
            // Let the call reach its handler first.
            sim.runtime().sleep(Duration::from_secs(1)).await;
            server.shutdown(Duration::from_secs(5)).await;
            sim.now()
        };
        let (result, ended) = futures::join!(call, shutdown);
        assert_eq!(result.unwrap_err().code(), Code::Unavailable);
        assert_eq!(ended, Duration::from_secs(6));
    });
    run.unwrap();
}

#[test]
fn a_ten_second_keepalive_is_told_too_many_pings_after_the_fourth_ping() {
    let sim = Sim::new();
    let run = sim.block_on(async {
        // gRPC's real floor (10 s), grpc-go's default policy on the server.
        let (_server, channel) = connect(
            &sim,
            |b| b,
            |b| {
                b.keepalive(Duration::from_secs(1), Duration::from_secs(20))
                    .keepalive_while_idle(true)
            },
        )
        .await;
        assert_eq!(channel.keepalive_interval(), Some(Duration::from_secs(10)));
        // Pings at 10, 20, 30 and 40 s: the first is free, the next three
        // are strikes, and the third strike ends the connection.
        while channel.keepalive_interval() == Some(Duration::from_secs(10)) {
            sim.runtime().sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(channel.keepalive_interval(), Some(Duration::from_secs(20)));
        assert!(
            sim.now() >= Duration::from_secs(40) && sim.now() < Duration::from_secs(41),
            "told at {:?}",
            sim.now()
        );
    });
    run.unwrap();
}

/// Serves one connection of `server` on `sim`; the returned receiver tells
/// when (in virtual time) serving it ended, and how.
fn serve_one(
    sim: &Sim,
    server: &Server,
    io: impl p2p_grpc::io::Io,
) -> futures::channel::oneshot::Receiver<(Duration, Result<(), p2p_grpc::Error>)> {
    let (ended_tx, ended_rx) = futures::channel::oneshot::channel();
    let (server, clock) = (server.clone(), sim.clone());
    sim.runtime().spawn(Box::pin(async move {
        let result = server.serve_connection(io).await;
        let _ = ended_tx.send((clock.now(), result));
    }));
    ended_rx
}

fn echo_on(sim: &Sim, configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Server {
    configure(Server::builder().runtime(sim.runtime()))
        .add_service(EchoService::new(sim.runtime(), None))
        .build()
        .unwrap()
}

#[test]
fn a_streaming_deadline_ends_the_call_exactly_when_it_passes() {
    let sim = Sim::new();
    let run = sim.block_on(async {
        let (_server, channel) = connect(&sim, |b| b, |b| b).await;
        let (mut sender, receiver) = feeder();
        let request = Request::new(receiver).with_timeout(30 * MINUTE);
        let mut replies = Grpc::new(channel)
            .streaming::<_, _, Msg>(request, CHAT)
            .await
            .unwrap();
        feed(&mut sender, Msg::text("before")).await;
        assert_eq!(replies.message().await.unwrap().unwrap().text, "before");
        // The client keeps its side open: only the deadline ends the call.
        let status = replies.message().await.unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(sim.now(), 30 * MINUTE);
        drop(sender);
    });
    run.unwrap();
}

#[test]
fn a_peer_that_never_completes_a_request_is_closed_exactly_at_the_idle_timeout() {
    let sim = Sim::new();
    let run = sim.block_on(async {
        let server = echo_on(&sim, |b| b.idle_timeout(5 * MINUTE));
        let (mut trickler, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let ended = serve_one(&sim, &server, server_io);
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
        let (at, result) = ended.await.unwrap();
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(at, 5 * MINUTE);
        drop(trickler);
    });
    run.unwrap();
}

#[test]
fn the_idle_timeout_counts_from_the_end_of_the_last_call() {
    let sim = Sim::new();
    let run = sim.block_on(async {
        let server = echo_on(&sim, |b| b.idle_timeout(MINUTE));
        let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let ended = serve_one(&sim, &server, server_io);
        let grpc = Grpc::new(
            Channel::builder()
                .runtime(sim.runtime())
                .connect(client_io)
                .await
                .unwrap(),
        );
        // A call three times longer than the idle timeout completes...
        let reply = grpc
            .unary::<_, Msg>(Request::new(Msg::count("long", 3 * 60 * 1000)), SLOW)
            .await
            .unwrap();
        assert_eq!(reply.get_ref().text, "long");
        assert_eq!(sim.now(), 3 * MINUTE);
        // ...and the connection closes one idle minute after it ended.
        let (at, result) = ended.await.unwrap();
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(at, 4 * MINUTE);
        let status = grpc
            .unary::<_, Msg>(Request::new(Msg::text("late")), UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
    });
    run.unwrap();
}

#[test]
fn a_peer_that_never_sends_the_preface_is_closed_at_the_handshake_timeout() {
    let sim = Sim::new();
    let run = sim.block_on(async {
        let server = echo_on(&sim, |b| b);
        let (silent, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let ended = serve_one(&sim, &server, server_io);
        let (at, result) = ended.await.unwrap();
        assert_eq!(at, p2p_grpc::settings::DEFAULT_HANDSHAKE_TIMEOUT);
        let err = result.unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        drop(silent);
    });
    run.unwrap();
}

#[test]
fn a_client_without_calls_does_not_ping_unless_told_to() {
    let sim = Sim::new();
    let run = sim.block_on(async {
        // The default policy closes a connection after four pings with no
        // call running: a client that pinged while idle would be told to
        // back off (see the ten-second test above) within a minute.
        let (server, channel) = connect(
            &sim,
            |b| b,
            |b| b.keepalive(Duration::from_secs(10), Duration::from_secs(20)),
        )
        .await;
        sim.runtime().sleep(60 * MINUTE).await;
        assert_eq!(channel.keepalive_interval(), Some(Duration::from_secs(10)));
        assert!(channel.is_connected());
        assert_eq!(server.connection_count(), 1);
    });
    run.unwrap();
}
