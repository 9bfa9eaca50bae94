//! [`NodeError`]: what building or using a [`Node`](super::Node) can fail
//! with, keeping the libp2p error that caused it.

use std::fmt;
use std::sync::Arc;

use libp2p::{Multiaddr, PeerId};

/// The libp2p error behind a [`NodeError`], shareable.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// An error from [`NodeBuilder::build`](super::NodeBuilder::build) or a
/// [`Node`](super::Node) operation. The libp2p error that caused it is its
/// [`source`](std::error::Error::source).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NodeError {
    /// No runtime was given and no runtime feature provides a default one
    /// (under `tokio`: the builder was used outside a tokio runtime).
    NoRuntime,
    /// The transport could not be built (for example the noise
    /// configuration).
    Transport(Cause),
    /// Listening on the address failed: unsupported address, address in
    /// use...
    Listen {
        /// The address given.
        addr: Multiaddr,
        /// Why (the listener's error, or [`ListenerClosed`]).
        cause: Cause,
    },
    /// Dialing the address failed: unsupported address, connection refused,
    /// wrong peer id, handshake failure...
    Dial {
        /// The address given.
        addr: Multiaddr,
        /// Why (libp2p's dial error).
        cause: Cause,
    },
    /// Opening a stream failed.
    OpenStream(Arc<libp2p_stream::OpenStreamError>),
    /// A DHT operation needs a peer to ask, and the routing table is empty
    /// (no [bootstrap peer](super::NodeBuilder::bootstrap_peer) was
    /// reached, no peer with the DHT has connected).
    NoKnownPeers,
    /// A DHT lookup ended without finding the peer.
    PeerNotFound(PeerId),
    /// A DHT query failed (it timed out, or too few peers answered).
    Dht(Cause),
    /// The node has shut down (or is shutting down).
    Closed,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::NoRuntime => {
                f.write_str("no runtime given and no default runtime available")
            }
            NodeError::Transport(e) => write!(f, "cannot build the transport: {e}"),
            NodeError::Listen { addr, cause } => write!(f, "listen on {addr} failed: {cause}"),
            NodeError::Dial { addr, cause } => write!(f, "dial {addr} failed: {cause}"),
            NodeError::OpenStream(e) => e.fmt(f),
            NodeError::NoKnownPeers => f.write_str("no peer of the DHT is known"),
            NodeError::PeerNotFound(peer) => write!(f, "the DHT does not know peer {peer}"),
            NodeError::Dht(e) => write!(f, "DHT query failed: {e}"),
            NodeError::Closed => f.write_str("the libp2p node has shut down"),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NodeError::Transport(cause)
            | NodeError::Listen { cause, .. }
            | NodeError::Dial { cause, .. }
            | NodeError::Dht(cause) => Some(&**cause),
            NodeError::OpenStream(e) => Some(&**e),
            _ => None,
        }
    }
}

/// Why a listen failed when its listener closed without an error, right
/// after it was opened.
#[derive(Debug)]
pub struct ListenerClosed;

impl fmt::Display for ListenerClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the listener closed")
    }
}

impl std::error::Error for ListenerClosed {}
