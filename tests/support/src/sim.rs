//! A deterministic, single-threaded executor with a virtual clock, and the
//! p2p-grpc [`Runtime`] that spawns onto it.
//!
//! Fuzz targets must be reproducible and fast, so they use no threads and no
//! real timers:
//! - every task runs on the fuzzing thread, polled in a fixed order;
//! - `Runtime::sleep` registers a virtual timer; when nothing can make
//!   progress any more, the clock jumps to the earliest timer and fires it
//!   (deadlines, handshake timeouts and keepalives happen "instantly", in a
//!   reproducible order);
//! - when nothing can make progress and no timer is left, the run is
//!   *stalled*: a hang in real life (a future nobody will ever wake).
//!
//! Budgets on poll rounds and timer jumps turn livelocks into reported
//! failures instead of endless runs.

use std::fmt;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use p2p_grpc::rt::{Runtime, SharedRuntime, Sleep, Task};

/// The runtime handed to servers and channels: spawns onto the [`Sim`]
/// executor, sleeps on its virtual clock.
#[derive(Clone)]
pub struct Sim {
    shared: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    spawned: Vec<Task>,
    now: Duration,
    timers: Vec<(Duration, u64, Weak<TimerEntry>)>,
    next_timer: u64,
    spawn_count: usize,
}

#[derive(Default)]
struct TimerEntry {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct SimSleep {
    entry: Arc<TimerEntry>,
}

impl Future for SimSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.entry.fired.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *self.entry.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.entry.fired.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim").finish_non_exhaustive()
    }
}

impl Runtime for Sim {
    fn spawn(&self, task: Task) {
        let mut state = self.shared.lock().unwrap();
        state.spawned.push(task);
        state.spawn_count += 1;
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let entry = Arc::new(TimerEntry::default());
        let mut state = self.shared.lock().unwrap();
        let deadline = state.now.saturating_add(duration);
        let id = state.next_timer;
        state.next_timer += 1;
        state.timers.push((deadline, id, Arc::downgrade(&entry)));
        Box::pin(SimSleep { entry })
    }
}

/// Why a run did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// Nothing can make progress and no timer is pending: in real life the
    /// main future (or these tasks) would hang forever.
    Stalled {
        main_done: bool,
        tasks_left: usize,
        virtual_time: Duration,
    },
    /// More poll rounds than the budget: a busy loop.
    TooManySteps { main_done: bool, tasks_left: usize },
    /// More timer jumps than the budget: a timer loop that never ends.
    TooManyTimers { main_done: bool, tasks_left: usize },
}

/// What a finished run reports.
#[derive(Debug)]
pub struct Finished<T> {
    pub output: T,
    /// Virtual time when the last task ended.
    pub virtual_time: Duration,
    /// Tasks spawned over the run.
    pub spawned: usize,
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Poll rounds allowed per run.
const MAX_STEPS: usize = 200_000;
/// Timer jumps allowed per run.
const MAX_TIMER_JUMPS: usize = 10_000;

impl Sim {
    pub fn new() -> Self {
        Sim {
            shared: Arc::new(Mutex::new(State::default())),
        }
    }

    /// The runtime as p2p-grpc builders take it.
    pub fn runtime(&self) -> SharedRuntime {
        Arc::new(self.clone())
    }

    /// The virtual time.
    pub fn now(&self) -> Duration {
        self.shared.lock().unwrap().now
    }

    /// Fires the earliest live timer, moving the clock to it. Returns false
    /// when no live timer is left.
    fn advance(&self) -> bool {
        let mut state = self.shared.lock().unwrap();
        state
            .timers
            .retain(|(_, _, entry)| entry.strong_count() > 0);
        let Some(index) = state
            .timers
            .iter()
            .enumerate()
            .min_by_key(|(_, (deadline, id, _))| (*deadline, *id))
            .map(|(index, _)| index)
        else {
            return false;
        };
        let (deadline, _, entry) = state.timers.swap_remove(index);
        if deadline > state.now {
            state.now = deadline;
        }
        drop(state);
        if let Some(entry) = entry.upgrade() {
            entry.fired.store(true, Ordering::SeqCst);
            if let Some(waker) = entry.waker.lock().unwrap().take() {
                waker.wake();
            }
        }
        true
    }

    fn take_spawned(&self) -> Vec<Task> {
        std::mem::take(&mut self.shared.lock().unwrap().spawned)
    }

    /// Runs `main` and every task it spawns (directly or not) until all have
    /// finished.
    pub fn block_on<F: Future>(&self, main: F) -> Result<Finished<F::Output>, RunError> {
        let flag = Arc::new(Flag(AtomicBool::new(true)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut main = pin!(main);
        let mut output = None;
        let mut tasks: FuturesUnordered<Task> = FuturesUnordered::new();
        let mut steps = 0usize;
        let mut jumps = 0usize;
        loop {
            flag.0.store(false, Ordering::SeqCst);
            if output.is_none() {
                if let Poll::Ready(out) = main.as_mut().poll(&mut cx) {
                    output = Some(out);
                }
            }
            loop {
                let spawned = self.take_spawned();
                if spawned.is_empty() {
                    break;
                }
                // New tasks must be polled once: mark this round as busy.
                flag.0.store(true, Ordering::SeqCst);
                tasks.extend(spawned);
            }
            while let Poll::Ready(Some(())) = tasks.poll_next_unpin(&mut cx) {}
            if tasks.is_empty() && self.shared.lock().unwrap().spawned.is_empty() {
                if let Some(output) = output.take() {
                    let state = self.shared.lock().unwrap();
                    return Ok(Finished {
                        output,
                        virtual_time: state.now,
                        spawned: state.spawn_count,
                    });
                }
            }
            steps += 1;
            if steps > MAX_STEPS {
                return Err(RunError::TooManySteps {
                    main_done: output.is_some(),
                    tasks_left: tasks.len(),
                });
            }
            if flag.0.load(Ordering::SeqCst) || !self.shared.lock().unwrap().spawned.is_empty() {
                continue;
            }
            // Idle: only a timer can move things on.
            if !self.advance() {
                return Err(RunError::Stalled {
                    main_done: output.is_some(),
                    tasks_left: tasks.len(),
                    virtual_time: self.now(),
                });
            }
            jumps += 1;
            if jumps > MAX_TIMER_JUMPS {
                return Err(RunError::TooManyTimers {
                    main_done: output.is_some(),
                    tasks_left: tasks.len(),
                });
            }
        }
    }
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_order_on_the_virtual_clock() {
        let sim = Sim::new();
        let rt = sim.runtime();
        let log = Arc::new(Mutex::new(Vec::new()));
        for (name, ms) in [("b", 20u64), ("a", 10), ("c", 30)] {
            let rt2 = rt.clone();
            let log = log.clone();
            rt.spawn(Box::pin(async move {
                rt2.sleep(Duration::from_millis(ms)).await;
                log.lock().unwrap().push(name);
            }));
        }
        let done = sim
            .block_on(async {
                rt.sleep(Duration::from_secs(3600)).await;
                7
            })
            .unwrap();
        assert_eq!(done.output, 7);
        assert_eq!(done.virtual_time, Duration::from_secs(3600));
        assert_eq!(*log.lock().unwrap(), ["a", "b", "c"]);
        assert_eq!(done.spawned, 3);
    }

    #[test]
    fn a_future_nobody_wakes_is_reported_as_stalled() {
        let sim = Sim::new();
        let err = sim.block_on(futures::future::pending::<()>()).unwrap_err();
        assert!(matches!(
            err,
            RunError::Stalled {
                main_done: false,
                ..
            }
        ));

        let sim = Sim::new();
        sim.spawn(Box::pin(futures::future::pending()));
        let err = sim.block_on(async {}).unwrap_err();
        assert!(matches!(
            err,
            RunError::Stalled {
                main_done: true,
                tasks_left: 1,
                ..
            }
        ));
    }

    #[test]
    fn busy_loops_are_caught() {
        let sim = Sim::new();
        let err = sim
            .block_on(futures::future::poll_fn(|cx| {
                cx.waker().wake_by_ref();
                Poll::<()>::Pending
            }))
            .unwrap_err();
        assert!(matches!(err, RunError::TooManySteps { .. }));
    }
}
