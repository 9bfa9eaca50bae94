//! Server interceptors: code that runs around every call, before its
//! handler and when it ends, chained in the order they were added.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::connect_info::TcpConnectInfo;
use crate::http2::observe::{CallCounters, CallKind, CallStats};
use crate::{MetadataMap, Status};

/// Runs around every call a server answers, whatever its kind. Add one with
/// [`ServerBuilder::interceptor`](super::ServerBuilder::interceptor).
///
/// The hooks of a chain run in this order:
/// 1. [`on_start`](Self::on_start) of each interceptor, in the order they
///    were added, before the handler runs. An `Err` refuses the call with
///    that status (the later interceptors and the handler never see it).
///    It may read the call's [`CallInfo`] (service, method, kind, metadata,
///    peer, deadline) and change its metadata and extensions, which the
///    handler then reads from its [`Request`](crate::Request);
/// 2. [`on_response_headers`](Self::on_response_headers), last added first,
///    just before the response headers go out (not for an answer that is a
///    status only);
/// 3. [`on_end`](Self::on_end), last added first, once the call's status
///    is known: every interceptor whose `on_start` ran sees it, with the
///    status, the duration, and what the call moved; it may add trailers.
///
/// A call that ends early (the client resets it, its deadline passes, the
/// server is shut down) still reaches `on_end`, with `CANCELLED`,
/// `DEADLINE_EXCEEDED` or `UNAVAILABLE`.
///
/// ```
/// use p2p_grpc::server::{CallEnd, CallStart, Interceptor};
/// use p2p_grpc::Status;
///
/// /// Refuses calls without the right bearer token.
/// struct CheckToken(&'static str);
///
/// impl Interceptor for CheckToken {
///     async fn on_start(&self, call: &mut CallStart) -> Result<(), Status> {
///         let expected = format!("Bearer {}", self.0);
///         match call.info().metadata().get("authorization") {
///             Some(token) if token.as_bytes() == expected.as_bytes() => Ok(()),
///             _ => Err(Status::unauthenticated("a valid bearer token is required")),
///         }
///     }
///
///     fn on_end(&self, call: &mut CallEnd<'_>) {
///         println!("{} took {:?}: {}", call.info().method(), call.elapsed(), call.status());
///     }
/// }
///
/// let server = p2p_grpc::Server::builder().interceptor(CheckToken("s3cret"));
/// # drop(server);
/// ```
pub trait Interceptor: Send + Sync + 'static {
    /// Before the handler runs; an `Err` refuses the call with that status.
    fn on_start(&self, call: &mut CallStart) -> impl Future<Output = Result<(), Status>> + Send {
        let _ = call;
        async { Ok(()) }
    }

    /// Just before the response headers go out; may add to them.
    fn on_response_headers(&self, call: &CallInfo<'_>, headers: &mut MetadataMap) {
        let _ = (call, headers);
    }

    /// Once the call has ended (or, when it ends with trailers, just before
    /// they go out; then [`CallEnd::trailers_mut`] may add to them).
    fn on_end(&self, call: &mut CallEnd<'_>) {
        let _ = call;
    }
}

/// [`Interceptor`], object safe: how a server holds them.
trait DynInterceptor: Send + Sync {
    fn on_start<'a>(&'a self, call: &'a mut CallStart) -> BoxFuture<'a, Result<(), Status>>;
    fn on_response_headers(&self, call: &CallInfo<'_>, headers: &mut MetadataMap);
    fn on_end(&self, call: &mut CallEnd<'_>);
}

impl<T: Interceptor> DynInterceptor for T {
    fn on_start<'a>(&'a self, call: &'a mut CallStart) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(Interceptor::on_start(self, call))
    }

    fn on_response_headers(&self, call: &CallInfo<'_>, headers: &mut MetadataMap) {
        Interceptor::on_response_headers(self, call, headers)
    }

    fn on_end(&self, call: &mut CallEnd<'_>) {
        Interceptor::on_end(self, call)
    }
}

/// A server's interceptors, in the order they were added.
#[derive(Clone)]
pub(crate) struct Chain(Arc<[Arc<dyn DynInterceptor>]>);

impl Default for Chain {
    fn default() -> Self {
        Chain(Arc::new([]))
    }
}

impl Chain {
    pub(crate) fn push(&mut self, interceptor: impl Interceptor) {
        let mut all = self.0.to_vec();
        all.push(Arc::new(interceptor));
        self.0 = all.into();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} interceptors", self.0.len())
    }
}

/// The authorisation hook of [`ServerBuilder::authorize`](super::ServerBuilder::authorize),
/// as an interceptor.
pub(crate) struct Authorize<F>(pub(crate) F);

impl<F> Interceptor for Authorize<F>
where
    F: Fn(&CallInfo<'_>) -> Result<(), Status> + Send + Sync + 'static,
{
    fn on_start(&self, call: &mut CallStart) -> impl Future<Output = Result<(), Status>> + Send {
        std::future::ready((self.0)(&call.info()))
    }
}

/// What an interceptor, or an authorisation hook, sees of a call.
#[derive(Debug, Clone, Copy)]
pub struct CallInfo<'a> {
    service: &'a str,
    method: &'a str,
    kind: CallKind,
    metadata: &'a MetadataMap,
    extensions: &'a http::Extensions,
    timeout: Option<Duration>,
}

impl<'a> CallInfo<'a> {
    fn of(
        path: &'a http::uri::PathAndQuery,
        kind: CallKind,
        metadata: &'a MetadataMap,
        extensions: &'a http::Extensions,
        timeout: Option<Duration>,
    ) -> Self {
        let (service, method) = split_path(path.path());
        CallInfo {
            service,
            method,
            kind,
            metadata,
            extensions,
            timeout,
        }
    }

    /// The service name, `package.Service`.
    pub fn service(&self) -> &'a str {
        self.service
    }

    /// The method name.
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The kind of call.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// The request metadata.
    pub fn metadata(&self) -> &'a MetadataMap {
        self.metadata
    }

    /// Values the transport attached (such as the remote peer), and those
    /// interceptors added.
    pub fn extensions(&self) -> &'a http::Extensions {
        self.extensions
    }

    /// The time the client gave the call (`grpc-timeout`), from its start.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Over TCP: the client's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.extensions
            .get::<TcpConnectInfo>()
            .map(|info| info.remote_addr)
    }

    /// Over TLS: the certificate chain the client presented, leaf first
    /// (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn peer_certificates(&self) -> Option<&'a [crate::tls::Certificate]> {
        self.extensions
            .get::<crate::tls::PeerCertificates>()
            .map(|certificates| certificates.chain())
    }
}

/// A call about to run, as [`Interceptor::on_start`] sees it: its
/// [`info`](Self::info), and its metadata and extensions to change.
pub struct CallStart {
    path: http::uri::PathAndQuery,
    kind: CallKind,
    metadata: MetadataMap,
    extensions: http::Extensions,
    timeout: Option<Duration>,
    spans: Vec<tracing::Span>,
}

impl fmt::Debug for CallStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallStart")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("metadata", &self.metadata)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CallStart {
    /// The call as it stands.
    pub fn info(&self) -> CallInfo<'_> {
        CallInfo::of(
            &self.path,
            self.kind,
            &self.metadata,
            &self.extensions,
            self.timeout,
        )
    }

    /// The request metadata, to change what the handler reads.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// The call's extensions, to hand the handler values (an authenticated
    /// user, say); [`CallEnd::info`] sees them too.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }

    /// Runs the rest of the call (the handler, its response, the `on_end`
    /// hooks that run with it) inside `span`. Spans of several interceptors
    /// nest, the first added outermost.
    pub fn instrument(&mut self, span: tracing::Span) {
        self.spans.push(span);
    }
}

/// A call that has ended, as [`Interceptor::on_end`] sees it.
pub struct CallEnd<'a> {
    info: CallInfo<'a>,
    status: &'a Status,
    elapsed: Duration,
    stats: CallStats,
    response_headers: Option<&'a MetadataMap>,
    trailers: Option<&'a mut MetadataMap>,
}

impl fmt::Debug for CallEnd<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallEnd")
            .field("info", &self.info)
            .field("status", &self.status)
            .field("elapsed", &self.elapsed)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<'a> CallEnd<'a> {
    /// The call, as the handler received it (metadata and extensions after
    /// every `on_start`).
    pub fn info(&self) -> CallInfo<'a> {
        self.info
    }

    /// The call's final status.
    pub fn status(&self) -> &Status {
        self.status
    }

    /// The time since the server began the call.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// What the call moved.
    pub fn stats(&self) -> CallStats {
        self.stats
    }

    /// The response headers the server sent, if it sent any (an answer that
    /// is a status only has none).
    pub fn response_headers(&self) -> Option<&MetadataMap> {
        self.response_headers
    }

    /// The trailers about to be sent with the status; `None` when none can
    /// be (the client reset the call, or the stream broke).
    pub fn trailers_mut(&mut self) -> Option<&mut MetadataMap> {
        self.trailers.as_deref_mut()
    }
}

/// `package.Service` and `Method` of a path the router has checked.
fn split_path(path: &str) -> (&str, &str) {
    crate::wire::headers::split_path(path).unwrap_or((path, ""))
}

/// One call's passage through a chain: which `on_start` hooks ran, what
/// the call moved, and whether `on_end` ran. Dropped before the end (the
/// call's task was dropped), it reports `CANCELLED`.
pub(crate) struct CallObserver {
    chain: Chain,
    started: usize,
    began: Instant,
    path: http::uri::PathAndQuery,
    kind: CallKind,
    /// The request as the handler got it, for `on_end`.
    metadata: MetadataMap,
    extensions: http::Extensions,
    timeout: Option<Duration>,
    counters: Arc<CallCounters>,
    response_headers: Option<MetadataMap>,
    ended: bool,
}

impl CallObserver {
    pub(crate) fn new(
        chain: Chain,
        path: http::uri::PathAndQuery,
        kind: CallKind,
        timeout: Option<Duration>,
    ) -> Self {
        CallObserver {
            chain,
            started: 0,
            began: Instant::now(),
            path,
            kind,
            metadata: MetadataMap::new(),
            extensions: http::Extensions::new(),
            timeout,
            counters: CallCounters::new(),
            response_headers: None,
            ended: false,
        }
    }

    pub(crate) fn counters(&self) -> &Arc<CallCounters> {
        &self.counters
    }

    /// Runs every `on_start` in order on the request's metadata and
    /// extensions; returns them as the handler is to see them, with the
    /// spans the rest of the call runs in, or the refusal.
    pub(crate) async fn start(
        &mut self,
        metadata: MetadataMap,
        extensions: http::Extensions,
    ) -> Result<(MetadataMap, http::Extensions, Vec<tracing::Span>), Status> {
        let mut call = CallStart {
            path: self.path.clone(),
            kind: self.kind,
            metadata,
            extensions,
            timeout: self.timeout,
            spans: Vec::new(),
        };
        let chain = self.chain.clone();
        for interceptor in chain.0.iter() {
            self.started += 1;
            if let Err(status) = interceptor.on_start(&mut call).await {
                self.metadata = call.metadata;
                self.extensions = call.extensions;
                return Err(status);
            }
        }
        self.metadata = call.metadata.clone();
        self.extensions = call.extensions.clone();
        Ok((call.metadata, call.extensions, call.spans))
    }

    fn info(&self) -> CallInfo<'_> {
        CallInfo::of(
            &self.path,
            self.kind,
            &self.metadata,
            &self.extensions,
            self.timeout,
        )
    }

    /// Runs `on_response_headers`, last added first.
    pub(crate) fn response_headers(&mut self, headers: &mut MetadataMap) {
        for interceptor in self.chain.0[..self.started].iter().rev() {
            interceptor.on_response_headers(&self.info(), headers);
        }
        self.response_headers = Some(headers.clone());
    }

    /// Runs `on_end` of every interceptor that started, last added first,
    /// once.
    pub(crate) fn end(&mut self, status: &Status, mut trailers: Option<&mut MetadataMap>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let elapsed = self.began.elapsed();
        let stats = self.counters.snapshot();
        for interceptor in self.chain.0[..self.started].iter().rev() {
            let mut end = CallEnd {
                info: self.info(),
                status,
                elapsed,
                stats,
                response_headers: self.response_headers.as_ref(),
                trailers: trailers.as_deref_mut(),
            };
            interceptor.on_end(&mut end);
        }
    }
}

impl Drop for CallObserver {
    fn drop(&mut self) {
        self.end(&Status::cancelled("the call ended before its status"), None);
    }
}

/// Polls `future` inside `spans`, the first outermost.
pub(crate) fn poll_in<F: Future>(
    spans: &[tracing::Span],
    future: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    match spans.split_first() {
        Some((span, inner)) => {
            let _entered = span.enter();
            poll_in(inner, future, cx)
        }
        None => future.poll(cx),
    }
}
