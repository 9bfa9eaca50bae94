//! [`AcceptQueue`]: takes a protocol's inbound streams off libp2p-stream the
//! moment they arrive (its one-slot channel drops the ones nobody waits
//! for) and queues them for the accept loop.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError, Weak};
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::task::{waker_ref, ArcWake};
use futures::StreamExt as _;
use libp2p::{PeerId, Stream, StreamProtocol};
use libp2p_stream::IncomingStreams;

use super::MAX_QUEUED_STREAMS;

/// Takes inbound streams off libp2p-stream the moment they arrive.
///
/// libp2p-stream hands inbound streams over a channel with a single slot,
/// with `try_send`: a stream that arrives while the previous one is still
/// in the slot is dropped. However fast an accept loop is, it runs only
/// after a task switch, and a burst of streams from many peers loses some.
/// So the `IncomingStreams` is polled with a waker of our own that drains
/// it synchronously, inside the `try_send` that woke it, into an unbounded
/// queue: the slot is free again before the next stream comes.
pub(super) struct AcceptQueue {
    /// `None` once closed.
    incoming: Mutex<Option<IncomingStreams>>,
    /// Set by every wake-up; whoever holds `incoming` drains until it is
    /// clear, so that a wake-up that could not take the lock is not lost.
    dirty: AtomicBool,
    queue: mpsc::UnboundedSender<(PeerId, Stream)>,
    queued: Arc<AtomicUsize>,
    protocol: StreamProtocol,
    /// The waker handed to `IncomingStreams`. It holds the inbox weakly:
    /// the receiver's waker slot must not keep the inbox alive.
    waker: Arc<AcceptWaker>,
}

struct AcceptWaker(Weak<AcceptQueue>);

impl ArcWake for AcceptWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        if let Some(inbox) = arc_self.0.upgrade() {
            inbox.drain();
        }
    }
}

impl AcceptQueue {
    pub(super) fn start(
        incoming: IncomingStreams,
        queue: mpsc::UnboundedSender<(PeerId, Stream)>,
        queued: Arc<AtomicUsize>,
        protocol: StreamProtocol,
    ) -> Arc<AcceptQueue> {
        let inbox = Arc::new_cyclic(|weak| AcceptQueue {
            incoming: Mutex::new(Some(incoming)),
            dirty: AtomicBool::new(false),
            queue,
            queued,
            protocol,
            waker: Arc::new(AcceptWaker(weak.clone())),
        });
        // Registers the waker.
        inbox.drain();
        inbox
    }

    /// Moves every stream that has arrived into the queue, and leaves the
    /// waker registered for the next one.
    fn drain(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        loop {
            let mut incoming = match self.incoming.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                // The holder drains again: it sees `dirty`.
                Err(TryLockError::WouldBlock) => return,
            };
            while self.dirty.swap(false, Ordering::SeqCst) {
                let Some(streams) = incoming.as_mut() else {
                    break;
                };
                let waker = waker_ref(&self.waker);
                let mut cx = Context::from_waker(&waker);
                loop {
                    match streams.poll_next_unpin(&mut cx) {
                        Poll::Ready(Some((peer, stream))) => self.enqueue(peer, stream),
                        Poll::Ready(None) => {
                            *incoming = None;
                            self.queue.close_channel();
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            drop(incoming);
            // A wake-up between our last check and the unlock found the
            // lock taken: drain for it.
            if !self.dirty.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    fn enqueue(&self, peer: PeerId, stream: Stream) {
        if self.queued.load(Ordering::SeqCst) >= MAX_QUEUED_STREAMS {
            tracing::warn!(
                %peer, protocol = %self.protocol,
                "too many inbound gRPC streams waiting to be served; closing the new one"
            );
            return;
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.queue.unbounded_send((peer, stream)).is_err() {
            // Closed: the stream is dropped.
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Unregisters the protocol and closes the queue.
    pub(super) fn close(&self) {
        let incoming = crate::sync::lock(&self.incoming).take();
        drop(incoming);
        self.queue.close_channel();
    }
}
