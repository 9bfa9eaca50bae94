//! The interop client: the test cases of grpc/grpc
//! `doc/interop-test-descriptions.md` (section "Client"), one async function
//! each, run by [`InteropClient::run`].
//!
//! A case ends in one of three ways:
//! - `Ok(())`: every assertion of the description held;
//! - [`CaseError::Failed`]: an assertion failed (the message says which);
//! - [`CaseError::Unsupported`]: a step of the description cannot be
//!   expressed with p2p-grpc's API; every other step ran and passed, and the
//!   message says what was left out. No case ends so today.
//!
//! Two cases check the compressed flag of *unary* responses
//! (`server_compressed_unary`): the unary API does not expose it, so the
//! case makes the same call through [`Grpc::server_streaming`] (identical
//! on the wire: one request, one response) and reads
//! [`Streaming::last_message_compressed`].
//!
//! Cancellation (`cancel_after_begin`, `cancel_after_first_response`):
//! p2p-grpc cancels a call when its future or response stream is dropped
//! (the HTTP/2 stream is reset with `CANCEL`); no status comes back to the
//! side that cancelled. Those cases check that the call was still running
//! when cancelled, that cancelling tore it down (the request stream was
//! dropped), and that the channel still works afterwards; the `CANCELLED`
//! status is then the local outcome.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures::channel::mpsc;
use futures::future::{self, Either};
use futures::{SinkExt, StreamExt};
use p2p_grpc::client::Grpc;
use p2p_grpc::compression::MessageCompression;
use p2p_grpc::rt::SharedRuntime;
use p2p_grpc::{Channel, Code, CompressionEncoding, Request, Status, Streaming};

use crate::grpc::testing::test_service_client::TestServiceClient;
use crate::grpc::testing::unimplemented_service_client::UnimplementedServiceClient;
use crate::grpc::testing::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use crate::server::{ECHO_INITIAL, ECHO_TRAILING_BIN};

/// Every test case, in the order `--test_case=all` runs them.
pub const ALL_CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_compressed_streaming",
    "server_compressed_streaming",
];

/// Why a case did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseError {
    /// An assertion failed.
    Failed(String),
    /// A step cannot be expressed with p2p-grpc; the rest passed.
    Unsupported(String),
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::Failed(why) => write!(f, "FAILED: {why}"),
            CaseError::Unsupported(why) => write!(f, "NOT FULLY SUPPORTED: {why}"),
        }
    }
}

impl From<String> for CaseError {
    fn from(why: String) -> Self {
        CaseError::Failed(why)
    }
}

/// What one case returns.
pub type CaseResult = Result<(), CaseError>;

const LARGE_REQUEST: usize = 271_828;
const LARGE_RESPONSE: i32 = 314_159;
const SPECIAL_MESSAGE: &str = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
const TRAILING_VALUE: [u8; 3] = [0xab, 0xab, 0xab];
const INITIAL_VALUE: &str = "test_initial_metadata_value";
const UNARY_PATH: &str = "/grpc.testing.TestService/UnaryCall";

/// Runs interop cases over one channel.
#[derive(Debug, Clone)]
pub struct InteropClient {
    channel: Channel,
    runtime: SharedRuntime,
}

impl InteropClient {
    /// A client calling over `channel`; `runtime` times the waits some cases
    /// need.
    pub fn new(channel: Channel, runtime: SharedRuntime) -> Self {
        InteropClient { channel, runtime }
    }

    fn client(&self) -> TestServiceClient {
        TestServiceClient::new(self.channel.clone())
    }

    /// Runs the case called `name` (one of [`ALL_CASES`]).
    pub async fn run(&self, name: &str) -> CaseResult {
        match name {
            "empty_unary" => self.empty_unary().await,
            "large_unary" => self.large_unary().await,
            "client_streaming" => self.client_streaming().await,
            "server_streaming" => self.server_streaming().await,
            "ping_pong" => self.ping_pong().await,
            "empty_stream" => self.empty_stream().await,
            "custom_metadata" => self.custom_metadata().await,
            "status_code_and_message" => self.status_code_and_message().await,
            "special_status_message" => self.special_status_message().await,
            "unimplemented_method" => self.unimplemented_method().await,
            "unimplemented_service" => self.unimplemented_service().await,
            "timeout_on_sleeping_server" => self.timeout_on_sleeping_server().await,
            "cancel_after_begin" => self.cancel_after_begin().await,
            "cancel_after_first_response" => self.cancel_after_first_response().await,
            "client_compressed_unary" => self.client_compressed_unary().await,
            "server_compressed_unary" => self.server_compressed_unary().await,
            "client_compressed_streaming" => self.client_compressed_streaming().await,
            "server_compressed_streaming" => self.server_compressed_streaming().await,
            other => Err(CaseError::Failed(format!("unknown test case {other:?}"))),
        }
    }

    /// empty_unary: an empty request gets an empty response.
    pub async fn empty_unary(&self) -> CaseResult {
        self.client()
            .empty_call(Empty {})
            .await
            .map_err(|status| call_failed("EmptyCall", &status))?;
        Ok(())
    }

    /// large_unary: 271828 bytes up, 314159 bytes down.
    pub async fn large_unary(&self) -> CaseResult {
        let response = self
            .client()
            .unary_call(large_request())
            .await
            .map_err(|status| call_failed("UnaryCall", &status))?;
        check_simple_response(response.get_ref())?;
        Ok(())
    }

    /// client_streaming: four requests, their payload sizes summed.
    pub async fn client_streaming(&self) -> CaseResult {
        let requests = [27_182, 8, 1_828, 45_904].map(|size| StreamingInputCallRequest {
            payload: Some(zeros(size)),
            expect_compressed: None,
        });
        let response = self
            .client()
            .streaming_input_call(futures::stream::iter(requests))
            .await
            .map_err(|status| call_failed("StreamingInputCall", &status))?;
        expect_eq(
            "aggregated_payload_size",
            response.get_ref().aggregated_payload_size,
            74_922,
        )?;
        Ok(())
    }

    /// server_streaming: one request, four responses of the sizes asked for.
    pub async fn server_streaming(&self) -> CaseResult {
        let sizes = [31_415, 9, 2_653, 58_979];
        let request = StreamingOutputCallRequest {
            response_parameters: sizes.iter().map(|&size| params(size)).collect(),
            ..Default::default()
        };
        let response = self
            .client()
            .streaming_output_call(request)
            .await
            .map_err(|status| call_failed("StreamingOutputCall", &status))?;
        let mut stream = response.into_inner();
        for (i, &size) in sizes.iter().enumerate() {
            let message = next_response(&mut stream, i).await?;
            check_output(&message, size, i)?;
        }
        expect_end(&mut stream, sizes.len()).await?;
        Ok(())
    }

    /// ping_pong: four request/response rounds on one bidi stream.
    pub async fn ping_pong(&self) -> CaseResult {
        let rounds = [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)];
        let (mut sender, receiver) = mpsc::channel(1);
        let mut stream = self
            .client()
            .full_duplex_call(receiver)
            .await
            .map_err(|status| call_failed("FullDuplexCall", &status))?;
        for (i, &(response_size, request_size)) in rounds.iter().enumerate() {
            send(&mut sender, output_request(response_size, request_size)).await?;
            let message = next_response(&mut stream, i).await?;
            check_output(&message, response_size, i)?;
        }
        drop(sender);
        expect_end(&mut stream, rounds.len()).await?;
        Ok(())
    }

    /// empty_stream: a bidi call with no messages either way.
    pub async fn empty_stream(&self) -> CaseResult {
        let mut stream = self
            .client()
            .full_duplex_call(futures::stream::empty())
            .await
            .map_err(|status| call_failed("FullDuplexCall", &status))?;
        expect_end(&mut stream, 0).await?;
        Ok(())
    }

    /// custom_metadata: ASCII metadata echoed in the headers, binary metadata
    /// in the trailers, for a unary and a bidi call.
    pub async fn custom_metadata(&self) -> CaseResult {
        let mut request = Request::new(large_request());
        add_echo_metadata(&mut request);
        let response = self
            .client()
            .unary_call(request)
            .await
            .map_err(|status| call_failed("UnaryCall", &status))?;
        check_simple_response(response.get_ref())?;
        check_initial(response.metadata(), "UnaryCall")?;
        check_trailing(response.trailers(), "UnaryCall")?;

        let message = StreamingOutputCallRequest {
            response_parameters: vec![params(LARGE_RESPONSE)],
            payload: Some(zeros(LARGE_REQUEST)),
            ..Default::default()
        };
        let mut request = Request::new(futures::stream::iter([message]));
        add_echo_metadata(&mut request);
        let mut stream = self
            .client()
            .full_duplex_call(request)
            .await
            .map_err(|status| call_failed("FullDuplexCall", &status))?;
        let message = next_response(&mut stream, 0).await?;
        check_output(&message, LARGE_RESPONSE, 0)?;
        // The response headers came with the first message.
        let headers = stream
            .headers()
            .ok_or_else(|| fail("FullDuplexCall: no response headers after a message"))?;
        check_initial(headers, "FullDuplexCall")?;
        let trailers = stream
            .trailers()
            .await
            .map_err(|status| call_failed("FullDuplexCall", &status))?
            .ok_or_else(|| fail("FullDuplexCall: no trailers"))?;
        check_trailing(&trailers, "FullDuplexCall")?;
        Ok(())
    }

    /// status_code_and_message: the status asked for comes back, unary and bidi.
    pub async fn status_code_and_message(&self) -> CaseResult {
        self.echo_status_unary(2, "test status message").await?;
        let message = StreamingOutputCallRequest {
            response_status: Some(EchoStatus {
                code: 2,
                message: "test status message".into(),
            }),
            ..Default::default()
        };
        let result = match self
            .client()
            .full_duplex_call(futures::stream::iter([message]))
            .await
        {
            Ok(mut stream) => stream.trailers().await.map(|_| ()),
            Err(status) => Err(status),
        };
        expect_status(
            "FullDuplexCall",
            result,
            Code::Unknown,
            Some("test status message"),
        )
    }

    /// special_status_message: a status message with whitespace, control and
    /// non-ASCII characters survives the percent-encoding.
    pub async fn special_status_message(&self) -> CaseResult {
        self.echo_status_unary(2, SPECIAL_MESSAGE).await
    }

    async fn echo_status_unary(&self, code: i32, message: &str) -> CaseResult {
        let request = SimpleRequest {
            response_status: Some(EchoStatus {
                code,
                message: message.into(),
            }),
            ..Default::default()
        };
        let result = self.client().unary_call(request).await.map(|_| ());
        expect_status("UnaryCall", result, Code::from_i32(code), Some(message))
    }

    /// unimplemented_method: `TestService/UnimplementedCall` is UNIMPLEMENTED.
    pub async fn unimplemented_method(&self) -> CaseResult {
        let result = self.client().unimplemented_call(Empty {}).await.map(|_| ());
        expect_status(
            "TestService/UnimplementedCall",
            result,
            Code::Unimplemented,
            None,
        )
    }

    /// unimplemented_service: a service the server lacks is UNIMPLEMENTED.
    pub async fn unimplemented_service(&self) -> CaseResult {
        let result = UnimplementedServiceClient::new(self.channel.clone())
            .unimplemented_call(Empty {})
            .await
            .map(|_| ());
        expect_status(
            "UnimplementedService/UnimplementedCall",
            result,
            Code::Unimplemented,
            None,
        )
    }

    /// timeout_on_sleeping_server: a bidi call with a 1 ms timeout whose
    /// request stream stays open ends with DEADLINE_EXCEEDED.
    pub async fn timeout_on_sleeping_server(&self) -> CaseResult {
        let (mut sender, receiver) = mpsc::channel(1);
        send(
            &mut sender,
            StreamingOutputCallRequest {
                payload: Some(zeros(27_182)),
                ..Default::default()
            },
        )
        .await?;
        let request = Request::new(receiver).with_timeout(Duration::from_millis(1));
        let result = match self.client().full_duplex_call(request).await {
            Ok(mut stream) => match stream.message().await {
                Ok(Some(_)) => {
                    return Err(fail(
                        "FullDuplexCall: got a response; expected DEADLINE_EXCEEDED",
                    ))
                }
                Ok(None) => Ok(()),
                Err(status) => Err(status),
            },
            Err(status) => Err(status),
        };
        // Keep the request stream open until the call ended.
        drop(sender);
        expect_status("FullDuplexCall", result, Code::DeadlineExceeded, None)
    }

    /// cancel_after_begin: a client-streaming call cancelled before any
    /// message was sent.
    pub async fn cancel_after_begin(&self) -> CaseResult {
        let (sender, receiver) = mpsc::channel::<StreamingInputCallRequest>(1);
        let client = self.client();
        {
            let call = pin!(client.streaming_input_call(receiver));
            let grace = self.runtime.sleep(Duration::from_millis(100));
            if let Either::Left((result, _)) = future::select(call, grace).await {
                return Err(fail(format!(
                    "StreamingInputCall ended before it was cancelled: {}",
                    describe(result.map(|_| ()))
                )));
            }
            // Dropping the call future here cancels the call.
        }
        self.check_cancelled(&sender, "StreamingInputCall").await
    }

    /// cancel_after_first_response: a bidi call cancelled after one response.
    pub async fn cancel_after_first_response(&self) -> CaseResult {
        let (mut sender, receiver) = mpsc::channel(1);
        let mut stream = self
            .client()
            .full_duplex_call(receiver)
            .await
            .map_err(|status| call_failed("FullDuplexCall", &status))?;
        send(&mut sender, output_request(31_415, 27_182)).await?;
        let message = next_response(&mut stream, 0).await?;
        check_output(&message, 31_415, 0)?;
        // Dropping the response stream cancels the call.
        drop(stream);
        self.check_cancelled(&sender, "FullDuplexCall").await
    }

    /// After a cancellation: the call dropped its request stream, and the
    /// channel still carries calls.
    async fn check_cancelled<T>(&self, sender: &mpsc::Sender<T>, call: &str) -> CaseResult {
        let closed = async {
            while !sender.is_closed() {
                self.runtime.sleep(Duration::from_millis(5)).await;
            }
        };
        let limit = self.runtime.sleep(Duration::from_secs(5));
        if let Either::Right(_) = future::select(pin!(closed), limit).await {
            return Err(fail(format!(
                "{call}: the request stream was still in use 5 s after cancelling"
            )));
        }
        self.client()
            .empty_call(Empty {})
            .await
            .map_err(|status| call_failed("EmptyCall after cancelling", &status))?;
        Ok(())
    }

    /// client_compressed_unary: the server rejects an uncompressed request
    /// that says it is compressed, and accepts a compressed and an
    /// uncompressed one that say what they are.
    pub async fn client_compressed_unary(&self) -> CaseResult {
        let plain = self.client();
        let gzip = self.client().send_compressed(CompressionEncoding::Gzip);
        let probe = plain.unary_call(compressed_request(true)).await.map(|_| ());
        expect_status(
            "UnaryCall (probe: uncompressed, expect_compressed=true)",
            probe,
            Code::InvalidArgument,
            None,
        )?;
        let response = gzip
            .unary_call(compressed_request(true))
            .await
            .map_err(|status| call_failed("UnaryCall (compressed)", &status))?;
        check_simple_response(response.get_ref())?;
        let response = plain
            .unary_call(compressed_request(false))
            .await
            .map_err(|status| call_failed("UnaryCall (uncompressed)", &status))?;
        check_simple_response(response.get_ref())?;
        Ok(())
    }

    /// server_compressed_unary: the response is compressed when asked and
    /// not otherwise (the client accepts gzip both times).
    pub async fn server_compressed_unary(&self) -> CaseResult {
        let grpc = Grpc::new(self.channel.clone()).accept_compressed(CompressionEncoding::Gzip);
        for want in [true, false] {
            let request = SimpleRequest {
                response_compressed: Some(BoolValue { value: want }),
                ..large_request()
            };
            // UnaryCall as a server-streaming call, to see the message flag.
            let what = format!("UnaryCall (response_compressed={want})");
            let response = grpc
                .server_streaming::<_, SimpleResponse>(Request::new(request), UNARY_PATH)
                .await
                .map_err(|status| call_failed(&what, &status))?;
            let mut stream = response.into_inner();
            let message = stream
                .message()
                .await
                .map_err(|status| call_failed(&what, &status))?
                .ok_or_else(|| format!("{what}: no response message"))?;
            let compressed = stream.last_message_compressed();
            check_simple_response(&message)?;
            if compressed != want {
                return Err(fail(format!(
                    "{what}: response message compressed flag is {compressed}"
                )));
            }
            if let Some(Ok(_)) = stream.next().await {
                return Err(fail(format!("{what}: more than one response")));
            }
        }
        Ok(())
    }

    /// client_compressed_streaming: the probe is rejected; then a compressed
    /// and an uncompressed message on one stream (a [`MessageCompression`]
    /// switch in the request's extensions).
    pub async fn client_compressed_streaming(&self) -> CaseResult {
        let probe = StreamingInputCallRequest {
            payload: Some(zeros(27_182)),
            expect_compressed: Some(BoolValue { value: true }),
        };
        let result = self
            .client()
            .streaming_input_call(futures::stream::iter([probe.clone()]))
            .await
            .map(|_| ());
        expect_status(
            "StreamingInputCall (probe: uncompressed, expect_compressed=true)",
            result,
            Code::InvalidArgument,
            None,
        )?;
        let second = StreamingInputCallRequest {
            payload: Some(zeros(45_904)),
            expect_compressed: Some(BoolValue { value: false }),
        };
        let switch = MessageCompression::new();
        let flags = switch.clone();
        let messages = futures::stream::iter([(true, probe), (false, second)]).map(
            move |(compress, message)| {
                flags.set(compress);
                message
            },
        );
        let mut request = Request::new(messages);
        request.extensions_mut().insert(switch);
        let response = self
            .client()
            .send_compressed(CompressionEncoding::Gzip)
            .streaming_input_call(request)
            .await
            .map_err(|status| call_failed("StreamingInputCall (compressed, then not)", &status))?;
        expect_eq(
            "aggregated_payload_size",
            response.get_ref().aggregated_payload_size,
            73_086,
        )?;
        Ok(())
    }

    /// server_compressed_streaming: two responses, the first compressed, the
    /// second not.
    pub async fn server_compressed_streaming(&self) -> CaseResult {
        let client = self.client().accept_compressed(CompressionEncoding::Gzip);
        let wanted = [(31_415, true), (92_653, false)];
        let request = StreamingOutputCallRequest {
            response_parameters: wanted
                .iter()
                .map(|&(size, compressed)| ResponseParameters {
                    size,
                    interval_us: 0,
                    compressed: Some(BoolValue { value: compressed }),
                })
                .collect(),
            ..Default::default()
        };
        let response = client
            .streaming_output_call(request)
            .await
            .map_err(|status| call_failed("StreamingOutputCall", &status))?;
        let mut stream = response.into_inner();
        for (i, &(size, want)) in wanted.iter().enumerate() {
            let message = next_response(&mut stream, i).await?;
            check_output(&message, size, i)?;
            let compressed = stream.last_message_compressed();
            if compressed != want {
                return Err(fail(format!(
                    "response {i}: compressed flag is {compressed}, expected {want}"
                )));
            }
        }
        expect_end(&mut stream, wanted.len()).await?;
        Ok(())
    }
}

fn fail(why: impl Into<String>) -> CaseError {
    CaseError::Failed(why.into())
}

fn call_failed(call: &str, status: &Status) -> CaseError {
    fail(format!(
        "{call} failed: {:?}: {:?}",
        status.code(),
        status.message()
    ))
}

fn describe(result: Result<(), Status>) -> String {
    match result {
        Ok(()) => "OK".into(),
        Err(status) => format!("{:?}: {:?}", status.code(), status.message()),
    }
}

fn expect_status(
    call: &str,
    result: Result<(), Status>,
    code: Code,
    message: Option<&str>,
) -> CaseResult {
    match result {
        Err(status) if status.code() == code => match message {
            Some(message) if status.message() != message => Err(fail(format!(
                "{call}: status message {:?}, expected {message:?}",
                status.message()
            ))),
            _ => Ok(()),
        },
        other => Err(fail(format!(
            "{call}: ended with {}, expected {code:?}",
            describe(other)
        ))),
    }
}

fn expect_eq<T: PartialEq + fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} is {got:?}, expected {want:?}"))
    }
}

fn zeros(size: usize) -> Payload {
    Payload {
        r#type: 0,
        body: vec![0; size],
    }
}

fn params(size: i32) -> ResponseParameters {
    ResponseParameters {
        size,
        ..Default::default()
    }
}

fn output_request(response_size: i32, request_size: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: vec![params(response_size)],
        payload: Some(zeros(request_size)),
        ..Default::default()
    }
}

fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_size: LARGE_RESPONSE,
        payload: Some(zeros(LARGE_REQUEST)),
        ..Default::default()
    }
}

fn compressed_request(expect_compressed: bool) -> SimpleRequest {
    SimpleRequest {
        expect_compressed: Some(BoolValue {
            value: expect_compressed,
        }),
        ..large_request()
    }
}

fn check_payload(payload: Option<&Payload>, size: usize, what: &str) -> Result<(), String> {
    let body = payload.map_or(&[][..], |p| &p.body[..]);
    if body.len() != size {
        return Err(format!(
            "{what}: payload of {} bytes, expected {size}",
            body.len()
        ));
    }
    if body.iter().any(|&b| b != 0) {
        return Err(format!("{what}: payload is not all zeros"));
    }
    Ok(())
}

fn check_simple_response(response: &SimpleResponse) -> Result<(), String> {
    check_payload(
        response.payload.as_ref(),
        LARGE_RESPONSE as usize,
        "SimpleResponse",
    )
}

fn check_output(message: &StreamingOutputCallResponse, size: i32, i: usize) -> Result<(), String> {
    check_payload(
        message.payload.as_ref(),
        size as usize,
        &format!("response {i}"),
    )
}

async fn next_response(
    stream: &mut Streaming<StreamingOutputCallResponse>,
    i: usize,
) -> Result<StreamingOutputCallResponse, CaseError> {
    match stream.message().await {
        Ok(Some(message)) => Ok(message),
        Ok(None) => Err(fail(format!(
            "the response stream ended after {i} messages"
        ))),
        Err(status) => Err(call_failed(&format!("reading response {i}"), &status)),
    }
}

async fn expect_end(
    stream: &mut Streaming<StreamingOutputCallResponse>,
    count: usize,
) -> CaseResult {
    match stream.message().await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(fail(format!("more than {count} responses"))),
        Err(status) => Err(call_failed("the call", &status)),
    }
}

async fn send<T>(sender: &mut mpsc::Sender<T>, message: T) -> CaseResult {
    sender
        .send(message)
        .await
        .map_err(|_| fail("the call stopped taking request messages"))
}

fn add_echo_metadata<T>(request: &mut Request<T>) {
    let metadata = request.metadata_mut();
    metadata
        .insert(ECHO_INITIAL, INITIAL_VALUE)
        .expect("valid metadata");
    metadata
        .insert_bin(ECHO_TRAILING_BIN, TRAILING_VALUE)
        .expect("valid metadata");
}

fn check_initial(metadata: &p2p_grpc::MetadataMap, call: &str) -> Result<(), String> {
    match metadata.get(ECHO_INITIAL) {
        Some(INITIAL_VALUE) => Ok(()),
        other => Err(format!(
            "{call}: initial metadata {ECHO_INITIAL} is {other:?}, expected {INITIAL_VALUE:?}"
        )),
    }
}

fn check_trailing(metadata: &p2p_grpc::MetadataMap, call: &str) -> Result<(), String> {
    match metadata.get_bin(ECHO_TRAILING_BIN) {
        Some(Ok(value)) if value[..] == TRAILING_VALUE => Ok(()),
        other => Err(format!(
            "{call}: trailing metadata {ECHO_TRAILING_BIN} is {other:?}, expected 0xababab"
        )),
    }
}

/// Runs `cases` one after the other, returning each name with its result.
pub async fn run_cases(client: &InteropClient, cases: &[&str]) -> Vec<(String, CaseResult)> {
    let mut results = Vec::with_capacity(cases.len());
    for &case in cases {
        results.push((case.to_owned(), client.run(case).await));
    }
    results
}

/// Runs `future` unless `limit` passes first.
pub async fn with_limit<T>(
    runtime: &SharedRuntime,
    limit: Duration,
    future: impl Future<Output = T>,
) -> Option<T> {
    match future::select(pin!(future), runtime.sleep(limit)).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}
