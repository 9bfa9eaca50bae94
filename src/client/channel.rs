//! [`Channel`]: a cloneable handle on one HTTP/2 connection, re-established
//! through a [`Connector`] when it breaks.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use h2::client::SendRequest;
use http::uri::{Authority, Scheme};
use http::HeaderValue;

use super::backoff::{Backoff, BackoffState};
use super::balance::{Balancer, LoadBalancing};
use super::intercept::{Chain, Interceptor};
use super::retry::{RetryPolicy, ServiceConfig, Throttle};
use super::target::Target;
use crate::http2::errors::status_from_h2;
pub use crate::http2::keepalive::MIN_CLIENT_INTERVAL as MIN_KEEPALIVE_INTERVAL;
use crate::http2::keepalive::{ClientKeepAlive, KeepAlive};
use crate::http2::recv::ConnectionFlag;
use crate::http2::settings::Http2Settings;
use crate::http2::{handshake, keepalive};
use crate::io::{BoxIo, Io};
use crate::rt::SharedRuntime;
use crate::sync::Tracker;
use crate::{Error, Status};

/// Opens a new byte stream to the server: how a [`Channel`] reconnects after
/// its connection broke (a TCP connect, a libp2p `open_stream`, ...).
///
/// Any `Fn() -> impl Future<Output = io::Result<BoxIo>>` closure is a connector.
pub trait Connector: Send + Sync + 'static {
    /// Opens a fresh stream.
    fn connect(&self) -> BoxFuture<'static, io::Result<BoxIo>>;
}

impl<F, Fut> Connector for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<BoxIo>> + Send + 'static,
{
    fn connect(&self) -> BoxFuture<'static, io::Result<BoxIo>> {
        Box::pin(self())
    }
}

/// The shortest time a connection attempt may take, by default (gRPC's
/// minimum connect timeout; see [`ChannelBuilder::connect_timeout`]).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The `user-agent` of every call, in the form the gRPC spec recommends
/// (`grpc-<language>-<variant>/<version>`).
pub const USER_AGENT: &str = concat!("grpc-rust-p2p-grpc/", env!("CARGO_PKG_VERSION"));

/// Configures a [`Channel`].
#[derive(Clone)]
pub struct ChannelBuilder {
    runtime: Option<SharedRuntime>,
    authority: Authority,
    user_agent: HeaderValue,
    settings: Http2Settings,
    keepalive: Option<KeepAlive>,
    keepalive_floor: Duration,
    backoff: Backoff,
    connect_timeout: Duration,
    service_config: Option<Arc<ServiceConfig>>,
    /// `https` when the channel runs TLS itself.
    scheme: Scheme,
    /// Put into the extensions of every response (see
    /// [`endpoint_extension`](Self::endpoint_extension)).
    endpoint: Arc<http::Extensions>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ClientTlsConfig>,
}

impl fmt::Debug for ChannelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelBuilder")
            .field("authority", &self.authority)
            .field("settings", &self.settings)
            .field("keepalive", &self.keepalive)
            .finish_non_exhaustive()
    }
}

impl Default for ChannelBuilder {
    fn default() -> Self {
        ChannelBuilder {
            runtime: None,
            authority: Authority::from_static("localhost"),
            user_agent: HeaderValue::from_static(USER_AGENT),
            settings: Http2Settings::default(),
            keepalive: None,
            keepalive_floor: MIN_KEEPALIVE_INTERVAL,
            backoff: Backoff::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            service_config: None,
            scheme: Scheme::HTTP,
            endpoint: Arc::new(http::Extensions::new()),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ChannelBuilder {
    /// The runtime that drives the connection and times deadlines (default:
    /// the one chosen by the enabled features).
    pub fn runtime(mut self, runtime: SharedRuntime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The `:authority` sent with every call (default `localhost`; the TCP
    /// helpers use the address dialed).
    pub fn authority(mut self, authority: Authority) -> Self {
        self.authority = authority;
        self
    }

    /// Puts `user_agent` in front of the `user-agent` sent with every call,
    /// as grpc-go does: `"my-app/1.2 grpc-rust-p2p-grpc/0.1.0"`. (The gRPC
    /// part alone, `grpc-rust-p2p-grpc/<version>`, is the default.)
    pub fn user_agent(mut self, user_agent: HeaderValue) -> Self {
        let mut joined = user_agent.as_bytes().to_vec();
        joined.push(b' ');
        joined.extend_from_slice(USER_AGENT.as_bytes());
        // Both parts are valid header values and a space is allowed.
        if let Ok(value) = HeaderValue::from_bytes(&joined) {
            self.user_agent = value;
        }
        self
    }

    crate::http2::settings::http2_setters!(settings);

    /// Takes `size` as the largest frame payload unless
    /// [`max_frame_size`](Self::max_frame_size) set one (a transport's
    /// default).
    #[cfg(feature = "libp2p")]
    pub(crate) fn or_max_frame_size(mut self, size: u32) -> Self {
        self.settings.or_max_frame_size(size);
        self
    }

    /// Sends an HTTP/2 PING every `interval` while calls are running, and
    /// drops the connection when no answer comes within `timeout`: calls in
    /// flight then fail with `UNAVAILABLE` instead of hanging on a peer that
    /// vanished (default: off).
    ///
    /// As gRPC's keepalive design (proposal A8) asks: `interval` is at least
    /// [`MIN_KEEPALIVE_INTERVAL`] (10 s; shorter ones are raised to it), no
    /// PING goes out while no call runs unless
    /// [`keepalive_while_idle`](Self::keepalive_while_idle) is set, and when
    /// a server answers with GOAWAY `ENHANCE_YOUR_CALM` `too_many_pings`
    /// the interval doubles for the connections opened after it (logged as
    /// a warning). grpc-go and C-core servers accept one PING per 5 minutes
    /// by default: a shorter interval needs a server configured for it.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        let while_idle = self.keepalive.is_some_and(|k| k.while_idle);
        self.keepalive = Some(KeepAlive {
            interval,
            timeout,
            while_idle,
        });
        self
    }

    /// Pings also while no call is running (default: no). Takes effect with
    /// [`keepalive`](Self::keepalive); servers refuse such pings unless they
    /// permit them (grpc-go's `PermitWithoutStream`).
    pub fn keepalive_while_idle(mut self, while_idle: bool) -> Self {
        if let Some(keepalive) = self.keepalive.as_mut() {
            keepalive.while_idle = while_idle;
        }
        self
    }

    /// Runs TLS (feature `tls`) on every TCP connection the channel opens
    /// ([`connect_tcp`](Self::connect_tcp)), ALPN `h2` required, within the
    /// [handshake timeout](Self::handshake_timeout). The server's
    /// certificate is checked against the config's
    /// [`server_name`](crate::tls::ClientTlsConfig::server_name), else the
    /// host of the [authority](Self::authority), else the IP address
    /// dialed. [`connect`](Self::connect) takes its stream as it is, so a
    /// TLS stream of your own works there.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::tls::ClientTlsConfig) -> Self {
        self.tls = Some(config);
        self.scheme = Scheme::HTTPS;
        self
    }

    /// The delays between failed connection attempts of a reconnecting
    /// channel (default: gRPC's, see [`Backoff`]). While the channel waits
    /// to try again, calls fail at once with `UNAVAILABLE` and the last
    /// attempt's error, unless they [wait for
    /// ready](crate::Request::set_wait_for_ready).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Per-method retry policies and retry throttling (gRPC's proposal
    /// A6), in code or from a service config's JSON
    /// ([`ServiceConfig::from_json`]). Calls of all four kinds are retried
    /// under them; streaming ones replay the requests they had sent (up to
    /// 256 KiB a call).
    pub fn service_config(mut self, config: ServiceConfig) -> Self {
        self.service_config = Some(Arc::new(config));
        self
    }

    /// The shortest time a connection attempt may take: opening the byte
    /// stream (the TCP connect, DNS included), TLS and the HTTP/2 handshake
    /// (default 20 s, gRPC's minimum connect timeout). An attempt may run
    /// as long as its backoff delay when that is longer.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Lowers the keepalive interval floor below the 10 s gRPC requires:
    /// for tests only, which would otherwise wait that long.
    #[doc(hidden)]
    pub fn keepalive_floor_for_tests(mut self, floor: Duration) -> Self {
        self.keepalive_floor = floor;
        self
    }

    /// Puts `value` into the extensions of every response of the channel's
    /// calls, to tell which endpoint served them (over libp2p, the peer).
    #[cfg(feature = "libp2p")]
    pub(crate) fn endpoint_extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.endpoint).insert(value);
        self
    }

    fn into_inner(self, connector: Option<Box<dyn Connector>>) -> Result<Inner, Error> {
        let runtime = crate::rt::or_default(self.runtime.clone())?;
        let keepalive = self.keepalive.map(|mut keepalive| {
            if keepalive.interval < self.keepalive_floor {
                tracing::warn!(
                    interval = ?keepalive.interval,
                    floor = ?self.keepalive_floor,
                    "keepalive interval raised to the minimum gRPC allows"
                );
                keepalive.interval = self.keepalive_floor;
            }
            ClientKeepAlive::new(keepalive)
        });
        Ok(Inner {
            runtime,
            keepalive,
            throttle: self.service_config.as_ref().and_then(|c| c.throttle()),
            backoff: Arc::new(BackoffState::default()),
            config: self,
            current: Mutex::new(None),
            connect_lock: futures::lock::Mutex::new(()),
            connector,
        })
    }

    /// Runs HTTP/2 over an already open byte stream. The channel cannot
    /// reconnect: once the stream breaks, calls fail with `UNAVAILABLE`.
    pub async fn connect(self, io: impl Io) -> Result<Channel, Error> {
        let inner = self.into_inner(None)?;
        let connection = inner.handshake(Box::new(io)).await?;
        *inner.lock_current() = Some(connection);
        Ok(Channel {
            inner: Arc::new(inner),
            balancer: None,
            interceptors: no_interceptors(),
        })
    }

    /// A channel that opens its connection through `connector` at the first
    /// call, and opens a fresh one whenever the current one has broken.
    pub fn connect_lazy(self, connector: impl Connector) -> Result<Channel, Error> {
        let inner = self.into_inner(Some(Box::new(connector)))?;
        Ok(Channel {
            inner: Arc::new(inner),
            balancer: None,
            interceptors: no_interceptors(),
        })
    }

    /// Connects over TCP to `addr` now, and reconnects there after a failure.
    /// With TLS (`tls`, feature `tls`), each connection starts with the TLS handshake.
    pub async fn connect_tcp(mut self, addr: SocketAddr) -> Result<Channel, Error> {
        if self.authority == Authority::from_static("localhost") {
            if let Ok(authority) = Authority::try_from(addr.to_string()) {
                self.authority = authority;
            }
        }
        self.connect_endpoint(Endpoint::Addr(addr)).await
    }

    /// Connects to a target URI now, and reconnects there after a failure:
    ///
    /// - `http://host:port` (port 80 by default): plaintext HTTP/2;
    /// - `https://host:port` (443): TLS (feature `tls`), with the
    ///   config given to `tls`, else one trusting the Mozilla roots;
    /// - `dns:///host:port`, or `host:port` (443): plaintext unless a TLS
    ///   config is given;
    /// - `unix:///absolute/path` or `unix:relative/path`: a Unix domain
    ///   socket.
    ///
    /// A host name is resolved at every connection attempt (so a failed
    /// connection re-resolves), through the runtime's
    /// [`resolve`](crate::rt::Runtime::resolve); the addresses are tried in
    /// turn until one connects (pick-first). The `:authority` of the calls
    /// is `host:port` unless [`authority`](Self::authority) set another.
    /// A target that cannot be parsed is an error
    /// ([`Error::is_invalid_target`]); a name that does not resolve fails
    /// the connect, and later calls with `UNAVAILABLE`, saying which name.
    pub async fn connect_to(self, target: &str) -> Result<Channel, Error> {
        let (builder, endpoint) = self.for_target(target)?;
        builder.connect_endpoint(endpoint).await
    }

    /// [`connect_to`](Self::connect_to), without connecting now: the first
    /// call connects (and a failure there is its `UNAVAILABLE` status). The
    /// target is parsed now.
    pub fn connect_to_lazy(self, target: &str) -> Result<Channel, Error> {
        let (builder, endpoint) = self.for_target(target)?;
        let runtime = crate::rt::or_default(builder.runtime.clone())?;
        let dial = builder.dialer(runtime, endpoint)?;
        builder.connect_lazy(move || dial.dial())
    }

    /// A channel that spreads calls over several endpoints, each a target
    /// as [`connect_to`](Self::connect_to) takes it, with one HTTP/2
    /// connection per endpoint, opened at the first call that needs it.
    ///
    /// An endpoint whose connection fails leaves the rotation (its calls in
    /// flight fail with `UNAVAILABLE`; the others are not touched); it is
    /// reconnected in the background, within its own
    /// [backoff](Self::backoff), and rejoins once connected. A call fails
    /// with `UNAVAILABLE` only when no endpoint can be reached (or waits,
    /// with [`wait_for_ready`](crate::Request::set_wait_for_ready)).
    pub fn balance<'a>(
        self,
        targets: impl IntoIterator<Item = &'a str>,
        policy: LoadBalancing,
    ) -> Result<Channel, Error> {
        let channels = targets
            .into_iter()
            .map(|target| self.clone().connect_to_lazy(target))
            .collect::<Result<Vec<_>, _>>()?;
        Channel::balanced(channels, policy)
    }

    /// [`balance`](Self::balance) over the addresses a name resolves to
    /// now: one endpoint (and connection) per address, each with the
    /// name's authority and, over TLS, its certificate name. A target that
    /// is a single address or a Unix socket gives one endpoint.
    pub async fn balance_resolved(
        self,
        target: &str,
        policy: LoadBalancing,
    ) -> Result<Channel, Error> {
        let (builder, endpoint) = self.for_target(target)?;
        let Endpoint::Name { host, port } = &endpoint else {
            return builder.balance_endpoints(vec![endpoint], policy);
        };
        let runtime = crate::rt::or_default(builder.runtime.clone())?;
        let addrs = runtime.resolve(host, *port).await.map_err(|err| {
            std::io::Error::new(err.kind(), format!("resolving {host:?} failed: {err}"))
        })?;
        if addrs.is_empty() {
            return Err(Error::from(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host:?} resolved to no address"),
            )));
        }
        builder.balance_endpoints(addrs.into_iter().map(Endpoint::Addr).collect(), policy)
    }

    /// One lazy channel per endpoint, under `policy`.
    fn balance_endpoints(
        self,
        endpoints: Vec<Endpoint>,
        policy: LoadBalancing,
    ) -> Result<Channel, Error> {
        let runtime = crate::rt::or_default(self.runtime.clone())?;
        let channels = endpoints
            .into_iter()
            .map(|endpoint| {
                let dial = self.dialer(runtime.clone(), endpoint)?;
                self.clone().connect_lazy(move || dial.dial())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Channel::balanced(channels, policy)
    }

    /// The builder (TLS and authority as the target asks) and the endpoint
    /// of `target`.
    fn for_target(mut self, target: &str) -> Result<(Self, Endpoint), Error> {
        let target = Target::parse(target).map_err(|bad| Error::invalid_target(bad.to_string()))?;
        let endpoint = match target {
            Target::Host { host, port, tls } => {
                if tls {
                    self = self.tls_for_https(target_text(&host, port))?;
                }
                if self.authority == Authority::from_static("localhost") {
                    if let Ok(authority) = Authority::try_from(target_text(&host, port)) {
                        self.authority = authority;
                    }
                }
                Endpoint::Name { host, port }
            }
            Target::Unix(path) => Endpoint::Unix(path),
        };
        Ok((self, endpoint))
    }

    /// `https://` asks for TLS: the config given, or a default one.
    #[cfg(feature = "tls")]
    fn tls_for_https(mut self, _target: String) -> Result<Self, Error> {
        if self.tls.is_none() {
            self = self.tls(crate::tls::ClientTlsConfig::new());
        }
        Ok(self)
    }

    #[cfg(not(feature = "tls"))]
    fn tls_for_https(self, target: String) -> Result<Self, Error> {
        Err(Error::invalid_target(format!(
            "https://{target} needs p2p-grpc's `tls` feature"
        )))
    }

    /// Connects to `endpoint` now (the first connection's error is returned
    /// as it is: the socket's, TLS's, or the handshake's), and reconnects
    /// there after a failure.
    async fn connect_endpoint(self, endpoint: Endpoint) -> Result<Channel, Error> {
        let runtime = crate::rt::or_default(self.runtime.clone())?;
        let dial = self.dialer(runtime.clone(), endpoint)?;
        let first = dial.clone();
        let connect_timeout = self.connect_timeout;
        let channel = self.connect_lazy(move || dial.dial())?;
        let io = handshake::limited(
            first.dial_typed(),
            &runtime,
            connect_timeout,
            None,
            "connecting",
        )
        .await?;
        let connection = channel.inner.handshake(io).await?;
        channel.inner.backoff.succeeded();
        *channel.inner.lock_current() = Some(connection);
        Ok(channel)
    }

    /// How this builder's channels open a connection to `endpoint`.
    fn dialer(&self, runtime: SharedRuntime, endpoint: Endpoint) -> Result<Dialer, Error> {
        #[cfg(feature = "tls")]
        let tls = match &self.tls {
            Some(config) => Some(crate::tls::Connector::new(config).map_err(Error::tls)?),
            None => None,
        };
        Ok(Dialer {
            runtime,
            endpoint: Arc::new(endpoint),
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "tls")]
            host: self.authority.host().to_owned(),
            #[cfg(feature = "tls")]
            handshake_timeout: self.settings.handshake_timeout,
        })
    }
}

/// `host:port`, with brackets around an IPv6 address.
fn target_text(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Where a [`Dialer`] connects.
#[derive(Debug)]
enum Endpoint {
    /// One socket address.
    Addr(SocketAddr),
    /// A name, resolved at every attempt; its addresses tried in turn.
    Name { host: String, port: u16 },
    /// A Unix domain socket.
    Unix(std::path::PathBuf),
}

/// Opens one connection: the byte stream, then TLS when configured.
#[derive(Clone)]
struct Dialer {
    runtime: SharedRuntime,
    endpoint: Arc<Endpoint>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::Connector>,
    #[cfg(feature = "tls")]
    host: String,
    #[cfg(feature = "tls")]
    handshake_timeout: Duration,
}

impl Dialer {
    /// A fresh connection, with its error typed ([`Error::as_tls`] for a
    /// failed TLS handshake).
    async fn dial_typed(&self) -> Result<BoxIo, Error> {
        let io = self.open().await?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return handshake::limited(
                async { tls.connect(&self.host, io).await.map_err(Error::tls) },
                &self.runtime,
                self.handshake_timeout,
                None,
                "TLS handshake",
            )
            .await;
        }
        Ok(io)
    }

    /// The byte stream: a TCP connection (to the first address of a name
    /// that accepts one), or a Unix socket.
    async fn open(&self) -> io::Result<BoxIo> {
        match &*self.endpoint {
            Endpoint::Addr(addr) => self.runtime.tcp_connect(*addr).await,
            Endpoint::Name { host, port } => {
                let addrs = self.runtime.resolve(host, *port).await.map_err(|err| {
                    io::Error::new(err.kind(), format!("resolving {host:?} failed: {err}"))
                })?;
                let mut failures = Vec::new();
                for addr in &addrs {
                    match self.runtime.tcp_connect(*addr).await {
                        Ok(io) => return Ok(io),
                        Err(err) => failures.push(format!("{addr}: {err}")),
                    }
                }
                Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    if addrs.is_empty() {
                        format!("{host:?} resolved to no address")
                    } else {
                        format!("no address of {host:?} accepted: {}", failures.join("; "))
                    },
                ))
            }
            #[cfg(unix)]
            Endpoint::Unix(path) => crate::rt::unix_connect(path.clone()).await,
            #[cfg(not(unix))]
            Endpoint::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Unix domain sockets need a Unix system",
            )),
        }
    }

    /// [`dial_typed`](Self::dial_typed), for a [`Connector`].
    fn dial(&self) -> BoxFuture<'static, io::Result<BoxIo>> {
        let dialer = self.clone();
        Box::pin(async move { dialer.dial_typed().await.map_err(Error::into_io_error) })
    }
}

/// A live HTTP/2 connection: the handle to open streams and a flag its
/// driver task clears when the connection ends.
#[derive(Clone)]
struct Connection {
    send: SendRequest<Bytes>,
    alive: Arc<AtomicBool>,
    calls: Tracker,
    /// What the responses of this connection's calls carry in their
    /// extensions (over libp2p, the peer).
    endpoint: Arc<http::Extensions>,
}

impl Connection {
    fn flag(&self) -> ConnectionFlag {
        ConnectionFlag::new(
            self.alive.clone(),
            self.calls.clone(),
            self.endpoint.clone(),
        )
    }
}

struct Inner {
    runtime: SharedRuntime,
    keepalive: Option<ClientKeepAlive>,
    /// Retry throttling, shared by every call of the channel.
    throttle: Option<Throttle>,
    backoff: Arc<BackoffState>,
    config: ChannelBuilder,
    current: Mutex<Option<Connection>>,
    connect_lock: futures::lock::Mutex<()>,
    connector: Option<Box<dyn Connector>>,
}

impl Inner {
    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        crate::sync::lock(&self.current)
    }

    fn live(&self) -> Option<Connection> {
        self.lock_current()
            .as_ref()
            .filter(|connection| connection.alive.load(Ordering::Acquire))
            .cloned()
    }

    async fn handshake(&self, io: BoxIo) -> Result<Connection, Error> {
        let settings = &self.config.settings;
        let mut builder = settings.client();
        builder
            // After a call is cancelled (dropped, deadline passed), frames
            // the server had in flight for it arrive on a stream h2 may
            // have forgotten; h2 answers each with a RST_STREAM that it
            // counts, for the connection's whole life, against a limit
            // meant to stop peers that provoke resets (1024 by default).
            // A client cancelling calls on a long-lived connection would
            // reach it and tear its own connection down with
            // ENHANCE_YOUR_CALM (hyperium/h2#856). The resets come from our
            // own cancellations, so the limit is lifted on the client side.
            .max_local_error_reset_streams(None)
            .enable_push(false);
        let tap = self.keepalive.as_ref().map(ClientKeepAlive::tap);
        let handshake = builder.handshake::<_, Bytes>(crate::io::for_h2(io, tap));
        let (send, mut connection) = handshake::limited(
            async { handshake.await.map_err(Error::http2) },
            &self.runtime,
            settings.handshake_timeout,
            None,
            "HTTP/2 handshake",
        )
        .await?;
        let calls = Tracker::default();
        let pinger = keepalive::pinger(
            self.keepalive.as_ref().map(ClientKeepAlive::current),
            connection.ping_pong(),
            &self.runtime,
            Some(calls.clone()),
        );
        let alive = Arc::new(AtomicBool::new(true));
        let flag = alive.clone();
        self.runtime.spawn(Box::pin(async move {
            // The connection is driven here; dropping it (keepalive failure)
            // fails every stream still open on it.
            let ended = match pinger {
                None => connection.await.map_err(Error::http2),
                Some(pinger) => {
                    match futures::future::select(connection, std::pin::pin!(pinger)).await {
                        futures::future::Either::Left((result, _)) => result.map_err(Error::http2),
                        futures::future::Either::Right((err, connection)) => {
                            // Marked dead before the streams learn of it.
                            flag.store(false, Ordering::Release);
                            drop(connection);
                            Err(err)
                        }
                    }
                }
            };
            flag.store(false, Ordering::Release);
            if let Err(err) = ended {
                tracing::debug!(%err, "client connection ended with an error");
            }
        }));
        Ok(Connection {
            send,
            alive,
            calls,
            endpoint: self.config.endpoint.clone(),
        })
    }

    /// The live connection, opening a new one through the connector when
    /// there is none. While the channel backs off after a failed attempt,
    /// fails at once with that attempt's error, or (`wait_for_ready`)
    /// waits and tries again until the call's deadline ends the wait.
    async fn connection(&self, wait_for_ready: bool) -> Result<Connection, Status> {
        loop {
            if let Some(connection) = self.live() {
                return Ok(connection);
            }
            let Some(connector) = &self.connector else {
                return Err(Status::unavailable("connection closed"));
            };
            if let Some((status, wait)) = self.backoff.waiting() {
                if !wait_for_ready {
                    return Err(status);
                }
                wait.await;
                continue;
            }
            let _connecting = self.connect_lock.lock().await;
            if let Some(connection) = self.live() {
                return Ok(connection);
            }
            if self.backoff.waiting().is_some() {
                // Another call's attempt failed while this one queued.
                continue;
            }
            // Boxed: connecting is rare, and its futures (the connector's,
            // TLS, the HTTP/2 handshake) would otherwise make every call's
            // future as large as all of them together.
            match Box::pin(self.attempt(connector.as_ref())).await {
                Ok(connection) => {
                    *self.lock_current() = Some(connection.clone());
                    return Ok(connection);
                }
                Err(status) if wait_for_ready => {
                    tracing::debug!(%status, "connection attempt failed; waiting to retry");
                }
                Err(status) => return Err(status),
            }
        }
    }

    /// One connection attempt, under the connect timeout; a failure starts
    /// the backoff wait, counted from the attempt's start.
    async fn attempt(&self, connector: &dyn Connector) -> Result<Connection, Status> {
        let backoff = self.config.backoff;
        let delay = backoff.delay(self.backoff.attempt(), fastrand::f64());
        let next_attempt = self.runtime.sleep(delay);
        let limit = delay.max(self.config.connect_timeout);
        let result = handshake::limited(
            async {
                Ok::<_, Error>(
                    async {
                        let io = connector.connect().await.map_err(|err| {
                            Status::unavailable(format!("connecting failed: {err}"))
                        })?;
                        self.handshake(io).await.map_err(|err| {
                            Status::unavailable(format!("HTTP/2 handshake failed: {err}"))
                        })
                    }
                    .await,
                )
            },
            &self.runtime,
            limit,
            None,
            "connecting",
        )
        .await;
        let status = match result {
            Ok(Ok(connection)) => {
                self.backoff.succeeded();
                return Ok(connection);
            }
            Ok(Err(status)) => status,
            Err(timeout) => Status::unavailable(format!(
                "connecting failed: no connection within {limit:?} ({timeout})"
            )),
        };
        tracing::debug!(%status, ?delay, "connection attempt failed; backing off");
        self.backoff.failed(status.clone());
        let state = self.backoff.clone();
        self.runtime.spawn(Box::pin(async move {
            next_attempt.await;
            state.wait_over();
        }));
        Err(status)
    }
}

/// A client's handle on a server: one HTTP/2 connection carrying any number
/// of concurrent calls. Cheap to clone; clones share the connection.
///
/// Build one with [`Channel::connect`] over any byte stream,
/// [`Channel::connect_tcp`], or [`Channel::builder`] for settings and
/// reconnecting channels. Calls are made through generated clients or
/// [`Grpc`](super::Grpc).
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
    /// A balanced channel's endpoints (`inner` is then the first one's).
    balancer: Option<Arc<Balancer>>,
    /// Run around every call, in order (empty: none).
    interceptors: Chain,
}

fn no_interceptors() -> Chain {
    Arc::new([])
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("authority", &self.inner.config.authority)
            .field("connected", &self.is_connected())
            .field("reconnects", &self.inner.connector.is_some())
            .field(
                "endpoints",
                &self.balancer.as_ref().map_or(1, |b| b.channels().len()),
            )
            .field("interceptors", &self.interceptors.len())
            .finish()
    }
}

impl Channel {
    /// A channel over `channels` (one per endpoint, at least one).
    pub(crate) fn balanced(
        channels: Vec<Channel>,
        policy: LoadBalancing,
    ) -> Result<Channel, Error> {
        Channel::balanced_with(channels, policy, None)
    }

    /// [`balanced`](Self::balanced), with a source of new endpoints for
    /// when some fail.
    pub(crate) fn balanced_with(
        channels: Vec<Channel>,
        policy: LoadBalancing,
        refresh: Option<super::balance::Refresh>,
    ) -> Result<Channel, Error> {
        let Some(first) = channels.first() else {
            return Err(Error::invalid_target(
                "a balanced channel needs at least one target".to_owned(),
            ));
        };
        Ok(Channel {
            inner: first.inner.clone(),
            balancer: Some(Arc::new(Balancer::new(channels, policy, refresh))),
            interceptors: no_interceptors(),
        })
    }

    /// A builder for settings and reconnecting channels.
    pub fn builder() -> ChannelBuilder {
        ChannelBuilder::default()
    }

    /// Runs HTTP/2 over an open byte stream with default settings.
    pub async fn connect(io: impl Io) -> Result<Channel, Error> {
        ChannelBuilder::default().connect(io).await
    }

    /// Connects over TCP with default settings (reconnecting after failures).
    pub async fn connect_tcp(addr: SocketAddr) -> Result<Channel, Error> {
        ChannelBuilder::default().connect_tcp(addr).await
    }

    /// This channel, with `interceptor` added to the chain that runs around
    /// each of its calls (see [`Interceptor`] for when its hooks run). The
    /// new channel shares this one's connections; this one is unchanged.
    pub fn with_interceptor(&self, interceptor: impl Interceptor) -> Channel {
        let mut chain = self.interceptors.to_vec();
        chain.push(Arc::new(interceptor));
        Channel {
            inner: self.inner.clone(),
            balancer: self.balancer.clone(),
            interceptors: chain.into(),
        }
    }

    /// The channel's interceptors.
    pub(crate) fn interceptors(&self) -> &Chain {
        &self.interceptors
    }

    /// The keepalive interval the next connection uses: the one configured
    /// (raised to [`MIN_KEEPALIVE_INTERVAL`]), doubled each time a server
    /// answered `too_many_pings`. `None` without keepalive.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        self.inner.keepalive.as_ref().map(|k| k.current().interval)
    }

    /// Whether the channel holds a live connection now.
    pub fn is_connected(&self) -> bool {
        match &self.balancer {
            None => self.inner.live().is_some(),
            Some(balancer) => balancer.channels().iter().any(Channel::is_connected),
        }
    }

    /// How many endpoints of a [balanced](ChannelBuilder::balance) channel
    /// are connected now (1 or 0 for a channel of one endpoint).
    pub fn connected_endpoints(&self) -> usize {
        match &self.balancer {
            None => usize::from(self.is_connected()),
            Some(balancer) => balancer
                .channels()
                .iter()
                .filter(|c| c.is_connected())
                .count(),
        }
    }

    /// Whether the channel waits out a backoff delay after a failed
    /// connection attempt.
    pub(crate) fn is_backing_off(&self) -> bool {
        self.inner.backoff.waiting().is_some()
    }

    pub(crate) fn runtime(&self) -> &SharedRuntime {
        &self.inner.runtime
    }

    pub(crate) fn authority(&self) -> &Authority {
        &self.inner.config.authority
    }

    /// The retry policy of the call `path`, and the channel's throttle.
    pub(crate) fn retry_policy(&self, path: &str) -> (Option<&RetryPolicy>, Option<&Throttle>) {
        let policy = self
            .inner
            .config
            .service_config
            .as_ref()
            .and_then(|config| config.policy_for(path));
        (policy, self.inner.throttle.as_ref())
    }

    pub(crate) fn scheme(&self) -> &Scheme {
        &self.inner.config.scheme
    }

    pub(crate) fn user_agent(&self) -> &HeaderValue {
        &self.inner.config.user_agent
    }

    /// A handle ready to open a stream, with the flag of its connection. A
    /// broken connection is replaced (once) when the channel can reconnect.
    pub(crate) async fn ready(
        &self,
        wait_for_ready: bool,
    ) -> Result<(SendRequest<Bytes>, ConnectionFlag), Status> {
        match &self.balancer {
            None => self.ready_single(wait_for_ready).await,
            Some(balancer) => balancer.ready(wait_for_ready).await,
        }
    }

    /// [`ready`](Self::ready) on this channel's own connection.
    pub(crate) async fn ready_single(
        &self,
        wait_for_ready: bool,
    ) -> Result<(SendRequest<Bytes>, ConnectionFlag), Status> {
        let connection = self.inner.connection(wait_for_ready).await?;
        let flag = connection.flag();
        match connection.send.ready().await {
            Ok(send) => Ok((send, flag)),
            Err(err) if self.inner.connector.is_some() => {
                tracing::debug!(%err, "connection broke; reconnecting");
                flag.mark_broken();
                let connection = self.inner.connection(wait_for_ready).await?;
                let flag = connection.flag();
                let send = connection
                    .send
                    .ready()
                    .await
                    .map_err(|err| status_from_h2(&err))?;
                Ok((send, flag))
            }
            Err(err) => Err(status_from_h2(&err)),
        }
    }
}
