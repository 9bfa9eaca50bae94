//! [`Streaming`]: the incoming messages of a call, as a `Stream`.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures::Stream;

use crate::http2::recv::RecvBody;
use crate::wire::metadata::MetadataMap;
use crate::wire::status::Status;

/// A stream of incoming messages: the requests of a client-streaming or bidi
/// call on the server, the responses of a server-streaming or bidi call on
/// the client.
///
/// Each item is `Ok(message)` or, once, `Err(status)`; after an error or the
/// end the stream yields `None`. On the client, a non-OK status from the
/// server's trailers arrives as the last item, and the trailers' metadata is
/// available from [`trailers`](Streaming::trailers).
///
/// Dropping a `Streaming` on the client before its end cancels the call
/// (the HTTP/2 stream is reset with `CANCEL`).
///
/// # Response headers
///
/// The response stream of a bidi call is handed out as soon as the request
/// headers are sent, before the server has answered anything: grpc-go and
/// the C core send their response headers only with the first response
/// message, that is after they have read a request, so waiting for them
/// before the caller may send would deadlock. The headers are read with the
/// first message (or the end of the call), and from then on
/// [`headers`](Streaming::headers) returns them.
pub struct Streaming<T> {
    body: RecvBody,
    _message: PhantomData<fn() -> T>,
}

impl<T> Streaming<T> {
    pub(crate) fn new(body: RecvBody) -> Self {
        Streaming {
            body,
            _message: PhantomData,
        }
    }

    /// Client side: the response headers (custom metadata the server sent
    /// before its messages), once they have arrived. They arrive with the
    /// first message, or with the end of the call, so they are here after
    /// the first [`message`](Streaming::message) call returned; `None` before
    /// that, and always on the server (the request metadata is on the
    /// [`Request`](crate::Request)).
    pub fn headers(&self) -> Option<&MetadataMap> {
        self.body.headers()
    }

    /// Client side: what the channel's endpoint attaches to its responses
    /// (over libp2p, the `libp2p::RemotePeer` that
    /// answers); empty until the response headers arrived, and on the
    /// server. A unary or server-streaming call's
    /// [`Response::extensions`](crate::Response::extensions) hold the same.
    pub fn extensions(&self) -> http::Extensions {
        self.body.endpoint_extensions()
    }

    /// Whether the last message returned arrived compressed on the wire.
    pub fn last_message_compressed(&self) -> bool {
        self.body.last_compressed()
    }
}

impl<T: prost::Message + Default> Streaming<T> {
    /// The next message: `Ok(Some(message))`, `Ok(None)` at the end, or the
    /// call's error status.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        match futures::StreamExt::next(self).await {
            Some(Ok(message)) => Ok(Some(message)),
            Some(Err(status)) => Err(status),
            None => Ok(None),
        }
    }

    /// Reads the one message of the unary side of a call (`what`: "request"
    /// or "response"), and checks that no second one follows.
    pub(crate) async fn only_message(&mut self, what: &str) -> Result<T, Status> {
        let mut first = None;
        std::future::poll_fn(|cx| self.poll_only_message(&mut first, what, cx)).await
    }

    /// [`only_message`](Self::only_message) as a poll: `first` keeps the
    /// message read while the end of the stream is awaited.
    pub(crate) fn poll_only_message(
        &mut self,
        first: &mut Option<T>,
        what: &str,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, Status>> {
        loop {
            match ready!(Pin::new(&mut *self).poll_next(cx)) {
                Some(Err(status)) => return Poll::Ready(Err(status)),
                Some(Ok(_)) if first.is_some() => {
                    return Poll::Ready(Err(Status::internal(format!(
                        "more than one {what} message for a unary call"
                    ))));
                }
                Some(Ok(message)) => *first = Some(message),
                None => {
                    return Poll::Ready(
                        first
                            .take()
                            .ok_or_else(|| Status::internal(format!("{what} carries no message"))),
                    );
                }
            }
        }
    }

    /// Client side: reads (and discards) the remaining messages and returns
    /// the trailer metadata, or the call's error status. `Ok(None)` when the
    /// trailers were already taken.
    pub async fn trailers(&mut self) -> Result<Option<MetadataMap>, Status> {
        while let Some(item) = futures::StreamExt::next(self).await {
            item?;
        }
        Ok(self.body.take_trailers())
    }
}

impl<T: prost::Message + Default> Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match ready!(this.body.poll_raw(cx)) {
            Some(Ok(raw)) => {
                let decoded = this.body.decode(raw);
                if let Err(status) = &decoded {
                    let _ = this.body.fail(status.clone());
                }
                Poll::Ready(Some(decoded))
            }
            Some(Err(status)) => Poll::Ready(Some(Err(status))),
            None => Poll::Ready(None),
        }
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Streaming").field(&self.body).finish()
    }
}
