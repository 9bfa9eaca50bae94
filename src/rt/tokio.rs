//! The `tokio` backend.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::tokio::io::{AsyncRead as TokioRead, AsyncWrite as TokioWrite, ReadBuf};
use ::tokio::net;
use ::tokio::runtime::Handle;
use futures::io::{AsyncRead, AsyncWrite};
use futures::StreamExt;

use super::{Connecting, Incoming, Resolving, Runtime, Sleep, Task};
use crate::io::BoxIo;

/// Spawns on a tokio runtime through its [`Handle`], sleeps with
/// `tokio::time` and opens TCP sockets with `tokio::net`, so a tokio
/// application pays no second reactor. The runtime needs its time and IO
/// drivers (`Builder::enable_all`).
#[derive(Clone, Debug)]
pub struct TokioRuntime {
    handle: Handle,
}

impl TokioRuntime {
    /// The runtime the calling thread runs in, if any.
    pub fn try_current() -> Option<Self> {
        Handle::try_current().ok().map(Self::from_handle)
    }

    /// Spawns on the runtime behind `handle`.
    pub fn from_handle(handle: Handle) -> Self {
        TokioRuntime { handle }
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, task: Task) {
        drop(self.handle.spawn(task));
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        // `tokio::time::sleep` needs the runtime context when it is created.
        let _guard = self.handle.enter();
        Box::pin(::tokio::time::sleep(duration))
    }

    fn tcp_connect(&self, addr: SocketAddr) -> Connecting {
        // The connect future registers its socket with the reactor of the
        // runtime it is polled in; running it as a task of this runtime makes
        // that the right one whichever executor awaits the result.
        let connecting = self.handle.spawn(async move {
            let stream = net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok::<_, io::Error>(stream)
        });
        Box::pin(async move {
            let stream = connecting.await.map_err(io::Error::other)??;
            Ok(Box::new(TokioIo(stream)) as BoxIo)
        })
    }

    fn resolve(&self, host: &str, port: u16) -> Resolving {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Box::pin(std::future::ready(Ok(vec![SocketAddr::new(ip, port)])));
        }
        // tokio's resolver runs getaddrinfo on its blocking pool.
        let lookup = self.handle.spawn(net::lookup_host((host.to_owned(), port)));
        Box::pin(async move {
            let addrs = lookup.await.map_err(io::Error::other)??;
            Ok(addrs.collect())
        })
    }

    fn tcp_incoming(&self, listener: TcpListener) -> io::Result<Incoming> {
        listener.set_nonblocking(true)?;
        let listener = {
            let _guard = self.handle.enter();
            net::TcpListener::from_std(listener)?
        };
        Ok(futures::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.and_then(|(stream, remote)| {
                stream.set_nodelay(true)?;
                Ok((Box::new(TokioIo(stream)) as BoxIo, remote))
            });
            Some((accepted, listener))
        })
        .boxed())
    }
}

/// A tokio TCP stream seen through futures-io's traits (the inverse of the
/// adapter in `io::h2_adapter`).
struct TokioIo(net::TcpStream);

impl AsyncRead for TokioIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TokioIo {
    crate::io::forward_writes!(0);

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
