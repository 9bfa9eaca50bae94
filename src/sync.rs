//! Small synchronisation pieces both roles use: a one-way [`Signal`], a
//! [`Tracker`] of live tasks or calls, a [`Budget`] of bytes shared by
//! calls, and [`lock`] for mutexes whose data stays consistent even if a
//! holder panicked.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{ready, Context, Poll};

use event_listener::{Event, EventListener};

/// Locks `mutex`, recovering it when a holder panicked. For the mutexes of
/// this crate, whose every update is a single step that leaves the data
/// consistent, so the data of a poisoned one is still good.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads `lock`, recovering it when a writer panicked (see [`lock`]).
pub(crate) fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `lock`, recovering it when a writer panicked (see [`lock`]).
pub(crate) fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A one-way flag that tasks can wait on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Signal(Arc<SignalInner>);

#[derive(Debug, Default)]
struct SignalInner {
    fired: AtomicBool,
    event: Event,
}

impl Signal {
    pub(crate) fn fire(&self) {
        self.0.fired.store(true, Ordering::SeqCst);
        self.0.event.notify(usize::MAX);
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.0.fired.load(Ordering::SeqCst)
    }

    /// A future that resolves once the signal has fired.
    pub(crate) fn wait(&self) -> SignalWait {
        SignalWait {
            signal: self.clone(),
            listener: None,
        }
    }
}

/// Resolves once its [`Signal`] fired. Cheap to poll repeatedly.
pub(crate) struct SignalWait {
    signal: Signal,
    listener: Option<EventListener>,
}

impl Future for SignalWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.signal.is_fired() {
                return Poll::Ready(());
            }
            match self.listener.as_mut() {
                None => {
                    // Listen first, then re-check the flag: no lost wake-up.
                    self.listener = Some(self.signal.0.event.listen());
                }
                Some(listener) => {
                    ready!(Pin::new(listener).poll(cx));
                    self.listener = None;
                }
            }
        }
    }
}

/// Counts live tasks (connections) and lets a task wait until none is left.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tracker(Arc<TrackerInner>);

#[derive(Debug, Default)]
struct TrackerInner {
    count: AtomicUsize,
    idle: Event,
}

impl Tracker {
    pub(crate) fn enter(&self) -> TrackerGuard {
        self.0.count.fetch_add(1, Ordering::SeqCst);
        TrackerGuard(self.clone())
    }

    /// A listener that fires when the count next drops to zero.
    pub(crate) fn listen_idle(&self) -> EventListener {
        self.0.idle.listen()
    }

    pub(crate) fn count(&self) -> usize {
        self.0.count.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait_idle(&self) {
        loop {
            if self.count() == 0 {
                return;
            }
            let listener = self.0.idle.listen();
            if self.count() == 0 {
                return;
            }
            listener.await;
        }
    }
}

/// Held by a live task; dropping it decrements the count.
#[derive(Debug)]
pub(crate) struct TrackerGuard(Tracker);

impl Drop for TrackerGuard {
    fn drop(&mut self) {
        if self.0 .0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0 .0.idle.notify(usize::MAX);
        }
    }
}

/// A number of bytes that calls reserve before they hold that much memory,
/// and give back when they no longer do; a call that finds it spent waits.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: Mutex<usize>,
    /// Reservations waiting for bytes to come back.
    waiting: AtomicUsize,
    released: Event,
}

/// A reservation's wait for bytes to come back; it counts as waiting until
/// granted or dropped.
#[derive(Debug)]
pub(crate) struct BudgetWait {
    listener: EventListener,
    budget: Arc<Budget>,
}

impl Drop for BudgetWait {
    fn drop(&mut self) {
        self.budget.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Bytes reserved from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        *lock(&self.budget.used) -= self.bytes;
        self.budget.released.notify(usize::MAX);
    }
}

impl Reservation {
    /// The bytes reserved.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The budget the bytes came from.
    pub(crate) fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Takes `other`'s bytes (from the same budget) into this reservation.
    pub(crate) fn merge(&mut self, mut other: Reservation) {
        debug_assert!(Arc::ptr_eq(&self.budget, &other.budget));
        self.bytes += std::mem::take(&mut other.bytes);
    }

    /// Takes `bytes` of this reservation (or all it has, if fewer) into a
    /// reservation of their own.
    pub(crate) fn split_off(&mut self, bytes: usize) -> Reservation {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        Reservation {
            budget: self.budget.clone(),
            bytes,
        }
    }

    /// `data`, holding this reservation until the last copy of it is
    /// dropped: handed to h2, the bytes stay counted for as long as h2
    /// queues them (up to its send buffer per stream), not only until
    /// they were handed over.
    pub(crate) fn hold(self, data: bytes::Bytes) -> bytes::Bytes {
        bytes::Bytes::from_owner(Held {
            data,
            _reservation: self,
        })
    }
}

/// Bytes and the reservation that counts them.
struct Held {
    data: bytes::Bytes,
    _reservation: Reservation,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

/// A reservation larger than the whole budget: it could never be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverBudget {
    pub(crate) wanted: usize,
    pub(crate) limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Budget {
            limit,
            used: Mutex::new(0),
            waiting: AtomicUsize::new(0),
            released: Event::new(),
        })
    }

    /// Bytes reserved now.
    pub(crate) fn used(&self) -> usize {
        *lock(&self.used)
    }

    /// Whether nothing is left, or calls already wait for bytes to come
    /// back: a new call would only add to the wait.
    pub(crate) fn is_spent(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0 || self.used() >= self.limit
    }

    fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let mut used = lock(&self.used);
        if *used + bytes > self.limit {
            return None;
        }
        *used += bytes;
        Some(Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    /// Reserves `bytes`, waiting (with `wait`, kept by the caller between
    /// polls) until enough is given back.
    pub(crate) fn poll_reserve(
        self: &Arc<Self>,
        bytes: usize,
        wait: &mut Option<BudgetWait>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Reservation, OverBudget>> {
        if bytes > self.limit {
            return Poll::Ready(Err(OverBudget {
                wanted: bytes,
                limit: self.limit,
            }));
        }
        loop {
            if let Some(reservation) = self.try_reserve(bytes) {
                *wait = None;
                return Poll::Ready(Ok(reservation));
            }
            match wait.as_mut() {
                // Listen first, then look again: a release between the two
                // is not missed.
                None => {
                    self.waiting.fetch_add(1, Ordering::SeqCst);
                    *wait = Some(BudgetWait {
                        listener: self.released.listen(),
                        budget: self.clone(),
                    });
                }
                Some(waiting) => {
                    ready!(Pin::new(&mut waiting.listener).poll(cx));
                    // Listen again before the next look.
                    waiting.listener = self.released.listen();
                }
            }
        }
    }

    /// [`poll_reserve`](Self::poll_reserve) as a future.
    #[cfg(test)]
    pub(crate) async fn reserve(self: &Arc<Self>, bytes: usize) -> Result<Reservation, OverBudget> {
        let mut listener = None;
        std::future::poll_fn(|cx| self.poll_reserve(bytes, &mut listener, cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn a_budget_grants_what_is_left_and_waiters_get_what_comes_back() {
        let budget = Budget::new(100);
        let a = block_on(budget.reserve(60)).unwrap();
        let b = block_on(budget.reserve(40)).unwrap();
        assert!(budget.is_spent());
        assert_eq!(budget.used(), 100);
        // Too much for the whole budget: refused at once.
        assert_eq!(
            block_on(budget.reserve(101)).unwrap_err(),
            OverBudget {
                wanted: 101,
                limit: 100
            }
        );
        // A waiter gets its bytes when enough come back, not before.
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut wait = None;
        assert!(budget.poll_reserve(50, &mut wait, &mut cx).is_pending());
        drop(b);
        // 60 of 100 used: there would be room for a small call, but one
        // waits already, so the budget counts as spent.
        assert!(budget.is_spent());
        assert!(budget.poll_reserve(50, &mut wait, &mut cx).is_pending());
        drop(a);
        let Poll::Ready(Ok(c)) = budget.poll_reserve(50, &mut wait, &mut cx) else {
            panic!("not granted after the release");
        };
        assert_eq!((c.bytes, budget.used()), (50, 50));
        assert!(!budget.is_spent());
        // A waiter that gives up stops counting as waiting.
        let mut wait = None;
        assert!(budget.poll_reserve(60, &mut wait, &mut cx).is_pending());
        assert!(budget.is_spent());
        drop(wait);
        assert!(!budget.is_spent());
        drop(c);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_split_reservation_gives_back_each_part_as_it_goes() {
        let budget = Budget::new(100);
        let mut whole = block_on(budget.reserve(100)).unwrap();
        let first = whole.split_off(30);
        // More than is left: all of it, no more.
        let second = whole.split_off(80);
        assert_eq!((first.bytes(), second.bytes(), whole.bytes()), (30, 70, 0));
        drop(whole);
        assert_eq!(budget.used(), 100);
        let held = first.hold(bytes::Bytes::from_static(b"chunk"));
        drop(second);
        assert_eq!(budget.used(), 30);
        drop(held);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn signal_wakes_waiters_fired_before_or_after() {
        let signal = Signal::default();
        let early = signal.wait();
        let other = signal.clone();
        let waiter = std::thread::spawn(move || block_on(early));
        other.fire();
        waiter.join().unwrap();
        block_on(signal.wait());
        assert!(signal.is_fired());
    }

    #[test]
    fn tracker_waits_for_every_guard() {
        let tracker = Tracker::default();
        let a = tracker.enter();
        let b = tracker.enter();
        assert_eq!(tracker.count(), 2);
        let t = tracker.clone();
        let waiter = std::thread::spawn(move || block_on(t.wait_idle()));
        drop(a);
        drop(b);
        waiter.join().unwrap();
        assert_eq!(tracker.count(), 0);
    }
}
