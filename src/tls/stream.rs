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
    /// certificates, if it presented any.
    pub(crate) async fn accept(
        &self,
        io: BoxIo,
    ) -> Result<(BoxIo, Option<PeerCertificates>), TlsError> {
        let stream = self
            .acceptor
            .accept(io)
            .await
            .map_err(TlsError::handshake)?;
        let (_, session) = stream.get_ref();
        check_alpn(session.alpn_protocol(), "the client")?;
        let certificates = session
            .peer_certificates()
            .map(|chain| PeerCertificates(chain.iter().map(Certificate::from_rustls).collect()));
        Ok((Box::new(stream), certificates))
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
