//! [`GrpcStreamError`]: what a [`GrpcStream`](super::GrpcStream) operation can fail with.

use std::fmt;

use libp2p::{PeerId, StreamProtocol};

use crate::error::Error;

/// An error of a [`GrpcStream`](super::GrpcStream) operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum GrpcStreamError {
    /// [`build`](super::GrpcStreamBuilder::build): the protocol already has an
    /// acceptor on this [`Control`](libp2p_stream::Control) (another `GrpcStream`, or a
    /// [`Control::accept`](libp2p_stream::Control::accept) whose `IncomingStreams` is still alive).
    AlreadyRegistered(StreamProtocol),
    /// [`build`](super::GrpcStreamBuilder::build): the server could not be built
    /// (no runtime given and no runtime feature enabled).
    Build(Error),
    /// [`serve`](super::GrpcStream::serve) was already called: inbound streams go
    /// to its loop, not to [`accept`](super::GrpcStream::accept).
    Serving,
    /// [`shutdown`](super::GrpcStream::shutdown) was called: no stream is accepted
    /// any more.
    ShutDown,
    /// [`handle`](super::GrpcStream::handle): the peer already has `limit`
    /// connections (streams) being served; the stream was closed.
    TooManyConnections {
        /// The remote peer.
        peer: PeerId,
        /// The configured limit.
        limit: usize,
    },
    /// [`handle`](super::GrpcStream::handle): the HTTP/2 connection failed (not an
    /// HTTP/2 client, handshake timeout, protocol error...).
    Connection(Error),
    /// [`providers_client`](super::GrpcStream::providers_client): the DHT
    /// lookup of the protocol's providers failed.
    Discovery(crate::libp2p::NodeError),
    /// [`providers_client`](super::GrpcStream::providers_client): the DHT
    /// knows no other peer serving the protocol.
    NoProviders(StreamProtocol),
}

impl fmt::Display for GrpcStreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrpcStreamError::AlreadyRegistered(protocol) => {
                write!(f, "protocol {protocol} is already accepted on this control")
            }
            GrpcStreamError::Build(err) => write!(f, "cannot build the gRPC server: {err}"),
            GrpcStreamError::Serving => f.write_str("the GrpcStream is already serving"),
            GrpcStreamError::ShutDown => f.write_str("the GrpcStream has shut down"),
            GrpcStreamError::TooManyConnections { peer, limit } => {
                write!(f, "peer {peer} already has {limit} connections")
            }
            GrpcStreamError::Connection(err) => err.fmt(f),
            GrpcStreamError::Discovery(err) => write!(f, "finding the providers failed: {err}"),
            GrpcStreamError::NoProviders(protocol) => {
                write!(f, "no other peer provides {protocol} in the DHT")
            }
        }
    }
}

impl std::error::Error for GrpcStreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GrpcStreamError::Build(err) | GrpcStreamError::Connection(err) => Some(err),
            GrpcStreamError::Discovery(err) => Some(err),
            _ => None,
        }
    }
}
