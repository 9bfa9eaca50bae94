//! [`Error`]: what goes wrong below the level of a call (connecting,
//! handshaking, serving a connection). Calls fail with a [`Status`](crate::Status).

use std::fmt;
use std::io;

/// A transport-level failure: the byte stream or the HTTP/2 connection.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Io(io::Error),
    Http2(h2::Error),
    #[cfg(feature = "tls")]
    Tls(crate::tls::TlsError),
    Timeout(&'static str),
    InvalidTarget(String),
    Shutdown,
    NoRuntime,
}

impl Error {
    pub(crate) fn timeout(what: &'static str) -> Self {
        Error {
            kind: ErrorKind::Timeout(what),
        }
    }

    pub(crate) fn invalid_target(why: String) -> Self {
        Error {
            kind: ErrorKind::InvalidTarget(why),
        }
    }

    pub(crate) fn shutdown() -> Self {
        Error {
            kind: ErrorKind::Shutdown,
        }
    }

    pub(crate) fn no_runtime() -> Self {
        Error {
            kind: ErrorKind::NoRuntime,
        }
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(err: crate::tls::TlsError) -> Self {
        Error {
            kind: ErrorKind::Tls(err),
        }
    }

    /// The TLS error, when loading TLS material or the TLS handshake failed
    /// (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn as_tls(&self) -> Option<&crate::tls::TlsError> {
        match &self.kind {
            ErrorKind::Tls(err) => Some(err),
            _ => None,
        }
    }

    /// This error as an `io::Error`: the IO error itself, or any other
    /// kind wrapped (for a [`Connector`](crate::client::Connector)).
    pub(crate) fn into_io_error(self) -> io::Error {
        match self.kind {
            ErrorKind::Io(err) => err,
            _ => io::Error::other(self),
        }
    }

    /// The IO error, when the byte stream failed.
    pub fn as_io(&self) -> Option<&io::Error> {
        match &self.kind {
            ErrorKind::Io(err) => Some(err),
            ErrorKind::Http2(err) => err.get_io(),
            _ => None,
        }
    }

    /// Whether the HTTP/2 connection failed (the peer broke the protocol,
    /// or the connection was reset or closed) rather than the byte stream.
    /// The h2 error is the [`source`](std::error::Error::source).
    pub fn is_http2(&self) -> bool {
        matches!(&self.kind, ErrorKind::Http2(err) if !err.is_io())
    }

    /// The HTTP/2 error code of a GOAWAY or RST_STREAM that ended the
    /// connection (RFC 9113 section 7: `0xb` is `ENHANCE_YOUR_CALM`).
    pub fn http2_code(&self) -> Option<u32> {
        match &self.kind {
            ErrorKind::Http2(err) => err.reason().map(u32::from),
            _ => None,
        }
    }

    /// Whether a channel target could not be parsed, or needs a feature
    /// that is off (`https://` without `tls`).
    pub fn is_invalid_target(&self) -> bool {
        matches!(self.kind, ErrorKind::InvalidTarget(_))
    }

    /// Whether the server was shut down while this connection was being
    /// set up.
    pub fn is_shutdown(&self) -> bool {
        matches!(self.kind, ErrorKind::Shutdown)
    }

    /// Whether a time limit (handshake, keepalive) ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout(_))
    }

    /// Whether no runtime was configured and no runtime feature is enabled.
    pub fn is_no_runtime(&self) -> bool {
        matches!(self.kind, ErrorKind::NoRuntime)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Io(err) => write!(f, "transport error: {err}"),
            ErrorKind::Http2(err) => write!(f, "HTTP/2 error: {err}"),
            #[cfg(feature = "tls")]
            ErrorKind::Tls(err) => write!(f, "TLS error: {err}"),
            ErrorKind::Timeout(what) => write!(f, "timed out: {what}"),
            ErrorKind::InvalidTarget(why) => f.write_str(why),
            ErrorKind::Shutdown => f.write_str("the server shut down"),
            ErrorKind::NoRuntime => f.write_str(
                "no runtime: pass one to the builder, or enable the smol or async-std feature, \
                 or (with the tokio feature) build inside a tokio runtime",
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(err) => Some(err),
            ErrorKind::Http2(err) => Some(err),
            #[cfg(feature = "tls")]
            ErrorKind::Tls(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error {
            kind: ErrorKind::Io(err),
        }
    }
}

impl Error {
    /// A failure of the HTTP/2 connection (crate-private, so that no h2
    /// type is part of the public API).
    pub(crate) fn http2(err: h2::Error) -> Self {
        Error {
            kind: ErrorKind::Http2(err),
        }
    }
}

impl From<Error> for crate::wire::status::Status {
    fn from(err: Error) -> Self {
        crate::wire::status::Status::unavailable(err.to_string()).with_source(err)
    }
}
