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
use libp2p::core::transport::{Boxed, MemoryTransport};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::peer_store::memory_store::MemoryStore;
use libp2p::{noise, PeerId, Swarm};

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
            .finish()
    }
}

impl NodeBuilder {
    /// A builder with the defaults: a fresh ed25519 identity, the
    /// [default runtime](crate::rt::default_runtime), TCP, a 60 second idle
    /// connection timeout, a 20 second handshake timeout, and the
    /// connection limits of [`default_connection_limits`].
    pub fn new() -> Self {
        NodeBuilder {
            keypair: None,
            runtime: None,
            transport: TransportKind::Tcp,
            idle_connection_timeout: DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: UPGRADE_TIMEOUT,
            limits: default_connection_limits(),
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
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

    /// How long a connection may take to finish its noise and yamux
    /// handshakes (default 20 s); a peer that stalls halfway is dropped then.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
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

    /// Uses [`TcpTransport`](super::TcpTransport) (the default).
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
        let transport = match self.transport {
            TransportKind::Tcp => upgrade(TcpTransport::new(), &keypair, muxer, timeout)?,
            TransportKind::Memory => upgrade(MemoryTransport::default(), &keypair, muxer, timeout)?,
        };
        let behaviour = Behaviour {
            limits: libp2p::connection_limits::Behaviour::new(self.limits),
            stream: libp2p_stream::Behaviour::new(),
            peer_store: libp2p::peer_store::Behaviour::new(MemoryStore::new(Default::default())),
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
