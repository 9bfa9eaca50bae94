//! Servers that hold their response headers back, as grpc-go and the C core
//! do: they send them only with their first response message, after they
//! have read a request. A raw h2 server here behaves that way, in two
//! modes: headers after the first request message, and headers only after
//! the whole request stream ended. Every call kind, written the natural way
//! (open the call, then send), must pass against both.

mod common;

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::*;
use futures::{SinkExt, StreamExt};
use h2::server::SendResponse;
use http::HeaderMap;
use p2p_grpc::client::Grpc;
use p2p_grpc::{Channel, Code, Request};
use prost::Message;
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// When the raw server sends its response headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// With the first response, right after the first request message.
    UntilFirstMessage,
    /// With the first response, after the request stream ended.
    UntilRequestEnd,
}

const MODES: [Hold; 2] = [Hold::UntilFirstMessage, Hold::UntilRequestEnd];

/// The methods of the raw server; all take and return `Msg`.
const RAW_UNARY: &str = "/late.Echo/Unary";
const RAW_COLLECT: &str = "/late.Echo/Collect";
const RAW_EXPAND: &str = "/late.Echo/Expand";
const RAW_CHAT: &str = "/late.Echo/Chat";

/// A channel to a raw h2 server that holds its headers as `hold` says.
async fn late_server(hold: Hold) -> Channel {
    let (client_io, server_io) = p2p_grpc::io::duplex(256 * 1024);
    runtime().spawn(Box::pin(async move {
        let mut connection = h2::server::handshake(server_io.compat()).await.unwrap();
        while let Some(Ok((request, respond))) = connection.accept().await {
            runtime().spawn(Box::pin(answer(hold, request, respond)));
        }
    }));
    Channel::connect(client_io).await.unwrap()
}

/// Reads the request messages as they come and answers:
/// - `Unary` and `Chat` echo every message;
/// - `Collect` answers once, at the end, with the texts joined and the count;
/// - `Expand` sends `count` copies of its one request.
async fn answer(
    hold: Hold,
    request: http::Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let path = request.uri().path().to_owned();
    let mut body = request.into_body();
    let mut buffered = BytesMut::new();
    let mut received = Vec::new();
    let mut sent_headers = None;
    let mut echoed = 0;
    loop {
        let chunk = body.data().await;
        let ended = match chunk {
            Some(Ok(chunk)) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                buffered.extend_from_slice(&chunk);
                while let Some(message) = take_message(&mut buffered) {
                    received.push(message);
                }
                false
            }
            Some(Err(_)) => return,
            None => true,
        };
        let may_answer = match hold {
            Hold::UntilFirstMessage => !received.is_empty(),
            Hold::UntilRequestEnd => ended,
        };
        if may_answer && (path == RAW_CHAT || path == RAW_UNARY) {
            let send = sent_headers.get_or_insert_with(|| send_headers(&mut respond));
            for message in &received[echoed..] {
                send.send_data(frame(message), false).unwrap();
            }
            echoed = received.len();
        }
        if ended {
            break;
        }
    }
    let mut send = sent_headers.unwrap_or_else(|| send_headers(&mut respond));
    match path.as_str() {
        RAW_COLLECT => {
            let texts: Vec<&str> = received.iter().map(|m| m.text.as_str()).collect();
            send.send_data(
                frame(&Msg::count(texts.join(","), received.len() as u32)),
                false,
            )
            .unwrap();
        }
        RAW_EXPAND => {
            let request = &received[0];
            for i in 0..request.count {
                send.send_data(frame(&Msg::count(request.text.clone(), i)), false)
                    .unwrap();
            }
        }
        _ => {}
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    trailers.insert("x-late-trailer", "done".parse().unwrap());
    send.send_trailers(trailers).unwrap();
}

fn send_headers(respond: &mut SendResponse<Bytes>) -> h2::SendStream<Bytes> {
    let response = http::Response::builder()
        .header("content-type", "application/grpc")
        .header("x-late-header", "here")
        .body(())
        .unwrap();
    respond.send_response(response, false).unwrap()
}

fn take_message(buffered: &mut BytesMut) -> Option<Msg> {
    if buffered.len() < 5 {
        return None;
    }
    let len = u32::from_be_bytes([buffered[1], buffered[2], buffered[3], buffered[4]]) as usize;
    if buffered.len() < 5 + len {
        return None;
    }
    buffered.advance(5);
    let payload = buffered.split_to(len);
    Some(Msg::decode(&payload[..]).unwrap())
}

fn frame(message: &Msg) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(0);
    buf.put_u32(message.encoded_len() as u32);
    message.encode(&mut buf).unwrap();
    buf.freeze()
}

/// Runs a case under a limit of its own, so a deadlock fails with its name.
async fn case(name: &str, hold: Hold, body: impl std::future::Future<Output = ()>) {
    let limit = runtime().sleep(Duration::from_secs(10));
    if let futures::future::Either::Right(_) =
        futures::future::select(std::pin::pin!(body), limit).await
    {
        panic!("{name} against a server holding headers {hold:?}: deadlocked");
    }
}

#[test]
fn bidi_opened_then_fed_passes_ping_pong() {
    run(async {
        // The natural code: open the call, then send, then read, in turns.
        // With headers held back until a request has been read, a call that
        // waited for them before returning would never see a message sent.
        case("ping-pong", Hold::UntilFirstMessage, async {
            let grpc = Grpc::new(late_server(Hold::UntilFirstMessage).await);
            let (mut sender, receiver) = feeder();
            let mut replies = grpc
                .streaming::<_, _, Msg>(Request::new(receiver), RAW_CHAT)
                .await
                .unwrap();
            assert!(replies.headers().is_none(), "no headers before any answer");
            for i in 0..4 {
                feed(&mut sender, Msg::count("ping", i)).await;
                let reply = replies.message().await.unwrap().unwrap();
                assert_eq!(reply.count, i);
                assert_eq!(
                    replies.headers().and_then(|h| h.get("x-late-header")),
                    Some("here")
                );
            }
            drop(sender);
            assert!(replies.message().await.unwrap().is_none());
            let trailers = replies.trailers().await.unwrap().unwrap();
            assert_eq!(trailers.get("x-late-trailer"), Some("done"));
        })
        .await;
    });
}

#[test]
fn bidi_answered_only_after_the_request_stream_ended() {
    run(async {
        case("bidi, answers at the end", Hold::UntilRequestEnd, async {
            let grpc = Grpc::new(late_server(Hold::UntilRequestEnd).await);
            let (mut sender, receiver) = feeder();
            let mut replies = grpc
                .streaming::<_, _, Msg>(Request::new(receiver), RAW_CHAT)
                .await
                .unwrap();
            for i in 0..3 {
                feed(&mut sender, Msg::count("all", i)).await;
            }
            drop(sender);
            let counts: Vec<u32> = (&mut replies)
                .map(|reply| reply.unwrap().count)
                .collect()
                .await;
            assert_eq!(counts, [0, 1, 2]);
            assert_eq!(
                replies.headers().and_then(|h| h.get("x-late-header")),
                Some("here")
            );
        })
        .await;
    });
}

#[test]
fn bidi_with_no_messages_either_way_ends_cleanly() {
    run(async {
        for hold in MODES {
            case("empty bidi", hold, async {
                let grpc = Grpc::new(late_server(hold).await);
                let mut replies = grpc
                    .streaming::<_, _, Msg>(Request::new(futures::stream::empty::<Msg>()), RAW_CHAT)
                    .await
                    .unwrap();
                assert!(replies.message().await.unwrap().is_none());
                // The headers came with the end of the call.
                assert_eq!(
                    replies.headers().and_then(|h| h.get("x-late-header")),
                    Some("here")
                );
            })
            .await;
        }
    });
}

#[test]
fn client_streaming_fed_after_the_call_started() {
    run(async {
        for hold in MODES {
            case("client streaming", hold, async {
                let grpc = Grpc::new(late_server(hold).await);
                let (mut sender, receiver) = feeder();
                let call = grpc.client_streaming::<_, _, Msg>(Request::new(receiver), RAW_COLLECT);
                let feeding = async move {
                    for text in ["a", "b", "c"] {
                        sender.send(Msg::text(text)).await.unwrap();
                    }
                };
                let (response, ()) = futures::join!(call, feeding);
                let response = response.unwrap();
                assert_eq!(response.get_ref().text, "a,b,c");
                assert_eq!(response.get_ref().count, 3);
                assert_eq!(response.metadata().get("x-late-header"), Some("here"));
                assert_eq!(response.trailers().get("x-late-trailer"), Some("done"));
            })
            .await;
        }
    });
}

#[test]
fn unary_and_server_streaming_against_late_headers() {
    run(async {
        for hold in MODES {
            case("unary and server streaming", hold, async {
                let grpc = Grpc::new(late_server(hold).await);
                let reply = grpc
                    .unary::<_, Msg>(Request::new(Msg::text("one")), RAW_UNARY)
                    .await
                    .unwrap();
                assert_eq!(reply.get_ref().text, "one");
                assert_eq!(reply.metadata().get("x-late-header"), Some("here"));

                let response = grpc
                    .server_streaming::<_, Msg>(Request::new(Msg::count("n", 3)), RAW_EXPAND)
                    .await
                    .unwrap();
                assert_eq!(response.metadata().get("x-late-header"), Some("here"));
                let mut stream = response.into_inner();
                assert_eq!(
                    stream.headers().and_then(|h| h.get("x-late-header")),
                    Some("here")
                );
                let counts: Vec<u32> = (&mut stream).map(|m| m.unwrap().count).collect().await;
                assert_eq!(counts, [0, 1, 2]);
            })
            .await;
        }
    });
}

#[test]
fn a_bidi_call_refused_at_once_reports_the_status_as_its_first_item() {
    run(async {
        // Our own server answers an unknown method trailers-only, at once.
        let (server, _events) = echo_server(|b| b);
        let grpc = Grpc::new(memory_channel(&server).await);
        let (_sender, receiver) = feeder();
        let mut replies = grpc
            .streaming::<_, _, Msg>(Request::new(receiver), MISSING)
            .await
            .expect("opening does not wait for the answer");
        let status = replies.message().await.unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        assert!(replies.message().await.unwrap().is_none());
    });
}
