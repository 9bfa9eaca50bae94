//! [`BatchFlushes`]: a byte stream below rust-yamux that lets the yamux
//! frames written in one turn of its connection's task leave together, in
//! one flush.
//!
//! rust-yamux's connection flushes its socket after every frame it writes.
//! Below yamux is the security layer (noise), which seals and sends what it
//! holds on each flush: so every yamux frame became an encrypted message and,
//! over TCP, a system call of its own, even when the connection's task had
//! many frames queued (64 streams echoing small messages wrote one frame, one
//! message and one `sendto` each).
//!
//! This wrapper puts off a flush that follows writes, and makes it when the
//! connection next reads, or is flushed again with nothing written in
//! between, or closes. rust-yamux's turn writes every frame its streams
//! queued, flushing after each, then reads the socket before it sleeps: so
//! the frames of one turn share the security layer's messages and leave at
//! the end of that turn, and no byte waits longer. (Were the socket to block
//! the writes, rust-yamux may sleep without reading; the socket then wakes
//! it, and the bytes held are behind those it is still sending anyway.)
//! `yamux_frames_written_in_one_turn_leave_in_one_flush` below checks this
//! of the rust-yamux in use.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncWrite};

/// Wraps the connection yamux runs on, so that the frames written in one
/// turn of its task are flushed together, at the end of the turn (see the
/// module docs).
#[derive(Debug)]
pub struct BatchFlushes<C> {
    inner: C,
    /// Bytes went to `inner` since its last flush.
    owed: bool,
    /// Bytes went to `inner` since the last call to `poll_flush`.
    fresh: bool,
}

impl<C> BatchFlushes<C> {
    /// Wraps the connection yamux runs on.
    pub fn new(inner: C) -> Self {
        BatchFlushes {
            inner,
            owed: false,
            fresh: false,
        }
    }

    fn wrote(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.owed = true;
            self.fresh = true;
        }
    }
}

impl<C: AsyncWrite + Unpin> BatchFlushes<C> {
    /// Flushes `inner`, and notes that nothing is owed if that is done.
    fn poll_flush_owed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.owed = false;
        }
        flushed
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin> AsyncRead for BatchFlushes<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.owed {
            // The writer's turn is over: what it wrote leaves now. Blocked,
            // the socket wakes the task to finish, and reading goes on.
            if let Poll::Ready(Err(err)) = self.poll_flush_owed(cx) {
                return Poll::Ready(Err(err));
            }
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for BatchFlushes<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&written);
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if std::mem::take(&mut self.fresh) {
            // Put off: more frames may follow in this turn.
            return Poll::Ready(Ok(()));
        }
        self.poll_flush_owed(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.fresh = false;
        let closed = Pin::new(&mut self.inner).poll_close(cx);
        if let Poll::Ready(Ok(())) = closed {
            self.owed = false;
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Wake, Waker};

    use futures::AsyncWriteExt;
    use libp2p::core::muxing::StreamMuxerExt;
    use libp2p::core::upgrade::{OutboundConnectionUpgrade, UpgradeInfo};

    use super::*;
    use crate::libp2p::Yamux;

    /// What reached the wrapped connection.
    #[derive(Default)]
    struct Log {
        written: Vec<u8>,
        /// How much had been written at each flush.
        flushes: Vec<usize>,
        /// Flushes are pending (the socket is full).
        blocked: bool,
        reads: usize,
        closed: bool,
    }

    /// A connection that keeps a [`Log`] and never has anything to read.
    #[derive(Default, Clone)]
    struct Recorder(Arc<Mutex<Log>>);

    impl Recorder {
        fn log(&self) -> std::sync::MutexGuard<'_, Log> {
            self.0.lock().unwrap()
        }

        fn flushes(&self) -> Vec<usize> {
            self.log().flushes.clone()
        }
    }

    impl AsyncRead for Recorder {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.log().reads += 1;
            Poll::Pending
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.log().written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            let mut log = self.log();
            if log.blocked {
                return Poll::Pending;
            }
            let at = log.written.len();
            log.flushes.push(at);
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.log().closed = true;
            Poll::Ready(Ok(()))
        }
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes::default());
        (wakes.clone(), Waker::from(wakes))
    }

    fn read(io: &mut BatchFlushes<Recorder>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        Pin::new(io).poll_read(cx, &mut [0; 16])
    }

    fn flush(io: &mut BatchFlushes<Recorder>, cx: &mut Context<'_>) {
        assert!(matches!(Pin::new(io).poll_flush(cx), Poll::Ready(Ok(()))));
    }

    #[test]
    fn flushes_after_writes_are_made_once_at_the_next_read() {
        let (wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let log = Recorder::default();
        let mut io = BatchFlushes::new(log.clone());
        let wrote = Pin::new(&mut io).poll_write(&mut cx, b"frame one");
        assert!(matches!(wrote, Poll::Ready(Ok(9))));
        flush(&mut io, &mut cx);
        assert!(log.flushes().is_empty(), "the flush is put off");
        let two = [io::IoSlice::new(b"frame"), io::IoSlice::new(b" two")];
        let wrote = Pin::new(&mut io).poll_write_vectored(&mut cx, &two);
        assert!(matches!(wrote, Poll::Ready(Ok(5))));
        flush(&mut io, &mut cx);
        assert!(log.flushes().is_empty());
        // The writer reads: its turn is over, and both frames leave.
        assert!(read(&mut io, &mut cx).is_pending());
        assert_eq!(log.flushes(), [14]);
        assert_eq!(log.log().written, b"frame oneframe");
        assert_eq!(log.log().reads, 1);
        // Nothing is owed any more.
        assert!(read(&mut io, &mut cx).is_pending());
        assert_eq!(log.flushes(), [14]);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "no wake is needed");
    }

    #[test]
    fn a_flush_with_nothing_written_since_the_last_goes_through() {
        let (_, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let log = Recorder::default();
        let mut io = BatchFlushes::new(log.clone());
        flush(&mut io, &mut cx);
        assert_eq!(log.flushes(), [0]);
        // A write that took nothing is nothing to put a flush off for.
        let wrote = Pin::new(&mut io).poll_write(&mut cx, b"");
        assert!(matches!(wrote, Poll::Ready(Ok(0))));
        flush(&mut io, &mut cx);
        assert_eq!(log.flushes(), [0, 0]);
        // Written, put off, then asked again without a write in between.
        let wrote = Pin::new(&mut io).poll_write(&mut cx, b"frame");
        assert!(matches!(wrote, Poll::Ready(Ok(5))));
        flush(&mut io, &mut cx);
        assert_eq!(log.flushes(), [0, 0]);
        flush(&mut io, &mut cx);
        assert_eq!(log.flushes(), [0, 0, 5]);
        assert!(read(&mut io, &mut cx).is_pending());
        assert_eq!(log.flushes(), [0, 0, 5], "nothing owed at the read");
    }

    #[test]
    fn a_flush_the_socket_blocks_is_made_at_a_later_read() {
        let (_, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let log = Recorder::default();
        let mut io = BatchFlushes::new(log.clone());
        let wrote = Pin::new(&mut io).poll_write(&mut cx, b"frame");
        assert!(matches!(wrote, Poll::Ready(Ok(5))));
        flush(&mut io, &mut cx);
        log.log().blocked = true;
        // The read still reads.
        assert!(read(&mut io, &mut cx).is_pending());
        assert_eq!(log.log().reads, 1);
        assert!(log.flushes().is_empty());
        log.log().blocked = false;
        assert!(read(&mut io, &mut cx).is_pending());
        assert_eq!(log.flushes(), [5]);
    }

    #[test]
    fn closing_is_never_put_off() {
        futures::executor::block_on(async {
            let log = Recorder::default();
            let mut io = BatchFlushes::new(log.clone());
            io.write_all(b"last words").await.unwrap();
            io.close().await.unwrap();
            assert!(log.log().closed);
            assert_eq!(log.log().written, b"last words");
        });
    }

    /// rust-yamux flushes after every frame it writes: the frames of one
    /// turn of its task leave in one flush instead, at the end of the turn.
    #[test]
    fn yamux_frames_written_in_one_turn_leave_in_one_flush() {
        let (_, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let upgrade = Yamux::default();
        let info = upgrade.protocol_info().next().unwrap();
        let log = Recorder::default();
        let mut muxer =
            futures::executor::block_on(upgrade.upgrade_outbound(log.clone(), info)).unwrap();
        let Poll::Ready(Ok(mut stream)) = muxer.poll_outbound_unpin(&mut cx) else {
            panic!("a new outbound stream");
        };
        // An HTTP/2 frame header, then its body, which rust-yamux cuts into
        // frames of 16 KiB: four yamux frames at least.
        let body = vec![7u8; 48 * 1024];
        for part in [&[0u8; 9][..], &body] {
            let mut left = part;
            while !left.is_empty() {
                let Poll::Ready(Ok(n)) = Pin::new(&mut stream).poll_write(&mut cx, left) else {
                    panic!("the stream takes its first writes");
                };
                left = &left[n..];
            }
        }
        assert!(muxer.poll_unpin(&mut cx).is_pending());
        let written = log.log().written.len();
        assert!(
            written >= 9 + body.len() + 4 * 12,
            "{written} bytes written"
        );
        // (A flush before the first write, with nothing to send, is no
        // flush of a frame.)
        let of_frames: Vec<usize> = log.flushes().into_iter().filter(|&at| at > 0).collect();
        assert_eq!(of_frames, [written]);
    }
}
