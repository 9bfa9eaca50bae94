//! [`Node`]: a ready-to-use libp2p node that runs on any
//! [`Runtime`](crate::rt::Runtime).
//!
//! - `builder.rs`: [`NodeBuilder`], the transports and the behaviour;
//! - `driver.rs`: the task that drives the swarm;
//! - `discovery.rs`: what identify and Kademlia tell the driver;
//! - `error.rs`: [`NodeError`].

mod behaviour;
mod builder;
mod discovery;
mod driver;
mod error;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{self, Either, Shared};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};

pub use self::builder::{
    default_connection_limits, MemoryLimit, NodeBuilder, DEFAULT_MAX_ESTABLISHED_INCOMING,
    DEFAULT_MAX_ESTABLISHED_OUTGOING, DEFAULT_MAX_ESTABLISHED_PER_PEER,
    DEFAULT_MAX_MEMORY_FRACTION, DEFAULT_MAX_PENDING_INCOMING, DEFAULT_MAX_PENDING_OUTGOING,
    DEFAULT_MAX_STREAMS_PER_CONNECTION,
};
pub use self::discovery::provider_key;
pub use self::error::{Cause, ListenerClosed, NodeError};

/// How long [`Node::shutdown`] waits for connections to close gracefully
/// before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long the security and multiplexer handshakes of a new connection may
/// take.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(20);

/// The default for [`NodeBuilder::idle_connection_timeout`].
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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

/// What a handle sends the driver task.
enum Command {
    /// Stop the node.
    Shutdown,
    /// Do something and (mostly) answer.
    Request(Request),
}

/// The operations of a [`Node`] handle that the swarm task carries out.
enum Request {
    Listen {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<Multiaddr, NodeError>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Connections {
        reply: oneshot::Sender<ConnectionCounts>,
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
    AddExternalAddress {
        addr: Multiaddr,
    },
    FindPeer {
        peer: PeerId,
        reply: oneshot::Sender<Result<Vec<Multiaddr>, NodeError>>,
    },
    Bootstrap {
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    Provide {
        protocol: StreamProtocol,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    FindProviders {
        protocol: StreamProtocol,
        reply: oneshot::Sender<Result<HashSet<PeerId>, NodeError>>,
    },
    PeersSupporting {
        protocol: StreamProtocol,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
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
            Either::Left((result, _)) => result.map_err(|err| NodeError::OpenStream(Arc::new(err))),
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
        self.request(|reply| Request::Listen { addr, reply })
            .await?
    }

    /// All addresses this node currently listens on, each with
    /// `/p2p/<this peer id>` appended.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.request(|reply| Request::ListenAddrs { reply })
            .await
            .unwrap_or_default()
    }

    /// The peers this node has at least one established connection to.
    pub async fn connected_peers(&self) -> Vec<PeerId> {
        self.request(|reply| Request::ConnectedPeers { reply })
            .await
            .unwrap_or_default()
    }

    /// How many connections the node has, established and being set up, in
    /// each direction (what the [connection
    /// limits](NodeBuilder::connection_limits) count).
    pub async fn connection_counts(&self) -> ConnectionCounts {
        self.request(|reply| Request::Connections { reply })
            .await
            .unwrap_or_default()
    }

    /// Connects to `addr` and returns the peer's id once the connection is
    /// established (after the noise and yamux handshakes).
    ///
    /// If `addr` ends with `/p2p/<peer id>`, the peer must have that id, and
    /// the call returns at once if this node is already connected to it.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NodeError> {
        self.request(|reply| Request::Dial { addr, reply }).await?
    }

    /// Teaches the node an address of `peer`, so that opening a stream to
    /// `peer` dials it when there is no connection yet. The address is kept
    /// even if a dial to it fails. It may end with `/p2p/<peer>` (as
    /// [`listen_on`](Self::listen_on) gives it); one ending with another
    /// peer's id is ignored, with a warning.
    pub fn add_address(&self, peer: PeerId, mut addr: Multiaddr) {
        // An address as `listen_on` and `listen_addrs` give it ends with the
        // peer's id; the swarm adds that itself when it dials.
        if let Some(Protocol::P2p(id)) = addr.iter().last() {
            if id != peer {
                tracing::warn!(%peer, %addr, "address of another peer not added");
                return;
            }
            addr.pop();
        }
        // If the node has shut down there is nothing to teach.
        let _ = self
            .inner
            .commands
            .unbounded_send(Command::Request(Request::AddAddress { peer, addr }));
    }

    /// Tells the node an address others reach it at (its public address,
    /// behind a port forward say), without `/p2p/`. libp2p announces only
    /// such confirmed addresses: a [relay server](NodeBuilder::relay_server)
    /// serves only once it has one, and provider records
    /// ([`provide`](Self::provide)) carry them.
    pub fn add_external_address(&self, mut addr: Multiaddr) {
        if let Some(Protocol::P2p(_)) = addr.iter().last() {
            addr.pop();
        }
        let _ = self
            .inner
            .commands
            .unbounded_send(Command::Request(Request::AddExternalAddress { addr }));
    }

    /// Closes every connection to `peer` (open streams are reset) and waits
    /// until they are closed. Returns at once if there is none.
    pub async fn disconnect(&self, peer: PeerId) {
        let _ = self
            .request(|reply| Request::Disconnect { peer, reply })
            .await;
    }

    /// Looks `peer` up in the DHT (Kademlia) and teaches the node the
    /// addresses found, so that opening a stream to it dials it. Returns
    /// those addresses; [`NodeError::PeerNotFound`] when the lookup ended
    /// without reaching it, [`NodeError::NoKnownPeers`] with an empty
    /// routing table.
    pub async fn find_peer(&self, peer: PeerId) -> Result<Vec<Multiaddr>, NodeError> {
        self.request(|reply| Request::FindPeer { peer, reply })
            .await?
    }

    /// Fills the routing table: looks this node itself up in the DHT, from
    /// the peers it knows (the [bootstrap peers](NodeBuilder::bootstrap_peer)
    /// and those that connected). Kademlia also does this by itself when
    /// new peers arrive and every 5 minutes.
    pub async fn bootstrap(&self) -> Result<(), NodeError> {
        self.request(|reply| Request::Bootstrap { reply }).await?
    }

    /// Announces in the DHT that this node serves `protocol` (a provider
    /// record under [`provider_key`]`(protocol)`), and keeps announcing it
    /// (Kademlia republishes provider records). Returns once the record is
    /// stored on the closest peers; an error says it could not be
    /// (no peer known, too few answered), though the node still answers
    /// for it itself.
    pub async fn provide(&self, protocol: StreamProtocol) -> Result<(), NodeError> {
        self.request(|reply| Request::Provide { protocol, reply })
            .await?
    }

    /// The peers the DHT says serve `protocol` (their provider records, this
    /// node included if it provides it). To reach one whose address the
    /// node does not know, [`find_peer`](Self::find_peer) it first (a
    /// [`GrpcStream`](crate::libp2p::GrpcStream) with
    /// [`discovery`](crate::libp2p::GrpcStreamBuilder::discovery) does so
    /// by itself).
    pub async fn find_providers(
        &self,
        protocol: StreamProtocol,
    ) -> Result<HashSet<PeerId>, NodeError> {
        self.request(|reply| Request::FindProviders { protocol, reply })
            .await?
    }

    /// The connected peers whose identify information lists `protocol`
    /// among the protocols they serve.
    pub async fn peers_supporting(&self, protocol: StreamProtocol) -> Vec<PeerId> {
        self.request(|reply| Request::PeersSupporting { protocol, reply })
            .await
            .unwrap_or_default()
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
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, NodeError> {
        let (reply, response) = oneshot::channel();
        self.inner
            .commands
            .unbounded_send(Command::Request(make(reply)))
            .map_err(|_| NodeError::Closed)?;
        response.await.map_err(|_| NodeError::Closed)
    }
}

#[cfg(all(test, any(feature = "smol", feature = "async-std", feature = "tokio")))]
mod tests {
    use super::*;
    use futures::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use futures::{FutureExt as _, StreamExt as _};
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
        // B only learns the address (as `listen_on` gave it, with the
        // peer id); open_stream has to dial.
        assert!(matches!(addr.iter().last(), Some(Protocol::P2p(_))));
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
            // Not a TCP address: the transport's own error is the source.
            let memory: Multiaddr = "/memory/0".parse().unwrap();
            match a.listen_on(memory.clone()).await {
                Err(err @ NodeError::Listen { .. }) => {
                    let NodeError::Listen { addr, cause } = &err else {
                        unreachable!()
                    };
                    assert_eq!(addr, &memory);
                    assert!(cause.to_string().contains("not supported"), "{cause}");
                    let source = std::error::Error::source(&err).expect("a source");
                    assert_eq!(source.to_string(), cause.to_string());
                }
                other => panic!("{other:?}"),
            }
            // Nobody listens there (port 1 is privileged and unused): the
            // dial error keeps libp2p's, down to the refused connection.
            let refused: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
            match a.dial(refused.clone()).await {
                Err(NodeError::Dial { addr, cause }) => {
                    assert_eq!(addr, refused);
                    let mut chain = Vec::new();
                    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&*cause);
                    while let Some(err) = next {
                        chain.push(err.to_string());
                        next = err.source();
                    }
                    assert!(
                        chain.iter().any(|text| text.contains("refused")),
                        "{chain:?}"
                    );
                }
                other => panic!("{other:?}"),
            }
            // Wrong peer id.
            let b = Node::builder().build().unwrap();
            let addr = b
                .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
                .await
                .unwrap();
            let mut wrong = addr.clone();
            wrong.pop();
            let wrong = wrong.with(Protocol::P2p(PeerId::random()));
            assert!(matches!(a.dial(wrong).await, Err(NodeError::Dial { .. })));
            // Protocol nobody accepts.
            let b_peer = a.dial(addr).await.unwrap();
            assert!(matches!(
                a.open_stream(b_peer, StreamProtocol::new("/nobody/1"))
                    .await,
                Err(NodeError::OpenStream(err))
                    if matches!(*err, libp2p_stream::OpenStreamError::UnsupportedProtocol(_))
            ));
            // Unknown peer without address: the dial fails, as an IO error
            // that says so.
            match a.open_stream(PeerId::random(), PROTOCOL).await {
                Err(NodeError::OpenStream(err)) => match &*err {
                    libp2p_stream::OpenStreamError::Io(io) => {
                        assert_eq!(io.kind(), std::io::ErrorKind::NotConnected, "{io}")
                    }
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            }
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

/// A [`Node`]'s connections at one moment ([`Node::connection_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionCounts {
    /// Established connections other peers opened.
    pub established_incoming: u32,
    /// Established connections this node opened.
    pub established_outgoing: u32,
    /// Incoming connections still in their noise and yamux handshakes.
    pub pending_incoming: u32,
    /// Outgoing connections still being dialed or in their handshakes.
    pub pending_outgoing: u32,
}

impl ConnectionCounts {
    /// Every connection, established or not, in both directions.
    pub fn total(&self) -> u32 {
        self.established_incoming
            + self.established_outgoing
            + self.pending_incoming
            + self.pending_outgoing
    }
}
