//! The runtime seam: the only place in the crate that touches an executor.
//!
//! p2p-grpc needs two things from an executor: to spawn a `Send` task and to
//! sleep for a while (deadlines, grace periods). Both live in the [`Runtime`]
//! trait, with the TCP sockets of the convenience helpers (connect, accept),
//! which have a default on `async-io` that works under every executor. One
//! small file per backend implements it, each behind a feature:
//!
//! | feature     | type                 | spawns on                        | timers      | TCP         |
//! |-------------|----------------------|----------------------------------|-------------|-------------|
//! | `smol`      | `SmolRuntime`        | p2p-grpc's executor (see below)  | `async-io`  | `async-io`  |
//! | `async-std` | `AsyncStdRuntime`    | async-std's executor             | async-std   | `async-io`  |
//! | `tokio`     | `TokioRuntime`       | a tokio runtime `Handle`         | tokio       | `tokio::net`|
//!
//! Any other executor plugs in by implementing [`Runtime`] (`spawn` and
//! `sleep`; the TCP methods are optional) and handing it to the server or
//! channel builders.
//!
//! Under `smol`, [`block_on`] runs p2p-grpc's executor on the calling thread,
//! beside the future it was given and async-io's reactor: a program whose
//! `main` is `rt::block_on(...)` serves and calls on that one thread, with no
//! wake-up crossing threads. Tasks spawned while no thread is in `block_on`,
//! or left when it returns, move to a background thread started then. For
//! more threads, run a `smol::Executor` of your own on them and hand it over
//! with `SmolRuntime::with_executor`.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;

use crate::error::Error;
use crate::io::BoxIo;

pub(crate) mod async_io;
mod readiness;
#[cfg(unix)]
pub(crate) use self::async_io::{unix_connect, unix_incoming};
#[cfg(feature = "async-std")]
mod async_std;
#[cfg(feature = "smol")]
mod smol;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "async-std")]
pub use self::async_std::AsyncStdRuntime;
#[cfg(feature = "smol")]
pub use self::smol::SmolRuntime;
#[cfg(feature = "tokio")]
pub use self::tokio::TokioRuntime;

/// A boxed, `Send` future with no output, as handed to [`Runtime::spawn`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A boxed timer future, as returned by [`Runtime::sleep`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A TCP connection being opened, as returned by [`Runtime::tcp_connect`].
pub type Connecting = Pin<Box<dyn Future<Output = io::Result<BoxIo>> + Send + 'static>>;

/// The connections a TCP listener accepts, each with the client's address,
/// as returned by [`Runtime::tcp_incoming`].
pub type Incoming = Pin<Box<dyn Stream<Item = io::Result<(BoxIo, SocketAddr)>> + Send + 'static>>;

/// A host name being resolved, as returned by [`Runtime::resolve`].
pub type Resolving = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static>>;

/// An async executor, as far as p2p-grpc needs one.
///
/// Implementations must be cheap to call from any thread. Tasks handed to
/// [`spawn`](Runtime::spawn) are detached: p2p-grpc keeps track of them itself.
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: Task);

    /// A future that completes once `duration` has passed.
    fn sleep(&self, duration: Duration) -> Sleep;

    /// Opens a TCP connection to `addr` with `TCP_NODELAY` set, for
    /// [`Channel::connect_tcp`](crate::Channel::connect_tcp).
    ///
    /// The default uses `async-io`, which works under any executor (its
    /// reactor runs on a thread of its own when nothing else drives it).
    /// Override it when the executor has a reactor of its own, so that socket
    /// wake-ups do not cross threads.
    fn tcp_connect(&self, addr: SocketAddr) -> Connecting {
        async_io::connect(addr)
    }

    /// Resolves `host` (a DNS name, or an IP address) to the socket
    /// addresses of `port`, in the order the system's resolver gives them,
    /// for [`ChannelBuilder::connect_to`](crate::client::ChannelBuilder::connect_to).
    ///
    /// The default runs the system's `getaddrinfo` on a thread of the
    /// `blocking` pool, which works under any executor; an IP address is
    /// answered at once. Override it to use a resolver of your own.
    fn resolve(&self, host: &str, port: u16) -> Resolving {
        async_io::resolve(host, port)
    }

    /// Turns a bound `listener` into the stream of connections it accepts,
    /// each with `TCP_NODELAY` set, for
    /// [`Server::serve_listener`](crate::Server::serve_listener).
    ///
    /// The default uses `async-io`; see [`tcp_connect`](Runtime::tcp_connect).
    fn tcp_incoming(&self, listener: TcpListener) -> io::Result<Incoming> {
        async_io::incoming(listener)
    }
}

/// A runtime shared between servers, channels and their tasks.
pub type SharedRuntime = Arc<dyn Runtime>;

impl<R: Runtime + ?Sized> Runtime for Arc<R> {
    fn spawn(&self, task: Task) {
        (**self).spawn(task)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        (**self).sleep(duration)
    }

    fn tcp_connect(&self, addr: SocketAddr) -> Connecting {
        (**self).tcp_connect(addr)
    }

    fn tcp_incoming(&self, listener: TcpListener) -> io::Result<Incoming> {
        (**self).tcp_incoming(listener)
    }

    fn resolve(&self, host: &str, port: u16) -> Resolving {
        (**self).resolve(host, port)
    }
}

/// The runtime chosen by the enabled features: `smol`, else `async-std`,
/// else `tokio`.
///
/// Returns `None` when no runtime feature is enabled; builders then require an
/// explicit runtime.
pub fn default_runtime() -> Option<SharedRuntime> {
    #[cfg(feature = "smol")]
    {
        Some(Arc::new(SmolRuntime::global()))
    }
    #[cfg(all(not(feature = "smol"), feature = "async-std"))]
    {
        Some(Arc::new(AsyncStdRuntime::new()))
    }
    #[cfg(all(not(feature = "smol"), not(feature = "async-std"), feature = "tokio"))]
    {
        TokioRuntime::try_current().map(|rt| Arc::new(rt) as SharedRuntime)
    }
    #[cfg(not(any(feature = "smol", feature = "async-std", feature = "tokio")))]
    {
        None
    }
}

/// `runtime`, or else the default one: what every builder resolves.
pub(crate) fn or_default(runtime: Option<SharedRuntime>) -> Result<SharedRuntime, Error> {
    match runtime {
        Some(runtime) => Ok(runtime),
        None => default_runtime().ok_or_else(Error::no_runtime),
    }
}

/// Runs `future` to completion on the thread that calls it, inside the
/// default runtime's context, and returns its output.
///
/// This is what examples and tests use as their `main`. Under `smol` it runs
/// the default runtime's tasks on this thread meanwhile (see the module's
/// documentation); under `async-std` it is async-std's `block_on`; under
/// `tokio` it builds a multi-thread runtime and enters it, so that
/// [`default_runtime`] finds it.
#[cfg(any(feature = "smol", feature = "async-std", feature = "tokio"))]
pub fn block_on<F: Future>(future: F) -> F::Output {
    #[cfg(feature = "smol")]
    {
        self::smol::block_on(future)
    }
    #[cfg(all(not(feature = "smol"), feature = "async-std"))]
    {
        ::async_std::task::block_on(future)
    }
    #[cfg(all(not(feature = "smol"), not(feature = "async-std"), feature = "tokio"))]
    {
        ::tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime")
            .block_on(future)
    }
}
