//! [`Tracing`]: a span per call, and an event when it ends.

use std::future::Future;

use tracing::field::Empty;
use tracing::Span;

use crate::{client, server, Status};

/// A `tracing` span per call, and one `INFO` event (target
/// `p2p_grpc::interceptors`) when it ends, in the span.
///
/// The span is `grpc.server` or `grpc.client`, with the fields `service`,
/// `method`, `kind`, and `peer` (server: the libp2p peer id or the TCP
/// address) or `target` (client: the channel's authority); at the end it
/// records `status` (the code's name), `elapsed_ms`, and `messages_sent`,
/// `messages_received`, `bytes_sent`, `bytes_received`, and the event
/// repeats them with the status message as `grpc_message`. On a server the handler and the
/// response run inside the span, so the handler's own events carry it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tracing {
    _private: (),
}

impl Tracing {
    /// The interceptor.
    pub fn new() -> Self {
        Tracing::default()
    }
}

/// The span of one call, where `on_end` finds it.
#[derive(Clone)]
struct CallSpan(Span);

fn record_end(span: &Span, status: &Status, elapsed: std::time::Duration, stats: crate::CallStats) {
    span.record("status", status.code().name());
    span.record("elapsed_ms", elapsed.as_secs_f64() * 1e3);
    span.record("messages_sent", stats.messages_sent);
    span.record("messages_received", stats.messages_received);
    span.record("bytes_sent", stats.bytes_sent);
    span.record("bytes_received", stats.bytes_received);
    span.in_scope(|| {
        tracing::info!(
            status = status.code().name(),
            grpc_message = status.message(),
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            messages_sent = stats.messages_sent,
            messages_received = stats.messages_received,
            bytes_sent = stats.bytes_sent,
            bytes_received = stats.bytes_received,
            "call ended"
        )
    });
}

impl server::Interceptor for Tracing {
    fn on_start(
        &self,
        call: &mut server::CallStart,
    ) -> impl Future<Output = Result<(), Status>> + Send {
        let info = call.info();
        let span = tracing::info_span!(
            "grpc.server",
            service = info.service(),
            method = info.method(),
            kind = info.kind().as_str(),
            peer = super::peer(&info),
            status = Empty,
            elapsed_ms = Empty,
            messages_sent = Empty,
            messages_received = Empty,
            bytes_sent = Empty,
            bytes_received = Empty,
        );
        call.extensions_mut().insert(CallSpan(span.clone()));
        call.instrument(span);
        std::future::ready(Ok(()))
    }

    fn on_end(&self, call: &mut server::CallEnd<'_>) {
        if let Some(CallSpan(span)) = call.info().extensions().get::<CallSpan>() {
            record_end(span, call.status(), call.elapsed(), call.stats());
        }
    }
}

impl client::Interceptor for Tracing {
    fn on_start(
        &self,
        call: &mut client::CallStart,
    ) -> impl Future<Output = Result<(), Status>> + Send {
        let info = call.info();
        let span = tracing::info_span!(
            "grpc.client",
            service = info.service(),
            method = info.method(),
            kind = info.kind().as_str(),
            target = info.target(),
            status = Empty,
            elapsed_ms = Empty,
            messages_sent = Empty,
            messages_received = Empty,
            bytes_sent = Empty,
            bytes_received = Empty,
        );
        call.extensions_mut().insert(CallSpan(span));
        std::future::ready(Ok(()))
    }

    fn on_end(&self, call: &client::CallEnd<'_>) {
        if let Some(CallSpan(span)) = call.extensions().get::<CallSpan>() {
            record_end(span, call.status(), call.elapsed(), call.stats());
        }
    }
}
