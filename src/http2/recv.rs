//! Receiving a call's messages from an h2 stream, for both roles: the
//! body of a request on the server, of a response on the client, with flow
//! control, the message decoder, the deadline, and (client side) the
//! response head still to come and the liveness of the connection.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures::channel::oneshot;

use super::deadline;
use super::errors::status_from_h2;
use super::observe::{CallCounters, CallEndHook};
use crate::rt::Sleep;
use crate::sync::{Budget, BudgetWait, OverBudget, Reservation, Tracker, TrackerGuard};
use crate::wire::compression::CompressionEncoding;
use crate::wire::framing::{decode_message, MessageDecoder, RawMessage};
use crate::wire::headers;
use crate::wire::metadata::MetadataMap;
use crate::wire::status::Status;

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
    // Client side, bidi calls under a retry policy: the head of whichever
    // attempt the server committed to, from the task that makes them.
    relayed: Option<oneshot::Receiver<Result<OpenedHead, Status>>>,
    // Server side: the memory budget a message being assembled reserves
    // its length from, the reservation, and the wait for one.
    budget: Option<Arc<Budget>>,
    reservation: Option<Reservation>,
    budget_wait: Option<BudgetWait>,
    // With interceptors: the call's counters, and (client side) the hook
    // that reports how the call ended.
    counters: Option<Arc<CallCounters>>,
    end: Option<CallEndHook>,
}

/// The liveness flag of one connection: calls clear it when they see the
/// connection fail, so that the next call opens a fresh one at once instead
/// of waiting for the driver task to notice. It also counts the calls
/// running on the connection (for keepalive, which pings only then).
#[derive(Clone, Debug)]
pub(crate) struct ConnectionFlag {
    alive: Arc<AtomicBool>,
    calls: Tracker,
    /// What the connection's responses carry in their extensions.
    endpoint: Arc<http::Extensions>,
}

impl ConnectionFlag {
    /// The flag of a connection whose driver clears `alive` when it ends,
    /// counting its calls in `calls`; its responses carry `endpoint`.
    pub(crate) fn new(
        alive: Arc<AtomicBool>,
        calls: Tracker,
        endpoint: Arc<http::Extensions>,
    ) -> Self {
        ConnectionFlag {
            alive,
            calls,
            endpoint,
        }
    }

    /// The extensions of the connection's responses.
    pub(crate) fn endpoint(&self) -> &http::Extensions {
        &self.endpoint
    }

    pub(crate) fn mark_broken(&self) {
        self.alive.store(false, Ordering::Release);
    }

    /// Counts a call as running on the connection until the guard drops.
    pub(crate) fn enter(&self) -> TrackerGuard {
        self.calls.enter()
    }

    /// Marks the connection broken when `err` ended the whole connection
    /// (GOAWAY, IO failure), not just one stream.
    pub(crate) fn observe(&self, err: &h2::Error) {
        if err.is_go_away() || err.is_io() {
            self.mark_broken();
        }
    }
}

/// The response head of a client call as it arrived, with the flag of its
/// connection and the guard that counts the call there.
pub(crate) type OpenedHead = (http::Response<h2::RecvStream>, ConnectionFlag, TrackerGuard);

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
            relayed: None,
            budget: None,
            reservation: None,
            budget_wait: None,
            counters: None,
            end: None,
        }
    }

    /// The body of a client call whose response headers are still to come:
    /// they are awaited when the first message is asked for.
    pub(crate) fn pending(head: PendingHead, max_message_size: usize) -> Self {
        let mut body = RecvBody::pending_none(max_message_size);
        body.pending = Some(head);
        body
    }

    /// A client body waiting for a head that is still to be set.
    fn pending_none(max_message_size: usize) -> Self {
        let mut body = RecvBody::ended(MetadataMap::new());
        body.state = State::Messages;
        body.trailers = None;
        body.max_message_size = max_message_size;
        body
    }

    /// The body of a client call whose response head another task waits
    /// for (the one that retries a bidi call's attempts): it sends the head
    /// of the attempt the server committed to, or the call's final status.
    pub(crate) fn relayed(
        head: oneshot::Receiver<Result<OpenedHead, Status>>,
        max_message_size: usize,
    ) -> Self {
        let mut body = RecvBody::pending_none(max_message_size);
        body.relayed = Some(head);
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
            if status.code() != crate::wire::status::Code::Ok {
                return Err(status);
            }
            let mut ended = RecvBody::ended(MetadataMap::from_headers(parts.headers));
            ended.connection = Some(flag);
            return Ok((MetadataMap::new(), ended));
        }
        if parts.status != http::StatusCode::OK {
            return Err(Status::from_http_status(parts.status));
        }
        if !headers::has_grpc_content_type(&parts.headers) {
            return Err(Status::internal(format!(
                "response content-type is not gRPC: {:?}",
                parts.headers.get(http::header::CONTENT_TYPE)
            )));
        }
        let encoding =
            CompressionEncoding::from_encoding_header(parts.headers.get(&headers::GRPC_ENCODING))
                .map_err(|status| Status::internal(status.message().to_owned()))?;
        let mut body = RecvBody::new(body, Side::Client, encoding, max_message_size);
        body.connection = Some(flag);
        body.active = Some(active);
        Ok((MetadataMap::from_headers(parts.headers), body))
    }

    /// Takes over the response head once it arrived: what this body was
    /// waiting for.
    fn open(&mut self, (response, flag, active): OpenedHead) -> Result<(), Status> {
        let (headers, mut opened) =
            RecvBody::from_response(response, flag, active, self.max_message_size)?;
        opened.deadline = self.deadline.take();
        opened._cancel = self._cancel.take();
        opened.counters = self.counters.take();
        opened.end = self.end.take();
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
            relayed: None,
            budget: None,
            reservation: None,
            budget_wait: None,
            counters: None,
            end: None,
        }
    }

    /// Makes each message being assembled reserve its length from `budget`
    /// first (see [`ServerBuilder::memory_budget`](crate::server::ServerBuilder::memory_budget)).
    pub(crate) fn set_budget(&mut self, budget: Option<Arc<Budget>>) {
        self.budget = budget;
    }

    pub(crate) fn set_deadline(&mut self, deadline: Option<Sleep>) {
        self.deadline = deadline;
    }

    /// Counts the messages received in `counters`.
    pub(crate) fn set_counters(&mut self, counters: Option<Arc<CallCounters>>) {
        self.counters = counters;
    }

    /// Client side: reports the call's final status to `end` (the trailers'
    /// status, a failure, or `CANCELLED` when the body is dropped first).
    pub(crate) fn set_end_hook(&mut self, end: Option<CallEndHook>) {
        self.end = end;
    }

    /// Reserves `len` bytes for the message being assembled, once; `Ready`
    /// when there is no budget, the reservation is held, or it can never be.
    fn poll_budget(&mut self, len: usize, cx: &mut Context<'_>) -> Poll<Result<(), OverBudget>> {
        let Some(budget) = &self.budget else {
            return Poll::Ready(Ok(()));
        };
        if self.reservation.is_some() {
            return Poll::Ready(Ok(()));
        }
        let reservation = ready!(budget.poll_reserve(len, &mut self.budget_wait, cx))?;
        self.reservation = Some(reservation);
        Poll::Ready(Ok(()))
    }

    /// The status of a failed read; a connection-level failure also marks
    /// the connection broken, so that the channel replaces it at once.
    fn read_failed(&mut self, err: &h2::Error) -> Poll<Option<Result<RawMessage, Status>>> {
        if let Some(connection) = &self.connection {
            connection.observe(err);
        }
        self.fail(status_from_h2(err))
    }

    pub(crate) fn set_cancel_on_drop(&mut self, cancel: oneshot::Sender<()>) {
        self._cancel = Some(cancel);
    }

    pub(crate) fn take_trailers(&mut self) -> Option<MetadataMap> {
        self.trailers.take()
    }

    pub(crate) fn fail(&mut self, status: Status) -> Poll<Option<Result<RawMessage, Status>>> {
        if let Some(end) = self.end.as_mut() {
            end.finish(&status);
        }
        self.state = State::Done;
        // Dropping the receive half resets the stream if it is still open.
        self.body = None;
        self.pending = None;
        self.relayed = None;
        self.active = None;
        self.deadline = None;
        Poll::Ready(Some(Err(status)))
    }

    /// The next raw message, the final status error, or the end.
    pub(crate) fn poll_raw(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<RawMessage, Status>>> {
        if self.pending.is_some() || self.relayed.is_some() {
            if deadline::passed(&mut self.deadline, cx) {
                return self.fail(deadline::exceeded());
            }
            let opened = if let Some(relayed) = self.relayed.as_mut() {
                let arrived = ready!(Pin::new(relayed).poll(cx));
                self.relayed = None;
                match arrived {
                    Ok(Ok(head)) => self.open(head),
                    Ok(Err(status)) => Err(status),
                    Err(_) => Err(Status::unavailable("the call's attempts ended")),
                }
            } else if let Some(head) = self.pending.as_mut() {
                let arrived = ready!(Pin::new(&mut head.response).poll(cx));
                match self.pending.take() {
                    Some(head) => match arrived {
                        Ok(response) => self.open((response, head.flag, head.active)),
                        Err(err) => {
                            head.flag.observe(&err);
                            Err(status_from_h2(&err))
                        }
                    },
                    None => Ok(()),
                }
            } else {
                Ok(())
            };
            if let Err(status) = opened {
                return self.fail(status);
            }
        }
        loop {
            match self.state {
                State::Done => {
                    if let Some(end) = self.end.as_mut() {
                        end.finish(Status::ok_shared());
                    }
                    return Poll::Ready(None);
                }
                State::Messages => {
                    match self.decoder.decode() {
                        Ok(Some(message)) => {
                            // The handler holds the message now.
                            self.reservation = None;
                            if let Some(counters) = &self.counters {
                                counters.received(message.data.len());
                            }
                            self.last_compressed = message.compressed;
                            return Poll::Ready(Some(Ok(message)));
                        }
                        Ok(None) => {}
                        Err(err) => return self.fail(err.into()),
                    }
                    if deadline::passed(&mut self.deadline, cx) {
                        return self.fail(deadline::exceeded());
                    }
                    if let Some(len) = self.decoder.assembling() {
                        if let Poll::Ready(Err(over)) = self.poll_budget(len, cx) {
                            return self.fail(Status::resource_exhausted(format!(
                                "request message of {} bytes is over the server's memory budget of {}",
                                over.wanted, over.limit
                            )));
                        }
                        if self.budget.is_some() && self.reservation.is_none() {
                            return Poll::Pending;
                        }
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
                    if deadline::passed(&mut self.deadline, cx) {
                        return self.fail(deadline::exceeded());
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
                            if let Some(end) = self.end.as_mut() {
                                end.finish(&status);
                            }
                            if status.code() != crate::wire::status::Code::Ok {
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

    pub(crate) fn decode<T: prost::Message + Default>(&self, raw: RawMessage) -> Result<T, Status> {
        decode_message(raw, self.encoding, self.max_message_size)
    }
}

impl RecvBody {
    /// Client side: the extensions the connection's responses carry (empty
    /// before the response head arrived).
    pub(crate) fn endpoint_extensions(&self) -> http::Extensions {
        self.connection
            .as_ref()
            .map(|connection| connection.endpoint().clone())
            .unwrap_or_default()
    }

    /// The response headers, once they have arrived (client side).
    pub(crate) fn headers(&self) -> Option<&MetadataMap> {
        self.headers.as_ref()
    }

    /// Whether the last message returned arrived compressed on the wire.
    pub(crate) fn last_compressed(&self) -> bool {
        self.last_compressed
    }
}

impl fmt::Debug for RecvBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBody")
            .field("side", &self.side)
            .field("state", &self.state)
            .field("buffered", &self.decoder.buffered())
            .field("head_pending", &self.pending.is_some())
            .finish()
    }
}
