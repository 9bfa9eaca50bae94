//! [`ServerCall`]: one incoming call, handed to a [`Service`](super::Service),
//! and the response writer shared by the four call kinds.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::Stream;
use h2::server::SendResponse;
use h2::SendStream;
use http::{HeaderMap, HeaderValue};

use super::intercept::{poll_in, CallObserver};
use super::ServerConfig;
use crate::http2::deadline;
use crate::http2::observe::CallKind;
use crate::http2::recv::{RecvBody, Side};
use crate::http2::send::{fill_batch, Filled};
use crate::request::RequestExtensions;
use crate::sync::{Budget, Reservation, Signal, TrackerGuard};
use crate::wire::compression::{CompressionEncoding, CompressionOverride, MessageCompression};
use crate::wire::framing::{Batch, EncodeBuf, HEADER_LEN};
use crate::wire::headers;
use crate::{MetadataMap, Request, Response, Status, Streaming};

/// One incoming call, ready to be answered by a handler of one of the four
/// kinds.
///
/// Generated `XxxServer` types receive it in
/// [`Service::call`](super::Service::call) and pick the method:
/// `call.unary(handler)`, `call.client_streaming(handler)`,
/// `call.server_streaming(handler)`, `call.streaming(handler)` or
/// `call.unimplemented()`. Each returns the future that runs the whole call:
/// reading the request, running the handler, writing the response, while
/// watching the deadline (`grpc-timeout`), a client reset and a forced
/// server shutdown, any of which drops the handler.
pub struct ServerCall {
    /// The call's path, kept when the server has interceptors.
    pub(crate) intercepted_path: Option<http::uri::PathAndQuery>,
    pub(crate) body: h2::RecvStream,
    pub(crate) respond: SendResponse<Bytes>,
    pub(crate) metadata: MetadataMap,
    pub(crate) extensions: RequestExtensions,
    pub(crate) timeout: Option<Duration>,
    pub(crate) request_encoding: Option<CompressionEncoding>,
    pub(crate) response_encoding: Option<CompressionEncoding>,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) force_shutdown: Signal,
    /// Counts the call as running on its connection until the call ends.
    pub(crate) active: TrackerGuard,
}

impl fmt::Debug for ServerCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCall")
            .field("metadata", &self.metadata)
            .field("timeout", &self.timeout)
            .field("request_encoding", &self.request_encoding)
            .field("response_encoding", &self.response_encoding)
            .finish_non_exhaustive()
    }
}

/// A future with no output, boxed and `Send`: what every call kind returns.
pub type CallFuture = BoxFuture<'static, ()>;

impl ServerCall {
    /// The request metadata (custom headers).
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// Typed values the transport attached (such as the remote peer).
    pub fn extensions(&self) -> &http::Extensions {
        self.extensions.get()
    }

    /// Answers a unary call: one request message in, one response out.
    pub fn unary<Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        Box::pin(
            self.run(CallKind::Unary, move |request: Request<Streaming<Req>>| {
                let mut reading = read_single(request);
                // Awaited through a reference: `reading` stays where it is
                // instead of being moved into a second slot.
                async move {
                    let request = (&mut reading).await?;
                    handler(request).await.map(one_message)
                }
            }),
        )
    }

    /// Answers a client-streaming call: a stream of requests in, one response out.
    pub fn client_streaming<Req, Resp, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
    {
        Box::pin(self.run(
            CallKind::ClientStreaming,
            move |request: Request<Streaming<Req>>| async move {
                handler(request).await.map(one_message)
            },
        ))
    }

    /// Answers a server-streaming call: one request in, a stream of responses out.
    pub fn server_streaming<Req, Resp, S, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        S: Stream<Item = Result<Resp, Status>> + Send + 'static,
        F: FnOnce(Request<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
    {
        Box::pin(self.run(
            CallKind::ServerStreaming,
            move |request: Request<Streaming<Req>>| {
                let mut reading = read_single(request);
                async move {
                    let request = (&mut reading).await?;
                    handler(request).await
                }
            },
        ))
    }

    /// Answers a bidirectional-streaming call: streams both ways.
    pub fn streaming<Req, Resp, S, F, Fut>(self, handler: F) -> CallFuture
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        S: Stream<Item = Result<Resp, Status>> + Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
    {
        Box::pin(self.run(CallKind::BidiStreaming, handler))
    }

    /// Answers with `UNIMPLEMENTED` (an unknown method).
    pub fn unimplemented(self) -> CallFuture {
        let mut respond = self.respond;
        respond_trailers_only(
            &mut respond,
            &Status::unimplemented("method not implemented"),
            None,
        );
        Box::pin(async {})
    }

    /// Answers with `status` at once, in a trailers-only response.
    pub fn reject(self, status: Status) -> CallFuture {
        let mut respond = self.respond;
        respond_trailers_only(&mut respond, &status, None);
        Box::pin(async {})
    }

    /// Runs the interceptors' `on_start`, then the handler, and writes its
    /// response, under the deadline and the forced-shutdown signal.
    async fn run<Req, Resp, S, F, Fut>(self, kind: CallKind, handler: F)
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        S: Stream<Item = Result<Resp, Status>> + Send + 'static,
        F: FnOnce(Request<Streaming<Req>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<S>, Status>> + Send + 'static,
    {
        let ServerCall {
            intercepted_path,
            body,
            respond,
            mut metadata,
            mut extensions,
            timeout,
            request_encoding,
            response_encoding,
            config,
            force_shutdown,
            active,
        } = self;
        let _active = active;
        let mut deadline = timeout.map(|timeout| config.runtime.sleep(timeout));
        let mut forced = force_shutdown.wait();
        let mut sink = ResponseSink {
            respond,
            send: None,
            encoding: response_encoding,
            max_message_size: config.max_encoding_message_size,
            budget: config.budget.clone(),
            observer: None,
        };
        let mut spans = Vec::new();
        if let Some(path) = intercepted_path {
            let mut observer = CallObserver::new(config.interceptors.clone(), path, kind, timeout);
            let respond = &mut sink.respond;
            let started = watched(
                async {
                    let mut start = pin!(observer.start(metadata, extensions.into_owned()));
                    poll_fn(|cx| {
                        if let Poll::Ready(started) = start.as_mut().poll(cx) {
                            return Poll::Ready(Some(started));
                        }
                        if respond.poll_reset(cx).is_ready() {
                            return Poll::Ready(None);
                        }
                        Poll::Pending
                    })
                    .await
                },
                &[],
                &mut deadline,
                &mut forced,
            )
            .await;
            sink.observer = Some(observer);
            match started {
                Ended::Normally(Some(Ok((changed, added, wanted)))) => {
                    metadata = changed;
                    extensions = RequestExtensions::Owned(added);
                    spans = wanted;
                }
                Ended::Normally(Some(Err(status))) => return sink.finish(&status, None),
                Ended::Normally(None) => {
                    tracing::debug!("client reset the call before it started");
                    return;
                }
                ended => return sink.ended_early(ended),
            }
        }

        // The handler's future stays in this future, pinned, and the boxed
        // writer polls it through a reference (finding 15); the block ends
        // it before the call's status goes out.
        let ended = {
            // In a block of its own: `body` and `request` end before the
            // await below, so the call's future keeps no room for them.
            let handler = pin!({
                let mut body = RecvBody::new(
                    body,
                    Side::Server,
                    request_encoding,
                    config.max_decoding_message_size,
                );
                body.set_budget(config.budget.clone());
                body.set_counters(sink.observer.as_ref().map(|o| o.counters().clone()));
                let mut request =
                    Request::with_extensions(metadata, extensions, Streaming::new(body));
                request.set_timeout_opt(timeout);
                handler(request)
            });
            // The writer pinned here too, and watched through a reference:
            // by value, rustc kept it both here and inside `watched`
            // (finding 11), and boxed it cost an allocation (finding 16).
            let writer = pin!(write_response(&mut sink, handler));
            watched(writer, &spans, &mut deadline, &mut forced).await
        };
        // The handler has been dropped here (if it had not finished).
        sink.ended_early(ended);
    }
}

/// How a watched part of a call ended.
enum Ended<T> {
    Normally(T),
    Deadline,
    Shutdown,
}

/// Runs `work` (inside `spans`) until it ends, the call's deadline passes,
/// or the server is shut down by force; then `work` is dropped.
async fn watched<F: Future>(
    work: F,
    spans: &[tracing::Span],
    deadline: &mut Option<crate::rt::Sleep>,
    forced: &mut crate::sync::SignalWait,
) -> Ended<F::Output> {
    let mut work = pin!(work);
    poll_fn(|cx| {
        if let Poll::Ready(output) = poll_in(spans, work.as_mut(), cx) {
            return Poll::Ready(Ended::Normally(output));
        }
        if deadline::passed(deadline, cx) {
            return Poll::Ready(Ended::Deadline);
        }
        if std::pin::Pin::new(&mut *forced).poll(cx).is_ready() {
            return Poll::Ready(Ended::Shutdown);
        }
        Poll::Pending
    })
    .await
}

/// Reads the one request message of a unary or server-streaming call.
///
/// A small future of its own rather than an `async fn`: one of those keeps
/// the request both as its argument and as a local, and the handler's
/// future (which holds this one) is moved at every box and spawn.
fn read_single<Req>(request: Request<Streaming<Req>>) -> ReadSingle<Req> {
    ReadSingle {
        request: Some(request),
        first: None,
    }
}

/// See [`read_single`].
struct ReadSingle<Req> {
    request: Option<Request<Streaming<Req>>>,
    first: Option<Req>,
}

// Nothing in it is pinned structurally: `first` is only ever moved out.
impl<Req> Unpin for ReadSingle<Req> {}

impl<Req: prost::Message + Default> Future for ReadSingle<Req> {
    type Output = Result<Request<Req>, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(request) = this.request.as_mut() else {
            return Poll::Ready(Err(Status::internal("request read twice")));
        };
        let message = ready!(request
            .get_mut()
            .poll_only_message(&mut this.first, "request", cx))?;
        let request = this.request.take().expect("checked above");
        Poll::Ready(Ok(request.map(|_| message)))
    }
}

type OneMessage<T> = futures::stream::Iter<std::option::IntoIter<Result<T, Status>>>;

fn one_message<T>(response: Response<T>) -> Response<OneMessage<T>> {
    response.map(|message| futures::stream::iter(Some(Ok(message))))
}

/// What [`ResponseSink::reserve`] got.
enum Reserved {
    Granted(Reservation),
    /// The client reset the call while it waited.
    Reset,
    /// More than the whole budget: the call ends with this status.
    Over(Status),
}

/// Writes a response on an h2 stream: headers, messages, trailers.
struct ResponseSink {
    respond: SendResponse<Bytes>,
    send: Option<SendStream<Bytes>>,
    encoding: Option<CompressionEncoding>,
    max_message_size: usize,
    /// The server's memory budget, which each message reserves its encoded
    /// length from until h2 has taken it.
    budget: Option<Arc<Budget>>,
    /// With interceptors: their hooks, and the call's counters.
    observer: Option<CallObserver>,
}

impl ResponseSink {
    fn poll_reset(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let reset = match self.send.as_mut() {
            Some(send) => send.poll_reset(cx),
            None => self.respond.poll_reset(cx),
        };
        reset.map(|_| ())
    }

    fn send_headers(&mut self, metadata: &mut MetadataMap) -> Result<(), h2::Error> {
        if let Some(observer) = self.observer.as_mut() {
            observer.response_headers(metadata);
        }
        let mut response = http::Response::new(());
        *response.headers_mut() = response_headers(self.encoding);
        metadata.append_to(response.headers_mut());
        self.send = Some(self.respond.send_response(response, false)?);
        Ok(())
    }

    /// Reserves `wanted` bytes from `budget`, waiting while it is spent.
    /// A reset ends the wait; more than the whole budget is refused at once
    /// with `RESOURCE_EXHAUSTED`.
    async fn reserve(&mut self, budget: Arc<Budget>, wanted: usize) -> Reserved {
        let mut wait = None;
        let reserved = poll_fn(|cx| {
            if let Poll::Ready(reserved) = budget.poll_reserve(wanted, &mut wait, cx) {
                return Poll::Ready(Some(reserved));
            }
            if self.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match reserved {
            Some(Ok(reservation)) => Reserved::Granted(reservation),
            None => {
                tracing::debug!("client reset the call while it waited for memory");
                Reserved::Reset
            }
            Some(Err(over)) => Reserved::Over(Status::resource_exhausted(format!(
                "response message of {} bytes is over the server's memory budget of {}",
                over.wanted, over.limit
            ))),
        }
    }

    /// See [`crate::http2::send::poll_window`]; a reset ends the wait.
    fn poll_window(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), h2::Error>> {
        match self.send.as_mut() {
            Some(send) => crate::http2::send::poll_window(send, cx),
            None => Poll::Ready(Err(h2::Error::from(h2::Reason::INTERNAL_ERROR))),
        }
    }

    async fn send_batch(&mut self, batch: Batch) -> Result<(), h2::Error> {
        match self.send.as_mut() {
            Some(send) => crate::http2::send::send_batch(send, batch, false).await,
            None => Err(h2::Error::from(h2::Reason::INTERNAL_ERROR)),
        }
    }

    /// Counts the batch in `buf` as sent.
    fn count_sent(&self, buf: &EncodeBuf) {
        if let Some(observer) = &self.observer {
            observer.counters().sent_batch(buf);
        }
    }

    /// Ends a call whose handler did not finish: with the status of the
    /// deadline or the shutdown, or, when the handler's own answer was not
    /// sent whole (a reset, a broken stream), as cancelled.
    fn ended_early<T>(&mut self, ended: Ended<T>) {
        match ended {
            Ended::Normally(_) => {}
            Ended::Deadline => {
                tracing::debug!("call exceeded its deadline; handler dropped");
                self.finish(&deadline::exceeded(), None);
            }
            Ended::Shutdown => self.finish(&Status::unavailable("server shutting down"), None),
        }
        if let Some(observer) = self.observer.as_mut() {
            observer.end(
                &Status::cancelled("the call's stream closed before its status was sent"),
                None,
            );
        }
    }

    /// Ends the call with `status`: trailers after the headers, or a
    /// trailers-only response when no headers went out yet. The
    /// interceptors' `on_end` runs first, and may add trailers.
    fn finish(&mut self, status: &Status, trailers: Option<&MetadataMap>) {
        let mut observed;
        let trailers = match self.observer.as_mut() {
            None => trailers,
            Some(observer) => {
                observed = trailers.cloned().unwrap_or_default();
                observer.end(status, Some(&mut observed));
                Some(&observed)
            }
        };
        match self.send.as_mut() {
            Some(send) => {
                let mut map = HeaderMap::with_capacity(2);
                status.add_header(&mut map);
                if let Some(trailers) = trailers {
                    trailers.append_to(&mut map);
                }
                if let Err(err) = send.send_trailers(map) {
                    tracing::debug!(%err, "could not send trailers");
                }
            }
            None => respond_trailers_only(&mut self.respond, status, trailers),
        }
    }
}

/// Runs the handler future and writes what it returns, stopping early (and
/// dropping the handler) when the client resets the stream.
async fn write_response<Resp, S, Fut>(sink: &mut ResponseSink, mut handler: Pin<&mut Fut>)
where
    Resp: prost::Message,
    S: Stream<Item = Result<Resp, Status>>,
    Fut: Future<Output = Result<Response<S>, Status>>,
{
    let outcome = poll_fn(|cx| {
        if let Poll::Ready(outcome) = handler.as_mut().poll(cx) {
            return Poll::Ready(Some(outcome));
        }
        if sink.poll_reset(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await;
    let mut response = match outcome {
        None => {
            tracing::debug!("client reset the call; handler dropped");
            return;
        }
        Some(Err(status)) => {
            sink.finish(&status, None);
            return;
        }
        Some(Ok(response)) => response,
    };
    let trailers = response.take_trailers();
    let (mut metadata, messages, extensions) = response.into_parts();
    if extensions.get::<CompressionOverride>() == Some(&CompressionOverride::Disable) {
        sink.encoding = None;
    }
    let switch = extensions.get::<MessageCompression>().cloned();
    if let Err(err) = sink.send_headers(&mut metadata) {
        tracing::debug!(%err, "could not send response headers");
        return;
    }
    let mut messages = pin!(messages);
    let mut buf = EncodeBuf::default();
    loop {
        let next = poll_fn(|cx| {
            if let Poll::Ready(item) = messages.as_mut().poll_next(cx) {
                return Poll::Ready(Some(item));
            }
            if sink.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        let Some(first) = next else {
            tracing::debug!("client reset the call while streaming");
            return;
        };
        let Some(first) = first else {
            sink.finish(Status::ok_shared(), Some(&trailers));
            return;
        };
        // Nothing is encoded before the window lets some of it go out, and
        // the budget has room for it.
        if let Err(err) = poll_fn(|cx| sink.poll_window(cx)).await {
            tracing::debug!(%err, "response stream closed while waiting for the window");
            return;
        }
        let reservation = match (&sink.budget, &first) {
            (Some(budget), Ok(message)) => {
                match sink
                    .reserve(budget.clone(), HEADER_LEN + message.encoded_len())
                    .await
                {
                    Reserved::Granted(reservation) => Some(reservation),
                    Reserved::Reset => return,
                    Reserved::Over(status) => return sink.finish(&status, Some(&trailers)),
                }
            }
            _ => None,
        };
        let (encoding, max_message_size) = (sink.encoding, sink.max_message_size);
        let filled = fill_batch(&mut buf, first, messages.as_mut(), |buf, item| {
            let message = item?;
            buf.encode(
                &message,
                MessageCompression::apply(switch.as_ref(), encoding),
                max_message_size,
            )
        });
        if !buf.is_empty() {
            sink.count_sent(&buf);
            let mut batch = buf.take();
            if let Some(mut reservation) = reservation {
                // The batch may hold more messages than its first: they are
                // counted too, before h2 gets any of it.
                if batch.len() > reservation.bytes() {
                    let budget = reservation.budget().clone();
                    match sink
                        .reserve(budget, batch.len() - reservation.bytes())
                        .await
                    {
                        Reserved::Granted(more) => reservation.merge(more),
                        Reserved::Reset => return,
                        Reserved::Over(status) => return sink.finish(&status, Some(&trailers)),
                    }
                }
                // Each chunk holds its own bytes of the reservation, and
                // the last the rest (a batch of one chunk: all of it).
                let mut rest = Some(reservation);
                batch = batch.map(|chunk, last| match rest.as_mut() {
                    Some(reservation) if !last => reservation.split_off(chunk.len()).hold(chunk),
                    _ => match rest.take() {
                        Some(reservation) => reservation.hold(chunk),
                        None => chunk,
                    },
                });
            }
            if let Err(err) = sink.send_batch(batch).await {
                tracing::debug!(%err, "response stream closed while sending");
                return;
            }
        }
        match filled {
            Filled::Ready => {}
            Filled::Ended => {
                sink.finish(Status::ok_shared(), Some(&trailers));
                return;
            }
            Filled::Failed(status) => {
                sink.finish(&status, Some(&trailers));
                return;
            }
        }
    }
}

/// The headers of a successful response.
fn response_headers(encoding: Option<CompressionEncoding>) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(4);
    map.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(headers::APPLICATION_GRPC),
    );
    if let Some(encoding) = encoding {
        map.insert(headers::GRPC_ENCODING, encoding.header_value());
    }
    map.insert(
        headers::GRPC_ACCEPT_ENCODING,
        crate::wire::compression::accept_encoding_header_value(),
    );
    map
}

/// Sends a trailers-only response: HTTP 200, content type and status in one
/// HEADERS frame that ends the stream.
pub(crate) fn respond_trailers_only(
    respond: &mut SendResponse<Bytes>,
    status: &Status,
    extra: Option<&MetadataMap>,
) {
    respond_with_http_status(respond, http::StatusCode::OK, status, extra);
}

/// A trailers-only response with an explicit HTTP status (415 for a wrong
/// content type, 405 for a wrong method).
pub(crate) fn respond_with_http_status(
    respond: &mut SendResponse<Bytes>,
    http_status: http::StatusCode,
    status: &Status,
    extra: Option<&MetadataMap>,
) {
    send_trailers_only(respond, trailers_only_head(http_status, status, extra));
}

/// The one HEADERS frame of a trailers-only response.
pub(crate) fn trailers_only_head(
    http_status: http::StatusCode,
    status: &Status,
    extra: Option<&MetadataMap>,
) -> http::Response<()> {
    let mut response = http::Response::new(());
    *response.status_mut() = http_status;
    let map = response.headers_mut();
    map.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(headers::APPLICATION_GRPC),
    );
    status.add_header(map);
    if let Some(extra) = extra {
        extra.append_to(map);
    }
    response
}

/// Sends `head` as a response that ends the stream.
pub(crate) fn send_trailers_only(respond: &mut SendResponse<Bytes>, head: http::Response<()>) {
    if let Err(err) = respond.send_response(head, true) {
        tracing::debug!(%err, "could not send a trailers-only response");
    }
}
