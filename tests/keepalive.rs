//! HTTP/2 keepalive: a peer that vanishes without closing anything is
//! detected by PING, on the client and on the server side.

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
use p2p_grpc::transport::Duplex;
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
        let (server, mut events) = echo_server(|b| b);
        let (client_io, server_io) = p2p_grpc::transport::duplex(64 * 1024);
        let frozen = Arc::new(AtomicBool::new(false));
        let served = server.clone();
        runtime().spawn(Box::pin(async move {
            let _ = served.serve_connection(server_io).await;
        }));
        let channel = Channel::builder()
            .keepalive(Duration::from_millis(100), Duration::from_millis(300))
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
        let (client_io, server_io) = p2p_grpc::transport::duplex(64 * 1024);
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
