//! TCP on `async-io`: the default behind [`Runtime::tcp_connect`] and
//! [`Runtime::tcp_incoming`](crate::rt::Runtime::tcp_incoming).
//!
//! `async-io`'s reactor runs on its own thread when no executor drives it, so
//! these work under every runtime; runtimes with a reactor of their own
//! (tokio) override them.
//!
//! [`Runtime::tcp_connect`]: crate::rt::Runtime::tcp_connect

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use async_io::Async;
use futures::io::{AsyncRead, AsyncWrite};
use futures::StreamExt;

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
/// it, with two changes from `Async<TcpStream>`:
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
/// - closing it (`poll_close`) shuts the write half down, so the peer reads
///   EOF (`Async`'s own `poll_close` only flushes).
#[derive(Debug)]
pub(crate) struct AsyncIoTcp {
    io: Async<TcpStream>,
    drained: bool,
    /// Reads tried on the socket.
    #[cfg(test)]
    reads: usize,
}

impl AsyncIoTcp {
    pub(crate) fn new(io: Async<TcpStream>) -> Self {
        AsyncIoTcp {
            io,
            drained: false,
            #[cfg(test)]
            reads: 0,
        }
    }

    /// The socket.
    #[cfg_attr(not(feature = "libp2p"), allow(dead_code))]
    pub(crate) fn get_ref(&self) -> &TcpStream {
        self.io.get_ref()
    }

    /// The `async-io` handle of the socket.
    #[cfg_attr(not(feature = "libp2p"), allow(dead_code))]
    pub(crate) fn into_inner(self) -> Async<TcpStream> {
        self.io
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
                ready!(self.io.poll_readable(cx))?;
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
    crate::io::forward_writes!(io);

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
