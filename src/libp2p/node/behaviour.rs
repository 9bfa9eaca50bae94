//! The network behaviour of a [`Node`](super::Node): connection limits (by
//! count and by the process's memory),
//! libp2p-stream (open and accept raw streams per protocol), the peer store
//! (so that a peer can be dialed by id once an address is known), identify
//! (what each connected peer listens on and serves), Kademlia (finding
//! peers and the providers of a protocol), and circuit relay v2 with DCUtR
//! (reaching peers behind a NAT through a relay, then directly).

use libp2p::peer_store::memory_store::MemoryStore;
use libp2p::swarm::NetworkBehaviour;

/// The network behaviour of a [`Node`](super::Node).
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(super) struct Behaviour {
    pub(super) limits: libp2p::connection_limits::Behaviour,
    pub(super) memory:
        libp2p::swarm::behaviour::toggle::Toggle<libp2p::memory_connection_limits::Behaviour>,
    pub(super) stream: libp2p_stream::Behaviour,
    pub(super) peer_store: libp2p::peer_store::Behaviour<MemoryStore>,
    pub(super) identify: libp2p::identify::Behaviour,
    pub(super) kad: libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>,
    pub(super) relay_client: libp2p::relay::client::Behaviour,
    /// Serving as a relay for others: off unless the builder asks.
    pub(super) relay: libp2p::swarm::behaviour::toggle::Toggle<libp2p::relay::Behaviour>,
    pub(super) dcutr: libp2p::dcutr::Behaviour,
}
