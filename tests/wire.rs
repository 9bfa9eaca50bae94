//! Wire details that grpc-go's and the C core's own tests look for, seen by
//! a raw h2 server: the `user-agent`, where `grpc-timeout` goes, and the
//! GOAWAY a client sends when it closes its connection.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::recording::{frames, Recording};
use common::*;
use futures::channel::oneshot;
use p2p_grpc::client::Grpc;
use p2p_grpc::{Channel, Request};
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// What the raw server saw of one connection.
struct Seen {
    /// The regular (non-pseudo) request headers of the first request, in
    /// wire order.
    headers: oneshot::Receiver<Vec<(String, String)>>,
    /// Every byte the client sent, once the connection ended.
    bytes: oneshot::Receiver<Vec<u8>>,
}

/// A channel to a raw h2 server that answers every call with an empty OK
/// response and records what it receives.
async fn recording_server() -> (Channel, Seen) {
    let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
    let read = Arc::new(Mutex::new(Vec::new()));
    let io = Recording::new(server_io, read.clone());
    let (headers_tx, headers) = oneshot::channel();
    let (bytes_tx, bytes) = oneshot::channel();
    runtime().spawn(Box::pin(async move {
        let mut connection = h2::server::handshake(io.compat()).await.unwrap();
        let mut headers_tx = Some(headers_tx);
        while let Some(Ok((request, mut respond))) = connection.accept().await {
            if let Some(tx) = headers_tx.take() {
                let names = request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                    .collect();
                let _ = tx.send(names);
            }
            let response = http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "0")
                .body(())
                .unwrap();
            let _ = respond.send_response(response, true);
        }
        let _ = bytes_tx.send(read.lock().unwrap().clone());
    }));
    (
        Channel::connect(client_io).await.unwrap(),
        Seen { headers, bytes },
    )
}

#[test]
fn user_agent_starts_with_grpc_and_names_the_version() {
    run(async {
        let (channel, seen) = recording_server().await;
        let _ = Grpc::new(channel)
            .unary::<_, Msg>(Request::new(Msg::text("x")), UNARY)
            .await;
        let headers = seen.headers.await.unwrap();
        let agent = headers
            .iter()
            .find(|(name, _)| name == "user-agent")
            .map(|(_, value)| value.as_str());
        let expected = format!("grpc-rust-p2p-grpc/{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(agent, Some(expected.as_str()));
        assert_eq!(p2p_grpc::client::USER_AGENT, expected);
    });
}

#[test]
fn a_user_agent_of_the_application_goes_in_front() {
    run(async {
        let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let (tx, rx) = oneshot::channel();
        runtime().spawn(Box::pin(async move {
            let mut connection = h2::server::handshake(server_io.compat()).await.unwrap();
            if let Some(Ok((request, _respond))) = connection.accept().await {
                let agent = request.headers()["user-agent"].to_str().unwrap().to_owned();
                let _ = tx.send(agent);
            }
        }));
        let channel = Channel::builder()
            .user_agent(http::HeaderValue::from_static("my-app/1.2"))
            .connect(client_io)
            .await
            .unwrap();
        let call = Grpc::new(channel);
        let calling = call.unary::<_, Msg>(Request::new(Msg::text("x")), UNARY);
        // The call fails once the raw server goes; what it saw is the point.
        let (_, agent) = futures::join!(calling, rx);
        let agent = agent.unwrap();
        assert_eq!(
            agent,
            format!(
                "my-app/1.2 grpc-rust-p2p-grpc/{}",
                env!("CARGO_PKG_VERSION")
            )
        );
    });
}

#[test]
fn grpc_timeout_comes_right_after_the_pseudo_headers() {
    run(async {
        let (channel, seen) = recording_server().await;
        let mut request = Request::new(Msg::text("x")).with_timeout(Duration::from_secs(30));
        request.metadata_mut().insert("x-custom", "1").unwrap();
        let _ = Grpc::new(channel).unary::<_, Msg>(request, UNARY).await;
        let headers = seen.headers.await.unwrap();
        assert_eq!(headers[0].0, "grpc-timeout", "{headers:?}");
        assert!(
            headers[0].1.ends_with('m') || headers[0].1.ends_with('u'),
            "{headers:?}"
        );
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "grpc-timeout",
                "content-type",
                "te",
                "user-agent",
                "x-custom"
            ]
        );
    });
}

#[test]
fn a_client_closing_its_connection_sends_goaway() {
    run(async {
        let (channel, seen) = recording_server().await;
        let grpc = Grpc::new(channel);
        let _ = grpc
            .unary::<_, Msg>(Request::new(Msg::text("x")), UNARY)
            .await;
        // The last handle on the connection goes away.
        drop(grpc);
        let bytes = seen.bytes.await.unwrap();
        let frames = frames(&bytes, true);
        const GOAWAY: u8 = 7;
        let (kind, payload) = frames.last().expect("frames").clone();
        assert_eq!(kind, GOAWAY, "the last frame is a GOAWAY: {frames:?}");
        let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
        assert_eq!(code, 0, "NO_ERROR");
    });
}
