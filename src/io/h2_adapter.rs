//! Write coalescing between h2 and a futures-io stream.
//!
//! `tokio_util::compat` does not forward vectored writes, so h2 sees a
//! non-vectored writer and writes each DATA frame of 1 KiB or more as two
//! writes: the 9-byte frame header, then the payload. Over TCP with
//! `TCP_NODELAY` that is two syscalls and two segments per frame; over a
//! libp2p stream, two yamux frames. [`H2Adapter`] adapts a futures-io stream
//! to tokio-io itself and claims vectored writes:
//! - small writes (under 8 KiB in all) are gathered into one buffer (up to
//!   64 KiB), handed to the stream in one write when full or when h2 flushes
//!   (h2 flushes after every round of frames);
//! - larger ones (a 16 KiB DATA frame and its header) go to the stream's own
//!   `poll_write_vectored` without a copy: one `writev` for an async-io TCP
//!   stream.
//!
//! A write that fails does not end the connection at once: h2 would drop
//! what the peer sent before it went, such as the GOAWAY that says why (a
//! peer that refuses an oversized header block sends one and closes, and our
//! writes may meet the closed stream before h2 reads it). The adapter takes
//! writes without sending them from then on, and fails the read that finds
//! nothing more to read with the write's error (see [`WriteSide`]).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

use futures::io::{AsyncRead as FuturesRead, AsyncWrite as FuturesWrite};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Gathered bytes are written once this many are buffered.
const CAPACITY: usize = 64 * 1024;

/// Writes at least this large go straight to the stream, vectored.
const LARGE: usize = 8 * 1024;

/// Reads offer at least this many bytes to the stream.
const MIN_READ: usize = 1024;

/// Bytes read in one turn of the task before the adapter makes it yield.
///
/// h2 reads and handles frames for as long as reads are ready, inside one
/// poll of the connection task. A peer that floods PINGs (or SETTINGS, or
/// any small frame) and reads the ACKs keeps reads ready forever, and smol
/// and async-io, unlike tokio, have no budget of their own to make a busy
/// task give way: every other connection on the executor waited. After
/// this many bytes the next read wakes the task and returns `Pending`; h2
/// then writes out what it has and returns, and the task runs again after
/// the others. 64 KiB is four full DATA frames, or about 3,800 PINGs.
const READ_BUDGET: usize = 64 * 1024;

/// Sees the bytes that cross the adapter, both ways, and may put bytes of
/// its own in the output, ahead of what h2 writes next.
/// How the HTTP/2 layer watches frames h2 does not show (PING, GOAWAY).
pub(crate) trait Tap: Send + 'static {
    /// `bytes` were read from the stream, in order. Returns how many of them
    /// h2 gets: all of them, or fewer to cut the connection's reading there
    /// for good (h2 then reads nothing more, and the tap's owner, woken by
    /// the tap, closes the connection).
    fn read(&mut self, bytes: &[u8]) -> usize;
    /// `bytes` were taken from h2 for writing, in order.
    fn wrote(&mut self, bytes: &[u8]);
    /// Called before each write and at each flush: bytes pushed to `out`
    /// are written before anything h2 writes next. (Whether the bytes so far
    /// end on a frame boundary is the tap's to know: h2 flushes only between
    /// frames, and writes whole frames.)
    fn insert(&mut self, out: &mut Vec<u8>);
}

/// Remembers whether the stream has woken its reader since it last said
/// it had nothing to read.
///
/// h2 polls its connection, and so reads, whenever any of its streams
/// wakes it (a response to send, a window to open), not only when bytes
/// arrived. async-io's `Async` tries the `recv` syscall on every read
/// before it looks at readiness, so under load most of the server's
/// `recvfrom` calls failed with `EAGAIN`, each followed by an `epoll_ctl`
/// to re-arm (13,283 of 15,567 in 50,000 h2load calls). The adapter hands
/// the stream this gate as the reader's waker, and goes to the stream only
/// after the gate was woken (or a read found bytes), as tokio's own
/// readiness tracking does.
#[derive(Debug)]
struct ReadGate {
    ready: AtomicBool,
    /// The task to wake when the stream wakes the gate.
    task: AtomicWaker,
}

impl Wake for ReadGate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// A futures-io stream as a tokio-io one, whose small writes are gathered
/// into one buffer until flush.
pub(crate) struct H2Adapter<T> {
    inner: T,
    buf: Vec<u8>,
    written: usize,
    /// How many bytes the next read offers (see `poll_read`).
    read_size: usize,
    /// The last read used under a quarter of its offer: another such read
    /// halves `read_size`.
    shrink: bool,
    /// What the stream reads into (see `poll_read`).
    scratch: Vec<u8>,
    /// Bytes of `scratch` read from the stream that h2 had no room for
    /// yet: its next read gets them.
    carried: std::ops::Range<usize>,
    /// Bytes still to read in this turn before yielding ([`READ_BUDGET`]).
    read_budget: usize,
    /// Whether the stream may have bytes to read (see [`ReadGate`]).
    gate: Arc<ReadGate>,
    /// `gate` as a waker, made once.
    gate_waker: Waker,
    tap: Option<Box<dyn Tap>>,
    /// The tap cut reading: h2 gets no more bytes.
    read_cut: bool,
    /// Whether writes still reach the stream.
    write_side: WriteSide,
}

/// The state of the adapter's writing.
#[derive(Debug)]
enum WriteSide {
    /// Writes go to the stream.
    Open,
    /// A write failed with this error. Writes are taken and dropped, so
    /// that h2 goes on reading what the peer sent before the failure; the
    /// first read that finds nothing more (or the end of the stream) ends
    /// this state, and that read fails with the error.
    Draining(io::Error),
    /// The failure has been reported: writes fail with its kind.
    Failed(io::ErrorKind),
}

impl<T> std::fmt::Debug for H2Adapter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Adapter")
            .field("buffered", &(self.buf.len() - self.written))
            .field("read_size", &self.read_size)
            .field("tapped", &self.tap.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> H2Adapter<T> {
    pub(crate) fn new(inner: T) -> Self {
        let gate = Arc::new(ReadGate {
            ready: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        H2Adapter {
            inner,
            buf: Vec::new(),
            written: 0,
            read_size: MIN_READ,
            shrink: false,
            scratch: Vec::new(),
            carried: 0..0,
            read_budget: READ_BUDGET,
            gate: gate.clone(),
            gate_waker: Waker::from(gate),
            tap: None,
            read_cut: false,
            write_side: WriteSide::Open,
        }
    }

    /// The adapter with `tap` watching its bytes.
    pub(crate) fn with_tap(inner: T, tap: Option<Box<dyn Tap>>) -> Self {
        let mut this = H2Adapter::new(inner);
        this.tap = tap;
        this
    }
}

/// Tells `tap` about the first `n` bytes of `bufs`.
fn tap_wrote(tap: &mut dyn Tap, bufs: &[IoSlice<'_>], mut n: usize) {
    for slice in bufs {
        if n == 0 {
            break;
        }
        let take = slice.len().min(n);
        tap.wrote(&slice[..take]);
        n -= take;
    }
}

impl<T: FuturesWrite + Unpin> H2Adapter<T> {
    /// Writes out everything buffered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T> H2Adapter<T> {
    /// Turns a failed write into [`WriteSide::Draining`]: the bytes
    /// gathered are dropped, and the task is woken so that h2 reads again
    /// (the read that finds nothing reports the error).
    fn write_failed(&mut self, err: io::Error, cx: &mut Context<'_>) {
        self.buf.clear();
        self.written = 0;
        self.write_side = WriteSide::Draining(err);
        cx.waker().wake_by_ref();
    }

    /// What a write gets once a write has failed: taken and dropped while
    /// draining, the failure's kind once it has been reported. `None` while
    /// writes go to the stream.
    fn after_failure<R>(&self, taken: R) -> Option<Poll<io::Result<R>>> {
        match &self.write_side {
            WriteSide::Open => None,
            WriteSide::Draining(_) => Some(Poll::Ready(Ok(taken))),
            WriteSide::Failed(kind) => Some(Poll::Ready(Err(io::Error::new(
                *kind,
                "the connection failed in an earlier write",
            )))),
        }
    }

    /// A read found nothing to hand h2 now: `Pending`, or, after a failed
    /// write, that write's error (there is nothing more to drain).
    fn nothing_to_read(&mut self) -> Poll<io::Result<()>> {
        match std::mem::replace(&mut self.write_side, WriteSide::Open) {
            WriteSide::Draining(err) => {
                self.write_side = WriteSide::Failed(err.kind());
                Poll::Ready(Err(err))
            }
            other => {
                self.write_side = other;
                Poll::Pending
            }
        }
    }

    /// Has the stream ended while a write's failure was being drained? Its
    /// error is then reported by the writes that follow.
    fn read_ended(&mut self) {
        if let WriteSide::Draining(err) = &self.write_side {
            self.write_side = WriteSide::Failed(err.kind());
        }
    }
}

impl<T: FuturesRead + Unpin> AsyncRead for H2Adapter<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // futures-io reads into initialised memory, and h2 hands a fresh
        // uninitialised buffer (all the spare room of its read buffer, a few
        // KiB or more) to every read, the reads that find nothing included.
        // Zeroing all of it, as tokio_util::compat does, was a quarter of
        // the instructions of a small unary call. So the stream reads into
        // `scratch`, zeroed once when it grows, and only what it read is
        // copied into h2's buffer (zeroing the offered bytes on every read,
        // as before, cost 4,300 instructions per call under h2load, against
        // about 150 for the copy). `read_size` bytes are offered: doubled
        // when a read fills them, halved when two reads in a row use under
        // a quarter, as hyper's adaptive reads do.
        //
        // The offer does not depend on the room h2 has: what does not fit
        // waits in `scratch` for h2's next read. h2's room shrinks as its
        // buffer fills (4,028 bytes, then 2,987, 1,946, 905 in a ping-pong
        // of 1,041-byte messages), and offering only that room split one
        // message in four across two system calls.
        let this = self.get_mut();
        if buf.remaining() == 0 {
            // No room: nothing to hand over (tokio-io's rule for a full
            // buffer), and nothing to show the tap.
            return Poll::Ready(Ok(()));
        }
        if !this.carried.is_empty() {
            return this.hand_over(buf, this.carried.clone());
        }
        if this.read_cut {
            // The tap's owner is closing the connection; h2 reads no more.
            return this.nothing_to_read();
        }
        if this.read_budget == 0 {
            this.read_budget = READ_BUDGET;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // Since the stream last said "nothing yet", has it woken us?
        this.gate.task.register(cx.waker());
        if !this.gate.ready.swap(false, Ordering::AcqRel) {
            return this.nothing_to_read();
        }
        let mut gated = Context::from_waker(&this.gate_waker);
        // Never past the turn's budget by more than one small read.
        let size = this.read_size.min(this.read_budget.max(MIN_READ));
        if this.scratch.len() < size {
            this.scratch.resize(size, 0);
        }
        let n = match Pin::new(&mut this.inner).poll_read(&mut gated, &mut this.scratch[..size]) {
            Poll::Ready(result) => {
                // It may have more: the next read goes to the stream.
                this.gate.ready.store(true, Ordering::Release);
                result?
            }
            Poll::Pending => {
                // The task sleeps until the stream has more: a new turn.
                this.read_budget = READ_BUDGET;
                return this.nothing_to_read();
            }
        };
        this.read_budget = this.read_budget.saturating_sub(n);
        this.adapt(n, size);
        if n == 0 {
            // The end of the stream.
            this.read_ended();
            return Poll::Ready(Ok(()));
        }
        this.hand_over(buf, 0..n)
    }
}

impl<T> H2Adapter<T> {
    /// Hands h2 the bytes of `scratch[bytes]` it has room for, and keeps
    /// the rest for its next read. The tap sees bytes as h2 gets them, so
    /// that h2 has handled everything before a cut when the tap's owner
    /// acts on it.
    fn hand_over(
        &mut self,
        buf: &mut ReadBuf<'_>,
        bytes: std::ops::Range<usize>,
    ) -> Poll<io::Result<()>> {
        let take = bytes.len().min(buf.remaining());
        let given = bytes.start..bytes.start + take;
        let mut passed = take;
        if let Some(tap) = self.tap.as_mut() {
            passed = tap.read(&self.scratch[given.clone()]).min(take);
        }
        if passed < take {
            // Cut: h2 gets no more, the bytes kept included.
            self.read_cut = true;
            self.carried = 0..0;
            if passed == 0 {
                // Not an end of stream, which h2 would take as one.
                return Poll::Pending;
            }
        } else {
            self.carried = given.end..bytes.end;
        }
        buf.put_slice(&self.scratch[given.start..given.start + passed]);
        Poll::Ready(Ok(()))
    }

    /// Adapts `read_size` to a read of `n` bytes out of `size` offered.
    fn adapt(&mut self, n: usize, size: usize) {
        if n == size {
            // Never past what a turn may read: it could grow without end
            // while the budget caps each read.
            self.read_size = (self.read_size * 2).min(READ_BUDGET);
            self.shrink = false;
        } else if n >= size / 4 {
            self.shrink = false;
        } else if !std::mem::replace(&mut self.shrink, true) {
            // One small read is the usual tail of a burst: halving on it
            // made a 1,041-byte message take two reads (1,024 bytes, then
            // 17 from 2,048) in every turn of a ping-pong.
        } else {
            self.shrink = false;
            self.read_size = (self.read_size / 2).max(MIN_READ);
            // A connection gone quiet keeps a small buffer only (never
            // less than the bytes just read).
            let keep = self.read_size.max(n);
            if self.scratch.len() > keep.saturating_mul(4) {
                self.scratch.truncate(keep);
                self.scratch.shrink_to_fit();
            }
        }
    }
}

impl<T: FuturesWrite + Unpin> AsyncWrite for H2Adapter<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if let Some(taken) = this.after_failure(total) {
            return taken;
        }
        if let Some(tap) = this.tap.as_mut() {
            tap.insert(&mut this.buf);
        }
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        if total >= LARGE || this.buf.len() + total > CAPACITY {
            if let Err(err) = ready!(this.poll_drain(cx)) {
                this.write_failed(err, cx);
                return Poll::Ready(Ok(total));
            }
        }
        if total >= LARGE {
            // Large: no copy; one writev where the stream supports it.
            let n = match ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)) {
                Ok(n) => n,
                Err(err) => {
                    this.write_failed(err, cx);
                    return Poll::Ready(Ok(total));
                }
            };
            if let Some(tap) = this.tap.as_mut() {
                tap_wrote(tap.as_mut(), bufs, n);
            }
            return Poll::Ready(Ok(n));
        }
        // Small, and (drained above if need be) it fits.
        for slice in bufs {
            this.buf.extend_from_slice(slice);
        }
        if let Some(tap) = this.tap.as_mut() {
            tap_wrote(tap.as_mut(), bufs, total);
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(taken) = this.after_failure(()) {
            return taken;
        }
        if let Some(tap) = this.tap.as_mut() {
            tap.insert(&mut this.buf);
        }
        let flushed = match ready!(this.poll_drain(cx)) {
            Ok(()) => ready!(Pin::new(&mut this.inner).poll_flush(cx)),
            Err(err) => Err(err),
        };
        if let Err(err) = flushed {
            this.write_failed(err, cx);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(taken) = this.after_failure(()) {
            return taken;
        }
        let closed = match ready!(this.poll_drain(cx)) {
            Ok(()) => ready!(Pin::new(&mut this.inner).poll_close(cx)),
            Err(err) => Err(err),
        };
        if let Err(err) = closed {
            this.write_failed(err, cx);
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records each write; accepts at most `limit` bytes per write.
    struct Recorder {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        limit: usize,
    }

    impl FuturesWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.limit);
            self.writes.lock().unwrap().push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn run<F: FnMut(&mut Context<'_>) -> Poll<R>, R>(mut f: F) -> R {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        match f(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => panic!("pending"),
        }
    }

    /// Puts `inserted` in the output once, and records what it sees.
    struct Inserting {
        inserted: Option<Vec<u8>>,
        seen: Arc<Mutex<Vec<u8>>>,
    }

    impl Tap for Inserting {
        fn read(&mut self, bytes: &[u8]) -> usize {
            bytes.len()
        }

        fn wrote(&mut self, bytes: &[u8]) {
            self.seen.lock().unwrap().extend_from_slice(bytes);
        }

        fn insert(&mut self, out: &mut Vec<u8>) {
            if let Some(bytes) = self.inserted.take() {
                out.extend_from_slice(&bytes);
            }
        }
    }

    #[test]
    fn a_taps_bytes_go_out_before_what_h2_writes_next() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tap = Inserting {
            inserted: Some(b"TAP".to_vec()),
            seen: seen.clone(),
        };
        let mut io = H2Adapter::with_tap(
            Recorder {
                writes: writes.clone(),
                limit: usize::MAX,
            },
            Some(Box::new(tap)),
        );
        run(|cx| Pin::new(&mut io).poll_write(cx, b"h2-frame")).unwrap();
        let large = vec![7u8; LARGE];
        run(|cx| Pin::new(&mut io).poll_write(cx, &large)).unwrap();
        run(|cx| Pin::new(&mut io).poll_flush(cx)).unwrap();
        let out: Vec<u8> = writes.lock().unwrap().concat();
        assert!(out.starts_with(b"TAPh2-frame"), "{:?}", &out[..16]);
        assert_eq!(out.len(), 3 + 8 + LARGE);
        // The tap saw h2's bytes only, not its own.
        assert_eq!(seen.lock().unwrap().len(), 8 + LARGE);
    }

    #[test]
    fn header_and_payload_go_out_in_one_write_at_flush() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let mut io = H2Adapter::new(Recorder {
            writes: writes.clone(),
            limit: usize::MAX,
        });
        let header = [1u8; 9];
        let payload = vec![2u8; 4000];
        let n = run(|cx| {
            Pin::new(&mut io)
                .poll_write_vectored(cx, &[IoSlice::new(&header), IoSlice::new(&payload)])
        })
        .unwrap();
        assert_eq!(n, 9 + 4000);
        run(|cx| Pin::new(&mut io).poll_write(cx, b"tail")).unwrap();
        assert!(writes.lock().unwrap().is_empty());
        run(|cx| Pin::new(&mut io).poll_flush(cx)).unwrap();
        let writes = writes.lock().unwrap();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].len(), 9 + 4000 + 4);
        assert_eq!(&writes[0][..9], &header);
        assert_eq!(&writes[0][9 + 4000..], b"tail");
    }

    /// Yields `chunk` bytes per read (as many as fit) and records how many
    /// bytes each read was offered.
    struct Source {
        chunk: usize,
        offered: Vec<usize>,
    }

    impl FuturesRead for Source {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.offered.push(buf.len());
            let n = self.chunk.min(buf.len());
            buf[..n].fill(5);
            Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn reads_offer_what_recent_reads_used() {
        let mut io = H2Adapter::new(Source {
            chunk: 100,
            offered: Vec::new(),
        });
        let mut storage = vec![0u8; 1 << 20];
        let mut read = |io: &mut H2Adapter<Source>| {
            let mut buf = ReadBuf::new(&mut storage);
            run(|cx| Pin::new(&mut *io).poll_read(cx, &mut buf)).unwrap();
            buf.filled().len()
        };
        // Small reads: a small buffer is offered (and zeroed), not 1 MiB.
        assert_eq!(read(&mut io), 100);
        assert_eq!(io.inner.offered, [MIN_READ]);
        // Reads that fill what is offered double it.
        io.inner.chunk = usize::MAX;
        for _ in 0..4 {
            read(&mut io);
        }
        assert_eq!(
            io.inner.offered[1..],
            [MIN_READ, 2 * MIN_READ, 4 * MIN_READ, 8 * MIN_READ]
        );
        // Small ones again halve it, every second one, down to MIN_READ.
        io.inner.chunk = 10;
        for size in [16, 8, 8, 4, 4, 2, 2, 1] {
            assert_eq!(read(&mut io), 10);
            assert_eq!(io.read_size, size * MIN_READ);
        }
        // And the buffer read into shrinks with it.
        assert!(
            io.scratch.capacity() <= 4 * MIN_READ,
            "{}",
            io.scratch.capacity()
        );
        // From 8 KiB: a read of exactly a quarter keeps the size; two of
        // less in a row halve it (to 4 KiB, not straight down); one of a
        // quarter or more in between starts the count again.
        io.read_size = 8 * MIN_READ;
        io.inner.chunk = 2 * MIN_READ;
        read(&mut io);
        assert_eq!(io.read_size, 8 * MIN_READ);
        io.inner.chunk = 2 * MIN_READ - 1;
        read(&mut io);
        assert_eq!(io.read_size, 8 * MIN_READ);
        io.inner.chunk = 2 * MIN_READ;
        read(&mut io);
        io.inner.chunk = 2 * MIN_READ - 1;
        read(&mut io);
        assert_eq!(io.read_size, 8 * MIN_READ);
        read(&mut io);
        assert_eq!(io.read_size, 4 * MIN_READ);
    }

    /// Reads from `io` into `storage` until a read is pending; the bytes read.
    fn read_until_pending<T: FuturesRead + Unpin>(
        io: &mut H2Adapter<T>,
        cx: &mut Context<'_>,
        storage: &mut [u8],
    ) -> usize {
        let mut read = 0;
        loop {
            let mut buf = ReadBuf::new(storage);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                Poll::Ready(result) => {
                    result.unwrap();
                    read += buf.filled().len();
                }
                Poll::Pending => return read,
            }
        }
    }

    /// Holds `available` bytes, then is pending until refilled.
    #[derive(Default)]
    struct Bursts {
        available: usize,
        waker: Option<Waker>,
        /// How many reads found bytes.
        reads: usize,
    }

    impl FuturesRead for Bursts {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            if self.available == 0 {
                self.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = self.available.min(buf.len());
            self.available -= n;
            self.reads += 1;
            Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn a_message_a_little_over_the_least_read_takes_one_read_per_turn() {
        // A ping-pong of 1 KiB messages: 1,041 bytes arrive per turn.
        let mut io = H2Adapter::new(Bursts::default());
        let mut storage = vec![0u8; 64 * 1024];
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut reads_per_turn = Vec::new();
        for _ in 0..6 {
            io.inner.available = 1041;
            if let Some(waker) = io.inner.waker.take() {
                waker.wake();
            }
            let before = io.inner.reads;
            assert_eq!(read_until_pending(&mut io, &mut cx, &mut storage), 1041);
            reads_per_turn.push(io.inner.reads - before);
        }
        // The first turn finds the size; every later one reads once.
        assert_eq!(reads_per_turn, [2, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn what_does_not_fit_in_h2s_room_waits_for_its_next_read() {
        let mut io = H2Adapter::new(Bursts::default());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        // Two turns of 1,041-byte messages set the offer to 2 KiB.
        for _ in 0..2 {
            io.inner.available = 1041;
            let mut storage = vec![0u8; 4096];
            let mut buf = ReadBuf::new(&mut storage);
            while Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_ready() {}
            io.gate.ready.store(true, Ordering::SeqCst);
        }
        assert_eq!(io.read_size, 2 * MIN_READ);
        // h2 has 905 bytes of room: the stream is still read once.
        io.inner.available = 1041;
        let reads = io.inner.reads;
        let mut storage = vec![0u8; 905];
        let mut buf = ReadBuf::new(&mut storage);
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_ready());
        assert_eq!(buf.filled().len(), 905);
        assert_eq!(io.inner.reads, reads + 1);
        // The rest comes with the next read, from the adapter alone.
        let mut storage = vec![0u8; 4096];
        let mut buf = ReadBuf::new(&mut storage);
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_ready());
        assert_eq!(buf.filled().len(), 1041 - 905);
        assert_eq!(io.inner.reads, reads + 1);
        // A read that fills the room h2 had does not grow the offer.
        assert_eq!(io.read_size, 2 * MIN_READ);
    }

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_stream_that_is_always_ready_is_read_in_turns() {
        let mut io = H2Adapter::new(Source {
            chunk: usize::MAX,
            offered: Vec::new(),
        });
        let count = Arc::new(Count(Default::default()));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut storage = vec![0u8; 1 << 20];
        for turn in 1..=3 {
            let read = read_until_pending(&mut io, &mut cx, &mut storage);
            // The turn ends once the budget is spent, with the task woken
            // so that it runs again after the others.
            assert!(
                (READ_BUDGET..READ_BUDGET + MIN_READ).contains(&read),
                "turn {turn}: {read} bytes"
            );
            assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), turn);
        }
        // Full reads turn after turn: the offer stops growing at a turn's
        // worth, and small reads bring it down again.
        for _ in 0..100 {
            let mut buf = ReadBuf::new(&mut storage);
            let _ = Pin::new(&mut io).poll_read(&mut cx, &mut buf);
        }
        assert_eq!(io.read_size, READ_BUDGET);
        io.inner.chunk = 1;
        for _ in 0..2 {
            let mut buf = ReadBuf::new(&mut storage);
            while Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_pending() {}
        }
        assert_eq!(io.read_size, READ_BUDGET / 2);
    }

    /// Counts the bytes it is shown, and cuts reading at byte `cut_at`.
    struct Cutting {
        shown: Arc<Mutex<Vec<usize>>>,
        seen: usize,
        cut_at: usize,
    }

    impl Tap for Cutting {
        fn read(&mut self, bytes: &[u8]) -> usize {
            self.shown.lock().unwrap().push(bytes.len());
            let passed = bytes.len().min(self.cut_at - self.seen);
            self.seen += passed;
            passed
        }

        fn wrote(&mut self, _bytes: &[u8]) {}

        fn insert(&mut self, _out: &mut Vec<u8>) {}
    }

    /// An adapter over 100-byte reads whose tap cuts at byte `cut_at`, and
    /// the sizes the tap was shown.
    fn cutting_at(cut_at: usize) -> (H2Adapter<Source>, Arc<Mutex<Vec<usize>>>) {
        let shown = Arc::new(Mutex::new(Vec::new()));
        let io = H2Adapter::with_tap(
            Source {
                chunk: 100,
                offered: Vec::new(),
            },
            Some(Box::new(Cutting {
                shown: shown.clone(),
                seen: 0,
                cut_at,
            })),
        );
        (io, shown)
    }

    /// One read by h2 with `room` bytes free: how many it got, or `None`
    /// when the read is pending.
    fn hand_over<T: FuturesRead + Unpin>(io: &mut H2Adapter<T>, room: usize) -> Option<usize> {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut storage = vec![0u8; room];
        let mut buf = ReadBuf::new(&mut storage);
        match Pin::new(io).poll_read(&mut cx, &mut buf) {
            Poll::Ready(result) => Some(result.map(|()| buf.filled().len()).unwrap()),
            Poll::Pending => None,
        }
    }

    #[test]
    fn the_tap_sees_bytes_as_h2_gets_them_and_a_cut_drops_what_is_kept() {
        let (mut io, shown) = cutting_at(50);
        // h2 has room for 24 bytes (its preface): the tap sees those only.
        assert_eq!(hand_over(&mut io, 24), Some(24));
        assert_eq!(*shown.lock().unwrap(), [24]);
        // The 76 bytes kept come next, cut at byte 50.
        assert_eq!(hand_over(&mut io, 1024), Some(26));
        assert_eq!(*shown.lock().unwrap(), [24, 76]);
        // Nothing more, neither kept bytes nor a read of the stream.
        assert_eq!(hand_over(&mut io, 1024), None);
        assert_eq!(io.inner.offered.len(), 1);
        assert_eq!(*shown.lock().unwrap(), [24, 76]);
    }

    #[test]
    fn a_cut_inside_a_small_hand_over_drops_the_rest_of_what_is_kept() {
        let (mut io, shown) = cutting_at(30);
        // 100 bytes read; h2 takes 24, then 10 of which the tap passes 6.
        assert_eq!(hand_over(&mut io, 24), Some(24));
        assert_eq!(hand_over(&mut io, 10), Some(6));
        // The 66 bytes still kept are dropped, unseen.
        assert_eq!(hand_over(&mut io, 1024), None);
        assert_eq!(*shown.lock().unwrap(), [24, 10]);
        // A read with no room hands over nothing and shows the tap nothing.
        assert_eq!(hand_over(&mut io, 0), Some(0));
        assert_eq!(*shown.lock().unwrap(), [24, 10]);
        assert_eq!(io.inner.offered.len(), 1);
    }

    /// Records what it is told was written.
    struct Seen(Arc<Mutex<Vec<u8>>>);

    impl Tap for Seen {
        fn read(&mut self, bytes: &[u8]) -> usize {
            bytes.len()
        }

        fn wrote(&mut self, bytes: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(bytes);
        }

        fn insert(&mut self, _out: &mut Vec<u8>) {}
    }

    #[test]
    fn the_tap_sees_exactly_what_the_stream_took() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut io = H2Adapter::with_tap(
            Recorder {
                writes: writes.clone(),
                limit: 5,
            },
            Some(Box::new(Seen(seen.clone()))),
        );
        // A large vectored write the stream takes only part of.
        let header = [1u8; 9];
        let payload = vec![2u8; 16 * 1024];
        let n = run(|cx| {
            Pin::new(&mut io)
                .poll_write_vectored(cx, &[IoSlice::new(&header), IoSlice::new(&payload)])
        })
        .unwrap();
        // (The stream writes the first slice only, and 5 bytes of it.)
        assert_eq!(n, 5);
        let mut expected = header[..5].to_vec();
        assert_eq!(*seen.lock().unwrap(), expected);
        // A small one is taken whole.
        run(|cx| {
            Pin::new(&mut io).poll_write_vectored(cx, &[IoSlice::new(b"ab"), IoSlice::new(b"c")])
        })
        .unwrap();
        expected.extend_from_slice(b"abc");
        assert_eq!(*seen.lock().unwrap(), expected);
        assert!(io.is_write_vectored(), "h2 must see a vectored writer");
    }

    #[test]
    fn a_full_buffer_is_written_out_before_the_next_byte() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let mut io = H2Adapter::new(Recorder {
            writes: writes.clone(),
            limit: usize::MAX,
        });
        let chunk = vec![4u8; 4096];
        for _ in 0..CAPACITY / 4096 {
            assert_eq!(
                run(|cx| Pin::new(&mut io).poll_write(cx, &chunk)).unwrap(),
                4096
            );
        }
        assert!(
            writes.lock().unwrap().is_empty(),
            "exactly full: still buffered"
        );
        assert_eq!(run(|cx| Pin::new(&mut io).poll_write(cx, b"x")).unwrap(), 1);
        let sizes: Vec<usize> = writes.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [CAPACITY]);
        // Shutting down writes out the rest first.
        run(|cx| Pin::new(&mut io).poll_shutdown(cx)).unwrap();
        let sizes: Vec<usize> = writes.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [CAPACITY, 1]);
    }

    #[test]
    fn partial_writes_and_large_writes() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let mut io = H2Adapter::new(Recorder {
            writes: writes.clone(),
            limit: 1000,
        });
        run(|cx| Pin::new(&mut io).poll_write(cx, &[7u8; 2500])).unwrap();
        run(|cx| Pin::new(&mut io).poll_flush(cx)).unwrap();
        let sizes: Vec<usize> = writes.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        writes.lock().unwrap().clear();
        // A large write drains what is buffered, then goes straight through.
        run(|cx| Pin::new(&mut io).poll_write(cx, b"small")).unwrap();
        let big = vec![3u8; LARGE];
        let n = run(|cx| Pin::new(&mut io).poll_write(cx, &big)).unwrap();
        assert_eq!(n, 1000);
        let sizes: Vec<usize> = writes.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [5, 1000]);
        // Filling past CAPACITY drains what was buffered first.
        writes.lock().unwrap().clear();
        let chunk = vec![4u8; LARGE - 1];
        for _ in 0..(CAPACITY / (LARGE - 1) + 1) {
            run(|cx| Pin::new(&mut io).poll_write(cx, &chunk)).unwrap();
        }
        let total: usize = writes.lock().unwrap().iter().map(Vec::len).sum();
        assert_eq!(total, (CAPACITY / (LARGE - 1)) * (LARGE - 1));
    }

    /// A stream whose peer has gone: every write fails with `BrokenPipe`;
    /// reads give `arrived` (what the peer sent before it went), then
    /// `Pending`, or the end of the stream if `ends`.
    struct PeerGone {
        arrived: Option<Vec<u8>>,
        ends: bool,
    }

    impl FuturesRead for PeerGone {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            match self.arrived.take() {
                Some(bytes) => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    Poll::Ready(Ok(bytes.len()))
                }
                None if self.ends => Poll::Ready(Ok(0)),
                None => Poll::Pending,
            }
        }
    }

    impl FuturesWrite for PeerGone {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// One read of `io` into a fresh buffer: what it handed h2, or its error.
    fn read_once<T: FuturesRead + Unpin>(io: &mut H2Adapter<T>) -> io::Result<Vec<u8>> {
        let mut storage = [0u8; 256];
        let mut buf = ReadBuf::new(&mut storage);
        run(|cx| Pin::new(&mut *io).poll_read(cx, &mut buf))?;
        Ok(buf.filled().to_vec())
    }

    #[test]
    fn after_a_failed_write_h2_reads_what_the_peer_sent_then_the_read_fails() {
        let mut io = H2Adapter::new(PeerGone {
            arrived: Some(b"GOAWAY".to_vec()),
            ends: false,
        });
        // A large write fails at the stream: taken, and the task woken to
        // read on.
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let large = vec![1u8; LARGE];
        let written = Pin::new(&mut io).poll_write(&mut cx, &large);
        assert!(
            matches!(written, Poll::Ready(Ok(n)) if n == LARGE),
            "{written:?}"
        );
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        // Later writes and flushes are taken too, while there is more to read.
        assert_eq!(
            run(|cx| Pin::new(&mut io).poll_write(cx, b"ping")).unwrap(),
            4
        );
        run(|cx| Pin::new(&mut io).poll_flush(cx)).unwrap();
        // h2 gets what the peer sent before it went.
        assert_eq!(read_once(&mut io).unwrap(), b"GOAWAY");
        // Nothing more to read: the read fails with the write's error.
        let err = read_once(&mut io).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        // From then on, writes fail with it.
        let err = run(|cx| Pin::new(&mut io).poll_write(cx, b"more")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let err = run(|cx| Pin::new(&mut io).poll_flush(cx)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_failed_flush_then_the_end_of_the_stream() {
        let mut io = H2Adapter::new(PeerGone {
            arrived: Some(b"GOAWAY".to_vec()),
            ends: true,
        });
        // Gathered, then the flush meets the gone peer.
        assert_eq!(
            run(|cx| Pin::new(&mut io).poll_write(cx, b"frame")).unwrap(),
            5
        );
        run(|cx| Pin::new(&mut io).poll_flush(cx)).unwrap();
        assert_eq!(read_once(&mut io).unwrap(), b"GOAWAY");
        // The end of the stream is an end, not an error ...
        assert_eq!(read_once(&mut io).unwrap(), b"");
        // ... and the writes after it fail.
        let err = run(|cx| Pin::new(&mut io).poll_write(cx, b"more")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let err = run(|cx| Pin::new(&mut io).poll_shutdown(cx)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
