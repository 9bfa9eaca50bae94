//! TLS and mutual TLS over TCP (feature `tls`), under whichever executor
//! the features chose: calls work, handlers see the client's address and
//! certificate, and every failure (untrusted CA, expired or misnamed
//! certificate, no ALPN `h2`, missing client certificate, a client that
//! never starts the handshake) is a clear error that hangs nothing and
//! leaves the server serving others.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::certs::{Pem, TestCa};
use common::{run, runtime};
use futures::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::rustls;
use p2p_grpc::client::Grpc;
use p2p_grpc::server::{CallFuture, ServerCall, Service};
use p2p_grpc::tls::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig, TlsErrorKind};
use p2p_grpc::{Channel, Code, Request, Response, Server, Status};
use rustls::pki_types::pem::PemObject;

/// `Who/Am`: answers with the DER of the client's leaf certificate (empty
/// without one) and its address in the `x-remote` header.
struct Who;

impl Service for Who {
    fn name(&self) -> &'static str {
        "test.Who"
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        match method {
            "Am" => call.unary(|request: Request<String>| async move {
                let leaf = request
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|cert| cert.as_der().to_vec())
                    .unwrap_or_default();
                let mut response = Response::new(leaf);
                let remote = request.remote_addr().map(|a| a.to_string());
                response
                    .metadata_mut()
                    .insert("x-remote", remote.as_deref().unwrap_or("none"))
                    .unwrap();
                Ok::<_, Status>(response)
            }),
            _ => call.unimplemented(),
        }
    }
}

const WHO: &str = "/test.Who/Am";

struct Pki {
    ca: TestCa,
    server: Pem,
}

fn pki() -> Pki {
    let ca = TestCa::new("p2p-grpc test CA");
    let server = ca.server(&["localhost", "127.0.0.1"]);
    Pki { ca, server }
}

fn ca_certs(ca: &TestCa) -> Vec<Certificate> {
    Certificate::from_pem(ca.cert_pem()).unwrap()
}

fn identity(pem: &Pem) -> Identity {
    Identity::from_pem(&pem.cert, &pem.key).unwrap()
}

/// A TLS server of the `Who` service on a fresh port.
fn tls_server(config: ServerTlsConfig) -> (Server, SocketAddr) {
    let server = Server::builder()
        .tls(config)
        .handshake_timeout(Duration::from_millis(500))
        .add_service(Who)
        .build()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    serve_on(&server, listener);
    (server, addr)
}

/// Serves `server` on `listener` in the background.
fn serve_on(server: &Server, listener: std::net::TcpListener) {
    let serving = server.clone();
    runtime().spawn(Box::pin(async move {
        let _ = serving.serve_listener(listener).await;
    }));
}

async fn connect(addr: SocketAddr, tls: ClientTlsConfig) -> Result<Channel, p2p_grpc::Error> {
    Channel::builder().tls(tls).connect_tcp(addr).await
}

async fn who(channel: &Channel) -> Result<(Vec<u8>, String), Status> {
    let response = Grpc::new(channel.clone())
        .unary::<_, Vec<u8>>(Request::new("who".to_string()), WHO)
        .await?;
    let remote = response.metadata().get("x-remote").unwrap().to_owned();
    Ok((response.into_inner(), remote))
}

fn trusting(ca: &TestCa) -> ClientTlsConfig {
    ClientTlsConfig::new().ca_certificates(ca_certs(ca))
}

/// The rustls error a failed connect carries.
fn rustls_error(err: &p2p_grpc::Error) -> rustls::Error {
    let tls = err
        .as_tls()
        .unwrap_or_else(|| panic!("not a TLS error: {err}"));
    assert_eq!(tls.kind(), TlsErrorKind::Handshake, "{err}");
    tls.rustls_error()
        .unwrap_or_else(|| panic!("no rustls error in {err}"))
        .clone()
}

#[test]
fn calls_run_over_tls_and_the_handler_sees_the_client_address() {
    run(async {
        let pki = pki();
        let (_server, addr) = tls_server(ServerTlsConfig::new(identity(&pki.server)));
        let channel = connect(addr, trusting(&pki.ca)).await.unwrap();
        let (leaf, remote) = who(&channel).await.unwrap();
        assert!(leaf.is_empty(), "no client certificate was presented");
        let remote: SocketAddr = remote.parse().unwrap();
        assert_eq!(remote.ip(), addr.ip());
        assert_ne!(remote.port(), addr.port());
        // Concurrent calls share the one TLS connection.
        let calls = (0..20).map(|_| who(&channel));
        for result in futures::future::join_all(calls).await {
            assert_eq!(result.unwrap().1, remote.to_string());
        }
    });
}

#[test]
fn the_server_name_override_is_checked_against_the_certificate() {
    run(async {
        let ca = TestCa::new("p2p-grpc test CA");
        let server = ca.server(&["*.test.google.fr"]);
        let (_server, addr) = tls_server(ServerTlsConfig::new(identity(&server)));
        // Dialed by IP, checked as the override name (and sent as SNI).
        let channel = connect(addr, trusting(&ca).server_name("foo.test.google.fr"))
            .await
            .unwrap();
        who(&channel).await.unwrap();
        // Without the override, the IP is not in the certificate.
        let err = connect(addr, trusting(&ca)).await.unwrap_err();
        assert!(
            matches!(
                rustls_error(&err),
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. }
                )
            ),
            "{err}"
        );
    });
}

#[test]
fn a_server_certificate_from_another_ca_fails_the_connect() {
    run(async {
        let pki = pki();
        let (_server, addr) = tls_server(ServerTlsConfig::new(identity(&pki.server)));
        let stranger = TestCa::new("some other CA");
        let err = connect(addr, trusting(&stranger)).await.unwrap_err();
        assert_eq!(
            rustls_error(&err),
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            "{err}"
        );
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
        // The Mozilla roots do not trust a test CA either.
        let err = connect(addr, ClientTlsConfig::new()).await.unwrap_err();
        assert!(err.as_tls().is_some(), "{err}");
        // The server goes on serving clients that trust it.
        let channel = connect(addr, trusting(&pki.ca)).await.unwrap();
        who(&channel).await.unwrap();
    });
}

#[test]
fn an_expired_server_certificate_fails_the_connect() {
    run(async {
        let ca = TestCa::new("p2p-grpc test CA");
        let expired = ca.expired_server(&["localhost", "127.0.0.1"]);
        let (_server, addr) = tls_server(ServerTlsConfig::new(identity(&expired)));
        let err = connect(addr, trusting(&ca)).await.unwrap_err();
        assert!(
            matches!(
                rustls_error(&err),
                rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
            ),
            "{err}"
        );
    });
}

#[test]
fn a_reconnecting_channel_runs_tls_again_and_reports_its_failure() {
    run(async {
        let pki = pki();
        let (server, addr) = tls_server(ServerTlsConfig::new(identity(&pki.server)));
        let channel = connect(addr, trusting(&pki.ca)).await.unwrap();
        who(&channel).await.unwrap();
        server.shutdown(Duration::ZERO).await;
        // On the same port now: a server the channel's CA did not sign.
        let impostor = TestCa::new("impostor CA").server(&["localhost", "127.0.0.1"]);
        let listener = loop {
            match std::net::TcpListener::bind(addr) {
                Ok(listener) => break listener,
                Err(_) => runtime().sleep(Duration::from_millis(5)).await,
            }
        };
        let impostor_server = Server::builder()
            .tls(ServerTlsConfig::new(identity(&impostor)))
            .add_service(Who)
            .build()
            .unwrap();
        serve_on(&impostor_server, listener);
        common::until(|| !channel.is_connected()).await;
        let status = who(&channel).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().contains("UnknownIssuer"), "{status:?}");
    });
}

#[test]
fn mutual_tls_hands_the_client_certificate_to_the_handler() {
    run(async {
        let pki = pki();
        let client = pki.ca.client("client-1");
        let config = ServerTlsConfig::new(identity(&pki.server))
            .require_client_certificates(ca_certs(&pki.ca));
        let (_server, addr) = tls_server(config);
        let channel = connect(addr, trusting(&pki.ca).identity(identity(&client)))
            .await
            .unwrap();
        let (leaf, _) = who(&channel).await.unwrap();
        let presented =
            rustls::pki_types::CertificateDer::from_pem_slice(client.cert.as_bytes()).unwrap();
        assert_eq!(leaf, presented.as_ref());
    });
}

/// TLS 1.3 clients finish their handshake before the server has checked
/// their certificate: the server's refusal arrives as an alert on the first
/// read, so it fails the first call (with the alert named), not the connect.
fn assert_refused_by_server(status: &Status, alert: &str) {
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(alert),
        "expected the alert {alert} in {status:?}"
    );
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() {
    run(async {
        let pki = pki();
        let config = ServerTlsConfig::new(identity(&pki.server))
            .require_client_certificates(ca_certs(&pki.ca));
        let (server, addr) = tls_server(config);
        let status = match connect(addr, trusting(&pki.ca)).await {
            Ok(channel) => who(&channel).await.unwrap_err(),
            Err(err) => Status::unavailable(err.to_string()),
        };
        assert_refused_by_server(&status, "CertificateRequired");
        // A certificate from another CA is refused too.
        let stranger = TestCa::new("some other CA").client("intruder");
        let status = match connect(addr, trusting(&pki.ca).identity(identity(&stranger))).await {
            Ok(channel) => who(&channel).await.unwrap_err(),
            Err(err) => Status::unavailable(err.to_string()),
        };
        assert_refused_by_server(&status, "UnknownCA");
        common::until(|| server.connection_count() == 0).await;
    });
}

#[test]
fn the_authorisation_hook_sees_the_address_and_the_certificate() {
    run(async {
        let pki = pki();
        let allowed = pki.ca.client("allowed");
        let allowed_der =
            rustls::pki_types::CertificateDer::from_pem_slice(allowed.cert.as_bytes())
                .unwrap()
                .to_vec();
        let server = Server::builder()
            .tls(
                ServerTlsConfig::new(identity(&pki.server))
                    .require_client_certificates(ca_certs(&pki.ca)),
            )
            .authorize(move |call| {
                assert!(call.remote_addr().is_some_and(|a| a.ip().is_loopback()));
                match call.peer_certificates().and_then(|chain| chain.first()) {
                    Some(leaf) if leaf.as_der() == allowed_der.as_slice() => Ok(()),
                    _ => Err(Status::permission_denied("not on the list")),
                }
            })
            .add_service(Who)
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        serve_on(&server, listener);
        let channel = connect(addr, trusting(&pki.ca).identity(identity(&allowed)))
            .await
            .unwrap();
        who(&channel).await.unwrap();
        // Same CA, another certificate: served TLS, refused by the hook.
        let other = pki.ca.client("other");
        let channel = connect(addr, trusting(&pki.ca).identity(identity(&other)))
            .await
            .unwrap();
        let status = who(&channel).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    });
}

#[test]
fn optional_client_certificates_accept_clients_with_and_without() {
    run(async {
        let pki = pki();
        let config = ServerTlsConfig::new(identity(&pki.server))
            .accept_client_certificates(ca_certs(&pki.ca));
        let (_server, addr) = tls_server(config);
        let anonymous = connect(addr, trusting(&pki.ca)).await.unwrap();
        assert!(who(&anonymous).await.unwrap().0.is_empty());
        let client = pki.ca.client("client-2");
        let known = connect(addr, trusting(&pki.ca).identity(identity(&client)))
            .await
            .unwrap();
        assert!(!who(&known).await.unwrap().0.is_empty());
    });
}

/// A rustls client config trusting `ca`, with the given ALPN list.
fn raw_client(ca: &TestCa, alpn: &[&[u8]]) -> futures_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.cert_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    futures_rustls::TlsConnector::from(Arc::new(config))
}

#[test]
fn the_server_drops_a_client_that_does_not_offer_h2() {
    run(async {
        let pki = pki();
        let (server, addr) = tls_server(ServerTlsConfig::new(identity(&pki.server)));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        // No ALPN at all: the handshake completes, then the server closes.
        let tcp = async_io::Async::<std::net::TcpStream>::connect(addr)
            .await
            .unwrap();
        let mut tls = raw_client(&pki.ca, &[])
            .connect(name.clone(), tcp)
            .await
            .unwrap();
        let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        let mut buf = [0u8; 64];
        let read = tls.read(&mut buf).await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the server answered {read:?}"
        );
        // Only `http/1.1` offered: rustls refuses the handshake itself.
        let tcp = async_io::Async::<std::net::TcpStream>::connect(addr)
            .await
            .unwrap();
        let err = raw_client(&pki.ca, &[b"http/1.1"])
            .connect(name, tcp)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");
        common::until(|| server.connection_count() == 0).await;
        // And a gRPC client is still served.
        let channel = connect(addr, trusting(&pki.ca)).await.unwrap();
        who(&channel).await.unwrap();
    });
}

#[test]
fn the_client_refuses_a_server_that_does_not_agree_to_h2() {
    run(async {
        let pki = pki();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = rustls::pki_types::CertificateDer::pem_slice_iter(pki.server.cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.server.key.as_bytes()).unwrap();
        // A TLS server with no ALPN configured: it ignores the client's list.
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = futures_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = async_io::Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        runtime().spawn(Box::pin(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 64];
                    let _ = tls.read(&mut buf).await;
                }
            }
        }));
        let err = connect(addr, trusting(&pki.ca)).await.unwrap_err();
        let tls = err
            .as_tls()
            .unwrap_or_else(|| panic!("not a TLS error: {err}"));
        assert_eq!(tls.kind(), TlsErrorKind::NoAlpnH2, "{err}");
        assert!(err.to_string().contains("ALPN h2"), "{err}");
    });
}

#[test]
fn a_client_that_never_starts_the_handshake_is_dropped_at_the_timeout() {
    run(async {
        let pki = pki();
        let (server, addr) = tls_server(ServerTlsConfig::new(identity(&pki.server)));
        let mut silent = async_io::Async::<std::net::TcpStream>::connect(addr)
            .await
            .unwrap();
        common::until(|| server.connection_count() == 1).await;
        // The server closes it once the 500 ms handshake timeout passes.
        let mut buf = [0u8; 16];
        let read = silent.read(&mut buf).await;
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        common::until(|| server.connection_count() == 0).await;
    });
}

#[test]
fn bad_pem_is_a_clear_error() {
    let err = Certificate::from_pem("not a certificate").unwrap_err();
    assert_eq!(err.kind(), TlsErrorKind::Pem);
    assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
    let pki = pki();
    let err = Identity::from_pem(&pki.server.cert, "garbage").unwrap_err();
    assert_eq!(err.kind(), TlsErrorKind::Pem, "{err}");
    let err =
        Identity::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    // A key that is not the certificate's fails the server's build.
    let other = pki.ca.server(&["localhost"]);
    let mismatched = Identity::from_pem(&pki.server.cert, &other.key).unwrap();
    let err = Server::builder()
        .tls(ServerTlsConfig::new(mismatched))
        .build()
        .unwrap_err();
    assert_eq!(
        err.as_tls().map(|e| e.kind()),
        Some(TlsErrorKind::Config),
        "{err}"
    );
}
