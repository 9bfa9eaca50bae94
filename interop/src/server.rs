//! The interop server: `grpc.testing.TestService` as the gRPC interop test
//! descriptions specify it (grpc/grpc `doc/interop-test-descriptions.md`,
//! section "Server").
//!
//! Server features implemented: EmptyCall, UnaryCall, CacheableUnaryCall
//! (payload only, no cache headers), StreamingInputCall, StreamingOutputCall,
//! FullDuplexCall, HalfDuplexCall, Echo Status, Echo Metadata,
//! `ResponseParameters.interval_us`, CompressedRequest (the compressed flag
//! of every request message is checked against `expect_compressed`) and
//! CompressedResponse per call.
//!
//! `StreamingOutputCall` compresses message by message as its
//! `response_parameters` ask (a [`MessageCompression`] switch in the
//! response's extensions).
//!
//! What is not possible with p2p-grpc:
//! - `FullDuplexCall` ignores `ResponseParameters.compressed` (its response
//!   headers go out before the first request is read).
//! - Compressing when the client did not list gzip in
//!   `grpc-accept-encoding`: `response_compressed: true` then gets an
//!   uncompressed response (the server may not compress with an encoding the
//!   client did not accept).
//!
//! `grpc.testing.UnimplementedService` is deliberately not registered: calls
//! to it get `UNIMPLEMENTED` from the router, which is what the
//! `unimplemented_service` case checks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use p2p_grpc::compression::{CompressionOverride, MessageCompression};
use p2p_grpc::error_details::ErrorDetails;
use p2p_grpc::rt::SharedRuntime;
use p2p_grpc::server::{CallFuture, Server, ServerCall, Service};
use p2p_grpc::{
    BoxStream, Code, CompressionEncoding, MetadataMap, Request, Response, Status, Streaming,
};

use crate::grpc::testing::test_service_server::{self, TestServiceServer};
use crate::grpc::testing::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};

/// Request metadata echoed in the response headers.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Request metadata (binary) echoed in the response trailers.
pub const ECHO_TRAILING_BIN: &str = "x-grpc-test-echo-trailing-bin";

/// Builds a server with the interop `TestService`, compressing responses with
/// gzip for clients that accept it. `runtime` defaults to the one chosen by
/// p2p-grpc's features.
pub fn build_server(runtime: Option<SharedRuntime>) -> Result<Server, p2p_grpc::Error> {
    server_builder(runtime)?.build()
}

/// The builder [`build_server`] builds: what a `GrpcStream` takes to serve
/// the interop service over libp2p.
pub fn server_builder(
    runtime: Option<SharedRuntime>,
) -> Result<p2p_grpc::server::ServerBuilder, p2p_grpc::Error> {
    let runtime = match runtime {
        Some(runtime) => runtime,
        None => p2p_grpc::rt::default_runtime().ok_or_else(|| {
            p2p_grpc::Error::from(std::io::Error::other(
                "no p2p-grpc runtime: enable p2p-grpc's `smol`, `async-std` or `tokio` feature",
            ))
        })?,
    };
    Ok(Server::builder()
        .runtime(runtime.clone())
        .send_compressed(CompressionEncoding::Gzip)
        .add_service(InteropService::new(runtime)))
}

/// The `TestService` implementation (the generated trait).
#[derive(Debug, Clone)]
pub struct TestServiceImpl {
    runtime: SharedRuntime,
}

impl TestServiceImpl {
    /// An implementation that sleeps (for `interval_us`) on `runtime`.
    pub fn new(runtime: SharedRuntime) -> Self {
        TestServiceImpl { runtime }
    }

    /// UnaryCall. `compressed` is whether the request message arrived
    /// compressed, when known (then `expect_compressed` is checked).
    async fn unary(
        &self,
        request: Request<SimpleRequest>,
        compressed: Option<bool>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let request = request.into_inner();
        if let Some(compressed) = compressed {
            check_compressed(request.expect_compressed.as_ref(), compressed)?;
        }
        if let Some(status) = echo_status(request.response_status.as_ref()) {
            return Err(echo.status(status));
        }
        let payload = payload(request.response_size)?;
        let mut response = Response::new(SimpleResponse {
            payload: Some(payload),
            ..SimpleResponse::default()
        });
        if request.response_compressed.as_ref().map(|b| b.value) == Some(false) {
            response
                .extensions_mut()
                .insert(CompressionOverride::Disable);
        }
        echo.apply(&mut response);
        Ok(response)
    }

    fn output_stream(
        &self,
        inbound: Option<Streaming<StreamingOutputCallRequest>>,
        queued: Vec<ResponseParameters>,
    ) -> BoxStream<StreamingOutputCallResponse> {
        struct State {
            inbound: Option<Streaming<StreamingOutputCallRequest>>,
            queue: VecDeque<ResponseParameters>,
            runtime: SharedRuntime,
            finished: bool,
        }
        let state = State {
            inbound,
            queue: queued.into(),
            runtime: self.runtime.clone(),
            finished: false,
        };
        Box::pin(futures::stream::unfold(state, |mut state| async move {
            loop {
                if state.finished {
                    return None;
                }
                if let Some(params) = state.queue.pop_front() {
                    if params.interval_us > 0 {
                        let interval = Duration::from_micros(params.interval_us as u64);
                        state.runtime.sleep(interval).await;
                    }
                    let item = payload(params.size)
                        .map(|payload| StreamingOutputCallResponse {
                            payload: Some(payload),
                        })
                        .inspect_err(|_| state.finished = true);
                    return Some((item, state));
                }
                let inbound = state.inbound.as_mut()?;
                match inbound.message().await {
                    Ok(Some(request)) => {
                        if let Some(status) = echo_status(request.response_status.as_ref()) {
                            state.finished = true;
                            return Some((Err(status), state));
                        }
                        state.queue.extend(request.response_parameters);
                    }
                    Ok(None) => return None,
                    Err(status) => {
                        state.finished = true;
                        return Some((Err(status), state));
                    }
                }
            }
        }))
    }
}

#[p2p_grpc::codegen::async_trait]
impl test_service_server::TestService for TestServiceImpl {
    async fn empty_call(&self, request: Request<Empty>) -> Result<Response<Empty>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let mut response = Response::new(Empty {});
        echo.apply(&mut response);
        Ok(response)
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        // Reached only when the trait is served without `InteropService`,
        // which checks the compressed flag of the request.
        self.unary(request, None).await
    }

    async fn cacheable_unary_call(
        &self,
        _request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Ok(Response::new(SimpleResponse {
            payload: Some(Payload {
                r#type: 0,
                body: nanos.to_string().into_bytes(),
            }),
            ..SimpleResponse::default()
        }))
    }

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<BoxStream<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let request = request.into_inner();
        if let Some(status) = echo_status(request.response_status.as_ref()) {
            return Err(echo.status(status));
        }
        let wanted: Vec<Option<bool>> = request
            .response_parameters
            .iter()
            .map(|params| params.compressed.as_ref().map(|b| b.value))
            .collect();
        // Message by message: `compressed: false` sends a response plain;
        // `true` or no preference compresses it when the client accepts gzip.
        let switch = MessageCompression::new();
        let flags = switch.clone();
        let mut plan = wanted.clone().into_iter();
        let stream = self
            .output_stream(None, request.response_parameters)
            .map(move |item| {
                flags.set(plan.next().flatten() != Some(false));
                item
            });
        let mut response = Response::new(Box::pin(stream) as BoxStream<_>);
        response.extensions_mut().insert(switch);
        if wanted.iter().all(|w| *w == Some(false)) {
            response
                .extensions_mut()
                .insert(CompressionOverride::Disable);
        }
        echo.apply(&mut response);
        Ok(response)
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let mut inbound = request.into_inner();
        let mut total = 0usize;
        while let Some(message) = inbound.message().await? {
            check_compressed(
                message.expect_compressed.as_ref(),
                inbound.last_message_compressed(),
            )?;
            total += message.payload.map_or(0, |p| p.body.len());
        }
        let aggregated_payload_size = i32::try_from(total)
            .map_err(|_| Status::invalid_argument("aggregated payload size overflows int32"))?;
        let mut response = Response::new(StreamingInputCallResponse {
            aggregated_payload_size,
        });
        echo.apply(&mut response);
        Ok(response)
    }

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<BoxStream<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let inbound = request.into_inner();
        let mut response = Response::new(self.output_stream(Some(inbound), Vec::new()));
        echo.apply(&mut response);
        Ok(response)
    }

    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<BoxStream<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let mut inbound = request.into_inner();
        let mut queued = Vec::new();
        while let Some(message) = inbound.message().await? {
            if let Some(status) = echo_status(message.response_status.as_ref()) {
                return Err(echo.status(status));
            }
            queued.extend(message.response_parameters);
        }
        let mut response = Response::new(self.output_stream(None, queued));
        echo.apply(&mut response);
        Ok(response)
    }

    async fn unimplemented_call(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "UnimplementedCall is unimplemented by design",
        ))
    }
}

/// `grpc.testing.TestService` as served by the interop server: the generated
/// `TestServiceServer`, except that `UnaryCall` is answered as a
/// client-streaming call (identical on the wire) so that the handler sees
/// [`Streaming::last_message_compressed`] for the one request message; a
/// unary handler's `Request<T>` does not carry the compressed flag.
pub struct InteropService {
    implementation: Arc<TestServiceImpl>,
    generated: TestServiceServer<TestServiceImpl>,
}

impl InteropService {
    /// The service, sleeping on `runtime`.
    pub fn new(runtime: SharedRuntime) -> Self {
        let implementation = Arc::new(TestServiceImpl::new(runtime));
        InteropService {
            generated: TestServiceServer::from_arc(implementation.clone()),
            implementation,
        }
    }
}

impl Service for InteropService {
    fn name(&self) -> &'static str {
        test_service_server::SERVICE_NAME
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        if method != "UnaryCall" {
            return self.generated.call(method, call);
        }
        let implementation = self.implementation.clone();
        call.client_streaming(
            move |request: Request<Streaming<SimpleRequest>>| async move {
                let (metadata, extensions, mut inbound) = request.into_parts();
                let message = inbound
                    .message()
                    .await?
                    .ok_or_else(|| Status::internal("request carries no message"))?;
                let compressed = inbound.last_message_compressed();
                if inbound.message().await?.is_some() {
                    return Err(Status::internal(
                        "more than one request message for a unary call",
                    ));
                }
                let request = Request::from_parts(metadata, extensions, message);
                implementation.unary(request, Some(compressed)).await
            },
        )
    }
}

/// The metadata to echo back (Echo Metadata feature).
struct Echo {
    initial: Option<String>,
    trailing: Option<Vec<u8>>,
}

impl Echo {
    fn from_metadata(metadata: &MetadataMap) -> Self {
        Echo {
            initial: metadata.get(ECHO_INITIAL).map(str::to_owned),
            trailing: metadata
                .get_bin(ECHO_TRAILING_BIN)
                .and_then(Result::ok)
                .map(|bytes| bytes.to_vec()),
        }
    }

    fn apply<T>(&self, response: &mut Response<T>) {
        if let Some(initial) = &self.initial {
            let _ = response.metadata_mut().insert(ECHO_INITIAL, initial);
        }
        if let Some(trailing) = &self.trailing {
            let _ = response
                .trailers_mut()
                .insert_bin(ECHO_TRAILING_BIN, trailing);
        }
    }

    /// An error status carrying the trailing echo (an error response is
    /// trailers-only, so the initial echo has no headers to go in).
    fn status(&self, status: Status) -> Status {
        let Some(trailing) = &self.trailing else {
            return status;
        };
        let mut metadata = status.metadata().clone();
        let _ = metadata.insert_bin(ECHO_TRAILING_BIN, trailing);
        Status::with_details_and_metadata(
            status.code(),
            status.message(),
            status.details().clone(),
            metadata,
        )
    }
}

/// The status asked for by `response_status` (Echo Status feature), unless
/// it is OK.
/// The Echo Status feature. A message that starts with
/// [`DETAILS_PREFIX`] also carries rich error details: a `BadRequest`
/// violation of field `payload` described by the rest of the message, and a
/// `RetryInfo` of 250 ms (how the suite checks that foreign peers read ours).
fn echo_status(status: Option<&EchoStatus>) -> Option<Status> {
    let status = status?;
    if status.code == 0 {
        return None;
    }
    let code = Code::from_i32(status.code);
    if let Some(description) = status.message.strip_prefix(DETAILS_PREFIX) {
        let details = ErrorDetails::new()
            .with_bad_request_violation("payload", description)
            .with_retry_info(std::time::Duration::from_millis(250));
        return Some(Status::with_error_details(
            code,
            status.message.clone(),
            details,
        ));
    }
    Some(Status::new(code, status.message.clone()))
}

/// The start of an echoed status message that asks for error details.
pub const DETAILS_PREFIX: &str = "with details: ";

/// The CompressedRequest feature: `expect_compressed` must match the flag of
/// the message as it arrived.
fn check_compressed(expected: Option<&BoolValue>, compressed: bool) -> Result<(), Status> {
    match expected.map(|b| b.value) {
        Some(true) if !compressed => Err(Status::invalid_argument(
            "expected a compressed request message, got an uncompressed one",
        )),
        Some(false) if compressed => Err(Status::invalid_argument(
            "expected an uncompressed request message, got a compressed one",
        )),
        _ => Ok(()),
    }
}

/// A payload of `size` zero bytes.
fn payload(size: i32) -> Result<Payload, Status> {
    let size = usize::try_from(size)
        .map_err(|_| Status::invalid_argument(format!("negative payload size {size}")))?;
    Ok(Payload {
        r#type: 0,
        body: vec![0; size],
    })
}
