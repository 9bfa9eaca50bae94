//! The `smol` backend.

use std::sync::Arc;
use std::time::Duration;

use super::{Runtime, Sleep, Task};

/// Spawns on smol's global executor (or on an executor of your own) and
/// sleeps with `async-io` timers.
#[derive(Clone, Default)]
pub struct SmolRuntime {
    executor: Option<Arc<::smol::Executor<'static>>>,
}

impl SmolRuntime {
    /// Spawns on smol's global executor (`smol::spawn`), whose threads smol
    /// starts on first use (`SMOL_THREADS`, one by default).
    pub fn global() -> Self {
        SmolRuntime { executor: None }
    }

    /// Spawns on `executor`. The caller drives it (for example with
    /// `executor.run(...)` on threads of its own).
    pub fn with_executor(executor: Arc<::smol::Executor<'static>>) -> Self {
        SmolRuntime {
            executor: Some(executor),
        }
    }
}

impl std::fmt::Debug for SmolRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmolRuntime")
            .field("own_executor", &self.executor.is_some())
            .finish()
    }
}

impl Runtime for SmolRuntime {
    fn spawn(&self, task: Task) {
        match &self.executor {
            Some(executor) => executor.spawn(task).detach(),
            None => ::smol::spawn(task).detach(),
        }
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(async move {
            ::smol::Timer::after(duration).await;
        })
    }
}
