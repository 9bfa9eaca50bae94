//! [`GrpcStream`]: gRPC over libp2p streams, one HTTP/2 connection per stream.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::task::{waker_ref, ArcWake};
use futures::StreamExt as _;
use http::uri::Authority;
use libp2p::{PeerId, Stream, StreamProtocol};
use libp2p_stream::{Control, IncomingStreams, OpenStreamError};

use super::peer::RemotePeer;
use crate::client::ChannelBuilder;
use crate::io::BoxIo;
use crate::rt::SharedRuntime;
use crate::server::{CallInfo, Server, ServerBuilder, Service};
use crate::{Channel, Error, Status};

/// The protocol [`GrpcStream::new`] uses: `/grpc/0.1.0`.
pub const DEFAULT_PROTOCOL: StreamProtocol = StreamProtocol::new("/grpc/0.1.0");

/// The default of [`GrpcStreamBuilder::max_connections_per_peer`].
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 16;

/// Inbound streams waiting for [`GrpcStream::serve`] or
/// [`GrpcStream::accept`] beyond this number are closed at once.
const MAX_QUEUED_STREAMS: usize = 1024;

/// The default of [`GrpcStreamBuilder::connect_timeout`].
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a libp2p stream with a read pending is read again, to notice
/// that this side closed its connection (see [`Watched`]).
const READ_RECHECK: Duration = Duration::from_secs(1);

/// An error of a [`GrpcStream`] operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum GrpcStreamError {
    /// [`build`](GrpcStreamBuilder::build): the protocol already has an
    /// acceptor on this [`Control`] (another `GrpcStream`, or a
    /// [`Control::accept`] whose `IncomingStreams` is still alive).
    AlreadyRegistered(StreamProtocol),
    /// [`build`](GrpcStreamBuilder::build): the server could not be built
    /// (no runtime given and no runtime feature enabled).
    Build(Error),
    /// [`serve`](GrpcStream::serve) was already called: inbound streams go
    /// to its loop, not to [`accept`](GrpcStream::accept).
    Serving,
    /// [`shutdown`](GrpcStream::shutdown) was called: no stream is accepted
    /// any more.
    ShutDown,
    /// [`handle`](GrpcStream::handle): the peer already has `limit`
    /// connections (streams) being served; the stream was closed.
    TooManyConnections {
        /// The remote peer.
        peer: PeerId,
        /// The configured limit.
        limit: usize,
    },
    /// [`handle`](GrpcStream::handle): the HTTP/2 connection failed (not an
    /// HTTP/2 client, handshake timeout, protocol error...).
    Connection(Error),
}

impl fmt::Display for GrpcStreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrpcStreamError::AlreadyRegistered(protocol) => {
                write!(f, "protocol {protocol} is already accepted on this control")
            }
            GrpcStreamError::Build(err) => write!(f, "cannot build the gRPC server: {err}"),
            GrpcStreamError::Serving => f.write_str("the GrpcStream is already serving"),
            GrpcStreamError::ShutDown => f.write_str("the GrpcStream has shut down"),
            GrpcStreamError::TooManyConnections { peer, limit } => {
                write!(f, "peer {peer} already has {limit} connections")
            }
            GrpcStreamError::Connection(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for GrpcStreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GrpcStreamError::Build(err) | GrpcStreamError::Connection(err) => Some(err),
            _ => None,
        }
    }
}

type PeerAuthorizeFn = dyn Fn(PeerId, &CallInfo<'_>) -> Result<(), Status> + Send + Sync;

/// Configures and builds a [`GrpcStream`].
pub struct GrpcStreamBuilder {
    protocol: StreamProtocol,
    server: ServerBuilder,
    services: Vec<Arc<dyn Service>>,
    channel: Option<ChannelBuilder>,
    runtime: Option<SharedRuntime>,
    max_calls_per_connection: Option<Option<u32>>,
    max_connections_per_peer: Option<usize>,
    authorize: Option<Arc<PeerAuthorizeFn>>,
    connect_timeout: Duration,
}

impl fmt::Debug for GrpcStreamBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcStreamBuilder")
            .field("protocol", &self.protocol)
            .field("server", &self.server)
            .field(
                "services",
                &self.services.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("channel", &self.channel)
            .field("runtime", &self.runtime)
            .field("max_calls_per_connection", &self.max_calls_per_connection)
            .field("max_connections_per_peer", &self.max_connections_per_peer)
            .field("authorize", &self.authorize.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl Default for GrpcStreamBuilder {
    fn default() -> Self {
        GrpcStreamBuilder {
            protocol: DEFAULT_PROTOCOL,
            server: ServerBuilder::default(),
            services: Vec::new(),
            channel: None,
            runtime: None,
            max_calls_per_connection: None,
            max_connections_per_peer: Some(DEFAULT_MAX_CONNECTIONS_PER_PEER),
            authorize: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl GrpcStreamBuilder {
    /// The libp2p protocol the streams are opened and accepted for (default
    /// [`DEFAULT_PROTOCOL`], `/grpc/0.1.0`). Use one protocol for all
    /// services, or one `GrpcStream` per service with a protocol each, as
    /// Polygon Edge does (`/syncer/0.2`...).
    pub fn protocol(mut self, protocol: StreamProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The runtime that runs the accept loop, connections, calls and client
    /// channels (default: the one the server builder has, else
    /// [`rt::default_runtime`](crate::rt::default_runtime)).
    pub fn runtime(mut self, runtime: SharedRuntime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The settings of the inner [`Server`] (message sizes, compression,
    /// HTTP/2 windows, handshake timeout...). Services added with
    /// [`add_service`](Self::add_service) are kept whatever the order of
    /// the calls. If [`authorize`](Self::authorize) is used, it replaces
    /// the builder's own [`authorize`](ServerBuilder::authorize) hook.
    pub fn server(mut self, server: ServerBuilder) -> Self {
        self.server = server;
        self
    }

    /// The settings of the channels [`client`](GrpcStream::client) and
    /// [`wrap_client`](GrpcStream::wrap_client) create (windows, user
    /// agent, handshake timeout...). Their runtime is always the
    /// `GrpcStream`'s; [`client`](GrpcStream::client) sets the
    /// `:authority` to the remote peer id.
    pub fn channel(mut self, channel: ChannelBuilder) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Registers a service (a generated `XxxServer`, or your own
    /// [`Service`]). More can be added later with
    /// [`GrpcStream::register_service`].
    pub fn add_service(mut self, service: impl Service) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Most calls open at once on one connection, that is one libp2p stream
    /// (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`; `None` for no limit).
    /// Default: the server builder's (1024).
    pub fn max_calls_per_connection(mut self, max: Option<u32>) -> Self {
        self.max_calls_per_connection = Some(max);
        self
    }

    /// Most connections (libp2p streams of this protocol) served at once
    /// for one peer (default 16; `None` for no limit). Streams beyond the
    /// limit are closed as soon as they arrive, and logged.
    pub fn max_connections_per_peer(mut self, max: Option<usize>) -> Self {
        self.max_connections_per_peer = max;
        self
    }

    /// Checks every call with the remote peer and the call's service,
    /// method and metadata before its handler runs. An `Err` status (for
    /// example [`Status::permission_denied`]) is sent back instead of
    /// running the handler.
    ///
    /// Calls that carry no libp2p peer, such as calls the
    /// [`grpc_server`](GrpcStream::grpc_server) receives over TCP, are
    /// refused with `UNAUTHENTICATED`. To authorise those differently, give
    /// [`server`](Self::server) a builder with its own
    /// [`authorize`](ServerBuilder::authorize) hook instead, and read the
    /// peer with [`CallInfo::peer_id`].
    pub fn authorize<F>(mut self, hook: F) -> Self
    where
        F: Fn(PeerId, &CallInfo<'_>) -> Result<(), Status> + Send + Sync + 'static,
    {
        self.authorize = Some(Arc::new(hook));
        self
    }

    /// Time [`client`](GrpcStream::client) channels may take to open a
    /// libp2p stream, dialing the peer if needed (default 20 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Builds the `GrpcStream` and starts taking the protocol's inbound
    /// streams off `control` (see [`Node::control`](super::Node::control)).
    ///
    /// From now on inbound streams are taken the moment they arrive and
    /// queued until [`serve`](GrpcStream::serve) or
    /// [`accept`](GrpcStream::accept) picks them up.
    pub fn build(self, mut control: Control) -> Result<GrpcStream, GrpcStreamError> {
        let mut server = self.server;
        if let Some(runtime) = self.runtime {
            server = server.runtime(runtime);
        }
        if let Some(max) = self.max_calls_per_connection {
            server = server.max_concurrent_streams(max);
        }
        if let Some(hook) = self.authorize {
            server = server.authorize(move |info: &CallInfo<'_>| match info.peer_id() {
                Some(peer) => hook(peer, info),
                None => Err(Status::unauthenticated(
                    "the call did not come through a libp2p stream",
                )),
            });
        }
        for service in self.services {
            server = server.add_service(service);
        }
        let server = server.build().map_err(GrpcStreamError::Build)?;
        let runtime = server.runtime().clone();
        let channel = self.channel.unwrap_or_default().runtime(runtime.clone());

        let incoming = control
            .accept(self.protocol.clone())
            .map_err(|_| GrpcStreamError::AlreadyRegistered(self.protocol.clone()))?;
        let (queue, queued_streams) = mpsc::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        let inbox = Inbox::start(incoming, queue, queued.clone(), self.protocol.clone());

        Ok(GrpcStream {
            inbox,
            core: Arc::new(Core {
                protocol: self.protocol,
                control,
                server,
                runtime,
                channel,
                connect_timeout: self.connect_timeout,
                max_connections_per_peer: self.max_connections_per_peer,
                peers: Mutex::new(HashMap::new()),
                incoming: futures::lock::Mutex::new(queued_streams),
                queued,
                serving: AtomicBool::new(false),
                closing: AtomicBool::new(false),
            }),
        })
    }
}

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
    inbox: Arc<Inbox>,
    core: Arc<Core>,
}

impl fmt::Debug for GrpcStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcStream")
            .field("protocol", &self.core.protocol)
            .field("server", &self.core.server)
            .field("serving", &self.core.serving.load(Ordering::SeqCst))
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
        &self.core.protocol
    }

    /// Registers (or replaces) a service (Go: `RegisterService`); running
    /// connections see it at once.
    pub fn register_service(&self, service: impl Service) {
        self.core.server.add_service(service);
    }

    /// The transport-independent server (Go: `GrpcServer()`): the same
    /// services, limits and hooks, which can also be served over TCP
    /// ([`Server::serve_listener`]) or any byte stream.
    pub fn grpc_server(&self) -> &Server {
        &self.core.server
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
        if self.core.serving.swap(true, Ordering::SeqCst) {
            return Err(GrpcStreamError::Serving);
        }
        let (done, stopped) = oneshot::channel::<()>();
        let core = self.core.clone();
        self.core.runtime.spawn(Box::pin(async move {
            let _done = done;
            let mut incoming = core.incoming.lock().await;
            // Nothing but take a stream and spawn its task.
            while let Some((peer, stream)) = incoming.next().await {
                core.queued.fetch_sub(1, Ordering::SeqCst);
                let task_core = core.clone();
                core.runtime.spawn(Box::pin(async move {
                    if let Err(err) = task_core.handle(peer, stream).await {
                        tracing::debug!(%peer, %err, "gRPC stream ended with an error");
                    }
                }));
            }
            tracing::debug!(protocol = %core.protocol, "gRPC accept loop stopped");
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
        if self.core.serving.load(Ordering::SeqCst) {
            return Err(GrpcStreamError::Serving);
        }
        let mut incoming = self.core.incoming.lock().await;
        match incoming.next().await {
            Some(accepted) => {
                self.core.queued.fetch_sub(1, Ordering::SeqCst);
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
        self.core.handle(peer, stream).await
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
        let mut builder = self.core.channel.clone();
        if let Ok(authority) = Authority::try_from(peer.to_string()) {
            builder = builder.authority(authority);
        }
        let control = self.core.control.clone();
        let protocol = self.core.protocol.clone();
        let runtime = self.core.runtime.clone();
        let timeout = self.core.connect_timeout;
        builder
            .connect_lazy(move || {
                let mut control = control.clone();
                let protocol = protocol.clone();
                let timer = runtime.sleep(timeout);
                let runtime = runtime.clone();
                async move {
                    let open = std::pin::pin!(control.open_stream(peer, protocol));
                    match futures::future::select(open, timer).await {
                        futures::future::Either::Left((Ok(stream), _)) => {
                            Ok(Box::new(Watched::new(stream, &runtime)) as BoxIo)
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

    /// A channel over an already open outbound stream (Go: `WrapClient`).
    /// It cannot reconnect: once the stream breaks, calls fail with
    /// `UNAVAILABLE`.
    pub async fn wrap_client(&self, stream: Stream) -> Result<Channel, Error> {
        self.core
            .channel
            .clone()
            .connect(Watched::new(stream, &self.core.runtime))
            .await
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.core.closing.load(Ordering::SeqCst)
    }

    /// Number of connections (streams) being served now for `peer`.
    pub fn connections_of(&self, peer: &PeerId) -> usize {
        self.core
            .lock_peers()
            .get(peer)
            .copied()
            .unwrap_or_default()
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
        self.core.closing.store(true, Ordering::SeqCst);
        self.inbox.close();
        self.core.server.shutdown(grace).await;
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
/// the [`Inbox`], so that dropping every [`GrpcStream`] unregisters the
/// protocol and ends the loop.
struct Core {
    protocol: StreamProtocol,
    control: Control,
    server: Server,
    runtime: SharedRuntime,
    channel: ChannelBuilder,
    connect_timeout: Duration,
    max_connections_per_peer: Option<usize>,
    /// Live connections per peer.
    peers: Mutex<HashMap<PeerId, usize>>,
    /// Inbound streams the [`Inbox`] took, waiting to be served.
    incoming: futures::lock::Mutex<mpsc::UnboundedReceiver<(PeerId, Stream)>>,
    queued: Arc<AtomicUsize>,
    serving: AtomicBool,
    closing: AtomicBool,
}

impl Core {
    fn lock_peers(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, usize>> {
        self.peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn handle(self: &Arc<Self>, peer: PeerId, stream: Stream) -> Result<(), GrpcStreamError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(GrpcStreamError::ShutDown);
        }
        let Some(_slot) = self.enter(peer) else {
            let limit = self.max_connections_per_peer.unwrap_or_default();
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
            .serve_connection_with(Watched::new(stream, &self.runtime), extensions)
            .await
            .map_err(GrpcStreamError::Connection)
    }

    /// Counts a connection of `peer`, unless it has reached the limit.
    fn enter(self: &Arc<Self>, peer: PeerId) -> Option<PeerSlot> {
        let mut peers = self.lock_peers();
        let count = peers.entry(peer).or_default();
        if self
            .max_connections_per_peer
            .is_some_and(|max| *count >= max)
        {
            if *count == 0 {
                peers.remove(&peer);
            }
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            core: self.clone(),
            peer,
        })
    }
}

/// One live connection of a peer; dropping it frees the slot.
struct PeerSlot {
    core: Arc<Core>,
    peer: PeerId,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut peers = self.core.lock_peers();
        if let Some(count) = peers.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                peers.remove(&self.peer);
            }
        }
    }
}

/// A libp2p stream that notices when this side closed its connection.
///
/// When a yamux connection is closed by its own side (`Node::disconnect`,
/// `Node::shutdown`, the swarm's idle timeout), a read already pending on
/// one of its streams is never woken (libp2p/rust-yamux#216): an HTTP/2
/// connection with nothing to send would wait forever, holding its task
/// and its peer's connection slot. The stream itself does report the
/// closed connection when it is read again, so while a read is pending
/// it is read again every [`READ_RECHECK`].
struct Watched {
    stream: Stream,
    runtime: SharedRuntime,
    recheck: Option<crate::rt::Sleep>,
}

impl Watched {
    fn new(stream: Stream, runtime: &SharedRuntime) -> Watched {
        Watched {
            stream,
            runtime: runtime.clone(),
            recheck: None,
        }
    }
}

impl futures::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            if let Poll::Ready(read) = Pin::new(&mut this.stream).poll_read(cx, buf) {
                return Poll::Ready(read);
            }
            // One timer per connection, re-armed only when it fires.
            let recheck = this
                .recheck
                .get_or_insert_with(|| this.runtime.sleep(READ_RECHECK));
            if recheck.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.recheck = None;
        }
    }
}

impl futures::AsyncWrite for Watched {
    crate::io::forward_writes!(stream);

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}

/// Takes inbound streams off libp2p-stream the moment they arrive.
///
/// libp2p-stream hands inbound streams over a channel with a single slot,
/// with `try_send`: a stream that arrives while the previous one is still
/// in the slot is dropped. However fast an accept loop is, it runs only
/// after a task switch, and a burst of streams from many peers loses some.
/// So the `IncomingStreams` is polled with a waker of our own that drains
/// it synchronously, inside the `try_send` that woke it, into an unbounded
/// queue: the slot is free again before the next stream comes.
struct Inbox {
    /// `None` once closed.
    incoming: Mutex<Option<IncomingStreams>>,
    /// Set by every wake-up; whoever holds `incoming` drains until it is
    /// clear, so that a wake-up that could not take the lock is not lost.
    dirty: AtomicBool,
    queue: mpsc::UnboundedSender<(PeerId, Stream)>,
    queued: Arc<AtomicUsize>,
    protocol: StreamProtocol,
    /// The waker handed to `IncomingStreams`. It holds the inbox weakly:
    /// the receiver's waker slot must not keep the inbox alive.
    waker: Arc<InboxWaker>,
}

struct InboxWaker(Weak<Inbox>);

impl ArcWake for InboxWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        if let Some(inbox) = arc_self.0.upgrade() {
            inbox.drain();
        }
    }
}

impl Inbox {
    fn start(
        incoming: IncomingStreams,
        queue: mpsc::UnboundedSender<(PeerId, Stream)>,
        queued: Arc<AtomicUsize>,
        protocol: StreamProtocol,
    ) -> Arc<Inbox> {
        let inbox = Arc::new_cyclic(|weak| Inbox {
            incoming: Mutex::new(Some(incoming)),
            dirty: AtomicBool::new(false),
            queue,
            queued,
            protocol,
            waker: Arc::new(InboxWaker(weak.clone())),
        });
        // Registers the waker.
        inbox.drain();
        inbox
    }

    /// Moves every stream that has arrived into the queue, and leaves the
    /// waker registered for the next one.
    fn drain(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        loop {
            let mut incoming = match self.incoming.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                // The holder drains again: it sees `dirty`.
                Err(TryLockError::WouldBlock) => return,
            };
            while self.dirty.swap(false, Ordering::SeqCst) {
                let Some(streams) = incoming.as_mut() else {
                    break;
                };
                let waker = waker_ref(&self.waker);
                let mut cx = Context::from_waker(&waker);
                loop {
                    match streams.poll_next_unpin(&mut cx) {
                        Poll::Ready(Some((peer, stream))) => self.enqueue(peer, stream),
                        Poll::Ready(None) => {
                            *incoming = None;
                            self.queue.close_channel();
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            drop(incoming);
            // A wake-up between our last check and the unlock found the
            // lock taken: drain for it.
            if !self.dirty.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    fn enqueue(&self, peer: PeerId, stream: Stream) {
        if self.queued.load(Ordering::SeqCst) >= MAX_QUEUED_STREAMS {
            tracing::warn!(
                %peer, protocol = %self.protocol,
                "too many inbound gRPC streams waiting to be served; closing the new one"
            );
            return;
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.queue.unbounded_send((peer, stream)).is_err() {
            // Closed: the stream is dropped.
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Unregisters the protocol and closes the queue.
    fn close(&self) {
        let incoming = self
            .incoming
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        drop(incoming);
        self.queue.close_channel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<GrpcStream>();
        assert_send_sync::<GrpcStreamBuilder>();
        assert_send_sync::<GrpcStreamError>();
        assert_send_sync::<RemotePeer>();
    }
}
