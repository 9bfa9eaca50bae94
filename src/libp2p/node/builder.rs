//! [`NodeBuilder`]: a node's identity, transport (TCP on `async-io`, or
//! in memory), noise, yamux, and the behaviour (libp2p-stream and the peer
//! store).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::FutureExt as _;
use libp2p::connection_limits::ConnectionLimits;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, MemoryTransport, Transport as _};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::peer_store::memory_store::MemoryStore;
use libp2p::{noise, Multiaddr, PeerId, Swarm};

use super::behaviour::Behaviour;
use super::driver::Driver;
use super::{Inner, Node, NodeError, DEFAULT_IDLE_TIMEOUT, UPGRADE_TIMEOUT};
use crate::libp2p::tcp::TcpTransport;
use crate::libp2p::yamux::Yamux;
use crate::rt::SharedRuntime;

/// Connections being set up (noise and yamux handshakes) from outside at
/// once, by default: a stalled handshake holds one until the handshake
/// timeout.
pub const DEFAULT_MAX_PENDING_INCOMING: u32 = 128;
/// Connections being set up to other peers at once, by default.
pub const DEFAULT_MAX_PENDING_OUTGOING: u32 = 128;
/// Established connections from other peers, by default.
pub const DEFAULT_MAX_ESTABLISHED_INCOMING: u32 = 1024;
/// Established connections to other peers, by default.
pub const DEFAULT_MAX_ESTABLISHED_OUTGOING: u32 = 1024;
/// Established connections with one peer, by default (both directions).
pub const DEFAULT_MAX_ESTABLISHED_PER_PEER: u32 = 4;
/// yamux streams open at once on one connection, by default (each carries
/// one HTTP/2 connection for `GrpcStream`).
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: usize = 256;

/// The share of the machine's physical memory past which a node refuses
/// new connections, by default (libp2p's `memory-connection-limits`): the
/// process's resident memory is checked, at most every 100 ms, whenever a
/// connection is being set up, in either direction.
pub const DEFAULT_MAX_MEMORY_FRACTION: f64 = 0.9;

/// Past how much resident memory a [`Node`] refuses new connections
/// ([`NodeBuilder::max_memory`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MemoryLimit {
    /// A number of bytes of the process's resident memory.
    Bytes(usize),
    /// A share (0 to 1) of the machine's physical memory.
    Fraction(f64),
    /// No limit.
    None,
}

/// The protocol version identify announces (the application's protocol
/// family, beside identify's own `/ipfs/id/1.0.0`).
const IDENTIFY_PROTOCOL_VERSION: &str = "/p2p-grpc/1.0.0";

/// The agent version identify announces.
const AGENT_VERSION: &str = concat!("p2p-grpc/", env!("CARGO_PKG_VERSION"));

/// The connection limits a [`NodeBuilder`] starts with (the `DEFAULT_MAX_*`
/// constants).
pub fn default_connection_limits() -> ConnectionLimits {
    ConnectionLimits::default()
        .with_max_pending_incoming(Some(DEFAULT_MAX_PENDING_INCOMING))
        .with_max_pending_outgoing(Some(DEFAULT_MAX_PENDING_OUTGOING))
        .with_max_established_incoming(Some(DEFAULT_MAX_ESTABLISHED_INCOMING))
        .with_max_established_outgoing(Some(DEFAULT_MAX_ESTABLISHED_OUTGOING))
        .with_max_established_per_peer(Some(DEFAULT_MAX_ESTABLISHED_PER_PEER))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TransportKind {
    Tcp,
    Memory,
}

/// Configures and starts a [`Node`].
pub struct NodeBuilder {
    keypair: Option<Keypair>,
    runtime: Option<SharedRuntime>,
    transport: TransportKind,
    idle_connection_timeout: Duration,
    handshake_timeout: Duration,
    limits: ConnectionLimits,
    max_streams_per_connection: usize,
    max_memory: MemoryLimit,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Serve as a circuit relay, with these limits (in a mutex only so
    /// that the builder is `Sync`: the config's rate limiters are not).
    relay_server: Option<std::sync::Mutex<libp2p::relay::Config>>,
    /// The first bootstrap address without a peer id, refused at `build`.
    invalid_bootstrap: Option<Multiaddr>,
    dht_server: bool,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeBuilder")
            .field(
                "peer_id",
                &self.keypair.as_ref().map(|k| k.public().to_peer_id()),
            )
            .field("runtime", &self.runtime)
            .field("transport", &self.transport)
            .field("idle_connection_timeout", &self.idle_connection_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("limits", &self.limits)
            .field(
                "max_streams_per_connection",
                &self.max_streams_per_connection,
            )
            .field("max_memory", &self.max_memory)
            .field("bootstrap", &self.bootstrap)
            .field("relay_server", &self.relay_server.is_some())
            .field("dht_server", &self.dht_server)
            .finish()
    }
}

impl NodeBuilder {
    /// A builder with the defaults: a fresh ed25519 identity, the
    /// [default runtime](crate::rt::default_runtime), TCP, a 60 second idle
    /// connection timeout, a 20 second handshake timeout, the connection
    /// limits of [`default_connection_limits`], and new connections refused
    /// past [`DEFAULT_MAX_MEMORY_FRACTION`] of the machine's memory.
    pub fn new() -> Self {
        NodeBuilder {
            keypair: None,
            runtime: None,
            transport: TransportKind::Tcp,
            idle_connection_timeout: DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: UPGRADE_TIMEOUT,
            limits: default_connection_limits(),
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
            max_memory: MemoryLimit::Fraction(DEFAULT_MAX_MEMORY_FRACTION),
            bootstrap: Vec::new(),
            relay_server: None,
            invalid_bootstrap: None,
            dht_server: true,
        }
    }

    /// How many connections the node sets up and keeps, in each direction
    /// and per peer (libp2p's `connection-limits` behaviour). Connections
    /// past a limit are refused during their setup and logged; the others
    /// are not affected. Default: [`default_connection_limits`].
    pub fn connection_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Most yamux streams open at once on one connection (default
    /// [`DEFAULT_MAX_STREAMS_PER_CONNECTION`]). rust-yamux closes a
    /// connection whose peer opens more.
    pub fn max_streams_per_connection(mut self, max: usize) -> Self {
        self.max_streams_per_connection = max.max(1);
        self
    }

    /// Past how much resident memory of the process the node refuses new
    /// connections, inbound and outbound (libp2p's
    /// `memory-connection-limits`; checked at most every 100 ms while
    /// connections are being set up). Established connections are kept: a
    /// node under memory pressure stops taking on more work instead of
    /// dropping what it serves. Default:
    /// [`MemoryLimit::Fraction`]`(`[`DEFAULT_MAX_MEMORY_FRACTION`]`)`.
    pub fn max_memory(mut self, limit: MemoryLimit) -> Self {
        self.max_memory = limit;
        self
    }

    /// How long a connection may take to finish its noise and yamux
    /// handshakes (default 20 s); a peer that stalls halfway is dropped then.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// A peer to join the DHT through: the node dials it when it starts,
    /// and Kademlia fills its routing table from it. `addr` must end with
    /// `/p2p/<peer id>` (as [`Node::listen_on`] gives it); others are an
    /// error at [`build`](Self::build). Call it once per bootstrap peer.
    pub fn bootstrap_peer(mut self, addr: Multiaddr) -> Self {
        match addr.iter().last() {
            Some(Protocol::P2p(peer)) => self.bootstrap.push((peer, addr)),
            _ => {
                self.invalid_bootstrap.get_or_insert(addr);
            }
        }
        self
    }

    /// Serves as a circuit relay v2 for other peers (default: off), within
    /// `config`'s limits: reservations, circuits, and per circuit a
    /// duration and a byte count (`libp2p::relay::Config::default()`: 2
    /// minutes and 128 KiB, enough to set up calls while DCUtR upgrades
    /// the peers to a direct connection, not to carry bulk traffic).
    ///
    /// libp2p's relay serves only once the node has a confirmed external
    /// address: give it one with [`Node::add_external_address`] (the
    /// address others reach it at).
    ///
    /// Every node is a relay client anyway: it can listen through a relay
    /// (`listen_on("<relay address>/p2p-circuit")`) and dial a peer behind
    /// one (`dial("<relay address>/p2p-circuit/p2p/<peer>")`), and DCUtR
    /// then tries a direct connection.
    pub fn relay_server(mut self, config: libp2p::relay::Config) -> Self {
        self.relay_server = Some(std::sync::Mutex::new(config));
        self
    }

    /// Whether the node answers other peers' DHT queries (Kademlia server
    /// mode, the default) or only asks its own (client mode, for a node
    /// others cannot reach, behind a NAT).
    pub fn dht_server(mut self, serve: bool) -> Self {
        self.dht_server = serve;
        self
    }

    /// Uses `keypair` as the node's identity (any key type libp2p supports
    /// with the enabled features).
    pub fn keypair(mut self, keypair: Keypair) -> Self {
        self.keypair = Some(keypair);
        self
    }

    /// Runs the swarm and its connections on `runtime`.
    pub fn runtime(mut self, runtime: SharedRuntime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Uses libp2p's in-process [`MemoryTransport`] (`/memory/<port>`
    /// addresses) instead of TCP: handy for tests.
    pub fn memory_transport(mut self) -> Self {
        self.transport = TransportKind::Memory;
        self
    }

    /// Uses [`TcpTransport`](crate::libp2p::TcpTransport) (the default).
    pub fn tcp_transport(mut self) -> Self {
        self.transport = TransportKind::Tcp;
        self
    }

    /// How long a connection with no open stream stays up (default 60 s).
    pub fn idle_connection_timeout(mut self, timeout: Duration) -> Self {
        self.idle_connection_timeout = timeout;
        self
    }

    /// Builds the swarm and spawns the task that drives it.
    ///
    /// Under the `tokio` feature without an explicit runtime, call this from
    /// within a tokio runtime.
    pub fn build(self) -> Result<Node, NodeError> {
        if let Some(addr) = self.invalid_bootstrap {
            let cause = std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a bootstrap address must end with /p2p/<peer id>",
            );
            return Err(NodeError::Dial {
                addr,
                cause: Arc::new(cause),
            });
        }
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => crate::rt::default_runtime().ok_or(NodeError::NoRuntime)?,
        };
        let keypair = self.keypair.unwrap_or_else(Keypair::generate_ed25519);
        let peer_id = keypair.public().to_peer_id();

        let mut yamux = libp2p::yamux::Config::default();
        yamux.set_max_num_streams(self.max_streams_per_connection);
        let muxer = Yamux::new(yamux);
        let timeout = self.handshake_timeout;
        // Relayed connections come first (a `/p2p-circuit` address), then
        // WebSocket over TCP (`/tcp/<port>/ws`), then plain TCP.
        let (relayed, relay_client) = libp2p::relay::client::new(peer_id);
        let transport = match self.transport {
            TransportKind::Tcp => {
                let websocket = libp2p::websocket::Config::new(TcpTransport::new());
                let direct = websocket.or_transport(TcpTransport::new());
                let transport = upgrade(relayed.or_transport(direct), &keypair, muxer, timeout)?;
                // QUIC (`/udp/<port>/quic-v1`) comes with its own encryption
                // and multiplexing.
                #[cfg(feature = "quic")]
                let transport = crate::libp2p::quic::or_transport(transport, &keypair);
                transport
            }
            TransportKind::Memory => upgrade(
                relayed.or_transport(MemoryTransport::default()),
                &keypair,
                muxer,
                timeout,
            )?,
        };
        let identify =
            libp2p::identify::Config::new(IDENTIFY_PROTOCOL_VERSION.into(), keypair.public())
                .with_agent_version(AGENT_VERSION.into());
        let mut kad = libp2p::kad::Behaviour::with_config(
            peer_id,
            libp2p::kad::store::MemoryStore::new(peer_id),
            libp2p::kad::Config::new(libp2p::kad::PROTOCOL_NAME),
        );
        // Without AutoNAT no address is ever confirmed external, so
        // Kademlia's automatic mode would stay a client for good.
        kad.set_mode(Some(if self.dht_server {
            libp2p::kad::Mode::Server
        } else {
            libp2p::kad::Mode::Client
        }));
        let mut peer_store =
            libp2p::peer_store::Behaviour::new(MemoryStore::new(Default::default()));
        for (peer, addr) in &self.bootstrap {
            let mut addr = addr.clone();
            addr.pop();
            kad.add_address(peer, addr.clone());
            peer_store.store_mut().add_address(peer, &addr);
        }
        let behaviour = Behaviour {
            limits: libp2p::connection_limits::Behaviour::new(self.limits),
            memory: match self.max_memory {
                MemoryLimit::Bytes(bytes) => Some(
                    libp2p::memory_connection_limits::Behaviour::with_max_bytes(bytes),
                ),
                MemoryLimit::Fraction(share) => Some(
                    libp2p::memory_connection_limits::Behaviour::with_max_percentage(
                        share.clamp(0.0, 1.0),
                    ),
                ),
                MemoryLimit::None => None,
            }
            .into(),
            stream: libp2p_stream::Behaviour::new(),
            peer_store,
            identify: libp2p::identify::Behaviour::new(identify),
            kad,
            relay_client,
            relay: self
                .relay_server
                .map(|config| {
                    let config = config
                        .into_inner()
                        .unwrap_or_else(|poison| poison.into_inner());
                    libp2p::relay::Behaviour::new(peer_id, config)
                })
                .into(),
            dcutr: libp2p::dcutr::Behaviour::new(peer_id),
        };
        let control = behaviour.stream.new_control();

        let executor = runtime.clone();
        let config = libp2p::swarm::Config::with_executor(move |task| executor.spawn(task))
            .with_idle_connection_timeout(self.idle_connection_timeout);
        let swarm = Swarm::new(transport, behaviour, peer_id, config);

        let (commands_tx, commands_rx) = mpsc::unbounded();
        let (closed_tx, closed_rx) = oneshot::channel::<()>();
        let driver = Driver::new(swarm, peer_id);
        runtime.spawn(Box::pin(driver.run(
            commands_rx,
            runtime.clone(),
            closed_tx,
        )));
        tracing::info!(%peer_id, "libp2p node started");
        for (_, addr) in self.bootstrap {
            // Nobody waits for the answer: a failed dial is logged, and
            // the DHT tries the peer again when it needs it.
            let (reply, _) = oneshot::channel();
            let _ = commands_tx.unbounded_send(super::Command::Request(super::Request::Dial {
                addr,
                reply,
            }));
        }

        Ok(Node {
            inner: Arc::new(Inner {
                peer_id,
                control,
                commands: commands_tx,
                closed: closed_rx.map(|_| ()).boxed().shared(),
            }),
        })
    }
}

/// Adds noise, yamux and a handshake timeout to `transport`.
fn upgrade<T>(
    transport: T,
    keypair: &Keypair,
    muxer: Yamux,
    timeout: Duration,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, NodeError>
where
    T: libp2p::core::Transport + Send + Unpin + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Send + Unpin + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    let noise = noise::Config::new(keypair).map_err(|e| NodeError::Transport(Arc::new(e)))?;
    Ok(transport
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(muxer)
        .timeout(timeout)
        .boxed())
}
