//! Retries under a policy (gRPC's proposal A6), against a raw h2 server
//! that answers each attempt as a script says and records what each
//! attempt carried: the attempt count, `grpc-previous-rpc-attempts`, the
//! codes that are and are not retried, the server's pushback, commitment,
//! throttling, and the service config JSON.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use futures::StreamExt;
use h2::server::SendResponse;
use http::HeaderMap;
use p2p_grpc::client::{Grpc, RetryPolicy, ServiceConfig};
use p2p_grpc::{Channel, Code, Request};
use prost::Message;
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// How the raw server answers one attempt.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// Trailers-Only with this code (and `grpc-retry-pushback-ms`).
    Fail(u8, Option<&'static str>),
    /// Response headers, then trailers with this code: committed.
    FailAfterHeaders(u8),
    /// Trailers-Only with this code as soon as the headers are in, before
    /// reading any request.
    FailAtOnce(u8),
    /// OK: two messages for `Expand` and `Chat`, else one with the request
    /// texts joined.
    Ok,
}

/// What each attempt carried: `grpc-previous-rpc-attempts` and
/// `grpc-timeout`.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// The request texts each attempt received (in attempt order).
type Received = Arc<Mutex<Vec<Vec<String>>>>;

async fn scripted(script: Vec<Answer>, config: Option<ServiceConfig>) -> (Channel, Seen) {
    let (channel, seen, _) = scripted_with_bodies(script, config).await;
    (channel, seen)
}

async fn scripted_with_bodies(
    script: Vec<Answer>,
    config: Option<ServiceConfig>,
) -> (Channel, Seen, Received) {
    let seen: Seen = Arc::default();
    let received: Received = Arc::default();
    let bodies = received.clone();
    let (client_io, server_io) = p2p_grpc::io::duplex(256 * 1024);
    let log = seen.clone();
    runtime().spawn(Box::pin(async move {
        let mut connection = h2::server::handshake(server_io.compat()).await.unwrap();
        let mut attempt = 0;
        while let Some(Ok((request, respond))) = connection.accept().await {
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            let seen = (header("grpc-previous-rpc-attempts"), header("grpc-timeout"));
            log.lock().unwrap().push(seen);
            let answer = script.get(attempt).copied().unwrap_or(Answer::Ok);
            bodies.lock().unwrap().push(Vec::new());
            let bodies = bodies.clone();
            let index = attempt;
            attempt += 1;
            runtime().spawn(Box::pin(respond_with(
                answer,
                request,
                respond,
                move |text| bodies.lock().unwrap()[index].push(text),
            )));
        }
    }));
    let mut builder = Channel::builder();
    if let Some(config) = config {
        builder = builder.service_config(config);
    }
    (builder.connect(client_io).await.unwrap(), seen, received)
}

async fn respond_with(
    answer: Answer,
    request: http::Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
    mut note: impl FnMut(String),
) {
    let path = request.uri().path().to_owned();
    let mut body = request.into_body();
    let mut texts = Vec::new();
    if !matches!(answer, Answer::FailAtOnce(_)) {
        let mut buffered = BytesMut::new();
        while let Some(Ok(chunk)) = body.data().await {
            let _ = body.flow_control().release_capacity(chunk.len());
            buffered.extend_from_slice(&chunk);
            while buffered.len() >= 5 {
                let len = u32::from_be_bytes([buffered[1], buffered[2], buffered[3], buffered[4]])
                    as usize;
                if buffered.len() < 5 + len {
                    break;
                }
                let frame = buffered.split_to(5 + len);
                let text = Msg::decode(&frame[5..]).unwrap().text;
                note(text.clone());
                texts.push(text);
            }
        }
    }
    let status = |code: u8| {
        let mut map = HeaderMap::new();
        map.insert("grpc-status", code.to_string().parse().unwrap());
        map
    };
    let grpc = || {
        http::Response::builder()
            .header("content-type", "application/grpc")
            .body(())
            .unwrap()
    };
    match answer {
        Answer::FailAtOnce(code) => {
            let mut response = grpc();
            response.headers_mut().extend(status(code));
            let _ = respond.send_response(response, true);
        }
        Answer::Fail(code, pushback) => {
            let mut response = grpc();
            response.headers_mut().extend(status(code));
            if let Some(pushback) = pushback {
                response
                    .headers_mut()
                    .insert("grpc-retry-pushback-ms", pushback.parse().unwrap());
            }
            let _ = respond.send_response(response, true);
        }
        Answer::FailAfterHeaders(code) => {
            let mut send = respond.send_response(grpc(), false).unwrap();
            let _ = send.send_trailers(status(code));
        }
        Answer::Ok => {
            let mut send = respond.send_response(grpc(), false).unwrap();
            let replies = if path == EXPAND || path == CHAT {
                vec!["one".to_owned(), "two".to_owned()]
            } else {
                vec![texts.join(",")]
            };
            for text in replies {
                let message = Msg::text(text);
                let mut buf = BytesMut::new();
                buf.put_u8(0);
                buf.put_u32(message.encoded_len() as u32);
                message.encode(&mut buf).unwrap();
                let _ = send.send_data(buf.freeze(), false);
            }
            let _ = send.send_trailers(status(0));
        }
    }
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        backoff_multiplier: 2.0,
        retryable_codes: vec![Code::Unavailable, Code::ResourceExhausted],
    }
}

fn retrying(max_attempts: u32) -> Option<ServiceConfig> {
    Some(ServiceConfig::new().retry("test.Echo", None, policy(max_attempts)))
}

const UNAVAILABLE: u8 = 14;
const INTERNAL: u8 = 13;

async fn unary(channel: &Channel) -> Result<String, p2p_grpc::Status> {
    Grpc::new(channel.clone())
        .unary::<_, Msg>(Request::new(Msg::text("hi")), UNARY)
        .await
        .map(|reply| reply.into_inner().text)
}

fn previous(seen: &Seen) -> Vec<Option<String>> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(previous, _)| previous.clone())
        .collect()
}

fn headers(values: &[Option<&str>]) -> Vec<Option<String>> {
    values.iter().map(|v| v.map(str::to_owned)).collect()
}

#[test]
fn retryable_failures_are_retried_with_the_attempt_count_until_success() {
    run(async {
        let script = vec![
            Answer::Fail(UNAVAILABLE, None),
            Answer::Fail(UNAVAILABLE, None),
        ];
        let (channel, seen) = scripted(script, retrying(4)).await;
        // Two messages in a unary response: the Ok answer is for streaming.
        let reply = Grpc::new(channel.clone())
            .server_streaming::<_, Msg>(Request::new(Msg::text("hi")), EXPAND)
            .await
            .unwrap();
        let texts: Vec<String> = reply.into_inner().map(|m| m.unwrap().text).collect().await;
        assert_eq!(texts, ["one", "two"]);
        assert_eq!(previous(&seen), headers(&[None, Some("1"), Some("2")]));
    });
}

#[test]
fn retries_stop_at_a_code_the_policy_does_not_name() {
    run(async {
        let script = vec![
            Answer::Fail(UNAVAILABLE, None),
            Answer::Fail(UNAVAILABLE, None),
            Answer::Fail(INTERNAL, None),
        ];
        let (channel, seen) = scripted(script, retrying(5)).await;
        let status = unary(&channel).await.unwrap_err();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(previous(&seen), headers(&[None, Some("1"), Some("2")]));
    });
}

#[test]
fn retries_stop_after_max_attempts_with_the_last_status() {
    run(async {
        let script = vec![Answer::Fail(UNAVAILABLE, None); 10];
        let (channel, seen) = scripted(script, retrying(3)).await;
        let status = unary(&channel).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(seen.lock().unwrap().len(), 3);
        // More than 5 attempts is taken as 5.
        let script = vec![Answer::Fail(UNAVAILABLE, None); 10];
        let (channel, seen) = scripted(script, retrying(9)).await;
        unary(&channel).await.unwrap_err();
        assert_eq!(seen.lock().unwrap().len(), 5);
    });
}

#[test]
fn without_a_policy_nothing_is_retried() {
    run(async {
        let (channel, seen) = scripted(vec![Answer::Fail(UNAVAILABLE, None)], None).await;
        assert_eq!(unary(&channel).await.unwrap_err().code(), Code::Unavailable);
        // A policy for another service does not apply either.
        let other = Some(ServiceConfig::new().retry("other.Svc", None, policy(5)));
        let (channel, seen_other) = scripted(vec![Answer::Fail(UNAVAILABLE, None)], other).await;
        assert_eq!(unary(&channel).await.unwrap_err().code(), Code::Unavailable);
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!(seen_other.lock().unwrap().len(), 1);
    });
}

#[test]
fn the_servers_pushback_is_obeyed() {
    run(async {
        // A negative pushback: do not retry.
        let (channel, seen) =
            scripted(vec![Answer::Fail(UNAVAILABLE, Some("-1"))], retrying(5)).await;
        assert_eq!(unary(&channel).await.unwrap_err().code(), Code::Unavailable);
        assert_eq!(seen.lock().unwrap().len(), 1);
        // A delay: retried (the attempt after it succeeds).
        let script = vec![
            Answer::Fail(UNAVAILABLE, Some("10")),
            Answer::Fail(UNAVAILABLE, Some("0")),
        ];
        let (channel, seen) = scripted(script, retrying(5)).await;
        let _ = Grpc::new(channel)
            .server_streaming::<_, Msg>(Request::new(Msg::text("hi")), EXPAND)
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);
    });
}

#[test]
fn a_call_the_server_committed_to_is_not_retried() {
    run(async {
        let (channel, seen) =
            scripted(vec![Answer::FailAfterHeaders(UNAVAILABLE)], retrying(5)).await;
        assert_eq!(unary(&channel).await.unwrap_err().code(), Code::Unavailable);
        assert_eq!(seen.lock().unwrap().len(), 1);
    });
}

#[test]
fn a_client_streaming_call_is_retried_with_its_requests_replayed() {
    run(async {
        let script = vec![
            Answer::Fail(UNAVAILABLE, None),
            Answer::Fail(UNAVAILABLE, None),
        ];
        let (channel, seen, received) = scripted_with_bodies(script, retrying(5)).await;
        let requests = futures::stream::iter(["a", "b", "c"].map(Msg::text));
        let reply = Grpc::new(channel)
            .client_streaming::<_, Msg, Msg>(Request::new(requests), COLLECT)
            .await
            .unwrap();
        assert_eq!(reply.into_inner().text, "a,b,c");
        assert_eq!(previous(&seen), headers(&[None, Some("1"), Some("2")]));
        // Every attempt got every request, once and in order.
        assert_eq!(*received.lock().unwrap(), vec![vec!["a", "b", "c"]; 3]);
    });
}

#[test]
fn a_bidi_call_is_retried_and_later_requests_go_to_the_new_attempt() {
    run(async {
        // The first attempt fails before reading anything.
        let script = vec![Answer::FailAtOnce(UNAVAILABLE)];
        let (channel, seen, received) = scripted_with_bodies(script, retrying(5)).await;
        let (mut sender, requests) = futures::channel::mpsc::channel::<Msg>(4);
        let mut replies = Grpc::new(channel)
            .streaming::<_, Msg, Msg>(Request::new(requests), CHAT)
            .await
            .unwrap();
        futures::SinkExt::send(&mut sender, Msg::text("a"))
            .await
            .unwrap();
        // Wait until the retry is under way, then send more and end.
        while seen.lock().unwrap().len() < 2 {
            runtime().sleep(Duration::from_millis(1)).await;
        }
        futures::SinkExt::send(&mut sender, Msg::text("b"))
            .await
            .unwrap();
        drop(sender);
        let texts: Vec<String> = (&mut replies).map(|m| m.unwrap().text).collect().await;
        assert_eq!(texts, ["one", "two"]);
        assert_eq!(previous(&seen), headers(&[None, Some("1")]));
        // The new attempt got "a" again (replayed) and then "b", once each.
        assert_eq!(received.lock().unwrap()[1], ["a", "b"]);
    });
}

#[test]
fn a_bidi_call_the_server_answered_is_not_retried() {
    run(async {
        let (channel, seen) =
            scripted(vec![Answer::FailAfterHeaders(UNAVAILABLE)], retrying(5)).await;
        let requests = futures::stream::iter(["a"].map(Msg::text));
        let mut replies = Grpc::new(channel)
            .streaming::<_, Msg, Msg>(Request::new(requests), CHAT)
            .await
            .unwrap();
        let status = replies.next().await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(seen.lock().unwrap().len(), 1);
    });
}

#[test]
fn a_stream_larger_than_the_retry_buffer_is_not_retried() {
    run(async {
        let script = vec![Answer::Fail(UNAVAILABLE, None)];
        let (channel, seen) = scripted(script, retrying(5)).await;
        // 300 KiB of requests: more than the 256 KiB a call keeps.
        let big = "x".repeat(100 * 1024);
        let requests = futures::stream::iter((0..3).map(move |_| Msg::text(big.clone())));
        let status = Grpc::new(channel)
            .client_streaming::<_, Msg, Msg>(Request::new(requests), COLLECT)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(seen.lock().unwrap().len(), 1);
    });
}

#[test]
fn throttling_from_a_service_config_json_stops_retries() {
    run(async {
        let config = ServiceConfig::from_json(
            r#"{"methodConfig": [{"name": [{"service": "test.Echo", "method": "Unary"}],
                 "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.005s", "maxBackoff": "0.02s",
                                 "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}],
                "retryThrottling": {"maxTokens": 3, "tokenRatio": 0.5}}"#,
        )
        .unwrap();
        // 3 tokens: the first failure leaves 2 (> 1.5, a retry), the second
        // 1 (no more retries), for this call and the next.
        let script = vec![Answer::Fail(UNAVAILABLE, None); 10];
        let (channel, seen) = scripted(script, Some(config)).await;
        assert_eq!(unary(&channel).await.unwrap_err().code(), Code::Unavailable);
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert_eq!(unary(&channel).await.unwrap_err().code(), Code::Unavailable);
        assert_eq!(seen.lock().unwrap().len(), 3);
    });
}

#[test]
fn a_retry_sends_what_is_left_of_the_deadline() {
    run(async {
        // The server asks for 50 ms between attempts.
        let script = vec![Answer::Fail(UNAVAILABLE, Some("50")), Answer::Ok];
        let (channel, seen) = scripted(script, retrying(5)).await;
        let request = Request::new(Msg::text("hi")).with_timeout(Duration::from_secs(10));
        let _ = Grpc::new(channel)
            .server_streaming::<_, Msg>(request, EXPAND)
            .await
            .unwrap();
        let timeouts: Vec<Duration> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, timeout)| {
                let text = timeout.as_deref().expect("a grpc-timeout");
                let (value, unit) = text.split_at(text.len() - 1);
                let value: u64 = value.parse().unwrap();
                match unit {
                    "m" => Duration::from_millis(value),
                    "u" => Duration::from_micros(value),
                    "n" => Duration::from_nanos(value),
                    "S" => Duration::from_secs(value),
                    other => panic!("unit {other}"),
                }
            })
            .collect();
        assert_eq!(timeouts[0], Duration::from_secs(10));
        assert!(
            timeouts[1] <= Duration::from_millis(9950),
            "the retry sent {:?}",
            timeouts[1]
        );
    });
}
