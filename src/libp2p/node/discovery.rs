//! What identify and Kademlia tell a [`Node`](super::Node)'s driver, and
//! the DHT queries its handles wait on: finding a peer, bootstrapping,
//! providing a protocol and finding its providers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::channel::oneshot;
use libp2p::kad::{self, GetProvidersOk, QueryId, QueryResult, RecordKey};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};
use sha2::{Digest, Sha256};

use super::behaviour::Behaviour;
use super::NodeError;

/// The DHT key under which the providers of `protocol` are announced: the
/// sha2-256 multihash of the protocol name, as go-libp2p's and js-libp2p's
/// DHTs expect a provider key to be (a content id's multihash).
pub fn provider_key(protocol: &StreamProtocol) -> Vec<u8> {
    /// Multihash code of sha2-256, and its digest length.
    const SHA2_256: [u8; 2] = [0x12, 32];
    let digest = Sha256::digest(protocol.as_ref().as_bytes());
    let mut key = Vec::with_capacity(2 + digest.len());
    key.extend_from_slice(&SHA2_256);
    key.extend_from_slice(&digest);
    key
}

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// A DHT query a handle waits on.
enum Pending {
    FindPeer(PeerId, Reply<Vec<Multiaddr>>),
    Bootstrap(Reply<()>),
    Provide(Reply<()>),
    FindProviders(HashSet<PeerId>, Reply<HashSet<PeerId>>),
}

/// The driver's discovery state.
#[derive(Default)]
pub(super) struct Discovery {
    /// What identify said each connected peer serves.
    protocols: HashMap<PeerId, Vec<StreamProtocol>>,
    queries: HashMap<QueryId, Pending>,
}

impl Discovery {
    pub(super) fn find_peer(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        reply: Reply<Vec<Multiaddr>>,
    ) {
        if !has_peers(swarm) {
            let _ = reply.send(Err(NodeError::NoKnownPeers));
            return;
        }
        let id = swarm.behaviour_mut().kad.get_closest_peers(peer);
        self.queries.insert(id, Pending::FindPeer(peer, reply));
    }

    pub(super) fn bootstrap(&mut self, swarm: &mut Swarm<Behaviour>, reply: Reply<()>) {
        match swarm.behaviour_mut().kad.bootstrap() {
            Ok(id) => {
                self.queries.insert(id, Pending::Bootstrap(reply));
            }
            Err(kad::NoKnownPeers()) => {
                let _ = reply.send(Err(NodeError::NoKnownPeers));
            }
        }
    }

    pub(super) fn provide(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        protocol: &StreamProtocol,
        reply: Reply<()>,
    ) {
        let key = RecordKey::new(&provider_key(protocol));
        match swarm.behaviour_mut().kad.start_providing(key) {
            Ok(id) => {
                self.queries.insert(id, Pending::Provide(reply));
            }
            Err(err) => {
                let _ = reply.send(Err(NodeError::Dht(Arc::new(err))));
            }
        }
    }

    pub(super) fn find_providers(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        protocol: &StreamProtocol,
        reply: Reply<HashSet<PeerId>>,
    ) {
        let key = RecordKey::new(&provider_key(protocol));
        let id = swarm.behaviour_mut().kad.get_providers(key);
        self.queries
            .insert(id, Pending::FindProviders(HashSet::new(), reply));
    }

    pub(super) fn peers_supporting(&self, protocol: &StreamProtocol) -> Vec<PeerId> {
        self.protocols
            .iter()
            .filter(|(_, protocols)| protocols.contains(protocol))
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// The last connection to `peer` closed.
    pub(super) fn disconnected(&mut self, peer: &PeerId) {
        self.protocols.remove(peer);
    }

    /// A peer identified itself: its listen addresses go to the routing
    /// table (when it speaks Kademlia) and the peer store, its protocols
    /// are remembered while it stays connected.
    pub(super) fn on_identify(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        event: libp2p::identify::Event,
    ) {
        let libp2p::identify::Event::Received { peer_id, info, .. } = event else {
            tracing::trace!(?event, "identify");
            return;
        };
        tracing::debug!(
            peer = %peer_id, agent = %info.agent_version,
            protocols = info.protocols.len(), addrs = ?info.listen_addrs,
            "peer identified"
        );
        let speaks_kad = info.protocols.contains(&kad::PROTOCOL_NAME);
        let behaviour = swarm.behaviour_mut();
        for addr in &info.listen_addrs {
            if speaks_kad {
                behaviour.kad.add_address(&peer_id, addr.clone());
            }
            behaviour.peer_store.store_mut().add_address(&peer_id, addr);
        }
        self.protocols.insert(peer_id, info.protocols);
    }

    pub(super) fn on_kad(&mut self, swarm: &mut Swarm<Behaviour>, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            tracing::trace!(?event, "kademlia");
            return;
        };
        let Some(pending) = self.queries.remove(&id) else {
            return;
        };
        match (pending, result) {
            (Pending::FindPeer(peer, reply), QueryResult::GetClosestPeers(result)) => {
                let found = match result {
                    Ok(ok) => ok.peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                let mut addrs: Vec<Multiaddr> = found
                    .into_iter()
                    .filter(|info| info.peer_id == peer)
                    .flat_map(|info| info.addrs)
                    .collect();
                // The routing table may know it from the query's answers.
                if addrs.is_empty() {
                    if let Some(entry) = swarm.behaviour_mut().kad.kbucket(peer) {
                        if let Some(known) = entry
                            .iter()
                            .find(|entry| *entry.node.key.preimage() == peer)
                        {
                            addrs = known.node.value.iter().cloned().collect();
                        }
                    }
                }
                if addrs.is_empty() {
                    let _ = reply.send(Err(NodeError::PeerNotFound(peer)));
                    return;
                }
                let store = swarm.behaviour_mut().peer_store.store_mut();
                for addr in &addrs {
                    store.add_address(&peer, addr);
                }
                let _ = reply.send(Ok(addrs));
            }
            (Pending::Bootstrap(reply), QueryResult::Bootstrap(result)) => {
                if !step.last {
                    self.queries.insert(id, Pending::Bootstrap(reply));
                    return;
                }
                let _ = reply.send(result.map(|_| ()).map_err(|e| NodeError::Dht(Arc::new(e))));
            }
            (Pending::Provide(reply), QueryResult::StartProviding(result)) => {
                let _ = reply.send(result.map(|_| ()).map_err(|e| NodeError::Dht(Arc::new(e))));
            }
            (Pending::FindProviders(mut found, reply), QueryResult::GetProviders(result)) => {
                match result {
                    Ok(GetProvidersOk::FoundProviders { providers, .. }) => found.extend(providers),
                    Ok(GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => {}
                    Err(err) if found.is_empty() => {
                        let _ = reply.send(Err(NodeError::Dht(Arc::new(err))));
                        return;
                    }
                    Err(_) => {}
                }
                if step.last {
                    let _ = reply.send(Ok(found));
                } else {
                    self.queries
                        .insert(id, Pending::FindProviders(found, reply));
                }
            }
            (pending, result) => {
                tracing::debug!(?result, "unexpected result for a DHT query");
                self.queries.insert(id, pending);
            }
        }
    }
}

/// Whether the routing table holds any peer to ask.
fn has_peers(swarm: &mut Swarm<Behaviour>) -> bool {
    swarm
        .behaviour_mut()
        .kad
        .kbuckets()
        .any(|bucket| bucket.num_entries() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_keys_are_sha256_multihashes_of_the_protocol() {
        let key = provider_key(&StreamProtocol::new("/grpc/0.1.0"));
        assert_eq!(key.len(), 34);
        assert_eq!(&key[..2], &[0x12, 0x20]);
        assert_eq!(&key[2..], Sha256::digest(b"/grpc/0.1.0").as_slice());
        assert_ne!(key, provider_key(&StreamProtocol::new("/grpc/0.2.0")));
    }
}
