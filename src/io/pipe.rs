//! An in-memory duplex byte pipe: [`duplex`] gives two connected ends.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::io::{AsyncRead, AsyncWrite};

struct Shared {
    buffer: VecDeque<u8>,
    capacity: usize,
    writer_closed: bool,
    reader_closed: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
    // Every update is a single call: a poisoned lock is still consistent.
    crate::sync::lock(shared)
}

struct PipeReader(SharedRef);
struct PipeWriter(SharedRef);

/// One direction: bytes written to the writer come out of the reader.
fn pipe(capacity: usize) -> (PipeReader, PipeWriter) {
    let shared = Arc::new(Mutex::new(Shared {
        buffer: VecDeque::with_capacity(capacity.min(64 * 1024)),
        capacity: capacity.max(1),
        writer_closed: false,
        reader_closed: false,
        read_waker: None,
        write_waker: None,
    }));
    (PipeReader(shared.clone()), PipeWriter(shared))
}

impl PipeReader {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.0);
        if shared.buffer.is_empty() {
            if shared.writer_closed {
                return Poll::Ready(Ok(0));
            }
            shared.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(shared.buffer.len());
        let (front, back) = shared.buffer.as_slices();
        let from_front = n.min(front.len());
        buf[..from_front].copy_from_slice(&front[..from_front]);
        buf[from_front..n].copy_from_slice(&back[..n - from_front]);
        shared.buffer.drain(..n);
        if let Some(waker) = shared.write_waker.take() {
            waker.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut shared = lock(&self.0);
        shared.reader_closed = true;
        shared.buffer.clear();
        if let Some(waker) = shared.write_waker.take() {
            waker.wake();
        }
    }
}

impl PipeWriter {
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.0);
        if shared.reader_closed || shared.writer_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = shared.capacity - shared.buffer.len();
        if room == 0 {
            shared.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        shared.buffer.extend(&buf[..n]);
        if let Some(waker) = shared.read_waker.take() {
            waker.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn close(&self) {
        let mut shared = lock(&self.0);
        shared.writer_closed = true;
        if let Some(waker) = shared.read_waker.take() {
            waker.wake();
        }
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// An in-memory, bidirectional byte pipe: two connected ends, each readable
/// and writable, each direction holding at most `capacity` bytes. Handy for
/// tests and for running client and server in one process without sockets.
pub fn duplex(capacity: usize) -> (Duplex, Duplex) {
    let (a_to_b_reader, a_to_b_writer) = pipe(capacity);
    let (b_to_a_reader, b_to_a_writer) = pipe(capacity);
    (
        Duplex {
            reader: b_to_a_reader,
            writer: a_to_b_writer,
        },
        Duplex {
            reader: a_to_b_reader,
            writer: b_to_a_writer,
        },
    )
}

/// One end of an in-memory duplex pipe (see [`duplex`]).
///
/// Closing (or dropping) an end makes the other end read EOF; writing to an
/// end whose peer is gone fails with `BrokenPipe`.
pub struct Duplex {
    reader: PipeReader,
    writer: PipeWriter,
}

impl std::fmt::Debug for Duplex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Duplex").finish_non_exhaustive()
    }
}

impl AsyncRead for Duplex {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.reader.poll_read(cx, buf)
    }
}

impl AsyncWrite for Duplex {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.writer.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.close();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::{AsyncReadExt, AsyncWriteExt};

    use super::duplex;

    #[test]
    fn bytes_cross_both_ways_and_close_gives_eof() {
        block_on(async {
            let (mut a, mut b) = duplex(8);
            a.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 5];
            b.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hello");
            b.write_all(b"back").await.unwrap();
            let mut buf = [0u8; 4];
            a.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"back");
            a.close().await.unwrap();
            let mut rest = Vec::new();
            assert_eq!(b.read_to_end(&mut rest).await.unwrap(), 0);
        });
    }

    #[test]
    fn writer_blocks_at_capacity_until_read() {
        block_on(async {
            let (mut a, mut b) = duplex(4);
            let write = async {
                a.write_all(b"0123456789").await.unwrap();
                a.close().await.unwrap();
            };
            let read = async {
                let mut all = Vec::new();
                b.read_to_end(&mut all).await.unwrap();
                all
            };
            let ((), all) = futures::join!(write, read);
            assert_eq!(all, b"0123456789");
        });
    }

    #[test]
    fn write_after_peer_dropped_is_broken_pipe() {
        block_on(async {
            let (mut a, b) = duplex(4);
            drop(b);
            let err = a.write_all(b"x").await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
        });
    }
}
