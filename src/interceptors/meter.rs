//! [`Metrics`]: call counts and histograms through the `metrics` facade.

use std::future::Future;

use metrics::{counter, histogram, SharedString};

use crate::{client, server, Status};

/// Call metrics through the [`metrics`](https://docs.rs/metrics) facade
/// (feature `metrics`), to whichever recorder the program installed
/// (Prometheus, OpenTelemetry, StatsD...). Names and labels follow gRPC's
/// OpenTelemetry plugin (gRFC A66): durations in seconds, sizes in bytes,
/// `grpc.method` as `package.Service/Method`, `grpc.status` as the code's
/// name (`OK`, `UNAVAILABLE`...), `grpc.target` as the channel's authority.
///
/// On a server:
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `grpc.server.call.started` | counter | `grpc.method` |
/// | `grpc.server.call.duration` | histogram | `grpc.method`, `grpc.status` |
/// | `grpc.server.call.sent_total_compressed_message_size` | histogram | `grpc.method`, `grpc.status` |
/// | `grpc.server.call.rcvd_total_compressed_message_size` | histogram | `grpc.method`, `grpc.status` |
///
/// On a channel, the same per call (A66 counts the sizes per attempt; an
/// interceptor sees a retried call once):
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `grpc.client.call.started` | counter | `grpc.method`, `grpc.target` |
/// | `grpc.client.call.duration` | histogram | `grpc.method`, `grpc.target`, `grpc.status` |
/// | `grpc.client.call.sent_total_compressed_message_size` | histogram | `grpc.method`, `grpc.target`, `grpc.status` |
/// | `grpc.client.call.rcvd_total_compressed_message_size` | histogram | `grpc.method`, `grpc.target`, `grpc.status` |
#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    _private: (),
}

impl Metrics {
    /// The interceptor.
    pub fn new() -> Self {
        Metrics::default()
    }
}

/// `package.Service/Method`.
fn method_label(service: &str, method: &str) -> SharedString {
    format!("{service}/{method}").into()
}

impl server::Interceptor for Metrics {
    fn on_start(
        &self,
        call: &mut server::CallStart,
    ) -> impl Future<Output = Result<(), Status>> + Send {
        let info = call.info();
        counter!(
            "grpc.server.call.started",
            "grpc.method" => method_label(info.service(), info.method())
        )
        .increment(1);
        std::future::ready(Ok(()))
    }

    fn on_end(&self, call: &mut server::CallEnd<'_>) {
        let info = call.info();
        let labels = [
            ("grpc.method", method_label(info.service(), info.method())),
            ("grpc.status", call.status().code().name().into()),
        ];
        let stats = call.stats();
        histogram!("grpc.server.call.duration", &labels).record(call.elapsed().as_secs_f64());
        histogram!(
            "grpc.server.call.sent_total_compressed_message_size",
            &labels
        )
        .record(stats.bytes_sent as f64);
        histogram!(
            "grpc.server.call.rcvd_total_compressed_message_size",
            &labels
        )
        .record(stats.bytes_received as f64);
    }
}

impl client::Interceptor for Metrics {
    fn on_start(
        &self,
        call: &mut client::CallStart,
    ) -> impl Future<Output = Result<(), Status>> + Send {
        counter!(
            "grpc.client.call.started",
            "grpc.method" => client_method(call.info().path()),
            "grpc.target" => call.info().target().to_owned()
        )
        .increment(1);
        std::future::ready(Ok(()))
    }

    fn on_end(&self, call: &client::CallEnd<'_>) {
        let labels = [
            ("grpc.method", client_method(call.info().path())),
            ("grpc.target", call.info().target().to_owned().into()),
            ("grpc.status", call.status().code().name().into()),
        ];
        let stats = call.stats();
        histogram!("grpc.client.call.duration", &labels).record(call.elapsed().as_secs_f64());
        histogram!(
            "grpc.client.call.sent_total_compressed_message_size",
            &labels
        )
        .record(stats.bytes_sent as f64);
        histogram!(
            "grpc.client.call.rcvd_total_compressed_message_size",
            &labels
        )
        .record(stats.bytes_received as f64);
    }
}

/// A client path, `/package.Service/Method`, as the label wants it: static,
/// so free of allocation.
fn client_method(path: &'static str) -> SharedString {
    path.strip_prefix('/').unwrap_or(path).into()
}
