//! What the server holds for readers that stop reading, and that it gives
//! all of it back when they go.
//!
//! A counting allocator sees every allocation of this test binary (it has
//! one test, so nothing else runs beside it). The run is on the
//! single-threaded virtual-clock executor, so every measurement is taken
//! while every other task is parked.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::alloc::{live_bytes, live_large, Counting};
use common::sim::Sim;
use futures::channel::mpsc;
use futures::StreamExt;
use http::Method;
use p2p_grpc::server::{CallFuture, ServerCall, Service};
use p2p_grpc::{BoxStream, Request, Response, Server, Status};
use prost::Message;
use tokio_util::compat::FuturesAsyncReadCompatExt;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Clone, PartialEq, Message)]
struct Want {
    #[prost(uint32, tag = "1")]
    count: u32,
}

#[derive(Clone, PartialEq, Message)]
struct Blob {
    #[prost(bytes = "bytes", tag = "1")]
    data: Bytes,
}

/// Streams `count` copies of one shared 1 MiB blob: holding a message costs
/// nothing, so what is live is what the server made of them.
struct Blobs {
    blob: Bytes,
    /// One event each time a handler hands a message over.
    produced: mpsc::UnboundedSender<()>,
}

impl Service for Blobs {
    fn name(&self) -> &'static str {
        "test.Blobs"
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        let (blob, produced) = (self.blob.clone(), self.produced.clone());
        match method {
            "Stream" => call.server_streaming(move |request: Request<Want>| async move {
                let count = request.into_inner().count;
                let messages = futures::stream::iter(0..count).map(move |_| {
                    let _ = produced.unbounded_send(());
                    Ok(Blob { data: blob.clone() })
                });
                Ok::<_, Status>(Response::new(Box::pin(messages) as BoxStream<Blob>))
            }),
            _ => call.unimplemented(),
        }
    }
}

fn request_body(count: u32) -> Bytes {
    let message = Want { count }.encode_to_vec();
    let mut body = BytesMut::new();
    body.put_u8(0);
    body.put_u32(message.len() as u32);
    body.put_slice(&message);
    body.freeze()
}

const STREAMS: usize = 50;
const MIB: usize = 1024 * 1024;

#[test]
fn readers_that_stop_reading_cost_no_encoded_messages_and_everything_comes_back() {
    let sim = Sim::new();
    let baseline = std::cell::Cell::new((0, 0));
    let stalled = std::cell::Cell::new((0, 0));
    let result = sim.block_on({
        let sim = sim.clone();
        let (baseline, stalled) = (&baseline, &stalled);
        async move {
            let (produced, mut events) = mpsc::unbounded();
            let server = Server::builder()
                .runtime(sim.runtime())
                .add_service(Blobs {
                    blob: Bytes::from(vec![7u8; MIB]),
                    produced,
                })
                .build()
                .unwrap();
            let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
            let serving = server.clone();
            sim.runtime().spawn(Box::pin(async move {
                let _ = serving.serve_connection(server_io).await;
            }));
            // A raw HTTP/2 client whose stream windows are closed: the server
            // cannot send a byte of any response.
            let (mut client, connection) = h2::client::Builder::new()
                .initial_window_size(0)
                .handshake::<_, Bytes>(client_io.compat())
                .await
                .unwrap();
            let (hang_up, hung_up) = futures::channel::oneshot::channel::<()>();
            sim.runtime().spawn(Box::pin(async move {
                futures::future::select(connection, hung_up).await;
            }));
            client = client.ready().await.unwrap();
            baseline.set((live_bytes(), live_large()));
            let mut responses = Vec::new();
            for _ in 0..STREAMS {
                let request = http::Request::builder()
                    .method(Method::POST)
                    .uri("http://test/test.Blobs/Stream")
                    .header("content-type", "application/grpc")
                    .header("te", "trailers")
                    .body(())
                    .unwrap();
                client = client.ready().await.unwrap();
                let (response, mut send) = client.send_request(request, false).unwrap();
                send.send_data(request_body(8), true).unwrap();
                responses.push(response);
            }
            // Every stream's handler has handed over its first message...
            for _ in 0..STREAMS {
                events.next().await.unwrap();
            }
            // ...and no stream has been asked for a second.
            assert!(
                events.try_recv().is_err(),
                "a stalled stream asked for more"
            );
            stalled.set((live_bytes(), live_large()));
            // The reader goes away: the connection, the calls, everything.
            drop(responses);
            drop(client);
            let _ = hang_up.send(());
            server.shutdown(std::time::Duration::ZERO).await;
            drop(server);
            drop(events);
        }
    });
    result.unwrap_or_else(|err| panic!("{err:?}"));
    let (base_bytes, base_large) = baseline.get();
    let (stalled_bytes, stalled_large) = stalled.get();
    let (end_bytes, end_large) = (live_bytes(), live_large());
    // The allocator counts: the blob the handlers send is live from the
    // start, one large allocation.
    assert!(base_large >= 1, "no large allocation live at the start");
    // While stalled: no stream holds an encoded message (a 1 MiB buffer
    // each, 50 MiB in all, before the window was awaited first); the
    // bookkeeping of 50 calls stays under 40 KiB each.
    assert_eq!(
        stalled_large, base_large,
        "large allocations while stalled ({base_bytes} bytes live at the start, {stalled_bytes} while stalled)"
    );
    let per_stream = stalled_bytes.saturating_sub(base_bytes) / STREAMS;
    assert!(
        per_stream < 40 * 1024,
        "{per_stream} bytes per stalled stream"
    );
    // Afterwards: back to what was live before the calls (the blob and the
    // server are gone too, so at most that).
    assert!(
        end_large <= base_large.saturating_sub(1),
        "large allocations left: {end_large} (at the start: {base_large})"
    );
    assert!(
        end_bytes <= base_bytes,
        "{end_bytes} bytes live at the end, {base_bytes} at the start"
    );
}
