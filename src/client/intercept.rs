//! Client interceptors: code that runs around every call made on a
//! channel, before the request goes out and when the call ends.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::http2::observe::{CallCounters, CallEndHook, CallKind, CallStats};
use crate::{MetadataMap, Status};

/// Runs around every call made on a channel, whatever its kind. Add one
/// with [`Channel::with_interceptor`](super::Channel::with_interceptor).
///
/// [`on_start`](Self::on_start) runs for each interceptor, in the order
/// they were added, before anything is sent; it may add metadata (an auth
/// token it fetches asynchronously, say) or fail the call with a status,
/// which the caller gets, and which the later interceptors never see.
/// [`on_end`](Self::on_end) runs once the call's status is known, last
/// added first, for every interceptor whose `on_start` ran: after the
/// response of a unary or client-streaming call, when the response stream
/// of the others ends, or with `CANCELLED` when the caller drops the call
/// first. A call retried under a retry policy is one call here: its
/// metadata goes with every attempt.
///
/// ```
/// use p2p_grpc::client::{CallStart, Interceptor};
/// use p2p_grpc::Status;
///
/// /// Adds a bearer token to every call.
/// struct BearerToken(String);
///
/// impl Interceptor for BearerToken {
///     async fn on_start(&self, call: &mut CallStart) -> Result<(), Status> {
///         call.metadata_mut()
///             .insert("authorization", &format!("Bearer {}", self.0))
///             .map_err(|_| Status::internal("the token is not a valid header value"))
///     }
/// }
/// # async fn demo(channel: p2p_grpc::Channel) {
/// let channel = channel.with_interceptor(BearerToken("s3cret".into()));
/// # drop(channel);
/// # }
/// ```
pub trait Interceptor: Send + Sync + 'static {
    /// Before the request goes out; an `Err` fails the call with that status.
    fn on_start(&self, call: &mut CallStart) -> impl Future<Output = Result<(), Status>> + Send {
        let _ = call;
        async { Ok(()) }
    }

    /// Once the call's status is known.
    fn on_end(&self, call: &CallEnd<'_>) {
        let _ = call;
    }
}

/// [`Interceptor`], object safe: how a channel holds them.
pub(crate) trait DynInterceptor: Send + Sync {
    fn on_start<'a>(&'a self, call: &'a mut CallStart) -> BoxFuture<'a, Result<(), Status>>;
    fn on_end(&self, call: &CallEnd<'_>);
}

impl<T: Interceptor> DynInterceptor for T {
    fn on_start<'a>(&'a self, call: &'a mut CallStart) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(Interceptor::on_start(self, call))
    }

    fn on_end(&self, call: &CallEnd<'_>) {
        Interceptor::on_end(self, call)
    }
}

/// A channel's interceptors, in the order they were added.
pub(crate) type Chain = Arc<[Arc<dyn DynInterceptor>]>;

/// What an interceptor sees of a call on the client, the same at its start
/// and its end.
#[derive(Debug)]
pub struct CallInfo {
    path: &'static str,
    kind: CallKind,
    target: Arc<str>,
    timeout: Option<Duration>,
}

impl CallInfo {
    /// The method's path, `/package.Service/Method`.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// The service name, `package.Service`.
    pub fn service(&self) -> &'static str {
        split_path(self.path).0
    }

    /// The method name.
    pub fn method(&self) -> &'static str {
        split_path(self.path).1
    }

    /// The kind of call.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// Where the channel sends its calls: the `:authority` of its requests.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The call's timeout, if the request set one.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

fn split_path(path: &'static str) -> (&'static str, &'static str) {
    crate::wire::headers::split_path(path).unwrap_or((path, ""))
}

/// A call about to go out, as [`Interceptor::on_start`] sees it.
pub struct CallStart {
    call: Arc<CallInfo>,
    metadata: MetadataMap,
    extensions: http::Extensions,
}

impl fmt::Debug for CallStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallStart")
            .field("call", &self.call)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl CallStart {
    /// The call.
    pub fn info(&self) -> &CallInfo {
        &self.call
    }

    /// The metadata the request carries.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// The metadata the request carries, to add to.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// The request's extensions (what the caller set on its
    /// [`Request`](crate::Request)); values put here stay on this side and
    /// reach [`CallEnd::extensions`].
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }
}

/// A call that has ended, as [`Interceptor::on_end`] sees it.
pub struct CallEnd<'a> {
    call: &'a CallInfo,
    extensions: &'a http::Extensions,
    status: &'a Status,
    elapsed: Duration,
    stats: CallStats,
}

impl fmt::Debug for CallEnd<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallEnd")
            .field("call", &self.call)
            .field("status", &self.status)
            .field("elapsed", &self.elapsed)
            .field("stats", &self.stats)
            .finish()
    }
}

impl CallEnd<'_> {
    /// The call.
    pub fn info(&self) -> &CallInfo {
        self.call
    }

    /// The call's final status (`OK` for a call that succeeded).
    pub fn status(&self) -> &Status {
        self.status
    }

    /// The time since the call began (its first interceptor).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// What the call moved.
    pub fn stats(&self) -> CallStats {
        self.stats
    }

    /// The call's extensions, after every `on_start`.
    pub fn extensions(&self) -> &http::Extensions {
        self.extensions
    }
}

/// One call's passage through a channel's chain. Dropped before its end
/// (the caller dropped the call), it reports `CANCELLED`.
pub(crate) struct CallObserver {
    chain: Chain,
    call: Arc<CallInfo>,
    started: usize,
    began: Instant,
    extensions: http::Extensions,
    counters: Arc<CallCounters>,
    ended: bool,
}

impl CallObserver {
    /// An observer for a call, when the channel has interceptors.
    pub(crate) fn new(
        chain: &Chain,
        path: &'static str,
        kind: CallKind,
        target: impl FnOnce() -> Arc<str>,
        timeout: Option<Duration>,
    ) -> Option<Self> {
        if chain.is_empty() {
            return None;
        }
        Some(CallObserver {
            chain: chain.clone(),
            call: Arc::new(CallInfo {
                path,
                kind,
                target: target(),
                timeout,
            }),
            started: 0,
            began: Instant::now(),
            extensions: http::Extensions::new(),
            counters: CallCounters::new(),
            ended: false,
        })
    }

    pub(crate) fn counters(&self) -> &Arc<CallCounters> {
        &self.counters
    }

    /// The request's extensions after every `on_start`.
    pub(crate) fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// Runs every `on_start` in order, on the request's metadata and
    /// extensions.
    pub(crate) async fn start(
        &mut self,
        metadata: &mut MetadataMap,
        extensions: http::Extensions,
    ) -> Result<(), Status> {
        let mut call = CallStart {
            call: self.call.clone(),
            metadata: std::mem::take(metadata),
            extensions,
        };
        let mut refused = None;
        let chain = self.chain.clone();
        for interceptor in chain.iter() {
            self.started += 1;
            if let Err(status) = interceptor.on_start(&mut call).await {
                refused = Some(status);
                break;
            }
        }
        *metadata = call.metadata;
        self.extensions = call.extensions;
        match refused {
            None => Ok(()),
            Some(status) => {
                self.end(&status);
                Err(status)
            }
        }
    }

    /// Runs `on_end` of every interceptor that started, last added first,
    /// once.
    pub(crate) fn end(&mut self, status: &Status) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let end = CallEnd {
            call: &self.call,
            extensions: &self.extensions,
            status,
            elapsed: self.began.elapsed(),
            stats: self.counters.snapshot(),
        };
        for interceptor in self.chain[..self.started].iter().rev() {
            interceptor.on_end(&end);
        }
    }

    /// Ends with the outcome of a call whose result is in hand.
    pub(crate) fn end_with<T>(&mut self, result: &Result<T, Status>) {
        match result {
            Ok(_) => self.end(Status::ok_shared()),
            Err(status) => self.end(status),
        }
    }

    /// Hands the end to the response stream, which knows when it comes.
    pub(crate) fn into_end_hook(mut self) -> CallEndHook {
        CallEndHook::new(move |status| self.end(status))
    }
}

impl Drop for CallObserver {
    fn drop(&mut self) {
        self.end(&Status::cancelled("the caller dropped the call"));
    }
}
