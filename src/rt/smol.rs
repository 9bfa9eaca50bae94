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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

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
    ::smol::block_on(Drive::new(
        pin!(future),
        &EXECUTOR,
        SLICE,
        super::readiness::poll,
    ))
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
/// [`SLICE`] of tasks, then (when none is left) a look at the sockets'
/// readiness, then a wait for the next wake.
struct Drive<'a, F> {
    future: Pin<&'a mut F>,
    /// [`EXECUTOR`], but for tests.
    executor: &'static ::smol::Executor<'static>,
    /// [`SLICE`], but for tests.
    slice: Duration,
    /// Looks for sockets that became readable and wakes their readers:
    /// [`super::readiness::poll`], but for tests.
    look: fn() -> bool,
    /// How the caller's future and the executor's next tick are woken.
    wake: Arc<DriveWake>,
    /// `wake` as a waker, made once.
    waker: Waker,
    /// `executor.tick()` while no task is ready: it runs the next one.
    waiting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

/// The waker of the caller's future and of the executor's next tick. A
/// wake while `Drive` is in its poll (from a task it runs, or from a socket
/// it saw become readable) only marks `Drive` for another round in the same
/// turn; any other wake (the reactor's, another thread's) goes to
/// async-io's `block_on` too.
///
/// A `main` that makes calls awaits responses that the connection's task,
/// run by `Drive`, hands over. Waking async-io there would make it poll the
/// reactor once more (an `epoll_pwait` and four system calls around it)
/// before the future could go on: a third reactor turn per round trip of a
/// ping-pong, where two are needed. The same holds for a task woken by
/// another, or by a readable socket.
#[derive(Default)]
struct DriveWake {
    /// Woken since the round began.
    woken: AtomicBool,
    /// `Drive` is in its poll: it looks at `woken` before returning.
    polling: AtomicBool,
    /// async-io's waker for `block_on`.
    outer: AtomicWaker,
}

impl Wake for DriveWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // See `Drive::poll`.
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.outer.wake();
        }
    }
}

impl<'a, F> Drive<'a, F> {
    fn new(
        future: Pin<&'a mut F>,
        executor: &'static ::smol::Executor<'static>,
        slice: Duration,
        look: fn() -> bool,
    ) -> Self {
        let wake = Arc::new(DriveWake::default());
        Drive {
            future,
            executor,
            slice,
            look,
            waker: Waker::from(wake.clone()),
            wake,
            waiting: None,
        }
    }
}

impl<F: Future> Future for Drive<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.wake.outer.register(cx.waker());
        let waker = this.waker.clone();
        let start = Instant::now();
        // The caller's future, then tasks until none is ready, then the
        // sockets' readiness; again while something was woken meanwhile and
        // the slice lasts.
        loop {
            this.wake.polling.store(true, Ordering::SeqCst);
            this.wake.woken.store(false, Ordering::SeqCst);
            let mut inner = Context::from_waker(&waker);
            let polled = this.future.as_mut().poll(&mut inner);
            let idle = polled.is_pending() && this.run_tasks(&mut inner, start);
            if idle && !this.wake.woken.load(Ordering::SeqCst) {
                // Nothing else to do: readers of sockets that became
                // readable are woken (so `woken` is set) without a turn of
                // async-io's reactor. (When something was woken, its round
                // comes first: a ping-pong's caller, handed a response,
                // sends the next request before there is anything to read.)
                (this.look)();
            }
            // `SeqCst` here and in `DriveWake`: either a wake sees `polling`
            // cleared and wakes async-io itself, or it is seen in `woken`
            // below.
            this.wake.polling.store(false, Ordering::SeqCst);
            if polled.is_ready() {
                return polled;
            }
            if idle && !this.wake.woken.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
            if !idle || start.elapsed() >= this.slice {
                // The slice is over: async-io turns the reactor (it was
                // woken, so it does not block) and polls us again.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

impl<F> Drive<'_, F> {
    /// Runs tasks until none is ready (`true`, with the executor then set to
    /// wake `cx`) or the slice is over (`false`).
    fn run_tasks(&mut self, cx: &mut Context<'_>, start: Instant) -> bool {
        if let Some(waiting) = &mut self.waiting {
            // A wake-up that is not for us (the caller's future's, say).
            if waiting.as_mut().poll(cx).is_pending() {
                return true;
            }
            self.waiting = None;
        }
        let mut ran = 0u32;
        loop {
            if self.executor.try_tick() {
                ran += 1;
                if ran % TASKS_PER_CLOCK_READ == 0 && start.elapsed() >= self.slice {
                    return false;
                }
                continue;
            }
            let waiting = self.waiting.insert(Box::pin(self.executor.tick()));
            if waiting.as_mut().poll(cx).is_pending() {
                return true;
            }
            self.waiting = None;
            ran += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Each test drives an executor of its own: the global one may be run
    /// by its background thread, started by another test.
    static ANSWERING: ::smol::Executor<'static> = ::smol::Executor::new();
    static IDLE: ::smol::Executor<'static> = ::smol::Executor::new();
    static IDLE_TOO: ::smol::Executor<'static> = ::smol::Executor::new();
    /// A slice no test reaches.
    const LONG: Duration = Duration::from_secs(3600);

    static READING: ::smol::Executor<'static> = ::smol::Executor::new();
    static LOOKING: ::smol::Executor<'static> = ::smol::Executor::new();

    /// A look at the sockets that finds none readable.
    fn nothing() -> bool {
        false
    }

    /// The reader [`readable`] wakes, as a socket's readiness would.
    static READER: std::sync::Mutex<Option<Waker>> = std::sync::Mutex::new(None);

    /// A look at the sockets that finds `READER`'s readable.
    fn readable() -> bool {
        let reader = READER.lock().unwrap().take();
        reader.map(Waker::wake).is_some()
    }

    static LOOKS: AtomicU32 = AtomicU32::new(0);

    /// A look that finds nothing, counted.
    fn counted() -> bool {
        LOOKS.fetch_add(1, Ordering::SeqCst);
        false
    }

    /// Counts the wakes async-io's `block_on` would get.
    #[derive(Default)]
    struct CountWakes(AtomicU32);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_future_woken_by_a_task_goes_on_in_the_same_turn() {
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(wakes.clone());
        let (reply, replied) = futures::channel::oneshot::channel::<u32>();
        let mut reply = Some(reply);
        let mut replied = replied;
        // The caller's future hands a task the job of answering it, as a
        // client's `main` hands a request to its connection's task.
        let mut future = pin!(std::future::poll_fn(move |cx| {
            if let Some(reply) = reply.take() {
                ANSWERING
                    .spawn(async move {
                        let _ = reply.send(7);
                    })
                    .detach();
            }
            Pin::new(&mut replied).poll(cx).map(Result::unwrap)
        }));
        let mut drive = pin!(Drive::new(future.as_mut(), &ANSWERING, LONG, nothing));
        let polled = drive.as_mut().poll(&mut Context::from_waker(&waker));
        assert_eq!(polled, Poll::Ready(7));
        // async-io was not woken: it would have turned the reactor first.
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_reader_whose_socket_became_readable_goes_on_in_the_same_turn() {
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(wakes.clone());
        let (reply, mut replied) = futures::channel::oneshot::channel::<u32>();
        let mut reply = Some(reply);
        let mut waited = false;
        // A task waits for its socket (its waker is the socket's reader),
        // then answers the caller's future.
        READING
            .spawn(std::future::poll_fn(move |cx| {
                if !std::mem::replace(&mut waited, true) {
                    *READER.lock().unwrap() = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                if let Some(reply) = reply.take() {
                    let _ = reply.send(9);
                }
                Poll::Ready(())
            }))
            .detach();
        let mut future = pin!(std::future::poll_fn(|cx| Pin::new(&mut replied).poll(cx)));
        let mut drive = pin!(Drive::new(future.as_mut(), &READING, LONG, readable));
        let polled = drive.as_mut().poll(&mut Context::from_waker(&waker));
        // Out of tasks, `Drive` looked, and the woken reader ran at once.
        assert_eq!(polled, Poll::Ready(Ok(9)));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_round_that_woke_something_runs_it_before_looking_at_sockets() {
        let waker = Waker::from(Arc::new(CountWakes::default()));
        let mut woke = false;
        // Woken in its first poll, as a caller handed a response is.
        let mut future = pin!(std::future::poll_fn(|cx| {
            if std::mem::replace(&mut woke, true) {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }));
        let mut drive = pin!(Drive::new(future.as_mut(), &LOOKING, LONG, counted));
        let polled = drive.as_mut().poll(&mut Context::from_waker(&waker));
        assert_eq!(polled, Poll::Ready(()));
        assert_eq!(LOOKS.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_future_that_always_wakes_itself_still_lets_async_io_turn() {
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(wakes.clone());
        let mut polls = 0u64;
        let mut future = pin!(std::future::poll_fn(|cx| {
            polls += 1;
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        }));
        let mut drive = pin!(Drive::new(
            future.as_mut(),
            &IDLE,
            Duration::from_millis(100),
            nothing
        ));
        let polled = drive.as_mut().poll(&mut Context::from_waker(&waker));
        assert_eq!(polled, Poll::Pending);
        // The slice ended the turn, and async-io will poll `Drive` again.
        assert!(wakes.0.load(Ordering::SeqCst) >= 1);
        assert!(polls > 1, "{polls}");
    }

    #[test]
    fn a_wake_from_outside_a_turn_wakes_async_io() {
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(wakes.clone());
        let (tx, mut rx) = futures::channel::oneshot::channel::<()>();
        let mut future = pin!(std::future::poll_fn(|cx| Pin::new(&mut rx).poll(cx)));
        let mut drive = pin!(Drive::new(future.as_mut(), &IDLE_TOO, LONG, nothing));
        assert!(drive
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        // Another thread's wake (or the reactor's) must reach async-io.
        std::thread::spawn(move || tx.send(()).unwrap())
            .join()
            .unwrap();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(drive
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready());
    }
}
