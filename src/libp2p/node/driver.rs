//! The task that drives a [`Node`](super::Node)'s swarm: it answers the
//! handles' requests and follows the swarm's events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::task::Poll;

use futures::channel::{mpsc, oneshot};
use futures::future::{self, FutureExt as _};
use futures::StreamExt as _;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::discovery::Discovery;
use super::error::{Cause, ListenerClosed};
use super::{Command, NodeError, Request, SHUTDOWN_GRACE};
use crate::rt::SharedRuntime;

type ListenReply = oneshot::Sender<Result<Multiaddr, NodeError>>;
type DialReply = oneshot::Sender<Result<PeerId, NodeError>>;

/// The state of the swarm task.
pub(super) struct Driver {
    swarm: Swarm<Behaviour>,
    peer_id: PeerId,
    /// `listen_on` calls waiting for their first address.
    listens: HashMap<ListenerId, (Multiaddr, ListenReply)>,
    /// Listeners opened through `listen_on` and not closed yet.
    listeners: HashSet<ListenerId>,
    /// `dial` calls waiting for their connection.
    dials: HashMap<ConnectionId, (Multiaddr, DialReply)>,
    /// `disconnect` calls waiting for the last connection to a peer to close.
    disconnects: HashMap<PeerId, Vec<oneshot::Sender<()>>>,
    /// What identify and Kademlia found, and the DHT queries handles wait on.
    discovery: Discovery,
}

impl Driver {
    /// The driver of `swarm`, with nothing pending yet.
    pub(super) fn new(swarm: Swarm<Behaviour>, peer_id: PeerId) -> Self {
        Driver {
            swarm,
            peer_id,
            listens: HashMap::new(),
            listeners: HashSet::new(),
            dials: HashMap::new(),
            disconnects: HashMap::new(),
            discovery: Discovery::default(),
        }
    }
}

enum Next {
    Command(Option<Command>),
    /// Boxed: identify's events are large, and few.
    Event(Box<SwarmEvent<BehaviourEvent>>),
}

impl Driver {
    pub(super) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        runtime: SharedRuntime,
        closed: oneshot::Sender<()>,
    ) {
        loop {
            let next = future::poll_fn(|cx| {
                if let Poll::Ready(command) = commands.poll_next_unpin(cx) {
                    return Poll::Ready(Next::Command(command));
                }
                match self.swarm.poll_next_unpin(cx) {
                    Poll::Ready(Some(event)) => Poll::Ready(Next::Event(Box::new(event))),
                    // A swarm never ends; treat it like a shutdown anyway.
                    Poll::Ready(None) => Poll::Ready(Next::Command(None)),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match next {
                Next::Command(Some(Command::Shutdown)) => {
                    tracing::debug!(peer_id = %self.peer_id, "libp2p node shutting down");
                    break;
                }
                Next::Command(None) => {
                    tracing::debug!(peer_id = %self.peer_id, "all node handles dropped, shutting down");
                    break;
                }
                Next::Command(Some(Command::Request(request))) => self.on_request(request),
                Next::Event(event) => self.on_event(*event),
            }
        }
        // Later commands fail with `Closed`; pending replies are dropped
        // below, which their callers see as `Closed` too.
        commands.close();
        self.close(&runtime).await;
        tracing::info!(peer_id = %self.peer_id, "libp2p node stopped");
        drop(self);
        drop(closed);
    }

    fn on_request(&mut self, request: Request) {
        match request {
            Request::Listen { addr, reply } => match self.swarm.listen_on(addr.clone()) {
                Ok(id) => {
                    tracing::debug!(%id, %addr, "listening");
                    self.listeners.insert(id);
                    self.listens.insert(id, (addr, reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(NodeError::Listen {
                        addr,
                        cause: Arc::new(e),
                    }));
                }
            },
            Request::ListenAddrs { reply } => {
                let addrs = self
                    .swarm
                    .listeners()
                    .map(|a| with_peer_id(a.clone(), self.peer_id))
                    .collect();
                let _ = reply.send(addrs);
            }
            Request::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Request::Connections { reply } => {
                let info = self.swarm.network_info();
                let counters = info.connection_counters();
                let _ = reply.send(super::ConnectionCounts {
                    established_incoming: counters.num_established_incoming(),
                    established_outgoing: counters.num_established_outgoing(),
                    pending_incoming: counters.num_pending_incoming(),
                    pending_outgoing: counters.num_pending_outgoing(),
                });
            }
            Request::Dial { addr, reply } => self.dial(addr, reply),
            Request::AddAddress { peer, addr } => {
                tracing::debug!(%peer, %addr, "address added");
                self.swarm
                    .behaviour_mut()
                    .peer_store
                    .store_mut()
                    .add_address(&peer, &addr);
            }
            Request::Disconnect { peer, reply } => {
                if self.swarm.disconnect_peer_id(peer).is_ok() {
                    self.disconnects.entry(peer).or_default().push(reply);
                } else {
                    let _ = reply.send(());
                }
            }
            Request::AddExternalAddress { addr } => {
                tracing::debug!(%addr, "external address added");
                self.swarm.add_external_address(addr);
            }
            Request::FindPeer { peer, reply } => {
                self.discovery.find_peer(&mut self.swarm, peer, reply)
            }
            Request::Bootstrap { reply } => self.discovery.bootstrap(&mut self.swarm, reply),
            Request::Provide { protocol, reply } => {
                self.discovery.provide(&mut self.swarm, &protocol, reply)
            }
            Request::FindProviders { protocol, reply } => {
                self.discovery
                    .find_providers(&mut self.swarm, &protocol, reply)
            }
            Request::PeersSupporting { protocol, reply } => {
                let _ = reply.send(self.discovery.peers_supporting(&protocol));
            }
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: DialReply) {
        let opts = match addr.iter().last() {
            Some(Protocol::P2p(peer)) => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(peer));
                    return;
                }
                DialOpts::peer_id(peer)
                    .addresses(vec![addr.clone()])
                    .condition(PeerCondition::Always)
                    .build()
            }
            _ => DialOpts::unknown_peer_id().address(addr.clone()).build(),
        };
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                tracing::debug!(%addr, connection = %id, "dialing");
                self.dials.insert(id, (addr, reply));
            }
            Err(e) => {
                let _ = reply.send(Err(NodeError::Dial {
                    addr,
                    cause: Arc::new(e),
                }));
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%listener_id, %address, "new listen address");
                if let Some((_, reply)) = self.listens.remove(&listener_id) {
                    let _ = reply.send(Ok(with_peer_id(address, self.peer_id)));
                }
            }
            SwarmEvent::ExpiredListenAddr {
                listener_id,
                address,
            } => tracing::info!(%listener_id, %address, "listen address expired"),
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                tracing::info!(%listener_id, ?addresses, ?reason, "listener closed");
                self.listeners.remove(&listener_id);
                if let Some((addr, reply)) = self.listens.remove(&listener_id) {
                    let cause: Cause = match reason {
                        Ok(()) => Arc::new(ListenerClosed),
                        Err(e) => Arc::new(e),
                    };
                    let _ = reply.send(Err(NodeError::Listen { addr, cause }));
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                tracing::warn!(%listener_id, %error, "listener error");
                if let Some((addr, reply)) = self.listens.remove(&listener_id) {
                    let cause = Arc::new(error);
                    let _ = reply.send(Err(NodeError::Listen { addr, cause }));
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                tracing::debug!(
                    %peer_id, connection = %connection_id,
                    remote = %endpoint.get_remote_address(), %num_established,
                    "connection established"
                );
                if let Some((_, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(
                    %peer_id, connection = %connection_id, %num_established, ?cause,
                    "connection closed"
                );
                if num_established == 0 {
                    self.discovery.disconnected(&peer_id);
                    for reply in self.disconnects.remove(&peer_id).unwrap_or_default() {
                        let _ = reply.send(());
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(?peer_id, connection = %connection_id, %error, "dial failed");
                if let Some((addr, reply)) = self.dials.remove(&connection_id) {
                    let cause = Arc::new(error);
                    let _ = reply.send(Err(NodeError::Dial { addr, cause }));
                }
            }
            SwarmEvent::IncomingConnectionError {
                connection_id,
                send_back_addr,
                error,
                ..
            } => tracing::debug!(
                connection = %connection_id, %send_back_addr, %error,
                "incoming connection failed"
            ),
            SwarmEvent::Behaviour(event) => match event {
                BehaviourEvent::Limits(never) => match never {},
                BehaviourEvent::Stream(()) => {}
                BehaviourEvent::PeerStore(event) => tracing::trace!(?event, "peer store"),
                BehaviourEvent::Identify(event) => {
                    self.discovery.on_identify(&mut self.swarm, event)
                }
                BehaviourEvent::Kad(event) => self.discovery.on_kad(&mut self.swarm, event),
                BehaviourEvent::RelayClient(event) => tracing::debug!(?event, "relay client"),
                BehaviourEvent::Relay(event) => tracing::debug!(?event, "relay"),
                BehaviourEvent::Dcutr(event) => match event.result {
                    Ok(connection) => tracing::debug!(
                        peer = %event.remote_peer_id, %connection,
                        "direct connection upgraded from a relayed one"
                    ),
                    Err(err) => tracing::debug!(
                        peer = %event.remote_peer_id, %err, "hole punching failed"
                    ),
                },
            },
            other => tracing::trace!(event = ?other, "swarm event"),
        }
    }

    /// Closes listeners and connections, driving the swarm until every
    /// connection is closed or the grace period has passed.
    async fn close(&mut self, runtime: &SharedRuntime) {
        for id in self.listeners.drain() {
            self.swarm.remove_listener(id);
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let mut grace = runtime.sleep(SHUTDOWN_GRACE);
        while self.swarm.network_info().num_peers() > 0 {
            let next = future::poll_fn(|cx| {
                if grace.poll_unpin(cx).is_ready() {
                    return Poll::Ready(None);
                }
                self.swarm.poll_next_unpin(cx)
            })
            .await;
            match next {
                Some(event) => self.on_event(event),
                None => {
                    tracing::debug!("grace period over, dropping remaining connections");
                    break;
                }
            }
        }
    }
}

/// `addr` ending with `/p2p/<peer>`: a relayed listen address already does.
fn with_peer_id(addr: Multiaddr, peer: PeerId) -> Multiaddr {
    match addr.iter().last() {
        Some(Protocol::P2p(id)) if id == peer => addr,
        _ => addr.with(Protocol::P2p(peer)),
    }
}
