//! The server-wide memory budget (`ServerBuilder::memory_budget`): what
//! calls hold for messages, across connections, stays within it; while it
//! is spent, new calls get `RESOURCE_EXHAUSTED` and waiting calls wait; all
//! of it comes back when the holders go.
//!
//! On the virtual-clock executor: a virtual millisecond passes only once
//! every task is idle, so `settle` returns when the server has done all it
//! can with what it was sent.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::carriers::{grpc_request, wide_open_requests};
use common::sim::Sim;
use common::*;
use futures::channel::oneshot;
use futures::StreamExt;
use p2p_grpc::client::Grpc;
use p2p_grpc::server::{CallFuture, ServerCall, Service};
use p2p_grpc::{BoxStream, Channel, Code, Request, Response, Server, Status};
use prost::Message;
use tokio_util::compat::FuturesAsyncReadCompatExt;

const MIB: usize = 1024 * 1024;

#[derive(Clone, PartialEq, Message)]
struct Blob {
    #[prost(bytes = "bytes", tag = "1")]
    data: Bytes,
}

/// `Stream` sends copies of one shared 1 MiB blob, forever; `Sink` reads
/// its request messages and keeps only their count.
struct Blobs {
    blob: Bytes,
}

impl Service for Blobs {
    fn name(&self) -> &'static str {
        "test.Blobs"
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        let blob = self.blob.clone();
        match method {
            "Stream" => call.server_streaming(move |_: Request<Blob>| async move {
                let messages =
                    futures::stream::repeat(()).map(move |()| Ok(Blob { data: blob.clone() }));
                Ok::<_, Status>(Response::new(Box::pin(messages) as BoxStream<Blob>))
            }),
            "Sink" => {
                call.client_streaming(|request: Request<p2p_grpc::Streaming<Blob>>| async move {
                    let mut messages = request.into_inner();
                    let mut count = 0u32;
                    while messages.message().await?.is_some() {
                        count += 1;
                    }
                    Ok(Response::new(Msg::count("sunk", count)))
                })
            }
            _ => call.unimplemented(),
        }
    }
}

fn encoded_blob_len() -> usize {
    Blob {
        data: Bytes::from(vec![0u8; MIB]),
    }
    .encoded_len()
}

/// Budget for four encoded 1 MiB blobs, and a little.
fn budget() -> usize {
    4 * encoded_blob_len() + 1000
}

struct Setup {
    server: Server,
    /// A raw HTTP/2 client whose stream windows are `window` bytes.
    raw: h2::client::SendRequest<Bytes>,
    /// Fire to drop the raw client's connection.
    hang_up: oneshot::Sender<()>,
    /// When serving the raw client's connection ended.
    raw_ended: oneshot::Receiver<()>,
    /// A well-behaved client on another connection.
    other: Grpc,
}

async fn setup(sim: &Sim, window: u32) -> Setup {
    let server = Server::builder()
        .runtime(sim.runtime())
        .memory_budget(Some(budget()))
        .add_service(Blobs {
            blob: Bytes::from(vec![7u8; MIB]),
        })
        .add_service(EchoService::new(sim.runtime(), None))
        .build()
        .unwrap();
    let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
    let (ended_tx, raw_ended) = oneshot::channel();
    let serving = server.clone();
    sim.runtime().spawn(Box::pin(async move {
        let _ = serving.serve_connection(server_io).await;
        let _ = ended_tx.send(());
    }));
    let (raw, connection) = h2::client::Builder::new()
        .initial_window_size(window)
        .handshake::<_, Bytes>(client_io.compat())
        .await
        .unwrap();
    let (hang_up, hung_up) = oneshot::channel::<()>();
    sim.runtime().spawn(Box::pin(async move {
        futures::future::select(connection, hung_up).await;
    }));
    let other = well_behaved_client(sim, &server).await;
    Setup {
        server,
        raw,
        hang_up,
        raw_ended,
        other,
    }
}

/// A client of `server` on a connection of its own.
async fn well_behaved_client(sim: &Sim, server: &Server) -> Grpc {
    let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
    let serving = server.clone();
    sim.runtime().spawn(Box::pin(async move {
        let _ = serving.serve_connection(server_io).await;
    }));
    Grpc::new(
        Channel::builder()
            .runtime(sim.runtime())
            .connect(client_io)
            .await
            .unwrap(),
    )
}

impl Setup {
    /// Drops the raw client's connection, then checks that the whole budget
    /// came back and that the other client is served again.
    async fn hang_up_and_check(self) {
        let _ = self.hang_up.send(());
        self.raw_ended.await.unwrap();
        assert_eq!(self.server.memory_in_use(), 0);
        self.other
            .unary::<_, Msg>(Request::new(Msg::text("served")), UNARY)
            .await
            .unwrap();
    }
}

/// Returns once every task is idle (the virtual clock moves only then).
async fn settle(sim: &Sim) {
    sim.runtime().sleep(Duration::from_millis(1)).await;
}

fn frame_header(len: usize) -> Bytes {
    let mut header = BytesMut::new();
    header.put_u8(0);
    header.put_u32(len as u32);
    header.freeze()
}

async fn assert_refused(other: &Grpc) {
    let status = other
        .unary::<_, Msg>(Request::new(Msg::text("new call")), UNARY)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("memory budget"), "{status:?}");
}

#[test]
fn responses_to_readers_that_stall_hold_no_more_than_the_budget() {
    let sim = Sim::new();
    sim.block_on(async {
        // Windows of one byte: every response gets going, and stalls.
        let mut setup = setup(&sim, 1).await;
        let mut responses = Vec::new();
        for _ in 0..8 {
            setup.raw = setup.raw.ready().await.unwrap();
            let (response, mut send) = setup
                .raw
                .send_request(grpc_request("/test.Blobs/Stream"), false)
                .unwrap();
            send.send_data(frame_header(0), true).unwrap();
            responses.push(response);
        }
        settle(&sim).await;
        // Four messages fit; the other four calls wait, unencoded.
        // Each holds its message with its 5-byte prefix.
        assert_eq!(setup.server.memory_in_use(), 4 * (encoded_blob_len() + 5));
        assert_refused(&setup.other).await;
        // The readers go: everything comes back, and calls are served again.
        drop(responses);
        setup.hang_up_and_check().await;
    })
    .unwrap();
}

#[test]
fn requests_that_stall_mid_message_hold_no_more_than_the_budget() {
    let sim = Sim::new();
    sim.block_on(async {
        let mut setup = setup(&sim, 65_535).await;
        let len = encoded_blob_len();
        let whole = Blob {
            data: Bytes::from(vec![3u8; MIB]),
        }
        .encode_to_vec();
        // Six calls each send the header of a 1 MiB message and 16 KiB of
        // it, then stall.
        let mut calls = Vec::new();
        for _ in 0..6 {
            setup.raw = setup.raw.ready().await.unwrap();
            let (response, mut send) = setup
                .raw
                .send_request(grpc_request("/test.Blobs/Sink"), false)
                .unwrap();
            send.send_data(frame_header(len), false).unwrap();
            send.send_data(Bytes::copy_from_slice(&whole[..16 * 1024]), false)
                .unwrap();
            calls.push((response, send));
        }
        settle(&sim).await;
        assert_eq!(setup.server.memory_in_use(), 4 * len);
        assert_refused(&setup.other).await;
        // One call completes its message and ends: its share goes to a
        // waiting call, and the total stays within the budget.
        let (response, mut send) = calls.remove(0);
        let mut rest = Bytes::copy_from_slice(&whole[16 * 1024..]);
        while !rest.is_empty() {
            send.reserve_capacity(rest.len());
            let granted = futures::future::poll_fn(|cx| send.poll_capacity(cx))
                .await
                .unwrap()
                .unwrap();
            let chunk = rest.split_to(granted.min(rest.len()));
            send.send_data(chunk, false).unwrap();
        }
        send.send_data(Bytes::new(), true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        settle(&sim).await;
        assert_eq!(setup.server.memory_in_use(), 4 * len);
        // The client goes: everything comes back.
        drop(calls);
        drop(response);
        setup.hang_up_and_check().await;
    })
    .unwrap();
}

#[test]
fn a_message_larger_than_the_whole_budget_fails_its_call_only() {
    let sim = Sim::new();
    sim.block_on(async {
        let server = Server::builder()
            .runtime(sim.runtime())
            .memory_budget(Some(MIB / 2))
            .add_service(Blobs {
                blob: Bytes::from(vec![7u8; MIB]),
            })
            .add_service(EchoService::new(sim.runtime(), None))
            .build()
            .unwrap();
        let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let serving = server.clone();
        sim.runtime().spawn(Box::pin(async move {
            let _ = serving.serve_connection(server_io).await;
        }));
        let grpc = Grpc::new(
            Channel::builder()
                .runtime(sim.runtime())
                .connect(client_io)
                .await
                .unwrap(),
        );
        let mut replies = grpc
            .server_streaming::<_, Blob>(Request::new(Blob::default()), "/test.Blobs/Stream")
            .await
            .unwrap()
            .into_inner();
        let status = replies.message().await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let request = Request::new(futures::stream::iter(vec![Blob {
            data: Bytes::from(vec![1u8; MIB]),
        }]));
        let status = grpc
            .client_streaming::<_, _, Msg>(request, "/test.Blobs/Sink")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("memory budget"), "{status:?}");
        // The connection and the budget are fine.
        assert_eq!(server.memory_in_use(), 0);
        grpc.unary::<_, Msg>(Request::new(Msg::text("small")), UNARY)
            .await
            .unwrap();
    })
    .unwrap();
}

#[test]
fn what_h2_queues_for_a_peer_that_opened_its_windows_and_stopped_reading_counts_too() {
    let sim = Sim::new();
    sim.block_on(async {
        // 64 KiB messages: smaller than what h2 queues per stream (1 MiB),
        // so without the budget each of 16 streams would queue 1 MiB.
        let blob_len = Blob {
            data: Bytes::from(vec![0u8; 64 * 1024]),
        }
        .encoded_len()
            + 5;
        let server = Server::builder()
            .runtime(sim.runtime())
            .memory_budget(Some(budget()))
            .add_service(Blobs {
                blob: Bytes::from(vec![7u8; 64 * 1024]),
            })
            .add_service(EchoService::new(sim.runtime(), None))
            .build()
            .unwrap();
        let (mut peer, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let (ended_tx, ended) = oneshot::channel();
        let serving = server.clone();
        sim.runtime().spawn(Box::pin(async move {
            let _ = serving.serve_connection(server_io).await;
            let _ = ended_tx.send(());
        }));
        use futures::AsyncWriteExt;
        peer.write_all(&wide_open_requests("/test.Blobs/Stream", 16))
            .await
            .unwrap();
        settle(&sim).await;
        // Everything the server holds for the peer is counted, and stays
        // within the budget: a batch more would not fit.
        let held = server.memory_in_use();
        assert!(held <= budget(), "{held} held, budget {}", budget());
        assert!(
            held + blob_len > budget(),
            "{held} held, budget {}",
            budget()
        );
        let other = well_behaved_client(&sim, &server).await;
        assert_refused(&other).await;
        // The peer goes: what h2 queued for it is dropped, and counted back.
        drop(peer);
        ended.await.unwrap();
        assert_eq!(server.memory_in_use(), 0);
        other
            .unary::<_, Msg>(Request::new(Msg::text("served")), UNARY)
            .await
            .unwrap();
    })
    .unwrap();
}
