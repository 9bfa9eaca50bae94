//! Hostile or broken requests sent with a raw HTTP/2 client. Each gets the
//! status the gRPC spec gives it, and the connection keeps serving.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use futures::{AsyncWriteExt, FutureExt};
use h2::client::SendRequest;
use http::{HeaderMap, Method, StatusCode};
use p2p_grpc::{Code, Server, Status};
use prost::Message;
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// A bare h2 client over an in-memory pipe to `server`.
async fn raw_client(server: &Server) -> SendRequest<Bytes> {
    let (client_io, server_io) = p2p_grpc::io::duplex(256 * 1024);
    let served = server.clone();
    runtime().spawn(Box::pin(async move {
        let _ = served.serve_connection(server_io).await;
    }));
    let (send, connection) = h2::client::handshake(client_io.compat()).await.unwrap();
    runtime().spawn(Box::pin(async move {
        let _ = connection.await;
    }));
    send
}

struct RawResponse {
    http_status: StatusCode,
    headers: HeaderMap,
    data: Vec<u8>,
    trailers: Option<HeaderMap>,
}

impl RawResponse {
    /// The gRPC status, from the trailers or a trailers-only response.
    fn status(&self) -> Status {
        self.trailers
            .as_ref()
            .and_then(Status::from_header_map)
            .or_else(|| Status::from_header_map(&self.headers))
            .expect("a grpc-status")
    }
}

fn grpc_request(path: &str) -> http::request::Builder {
    http::Request::builder()
        .method(Method::POST)
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
}

fn frame(flag: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(flag);
    buf.put_u32(payload.len() as u32);
    buf.put_slice(payload);
    buf.freeze()
}

async fn raw_call(
    send: &mut SendRequest<Bytes>,
    request: http::Request<()>,
    body: Bytes,
) -> RawResponse {
    let mut send = send.clone().ready().await.unwrap();
    let (response, mut stream) = send.send_request(request, false).unwrap();
    // The server may answer before reading: a failed send is fine.
    let _ = stream.send_data(body, true);
    let response = response.await.unwrap();
    let (parts, mut body) = response.into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap();
    RawResponse {
        http_status: parts.status,
        headers: parts.headers,
        data,
        trailers,
    }
}

/// A well-formed unary call still works on the same connection.
async fn still_serving(send: &mut SendRequest<Bytes>) {
    let body = frame(0, &Msg::text("alive").encode_to_vec());
    let response = raw_call(send, grpc_request(UNARY).body(()).unwrap(), body).await;
    assert_eq!(response.status().code(), Code::Ok);
    assert_eq!(Msg::decode(&response.data[5..]).unwrap().text, "alive");
}

#[test]
fn declared_length_over_the_limit_is_resource_exhausted() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        // Declares 4 GiB - 1 and sends nothing after the prefix.
        let body = Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]);
        let response = raw_call(&mut send, grpc_request(UNARY).body(()).unwrap(), body).await;
        assert_eq!(response.status().code(), Code::ResourceExhausted);
        still_serving(&mut send).await;
    });
}

#[test]
fn truncated_message_is_internal() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        let full = frame(0, &Msg::text("truncated message").encode_to_vec());
        let body = full.slice(..full.len() - 4);
        let response = raw_call(&mut send, grpc_request(UNARY).body(()).unwrap(), body).await;
        assert_eq!(response.status().code(), Code::Internal);
        still_serving(&mut send).await;
    });
}

#[test]
fn compressed_flag_without_encoding_is_internal() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        let body = frame(1, &Msg::text("x").encode_to_vec());
        let response = raw_call(&mut send, grpc_request(UNARY).body(()).unwrap(), body).await;
        assert_eq!(response.status().code(), Code::Internal);
        still_serving(&mut send).await;
    });
}

#[test]
fn invalid_flag_byte_is_internal() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        let body = frame(7, &Msg::text("x").encode_to_vec());
        let response = raw_call(&mut send, grpc_request(UNARY).body(()).unwrap(), body).await;
        assert_eq!(response.status().code(), Code::Internal);
        still_serving(&mut send).await;
    });
}

#[test]
fn garbage_protobuf_is_internal() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        let body = frame(0, &[0xff, 0xff, 0xff, 0xff, 0xff]);
        let response = raw_call(&mut send, grpc_request(UNARY).body(()).unwrap(), body).await;
        assert_eq!(response.status().code(), Code::Internal);
        still_serving(&mut send).await;
    });
}

#[test]
fn wrong_content_type_is_http_415() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(format!("http://localhost{UNARY}"))
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let response = raw_call(&mut send, request, Bytes::from_static(b"{}")).await;
        assert_eq!(response.http_status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // A look-alike prefix is not gRPC either.
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(format!("http://localhost{UNARY}"))
            .header("content-type", "application/grpcx")
            .body(())
            .unwrap();
        let response = raw_call(&mut send, request, Bytes::new()).await;
        assert_eq!(response.http_status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        still_serving(&mut send).await;
    });
}

#[test]
fn get_instead_of_post_is_http_405() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        let request = grpc_request(UNARY).method(Method::GET).body(()).unwrap();
        let response = raw_call(&mut send, request, Bytes::new()).await;
        assert_eq!(response.http_status, StatusCode::METHOD_NOT_ALLOWED);
        still_serving(&mut send).await;
    });
}

#[test]
fn invalid_grpc_timeout_is_internal() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        for bad in ["abc", "123456789S", "10x", "S", ""] {
            let request = grpc_request(UNARY)
                .header("grpc-timeout", bad)
                .body(())
                .unwrap();
            let body = frame(0, &Msg::text("x").encode_to_vec());
            let response = raw_call(&mut send, request, body).await;
            assert_eq!(response.status().code(), Code::Internal, "{bad:?}");
        }
        still_serving(&mut send).await;
    });
}

#[test]
fn unknown_paths_are_unimplemented() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        for path in [
            "/test.Echo/Nope",
            "/no.Such/Method",
            "/",
            "/onlyservice",
            "//Method",
        ] {
            let body = frame(0, &[]);
            let response = raw_call(&mut send, grpc_request(path).body(()).unwrap(), body).await;
            assert_eq!(response.status().code(), Code::Unimplemented, "{path}");
            assert_eq!(response.http_status, StatusCode::OK);
            // Trailers-only: the status is in the headers, nothing else came.
            assert!(response.trailers.is_none());
            assert!(response.data.is_empty());
        }
        still_serving(&mut send).await;
    });
}

#[test]
fn unsupported_encoding_is_unimplemented_and_lists_ours() {
    run(async {
        let (server, _events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        let request = grpc_request(UNARY)
            .header("grpc-encoding", "br")
            .body(())
            .unwrap();
        let body = frame(1, b"whatever");
        let response = raw_call(&mut send, request, body).await;
        assert_eq!(response.status().code(), Code::Unimplemented);
        let accepted = response.headers.get("grpc-accept-encoding").unwrap();
        assert!(accepted.to_str().unwrap().contains("gzip"));
        still_serving(&mut send).await;
    });
}

#[test]
fn the_server_enforces_grpc_timeout_itself() {
    run(async {
        let (server, mut events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        // This client keeps no timer of its own: only the server can end it.
        let request = grpc_request(SLOW)
            .header("grpc-timeout", "100m")
            .body(())
            .unwrap();
        let body = frame(0, &Msg::count("raw-slow", 60_000).encode_to_vec());
        let response = raw_call(&mut send, request, body).await;
        assert_eq!(response.status().code(), Code::DeadlineExceeded);
        assert_eq!(
            next_event(&mut events).await,
            Event::Started("raw-slow".into())
        );
        assert_eq!(
            next_event(&mut events).await,
            Event::Dropped("raw-slow".into())
        );
        still_serving(&mut send).await;
    });
}

#[test]
fn reset_in_the_middle_of_a_stream_drops_the_handler_only() {
    run(async {
        let (server, mut events) = echo_server(|b| b);
        let mut send = raw_client(&server).await;
        let mut ready = send.clone().ready().await.unwrap();
        let (response, mut stream) = ready
            .send_request(grpc_request(CHAT).body(()).unwrap(), false)
            .unwrap();
        // Half a message, then a reset.
        let message = frame(0, &Msg::text("half").encode_to_vec());
        stream
            .send_data(frame(0, &Msg::text("whole").encode_to_vec()), false)
            .unwrap();
        let response = response.await.unwrap();
        let mut body = response.into_body();
        let first = body.data().await.unwrap().unwrap();
        assert_eq!(Msg::decode(&first[5..]).unwrap().text, "whole");
        assert_eq!(next_event(&mut events).await, Event::Started("chat".into()));
        stream.send_data(message.slice(..3), false).unwrap();
        stream.send_reset(h2::Reason::CANCEL);
        assert_eq!(next_event(&mut events).await, Event::Dropped("chat".into()));
        still_serving(&mut send).await;
    });
}

#[test]
fn garbage_instead_of_http2_fails_only_that_connection() {
    run(async {
        let (server, _events) = echo_server(|b| b.handshake_timeout(Duration::from_secs(5)));
        let (mut junk_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let served = server.clone();
        let (done_tx, done_rx) = futures::channel::oneshot::channel();
        runtime().spawn(Box::pin(async move {
            let result = served.serve_connection(server_io).await;
            let _ = done_tx.send(result.is_err());
        }));
        junk_io
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nthis is not http/2 at all")
            .await
            .unwrap();
        assert!(done_rx.await.unwrap(), "serving garbage ends with an error");
        // Other connections are untouched.
        let mut send = raw_client(&server).await;
        still_serving(&mut send).await;
    });
}

#[test]
fn a_silent_connection_times_out_in_the_handshake() {
    run(async {
        let (server, _events) = echo_server(|b| b.handshake_timeout(Duration::from_millis(200)));
        let (_silent_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let result = server
            .serve_connection(server_io)
            .map(|r| r.unwrap_err())
            .await;
        assert!(result.is_timeout(), "{result}");
    });
}
