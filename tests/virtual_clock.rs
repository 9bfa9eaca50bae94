//! Timing behaviour on the virtual clock of the test-support executor: the
//! clock jumps to the next timer whenever nothing else can run, so minutes
//! and hours pass at once and every instant can be asserted exactly. The
//! runtime goes to the builders like any other.

mod common;

use std::time::Duration;

use common::sim::Sim;
use common::*;
use p2p_grpc::client::Grpc;
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
