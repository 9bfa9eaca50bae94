//! One connection cannot keep the executor to itself: a peer that floods
//! frames and reads every ACK keeps the server's reads ready forever, and
//! the connection task still gives way to the others (on every runtime, not
//! only tokio, whose budget would do it).
//!
//! The test runs on the single-threaded virtual-clock executor, where a task
//! that never yields stops everything else: without the read budget the
//! other connection's call never completes, and the watchdog fails the test.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::Duration;

use common::sim::Sim;
use common::*;
use futures::{AsyncRead, AsyncWrite};
use p2p_grpc::client::Grpc;
use p2p_grpc::{Channel, Request, Server};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: the server must answer each with an ACK.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A client that sends the preface, then SETTINGS frames without end, and
/// takes whatever the server writes at once: the server's reads and writes
/// are always ready.
struct SettingsFlood {
    sent: usize,
    read_by_server: Arc<AtomicUsize>,
    /// Set when the test is over: the flood hangs up.
    stop: Arc<AtomicBool>,
}

impl AsyncRead for SettingsFlood {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.stop.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(0));
        }
        let mut n = 0;
        while n < buf.len() {
            let at = self.sent;
            let byte = if at < PREFACE.len() {
                PREFACE[at]
            } else {
                SETTINGS[(at - PREFACE.len()) % SETTINGS.len()]
            };
            buf[n] = byte;
            n += 1;
            self.sent += 1;
        }
        self.read_by_server.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for SettingsFlood {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn a_frame_flood_on_one_connection_leaves_time_for_the_others() {
    let (done_tx, done_rx) = mpsc::channel();
    // A thread of its own, so that a run that never yields fails the test
    // instead of hanging it.
    std::thread::spawn(move || {
        let sim = Sim::new();
        let read_by_server = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let result = sim.block_on({
            let sim = sim.clone();
            let read_by_server = read_by_server.clone();
            let stop = stop.clone();
            async move {
                let server = Server::builder()
                    .runtime(sim.runtime())
                    .add_service(EchoService::new(sim.runtime(), None))
                    .build()
                    .unwrap();
                let flooding = server.clone();
                let flood_stop = stop.clone();
                sim.runtime().spawn(Box::pin(async move {
                    let _ = flooding
                        .serve_connection(SettingsFlood {
                            sent: 0,
                            read_by_server,
                            stop: flood_stop,
                        })
                        .await;
                }));
                let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
                let serving = server.clone();
                sim.runtime().spawn(Box::pin(async move {
                    let _ = serving.serve_connection(server_io).await;
                }));
                let channel = Channel::builder()
                    .runtime(sim.runtime())
                    .connect(client_io)
                    .await
                    .unwrap();
                let grpc = Grpc::new(channel);

                for i in 0..10 {
                    let reply = grpc
                        .unary::<_, Msg>(Request::new(Msg::count("served", i)), UNARY)
                        .await
                        .unwrap();
                    assert_eq!(reply.into_inner(), Msg::count("served", i));
                }
                // (The virtual clock moves only when every task is idle, so
                // the flood has to end before a timer can fire.)
                stop.store(true, Ordering::SeqCst);
                drop(grpc);
                server.shutdown(Duration::ZERO).await;
            }
        });
        let _ = done_tx.send((result.map(|_| ()), read_by_server.load(Ordering::SeqCst)));
    });
    let (result, flooded) = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the flooding connection kept the executor: the other calls never ran");
    result.unwrap_or_else(|err| panic!("{err:?}"));
    // The flood was running all along, several turns of it.
    assert!(
        flooded > 4 * 64 * 1024,
        "the flood sent only {flooded} bytes"
    );
}
