//! Readiness seen between tasks: an edge-triggered epoll instance of
//! p2p-grpc's own, beside async-io's, that [`crate::rt::block_on`] looks at
//! (without waiting) whenever it runs out of tasks. Linux only; elsewhere
//! nothing is registered and [`poll`] finds nothing.
//!
//! Each wait in async-io's reactor costs five system calls (`polling` arms
//! its timerfd before every `epoll_wait` and re-arms it and its notifier
//! after), and each socket it reports must be armed again (one-shot
//! registrations). In a ping-pong between a client and a server on one
//! thread, every message made one such wait: 16 system calls per round
//! trip, against tonic's 7.3 on tokio (finding 19). Here, the socket of an
//! [`AsyncIoTcp`](super::async_io::AsyncIoTcp) is registered once, when the
//! stream is made, edge-triggered for readability; `block_on`, out of
//! tasks, asks with one `epoll_wait` of zero timeout which ones became
//! readable, and wakes their readers, who then read without asking
//! async-io. Their tasks run in the same turn (`benches/README.md`,
//! finding 20).
//!
//! async-io stays the sockets' reactor: its registration is untouched, so a
//! socket read where no `block_on` looks (another executor, the background
//! thread) is woken as before. A hint only ever adds a wake, and a read it
//! causes finds data or `EAGAIN`, never wrong bytes.

use std::net::TcpStream;
use std::task::Waker;

/// A socket's registration; it ends when dropped (the socket closing
/// removes it from the epoll instance).
#[derive(Debug)]
pub(crate) struct Registration {
    #[cfg(target_os = "linux")]
    key: usize,
    #[cfg(target_os = "linux")]
    hint: std::sync::Arc<Hint>,
}

/// What [`poll`] saw of one socket.
#[derive(Debug, Default)]
#[cfg(target_os = "linux")]
struct Hint {
    /// It became readable since its reader last looked.
    readable: std::sync::atomic::AtomicBool,
    /// Its reader, while it waits.
    waker: futures::task::AtomicWaker,
}

#[cfg(target_os = "linux")]
#[cfg_attr(not(feature = "smol"), allow(dead_code))]
mod epoll {
    use std::mem::MaybeUninit;
    use std::os::fd::{BorrowedFd, OwnedFd};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
    use rustix::event::Timespec;

    use super::Hint;

    /// The epoll instance and its sockets' hints.
    pub(super) struct Readiness {
        epoll: OwnedFd,
        slots: Mutex<Slots>,
        /// Sockets registered: none, no system call in [`poll`].
        registered: AtomicUsize,
    }

    /// Hints by key (the epoll event's data).
    #[derive(Default)]
    struct Slots {
        hints: Vec<Option<Arc<Hint>>>,
        free: Vec<usize>,
    }

    /// The process's one instance (`None` if the kernel refused one).
    pub(super) fn global() -> Option<&'static Readiness> {
        static READINESS: OnceLock<Option<Readiness>> = OnceLock::new();
        READINESS
            .get_or_init(|| {
                let epoll = epoll::create(CreateFlags::CLOEXEC).ok()?;
                Some(Readiness {
                    epoll,
                    slots: Mutex::default(),
                    registered: AtomicUsize::new(0),
                })
            })
            .as_ref()
    }

    impl Readiness {
        /// Registers `fd`, edge-triggered for readability: its key.
        pub(super) fn add(&self, fd: BorrowedFd<'_>, hint: Arc<Hint>) -> Option<usize> {
            let key = {
                let mut slots = crate::sync::lock(&self.slots);
                match slots.free.pop() {
                    Some(key) => {
                        slots.hints[key] = Some(hint);
                        key
                    }
                    None => {
                        slots.hints.push(Some(hint));
                        slots.hints.len() - 1
                    }
                }
            };
            let flags = EventFlags::IN | EventFlags::RDHUP | EventFlags::ET;
            if epoll::add(&self.epoll, fd, EventData::new_u64(key as u64), flags).is_err() {
                self.remove(key);
                return None;
            }
            self.registered.fetch_add(1, Ordering::Relaxed);
            Some(key)
        }

        /// The epoll instance.
        #[cfg(test)]
        pub(super) fn fd(&self) -> BorrowedFd<'_> {
            use std::os::fd::AsFd;
            self.epoll.as_fd()
        }

        /// Frees `key` (its socket is closed, or was deleted).
        pub(super) fn remove(&self, key: usize) {
            let mut slots = crate::sync::lock(&self.slots);
            if slots.hints[key].take().is_some() {
                slots.free.push(key);
            }
        }

        /// Stops watching `fd`; the socket stays open.
        pub(super) fn delete(&self, fd: BorrowedFd<'_>) {
            let _ = epoll::delete(&self.epoll, fd);
        }

        pub(super) fn unregistered(&self) {
            self.registered.fetch_sub(1, Ordering::Relaxed);
        }

        /// One look, no wait: marks and wakes the sockets that became
        /// readable since the last look. Whether there was any.
        #[cfg_attr(not(feature = "smol"), allow(dead_code))]
        pub(super) fn poll(&self) -> bool {
            if self.registered.load(Ordering::Relaxed) == 0 {
                return false;
            }
            let mut events = [MaybeUninit::<Event>::uninit(); 32];
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let Ok((ready, _)) = epoll::wait(&self.epoll, &mut events[..], Some(&zero)) else {
                return false;
            };
            if ready.is_empty() {
                return false;
            }
            let slots = crate::sync::lock(&self.slots);
            for event in ready.iter() {
                // `Event` is packed: copy the field out before using it.
                let data = event.data;
                let hint = usize::try_from(data.u64())
                    .ok()
                    .and_then(|key| slots.hints.get(key))
                    .and_then(Option::as_ref);
                if let Some(hint) = hint {
                    hint.readable.store(true, Ordering::Release);
                    hint.waker.wake();
                }
            }
            true
        }
    }
}

impl Registration {
    /// Registers `socket`; `None` where hints are not available (not
    /// Linux, or no `smol` feature: only its `block_on` looks).
    pub(crate) fn new(socket: &TcpStream) -> Option<Self> {
        #[cfg(all(target_os = "linux", feature = "smol"))]
        {
            use std::os::fd::AsFd;
            let readiness = epoll::global()?;
            let hint = std::sync::Arc::new(Hint::default());
            let key = readiness.add(socket.as_fd(), hint.clone())?;
            Some(Registration { key, hint })
        }
        #[cfg(not(all(target_os = "linux", feature = "smol")))]
        {
            let _ = socket;
            None
        }
    }

    /// Whether the socket became readable since the last call (then the
    /// caller reads it). `waker` is registered first: a socket that becomes
    /// readable after this call wakes it.
    pub(crate) fn take(&self, waker: &Waker) -> bool {
        #[cfg(target_os = "linux")]
        {
            use std::sync::atomic::Ordering;
            self.hint.waker.register(waker);
            self.hint.readable.swap(false, Ordering::AcqRel)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = waker;
            false
        }
    }

    /// Ends the registration of `socket`, which stays open (handed on).
    pub(crate) fn end(self, socket: &TcpStream) {
        #[cfg(target_os = "linux")]
        if let Some(readiness) = epoll::global() {
            use std::os::fd::AsFd;
            readiness.delete(socket.as_fd());
        }
        #[cfg(not(target_os = "linux"))]
        let _ = socket;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(readiness) = epoll::global() {
            readiness.remove(self.key);
            readiness.unregistered();
        }
    }
}

/// One look, no wait: wakes the readers of registered sockets that became
/// readable since the last look. Whether there was any.
#[cfg_attr(not(feature = "smol"), allow(dead_code))]
pub(crate) fn poll() -> bool {
    #[cfg(target_os = "linux")]
    {
        epoll::global().is_some_and(epoll::Readiness::poll)
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(all(test, target_os = "linux", feature = "smol"))]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    /// A loopback connection: (writer, reader).
    pub(crate) fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let reader = listener.accept().unwrap().0;
        reader.set_nonblocking(true).unwrap();
        (writer, reader)
    }

    #[derive(Default)]
    struct CountWakes(AtomicU32);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Looks until `registration` is marked readable (other tests' looks
    /// may mark it too: the look is the process's).
    pub(crate) fn look_until_marked(registration: &Registration) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !registration.hint.readable.load(Ordering::SeqCst) {
            poll();
            assert!(std::time::Instant::now() < deadline, "never marked");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_socket_that_becomes_readable_wakes_its_reader_once_per_arrival() {
        let (mut writer, reader) = pair();
        let registration = Registration::new(&reader).unwrap();
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(wakes.clone());
        assert!(!registration.take(&waker), "nothing arrived yet");
        writer.write_all(b"first").unwrap();
        look_until_marked(&registration);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(registration.take(&waker));
        // Edge-triggered: unread bytes are not seen again ...
        poll();
        assert!(!registration.take(&waker));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        // ... but every arrival is.
        writer.write_all(b"second").unwrap();
        look_until_marked(&registration);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
        assert!(registration.take(&waker));
    }

    #[test]
    fn an_ended_registration_no_longer_watches_its_socket() {
        use std::os::fd::AsFd;
        let (_writer, reader) = pair();
        let readiness = epoll::global().unwrap();
        let watched = |socket: &TcpStream| {
            // `EPOLL_CTL_MOD` fails with `ENOENT` on a socket not watched.
            let flags = rustix::event::epoll::EventFlags::IN | rustix::event::epoll::EventFlags::ET;
            let data = rustix::event::epoll::EventData::new_u64(u64::MAX);
            rustix::event::epoll::modify(readiness.fd(), socket.as_fd(), data, flags).is_ok()
        };
        let registration = Registration::new(&reader).unwrap();
        assert!(watched(&reader));
        registration.end(&reader);
        assert!(!watched(&reader));
    }
}
