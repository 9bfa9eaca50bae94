//! The ready-made interceptors: `Tracing`'s spans and events, and the
//! metrics `Metrics` records, seen through a subscriber and a recorder
//! installed for this test binary alone.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use metrics::{Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata};
use metrics::{Recorder, SharedString, Unit};
use p2p_grpc::client::Grpc;
use p2p_grpc::interceptors::{Metrics, Tracing};
use p2p_grpc::{Code, Request};

/// Everything the fmt subscriber wrote.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Every metric update: name, sorted labels, value.
type Update = (String, Vec<(String, String)>, f64);
static UPDATES: Mutex<Vec<Update>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One metric handle: records each update under its key.
struct Handle(Key);

impl Handle {
    fn push(&self, value: f64) {
        let mut labels: Vec<_> = self
            .0
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()))
            .collect();
        labels.sort();
        UPDATES
            .lock()
            .unwrap()
            .push((self.0.name().to_owned(), labels, value));
    }
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.push(value as f64);
    }

    fn absolute(&self, value: u64) {
        self.push(value as f64);
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.push(value);
    }
}

struct Collect;

impl Recorder for Collect {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle(key.clone())))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Handle(key.clone())))
    }
}

fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        metrics::set_global_recorder(Collect).unwrap();
    });
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    labels
}

/// The updates of metric `name` with exactly `pairs` as labels.
fn updates(name: &str, pairs: &[(&str, &str)]) -> Vec<f64> {
    let wanted = labels(pairs);
    UPDATES
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, l, _)| n == name && *l == wanted)
        .map(|(_, _, v)| *v)
        .collect()
}

#[test]
fn tracing_and_metrics_see_every_call() {
    install();
    run(async {
        let (server, _events) =
            echo_server(|b| b.interceptor(Tracing::new()).interceptor(Metrics::new()));
        let addr = tcp_server(&server);
        let channel = p2p_grpc::Channel::connect_tcp(addr)
            .await
            .unwrap()
            .with_interceptor(Tracing::new())
            .with_interceptor(Metrics::new());
        let grpc = Grpc::new(channel);
        grpc.unary::<_, Msg>(Request::new(Msg::text("hello")), UNARY)
            .await
            .unwrap();
        let status = grpc
            .unary::<_, Msg>(Request::new(Msg::text("fail:5:missing")), UNARY)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let mut replies = grpc
            .server_streaming::<_, Msg>(Request::new(Msg::count("", 2)), EXPAND)
            .await
            .unwrap()
            .into_inner();
        while replies.message().await.unwrap().is_some() {}

        // Metrics, by A66's names and labels.
        let target = addr.to_string();
        let unary = "test.Echo/Unary";
        assert_eq!(
            updates("grpc.server.call.started", &[("grpc.method", unary)]),
            [1.0, 1.0]
        );
        for status in ["OK", "NOT_FOUND"] {
            let server_labels = [("grpc.method", unary), ("grpc.status", status)];
            let durations = updates("grpc.server.call.duration", &server_labels);
            assert_eq!(durations.len(), 1, "{status}");
            assert!(durations[0] > 0.0 && durations[0] < 60.0);
            let client_labels = [
                ("grpc.method", unary),
                ("grpc.target", &target),
                ("grpc.status", status),
            ];
            assert_eq!(
                updates("grpc.client.call.duration", &client_labels).len(),
                1
            );
        }
        let hello = 7.0; // "hello": a 2-byte tag and length, and 5 bytes.
        let ok = [("grpc.method", unary), ("grpc.status", "OK")];
        assert_eq!(
            updates("grpc.server.call.rcvd_total_compressed_message_size", &ok),
            [hello]
        );
        assert_eq!(
            updates("grpc.server.call.sent_total_compressed_message_size", &ok),
            [hello]
        );
        let client_ok = [
            ("grpc.method", unary),
            ("grpc.target", &target),
            ("grpc.status", "OK"),
        ];
        assert_eq!(
            updates(
                "grpc.client.call.sent_total_compressed_message_size",
                &client_ok
            ),
            [hello]
        );
        assert_eq!(
            updates(
                "grpc.client.call.started",
                &[
                    ("grpc.method", "test.Echo/Expand"),
                    ("grpc.target", &target)
                ]
            ),
            [1.0]
        );

        // Tracing: one event per call and side, in the call's span.
        let logs = String::from_utf8(LOGS.lock().unwrap().clone()).unwrap();
        let ended: Vec<&str> = logs.lines().filter(|l| l.contains("call ended")).collect();
        assert_eq!(ended.len(), 6, "{logs}");
        let server_ok = ended
            .iter()
            .find(|l| {
                l.contains("grpc.server{")
                    && l.contains("method=\"Unary\"")
                    && l.contains("status=\"OK\"")
            })
            .unwrap_or_else(|| panic!("no server event for the OK call in {logs}"));
        assert!(server_ok.contains("peer=\"127.0.0.1:"), "{server_ok}");
        assert!(server_ok.contains("kind=\"unary\""), "{server_ok}");
        assert!(server_ok.contains("bytes_received=7"), "{server_ok}");
        let client_failed = ended
            .iter()
            .find(|l| l.contains("grpc.client{") && l.contains("status=\"NOT_FOUND\""))
            .unwrap_or_else(|| panic!("no client event for the failed call in {logs}"));
        assert!(
            client_failed.contains("grpc_message=\"missing\""),
            "{client_failed}"
        );
        assert!(
            client_failed.contains(&format!("target=\"{target}\"")),
            "{client_failed}"
        );
        let expand = ended
            .iter()
            .find(|l| l.contains("grpc.server{") && l.contains("method=\"Expand\""))
            .unwrap_or_else(|| panic!("no server event for Expand in {logs}"));
        assert!(expand.contains("messages_sent=2"), "{expand}");
        assert!(expand.contains("kind=\"server_streaming\""), "{expand}");
    });
}
