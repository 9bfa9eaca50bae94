//! Shared by the interop tests: a runner on the p2p-grpc runtime chosen by
//! the features, our interop server on a fresh TCP port, and the expected
//! outcome of each case.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use p2p_grpc::rt::SharedRuntime;
use p2p_grpc::Channel;
use p2p_grpc_interop::client::{CaseError, CaseResult, InteropClient};

pub fn runtime() -> SharedRuntime {
    p2p_grpc::rt::default_runtime().expect("a p2p-grpc runtime feature is enabled")
}

/// Runs a test body on p2p-grpc's runtime, failing (not hanging) after 60 s.
pub fn run<T>(body: impl Future<Output = T>) -> T {
    p2p_grpc::rt::block_on(async {
        let limit = runtime().sleep(Duration::from_secs(60));
        match futures::future::select(std::pin::pin!(body), limit).await {
            futures::future::Either::Left((output, _)) => output,
            futures::future::Either::Right(_) => panic!("test timed out after 60 s"),
        }
    })
}

/// Starts our interop server on 127.0.0.1:0 (call inside [`run`]).
pub fn start_server() -> SocketAddr {
    let server = p2p_grpc_interop::server::build_server(None).expect("server builds");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    runtime().spawn(Box::pin(async move {
        let _ = server.serve_listener(listener).await;
    }));
    addr
}

/// Starts our interop server over TLS, with the shipped test certificate,
/// on 127.0.0.1:0 (call inside [`run`]).
pub fn start_tls_server() -> SocketAddr {
    use p2p_grpc_interop::cli::test_certs;
    let identity =
        p2p_grpc::tls::Identity::from_pem(test_certs::SERVER_CERT, test_certs::SERVER_KEY).unwrap();
    let server = p2p_grpc_interop::server::server_builder(None)
        .expect("server builder")
        .tls(p2p_grpc::tls::ServerTlsConfig::new(identity))
        .build()
        .expect("server builds");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    runtime().spawn(Box::pin(async move {
        let _ = server.serve_listener(listener).await;
    }));
    addr
}

/// Our interop client over TLS to `addr`, trusting the test CA and
/// checking gRPC's override name `foo.test.google.fr`.
pub async fn tls_client(addr: SocketAddr) -> InteropClient {
    let ca = p2p_grpc::tls::Certificate::from_pem(p2p_grpc_interop::cli::test_certs::CA).unwrap();
    let tls = p2p_grpc::tls::ClientTlsConfig::new()
        .ca_certificates(ca)
        .server_name("foo.test.google.fr");
    let channel = Channel::builder()
        .tls(tls)
        .connect_tcp(addr)
        .await
        .expect("connects over TLS");
    InteropClient::new(channel, runtime())
}

/// Our interop client, connected to `addr`.
pub async fn client(addr: SocketAddr) -> InteropClient {
    let channel = Channel::connect_tcp(addr).await.expect("connects");
    InteropClient::new(channel, runtime())
}

/// What a case is expected to end with.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// Every assertion holds.
    Pass,
    /// `CaseError::Unsupported` whose text contains this.
    Unsupported(&'static str),
    /// `CaseError::Failed` whose text contains this (a known limitation of
    /// the peer; the test notices when it goes away).
    Fails(&'static str),
}

/// Panics with the case name and the reason unless `result` is as expected.
pub fn check(peer: &str, case: &str, result: &CaseResult, expect: Expect) {
    let ok = match (result, expect) {
        (Ok(()), Expect::Pass) => true,
        (Err(CaseError::Unsupported(why)), Expect::Unsupported(part)) => why.contains(part),
        (Err(CaseError::Failed(why)), Expect::Fails(part)) => why.contains(part),
        _ => false,
    };
    assert!(
        ok,
        "{case} against {peer}: expected {expect:?}, got {}",
        match result {
            Ok(()) => "a pass".to_owned(),
            Err(err) => err.to_string(),
        }
    );
}
