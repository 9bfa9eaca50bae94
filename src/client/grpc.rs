//! [`Grpc`]: typed calls of the four kinds over a [`Channel`].

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use futures::{Stream, StreamExt};
use h2::SendStream;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Uri};

use super::intercept::CallObserver;
use super::replay::{SharedLog, SharedSource};
use super::retry::Retries;
use super::Channel;
use crate::http2::deadline;
use crate::http2::errors::status_from_h2;
use crate::http2::observe::{CallCounters, CallKind};
use crate::http2::recv::{OpenedHead, PendingHead, RecvBody};
use crate::http2::send::{fill_batch, send_batch, Filled};
use crate::rt::Sleep;
use crate::wire::compression::{CompressionEncoding, MessageCompression};
use crate::wire::framing::{Batch, EncodeBuf, DEFAULT_MAX_MESSAGE_SIZE};
use crate::wire::headers;
use crate::{Code, MetadataMap, Request, Response, Status, Streaming};

/// Makes calls of the four kinds on a [`Channel`]: what generated clients
/// wrap. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Grpc {
    channel: Channel,
    send_compression: Option<CompressionEncoding>,
    accept_compression: Option<CompressionEncoding>,
    max_decoding_message_size: usize,
    max_encoding_message_size: usize,
}

impl Grpc {
    /// Calls over `channel` with default settings.
    pub fn new(channel: Channel) -> Self {
        Grpc {
            channel,
            send_compression: None,
            accept_compression: None,
            max_decoding_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_encoding_message_size: usize::MAX,
        }
    }

    /// Compresses request messages with `encoding` (`grpc-encoding`).
    pub fn send_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.send_compression = Some(encoding);
        self
    }

    /// Asks the server to compress responses with `encoding` (advertised in
    /// `grpc-accept-encoding`). Compressed responses are decoded whether or
    /// not this was called.
    pub fn accept_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.accept_compression = Some(encoding);
        self
    }

    /// Largest response message accepted, after decompression (default
    /// 4 MiB); larger ones fail the call with `RESOURCE_EXHAUSTED`.
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.max_decoding_message_size = limit;
        self
    }

    /// Largest request message sent (default: no limit); larger ones fail
    /// the call with `RESOURCE_EXHAUSTED` before anything is sent.
    pub fn max_encoding_message_size(mut self, limit: usize) -> Self {
        self.max_encoding_message_size = limit;
        self
    }

    /// The channel calls go over.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// A unary call: one request, one response.
    pub async fn unary<Req, Resp>(
        &self,
        request: Request<Req>,
        path: &'static str,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let mut attempt = Attempt::of(&request);
        let (mut metadata, extensions, message) = request.into_parts();
        let mut observer = self.observer(path, CallKind::Unary, &attempt);
        let mut deadline = self.deadline(attempt.timeout);
        let call = async {
            begin(&mut observer, &mut metadata, extensions).await?;
            let payload = self.encode(&message, observer.as_ref())?;
            let (metadata, mut body) = self
                .send_retried(path, &metadata, &mut attempt, payload)
                .await?;
            body.set_counters(observer.as_ref().map(|o| o.counters().clone()));
            let mut messages = Streaming::<Resp>::new(body);
            single_response(metadata, &mut messages).await
        };
        let result = deadline::race(&mut deadline, call).await;
        if let Some(observer) = observer.as_mut() {
            observer.end_with(&result);
        }
        result
    }

    /// A server-streaming call: one request, a stream of responses.
    pub async fn server_streaming<Req, Resp>(
        &self,
        request: Request<Req>,
        path: &'static str,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let mut attempt = Attempt::of(&request);
        let (mut metadata, extensions, message) = request.into_parts();
        let mut observer = self.observer(path, CallKind::ServerStreaming, &attempt);
        let mut deadline = self.deadline(attempt.timeout);
        let call = async {
            begin(&mut observer, &mut metadata, extensions).await?;
            let payload = self.encode(&message, observer.as_ref())?;
            self.send_retried(path, &metadata, &mut attempt, payload)
                .await
        };
        let (metadata, mut body) = match deadline::race(&mut deadline, call).await {
            Ok(opened) => opened,
            Err(status) => {
                if let Some(observer) = observer.as_mut() {
                    observer.end(&status);
                }
                return Err(status);
            }
        };
        body.set_deadline(deadline);
        body.set_headers(metadata.clone());
        observe_body(&mut body, observer);
        let extensions = body.endpoint_extensions();
        Ok(Response::from_parts(
            metadata,
            Streaming::new(body),
            extensions,
        ))
    }

    /// A client-streaming call: a stream of requests, one response.
    pub async fn client_streaming<S, Req, Resp>(
        &self,
        request: Request<S>,
        path: &'static str,
    ) -> Result<Response<Resp>, Status>
    where
        S: Stream<Item = Req> + Send + 'static,
        Req: prost::Message + 'static,
        Resp: prost::Message + Default,
    {
        let mut attempt = Attempt::of(&request);
        let (mut metadata, extensions, messages) = request.into_parts();
        let mut observer = self.observer(path, CallKind::ClientStreaming, &attempt);
        let mut deadline = self.deadline(attempt.timeout);
        let call = async {
            let mut out = Outgoing {
                switch: begin(&mut observer, &mut metadata, extensions).await?,
                log: None,
                counters: observer.as_ref().map(|o| o.counters().clone()),
            };
            if self.channel.retry_policy(path).0.is_none() {
                return self
                    .client_streaming_attempt(path, &metadata, &attempt, messages, &out)
                    .await
                    .map_err(|(status, _)| status);
            }
            // Under a retry policy: the requests are logged as they are
            // sent, and replayed by the next attempt.
            let source = SharedSource::new(messages);
            let log = SharedLog::default();
            out.log = Some(log.clone());
            let mut retries = Retries::first();
            loop {
                let result = self
                    .client_streaming_attempt(path, &metadata, &attempt, source.clone(), &out)
                    .await;
                let (policy, throttle) = self.channel.retry_policy(path);
                let status = match result {
                    Ok(response) => {
                        if let Some(throttle) = throttle {
                            throttle.succeeded();
                        }
                        return Ok(response);
                    }
                    Err((status, true)) => return Err(status),
                    Err((status, false)) => status,
                };
                if crate::sync::lock(&log).overflowed() {
                    return Err(status);
                }
                let Some(delay) = retries.next_delay(policy, throttle, &status, fastrand::f64())
                else {
                    return Err(status);
                };
                tracing::debug!(path, %status, ?delay, attempt = retries.attempts, "retrying");
                self.channel.runtime().sleep(delay).await;
                attempt.previous = retries.attempts - 1;
            }
        };
        let result = deadline::race(&mut deadline, call).await;
        if let Some(observer) = observer.as_mut() {
            observer.end_with(&result);
        }
        result
    }

    /// One attempt of a client-streaming call. An error says whether the
    /// server had committed to the call (its response headers arrived) or
    /// the failure was local: then no retry may follow.
    async fn client_streaming_attempt<S, Req, Resp>(
        &self,
        path: &'static str,
        metadata: &MetadataMap,
        attempt: &Attempt,
        messages: S,
        out: &Outgoing,
    ) -> Result<Response<Resp>, (Status, bool)>
    where
        S: Stream<Item = Req>,
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let (response, send) = self
            .start(path, metadata, attempt)
            .await
            .map_err(|status| (status, false))?;
        let mut pump = pin!(self.pump(send, messages, out));
        let mut pump_done = false;
        let mut answer = pin!(async {
            let (metadata, mut body) = self
                .response_headers(response)
                .await
                .map_err(|status| (status, false))?;
            body.set_counters(out.counters.clone());
            let mut messages = Streaming::<Resp>::new(body);
            single_response(metadata, &mut messages)
                .await
                .map_err(|status| (status, true))
        });
        // Send and receive at once: the server may answer before it has
        // read every request (then the answer wins).
        poll_fn(|cx| {
            if let Poll::Ready(answer) = answer.as_mut().poll(cx) {
                return Poll::Ready(answer);
            }
            if !pump_done {
                if let Poll::Ready(pumped) = pump.as_mut().poll(cx) {
                    pump_done = true;
                    if let Err(status) = pumped {
                        return Poll::Ready(Err((status, true)));
                    }
                }
            }
            Poll::Pending
        })
        .await
    }

    /// A bidirectional-streaming call: streams both ways.
    ///
    /// Returns as soon as the request headers are sent, without waiting for
    /// anything from the server: the requests are sent from a task of their
    /// own as `request`'s stream yields them, so the caller may start
    /// sending after this returns. (grpc-go and the C core send their
    /// response headers only with the first response, after they read a
    /// request: a call that waited for them before the caller could send
    /// would never start.) The response headers arrive with the first
    /// message; [`Streaming::headers`] has them from then on. A call the
    /// server refuses at once (`UNIMPLEMENTED`, ...) reports its status as
    /// the first item of the stream. Dropping the stream cancels the call.
    pub async fn streaming<S, Req, Resp>(
        &self,
        request: Request<S>,
        path: &'static str,
    ) -> Result<Streaming<Resp>, Status>
    where
        S: Stream<Item = Req> + Send + 'static,
        Req: prost::Message + 'static,
        Resp: prost::Message + Default,
    {
        let attempt = Attempt::of(&request);
        let (mut metadata, extensions, messages) = request.into_parts();
        let mut observer = self.observer(path, CallKind::BidiStreaming, &attempt);
        let mut deadline = self.deadline(attempt.timeout);
        let started = deadline::race(&mut deadline, async {
            let switch = begin(&mut observer, &mut metadata, extensions).await?;
            Ok((switch, self.start(path, &metadata, &attempt).await?))
        })
        .await;
        let (switch, (head, send)) = match started {
            Ok(started) => started,
            Err(status) => {
                if let Some(observer) = observer.as_mut() {
                    observer.end(&status);
                }
                return Err(status);
            }
        };
        let counters = observer.as_ref().map(|o| o.counters().clone());
        if self.channel.retry_policy(path).0.is_none() {
            let mut body = RecvBody::pending(head, self.max_decoding_message_size);
            let out = Outgoing {
                switch,
                log: None,
                counters,
            };
            body.set_cancel_on_drop(self.spawn_pump(send, messages, out, None));
            body.set_deadline(deadline);
            observe_body(&mut body, observer);
            return Ok(Streaming::new(body));
        }
        // Under a retry policy, a task of its own makes the attempts: the
        // requests are logged as they are sent, an attempt whose head fails
        // before the server committed is followed by one that replays them,
        // and the head of the one the server commits to is handed to the
        // response stream. Dropping the stream stops it all.
        let (relay, relayed) = oneshot::channel();
        let (cancel, cancelled) = oneshot::channel::<()>();
        let retry = BidiRetry {
            grpc: self.clone(),
            path,
            metadata,
            attempt,
            source: SharedSource::new(messages),
            out: Outgoing {
                switch,
                log: Some(SharedLog::default()),
                counters,
            },
        };
        self.channel.runtime().spawn(Box::pin(async move {
            let attempts = retry.run(head, send, relay);
            // `cancelled` first: a caller that dropped the response stream
            // cancels the call, even if its requests ended meanwhile.
            futures::future::select(cancelled, Box::pin(attempts)).await;
        }));
        let mut body = RecvBody::relayed(relayed, self.max_decoding_message_size);
        body.set_cancel_on_drop(cancel);
        body.set_deadline(deadline);
        observe_body(&mut body, observer);
        Ok(Streaming::new(body))
    }

    /// Runs a bidi call's request pump in a task of its own. It ends when
    /// the requests are sent, the stream breaks, or the returned sender is
    /// dropped (with the response stream); `done` then learns it ended.
    fn spawn_pump<S, Req>(
        &self,
        send: SendStream<Bytes>,
        messages: S,
        out: Outgoing,
        done: Option<&PumpDone>,
    ) -> oneshot::Sender<()>
    where
        S: Stream<Item = Req> + Send + 'static,
        Req: prost::Message + 'static,
    {
        let (cancel, cancelled) = oneshot::channel::<()>();
        let (ended, ended_rx) = oneshot::channel::<()>();
        if let Some(done) = done {
            *crate::sync::lock(done) = Some(ended_rx);
        }
        let grpc = self.clone();
        self.channel.runtime().spawn(Box::pin(async move {
            let pump = async {
                if let Err(status) = grpc.pump(send, messages, &out).await {
                    tracing::debug!(%status, "request stream failed; call cancelled");
                }
            };
            // `cancelled` first: when the caller drops the request source
            // and the response stream together, the call is cancelled
            // (RST_STREAM), not half-closed as if the requests had ended.
            futures::future::select(cancelled, Box::pin(pump)).await;
            drop(ended);
        }));
        cancel
    }

    /// Encodes the one request of a unary or server-streaming call (and
    /// counts it as sent, for the interceptors).
    fn encode<M: prost::Message>(
        &self,
        message: &M,
        observer: Option<&CallObserver>,
    ) -> Result<Batch, Status> {
        let mut buf = EncodeBuf::default();
        buf.encode(
            message,
            self.send_compression,
            self.max_encoding_message_size,
        )?;
        if let Some(observer) = observer {
            observer.counters().sent(1, buf.len() as u64);
        }
        Ok(buf.take())
    }

    /// The observer of a call, when the channel has interceptors.
    fn observer(
        &self,
        path: &'static str,
        kind: CallKind,
        attempt: &Attempt,
    ) -> Option<CallObserver> {
        CallObserver::new(
            self.channel.interceptors(),
            path,
            kind,
            || self.channel.authority().as_str().into(),
            attempt.timeout,
        )
    }

    fn deadline(&self, timeout: Option<Duration>) -> Option<Sleep> {
        timeout.map(|timeout| self.channel.runtime().sleep(timeout))
    }

    /// Opens the HTTP/2 stream of a call's `attempt` and sends its headers.
    async fn start(
        &self,
        path: &'static str,
        metadata: &MetadataMap,
        attempt: &Attempt,
    ) -> Result<(PendingHead, SendStream<Bytes>), Status> {
        let (mut send_request, flag) = self.channel.ready(attempt.wait_for_ready).await?;
        let request = self.request_head(path, metadata, attempt)?;
        let (response, send) = send_request.send_request(request, false).map_err(|err| {
            flag.observe(&err);
            status_from_h2(&err)
        })?;
        let active = flag.enter();
        Ok((
            PendingHead {
                response,
                flag,
                active,
            },
            send,
        ))
    }

    fn request_head(
        &self,
        path: &'static str,
        metadata: &MetadataMap,
        attempt: &Attempt,
    ) -> Result<http::Request<()>, Status> {
        let timeout = attempt.remaining();
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.channel.scheme().clone());
        parts.authority = Some(self.channel.authority().clone());
        parts.path_and_query = Some(PathAndQuery::from_static(path));
        let uri = Uri::from_parts(parts)
            .map_err(|err| Status::internal(format!("invalid call path {path:?}: {err}")))?;
        let mut request = http::Request::new(());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = uri;
        let map: &mut HeaderMap = request.headers_mut();
        map.reserve(6 + metadata.len());
        // Right after the pseudo-headers, where the spec puts it (h2 writes
        // headers in the map's order).
        if let Some(timeout) = timeout {
            map.insert(
                headers::GRPC_TIMEOUT,
                crate::wire::timeout::format_timeout(timeout),
            );
        }
        map.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(headers::APPLICATION_GRPC),
        );
        map.insert(
            http::header::TE,
            HeaderValue::from_static(headers::TE_TRAILERS),
        );
        map.insert(http::header::USER_AGENT, self.channel.user_agent().clone());
        if let Some(encoding) = self.accept_compression {
            map.insert(headers::GRPC_ACCEPT_ENCODING, encoding.header_value());
        }
        if let Some(encoding) = self.send_compression {
            map.insert(headers::GRPC_ENCODING, encoding.header_value());
        }
        if attempt.previous > 0 {
            map.insert(
                headers::GRPC_PREVIOUS_RPC_ATTEMPTS,
                HeaderValue::from(attempt.previous),
            );
        }
        metadata.append_to(map);
        Ok(request)
    }

    /// [`send_one`](Self::send_one) under the method's retry policy: an
    /// attempt that fails before the server committed (no response
    /// headers) is made again as the policy, the throttle and the server's
    /// pushback allow. The caller's deadline bounds the whole.
    async fn send_retried(
        &self,
        path: &'static str,
        metadata: &MetadataMap,
        attempt: &mut Attempt,
        payload: Batch,
    ) -> Result<(MetadataMap, RecvBody), Status> {
        let (policy, throttle) = self.channel.retry_policy(path);
        let mut retries = Retries::first();
        loop {
            match self
                .send_one(path, metadata, attempt, payload.clone())
                .await
            {
                Ok(committed) => {
                    if let Some(throttle) = throttle {
                        throttle.succeeded();
                    }
                    return Ok(committed);
                }
                Err(status) => {
                    let Some(delay) =
                        retries.next_delay(policy, throttle, &status, fastrand::f64())
                    else {
                        return Err(status);
                    };
                    tracing::debug!(path, %status, ?delay, attempt = retries.attempts, "retrying");
                    if !delay.is_zero() {
                        self.channel.runtime().sleep(delay).await;
                    }
                    attempt.previous = retries.attempts - 1;
                }
            }
        }
    }

    /// Sends the one request message of a unary or server-streaming call
    /// and waits for the response headers. A stream the server refused
    /// before processing it (`REFUSED_STREAM`, as when calls are opened
    /// before its concurrency limit is known) is sent again, a few times:
    /// the request is in memory and was not seen.
    async fn send_one(
        &self,
        path: &'static str,
        metadata: &MetadataMap,
        call_attempt: &Attempt,
        payload: Batch,
    ) -> Result<(MetadataMap, RecvBody), Status> {
        let mut attempt = 1;
        loop {
            let (head, mut send) = self.start(path, metadata, call_attempt).await?;
            // A failed send means the server already answered (or the stream
            // broke): the response says which.
            let _ = send_single(&mut send, payload.clone());
            match head.wait().await {
                Err(err)
                    if err.reason() == Some(h2::Reason::REFUSED_STREAM)
                        && attempt < REFUSED_STREAM_ATTEMPTS =>
                {
                    tracing::debug!(attempt, "stream refused before processing; sending again");
                    attempt += 1;
                }
                Err(err) => return Err(status_from_h2(&err)),
                Ok((response, flag, active)) => {
                    return RecvBody::from_response(
                        response,
                        flag,
                        active,
                        self.max_decoding_message_size,
                    )
                }
            }
        }
    }

    /// Waits for the response headers; a trailers-only error response
    /// becomes `Err(status)`.
    async fn response_headers(&self, head: PendingHead) -> Result<(MetadataMap, RecvBody), Status> {
        let (response, flag, active) = head.wait().await.map_err(|err| status_from_h2(&err))?;
        RecvBody::from_response(response, flag, active, self.max_decoding_message_size)
    }

    /// Sends every request message, then ends the stream. A local encoding
    /// failure is returned (and resets the stream); a failed send is not: the
    /// response will tell what happened.
    ///
    /// With a `log` (a call under a retry policy), the batches it holds are
    /// sent first (a new attempt), and every batch is logged before it goes
    /// out.
    async fn pump<S, Req>(
        &self,
        mut send: SendStream<Bytes>,
        messages: S,
        out: &Outgoing,
    ) -> Result<(), Status>
    where
        S: Stream<Item = Req>,
        Req: prost::Message,
    {
        let Outgoing {
            switch,
            log,
            counters,
        } = out;
        if let Some(log) = log {
            let replay = crate::sync::lock(log).batches();
            for (batch, ended) in replay {
                if send_batch(&mut send, batch, ended).await.is_err() || ended {
                    return Ok(());
                }
            }
        }
        let mut messages = pin!(messages);
        let mut buf = EncodeBuf::default();
        let encoding = |buf: &mut EncodeBuf, message: Req| {
            buf.encode(
                &message,
                MessageCompression::apply(switch.as_ref(), self.send_compression),
                self.max_encoding_message_size,
            )
        };
        while let Some(message) = messages.next().await {
            let ended = match fill_batch(&mut buf, message, messages.as_mut(), encoding) {
                Filled::Ready => false,
                Filled::Ended => true,
                Filled::Failed(status) => {
                    send.send_reset(h2::Reason::CANCEL);
                    return Err(status);
                }
            };
            if let Some(counters) = counters {
                counters.sent_batch(&buf);
            }
            let batch = buf.take();
            if let Some(log) = log {
                crate::sync::lock(log).record(&batch, ended);
            }
            if send_batch(&mut send, batch, ended).await.is_err() || ended {
                return Ok(());
            }
        }
        if let Some(log) = log {
            crate::sync::lock(log).record(&Batch::default(), true);
        }
        let _ = send.send_data(Bytes::new(), true);
        Ok(())
    }
}

/// Sends the one request message of a unary or server-streaming call and
/// ends the stream. The whole message is handed to h2 at once, without
/// waiting for flow-control capacity: it is already in memory, so h2 holding
/// it until the window allows adds nothing, and a new stream has no capacity
/// until the connection task has opened it, so waiting would send the
/// HEADERS and DATA frames in two writes (and cost a task switch).
fn send_single(send: &mut SendStream<Bytes>, payload: Batch) -> Result<(), h2::Error> {
    for (chunk, last) in payload.into_chunks() {
        send.send_data(chunk, last)?;
    }
    Ok(())
}

/// How often a unary or server-streaming request refused before processing
/// is sent, in all.
const REFUSED_STREAM_ATTEMPTS: u32 = 4;

/// What varies between the attempts of one call.
#[derive(Debug, Clone)]
struct Attempt {
    /// The call's timeout, from its start.
    timeout: Option<Duration>,
    started: Instant,
    wait_for_ready: bool,
    /// Attempts made before this one (`grpc-previous-rpc-attempts`).
    previous: u32,
}

impl Attempt {
    fn of<T>(request: &Request<T>) -> Self {
        Attempt {
            timeout: request.timeout(),
            started: Instant::now(),
            wait_for_ready: request.wait_for_ready(),
            previous: 0,
        }
    }

    /// The timeout to send: what is left of the call's (the first attempt
    /// sends it whole).
    fn remaining(&self) -> Option<Duration> {
        let timeout = self.timeout?;
        if self.previous == 0 {
            return Some(timeout);
        }
        Some(timeout.saturating_sub(self.started.elapsed()))
    }
}

/// How a call's requests go out, whatever the attempt: the compression
/// switch the request asked for, the log of what was sent (under a retry
/// policy, for the next attempt to replay), and the interceptors' counters.
#[derive(Clone, Default)]
struct Outgoing {
    switch: Option<MessageCompression>,
    log: Option<SharedLog>,
    counters: Option<Arc<CallCounters>>,
}

/// Where a bidi call's request pump says it has ended.
type PumpDone = Arc<Mutex<Option<oneshot::Receiver<()>>>>;

/// A bidi call under a retry policy: what its attempts share.
struct BidiRetry<S> {
    grpc: Grpc,
    path: &'static str,
    metadata: MetadataMap,
    attempt: Attempt,
    source: SharedSource<S>,
    /// Its log is always there: every attempt's requests are logged.
    out: Outgoing,
}

impl<S, Req> BidiRetry<S>
where
    S: Stream<Item = Req> + Send + 'static,
    Req: prost::Message + 'static,
{
    /// Runs the attempts, starting with the one already open (`head`,
    /// `send`), until the server commits to one (its head goes to `relay`,
    /// and its pump runs until the response stream is dropped) or the
    /// policy gives up (the status goes to `relay`).
    async fn run(
        mut self,
        mut head: PendingHead,
        send: SendStream<Bytes>,
        relay: oneshot::Sender<Result<OpenedHead, Status>>,
    ) {
        let done = PumpDone::default();
        let mut retries = Retries::first();
        let mut pump = self.pump(send, &done);
        loop {
            let status = match head.wait().await {
                Ok((response, flag, active)) => {
                    match Status::from_header_map(response.headers()) {
                        // Trailers-Only with an error: not committed.
                        Some(status) if status.code() != Code::Ok => status,
                        _ => {
                            let _ = relay.send(Ok((response, flag, active)));
                            // Keeps the pump running until the stream is
                            // dropped (which drops this future).
                            let _pump = pump;
                            futures::future::pending::<()>().await;
                            return;
                        }
                    }
                }
                Err(err) => status_from_h2(&err),
            };
            // Stop this attempt's pump, and wait until it has stopped, so
            // that no request goes to it after the log is replayed.
            drop(pump);
            let stopped = crate::sync::lock(&done).take();
            if let Some(stopped) = stopped {
                let _ = stopped.await;
            }
            let (policy, throttle) = self.grpc.channel.retry_policy(self.path);
            let overflowed = self
                .out
                .log
                .as_ref()
                .is_some_and(|log| crate::sync::lock(log).overflowed());
            let delay = if overflowed {
                None
            } else {
                retries.next_delay(policy, throttle, &status, fastrand::f64())
            };
            let Some(delay) = delay else {
                let _ = relay.send(Err(status));
                return;
            };
            tracing::debug!(path = self.path, %status, ?delay, attempt = retries.attempts, "retrying");
            self.grpc.channel.runtime().sleep(delay).await;
            self.attempt.previous = retries.attempts - 1;
            match self
                .grpc
                .start(self.path, &self.metadata, &self.attempt)
                .await
            {
                Ok((next_head, send)) => {
                    head = next_head;
                    pump = self.pump(send, &done);
                }
                Err(status) => {
                    let _ = relay.send(Err(status));
                    return;
                }
            }
        }
    }

    fn pump(&self, send: SendStream<Bytes>, done: &PumpDone) -> oneshot::Sender<()> {
        self.grpc
            .spawn_pump(send, self.source.clone(), self.out.clone(), Some(done))
    }
}

/// Runs the interceptors' `on_start` of a call, if it has any, on its
/// request metadata and extensions; returns the compression switch the
/// request asks for, or the refusal.
async fn begin(
    observer: &mut Option<CallObserver>,
    metadata: &mut MetadataMap,
    extensions: http::Extensions,
) -> Result<Option<MessageCompression>, Status> {
    match observer {
        None => Ok(extensions.get::<MessageCompression>().cloned()),
        Some(observer) => {
            observer.start(metadata, extensions).await?;
            Ok(observer.extensions().get::<MessageCompression>().cloned())
        }
    }
}

/// Hands a call's observer to its response stream, which reports the end.
fn observe_body(body: &mut RecvBody, observer: Option<CallObserver>) {
    if let Some(observer) = observer {
        body.set_counters(Some(observer.counters().clone()));
        body.set_end_hook(Some(observer.into_end_hook()));
    }
}

/// Reads the one message of a unary or client-streaming response, then its
/// trailers.
async fn single_response<Resp: prost::Message + Default>(
    metadata: MetadataMap,
    messages: &mut Streaming<Resp>,
) -> Result<Response<Resp>, Status> {
    let message = messages.only_message("response").await?;
    let trailers = messages.trailers().await?.unwrap_or_default();
    let mut response = Response::from_parts(metadata, message, messages.extensions());
    response.set_trailers(trailers);
    Ok(response)
}
