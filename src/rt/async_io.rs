//! TCP on `async-io`: the default behind [`Runtime::tcp_connect`] and
//! [`Runtime::tcp_incoming`](crate::rt::Runtime::tcp_incoming).
//!
//! `async-io`'s reactor runs on its own thread when no executor drives it, so
//! these work under every runtime; runtimes with a reactor of their own
//! (tokio) override them.
//!
//! [`Runtime::tcp_connect`]: crate::rt::Runtime::tcp_connect

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
#[cfg(feature = "smol")]
use std::sync::Arc;
use std::task::{ready, Context, Poll};
#[cfg(feature = "smol")]
use std::task::{Wake, Waker};

use async_io::Async;
use futures::io::{AsyncRead, AsyncWrite};
use futures::StreamExt;

use super::readiness::Registration;
use super::{Connecting, Incoming, Resolving};
use crate::io::BoxIo;

/// Connects to `addr`, with `TCP_NODELAY` set.
pub(crate) fn connect(addr: SocketAddr) -> Connecting {
    Box::pin(async move {
        let stream = Async::<TcpStream>::connect(addr).await?;
        stream.get_ref().set_nodelay(true)?;
        Ok(Box::new(AsyncIoTcp::new(stream)) as BoxIo)
    })
}

/// Resolves `host:port` with the system's resolver on the `blocking`
/// thread pool (no executor needed); an IP address needs no lookup.
pub(crate) fn resolve(host: &str, port: u16) -> Resolving {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Box::pin(std::future::ready(Ok(vec![SocketAddr::new(ip, port)])));
    }
    let host = host.to_owned();
    Box::pin(blocking::unblock(move || {
        use std::net::ToSocketAddrs;
        Ok((host.as_str(), port).to_socket_addrs()?.collect())
    }))
}

/// Connects to the Unix domain socket at `path`.
#[cfg(unix)]
pub(crate) fn unix_connect(path: std::path::PathBuf) -> Connecting {
    Box::pin(async move {
        let stream = Async::<std::os::unix::net::UnixStream>::connect(&path).await?;
        Ok(Box::new(stream) as BoxIo)
    })
}

/// The connections a Unix domain socket `listener` accepts.
#[cfg(unix)]
pub(crate) fn unix_incoming(
    listener: std::os::unix::net::UnixListener,
) -> io::Result<futures::stream::BoxStream<'static, io::Result<BoxIo>>> {
    let listener = Async::new(listener)?;
    Ok(futures::stream::unfold(listener, |listener| async move {
        let accepted = listener
            .accept()
            .await
            .map(|(stream, _)| Box::new(stream) as BoxIo);
        Some((accepted, listener))
    })
    .boxed())
}

/// The connections `listener` accepts, each with `TCP_NODELAY` set.
pub(crate) fn incoming(listener: TcpListener) -> io::Result<Incoming> {
    let listener = Async::new(listener)?;
    Ok(futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.and_then(|(stream, remote)| {
            stream.get_ref().set_nodelay(true)?;
            Ok((Box::new(AsyncIoTcp::new(stream)) as BoxIo, remote))
        });
        Some((accepted, listener))
    })
    .boxed())
}

/// An async-io TCP stream, as the helpers and libp2p's `TcpTransport` use
/// it, with these changes from `Async<TcpStream>`:
///
/// - it skips the read it knows would find nothing. h2 reads until a read
///   is pending, so every batch of incoming frames ends with a read that
///   fails with `EAGAIN` before async-io registers interest in readability.
///   A read that returns less than it was offered has drained the socket's
///   receive queue; the next read waits for readability first (async-io
///   reports data that arrived in between as readiness, so nothing is
///   missed) and saves that system call. Every wait for readability goes
///   through that one step: `Async::poll_read` leaves the event it was
///   woken for unconsumed when its read succeeds, and the next wait then
///   returned at once, for a read that found nothing (once per round trip
///   on the server's side of a ping-pong);
/// - a drained socket that [`crate::rt::block_on`] saw become readable
///   between tasks (see [`readiness`](super::readiness)) is read without
///   asking async-io first;
/// - with the `smol` feature, the wakers it hands async-io while a read or
///   a write waits note a wake made on a thread not in `rt::block_on`
///   (`NoteWake`): that is async-io's helper thread turning the reactor,
///   which `rt::block_on` must know of to keep its slices short;
/// - closing it (`poll_close`) shuts the write half down, so the peer reads
///   EOF (`Async`'s own `poll_close` only flushes).
#[derive(Debug)]
pub(crate) struct AsyncIoTcp {
    io: Async<TcpStream>,
    drained: bool,
    /// The socket's readiness hints (dropped after `io` closes the socket).
    hint: Option<Registration>,
    /// The wakers last handed async-io for a read and for a write (see
    /// [`NoteWake`]).
    #[cfg(feature = "smol")]
    waiting: [Option<Arc<NoteWake>>; 2],
    /// Reads tried on the socket.
    #[cfg(test)]
    reads: usize,
    /// Waits for readiness asked of async-io.
    #[cfg(test)]
    waits: usize,
}

impl AsyncIoTcp {
    pub(crate) fn new(io: Async<TcpStream>) -> Self {
        let hint = Registration::new(io.get_ref());
        AsyncIoTcp {
            io,
            drained: false,
            hint,
            #[cfg(feature = "smol")]
            waiting: [None, None],
            #[cfg(test)]
            reads: 0,
            #[cfg(test)]
            waits: 0,
        }
    }

    /// The socket.
    #[cfg_attr(not(feature = "libp2p"), allow(dead_code))]
    pub(crate) fn get_ref(&self) -> &TcpStream {
        self.io.get_ref()
    }

    /// The `async-io` handle of the socket.
    #[cfg_attr(not(feature = "libp2p"), allow(dead_code))]
    pub(crate) fn into_inner(mut self) -> Async<TcpStream> {
        if let Some(hint) = self.hint.take() {
            hint.end(self.io.get_ref());
        }
        self.io
    }
}

/// What a task waits on async-io for.
#[derive(Clone, Copy)]
enum Wait {
    Read = 0,
    Write = 1,
}

impl AsyncIoTcp {
    /// Waits for async-io to report the socket readable or writable.
    #[cfg(not(feature = "smol"))]
    fn poll_ready(&mut self, cx: &mut Context<'_>, wait: Wait) -> Poll<io::Result<()>> {
        match wait {
            Wait::Read => self.io.poll_readable(cx),
            Wait::Write => self.io.poll_writable(cx),
        }
    }

    /// Waits for async-io to report the socket readable or writable, its
    /// wake noted by `rt::block_on` when it comes from another thread (see
    /// [`NoteWake`]).
    #[cfg(feature = "smol")]
    fn poll_ready(&mut self, cx: &mut Context<'_>, wait: Wait) -> Poll<io::Result<()>> {
        let waiting = match &mut self.waiting[wait as usize] {
            Some(waiting) if waiting.0.will_wake(cx.waker()) => waiting.clone(),
            slot => slot.insert(Arc::new(NoteWake(cx.waker().clone()))).clone(),
        };
        let waker = Waker::from(waiting);
        let mut cx = Context::from_waker(&waker);
        match wait {
            Wait::Read => self.io.poll_readable(&mut cx),
            Wait::Write => self.io.poll_writable(&mut cx),
        }
    }

    /// Writes with `write` until the socket takes bytes, waiting on
    /// async-io while it is full (as `Async`'s own `poll_write` does).
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match write(self.io.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.poll_ready(cx, Wait::Write))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
    }
}

/// Wakes a task that async-io found its socket ready for, and tells
/// `rt::block_on` when that happened on another thread: async-io's helper
/// thread turning the reactor while `block_on` is busy, which
/// `rt::smol::Slices` must know of.
#[cfg(feature = "smol")]
#[derive(Debug)]
struct NoteWake(Waker);

#[cfg(feature = "smol")]
impl Wake for NoteWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        super::smol::note_wake();
        self.0.wake_by_ref();
    }
}

impl AsyncRead for AsyncIoTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if self.drained {
                // Seen readable between tasks: no need to ask async-io.
                let hinted = self.hint.as_ref().is_some_and(|hint| hint.take(cx.waker()));
                if !hinted {
                    #[cfg(test)]
                    {
                        self.waits += 1;
                    }
                    ready!(self.poll_ready(cx, Wait::Read))?;
                }
                self.drained = false;
            }
            #[cfg(test)]
            {
                self.reads += 1;
            }
            match (&mut self.io.get_ref()).read(buf) {
                Ok(n) => {
                    self.drained = n < buf.len();
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.drained = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for AsyncIoTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, |mut socket| socket.write(buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, |mut socket| socket.write_vectored(bufs))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        match self.io.get_ref().shutdown(Shutdown::Write) {
            // The peer has already gone: the stream is closed either way.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            result => Poll::Ready(result),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_read_woken_by_readiness_is_the_only_system_call() {
        async_io::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = std::thread::spawn(move || listener.accept().unwrap().0);
            let mut client = TcpStream::connect(addr).unwrap();
            let mut server = AsyncIoTcp::new(Async::new(server.join().unwrap()).unwrap());
            // Looks made by tests running beside this one (`rt::block_on`'s
            // between tasks, `readiness`'s own) would mark the socket: this
            // test is about async-io's readiness alone.
            if let Some(hint) = server.hint.take() {
                hint.end(server.io.get_ref());
            }
            let mut buf = [0u8; 64];
            for round in 1..=3 {
                // Nothing yet: the read waits for readiness ...
                let before = server.reads;
                let (read, ()) = futures::join!(server.read(&mut buf), async {
                    yield_once().await;
                    std::io::Write::write_all(&mut client, b"ping").unwrap();
                });
                assert_eq!(&buf[..read.unwrap()], b"ping");
                // ... and the next one too, without a read that finds
                // nothing (async-io's `poll_read` left the event behind).
                let waiting = futures::poll!(std::pin::pin!(server.read(&mut buf)));
                assert!(waiting.is_pending());
                let tried = server.reads - before;
                // The first round's first read found nothing, as it must.
                assert_eq!(tried, if round == 1 { 2 } else { 1 }, "round {round}");
            }
        });
    }

    #[cfg(all(target_os = "linux", feature = "smol"))]
    #[test]
    fn a_socket_seen_readable_between_tasks_is_read_without_asking_async_io() {
        use std::io::Write;
        let (mut writer, reader) = crate::rt::readiness::tests::pair();
        let mut server = AsyncIoTcp::new(Async::new(reader).unwrap());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 64];
        // Nothing yet: the read finds nothing and waits on async-io.
        assert!(Pin::new(&mut server)
            .poll_read(&mut cx, &mut buf)
            .is_pending());
        assert_eq!((server.reads, server.waits), (1, 1));
        writer.write_all(b"ping").unwrap();
        crate::rt::readiness::tests::look_until_marked(server.hint.as_ref().unwrap());
        // Marked: one read, and async-io is not asked.
        let read = Pin::new(&mut server).poll_read(&mut cx, &mut buf);
        assert!(matches!(read, Poll::Ready(Ok(4))), "{read:?}");
        assert_eq!((server.reads, server.waits), (2, 1));
        // Drained again: the next read waits, on async-io too. (async-io's
        // own thread, which turns its reactor while no `block_on` runs, may
        // have seen "ping" arrive meanwhile: async-io then reports the
        // socket readable once more, and one read finds nothing before the
        // wait.)
        assert!(Pin::new(&mut server)
            .poll_read(&mut cx, &mut buf)
            .is_pending());
        let counts = (server.reads, server.waits);
        assert!(matches!(counts, (2, 2) | (3, 3)), "{counts:?}");
    }

    #[cfg(all(target_os = "linux", feature = "smol"))]
    #[test]
    fn async_io_wakes_a_waiting_reader_through_a_waker_that_notes_other_threads() {
        let (_writer, reader) = crate::rt::readiness::tests::pair();
        let mut server = AsyncIoTcp::new(Async::new(reader).unwrap());
        let woken = Arc::new(CountWakes::default());
        let waker = Waker::from(woken.clone());
        let mut buf = [0u8; 16];
        let read = Pin::new(&mut server).poll_read(&mut Context::from_waker(&waker), &mut buf);
        assert!(read.is_pending());
        // async-io holds a `NoteWake` around the reader's waker, made once
        // for as long as the reader's waker is the same.
        let handed = server.waiting[0]
            .clone()
            .expect("a waker handed to async-io");
        assert!(handed.0.will_wake(&waker));
        let read = Pin::new(&mut server).poll_read(&mut Context::from_waker(&waker), &mut buf);
        assert!(read.is_pending());
        assert!(Arc::ptr_eq(&handed, server.waiting[0].as_ref().unwrap()));
        // Its wake, from a thread not in `rt::block_on`, is noted, and
        // reaches the reader.
        let noted = std::thread::spawn(move || {
            Waker::from(handed).wake();
            crate::rt::smol::tests::NOTED.get()
        });
        assert_eq!(noted.join().unwrap(), 1);
        assert_eq!(woken.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[cfg(all(target_os = "linux", feature = "smol"))]
    #[test]
    fn a_writer_waits_for_room_through_a_waker_that_notes_other_threads() {
        let (writer, mut reader) = crate::rt::readiness::tests::pair();
        let mut client = AsyncIoTcp::new(Async::new(writer).unwrap());
        let woken = Arc::new(CountWakes::default());
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        // Fill the socket (and the peer's): the write waits on async-io.
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0usize;
        while let Poll::Ready(n) = Pin::new(&mut client).poll_write(&mut cx, &chunk) {
            sent += n.unwrap();
        }
        let handed = client.waiting[1]
            .clone()
            .expect("a waker handed to async-io");
        assert!(handed.0.will_wake(&waker));
        assert!(client.waiting[0].is_none(), "no read waited");
        // Room again: the next write goes through.
        let mut buf = vec![0u8; sent];
        std::io::Read::read_exact(&mut reader, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 7));
        let wrote = Pin::new(&mut client).poll_write(&mut cx, b"more");
        assert!(matches!(wrote, Poll::Ready(Ok(4))), "{wrote:?}");
    }

    /// Counts its wakes.
    #[cfg(all(target_os = "linux", feature = "smol"))]
    #[derive(Default)]
    struct CountWakes(std::sync::atomic::AtomicUsize);

    #[cfg(all(target_os = "linux", feature = "smol"))]
    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Lets the other side of a `join!` run first.
    async fn yield_once() {
        let mut yielded = false;
        futures::future::poll_fn(|cx| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    }

    #[test]
    fn reads_after_a_short_read_see_every_byte() {
        async_io::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut incoming = incoming(listener).unwrap();
            let mut client = connect(addr).await.unwrap();
            let (mut server, _) = incoming.next().await.unwrap().unwrap();
            let mut buf = [0u8; 64];

            // A short read marks the socket drained ...
            client.write_all(b"first").await.unwrap();
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"first");
            // ... data that arrived since is still seen ...
            client.write_all(b"second").await.unwrap();
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"second");
            // ... and so is data that arrives while the read waits.
            let (read, ()) = futures::join!(server.read(&mut buf), async {
                // Let the read run first and find nothing.
                yield_once().await;
                client.write_all(b"third").await.unwrap();
            });
            assert_eq!(&buf[..read.unwrap()], b"third");
            // The end of the stream is a read of 0.
            client.close().await.unwrap();
            assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        });
    }
}
