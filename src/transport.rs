//! Transport glue: any futures-io byte stream becomes an HTTP/2 connection.
//!
//! h2 speaks tokio's IO traits; a small adapter (`coalesce`, in the spirit
//! of `tokio_util::compat`, which it replaces) presents a
//! `futures::io::{AsyncRead, AsyncWrite}` stream through them without a
//! tokio runtime, and gathers h2's small writes and passes its large ones
//! on vectored. TCP comes from the runtime
//! ([`Runtime::tcp_connect`](crate::rt::Runtime::tcp_connect)), on `async-io`
//! by default, whose reactor runs on its own thread when no executor drives
//! it, so it works under every runtime.

use futures::io::{AsyncRead, AsyncWrite};

/// A byte stream p2p-grpc can run HTTP/2 over: a TCP socket, a libp2p
/// stream, an in-memory pipe, anything with futures-io's traits.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A boxed [`Io`], as returned by a [`Connector`](crate::client::Connector).
pub type BoxIo = Box<dyn Io>;

/// Adapts a futures-io stream to the tokio-io traits h2 needs, gathering
/// h2's writes so that a DATA frame's header and payload go out together
/// (see [`coalesce`]), with `tap` (if any) watching the bytes both ways.
pub(crate) fn compat_tapped<T: Io>(io: T, tap: Option<Box<dyn Tap>>) -> Coalesce<T> {
    Coalesce::with_tap(io, tap)
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
pub(crate) use self::coalesce::Tap;
use self::pipe::pipe as sluice_pipe;
pub use self::pipe::Duplex;

mod coalesce;
mod pipe;
pub(crate) mod tcp;
