//! The `tokio` backend.

use std::time::Duration;

use ::tokio::runtime::Handle;

use super::{Runtime, Sleep, Task};

/// Spawns on a tokio runtime through its [`Handle`] and sleeps with
/// `tokio::time` (the runtime needs its time driver enabled).
#[derive(Clone, Debug)]
pub struct TokioRuntime {
    handle: Handle,
}

impl TokioRuntime {
    /// The runtime the calling thread runs in, if any.
    pub fn try_current() -> Option<Self> {
        Handle::try_current().ok().map(Self::from_handle)
    }

    /// Spawns on the runtime behind `handle`.
    pub fn from_handle(handle: Handle) -> Self {
        TokioRuntime { handle }
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, task: Task) {
        drop(self.handle.spawn(task));
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        // `tokio::time::sleep` needs the runtime context when it is created.
        let _guard = self.handle.enter();
        Box::pin(::tokio::time::sleep(duration))
    }
}
