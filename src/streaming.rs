//! [`Streaming`]: the incoming messages of a call, as a `Stream`.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures::channel::oneshot;
use futures::Stream;

use crate::client::ConnectionFlag;
use crate::codec::{decode_message, MessageDecoder, RawMessage};
use crate::compression::CompressionEncoding;
use crate::headers;
use crate::rt::Sleep;
use crate::sync::TrackerGuard;
use crate::{MetadataMap, Status};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// Reading requests: the stream ends with END_STREAM, no trailers.
    Server,
    /// Reading responses: the stream ends with trailers carrying the status.
    Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Messages,
    Trailers,
    Done,
}

/// The part of [`Streaming`] that does not depend on the message type.
pub(crate) struct RecvBody {
    body: Option<h2::RecvStream>,
    decoder: MessageDecoder,
    encoding: Option<CompressionEncoding>,
    max_message_size: usize,
    side: Side,
    state: State,
    trailers: Option<MetadataMap>,
    deadline: Option<Sleep>,
    last_compressed: bool,
    // Dropped with the stream: tells the request pump of a bidi call to stop.
    _cancel: Option<oneshot::Sender<()>>,
    // Client side: the connection the call runs on, marked broken when a
    // read fails with a connection-level error.
    connection: Option<ConnectionFlag>,
    // Client side: the response headers, once they have arrived.
    headers: Option<MetadataMap>,
    // Client side: counts the call as running on its connection until it ends.
    active: Option<TrackerGuard>,
    // Client side, bidi calls: the response headers still to come. Until
    // they arrive there is no body to read.
    pending: Option<PendingHead>,
}

/// The response of a client call whose headers have not arrived yet, with
/// the flag of the connection it runs on.
pub(crate) struct PendingHead {
    pub(crate) response: h2::client::ResponseFuture,
    pub(crate) flag: ConnectionFlag,
    /// Counts the call as running on its connection.
    pub(crate) active: TrackerGuard,
}

impl PendingHead {
    /// The response headers; a connection-level failure marks the
    /// connection broken.
    pub(crate) async fn wait(
        self,
    ) -> Result<(http::Response<h2::RecvStream>, ConnectionFlag, TrackerGuard), h2::Error> {
        match self.response.await {
            Ok(response) => Ok((response, self.flag, self.active)),
            Err(err) => {
                self.flag.observe(&err);
                Err(err)
            }
        }
    }
}

impl RecvBody {
    pub(crate) fn new(
        body: h2::RecvStream,
        side: Side,
        encoding: Option<CompressionEncoding>,
        max_message_size: usize,
    ) -> Self {
        RecvBody {
            body: Some(body),
            decoder: MessageDecoder::new(max_message_size),
            encoding,
            max_message_size,
            side,
            state: State::Messages,
            trailers: None,
            deadline: None,
            last_compressed: false,
            _cancel: None,
            connection: None,
            headers: None,
            active: None,
            pending: None,
        }
    }

    /// The body of a client call whose response headers are still to come:
    /// they are awaited when the first message is asked for.
    pub(crate) fn pending(head: PendingHead, max_message_size: usize) -> Self {
        let mut body = RecvBody::ended(MetadataMap::new());
        body.state = State::Messages;
        body.trailers = None;
        body.max_message_size = max_message_size;
        body.pending = Some(head);
        body
    }

    /// Reads the response headers of a client call: the response metadata
    /// and the body to read messages from, or the status of a trailers-only
    /// (or non-gRPC) response.
    pub(crate) fn from_response(
        response: http::Response<h2::RecvStream>,
        flag: ConnectionFlag,
        active: TrackerGuard,
        max_message_size: usize,
    ) -> Result<(MetadataMap, RecvBody), Status> {
        let (parts, body) = response.into_parts();
        if let Some(status) = Status::from_header_map(&parts.headers) {
            // Trailers-only: the headers are the trailers.
            if status.code() != crate::Code::Ok {
                return Err(status);
            }
            return Ok((
                MetadataMap::new(),
                RecvBody::ended(MetadataMap::from_headers(parts.headers)),
            ));
        }
        if parts.status != http::StatusCode::OK {
            return Err(Status::from_http_status(parts.status));
        }
        let is_grpc = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|value| headers::is_grpc_content_type(value.as_bytes()));
        if !is_grpc {
            return Err(Status::internal(format!(
                "response content-type is not gRPC: {:?}",
                parts.headers.get(http::header::CONTENT_TYPE)
            )));
        }
        let encoding =
            CompressionEncoding::from_encoding_header(parts.headers.get(headers::GRPC_ENCODING))
                .map_err(|status| Status::internal(status.message().to_owned()))?;
        let mut body = RecvBody::new(body, Side::Client, encoding, max_message_size);
        body.connection = Some(flag);
        body.active = Some(active);
        Ok((MetadataMap::from_headers(parts.headers), body))
    }

    /// Takes over the response head once it arrived: what this body was
    /// waiting for.
    fn open(
        &mut self,
        response: http::Response<h2::RecvStream>,
        head: PendingHead,
    ) -> Result<(), Status> {
        let (headers, mut opened) =
            RecvBody::from_response(response, head.flag, head.active, self.max_message_size)?;
        opened.deadline = self.deadline.take();
        opened._cancel = self._cancel.take();
        opened.headers = Some(headers);
        *self = opened;
        Ok(())
    }

    pub(crate) fn set_headers(&mut self, headers: MetadataMap) {
        self.headers = Some(headers);
    }

    /// A body that already ended, with the given trailers (trailers-only OK).
    pub(crate) fn ended(trailers: MetadataMap) -> Self {
        RecvBody {
            body: None,
            decoder: MessageDecoder::new(0),
            encoding: None,
            max_message_size: 0,
            side: Side::Client,
            state: State::Done,
            trailers: Some(trailers),
            deadline: None,
            last_compressed: false,
            _cancel: None,
            connection: None,
            headers: None,
            active: None,
            pending: None,
        }
    }

    pub(crate) fn set_deadline(&mut self, deadline: Option<Sleep>) {
        self.deadline = deadline;
    }

    /// The status of a failed read; a connection-level failure also marks
    /// the connection broken, so that the channel replaces it at once.
    fn read_failed(&mut self, err: &h2::Error) -> Poll<Option<Result<RawMessage, Status>>> {
        if let Some(connection) = &self.connection {
            connection.observe(err);
        }
        self.fail(Status::from_h2_error(err))
    }

    pub(crate) fn set_cancel_on_drop(&mut self, cancel: oneshot::Sender<()>) {
        self._cancel = Some(cancel);
    }

    pub(crate) fn take_trailers(&mut self) -> Option<MetadataMap> {
        self.trailers.take()
    }

    fn fail(&mut self, status: Status) -> Poll<Option<Result<RawMessage, Status>>> {
        self.state = State::Done;
        // Dropping the receive half resets the stream if it is still open.
        self.body = None;
        self.pending = None;
        self.active = None;
        self.deadline = None;
        Poll::Ready(Some(Err(status)))
    }

    fn deadline_passed(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.deadline {
            Some(deadline) => deadline.as_mut().poll(cx).is_ready(),
            None => false,
        }
    }

    /// The next raw message, the final status error, or the end.
    pub(crate) fn poll_raw(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<RawMessage, Status>>> {
        if self.pending.is_some() {
            if self.deadline_passed(cx) {
                return self.fail(Status::deadline_exceeded("deadline exceeded"));
            }
            if let Some(head) = self.pending.as_mut() {
                let arrived = ready!(Pin::new(&mut head.response).poll(cx));
                if let Some(head) = self.pending.take() {
                    let opened = match arrived {
                        Ok(response) => self.open(response, head),
                        Err(err) => {
                            head.flag.observe(&err);
                            Err(Status::from_h2_error(&err))
                        }
                    };
                    if let Err(status) = opened {
                        return self.fail(status);
                    }
                }
            }
        }
        loop {
            match self.state {
                State::Done => return Poll::Ready(None),
                State::Messages => {
                    match self.decoder.decode() {
                        Ok(Some(message)) => {
                            self.last_compressed = message.compressed;
                            return Poll::Ready(Some(Ok(message)));
                        }
                        Ok(None) => {}
                        Err(err) => return self.fail(err.into()),
                    }
                    if self.deadline_passed(cx) {
                        return self.fail(Status::deadline_exceeded("deadline exceeded"));
                    }
                    let Some(body) = self.body.as_mut() else {
                        return self.fail(Status::internal("stream body is gone"));
                    };
                    match ready!(body.poll_data(cx)) {
                        Some(Ok(chunk)) => {
                            // The decoder is pulled only when a message is
                            // wanted, so releasing here bounds what is held to
                            // one message plus one window.
                            let _ = body.flow_control().release_capacity(chunk.len());
                            self.decoder.push(chunk);
                        }
                        Some(Err(err)) => return self.read_failed(&err),
                        None => {
                            if let Err(err) = self.decoder.finish() {
                                return self.fail(err.into());
                            }
                            match self.side {
                                Side::Server => {
                                    self.state = State::Done;
                                    self.body = None;
                                    return Poll::Ready(None);
                                }
                                Side::Client => self.state = State::Trailers,
                            }
                        }
                    }
                }
                State::Trailers => {
                    if self.deadline_passed(cx) {
                        return self.fail(Status::deadline_exceeded("deadline exceeded"));
                    }
                    let Some(body) = self.body.as_mut() else {
                        return self.fail(Status::internal("stream body is gone"));
                    };
                    match ready!(body.poll_trailers(cx)) {
                        Ok(Some(trailers)) => {
                            let status = Status::from_header_map(&trailers).unwrap_or_else(|| {
                                Status::internal("trailers carry no grpc-status")
                            });
                            self.trailers = Some(MetadataMap::from_headers(trailers));
                            self.state = State::Done;
                            self.body = None;
                            self.active = None;
                            self.deadline = None;
                            if status.code() != crate::Code::Ok {
                                return Poll::Ready(Some(Err(status)));
                            }
                            return Poll::Ready(None);
                        }
                        Ok(None) => {
                            return self.fail(Status::internal(
                                "server closed the stream without sending trailers",
                            ))
                        }
                        Err(err) => return self.read_failed(&err),
                    }
                }
            }
        }
    }

    fn decode<T: prost::Message + Default>(&self, raw: RawMessage) -> Result<T, Status> {
        decode_message(raw, self.encoding, self.max_message_size)
    }
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
        self.body.headers.as_ref()
    }

    /// Whether the last message returned arrived compressed on the wire.
    pub fn last_message_compressed(&self) -> bool {
        self.body.last_compressed
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
        f.debug_struct("Streaming")
            .field("side", &self.body.side)
            .field("state", &self.body.state)
            .field("buffered", &self.body.decoder.buffered())
            .finish()
    }
}
