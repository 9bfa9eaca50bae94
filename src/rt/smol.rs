//! The `smol` backend, and the executor [`crate::rt::block_on`] drives.
//!
//! [`SmolRuntime::global`] spawns on p2p-grpc's own executor. Whoever calls
//! [`crate::rt::block_on`] runs it on the calling thread, beside the future
//! it was given and async-io's reactor: a server or client started from the
//! README's `main` works on that one thread, with no wake-up crossing
//! threads. When no `block_on` is running and tasks are left (a runtime used
//! from a thread of the caller's own, or tasks that outlive `block_on`), one
//! background thread starts and runs them from then on.
//!
//! The thread in `block_on` also keeps async-io's reactor turning while it is
//! busy (see [`SLICE`]): async-io's own helper thread takes the reactor over
//! when it sees no turn for 50 µs, and under load it then preempts the
//! executor thousands of times a second.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{Runtime, Sleep, Task};

/// The executor of [`SmolRuntime::global`].
static EXECUTOR: ::smol::Executor<'static> = ::smol::Executor::new();
/// How many threads are in [`block_on`] now, each running [`EXECUTOR`].
static DRIVERS: AtomicUsize = AtomicUsize::new(0);
/// Starts the background thread, once.
static BACKGROUND: Once = Once::new();

/// How long the thread in [`block_on`] runs tasks before it lets async-io
/// poll for IO (one `epoll_wait` and its timer set-up) and goes on. async-io's
/// helper thread sleeps 50 µs, then 75, 100, 250 µs and so on up to 10 ms,
/// between looks at the reactor, and takes it over (and starts again at
/// 50 µs) when it finds it did not turn meanwhile; a turn every 40 µs of
/// work sends it to its longest sleep within about 10 ms of load.
const SLICE: Duration = Duration::from_micros(40);

/// How many tasks run between looks at the clock.
const TASKS_PER_CLOCK_READ: u32 = 8;

/// Spawns on p2p-grpc's own executor (driven by [`crate::rt::block_on`],
/// else by a background thread), or on an executor of your own; sleeps with
/// `async-io` timers.
#[derive(Clone, Default)]
pub struct SmolRuntime {
    executor: Option<Arc<::smol::Executor<'static>>>,
}

impl SmolRuntime {
    /// Spawns on p2p-grpc's executor. [`crate::rt::block_on`] runs it on the
    /// calling thread; when no thread is inside `block_on`, a background
    /// thread (started on first need) runs it instead.
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
            None => {
                EXECUTOR.spawn(task).detach();
                // With `SeqCst` here and in `Leave::drop`, either this sees a
                // driver, or that driver's last look sees this task.
                if DRIVERS.load(Ordering::SeqCst) == 0 {
                    start_background();
                }
            }
        }
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(async move {
            ::smol::Timer::after(duration).await;
        })
    }
}

/// Runs [`EXECUTOR`] on a thread of its own from now on.
fn start_background() {
    BACKGROUND.call_once(|| {
        std::thread::Builder::new()
            .name("p2p-grpc".to_owned())
            .spawn(|| ::smol::block_on(EXECUTOR.run(std::future::pending::<()>())))
            .expect("starting p2p-grpc's executor thread");
    });
}

/// Runs `future` to completion on this thread, and [`EXECUTOR`]'s tasks
/// meanwhile (see the module's documentation).
pub(super) fn block_on<F: Future>(future: F) -> F::Output {
    DRIVERS.fetch_add(1, Ordering::SeqCst);
    let _leave = Leave;
    ::smol::block_on(Drive {
        future: pin!(future),
        waiting: None,
    })
}

/// Leaves [`block_on`]: if it was the last driver and tasks remain, the
/// background thread takes them.
struct Leave;

impl Drop for Leave {
    fn drop(&mut self) {
        if DRIVERS.fetch_sub(1, Ordering::SeqCst) == 1 && !EXECUTOR.is_empty() {
            start_background();
        }
    }
}

/// The future `block_on` hands async-io: the caller's future, then up to a
/// [`SLICE`] of tasks, then (when none is left) a wait for the next one.
struct Drive<'a, F> {
    future: Pin<&'a mut F>,
    /// `EXECUTOR.tick()` while no task is ready: it runs the next one.
    waiting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<F: Future> Future for Drive<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if let Poll::Ready(output) = this.future.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        if let Some(waiting) = &mut this.waiting {
            // A wake-up that is not for us (the caller's future's, say).
            if waiting.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.waiting = None;
        }
        let start = Instant::now();
        let mut ran = 0u32;
        loop {
            if EXECUTOR.try_tick() {
                ran += 1;
                if ran % TASKS_PER_CLOCK_READ == 0 && start.elapsed() >= SLICE {
                    // Back to async-io, which turns the reactor (it was
                    // woken, so it does not block) and polls us again.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                continue;
            }
            let waiting = this.waiting.insert(Box::pin(EXECUTOR.tick()));
            if waiting.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.waiting = None;
            ran += 1;
        }
    }
}
