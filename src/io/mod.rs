//! Byte streams: what HTTP/2 runs over, and the adapter that hands them to
//! h2. This layer knows nothing of gRPC or of any executor.
//!
//! h2 speaks tokio's IO traits; `H2Adapter` presents a
//! `futures::io::{AsyncRead, AsyncWrite}` stream through them without a
//! tokio runtime (like `tokio_util::compat`), gathers h2's small writes and
//! passes its large ones on vectored, and lets the HTTP/2 layer watch the
//! bytes (a `Tap`). TCP sockets come from the runtime
//! ([`Runtime::tcp_connect`](crate::rt::Runtime::tcp_connect)).

use futures::io::{AsyncRead, AsyncWrite};

mod h2_adapter;
mod pipe;

pub(crate) use self::h2_adapter::{H2Adapter, Tap};
pub use self::pipe::{duplex, Duplex};

/// A byte stream p2p-grpc can run HTTP/2 over: a TCP socket, a libp2p
/// stream, an in-memory pipe, anything with futures-io's traits.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A boxed [`Io`], as returned by a [`Connector`](crate::client::Connector).
pub type BoxIo = Box<dyn Io>;

/// `io` as h2 needs it (see [`H2Adapter`]), with `tap` (if any) watching
/// the bytes both ways.
pub(crate) fn for_h2<T: Io>(io: T, tap: Option<Box<dyn Tap>>) -> H2Adapter<T> {
    H2Adapter::with_tap(io, tap)
}

/// The body of an `AsyncWrite` impl (futures-io's, or tokio's for a tokio
/// stream) that hands `poll_write`, `poll_write_vectored` and `poll_flush`
/// to the field `$field`; the impl adds its own `poll_close` (or
/// `poll_shutdown`). One forwarding for every stream wrapper of the crate.
#[cfg_attr(not(any(feature = "tokio", feature = "libp2p")), allow(unused_macros))]
macro_rules! forward_writes {
    ($field:tt) => {
        fn poll_write(
            mut self: ::std::pin::Pin<&mut Self>,
            cx: &mut ::std::task::Context<'_>,
            buf: &[u8],
        ) -> ::std::task::Poll<::std::io::Result<usize>> {
            ::std::pin::Pin::new(&mut self.$field).poll_write(cx, buf)
        }

        fn poll_write_vectored(
            mut self: ::std::pin::Pin<&mut Self>,
            cx: &mut ::std::task::Context<'_>,
            bufs: &[::std::io::IoSlice<'_>],
        ) -> ::std::task::Poll<::std::io::Result<usize>> {
            ::std::pin::Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
        }

        fn poll_flush(
            mut self: ::std::pin::Pin<&mut Self>,
            cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<::std::io::Result<()>> {
            ::std::pin::Pin::new(&mut self.$field).poll_flush(cx)
        }
    };
}
#[cfg_attr(not(any(feature = "tokio", feature = "libp2p")), allow(unused_imports))]
pub(crate) use forward_writes;
