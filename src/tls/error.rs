//! [`TlsError`]: what goes wrong loading TLS material or in a handshake.

use std::fmt;
use std::io;

/// A TLS failure: a certificate or key that cannot be loaded, a
/// configuration rustls refuses, or a handshake that failed.
///
/// The underlying rustls or IO error, when there is one, is the
/// [`source`](std::error::Error::source).
#[derive(Debug)]
pub struct TlsError {
    kind: TlsErrorKind,
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// What kind of TLS failure a [`TlsError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// A certificate, key or CA could not be read or parsed.
    Pem,
    /// rustls refused the configuration (a key that does not match the
    /// certificate, an empty CA list, ...).
    Config,
    /// The handshake failed: a certificate the other side does not trust,
    /// an expired one, a missing client certificate, a name mismatch, or
    /// the connection closed during the handshake.
    Handshake,
    /// The handshake completed without ALPN agreeing on `h2`: the peer does
    /// not speak HTTP/2 over TLS, which gRPC requires.
    NoAlpnH2,
}

impl TlsError {
    pub(crate) fn new(
        kind: TlsErrorKind,
        context: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        TlsError {
            kind,
            context: context.into(),
            source,
        }
    }

    pub(crate) fn pem(context: impl Into<String>, source: impl fmt::Display) -> Self {
        // pki-types' PEM error is not an `std::error::Error`: keep its text.
        TlsError::new(
            TlsErrorKind::Pem,
            format!("{}: {source}", context.into()),
            None,
        )
    }

    pub(crate) fn config(context: &str, source: futures_rustls::rustls::Error) -> Self {
        TlsError::new(TlsErrorKind::Config, context, Some(Box::new(source)))
    }

    pub(crate) fn handshake(err: io::Error) -> Self {
        TlsError::new(
            TlsErrorKind::Handshake,
            "TLS handshake failed",
            Some(Box::new(err)),
        )
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> TlsErrorKind {
        self.kind
    }

    /// The rustls error behind a handshake or configuration failure, when
    /// rustls raised one (for example
    /// `InvalidCertificate(CertificateError::Expired)`).
    pub fn rustls_error(&self) -> Option<&futures_rustls::rustls::Error> {
        let source = self.source.as_deref()?;
        if let Some(err) = source.downcast_ref::<futures_rustls::rustls::Error>() {
            return Some(err);
        }
        source
            .downcast_ref::<io::Error>()?
            .get_ref()?
            .downcast_ref::<futures_rustls::rustls::Error>()
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)?;
        match &self.source {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|err| err as &(dyn std::error::Error + 'static))
    }
}
