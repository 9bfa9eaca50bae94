//! TLS and mutual TLS over any byte stream, on `futures-rustls` with the
//! ring provider (feature `tls`): no tokio.
//!
//! A server presents an [`Identity`] ([`ServerTlsConfig`]) and may require
//! client certificates; a client trusts the Mozilla roots or the CAs it is
//! given, and may present an identity of its own ([`ClientTlsConfig`]).
//! Both insist on ALPN `h2`, as gRPC requires, and fail the connection with
//! a [`TlsError`] of kind [`NoAlpnH2`](TlsErrorKind::NoAlpnH2) otherwise.
//!
//! With a [`ServerBuilder::tls`](crate::server::ServerBuilder::tls) config,
//! [`Server::serve`](crate::Server::serve) and `serve_listener` run the
//! handshake on every accepted connection (under the handshake timeout),
//! and each handler sees the client's chain through
//! [`Request::peer_certificates`](crate::Request::peer_certificates). With
//! [`ChannelBuilder::tls`](crate::client::ChannelBuilder::tls), a channel
//! runs it on every connection it opens. A TLS stream of your own is just
//! another [`Io`](crate::io::Io): `serve_connection` and `Channel::connect`
//! take it as it is.

mod config;
mod error;
mod stream;

pub use self::config::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
pub use self::error::{TlsError, TlsErrorKind};
pub use self::stream::PeerCertificates;
pub(crate) use self::stream::{linger, Acceptor, Connector};
