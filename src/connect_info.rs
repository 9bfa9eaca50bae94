//! What a server knows about the other end of a connection, attached to
//! every request's extensions: [`TcpConnectInfo`] over TCP and, over TLS,
//! the client's [`PeerCertificates`](crate::tls::PeerCertificates).

use std::net::SocketAddr;

/// The addresses of a TCP connection a server accepted, in the extensions
/// of every request on it
/// ([`Request::remote_addr`](crate::Request::remote_addr)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConnectInfo {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The server's address the client connected to, when known.
    pub local_addr: Option<SocketAddr>,
}
