//! [`NodeBuilder`]: a node's identity, transport (TCP on `async-io`, or
//! in memory), noise, yamux, and the behaviour (libp2p-stream and the peer
//! store).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::FutureExt as _;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, MemoryTransport};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::peer_store::memory_store::MemoryStore;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{noise, PeerId, Swarm};

use super::driver::Driver;
use super::{Inner, Node, NodeError, DEFAULT_IDLE_TIMEOUT, UPGRADE_TIMEOUT};
use crate::libp2p::tcp::TcpTransport;
use crate::libp2p::yamux::Yamux;
use crate::rt::SharedRuntime;

/// The network behaviour of a [`Node`].
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(super) struct Behaviour {
    pub(super) stream: libp2p_stream::Behaviour,
    pub(super) peer_store: libp2p::peer_store::Behaviour<MemoryStore>,
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
            .finish()
    }
}

impl NodeBuilder {
    /// A builder with the defaults: a fresh ed25519 identity, the
    /// [default runtime](crate::rt::default_runtime), TCP, and a 60 second
    /// idle connection timeout.
    pub fn new() -> Self {
        NodeBuilder {
            keypair: None,
            runtime: None,
            transport: TransportKind::Tcp,
            idle_connection_timeout: DEFAULT_IDLE_TIMEOUT,
        }
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

        let transport = match self.transport {
            TransportKind::Tcp => upgrade(TcpTransport::new(), &keypair)?,
            TransportKind::Memory => upgrade(MemoryTransport::default(), &keypair)?,
        };
        let behaviour = Behaviour {
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
fn upgrade<T>(transport: T, keypair: &Keypair) -> Result<Boxed<(PeerId, StreamMuxerBox)>, NodeError>
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
        .multiplex(Yamux::default())
        .timeout(UPGRADE_TIMEOUT)
        .boxed())
}
