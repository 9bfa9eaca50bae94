//! [`GrpcStream`]: gRPC over libp2p streams, one HTTP/2 connection per stream.
//!
//! - `builder.rs`: [`GrpcStreamBuilder`], which builds the [`State`] below;
//! - `error.rs`: [`GrpcStreamError`];
//! - `accept_queue.rs`: inbound streams taken at once off libp2p-stream;
//! - `peer_slots.rs`: connections per peer, and their limit;
//! - `recheck.rs`: the stream wrapper that notices a locally closed
//!   connection.

mod accept_queue;
mod builder;
mod error;
mod peer_slots;
mod recheck;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::StreamExt as _;
use http::uri::Authority;
use libp2p::{PeerId, Stream, StreamProtocol};
use libp2p_stream::{Control, OpenStreamError};

use self::accept_queue::AcceptQueue;
pub use self::builder::GrpcStreamBuilder;
pub use self::error::GrpcStreamError;
use self::peer_slots::PeerSlots;
use self::recheck::RecheckedStream;
use super::peer::RemotePeer;
use super::Node;
use crate::client::{Channel, ChannelBuilder};
use crate::error::Error;
use crate::io::BoxIo;
use crate::rt::SharedRuntime;
use crate::server::{Server, Service};

/// The protocol [`GrpcStream::new`] uses: `/grpc/0.1.0`.
pub const DEFAULT_PROTOCOL: StreamProtocol = StreamProtocol::new("/grpc/0.1.0");

/// The default of [`GrpcStreamBuilder::max_connections_per_peer`].
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 16;

/// The largest HTTP/2 frame payload the connections of a `GrpcStream`
/// accept unless its server or channel builder sets another (64 KiB,
/// against HTTP/2's 16 KiB). Over noise and yamux, four times fewer frames
/// per message lifted the throughput of 1 MiB messages from 0.70 to 0.82 ×
/// a bare libp2p stream over TCP, and from 0.80 to 0.86 × over the memory
/// transport (medians of 7 runs each; `benches/README.md`, finding 13).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 64 * 1024;

/// Inbound streams waiting for [`GrpcStream::serve`] or
/// [`GrpcStream::accept`] beyond this number are closed at once.
const MAX_QUEUED_STREAMS: usize = 1024;

/// The default of [`GrpcStreamBuilder::connect_timeout`].
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a libp2p stream with a read pending is read again, to notice
/// that this side closed its connection (see [`RecheckedStream`]).
const READ_RECHECK: Duration = Duration::from_secs(1);

/// gRPC over libp2p streams: the Rust counterpart of Polygon Edge's Go
/// `GrpcStream`, without its gaps.
///
/// Each libp2p stream of the protocol carries one HTTP/2 connection, with
/// any number of concurrent calls inside. On the server side, the
/// `GrpcStream` takes the protocol's inbound streams off
/// [`libp2p_stream`] the moment they arrive (libp2p-stream drops the ones
/// nobody is waiting for), and [`serve`](Self::serve) serves each in its
/// own task with the inner [`Server`]. Every handler, streaming ones
/// included, sees the remote peer through [`Request::peer_id`](crate::Request::peer_id).
///
/// On the client side, [`client`](Self::client) gives a [`Channel`] to a
/// peer that opens a fresh libp2p stream (dialing the peer if needed)
/// whenever the current one broke.
///
/// Cloning is cheap; clones share everything. The inbound protocol stays
/// registered until [`shutdown`](Self::shutdown) or until the last clone
/// is dropped.
#[derive(Clone)]
pub struct GrpcStream {
    inbox: Arc<AcceptQueue>,
    state: Arc<State>,
}

impl fmt::Debug for GrpcStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcStream")
            .field("protocol", &self.state.protocol)
            .field("server", &self.state.server)
            .field("serving", &self.state.serving.load(Ordering::SeqCst))
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl GrpcStream {
    /// A builder with the defaults.
    pub fn builder() -> GrpcStreamBuilder {
        GrpcStreamBuilder::default()
    }

    /// A `GrpcStream` for [`DEFAULT_PROTOCOL`] with the default settings
    /// (Go: `NewGrpcStream()`). Add services with
    /// [`register_service`](Self::register_service), then call
    /// [`serve`](Self::serve).
    pub fn new(control: Control) -> Result<GrpcStream, GrpcStreamError> {
        GrpcStreamBuilder::default().build(control)
    }

    /// The libp2p protocol of the streams.
    pub fn protocol(&self) -> &StreamProtocol {
        &self.state.protocol
    }

    /// Registers (or replaces) a service (Go: `RegisterService`); running
    /// connections see it at once.
    pub fn register_service(&self, service: impl Service) {
        self.state.server.add_service(service);
    }

    /// The transport-independent server (Go: `GrpcServer()`): the same
    /// services, limits and hooks, which can also be served over TCP
    /// ([`Server::serve_listener`]) or any byte stream.
    pub fn grpc_server(&self) -> &Server {
        &self.state.server
    }

    /// Starts serving (Go: `Serve()`): spawns a loop on the runtime that
    /// takes each inbound stream and spawns its [`handle`](Self::handle)
    /// task. The loop ends at [`shutdown`](Self::shutdown) (or when every
    /// `GrpcStream` handle is dropped); the returned handle resolves then.
    ///
    /// Fails if `serve` was already called or after shutdown.
    pub fn serve(&self) -> Result<ServeHandle, GrpcStreamError> {
        if self.is_shutting_down() {
            return Err(GrpcStreamError::ShutDown);
        }
        if self.state.serving.swap(true, Ordering::SeqCst) {
            return Err(GrpcStreamError::Serving);
        }
        let (done, stopped) = oneshot::channel::<()>();
        let state = self.state.clone();
        self.state.runtime.spawn(Box::pin(async move {
            let _done = done;
            let mut incoming = state.incoming.lock().await;
            // Nothing but take a stream and spawn its task.
            while let Some((peer, stream)) = incoming.next().await {
                state.queued.fetch_sub(1, Ordering::SeqCst);
                let task_state = state.clone();
                state.runtime.spawn(Box::pin(async move {
                    if let Err(err) = task_state.handle(peer, stream).await {
                        tracing::debug!(%peer, %err, "gRPC stream ended with an error");
                    }
                }));
            }
            tracing::debug!(protocol = %state.protocol, "gRPC accept loop stopped");
        }));
        Ok(ServeHandle { stopped })
    }

    /// The next inbound stream and its peer (Go: `Accept()`), for serving
    /// streams by hand with [`handle`](Self::handle) (in a task of its own:
    /// it runs as long as the connection).
    ///
    /// Fails with [`GrpcStreamError::Serving`] once [`serve`](Self::serve)
    /// was called and with [`GrpcStreamError::ShutDown`] after shutdown.
    pub async fn accept(&self) -> Result<(PeerId, Stream), GrpcStreamError> {
        if self.state.serving.load(Ordering::SeqCst) {
            return Err(GrpcStreamError::Serving);
        }
        let mut incoming = self.state.incoming.lock().await;
        match incoming.next().await {
            Some(accepted) => {
                self.state.queued.fetch_sub(1, Ordering::SeqCst);
                if self.is_shutting_down() {
                    return Err(GrpcStreamError::ShutDown);
                }
                Ok(accepted)
            }
            None => Err(GrpcStreamError::ShutDown),
        }
    }

    /// Serves one inbound stream from `peer` (Go: `Handler()`): runs an
    /// HTTP/2 server connection over it until the peer closes it or the
    /// server shuts down, with the calls inside each in its own task and
    /// each seeing [`RemotePeer`]`(peer)` in its extensions.
    ///
    /// Streams beyond [`max_connections_per_peer`](GrpcStreamBuilder::max_connections_per_peer)
    /// are closed at once ([`GrpcStreamError::TooManyConnections`]).
    pub async fn handle(&self, peer: PeerId, stream: Stream) -> Result<(), GrpcStreamError> {
        self.state.handle(peer, stream).await
    }

    /// [`handle`](Self::handle) for any byte stream, as if it were an
    /// inbound libp2p stream from `peer`: the per-peer limit, the
    /// [`RemotePeer`] extension, the read recheck and shutdown all apply.
    /// For the fuzz crate (feature `unstable-internals`), which feeds
    /// arbitrary bytes to a served stream without a swarm.
    #[cfg(feature = "unstable-internals")]
    pub async fn handle_io(
        &self,
        peer: PeerId,
        io: impl crate::io::Io,
    ) -> Result<(), GrpcStreamError> {
        self.state.handle(peer, io).await
    }

    /// A channel to `peer` that opens a libp2p stream of this protocol at
    /// the first call (dialing the peer by id through the node's known
    /// addresses if not connected), and a fresh one whenever the current
    /// one broke: after the peer went away and came back, the next call on
    /// the same channel succeeds.
    ///
    /// (Go's `Client(stream)` took an open stream and could not recover;
    /// see [`wrap_client`](Self::wrap_client) for that.)
    pub fn client(&self, peer: PeerId) -> Channel {
        self.state.client(peer)
    }

    /// A channel that spreads its calls over `peers` (each as
    /// [`client`](Self::client) reaches it: one libp2p stream per peer,
    /// dialed by id, looked up in the DHT with
    /// [`discovery`](GrpcStreamBuilder::discovery)) by `policy`. A peer
    /// whose stream fails leaves the rotation, and is reconnected in the
    /// background and rejoins once it answers; calls fail with
    /// `UNAVAILABLE` only when no peer can be reached. Each response tells
    /// which peer served it: [`Response::peer_id`](crate::Response::peer_id)
    /// (and [`Streaming::peer_id`](crate::Streaming::peer_id) for bidi
    /// calls). Peers from [`Node::find_providers`] are the natural input.
    ///
    /// An empty `peers` is an error ([`Error::is_invalid_target`]).
    pub fn balanced_client(
        &self,
        peers: impl IntoIterator<Item = PeerId>,
        policy: crate::client::LoadBalancing,
    ) -> Result<Channel, Error> {
        let channels = peers.into_iter().map(|peer| self.client(peer)).collect();
        Channel::balanced(channels, policy)
    }

    /// A [balanced](Self::balanced_client) channel over the peers that
    /// provide this `GrpcStream`'s protocol in `node`'s DHT
    /// ([`Node::find_providers`], this node left out). When one of them
    /// fails, the channel asks the DHT again in the background and takes
    /// the providers it did not have into the rotation; the failed one
    /// rejoins if it comes back. Build the `GrpcStream` with
    /// [`discovery`](GrpcStreamBuilder::discovery) so that providers are
    /// reached by id alone.
    pub async fn providers_client(
        &self,
        node: &Node,
        policy: crate::client::LoadBalancing,
    ) -> Result<Channel, GrpcStreamError> {
        let state = self.state.clone();
        let node = node.clone();
        let find = move || {
            let state = state.clone();
            let node = node.clone();
            async move {
                let own = node.peer_id();
                let found = node.find_providers(state.protocol.clone()).await?;
                Ok::<_, crate::libp2p::NodeError>(
                    found
                        .into_iter()
                        .filter(|peer| *peer != own)
                        .map(|peer| state.client(peer))
                        .collect::<Vec<Channel>>(),
                )
            }
        };
        let first = find().await.map_err(GrpcStreamError::Discovery)?;
        if first.is_empty() {
            return Err(GrpcStreamError::NoProviders(self.state.protocol.clone()));
        }
        let refresh: crate::client::balance::Refresh = Arc::new(move || {
            let found = find();
            Box::pin(async move {
                found.await.unwrap_or_else(|err| {
                    tracing::debug!(%err, "looking for more providers failed");
                    Vec::new()
                })
            })
        });
        Channel::balanced_with(first, policy, Some(refresh)).map_err(GrpcStreamError::Build)
    }

    /// A channel over an already open outbound stream (Go: `WrapClient`).
    /// It cannot reconnect: once the stream breaks, calls fail with
    /// `UNAVAILABLE`.
    pub async fn wrap_client(&self, stream: Stream) -> Result<Channel, Error> {
        self.state
            .channel
            .clone()
            .connect(RecheckedStream::new(stream, &self.state.runtime))
            .await
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.state.closing.load(Ordering::SeqCst)
    }

    /// Number of connections (streams) being served now for `peer`.
    pub fn connections_of(&self, peer: &PeerId) -> usize {
        self.state.peers.count(peer)
    }

    /// Shuts down gracefully (Go's `Close()` did nothing): stops taking
    /// inbound streams at once (the protocol is unregistered, so peers
    /// opening a stream get "unsupported protocol"; queued streams are
    /// closed), then shuts the [`grpc_server`](Self::grpc_server) down: no
    /// new calls, running calls may finish for up to `grace`, then the rest
    /// end with `UNAVAILABLE`. Resolves once every connection is closed.
    ///
    /// This stops the whole inner server, including what it serves over
    /// other transports. Client channels from [`client`](Self::client) are
    /// not affected.
    pub async fn shutdown(&self, grace: Duration) {
        self.state.closing.store(true, Ordering::SeqCst);
        self.inbox.close();
        self.state.server.shutdown(grace).await;
    }
}

fn open_stream_error(peer: PeerId, err: OpenStreamError) -> io::Error {
    match err {
        OpenStreamError::UnsupportedProtocol(protocol) => io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("peer {peer} does not serve {protocol}"),
        ),
        OpenStreamError::Io(err) => err,
        other => io::Error::other(other.to_string()),
    }
}

/// Resolves when the accept loop started by [`GrpcStream::serve`] has
/// stopped. Dropping it does not stop the loop.
#[derive(Debug)]
pub struct ServeHandle {
    stopped: oneshot::Receiver<()>,
}

impl Future for ServeHandle {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The sender is only ever dropped, never used.
        Pin::new(&mut self.stopped).poll(cx).map(|_| ())
    }
}

/// What the accept loop and the stream tasks share. Holds no reference to
/// the [`AcceptQueue`], so that dropping every [`GrpcStream`] unregisters the
/// protocol and ends the loop.
struct State {
    protocol: StreamProtocol,
    control: Control,
    server: Server,
    runtime: SharedRuntime,
    channel: ChannelBuilder,
    connect_timeout: Duration,
    /// Where client channels look up peers they cannot reach.
    discovery: Option<Node>,
    /// Live connections per peer, and their limit.
    peers: Arc<PeerSlots>,
    /// Inbound streams the [`AcceptQueue`] took, waiting to be served.
    incoming: futures::lock::Mutex<mpsc::UnboundedReceiver<(PeerId, Stream)>>,
    queued: Arc<AtomicUsize>,
    serving: AtomicBool,
    closing: AtomicBool,
}

impl State {
    fn client(&self, peer: PeerId) -> Channel {
        let mut builder = self.channel.clone().endpoint_extension(RemotePeer(peer));
        if let Ok(authority) = Authority::try_from(peer.to_string()) {
            builder = builder.authority(authority);
        }
        let control = self.control.clone();
        let protocol = self.protocol.clone();
        let runtime = self.runtime.clone();
        let timeout = self.connect_timeout;
        let discovery = self.discovery.clone();
        builder
            .connect_lazy(move || {
                let mut control = control.clone();
                let protocol = protocol.clone();
                let timer = runtime.sleep(timeout);
                let runtime = runtime.clone();
                let discovery = discovery.clone();
                async move {
                    let open = std::pin::pin!(async {
                        let first = control.open_stream(peer, protocol.clone()).await;
                        let (Err(err), Some(node)) = (&first, &discovery) else {
                            return first;
                        };
                        tracing::debug!(%peer, %err, "cannot reach the peer; looking it up in the DHT");
                        match node.find_peer(peer).await {
                            Ok(addrs) => {
                                tracing::debug!(%peer, ?addrs, "found the peer in the DHT");
                                control.open_stream(peer, protocol).await
                            }
                            Err(lookup) => {
                                tracing::debug!(%peer, %lookup, "DHT lookup failed");
                                first
                            }
                        }
                    });
                    match futures::future::select(open, timer).await {
                        futures::future::Either::Left((Ok(stream), _)) => {
                            Ok(Box::new(RecheckedStream::new(stream, &runtime)) as BoxIo)
                        }
                        futures::future::Either::Left((Err(err), _)) => {
                            Err(open_stream_error(peer, err))
                        }
                        futures::future::Either::Right(_) => Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("opening a stream to {peer} timed out"),
                        )),
                    }
                }
            })
            .expect("the channel builder has a runtime")
    }

    async fn handle(
        self: &Arc<Self>,
        peer: PeerId,
        stream: impl crate::io::Io,
    ) -> Result<(), GrpcStreamError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(GrpcStreamError::ShutDown);
        }
        let Some(_slot) = self.peers.enter(peer) else {
            let limit = self.peers.max().unwrap_or_default();
            tracing::warn!(
                %peer, limit, protocol = %self.protocol,
                "too many gRPC connections from one peer; closing the new stream"
            );
            drop(stream);
            return Err(GrpcStreamError::TooManyConnections { peer, limit });
        };
        tracing::debug!(%peer, protocol = %self.protocol, "serving a gRPC stream");
        let mut extensions = http::Extensions::new();
        extensions.insert(RemotePeer(peer));
        self.server
            .serve_connection_with(RecheckedStream::new(stream, &self.runtime), extensions)
            .await
            .map_err(GrpcStreamError::Connection)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::libp2p::RemotePeer;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<GrpcStream>();
        assert_send_sync::<GrpcStreamBuilder>();
        assert_send_sync::<GrpcStreamError>();
        assert_send_sync::<RemotePeer>();
    }
}
