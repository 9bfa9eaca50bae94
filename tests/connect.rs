//! How channels connect: target URIs, name resolution, Unix sockets, and
//! the backoff between failed attempts (on the virtual clock, so every
//! attempt's instant is asserted exactly).

mod common;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::sim::Sim;
use common::*;
use p2p_grpc::client::{Backoff, Grpc};
use p2p_grpc::io::BoxIo;
use p2p_grpc::{Channel, Code, Request, Status};

async fn echo(channel: &Channel) -> Result<Msg, Status> {
    Grpc::new(channel.clone())
        .unary::<_, Msg>(Request::new(Msg::text("hi")), UNARY)
        .await
        .map(|response| response.into_inner())
}

#[test]
fn every_target_form_reaches_the_server() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let addr = tcp_server(&server);
        let port = addr.port();
        // `localhost` may resolve to ::1 first, where nothing listens: the
        // next address is tried.
        for target in [
            format!("http://localhost:{port}"),
            format!("dns:///localhost:{port}"),
            format!("dns://8.8.8.8/127.0.0.1:{port}"),
            format!("127.0.0.1:{port}"),
            format!("http://127.0.0.1:{port}/"),
        ] {
            let channel = Channel::builder().connect_to(&target).await.unwrap();
            assert_eq!(echo(&channel).await.unwrap().text, "hi", "{target}");
        }
    });
}

#[test]
fn a_name_that_does_not_resolve_fails_with_the_name() {
    run(async {
        let err = Channel::builder()
            .connect_to("http://no-such-host.invalid:50051")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
        // A lazy channel fails its calls with UNAVAILABLE, naming the host.
        let channel = Channel::builder()
            .connect_to_lazy("dns:///no-such-host.invalid:50051")
            .unwrap();
        let status = echo(&channel).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains("no-such-host.invalid"),
            "{status:?}"
        );
    });
}

#[test]
fn a_bad_target_is_an_error_of_its_own() {
    run(async {
        for target in [
            "ftp://host",
            "http://host:port",
            "http://host/path",
            "unix:",
        ] {
            let err = Channel::builder().connect_to(target).await.unwrap_err();
            assert!(err.is_invalid_target(), "{target}: {err}");
            assert!(err.to_string().contains(target), "{target}: {err}");
        }
    });
}

#[cfg(unix)]
#[test]
fn calls_run_over_a_unix_socket() {
    run(async {
        let dir = std::env::temp_dir().join(format!("p2p-grpc-unix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("echo.sock");
        let _ = std::fs::remove_file(&path);
        let (server, _events) = echo_server(|b| b);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let serving = server.clone();
        runtime().spawn(Box::pin(async move {
            let _ = serving.serve_unix_listener(listener).await;
        }));
        let channel = Channel::builder()
            .connect_to(&format!("unix://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(echo(&channel).await.unwrap().text, "hi");
        // Binding over a live socket file is refused.
        assert!(server.serve_unix(&path).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// A connector that fails every attempt and notes when each began.
fn failing(sim: &Sim, attempts: &Arc<Mutex<Vec<Duration>>>) -> impl p2p_grpc::client::Connector {
    let sim = sim.clone();
    let attempts = attempts.clone();
    move || {
        attempts.lock().unwrap().push(sim.now());
        async { Err::<BoxIo, _>(io::Error::new(io::ErrorKind::ConnectionRefused, "refused")) }
    }
}

/// A channel on `sim` whose every connection attempt fails, noted in
/// `attempts`; `configure` sets the builder.
fn failing_channel(
    sim: &Sim,
    attempts: &Arc<Mutex<Vec<Duration>>>,
    configure: impl FnOnce(p2p_grpc::client::ChannelBuilder) -> p2p_grpc::client::ChannelBuilder,
) -> Channel {
    configure(Channel::builder().runtime(sim.runtime()))
        .connect_lazy(failing(sim, attempts))
        .unwrap()
}

/// A request that waits through the backoff for up to `timeout`.
fn waiting(timeout: Duration) -> Request<Msg> {
    let mut request = Request::new(Msg::text("hi")).with_timeout(timeout);
    request.set_wait_for_ready(true);
    request
}

/// The attempt instants the spec's formula gives (`jitter` 0), up to `end`.
fn spec_instants(end: Duration) -> Vec<Duration> {
    let backoff = Backoff::default();
    let (mut at, mut delay) = (Duration::ZERO, backoff.initial);
    let mut instants = Vec::new();
    while at < end {
        instants.push(at);
        at += delay;
        delay = Duration::from_secs_f64(
            (delay.as_secs_f64() * backoff.multiplier).min(backoff.max.as_secs_f64()),
        );
    }
    instants
}

#[test]
fn a_waiting_call_retries_at_the_instants_of_the_spec() {
    let sim = Sim::new();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let run = sim.block_on(async {
        let channel = failing_channel(&sim, &attempts, |b| {
            b.backoff(Backoff {
                jitter: 0.0,
                ..Backoff::default()
            })
        });
        let status = Grpc::new(channel)
            .unary::<_, Msg>(waiting(Duration::from_secs(600)), UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert_eq!(sim.now(), Duration::from_secs(600));
    });
    run.unwrap();
    let attempts = attempts.lock().unwrap().clone();
    let expected = spec_instants(Duration::from_secs(600));
    // 0, 1, 2.6, 5.16, 9.26, ... then every 120 s once the cap is reached.
    assert_eq!(attempts.len(), expected.len(), "{attempts:?}");
    for (got, want) in attempts.iter().zip(&expected) {
        let off = got.as_secs_f64() - want.as_secs_f64();
        assert!(
            off.abs() < 1e-3,
            "attempts {attempts:?}, expected {expected:?}"
        );
    }
}

#[test]
fn jitter_keeps_each_delay_within_a_fifth_of_the_formula() {
    let sim = Sim::new();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let run = sim.block_on(async {
        let channel = failing_channel(&sim, &attempts, |b| b);
        let _ = Grpc::new(channel)
            .unary::<_, Msg>(waiting(Duration::from_secs(900)), UNARY)
            .await;
    });
    run.unwrap();
    let attempts = attempts.lock().unwrap().clone();
    assert!(attempts.len() >= 10, "{attempts:?}");
    let mut base: f64 = 1.0;
    for (n, pair) in attempts.windows(2).enumerate() {
        let gap = (pair[1] - pair[0]).as_secs_f64();
        if n == 0 {
            assert!(
                (gap - 1.0).abs() < 1e-3,
                "the first delay has no jitter: {gap}"
            );
        } else {
            base = (base * 1.6).min(120.0);
            assert!(
                gap >= base * 0.8 - 1e-3 && gap <= base * 1.2 + 1e-3,
                "delay {n}: {gap} s, formula {base} s ±20 %"
            );
        }
    }
    // The jitter is random: not every delay sits on the formula.
    let on_formula = attempts
        .windows(2)
        .skip(1)
        .filter(|pair| {
            let gap = (pair[1] - pair[0]).as_secs_f64();
            (gap - gap.round()).abs() < 1e-6
        })
        .count();
    assert!(on_formula < attempts.len() - 2, "{attempts:?}");
}

#[test]
fn calls_fail_fast_while_the_channel_backs_off() {
    let sim = Sim::new();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let run = sim.block_on(async {
        let channel = failing_channel(&sim, &attempts, |b| b);
        let first = echo(&channel).await.unwrap_err();
        assert_eq!(first.code(), Code::Unavailable);
        assert!(first.message().contains("refused"), "{first:?}");
        // During the backoff: the same error at once, and no new attempt.
        for _ in 0..5 {
            let status = echo(&channel).await.unwrap_err();
            assert_eq!(status.code(), Code::Unavailable);
            assert!(status.message().contains("refused"), "{status:?}");
        }
        assert_eq!(sim.now(), Duration::ZERO);
        assert_eq!(attempts.lock().unwrap().len(), 1);
        // Once the delay has passed, a call tries again.
        sim.runtime().sleep(Duration::from_secs(1)).await;
        let _ = echo(&channel).await.unwrap_err();
        assert_eq!(attempts.lock().unwrap().len(), 2);
    });
    run.unwrap();
}

#[test]
fn an_attempt_that_hangs_ends_at_the_connect_timeout() {
    let sim = Sim::new();
    let run = sim.block_on(async {
        let channel = Channel::builder()
            .runtime(sim.runtime())
            .connect_lazy(futures::future::pending::<io::Result<BoxIo>>)
            .unwrap();
        let status = echo(&channel).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("20s"), "{status:?}");
        assert_eq!(sim.now(), p2p_grpc::client::DEFAULT_CONNECT_TIMEOUT);
        // A shorter timeout of one's own.
        let channel = Channel::builder()
            .runtime(sim.runtime())
            .connect_timeout(Duration::from_secs(3))
            .backoff(Backoff {
                initial: Duration::from_millis(100),
                ..Backoff::default()
            })
            .connect_lazy(futures::future::pending::<io::Result<BoxIo>>)
            .unwrap();
        let before = sim.now();
        let _ = echo(&channel).await.unwrap_err();
        assert_eq!(sim.now() - before, Duration::from_secs(3));
    });
    run.unwrap();
}

#[test]
fn a_success_resets_the_backoff() {
    let sim = Sim::new();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let run = sim.block_on(async {
        let server = p2p_grpc::Server::builder()
            .runtime(sim.runtime())
            .add_service(EchoService::new(sim.runtime(), None))
            .build()
            .unwrap();
        // Fails twice, then connects to the server over a pipe; then fails.
        let serving = server.clone();
        let connector = {
            let sim = sim.clone();
            let attempts = attempts.clone();
            let server = serving;
            move || {
                let mut attempts = attempts.lock().unwrap();
                attempts.push(sim.now());
                let n = attempts.len();
                let server = server.clone();
                let sim = sim.clone();
                async move {
                    if n != 3 {
                        return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
                    }
                    let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
                    sim.runtime().spawn(Box::pin(async move {
                        let _ = server.serve_connection(server_io).await;
                    }));
                    Ok(Box::new(client_io) as BoxIo)
                }
            }
        };
        let channel = Channel::builder()
            .runtime(sim.runtime())
            .backoff(Backoff {
                jitter: 0.0,
                ..Backoff::default()
            })
            .connect_lazy(connector)
            .unwrap();
        let grpc = Grpc::new(channel.clone());
        grpc.unary::<_, Msg>(waiting(Duration::from_secs(60)), UNARY)
            .await
            .unwrap();
        // Attempts at 0 and 1 s failed; the one at 2.6 s connected.
        assert_eq!(
            *attempts.lock().unwrap(),
            [
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_millis(2600)
            ]
        );
        // The connection ends; the next failures start from 1 s again.
        server.shutdown(Duration::ZERO).await;
        while channel.is_connected() {
            sim.runtime().sleep(Duration::from_millis(1)).await;
        }
        let lost = sim.now();
        let status = grpc
            .unary::<_, Msg>(waiting(Duration::from_millis(1500)), UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert_eq!(
            attempts.lock().unwrap()[3..],
            [lost, lost + Duration::from_secs(1)]
        );
    });
    run.unwrap();
}
