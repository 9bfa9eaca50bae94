//! Small synchronisation pieces both roles use: a one-way [`Signal`], a
//! [`Tracker`] of live tasks or calls, and [`lock`] for mutexes whose data
//! stays consistent even if a holder panicked.

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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

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
