//! The network behaviour of a [`Node`](super::Node): connection limits,
//! libp2p-stream (open and accept raw streams per protocol) and the peer
//! store (so that a peer can be dialed by id once an address is known).

use libp2p::peer_store::memory_store::MemoryStore;
use libp2p::swarm::NetworkBehaviour;

/// The network behaviour of a [`Node`](super::Node).
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(super) struct Behaviour {
    pub(super) limits: libp2p::connection_limits::Behaviour,
    pub(super) stream: libp2p_stream::Behaviour,
    pub(super) peer_store: libp2p::peer_store::Behaviour<MemoryStore>,
}
