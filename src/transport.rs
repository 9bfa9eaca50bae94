//! Transport glue: any futures-io byte stream becomes an HTTP/2 connection.
//!
//! h2 speaks tokio's IO traits; a small adapter (`coalesce`, in the spirit
//! of `tokio_util::compat`, which it replaces) presents a
//! `futures::io::{AsyncRead, AsyncWrite}` stream through them without a
//! tokio runtime, and gathers h2's small writes and passes its large ones
//! on vectored. TCP helpers use `async-io`, whose reactor runs on its own thread
//! when no executor drives it, so they work under every runtime.

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream as StdTcpStream};
use std::pin::Pin;

use futures::io::{AsyncRead, AsyncWrite};
use futures::Stream;

/// A byte stream p2p-grpc can run HTTP/2 over: a TCP socket, a libp2p
/// stream, an in-memory pipe, anything with futures-io's traits.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A boxed [`Io`], as returned by a [`Connector`](crate::client::Connector).
pub type BoxIo = Box<dyn Io>;

/// A TCP stream driven by `async-io`.
pub type TcpStream = async_io::Async<StdTcpStream>;

/// A TCP listener driven by `async-io`.
pub type TcpListener = async_io::Async<StdTcpListener>;

/// Adapts a futures-io stream to the tokio-io traits h2 needs, gathering
/// h2's writes so that a DATA frame's header and payload go out together
/// (see [`coalesce`]).
pub(crate) fn compat<T: Io>(io: T) -> Coalesce<T> {
    Coalesce::new(io)
}

/// Connects to `addr` over TCP, with `TCP_NODELAY` set (gRPC messages are
/// small and latency-bound).
pub async fn tcp_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.get_ref().set_nodelay(true)?;
    Ok(stream)
}

/// Binds a TCP listener on `addr` (port 0 picks a free port; read it back
/// with `listener.get_ref().local_addr()`).
pub fn tcp_listen(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// The accepted connections of `listener` as a stream, each with
/// `TCP_NODELAY` set.
pub fn tcp_incoming(
    listener: TcpListener,
) -> Pin<Box<dyn Stream<Item = io::Result<TcpStream>> + Send>> {
    Box::pin(futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.and_then(|(stream, _)| {
            stream.get_ref().set_nodelay(true)?;
            Ok(stream)
        });
        Some((accepted, listener))
    }))
}

/// An in-memory, bidirectional byte pipe: two connected ends, each readable
/// and writable. Handy for tests and for running client and server in one
/// process without sockets.
pub fn duplex(capacity: usize) -> (Duplex, Duplex) {
    let (a_to_b_reader, a_to_b_writer) = sluice_pipe(capacity);
    let (b_to_a_reader, b_to_a_writer) = sluice_pipe(capacity);
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

use self::coalesce::Coalesce;
use self::pipe::pipe as sluice_pipe;
pub use self::pipe::Duplex;

mod coalesce;
mod pipe;
