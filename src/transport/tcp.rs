//! TCP on `async-io`: the default behind [`Runtime::tcp_connect`] and
//! [`Runtime::tcp_incoming`](crate::rt::Runtime::tcp_incoming).
//!
//! `async-io`'s reactor runs on its own thread when no executor drives it, so
//! these work under every runtime; runtimes with a reactor of their own
//! (tokio) override them.
//!
//! [`Runtime::tcp_connect`]: crate::rt::Runtime::tcp_connect

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use async_io::Async;
use futures::StreamExt;

use super::BoxIo;
use crate::rt::{Connecting, Incoming};

/// Connects to `addr`, with `TCP_NODELAY` set.
pub(crate) fn connect(addr: SocketAddr) -> Connecting {
    Box::pin(async move {
        let stream = Async::<TcpStream>::connect(addr).await?;
        stream.get_ref().set_nodelay(true)?;
        Ok(Box::new(stream) as BoxIo)
    })
}

/// The connections `listener` accepts, each with `TCP_NODELAY` set.
pub(crate) fn incoming(listener: TcpListener) -> io::Result<Incoming> {
    let listener = Async::new(listener)?;
    Ok(futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.and_then(|(stream, _)| {
            stream.get_ref().set_nodelay(true)?;
            Ok(Box::new(stream) as BoxIo)
        });
        Some((accepted, listener))
    })
    .boxed())
}
