//! Generated code shared by the example binaries in `src/bin/`, the log
//! set-up each of them starts with, and a metrics recorder that logs.

use std::sync::Arc;

use metrics::{Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata};
use metrics::{Recorder, SharedString, Unit};

/// Prints p2p-grpc's `tracing` logs to stderr, filtered by `RUST_LOG`
/// (for example `RUST_LOG=p2p_grpc=debug`; default: warnings and errors).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Installs a `metrics` recorder that logs every update (target
/// `metrics`, level `INFO`), to watch the `Metrics` interceptor at work
/// without a metrics backend. A real program installs its exporter
/// (Prometheus, OpenTelemetry...) instead.
pub fn log_metrics() {
    let _ = metrics::set_global_recorder(LogRecorder);
}

struct LogRecorder;

struct Logged(Key);

impl CounterFn for Logged {
    fn increment(&self, value: u64) {
        tracing::info!(target: "metrics", key = %self.0, value, "counter +");
    }

    fn absolute(&self, value: u64) {
        tracing::info!(target: "metrics", key = %self.0, value, "counter =");
    }
}

impl HistogramFn for Logged {
    fn record(&self, value: f64) {
        tracing::info!(target: "metrics", key = %self.0, value, "histogram");
    }
}

impl Recorder for LogRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Logged(key.clone())))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Logged(key.clone())))
    }
}

/// The encoded `FileDescriptorSet` of the example protos, for server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/examples_descriptor.bin"));

/// The greeter service (`proto/helloworld.proto`).
pub mod helloworld {
    p2p_grpc::include_proto!("helloworld");
}

/// The route guide service (`proto/routeguide.proto`).
pub mod routeguide {
    p2p_grpc::include_proto!("routeguide");
}

/// The chat service (`proto/chat.proto`).
pub mod chat {
    p2p_grpc::include_proto!("chat");
}
