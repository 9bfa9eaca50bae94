//! The handshakes: a byte stream in, a TLS stream (just another
//! [`Io`](crate::io::Io)) out, with ALPN `h2` checked.

use std::sync::Arc;

use super::config::{ClientTlsConfig, ServerTlsConfig, ALPN_H2};
use super::error::{TlsError, TlsErrorKind};
use super::Certificate;
use crate::io::BoxIo;

/// The certificate chain a TLS peer presented (leaf first), as a server's
/// handlers see it in the request's extensions
/// ([`Request::peer_certificates`](crate::Request::peer_certificates)).
#[derive(Debug, Clone)]
pub struct PeerCertificates(Arc<[Certificate]>);

impl PeerCertificates {
    /// The chain, leaf first.
    pub fn chain(&self) -> &[Certificate] {
        &self.0
    }
}

/// The server side: accepts TLS on accepted byte streams.
#[derive(Clone)]
pub(crate) struct Acceptor {
    acceptor: futures_rustls::TlsAcceptor,
}

impl Acceptor {
    pub(crate) fn new(config: &ServerTlsConfig) -> Result<Self, TlsError> {
        Ok(Acceptor {
            acceptor: futures_rustls::TlsAcceptor::from(config.build()?),
        })
    }

    /// Runs the server handshake on `io`: the TLS stream and the client's
    /// certificates, if it presented any. A failed handshake gives the
    /// connection back with its error, to be closed with [`linger`].
    pub(crate) async fn accept(
        &self,
        io: BoxIo,
    ) -> Result<(BoxIo, Option<PeerCertificates>), (TlsError, Option<BoxIo>)> {
        let stream = match self.acceptor.accept(io).into_fallible().await {
            Ok(stream) => stream,
            Err((err, io)) => return Err((TlsError::handshake(err), Some(io))),
        };
        let (_, session) = stream.get_ref();
        if let Err(err) = check_alpn(session.alpn_protocol(), "the client") {
            return Err((err, None));
        }
        let certificates = session
            .peer_certificates()
            .map(|chain| PeerCertificates(chain.iter().map(Certificate::from_rustls).collect()));
        Ok((Box::new(stream), certificates))
    }
}

/// The most a refused client may still send while [`linger`] waits for it
/// to close.
const LINGER_BYTES: usize = 64 * 1024;

/// Closes a connection whose handshake failed so that the client learns
/// why. In TLS 1.3 a client finishes its side of the handshake before the
/// server has checked its certificate, and sends its HTTP/2 preface at
/// once. Dropping the socket with that preface unread makes the kernel
/// answer with a reset, which can reach the client before the alert rustls
/// queued, and the client then reports a broken pipe instead of
/// `CertificateRequired` or `UnknownCA`. So: send the alert, half-close,
/// and read what the client still sends (up to [`LINGER_BYTES`]) until it
/// closes. The caller bounds the time this takes.
pub(crate) async fn linger(mut io: BoxIo) {
    use futures::{AsyncReadExt, AsyncWriteExt};
    if io.close().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut left = LINGER_BYTES;
    while left > 0 {
        match io.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// The client side: runs TLS over freshly connected byte streams.
#[derive(Clone)]
pub(crate) struct Connector {
    connector: futures_rustls::TlsConnector,
    config: ClientTlsConfig,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(config: &ClientTlsConfig) -> Result<Self, TlsError> {
        Ok(Connector {
            connector: futures_rustls::TlsConnector::from(config.build()?),
            config: config.clone(),
        })
    }

    /// Runs the client handshake on `io`, checking the server's certificate
    /// against the configured name, else `host`.
    pub(crate) async fn connect(&self, host: &str, io: BoxIo) -> Result<BoxIo, TlsError> {
        let name = self.config.name_for(host)?;
        let stream = self
            .connector
            .connect(name, io)
            .await
            .map_err(TlsError::handshake)?;
        let (_, session) = stream.get_ref();
        check_alpn(session.alpn_protocol(), "the server")?;
        Ok(Box::new(stream))
    }
}

fn check_alpn(agreed: Option<&[u8]>, peer: &str) -> Result<(), TlsError> {
    match agreed {
        Some(ALPN_H2) => Ok(()),
        Some(other) => Err(TlsError::new(
            TlsErrorKind::NoAlpnH2,
            format!(
                "{peer} chose ALPN protocol {:?}; gRPC needs h2",
                String::from_utf8_lossy(other)
            ),
            None,
        )),
        None => Err(TlsError::new(
            TlsErrorKind::NoAlpnH2,
            format!("{peer} did not agree to ALPN h2, which gRPC over TLS requires"),
            None,
        )),
    }
}
