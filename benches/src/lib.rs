//! Code generated from `proto/bench.proto` for both stacks; the benchmark is
//! `src/compare/main.rs` (`cargo bench -p p2p-grpc-bench --bench compare`).

/// p2p-grpc messages, client and server (p2p-grpc-build).
pub mod pb {
    p2p_grpc::include_proto!("bench");
}

/// tonic messages, client and server (tonic-prost-build), from the same
/// descriptors.
pub mod tonic_pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/tonic/bench.rs"));
}

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use event_listener::Event;
use futures::{Stream, StreamExt};

/// Holds `Hold` calls until it opens; counts the calls waiting.
#[derive(Default)]
pub struct Gate {
    open: AtomicBool,
    event: Event,
    /// Calls that reached the handler.
    pub arrived: AtomicUsize,
}

impl Gate {
    /// Lets every waiting (and future) call through.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    /// Waits until the gate is open.
    pub async fn wait(&self) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        loop {
            if self.open.load(Ordering::SeqCst) {
                return;
            }
            let listener = self.event.listen();
            if self.open.load(Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }
}

/// `count` copies of a `size`-byte payload (count 0: without end). The
/// payload is one shared buffer: the stacks are measured, not memcpy.
/// One payload of `size` bytes shared by every call that asks for that
/// size: the handlers cost no allocation of their own per call, so that
/// memory figures (`compare --stalled`) show the server's and not the
/// handler's.
fn shared_payload(size: u32) -> Bytes {
    static LAST: std::sync::Mutex<Option<Bytes>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|poison| poison.into_inner());
    match &*last {
        Some(payload) if payload.len() == size as usize => payload.clone(),
        _ => {
            let payload = Bytes::from(vec![0x5a_u8; size as usize]);
            *last = Some(payload.clone());
            payload
        }
    }
}

fn payloads(count: u32, size: u32) -> impl Stream<Item = Bytes> + Send + 'static {
    let payload = shared_payload(size);
    let all = futures::stream::repeat(payload);
    if count == 0 {
        all.boxed()
    } else {
        all.take(count as usize).boxed()
    }
}

/// The bench service for p2p-grpc.
#[derive(Clone, Default)]
pub struct P2pBench {
    /// The gate of `Hold`.
    pub gate: Arc<Gate>,
}

#[p2p_grpc::codegen::async_trait]
impl pb::bench_server::Bench for P2pBench {
    async fn unary(
        &self,
        request: p2p_grpc::Request<pb::Payload>,
    ) -> Result<p2p_grpc::Response<pb::Payload>, p2p_grpc::Status> {
        Ok(p2p_grpc::Response::new(request.into_inner()))
    }

    async fn server_stream(
        &self,
        request: p2p_grpc::Request<pb::StreamRequest>,
    ) -> Result<p2p_grpc::Response<p2p_grpc::BoxStream<pb::Payload>>, p2p_grpc::Status> {
        let pb::StreamRequest { count, size } = request.into_inner();
        let stream = payloads(count, size).map(|payload| Ok(pb::Payload { payload }));
        Ok(p2p_grpc::Response::new(Box::pin(stream)))
    }

    async fn ping_pong(
        &self,
        request: p2p_grpc::Request<p2p_grpc::Streaming<pb::Payload>>,
    ) -> Result<p2p_grpc::Response<p2p_grpc::BoxStream<pb::Payload>>, p2p_grpc::Status> {
        Ok(p2p_grpc::Response::new(Box::pin(request.into_inner())))
    }

    async fn hold(
        &self,
        request: p2p_grpc::Request<pb::Payload>,
    ) -> Result<p2p_grpc::Response<pb::Payload>, p2p_grpc::Status> {
        self.gate.wait().await;
        Ok(p2p_grpc::Response::new(request.into_inner()))
    }
}

/// A boxed response stream for tonic.
pub type TonicStream = Pin<Box<dyn Stream<Item = Result<pb_t::Payload, tonic::Status>> + Send>>;

use tonic_pb as pb_t;

/// The bench service for tonic.
#[derive(Clone, Default)]
pub struct TonicBench {
    /// The gate of `Hold`.
    pub gate: Arc<Gate>,
}

#[tonic::async_trait]
impl tonic_pb::bench_server::Bench for TonicBench {
    async fn unary(
        &self,
        request: tonic::Request<pb_t::Payload>,
    ) -> Result<tonic::Response<pb_t::Payload>, tonic::Status> {
        Ok(tonic::Response::new(request.into_inner()))
    }

    type ServerStreamStream = TonicStream;

    async fn server_stream(
        &self,
        request: tonic::Request<pb_t::StreamRequest>,
    ) -> Result<tonic::Response<TonicStream>, tonic::Status> {
        let pb_t::StreamRequest { count, size } = request.into_inner();
        let stream = payloads(count, size).map(|payload| Ok(pb_t::Payload { payload }));
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    type PingPongStream = TonicStream;

    async fn ping_pong(
        &self,
        request: tonic::Request<tonic::Streaming<pb_t::Payload>>,
    ) -> Result<tonic::Response<TonicStream>, tonic::Status> {
        Ok(tonic::Response::new(Box::pin(request.into_inner())))
    }

    async fn hold(
        &self,
        request: tonic::Request<pb_t::Payload>,
    ) -> Result<tonic::Response<pb_t::Payload>, tonic::Status> {
        self.gate.wait().await;
        Ok(tonic::Response::new(request.into_inner()))
    }
}
