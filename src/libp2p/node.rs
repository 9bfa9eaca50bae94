//! A ready-to-use libp2p node that runs on any [`Runtime`](crate::rt::Runtime).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{self, Either, FutureExt as _, Shared};
use futures::StreamExt as _;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, ListenerId, MemoryTransport};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::peer_store::memory_store::MemoryStore;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{noise, yamux, Multiaddr, PeerId, Stream, StreamProtocol, Swarm};

use super::tcp::TcpTransport;
use crate::rt::SharedRuntime;

/// How long [`Node::shutdown`] waits for connections to close gracefully
/// before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long the security and multiplexer handshakes of a new connection may
/// take.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(20);

/// The default for [`NodeBuilder::idle_connection_timeout`].
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// An error from [`NodeBuilder::build`] or a [`Node`] operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum NodeError {
    /// No runtime was given and no runtime feature provides a default one
    /// (under `tokio`: the builder was used outside a tokio runtime).
    NoRuntime,
    /// The transport could not be built (for example the noise
    /// configuration).
    Transport(String),
    /// Listening failed: unsupported address, address in use...
    Listen(String),
    /// Dialing failed: unsupported address, connection refused, wrong peer
    /// id, handshake failure...
    Dial(String),
    /// Opening a stream failed.
    OpenStream(libp2p_stream::OpenStreamError),
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
            NodeError::Listen(e) => write!(f, "listen failed: {e}"),
            NodeError::Dial(e) => write!(f, "dial failed: {e}"),
            NodeError::OpenStream(e) => e.fmt(f),
            NodeError::Closed => f.write_str("the libp2p node has shut down"),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NodeError::OpenStream(e) => Some(e),
            _ => None,
        }
    }
}

/// The network behaviour of a [`Node`].
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Behaviour {
    stream: libp2p_stream::Behaviour,
    peer_store: libp2p::peer_store::Behaviour<MemoryStore>,
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
        let driver = Driver {
            swarm,
            peer_id,
            listens: HashMap::new(),
            listeners: HashSet::new(),
            dials: HashMap::new(),
            disconnects: HashMap::new(),
        };
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
    let noise = noise::Config::new(keypair).map_err(|e| NodeError::Transport(e.to_string()))?;
    Ok(transport
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default())
        .timeout(UPGRADE_TIMEOUT)
        .boxed())
}

/// A running libp2p node: a cheap, cloneable handle to a swarm driven by a
/// task on the node's runtime.
///
/// Streams are opened and accepted through [`control`](Node::control)
/// ([`libp2p_stream::Control`]). The swarm task stops when
/// [`shutdown`](Node::shutdown) is called or when the last `Node` handle is
/// dropped (a [`Control`](libp2p_stream::Control) alone does not keep it
/// alive); its connections then close.
///
/// Remember that `libp2p-stream` drops inbound streams that arrive while
/// nobody is waiting on the corresponding
/// [`IncomingStreams`](libp2p_stream::IncomingStreams): take streams as soon
/// as they come and hand each to its own task.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    peer_id: PeerId,
    control: libp2p_stream::Control,
    commands: mpsc::UnboundedSender<Command>,
    /// Completes when the swarm task has finished.
    closed: Shared<future::BoxFuture<'static, ()>>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.inner.peer_id)
            .field("running", &!self.inner.commands.is_closed())
            .finish()
    }
}

enum Command {
    Listen {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<Multiaddr, NodeError>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, NodeError>>,
    },
    AddAddress {
        peer: PeerId,
        addr: Multiaddr,
    },
    Disconnect {
        peer: PeerId,
        reply: oneshot::Sender<()>,
    },
    Shutdown,
}

impl Node {
    /// A [`NodeBuilder`] with the defaults.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::new()
    }

    /// This node's identity.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// A handle to open streams to peers ([`Control::open_stream`]) and to
    /// accept inbound ones ([`Control::accept`]).
    ///
    /// `open_stream` to a peer this node is not connected to dials it, using
    /// the addresses taught with [`add_address`](Node::add_address) or
    /// learnt from earlier connections. After the node has shut down,
    /// `open_stream` on a `Control` may never complete: prefer
    /// [`Node::open_stream`] when that matters.
    ///
    /// [`Control::open_stream`]: libp2p_stream::Control::open_stream
    /// [`Control::accept`]: libp2p_stream::Control::accept
    pub fn control(&self) -> libp2p_stream::Control {
        self.inner.control.clone()
    }

    /// Opens a stream to `peer` for `protocol` like
    /// [`Control::open_stream`](libp2p_stream::Control::open_stream), but
    /// fails with [`NodeError::Closed`] if the node shuts down meanwhile.
    pub async fn open_stream(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<Stream, NodeError> {
        if self.inner.commands.is_closed() {
            return Err(NodeError::Closed);
        }
        let mut control = self.control();
        let open = std::pin::pin!(control.open_stream(peer, protocol));
        match future::select(open, self.inner.closed.clone()).await {
            Either::Left((result, _)) => result.map_err(NodeError::OpenStream),
            Either::Right(((), _)) => Err(NodeError::Closed),
        }
    }

    /// Starts listening on `addr` (`/ip4/127.0.0.1/tcp/0`, `/memory/0`...)
    /// and returns the first address the listener reports, with
    /// `/p2p/<this peer id>` appended, ready to be handed to
    /// [`dial`](Node::dial) on another node.
    ///
    /// For port 0 the address holds the port actually bound; for an
    /// unspecified IP it is the loopback address (see
    /// [`TcpTransport`](super::TcpTransport)).
    pub async fn listen_on(&self, addr: Multiaddr) -> Result<Multiaddr, NodeError> {
        self.request(|reply| Command::Listen { addr, reply })
            .await?
    }

    /// All addresses this node currently listens on, each with
    /// `/p2p/<this peer id>` appended.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.request(|reply| Command::ListenAddrs { reply })
            .await
            .unwrap_or_default()
    }

    /// Connects to `addr` and returns the peer's id once the connection is
    /// established (after the noise and yamux handshakes).
    ///
    /// If `addr` ends with `/p2p/<peer id>`, the peer must have that id, and
    /// the call returns at once if this node is already connected to it.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NodeError> {
        self.request(|reply| Command::Dial { addr, reply }).await?
    }

    /// Teaches the node an address of `peer`, so that opening a stream to
    /// `peer` dials it when there is no connection yet. The address is kept
    /// even if a dial to it fails.
    pub fn add_address(&self, peer: PeerId, addr: Multiaddr) {
        // If the node has shut down there is nothing to teach.
        let _ = self
            .inner
            .commands
            .unbounded_send(Command::AddAddress { peer, addr });
    }

    /// Closes every connection to `peer` (open streams are reset) and waits
    /// until they are closed. Returns at once if there is none.
    pub async fn disconnect(&self, peer: PeerId) {
        let _ = self
            .request(|reply| Command::Disconnect { peer, reply })
            .await;
    }

    /// Stops the node: listeners close, connections are closed (waiting up
    /// to 5 seconds for a graceful close), and the swarm task ends. Returns
    /// once it has. Every other handle then fails with
    /// [`NodeError::Closed`].
    pub async fn shutdown(&self) {
        let _ = self.inner.commands.unbounded_send(Command::Shutdown);
        self.inner.closed.clone().await;
    }

    /// Sends the command built by `make` and waits for its reply.
    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (reply, response) = oneshot::channel();
        self.inner
            .commands
            .unbounded_send(make(reply))
            .map_err(|_| NodeError::Closed)?;
        response.await.map_err(|_| NodeError::Closed)
    }
}

/// The state of the swarm task.
struct Driver {
    swarm: Swarm<Behaviour>,
    peer_id: PeerId,
    /// `listen_on` calls waiting for their first address.
    listens: HashMap<ListenerId, oneshot::Sender<Result<Multiaddr, NodeError>>>,
    /// Listeners opened through `listen_on` and not closed yet.
    listeners: HashSet<ListenerId>,
    /// `dial` calls waiting for their connection.
    dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NodeError>>>,
    /// `disconnect` calls waiting for the last connection to a peer to close.
    disconnects: HashMap<PeerId, Vec<oneshot::Sender<()>>>,
}

enum Next {
    Command(Option<Command>),
    Event(SwarmEvent<BehaviourEvent>),
}

impl Driver {
    async fn run(
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
                    Poll::Ready(Some(event)) => Poll::Ready(Next::Event(event)),
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
                Next::Command(Some(command)) => self.on_command(command),
                Next::Event(event) => self.on_event(event),
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

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Listen { addr, reply } => match self.swarm.listen_on(addr.clone()) {
                Ok(id) => {
                    tracing::debug!(%id, %addr, "listening");
                    self.listeners.insert(id);
                    self.listens.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(NodeError::Listen(format!("{addr}: {e}"))));
                }
            },
            Command::ListenAddrs { reply } => {
                let addrs = self
                    .swarm
                    .listeners()
                    .map(|a| a.clone().with(Protocol::P2p(self.peer_id)))
                    .collect();
                let _ = reply.send(addrs);
            }
            Command::Dial { addr, reply } => self.dial(addr, reply),
            Command::AddAddress { peer, addr } => {
                tracing::debug!(%peer, %addr, "address added");
                self.swarm
                    .behaviour_mut()
                    .peer_store
                    .store_mut()
                    .add_address(&peer, &addr);
            }
            Command::Disconnect { peer, reply } => {
                if self.swarm.disconnect_peer_id(peer).is_ok() {
                    self.disconnects.entry(peer).or_default().push(reply);
                } else {
                    let _ = reply.send(());
                }
            }
            Command::Shutdown => unreachable!("handled by the caller"),
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<PeerId, NodeError>>) {
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
                self.dials.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(NodeError::Dial(format!("{addr}: {e}"))));
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
                if let Some(reply) = self.listens.remove(&listener_id) {
                    let _ = reply.send(Ok(address.with(Protocol::P2p(self.peer_id))));
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
                if let Some(reply) = self.listens.remove(&listener_id) {
                    let error = match reason {
                        Ok(()) => "listener closed".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    let _ = reply.send(Err(NodeError::Listen(error)));
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                tracing::warn!(%listener_id, %error, "listener error");
                if let Some(reply) = self.listens.remove(&listener_id) {
                    let _ = reply.send(Err(NodeError::Listen(error.to_string())));
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
                if let Some(reply) = self.dials.remove(&connection_id) {
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
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Dial(error.to_string())));
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
                BehaviourEvent::Stream(()) => {}
                BehaviourEvent::PeerStore(event) => tracing::trace!(?event, "peer store"),
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

#[cfg(all(test, any(feature = "smol", feature = "async-std", feature = "tokio")))]
mod tests {
    use super::*;
    use futures::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use libp2p_stream::IncomingStreams;

    const PROTOCOL: StreamProtocol = StreamProtocol::new("/test/1");

    /// Runs `test` on the default runtime, failing after 30 seconds.
    fn run<F: std::future::Future<Output = ()>>(test: F) {
        crate::rt::block_on(async {
            let rt = crate::rt::default_runtime().expect("a runtime feature");
            futures::select! {
                () = test.fuse() => {},
                () = rt.sleep(Duration::from_secs(30)).fuse() => panic!("test timed out"),
            }
        })
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<Node>();
        assert_send_sync::<NodeBuilder>();
        assert_send_sync::<NodeError>();
    }

    /// Accepts one stream on `incoming`, echoes back what it reads until
    /// EOF, then closes its side.
    async fn echo_one(incoming: &mut IncomingStreams, expected_peer: PeerId) {
        let (peer, mut stream) = incoming.next().await.expect("an inbound stream");
        assert_eq!(peer, expected_peer);
        let mut data = Vec::new();
        stream.read_to_end(&mut data).await.unwrap();
        stream.write_all(&data).await.unwrap();
        stream.close().await.unwrap();
    }

    /// Opens a stream from `b` to `a_peer`, sends a message, half-closes and
    /// reads the echo.
    async fn ping(b: &Node, a_peer: PeerId, message: &[u8]) {
        let mut stream = b
            .control()
            .open_stream(a_peer, PROTOCOL)
            .await
            .expect("open_stream");
        stream.write_all(message).await.unwrap();
        stream.close().await.unwrap();
        let mut echo = Vec::new();
        stream.read_to_end(&mut echo).await.unwrap();
        assert_eq!(echo, message);
    }

    async fn two_nodes_echo(a: Node, b: Node, listen: &str) {
        let addr = a.listen_on(listen.parse().unwrap()).await.unwrap();
        assert_eq!(addr.iter().last(), Some(Protocol::P2p(a.peer_id())));
        assert!(a.listen_addrs().await.contains(&addr));

        let mut incoming = a.control().accept(PROTOCOL).unwrap();
        let a_peer = b.dial(addr.clone()).await.unwrap();
        assert_eq!(a_peer, a.peer_id());
        // Dialing a connected peer by a /p2p address returns at once.
        assert_eq!(b.dial(addr).await.unwrap(), a_peer);

        let b_peer = b.peer_id();
        let message: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        future::join(echo_one(&mut incoming, b_peer), ping(&b, a_peer, &message)).await;
        // A second stream on the same connection.
        future::join(echo_one(&mut incoming, b_peer), ping(&b, a_peer, b"again")).await;

        a.shutdown().await;
        b.shutdown().await;
    }

    #[test]
    fn tcp_echo() {
        run(async {
            let a = Node::builder().build().unwrap();
            let b = Node::builder().build().unwrap();
            two_nodes_echo(a, b, "/ip4/127.0.0.1/tcp/0").await;
        });
    }

    #[test]
    fn memory_echo() {
        run(async {
            let a = Node::builder().memory_transport().build().unwrap();
            let b = Node::builder().memory_transport().build().unwrap();
            two_nodes_echo(a, b, "/memory/0").await;
        });
    }

    async fn dial_by_peer_id(a: Node, b: Node, listen: &str) {
        let addr = a.listen_on(listen.parse().unwrap()).await.unwrap();
        let mut incoming = a.control().accept(PROTOCOL).unwrap();
        // B only learns the address; open_stream has to dial.
        b.add_address(a.peer_id(), addr);
        future::join(
            echo_one(&mut incoming, b.peer_id()),
            ping(&b, a.peer_id(), b"by peer id"),
        )
        .await;
        a.shutdown().await;
        b.shutdown().await;
    }

    #[test]
    fn tcp_dial_by_peer_id() {
        run(async {
            let a = Node::builder().build().unwrap();
            let b = Node::builder().build().unwrap();
            dial_by_peer_id(a, b, "/ip4/127.0.0.1/tcp/0").await;
        });
    }

    #[test]
    fn memory_dial_by_peer_id() {
        run(async {
            let a = Node::builder().memory_transport().build().unwrap();
            let b = Node::builder().memory_transport().build().unwrap();
            dial_by_peer_id(a, b, "/memory/0").await;
        });
    }

    #[test]
    fn errors() {
        run(async {
            let a = Node::builder().build().unwrap();
            // Not a TCP address.
            assert!(matches!(
                a.listen_on("/memory/0".parse().unwrap()).await,
                Err(NodeError::Listen(_))
            ));
            // Nobody listens there (port 1 is privileged and unused).
            assert!(matches!(
                a.dial("/ip4/127.0.0.1/tcp/1".parse().unwrap()).await,
                Err(NodeError::Dial(_))
            ));
            // Wrong peer id.
            let b = Node::builder().build().unwrap();
            let addr = b
                .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
                .await
                .unwrap();
            let mut wrong = addr.clone();
            wrong.pop();
            let wrong = wrong.with(Protocol::P2p(PeerId::random()));
            assert!(matches!(a.dial(wrong).await, Err(NodeError::Dial(_))));
            // Protocol nobody accepts.
            let b_peer = a.dial(addr).await.unwrap();
            assert!(matches!(
                a.open_stream(b_peer, StreamProtocol::new("/nobody/1"))
                    .await,
                Err(NodeError::OpenStream(
                    libp2p_stream::OpenStreamError::UnsupportedProtocol(_)
                ))
            ));
            // Unknown peer without address.
            assert!(a.open_stream(PeerId::random(), PROTOCOL).await.is_err());
            b.shutdown().await;
            a.shutdown().await;
        });
    }

    #[test]
    fn disconnect_and_shutdown() {
        run(async {
            let a = Node::builder().memory_transport().build().unwrap();
            let b = Node::builder().memory_transport().build().unwrap();
            let addr = a.listen_on("/memory/0".parse().unwrap()).await.unwrap();
            let mut incoming = a.control().accept(PROTOCOL).unwrap();
            let a_peer = b.dial(addr.clone()).await.unwrap();
            b.disconnect(a_peer).await;
            // Disconnecting an unconnected peer returns at once.
            b.disconnect(a_peer).await;
            // Reconnect, open a stream, then shut A down: B's stream ends.
            b.dial(addr).await.unwrap();
            let mut stream = b.open_stream(a_peer, PROTOCOL).await.unwrap();
            stream.write_all(b"x").await.unwrap();
            stream.flush().await.unwrap();
            let (_, mut inbound) = incoming.next().await.unwrap();
            let mut byte = [0u8];
            inbound.read_exact(&mut byte).await.unwrap();
            a.shutdown().await;
            let mut rest = Vec::new();
            // EOF or a reset, but not a hang.
            let _ = stream.read_to_end(&mut rest).await;
            assert!(rest.is_empty());
            // Every handle of A now reports `Closed`.
            let a2 = a.clone();
            assert!(matches!(
                a2.listen_on("/memory/0".parse().unwrap()).await,
                Err(NodeError::Closed)
            ));
            assert!(matches!(
                a2.open_stream(b.peer_id(), PROTOCOL).await,
                Err(NodeError::Closed)
            ));
            a2.shutdown().await;
            drop(b);
        });
    }

    #[test]
    fn dropping_all_handles_stops_the_node() {
        run(async {
            let a = Node::builder().memory_transport().build().unwrap();
            let closed = a.inner.closed.clone();
            let a2 = a.clone();
            drop(a);
            // One handle is left: the node keeps running.
            assert!(a2.listen_on("/memory/0".parse().unwrap()).await.is_ok());
            drop(a2);
            closed.await;
        });
    }
}
