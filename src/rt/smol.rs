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
//! busy (see [`SLICE`] and [`Slices`]): async-io's own helper thread takes
//! the reactor over when it sees no turn during one of its sleeps (50 µs at
//! first), and under load it then preempts the executor thousands of times a
//! second.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

/// How long the thread in [`block_on`] first runs tasks before it lets
/// async-io poll for IO (one `epoll_wait` and four system calls around it)
/// and goes on. async-io's helper thread sleeps 50 µs, then 75, 100, 250 µs
/// and so on up to 10 ms, between looks at the reactor, and takes it over
/// (and starts again at 50 µs) when it finds it did not turn meanwhile: a
/// turn within 40 µs keeps it asleep, and [`Slices`] lets the next slices
/// grow as its sleeps do.
const SLICE: Duration = Duration::from_micros(40);

/// How many tasks run between looks at the clock.
const TASKS_PER_CLOCK_READ: u32 = 8;

/// async-io 2.6's helper thread's sleeps between its looks at the reactor
/// (`async_io::driver::main_loop`), in µs, up to the longest [`Slices`]
/// follows.
const HELPER_SLEEPS_US: [u32; 7] = [50, 75, 100, 250, 500, 750, 1000];

/// A wait in async-io's `block_on` this long may have handed the reactor
/// to the helper thread, which then starts its sleeps again: async-io does
/// so after 500 µs.
const HANDED_OVER: Duration = Duration::from_micros(400);

/// Slices that grow while the turns they end keep async-io's helper thread
/// asleep.
///
/// The helper takes the reactor over only when it did not turn during the
/// helper's last sleep, and those sleeps grow (50 µs, 75, 100, 250, ...)
/// for as long as it finds the reactor turned. So the slices can grow with
/// them, [`SLICE`]` ÷ 50 µs` (4/5) of each: the turn that ends each slice
/// falls within the helper's matching sleep. Fewer turns mean fewer of
/// async-io's system calls (five per turn) under load. Whenever the helper
/// may have started again from 50 µs (a wake from another thread, which
/// may be the helper's own turn of the reactor, or a long wait), so do the
/// slices.
#[derive(Debug)]
struct Slices {
    /// The first slice, [`SLICE`] but for tests.
    first: Duration,
    /// Turns given in time since the helper last started its sleeps again.
    turns: usize,
}

impl Slices {
    fn new(first: Duration) -> Self {
        Slices { first, turns: 0 }
    }

    /// How long the next slice lasts.
    fn current(&self) -> Duration {
        self.first * HELPER_SLEEPS_US[self.turns] / HELPER_SLEEPS_US[0]
    }

    /// The slice ended with a turn of the reactor.
    fn turned(&mut self) {
        self.turns = (self.turns + 1).min(HELPER_SLEEPS_US.len() - 1);
    }

    /// The helper may have started its sleeps again.
    fn restart(&mut self) {
        self.turns = 0;
    }
}

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
    let _driving = Driving::enter();
    ::smol::block_on(Drive::new(
        pin!(future),
        &EXECUTOR,
        SLICE,
        super::readiness::poll,
    ))
}

std::thread_local! {
    /// This thread is in [`block_on`]: its wakes (from tasks it runs, or
    /// from async-io's reactor turned on it) are not from afar.
    static DRIVING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How many wakes came from threads not in [`block_on`]: `block_on`'s own
/// waker's, and those of the wakers [`note_wake`] watches (see
/// [`Slices`]).
static WOKEN_AFAR: AtomicU64 = AtomicU64::new(0);

/// Counts a wake made on a thread not in [`block_on`] in [`WOKEN_AFAR`].
///
/// async-io's helper thread, when it takes the reactor over, wakes the
/// tasks waiting on sockets through the executor's queue, not through
/// `block_on`'s waker: the wakers p2p-grpc hands async-io for its sockets
/// call this, so that `block_on` sees the helper at work.
pub(crate) fn note_wake() {
    if !DRIVING.get() {
        WOKEN_AFAR.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        tests::NOTED.set(tests::NOTED.get() + 1);
    }
}

/// Marks the thread as in [`block_on`] until dropped.
struct Driving(bool);

impl Driving {
    fn enter() -> Self {
        Driving(DRIVING.replace(true))
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVING.set(self.0);
    }
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
/// slice of tasks ([`Slices`]), then (when none is left) a look at the sockets'
/// readiness, then a wait for the next wake.
struct Drive<'a, F> {
    future: Pin<&'a mut F>,
    /// [`EXECUTOR`], but for tests.
    executor: &'static ::smol::Executor<'static>,
    /// How long tasks run before async-io turns the reactor.
    slices: Slices,
    /// When `Drive` last left async-io to wait for a wake.
    waited_since: Option<Instant>,
    /// [`WOKEN_AFAR`], but for tests.
    afar: &'static AtomicU64,
    /// `afar` when the slice began.
    seen_afar: u64,
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
        note_wake();
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
            slices: Slices::new(slice),
            waited_since: None,
            afar: &WOKEN_AFAR,
            seen_afar: WOKEN_AFAR.load(Ordering::Relaxed),
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
        let waited_long = this
            .waited_since
            .take()
            .is_some_and(|since| start.duration_since(since) >= HANDED_OVER);
        let afar = this.afar.load(Ordering::Relaxed);
        if waited_long || std::mem::replace(&mut this.seen_afar, afar) != afar {
            this.slices.restart();
        }
        let slice = this.slices.current();
        // The caller's future, then tasks until none is ready, then the
        // sockets' readiness; again while something was woken meanwhile and
        // the slice lasts.
        loop {
            this.wake.polling.store(true, Ordering::SeqCst);
            this.wake.woken.store(false, Ordering::SeqCst);
            let mut inner = Context::from_waker(&waker);
            let polled = this.future.as_mut().poll(&mut inner);
            let idle = polled.is_pending() && this.run_tasks(&mut inner, start, slice);
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
                this.waited_since = Some(Instant::now());
                return Poll::Pending;
            }
            if !idle || this.slice_over(start, slice) {
                // The slice is over: async-io turns the reactor (it was
                // woken, so it does not block) and polls us again.
                this.slices.turned();
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

impl<F> Drive<'_, F> {
    /// Whether the slice that began at `start` is over. A wake from afar
    /// meanwhile cuts it to the first slice's length: async-io's helper
    /// may have started its sleeps again, and a long slice would let it
    /// take the reactor over at every one of them.
    fn slice_over(&self, start: Instant, slice: Duration) -> bool {
        let slice = match self.afar.load(Ordering::Relaxed) == self.seen_afar {
            true => slice,
            false => slice.min(self.slices.first),
        };
        start.elapsed() >= slice
    }

    /// Runs tasks until none is ready (`true`, with the executor then set to
    /// wake `cx`) or the slice is over (`false`).
    fn run_tasks(&mut self, cx: &mut Context<'_>, start: Instant, slice: Duration) -> bool {
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
                if ran % TASKS_PER_CLOCK_READ == 0 && self.slice_over(start, slice) {
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
pub(crate) mod tests {
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
    fn slices_grow_with_async_ios_helper_sleeps_and_start_again() {
        let mut slices = Slices::new(SLICE);
        let mut seen = Vec::new();
        for _ in 0..8 {
            seen.push(slices.current().as_micros());
            slices.turned();
        }
        // 4/5 of the helper's sleeps (50, 75, 100, 250, 500, 750, 1000 µs),
        // and no longer past 800 µs.
        assert_eq!(seen, [40, 60, 80, 200, 400, 600, 800, 800]);
        slices.restart();
        assert_eq!(slices.current(), SLICE);
    }

    static SLICED: ::smol::Executor<'static> = ::smol::Executor::new();
    /// The wakes from afar [`slices_start_again_after_a_wake_from_afar_or_a_long_wait`]'s
    /// `Drive` sees (the global count moves with other tests' wakes).
    static AFAR: AtomicU64 = AtomicU64::new(0);

    std::thread_local! {
        /// Wakes from afar [`note_wake`] counted on this thread.
        pub(crate) static NOTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn slices_start_again_after_a_wake_from_afar_or_a_long_wait() {
        let waker = Waker::from(Arc::new(CountWakes::default()));
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(std::future::poll_fn(|cx| {
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        }));
        let first = Duration::from_micros(1);
        let mut drive = pin!(Drive::new(future.as_mut(), &SLICED, first, nothing));
        drive.afar = &AFAR;
        drive.seen_afar = AFAR.load(Ordering::SeqCst);
        for _ in 0..3 {
            assert!(drive.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(drive.slices.turns, 3, "each slice ended with a turn");
        // A wake from afar may be async-io's helper turning the reactor.
        AFAR.fetch_add(1, Ordering::SeqCst);
        assert!(drive.as_mut().poll(&mut cx).is_pending());
        assert_eq!(drive.slices.turns, 1, "started again, then one turn");
        // A short wait in async-io keeps the slices growing ...
        drive.waited_since = Some(Instant::now());
        assert!(drive.as_mut().poll(&mut cx).is_pending());
        assert_eq!(drive.slices.turns, 2);
        // ... a long one may have handed the reactor to the helper.
        drive.waited_since = Instant::now().checked_sub(HANDED_OVER);
        assert!(drive.as_mut().poll(&mut cx).is_pending());
        assert_eq!(drive.slices.turns, 1);
    }

    #[test]
    fn a_wake_from_afar_cuts_the_slice_under_way_to_the_first() {
        let mut future = pin!(std::future::pending::<()>());
        let first = Duration::from_millis(10);
        let mut drive = Drive::new(future.as_mut(), &SLICED_TOO, first, nothing);
        drive.afar = &AFAR_TOO;
        drive.seen_afar = AFAR_TOO.load(Ordering::SeqCst);
        // Five turns in time: the slice is 150 ms (750 µs for `SLICE`).
        for _ in 0..5 {
            drive.slices.turned();
        }
        let slice = drive.slices.current();
        assert_eq!(slice, Duration::from_millis(150));
        let start = Instant::now()
            .checked_sub(Duration::from_millis(20))
            .unwrap();
        assert!(!drive.slice_over(start, slice), "20 ms into 150");
        // The helper may have turned the reactor: 20 ms is past the first
        // slice's length.
        AFAR_TOO.fetch_add(1, Ordering::SeqCst);
        assert!(drive.slice_over(start, slice));
    }

    static SLICED_TOO: ::smol::Executor<'static> = ::smol::Executor::new();
    static AFAR_TOO: AtomicU64 = AtomicU64::new(0);

    #[test]
    fn wakes_from_threads_not_in_block_on_are_noted() {
        let waker = Waker::from(Arc::new(DriveWake::default()));
        let afar = waker.clone();
        let noted = std::thread::spawn(move || {
            afar.wake_by_ref();
            NOTED.get()
        });
        assert_eq!(noted.join().unwrap(), 1);
        // The thread in `block_on` (tasks it runs, the reactor it turns).
        let near = std::thread::spawn(move || {
            let _driving = Driving::enter();
            waker.wake_by_ref();
            NOTED.get()
        });
        assert_eq!(near.join().unwrap(), 0);
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
