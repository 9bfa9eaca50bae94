//! [`RecheckedStream`]: a libp2p stream (or any byte stream served as one)
//! whose pending read is retried, to notice a connection this side closed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use libp2p::Stream;

use super::READ_RECHECK;
use crate::rt::SharedRuntime;

/// A libp2p stream that notices when this side closed its connection.
///
/// When a yamux connection is closed by its own side (`Node::disconnect`,
/// `Node::shutdown`, the swarm's idle timeout), a read already pending on
/// one of its streams is never woken (libp2p/rust-yamux#216): an HTTP/2
/// connection with nothing to send would wait forever, holding its task
/// and its peer's connection slot. The stream itself does report the
/// closed connection when it is read again, so while a read is pending
/// it is read again every [`READ_RECHECK`].
pub(super) struct RecheckedStream<S = Stream> {
    stream: S,
    runtime: SharedRuntime,
    recheck: Option<crate::rt::Sleep>,
}

impl<S> RecheckedStream<S> {
    pub(super) fn new(stream: S, runtime: &SharedRuntime) -> RecheckedStream<S> {
        RecheckedStream {
            stream,
            runtime: runtime.clone(),
            recheck: None,
        }
    }
}

impl<S: futures::AsyncRead + Unpin> futures::AsyncRead for RecheckedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            if let Poll::Ready(read) = Pin::new(&mut this.stream).poll_read(cx, buf) {
                return Poll::Ready(read);
            }
            // One timer per connection, re-armed only when it fires.
            let recheck = this
                .recheck
                .get_or_insert_with(|| this.runtime.sleep(READ_RECHECK));
            if recheck.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.recheck = None;
        }
    }
}

impl<S: futures::AsyncWrite + Unpin> futures::AsyncWrite for RecheckedStream<S> {
    crate::io::forward_writes!(stream);

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}
