//! The `async-std` backend.

use std::time::Duration;

use super::{Runtime, Sleep, Task};

/// Spawns with `async_std::task::spawn` and sleeps with
/// `async_std::task::sleep`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStdRuntime;

impl AsyncStdRuntime {
    /// The async-std runtime (a unit value: async-std has one global executor).
    pub fn new() -> Self {
        AsyncStdRuntime
    }
}

impl Runtime for AsyncStdRuntime {
    fn spawn(&self, task: Task) {
        // The JoinHandle is dropped: async-std tasks keep running detached.
        drop(::async_std::task::spawn(task));
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(::async_std::task::sleep(duration))
    }
}
