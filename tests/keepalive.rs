//! HTTP/2 keepalive: a peer that vanishes without closing anything is
//! detected by PING, on the client and on the server side; a server limits
//! how often its clients may ping (GOAWAY `too_many_pings` past the
//! limit), and a client told so pings half as often from then on.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use common::*;
use futures::io::{AsyncRead, AsyncWrite};
use p2p_grpc::client::Grpc;
use p2p_grpc::io::Duplex;
use p2p_grpc::{Channel, Code, Request};

/// A byte stream that can be frozen: afterwards nothing arrives and whatever
/// is written disappears, like a peer behind a cut cable.
struct Freezable {
    inner: Duplex,
    frozen: Arc<AtomicBool>,
}

impl AsyncRead for Freezable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Freezable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[test]
fn client_detects_a_vanished_server() {
    run(async {
        // A server that lets the client ping as often as it likes.
        let (server, mut events) = echo_server(|b| b.ping_policy(None));
        let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let frozen = Arc::new(AtomicBool::new(false));
        let served = server.clone();
        runtime().spawn(Box::pin(async move {
            let _ = served.serve_connection(server_io).await;
        }));
        let channel = Channel::builder()
            .keepalive(Duration::from_millis(100), Duration::from_millis(300))
            .keepalive_floor_for_tests(Duration::ZERO)
            .connect(Freezable {
                inner: client_io,
                frozen: frozen.clone(),
            })
            .await
            .unwrap();
        let grpc = Grpc::new(channel);
        // Keepalive does not disturb a healthy connection.
        grpc.unary::<_, Msg>(Request::new(Msg::count("healthy", 400)), SLOW)
            .await
            .unwrap();
        assert_eq!(
            next_event(&mut events).await,
            Event::Started("healthy".into())
        );
        assert_eq!(
            next_event(&mut events).await,
            Event::Finished("healthy".into())
        );

        let call = grpc.unary::<_, Msg>(Request::new(Msg::count("stranded", 60_000)), SLOW);
        let stranded = async {
            assert_eq!(
                next_event(&mut events).await,
                Event::Started("stranded".into())
            );
            frozen.store(true, Ordering::SeqCst);
        };
        let (result, ()) = futures::join!(call, stranded);
        let status = result.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(!grpc.channel().is_connected());
    });
}

#[test]
fn server_detects_a_vanished_client() {
    run(async {
        let (server, mut events) =
            echo_server(|b| b.keepalive(Duration::from_millis(100), Duration::from_millis(300)));
        let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let frozen = Arc::new(AtomicBool::new(false));
        let served = server.clone();
        let (ended_tx, ended_rx) = futures::channel::oneshot::channel();
        let server_io = Freezable {
            inner: server_io,
            frozen: frozen.clone(),
        };
        runtime().spawn(Box::pin(async move {
            let result = served.serve_connection(server_io).await;
            let _ = ended_tx.send(result);
        }));
        let grpc = Grpc::new(Channel::connect(client_io).await.unwrap());
        let call = runtime_call(&grpc, Msg::count("orphan", 60_000));
        assert_eq!(
            next_event(&mut events).await,
            Event::Started("orphan".into())
        );
        frozen.store(true, Ordering::SeqCst);
        // The server gives the connection up and cancels the handler.
        let ended = ended_rx.await.unwrap();
        assert!(ended.unwrap_err().is_timeout());
        assert_eq!(
            next_event(&mut events).await,
            Event::Dropped("orphan".into())
        );
        drop(call);
    });
}

fn runtime_call(grpc: &Grpc, message: Msg) -> futures::channel::oneshot::Receiver<()> {
    let grpc = grpc.clone();
    let (tx, rx) = futures::channel::oneshot::channel();
    runtime().spawn(Box::pin(async move {
        let _ = grpc.unary::<_, Msg>(Request::new(message), SLOW).await;
        let _ = tx.send(());
    }));
    rx
}

/// A raw h2 client on a fresh pipe to `server`; the second value resolves to
/// how its connection ended.
async fn raw_client(
    server: &p2p_grpc::Server,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    h2::PingPong,
    futures::channel::oneshot::Receiver<Result<(), h2::Error>>,
) {
    use tokio_util::compat::FuturesAsyncReadCompatExt;
    let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
    let served = server.clone();
    runtime().spawn(Box::pin(async move {
        let _ = served.serve_connection(server_io).await;
    }));
    let (send, mut connection) = h2::client::handshake(client_io.compat()).await.unwrap();
    let ping_pong = connection.ping_pong().unwrap();
    let (ended_tx, ended) = futures::channel::oneshot::channel();
    runtime().spawn(Box::pin(async move {
        let _ = ended_tx.send(connection.await);
    }));
    (send, ping_pong, ended)
}

#[test]
fn pinging_without_calls_is_answered_with_too_many_pings() {
    run(async {
        // The default policy: no pings while no call runs.
        let (server, _events) = echo_server(|b| b);
        let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let served = server.clone();
        runtime().spawn(Box::pin(async move {
            let _ = served.serve_connection(server_io).await;
        }));
        // What the client reads, to see the GOAWAYs themselves: h2 reports
        // only the last one, and the server sends two (ours with the debug
        // data, then h2's own).
        let read = Arc::new(std::sync::Mutex::new(Vec::new()));
        let io = common::recording::Recording::new(client_io, read.clone());
        let (_send, mut connection) = {
            use tokio_util::compat::FuturesAsyncReadCompatExt;
            h2::client::handshake(io.compat()).await.unwrap()
        };
        let mut ping_pong = connection.ping_pong().unwrap();
        let (ended_tx, ended) = futures::channel::oneshot::channel();
        runtime().spawn(Box::pin(async move {
            let _ = ended_tx.send(connection.await);
        }));
        // The first PING is free; the next three are strikes, and the third
        // strike is one too many.
        let mut answered = 0;
        for _ in 0..4 {
            if ping_pong.ping(h2::Ping::opaque()).await.is_err() {
                break;
            }
            answered += 1;
        }
        assert!(answered >= 3, "{answered} pings answered before the GOAWAY");
        // The connection ends (as a GOAWAY, or as the closed stream after it).
        let _ = ended.await.unwrap();
        const GOAWAY: u8 = 7;
        let bytes = read.lock().unwrap().clone();
        let goaways: Vec<Vec<u8>> = common::recording::frames(&bytes, false)
            .into_iter()
            .filter(|(kind, _)| *kind == GOAWAY)
            .map(|(_, payload)| payload)
            .collect();
        let first = goaways.first().expect("a GOAWAY");
        assert_eq!(&first[4..8], &[0, 0, 0, 0xb], "ENHANCE_YOUR_CALM");
        assert_eq!(&first[8..], b"too_many_pings");
    });
}

#[test]
fn a_ping_flood_is_cut_at_the_ping_that_was_one_too_many() {
    run(async {
        use futures::{AsyncReadExt, AsyncWriteExt};
        const PING: u8 = 6;
        const GOAWAY: u8 = 7;
        let (server, _events) = echo_server(|b| b);
        let (mut client_io, server_io) = p2p_grpc::io::duplex(1 << 20);
        let served = server.clone();
        runtime().spawn(Box::pin(async move {
            let _ = served.serve_connection(server_io).await;
        }));
        // 1,000 PINGs in one write: the server reads them in one go.
        let mut flood = frames::PREFACE.to_vec();
        frames::frame(&mut flood, frames::SETTINGS, 0, 0, &[]);
        for i in 0..1_000u64 {
            frames::frame(&mut flood, PING, 0, 0, &i.to_be_bytes());
        }
        client_io.write_all(&flood).await.unwrap();
        let mut read = Vec::new();
        let _ = client_io.read_to_end(&mut read).await;
        let frames = common::recording::frames(&read, false);
        // h2 answers the free PING and the two strikes, and never sees the
        // rest: the fourth is one too many, and the flood is cut there.
        let acked: Vec<u64> = frames
            .iter()
            .filter(|(kind, _)| *kind == PING)
            .map(|(_, payload)| u64::from_be_bytes(payload[..8].try_into().unwrap()))
            .collect();
        assert_eq!(acked, [0, 1, 2]);
        let goaway = frames
            .iter()
            .find(|(kind, _)| *kind == GOAWAY)
            .map(|(_, payload)| payload)
            .expect("a GOAWAY");
        assert_eq!(&goaway[4..8], &[0, 0, 0, 0xb], "ENHANCE_YOUR_CALM");
        assert_eq!(&goaway[8..], b"too_many_pings");
    });
}

#[test]
fn pings_the_policy_permits_keep_the_connection() {
    run(async {
        let policy = p2p_grpc::server::PingPolicy {
            min_time: Duration::ZERO,
            permit_without_calls: true,
        };
        let (server, _events) = echo_server(|b| b.ping_policy(Some(policy)));
        let (send, mut ping_pong, _ended) = raw_client(&server).await;
        for _ in 0..20 {
            ping_pong.ping(h2::Ping::opaque()).await.unwrap();
        }
        // Still serving.
        let mut send = send.ready().await.unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://localhost{UNARY}"))
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let (response, mut body) = send.send_request(request, false).unwrap();
        body.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)
            .unwrap();
        assert_eq!(response.await.unwrap().status(), 200);
    });
}

#[test]
fn without_a_policy_any_rate_is_accepted() {
    run(async {
        let (server, _events) = echo_server(|b| b.ping_policy(None));
        let (_send, mut ping_pong, _ended) = raw_client(&server).await;
        for _ in 0..20 {
            ping_pong.ping(h2::Ping::opaque()).await.unwrap();
        }
    });
}

#[test]
fn a_client_told_too_many_pings_doubles_its_interval_and_keeps_calling() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let addr = tcp_server(&server);
        let channel = Channel::builder()
            .keepalive(Duration::from_millis(20), Duration::from_secs(5))
            .keepalive_while_idle(true)
            .keepalive_floor_for_tests(Duration::ZERO)
            .connect_tcp(addr)
            .await
            .unwrap();
        assert_eq!(
            channel.keepalive_interval(),
            Some(Duration::from_millis(20))
        );
        let grpc = Grpc::new(channel.clone());
        // Four pings in 80 ms: the server's default policy closes the
        // connection with too_many_pings.
        until(|| channel.keepalive_interval() == Some(Duration::from_millis(40))).await;
        // Calls go on, over a fresh connection.
        for i in 0..3 {
            let reply = grpc
                .unary::<_, Msg>(Request::new(Msg::count("after", i)), UNARY)
                .await;
            match reply {
                Ok(reply) => assert_eq!(reply.get_ref().count, i),
                // Only the call that raced the GOAWAY may see it.
                Err(status) => assert!(i == 0 && status.code() == Code::Unavailable, "{status:?}"),
            }
        }
        assert!(channel.is_connected());
    });
}

#[test]
fn keepalive_intervals_under_ten_seconds_are_raised() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let channel = Channel::builder()
            .keepalive(Duration::from_millis(100), Duration::from_secs(1))
            .connect_tcp(tcp_server(&server))
            .await
            .unwrap();
        assert_eq!(
            channel.keepalive_interval(),
            Some(p2p_grpc::client::MIN_KEEPALIVE_INTERVAL)
        );
        assert_eq!(
            p2p_grpc::client::MIN_KEEPALIVE_INTERVAL,
            Duration::from_secs(10)
        );
    });
}
