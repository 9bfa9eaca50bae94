//! Serving one HTTP/2 connection: the accept loop and request validation.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use h2::server::SendResponse;
use http::StatusCode;

use super::call::{
    respond_trailers_only, respond_with_http_status, send_trailers_only, trailers_only_head,
    ServerCall,
};
use super::Shared;
use crate::http2::keepalive::ServerTap;
use crate::http2::{handshake, keepalive};
use crate::io::{Io, Tap};
use crate::request::RequestExtensions;
use crate::sync::Signal;
use crate::sync::Tracker;
use crate::wire::compression::CompressionEncoding;
use crate::wire::headers;
use crate::wire::timeout::parse_timeout;
use crate::{Error, MetadataMap, Status};

/// Runs the HTTP/2 server side of `io` until the peer closes it, the server
/// shuts down, or the connection fails.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    io: impl Io,
    extensions: http::Extensions,
) -> Result<(), Error> {
    let _live = shared.connections.enter();
    if shared.shutdown.is_fired() {
        return Ok(());
    }
    let extensions = Arc::new(extensions);
    let config = &shared.config;
    let mut builder = config.settings.server();
    if let Some(max) = config.max_concurrent_streams {
        builder.max_concurrent_streams(max);
    }
    if let Some(max) = config.max_pending_accept_reset_streams {
        builder.max_pending_accept_reset_streams(max);
    }
    // Calls running on this connection, for the idle timeout and the ping
    // policy.
    let calls = Tracker::default();
    let too_many_pings = Signal::default();
    let tap = config.ping_policy.map(|policy| {
        Box::new(ServerTap::new(
            policy,
            calls.clone(),
            too_many_pings.clone(),
        )) as Box<dyn Tap>
    });
    let handshake = builder.handshake::<_, Bytes>(crate::io::for_h2(io, tap));
    let mut forced = shared.force_shutdown.wait();
    let mut connection = handshake::limited(
        async { handshake.await.map_err(Error::http2) },
        &config.runtime,
        config.settings.handshake_timeout,
        Some(&mut forced),
        "HTTP/2 handshake",
    )
    .await?;
    let mut pinger = keepalive::pinger(
        config.keepalive,
        connection.ping_pong(),
        &config.runtime,
        None,
    )
    .map(Box::pin);
    let mut shutdown = shared.shutdown.wait();
    let mut draining = false;
    let mut pinged_too_often = too_many_pings.wait();
    let mut idle_timer: Option<crate::rt::Sleep> = None;
    let mut busy_listener = None;
    loop {
        // Lives on the stack for one loop turn; boxing would cost an
        // allocation per request.
        #[allow(clippy::large_enum_variant)]
        enum Next {
            Request(Result<(http::Request<h2::RecvStream>, SendResponse<Bytes>), h2::Error>),
            Closed,
            Drain,
            Abort,
            Idle,
            TooManyPings,
            Dead(Error),
        }
        let next = poll_fn(|cx| {
            if Pin::new(&mut forced).poll(cx).is_ready() {
                return Poll::Ready(Next::Abort);
            }
            if !draining && Pin::new(&mut shutdown).poll(cx).is_ready() {
                return Poll::Ready(Next::Drain);
            }
            if Pin::new(&mut pinged_too_often).poll(cx).is_ready() {
                return Poll::Ready(Next::TooManyPings);
            }
            if let Some(pinger) = pinger.as_mut() {
                if let Poll::Ready(err) = pinger.as_mut().poll(cx) {
                    return Poll::Ready(Next::Dead(err));
                }
            }
            if let Some(limit) = config.idle_timeout {
                if poll_idle(
                    &calls,
                    limit,
                    &config.runtime,
                    &mut idle_timer,
                    &mut busy_listener,
                    cx,
                )
                .is_ready()
                {
                    return Poll::Ready(Next::Idle);
                }
            }
            match connection.poll_accept(cx) {
                Poll::Ready(Some(result)) => Poll::Ready(Next::Request(result)),
                Poll::Ready(None) => Poll::Ready(Next::Closed),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match next {
            Next::Request(Ok((request, respond))) => {
                dispatch(&shared, request, respond, &extensions, &calls)
            }
            Next::Request(Err(err)) => {
                // The peer went away (its GOAWAY, or a closed stream): a
                // normal end. A GOAWAY of our own h2 (the peer broke the
                // protocol or flooded us) is an error of the connection.
                if err.is_go_away() && err.is_remote() || err.is_io() && is_disconnect(&err) {
                    tracing::debug!(%err, "connection closed by peer");
                    return Ok(());
                }
                tracing::debug!(%err, "connection failed");
                return Err(Error::http2(err));
            }
            Next::Closed => return Ok(()),
            Next::Dead(err) => {
                // Dropping the connection fails the calls still running on it.
                tracing::debug!(%err, "peer stopped answering; dropping the connection");
                return Err(err);
            }
            Next::Drain => {
                draining = true;
                connection.graceful_shutdown();
            }
            Next::Abort | Next::Idle | Next::TooManyPings => {
                let reason = match next {
                    Next::Idle => {
                        tracing::debug!("connection idle for too long; closing it");
                        h2::Reason::NO_ERROR
                    }
                    // The tap has sent the GOAWAY with `too_many_pings`.
                    Next::TooManyPings => h2::Reason::ENHANCE_YOUR_CALM,
                    _ => h2::Reason::NO_ERROR,
                };
                connection.abrupt_shutdown(reason);
                // Give the GOAWAY a moment to be written, but never wait on
                // a peer that does not read.
                let mut linger = config.runtime.sleep(std::time::Duration::from_millis(200));
                poll_fn(|cx| {
                    if connection.poll_closed(cx).is_ready() || linger.as_mut().poll(cx).is_ready()
                    {
                        return Poll::Ready(());
                    }
                    Poll::Pending
                })
                .await;
                return Ok(());
            }
        }
    }
}

/// Ready once no call has run on the connection for `limit`. While calls
/// run, waits (with a listener) for the count to drop to zero.
fn poll_idle(
    calls: &Tracker,
    limit: std::time::Duration,
    runtime: &crate::rt::SharedRuntime,
    timer: &mut Option<crate::rt::Sleep>,
    busy: &mut Option<event_listener::EventListener>,
    cx: &mut std::task::Context<'_>,
) -> Poll<()> {
    loop {
        if calls.count() == 0 {
            *busy = None;
            let timer = timer.get_or_insert_with(|| runtime.sleep(limit));
            return timer.as_mut().poll(cx);
        }
        *timer = None;
        let listener = busy.get_or_insert_with(|| calls.listen_idle());
        // Re-check after listening: no lost wake-up.
        if calls.count() != 0 && Pin::new(listener).poll(cx).is_pending() {
            return Poll::Pending;
        }
        *busy = None;
    }
}

fn is_disconnect(err: &h2::Error) -> bool {
    use std::io::ErrorKind::*;
    err.get_io().is_some_and(|io| {
        matches!(
            io.kind(),
            BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof | NotConnected
        )
    })
}

/// Validates the request headers, finds the service and spawns the call.
fn dispatch(
    shared: &Arc<Shared>,
    request: http::Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
    extensions: &Arc<http::Extensions>,
    calls: &Tracker,
) {
    let (parts, body) = request.into_parts();
    if parts.method != http::Method::POST {
        respond_with_http_status(
            &mut respond,
            StatusCode::METHOD_NOT_ALLOWED,
            &Status::internal(format!("gRPC requires POST, got {}", parts.method)),
            None,
        );
        return;
    }
    let mut grpc = headers::RequestHeaders::default();
    let metadata =
        MetadataMap::from_headers_taking(parts.headers, |name, value| grpc.take(name, value));
    if !grpc.is_grpc() {
        respond_with_http_status(
            &mut respond,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &Status::internal("invalid gRPC request content-type"),
            None,
        );
        return;
    }
    let timeout = match &grpc.timeout {
        None => None,
        Some(value) => match parse_timeout(value.as_bytes()) {
            Ok(timeout) => Some(timeout),
            Err(err) => {
                respond_trailers_only(
                    &mut respond,
                    &Status::internal(format!("malformed grpc-timeout: {err}")),
                    None,
                );
                return;
            }
        },
    };
    let request_encoding = match CompressionEncoding::from_encoding_header(grpc.encoding.as_ref()) {
        Ok(encoding) => encoding,
        Err(status) => {
            respond_unsupported_encoding(&mut respond, &status);
            return;
        }
    };
    let config = &shared.config;
    if config
        .budget
        .as_ref()
        .is_some_and(|budget| budget.is_spent())
    {
        respond_trailers_only(
            &mut respond,
            &Status::resource_exhausted("the server's memory budget is spent; try again later"),
            None,
        );
        return;
    }
    let response_encoding = config
        .send_compression
        .filter(|encoding| encoding.is_accepted_by(grpc.accept_encoding.as_ref()));

    let path = parts.uri.path();
    let Some((service_name, method)) = headers::split_path(path) else {
        respond_trailers_only(
            &mut respond,
            &Status::unimplemented(format!("malformed method path {path:?}")),
            None,
        );
        return;
    };
    let Some(service) = shared.service(service_name) else {
        respond_trailers_only(
            &mut respond,
            &Status::unimplemented(format!("unknown service {service_name}")),
            None,
        );
        return;
    };

    // Shared with the connection unless h2 attached some of its own.
    let call_extensions = if parts.extensions.is_empty() {
        RequestExtensions::Shared(extensions.clone())
    } else {
        let mut own = http::Extensions::clone(extensions);
        own.extend(parts.extensions);
        RequestExtensions::Owned(own)
    };
    let intercepted_path = if config.interceptors.is_empty() {
        None
    } else {
        parts.uri.path_and_query().cloned()
    };
    let call = ServerCall {
        intercepted_path,
        body,
        respond,
        metadata,
        extensions: call_extensions,
        timeout,
        request_encoding,
        response_encoding,
        config: config.clone(),
        force_shutdown: shared.force_shutdown.clone(),
        active: calls.enter(),
    };
    config.runtime.spawn(service.call(method, call));
}

/// `UNIMPLEMENTED` for a `grpc-encoding` we do not support, advertising the
/// encodings we do (the spec asks for `grpc-accept-encoding` there).
fn respond_unsupported_encoding(respond: &mut SendResponse<Bytes>, status: &Status) {
    let mut head = trailers_only_head(StatusCode::OK, status, None);
    head.headers_mut().insert(
        headers::GRPC_ACCEPT_ENCODING,
        crate::wire::compression::accept_encoding_header_value(),
    );
    send_trailers_only(respond, head);
}
