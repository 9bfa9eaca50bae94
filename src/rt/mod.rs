//! The runtime seam: the only place in the crate that touches an executor.
//!
//! p2p-grpc needs two things from an executor: to spawn a `Send` task and to
//! sleep for a while (deadlines, grace periods). Both live in the [`Runtime`]
//! trait. One small file per backend implements it, each behind a feature:
//!
//! | feature     | type                 | spawns on                        | timers               |
//! |-------------|----------------------|----------------------------------|----------------------|
//! | `smol`      | `SmolRuntime`        | smol's global executor           | `async-io`           |
//! | `async-std` | `AsyncStdRuntime`    | async-std's executor             | async-std            |
//! | `tokio`     | `TokioRuntime`       | a tokio runtime `Handle`         | tokio                |
//!
//! Any other executor plugs in by implementing [`Runtime`] and handing it to
//! the server or channel builders.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

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

/// An async executor, as far as p2p-grpc needs one.
///
/// Implementations must be cheap to call from any thread. Tasks handed to
/// [`spawn`](Runtime::spawn) are detached: p2p-grpc keeps track of them itself.
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: Task);

    /// A future that completes once `duration` has passed.
    fn sleep(&self, duration: Duration) -> Sleep;
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

/// Runs `future` to completion on the thread that calls it, inside the
/// default runtime's context, and returns its output.
///
/// This is what examples and tests use as their `main`: under `smol` and
/// `async-std` it is their `block_on`; under `tokio` it builds a multi-thread
/// runtime and enters it, so that [`default_runtime`] finds it.
#[cfg(any(feature = "smol", feature = "async-std", feature = "tokio"))]
pub fn block_on<F: Future>(future: F) -> F::Output {
    #[cfg(feature = "smol")]
    {
        ::smol::block_on(future)
    }
    #[cfg(all(not(feature = "smol"), feature = "async-std"))]
    {
        ::async_std::task::block_on(future)
    }
    #[cfg(all(not(feature = "smol"), not(feature = "async-std"), feature = "tokio"))]
    {
        ::tokio::runtime::Builder::new_multi_thread()
            .enable_time()
            .build()
            .expect("building a tokio runtime")
            .block_on(future)
    }
}
