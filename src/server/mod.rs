//! The server: a router from `/package.Service/Method` to services, served
//! over any byte stream.
//!
//! ```no_run
//! # use p2p_grpc::server::Server;
//! # fn demo(greeter: impl p2p_grpc::server::Service) -> Result<(), Box<dyn std::error::Error>> {
//! p2p_grpc::rt::block_on(async {
//!     let server = Server::builder().add_service(greeter).build()?;
//!     server.serve("127.0.0.1:50051".parse()?).await?;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Each connection is served by [`Server::serve_connection`], which keeps
//! accepting HTTP/2 streams and spawns one task per call; a call's task runs
//! the handler and writes its response while it watches the client's
//! deadline, a client reset and a forced shutdown.

mod call;
mod connection;
mod intercept;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{Stream, StreamExt};

pub use self::call::{CallFuture, ServerCall};
use self::intercept::{Authorize, Chain};
pub use self::intercept::{CallEnd, CallInfo, CallStart, Interceptor};
use crate::sync::{Budget, Signal, Tracker};

use crate::connect_info::TcpConnectInfo;
use crate::http2::keepalive::KeepAlive;
pub use crate::http2::keepalive::{PingPolicy, MAX_PING_STRIKES};
use crate::http2::settings::Http2Settings;
use crate::io::Io;
use crate::rt::SharedRuntime;
use crate::wire::compression::CompressionEncoding;
use crate::wire::framing::DEFAULT_MAX_MESSAGE_SIZE;
use crate::{Error, Status};

/// A gRPC service: what generated `XxxServer::new(implementation)` types are.
///
/// The trait is object safe, so a server holds services of any type. A
/// service receives each call to one of its methods as a [`ServerCall`] and
/// answers it with the handler of the right kind:
///
/// ```
/// use p2p_grpc::server::{CallFuture, ServerCall, Service};
/// use p2p_grpc::{Request, Response, Status};
///
/// struct Echo;
///
/// impl Service for Echo {
///     fn name(&self) -> &'static str {
///         "demo.Echo"
///     }
///
///     fn call(&self, method: &str, call: ServerCall) -> CallFuture {
///         match method {
///             "Say" => call.unary(|request: Request<String>| async move {
///                 Ok::<_, Status>(Response::new(request.into_inner()))
///             }),
///             _ => call.unimplemented(),
///         }
///     }
/// }
/// ```
pub trait Service: Send + Sync + 'static {
    /// The fully qualified service name, `package.Service`.
    fn name(&self) -> &'static str;

    /// Answers one call to `method` (the part of the path after the service
    /// name). Returns the future that runs the call; the server spawns it.
    fn call(&self, method: &str, call: ServerCall) -> CallFuture;
}

impl<S: Service + ?Sized> Service for Arc<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn call(&self, method: &str, call: ServerCall) -> CallFuture {
        (**self).call(method, call)
    }
}

/// Limits and settings shared by every connection of a server.
pub(crate) struct ServerConfig {
    pub(crate) runtime: SharedRuntime,
    pub(crate) max_decoding_message_size: usize,
    pub(crate) max_encoding_message_size: usize,
    pub(crate) send_compression: Option<CompressionEncoding>,
    pub(crate) max_concurrent_streams: Option<u32>,
    pub(crate) settings: Http2Settings,
    pub(crate) max_pending_accept_reset_streams: Option<usize>,
    pub(crate) keepalive: Option<KeepAlive>,
    pub(crate) ping_policy: Option<PingPolicy>,
    pub(crate) idle_timeout: Option<Duration>,
    /// Run around every call, in order.
    pub(crate) interceptors: Chain,
    /// Shared by every connection of the server (see
    /// [`ServerBuilder::memory_budget`]).
    pub(crate) budget: Option<Arc<Budget>>,
    /// The TLS handshake of every accepted connection, when configured.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::Acceptor>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("runtime", &self.runtime)
            .field("max_decoding_message_size", &self.max_decoding_message_size)
            .field("max_encoding_message_size", &self.max_encoding_message_size)
            .field("send_compression", &self.send_compression)
            .field("max_concurrent_streams", &self.max_concurrent_streams)
            .field("settings", &self.settings)
            .field("keepalive", &self.keepalive)
            .field("ping_policy", &self.ping_policy)
            .field("idle_timeout", &self.idle_timeout)
            .field("interceptors", &self.interceptors)
            .field("budget", &self.budget)
            .finish()
    }
}

/// The settings of a server, before the runtime is known.
struct Settings {
    max_decoding_message_size: usize,
    max_encoding_message_size: usize,
    send_compression: Option<CompressionEncoding>,
    max_concurrent_streams: Option<u32>,
    http2: Http2Settings,
    max_pending_accept_reset_streams: Option<usize>,
    keepalive: Option<KeepAlive>,
    ping_policy: Option<PingPolicy>,
    idle_timeout: Option<Duration>,
    interceptors: Chain,
    memory_budget: Option<usize>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ServerTlsConfig>,
}

/// Configures and builds a [`Server`].
pub struct ServerBuilder {
    runtime: Option<SharedRuntime>,
    config: Settings,
    services: Vec<Arc<dyn Service>>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("http2", &self.config.http2)
            .field(
                "services",
                &self.services.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            runtime: None,
            config: Settings {
                max_decoding_message_size: DEFAULT_MAX_MESSAGE_SIZE,
                max_encoding_message_size: usize::MAX,
                send_compression: None,
                max_concurrent_streams: Some(DEFAULT_MAX_CONCURRENT_STREAMS),
                http2: Http2Settings::default(),
                max_pending_accept_reset_streams: Some(32),
                keepalive: None,
                ping_policy: Some(PingPolicy::default()),
                idle_timeout: None,
                interceptors: Chain::default(),
                memory_budget: Some(DEFAULT_MEMORY_BUDGET),
                #[cfg(feature = "tls")]
                tls: None,
            },
            services: Vec::new(),
        }
    }
}

/// Calls a server runs at once on one connection, by default.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1024;

/// The server-wide memory budget, by default (256 MiB; see
/// [`ServerBuilder::memory_budget`]).
pub const DEFAULT_MEMORY_BUDGET: usize = 256 * 1024 * 1024;

/// How long a connection whose TLS handshake failed is kept open for its
/// alert to reach the client ([`crate::tls::linger`]).
#[cfg(feature = "tls")]
const TLS_LINGER: Duration = Duration::from_secs(1);

impl ServerBuilder {
    /// The runtime that runs calls and timers (default: the one chosen by
    /// the enabled features, see [`rt::default_runtime`](crate::rt::default_runtime)).
    pub fn runtime(mut self, runtime: SharedRuntime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Largest request message accepted, after decompression (default 4 MiB).
    /// Larger ones fail the call with `RESOURCE_EXHAUSTED`.
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.config.max_decoding_message_size = limit;
        self
    }

    /// Largest response message sent (default: no limit). Larger ones fail
    /// the call with `RESOURCE_EXHAUSTED`.
    pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
        self.config.max_encoding_message_size = limit;
        self
    }

    /// Compresses responses with `encoding` when the client accepts it.
    /// Compressed requests are always accepted.
    pub fn send_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.config.send_compression = Some(encoding);
        self
    }

    /// Most calls open at once on one connection (HTTP/2
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`, default 1024; `None` for no limit).
    pub fn max_concurrent_streams(mut self, max: Option<u32>) -> Self {
        self.config.max_concurrent_streams = max;
        self
    }

    crate::http2::settings::http2_setters!(config.http2);

    /// Takes `size` as the largest frame payload unless
    /// [`max_frame_size`](Self::max_frame_size) set one (a transport's
    /// default).
    #[cfg(feature = "libp2p")]
    pub(crate) fn or_max_frame_size(mut self, size: u32) -> Self {
        self.config.http2.or_max_frame_size(size);
        self
    }

    /// Sends an HTTP/2 PING every `interval` on each connection and closes
    /// the connection when no answer comes within `timeout`: a client that
    /// vanished is noticed, its calls cancelled (default: off).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.config.keepalive = Some(KeepAlive {
            interval,
            timeout,
            while_idle: true,
        });
        self
    }

    /// How often clients may ping (default [`PingPolicy::default`]: once per
    /// 5 minutes, never without a call running, as grpc-go and the C core).
    /// A client that pings more often collects a strike per PING; past
    /// [`MAX_PING_STRIKES`] its connection is closed with GOAWAY
    /// `ENHANCE_YOUR_CALM` `too_many_pings`, which tells gRPC clients to
    /// ping half as often. `None` lets clients ping at any rate.
    pub fn ping_policy(mut self, policy: Option<PingPolicy>) -> Self {
        self.config.ping_policy = policy;
        self
    }

    /// Closes a connection that has had no call running for `timeout`
    /// (default: never). This also ends connections whose peer trickles a
    /// request in byte by byte without ever completing it.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = Some(timeout);
        self
    }

    /// Checks every call before its handler runs; an `Err` status is sent
    /// back instead (for example `PERMISSION_DENIED`). This is an
    /// [`interceptor`](Self::interceptor) with only a synchronous
    /// [`on_start`](Interceptor::on_start), and takes its place in the
    /// chain.
    pub fn authorize<F>(self, hook: F) -> Self
    where
        F: Fn(&CallInfo<'_>) -> Result<(), Status> + Send + Sync + 'static,
    {
        self.interceptor(Authorize(hook))
    }

    /// Adds `interceptor` to the chain that runs around every call (see
    /// [`Interceptor`] for the order of its hooks). Calls to a method or
    /// service the server does not have are answered `UNIMPLEMENTED`
    /// without it.
    pub fn interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.config.interceptors.push(interceptor);
        self
    }

    /// Bounds, in bytes, the memory the server's calls hold for messages,
    /// across all its connections (default [`DEFAULT_MEMORY_BUDGET`];
    /// `None` for no bound). Beside the per-message limits, which bound one
    /// message, this bounds them all:
    /// - a response message is reserved (its encoded length) before it is
    ///   encoded, and given back once h2 has taken all of it, which the
    ///   peer's flow-control window paces; while the budget is spent, the
    ///   handler's next message waits, as it waits for the window;
    /// - a request message is reserved (its declared length) before its
    ///   payload is read past the first chunk, and given back when it is
    ///   handed to the handler; while the budget is spent, the call stops
    ///   reading, and HTTP/2 flow control holds the peer back;
    /// - while it is spent, new calls fail at once with `RESOURCE_EXHAUSTED`.
    ///
    /// A message larger than the whole budget fails its call with
    /// `RESOURCE_EXHAUSTED`. What is not counted: one HTTP/2 receive window
    /// and up to 32 KiB of batched small messages per call, h2's and the
    /// handlers' own state.
    pub fn memory_budget(mut self, bytes: Option<usize>) -> Self {
        self.config.memory_budget = bytes;
        self
    }

    /// Serves TLS (feature `tls`): [`Server::serve`], `serve_listener` and
    /// `serve_incoming` run a TLS handshake, ALPN `h2` required, on every
    /// connection they accept, within the
    /// [handshake timeout](Self::handshake_timeout). A client that fails
    /// it (an untrusted or missing certificate, no ALPN `h2`) is
    /// disconnected and logged; other connections are not affected.
    /// [`Server::serve_connection`] still takes the stream as it is, so a
    /// TLS stream of your own works there.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::tls::ServerTlsConfig) -> Self {
        self.config.tls = Some(config);
        self
    }

    /// Registers a service (a generated `XxxServer`, or your own [`Service`]).
    pub fn add_service(mut self, service: impl Service) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Builds the server. Fails only when no runtime was given and no
    /// runtime feature is enabled, or a TLS configuration rustls refuses.
    pub fn build(self) -> Result<Server, Error> {
        let settings = self.config;
        #[cfg(feature = "tls")]
        let tls = match &settings.tls {
            Some(config) => Some(crate::tls::Acceptor::new(config).map_err(Error::tls)?),
            None => None,
        };
        let config = ServerConfig {
            runtime: crate::rt::or_default(self.runtime)?,
            max_decoding_message_size: settings.max_decoding_message_size,
            max_encoding_message_size: settings.max_encoding_message_size,
            send_compression: settings.send_compression,
            max_concurrent_streams: settings.max_concurrent_streams,
            settings: settings.http2,
            max_pending_accept_reset_streams: settings.max_pending_accept_reset_streams,
            keepalive: settings.keepalive,
            ping_policy: settings.ping_policy,
            idle_timeout: settings.idle_timeout,
            interceptors: settings.interceptors,
            budget: settings.memory_budget.map(Budget::new),
            #[cfg(feature = "tls")]
            tls,
        };
        let routes = self
            .services
            .into_iter()
            .map(|service| (service.name().to_owned(), service))
            .collect();
        Ok(Server {
            shared: Arc::new(Shared {
                config: Arc::new(config),
                routes: RwLock::new(routes),
                shutdown: Signal::default(),
                force_shutdown: Signal::default(),
                connections: Tracker::default(),
                on_shutdown: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }
}

pub(crate) struct Shared {
    pub(crate) config: Arc<ServerConfig>,
    routes: RwLock<Routes>,
    pub(crate) shutdown: Signal,
    pub(crate) force_shutdown: Signal,
    pub(crate) connections: Tracker,
    /// Run by [`Server::shutdown`] before anything stops.
    on_shutdown: std::sync::Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
}

/// Services by name. Looked up on every call, with the name the client
/// sent; the keys are the server's own, so a hash that resists chosen
/// collisions buys nothing here, and FNV-1a costs less than SipHash
/// (`benches/README.md`, finding 16).
type Routes = HashMap<String, Arc<dyn Service>, BuildHasherDefault<RouteHasher>>;

/// FNV-1a, 64 bits.
struct RouteHasher(u64);

impl Default for RouteHasher {
    fn default() -> Self {
        RouteHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for RouteHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Shared {
    pub(crate) fn service(&self, name: &str) -> Option<Arc<dyn Service>> {
        crate::sync::read(&self.routes).get(name).cloned()
    }
}

/// A gRPC server: services plus limits, servable over TCP, libp2p streams or
/// any other byte stream, many connections at once.
///
/// Cloning is cheap and every clone serves the same services.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("services", &self.service_names())
            .field("connections", &self.shared.connections.count())
            .field("shutting_down", &self.shared.shutdown.is_fired())
            .finish()
    }
}

impl Server {
    /// A builder with default limits.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Registers (or replaces) a service; running connections see it at once.
    pub fn add_service(&self, service: impl Service) {
        let service: Arc<dyn Service> = Arc::new(service);
        crate::sync::write(&self.shared.routes).insert(service.name().to_owned(), service);
    }

    /// The names of the registered services.
    pub fn service_names(&self) -> Vec<String> {
        let mut names: Vec<String> = crate::sync::read(&self.shared.routes)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// The runtime the server runs calls on.
    pub fn runtime(&self) -> &SharedRuntime {
        &self.shared.config.runtime
    }

    /// Serves one connection over `io` until the peer closes it or the server
    /// shuts down.
    pub async fn serve_connection(&self, io: impl Io) -> Result<(), Error> {
        connection::serve(self.shared.clone(), io, http::Extensions::new()).await
    }

    /// Serves one connection; every request's extensions start as a copy of
    /// `extensions` (how transports attach the remote peer's identity).
    pub async fn serve_connection_with(
        &self,
        io: impl Io,
        extensions: http::Extensions,
    ) -> Result<(), Error> {
        connection::serve(self.shared.clone(), io, extensions).await
    }

    /// Serves every connection `incoming` yields, each in its own task,
    /// until the server shuts down or `incoming` ends. Accept errors are
    /// logged and skipped. With TLS (`ServerBuilder::tls`), each connection
    /// starts with the TLS handshake.
    pub async fn serve_incoming<S, I>(&self, incoming: S) -> Result<(), Error>
    where
        S: Stream<Item = std::io::Result<I>> + Send,
        I: Io,
    {
        self.accept_loop(incoming.map(|accepted| accepted.map(|io| (io, None))))
            .await
    }

    /// Serves TCP connections accepted by `listener` until shutdown. Every
    /// request carries the connection's [`TcpConnectInfo`]
    /// ([`Request::remote_addr`](crate::Request::remote_addr)).
    ///
    /// The runtime's reactor drives the sockets
    /// ([`Runtime::tcp_incoming`](crate::rt::Runtime::tcp_incoming)). Bind
    /// the listener yourself to learn its port first:
    ///
    /// ```no_run
    /// # async fn run(server: p2p_grpc::Server) -> Result<(), p2p_grpc::Error> {
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// println!("listening on {}", listener.local_addr()?);
    /// server.serve_listener(listener).await
    /// # }
    /// ```
    pub async fn serve_listener(&self, listener: std::net::TcpListener) -> Result<(), Error> {
        let local_addr = listener.local_addr().ok();
        let incoming = self.shared.config.runtime.tcp_incoming(listener)?;
        self.accept_loop(incoming.map(|accepted| {
            accepted.map(|(io, remote_addr)| {
                let info = TcpConnectInfo {
                    remote_addr,
                    local_addr,
                };
                (io, Some(info))
            })
        }))
        .await
    }

    /// The accept loop of [`serve_incoming`](Self::serve_incoming) and
    /// [`serve_listener`](Self::serve_listener): one task per connection.
    async fn accept_loop<S, I>(&self, incoming: S) -> Result<(), Error>
    where
        S: Stream<Item = std::io::Result<(I, Option<TcpConnectInfo>)>> + Send,
        I: Io,
    {
        let mut incoming = std::pin::pin!(incoming.take_until(self.shared.shutdown.wait()));
        while let Some(accepted) = incoming.next().await {
            match accepted {
                Ok((io, info)) => {
                    let server = self.clone();
                    self.shared.config.runtime.spawn(Box::pin(async move {
                        if let Err(err) = server.serve_accepted(io, info).await {
                            tracing::debug!(%err, "connection ended with an error");
                        }
                    }));
                }
                Err(err) => {
                    tracing::warn!(%err, "accepting a connection failed");
                    // Avoid a hot loop on persistent accept errors (EMFILE).
                    self.shared
                        .config
                        .runtime
                        .sleep(Duration::from_millis(10))
                        .await;
                }
            }
        }
        Ok(())
    }

    /// One accepted connection: the TLS handshake if configured, then
    /// HTTP/2, with what is known of the peer in every request.
    async fn serve_accepted(&self, io: impl Io, info: Option<TcpConnectInfo>) -> Result<(), Error> {
        let mut extensions = http::Extensions::new();
        if let Some(info) = info {
            extensions.insert(info);
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.shared.config.tls {
            let _live = self.shared.connections.enter();
            let handshake = tls.accept(Box::new(io));
            let mut forced = self.shared.force_shutdown.wait();
            let mut refused = None;
            let limited = crate::http2::handshake::limited(
                async {
                    handshake.await.map_err(|(err, io)| {
                        refused = io;
                        Error::tls(err)
                    })
                },
                &self.shared.config.runtime,
                self.shared.config.settings.handshake_timeout,
                Some(&mut forced),
                "TLS handshake",
            );
            let result = limited.await;
            let (io, certificates) = match result {
                Ok(accepted) => accepted,
                Err(err) => {
                    let remote = info.map(|info| info.remote_addr);
                    tracing::debug!(%err, ?remote, "TLS handshake failed");
                    if let Some(io) = refused {
                        // Let the alert reach the client before the socket
                        // closes; the outcome does not matter.
                        let _ = crate::http2::handshake::limited(
                            async {
                                crate::tls::linger(io).await;
                                Ok(())
                            },
                            &self.shared.config.runtime,
                            TLS_LINGER,
                            Some(&mut forced),
                            "TLS close",
                        )
                        .await;
                    }
                    return Err(err);
                }
            };
            if let Some(certificates) = certificates {
                extensions.insert(certificates);
            }
            // `connection::serve` counts the connection from here on.
            drop(_live);
            return connection::serve(self.shared.clone(), io, extensions).await;
        }
        connection::serve(self.shared.clone(), io, extensions).await
    }

    /// Binds `addr` and serves TCP connections on it until shutdown.
    pub async fn serve(&self, addr: SocketAddr) -> Result<(), Error> {
        let listener = std::net::TcpListener::bind(addr)?;
        self.serve_listener(listener).await
    }

    /// Binds a Unix domain socket at `path` and serves its connections
    /// until shutdown (with TLS, `ServerBuilder::tls`, when configured).
    /// A socket file left at `path` by an earlier run is an error: remove
    /// it first. Clients reach it with
    /// `Channel::builder().connect_to("unix:///path")`.
    #[cfg(unix)]
    pub async fn serve_unix(&self, path: impl AsRef<std::path::Path>) -> Result<(), Error> {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        self.serve_unix_listener(listener).await
    }

    /// Serves the connections a bound Unix domain socket `listener`
    /// accepts, until shutdown.
    #[cfg(unix)]
    pub async fn serve_unix_listener(
        &self,
        listener: std::os::unix::net::UnixListener,
    ) -> Result<(), Error> {
        let incoming = crate::rt::unix_incoming(listener)?;
        self.serve_incoming(incoming).await
    }

    /// [`service_names`](Self::service_names), through a handle that does
    /// not keep the server alive (for a service of the server that lists
    /// its siblings: server reflection).
    pub(crate) fn service_names_later(&self) -> impl Fn() -> Vec<String> + Send + Sync + 'static {
        let shared = Arc::downgrade(&self.shared);
        move || match shared.upgrade() {
            Some(shared) => Server { shared }.service_names(),
            None => Vec::new(),
        }
    }

    /// Runs `hook` when [`shutdown`](Self::shutdown) starts, before the
    /// server stops accepting calls (how the health service turns
    /// NOT_SERVING first).
    pub(crate) fn on_shutdown(&self, hook: Box<dyn Fn() + Send + Sync>) {
        crate::sync::lock(&self.shared.on_shutdown).push(hook);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_fired()
    }

    /// Number of connections being served now.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.count()
    }

    /// Bytes of the [memory budget](ServerBuilder::memory_budget) the
    /// server's calls hold now (0 without a budget).
    pub fn memory_in_use(&self) -> usize {
        self.shared
            .config
            .budget
            .as_ref()
            .map_or(0, |budget| budget.used())
    }

    /// Shuts down gracefully: stops accepting connections and calls (HTTP/2
    /// GOAWAY), lets running calls finish for up to `grace`, then closes what
    /// is left (those calls end with `UNAVAILABLE`). Resolves once every
    /// connection is closed.
    pub async fn shutdown(&self, grace: Duration) {
        for hook in crate::sync::lock(&self.shared.on_shutdown).iter() {
            hook();
        }
        self.shared.shutdown.fire();
        let idle = self.shared.connections.wait_idle();
        let timer = self.shared.config.runtime.sleep(grace);
        if let futures::future::Either::Right(_) =
            futures::future::select(std::pin::pin!(idle), timer).await
        {
            tracing::debug!(
                connections = self.shared.connections.count(),
                "grace period over; closing remaining connections"
            );
            self.shared.force_shutdown.fire();
            self.shared.connections.wait_idle().await;
        }
    }
}
