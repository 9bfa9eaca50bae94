//! Fuzz targets for p2p-grpc, as plain functions so that they also run as
//! tests (every seed must pass) and can be debugged without libFuzzer.
//!
//! Each module holds one target's `run(data)`, its input format and the
//! builders its seeds are written with; `fuzz_targets/*.rs` call `run`.

pub mod client_keepalive;
pub mod client_responses;
pub mod frames;
pub mod grpc_stream;
pub mod header_parsing;
pub mod input;
pub mod message_decoder;
pub mod seeds;
pub mod server_connection;
pub mod yamux_split;

/// A target's entry point.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name.
pub const TARGETS: [(&str, Target); 7] = [
    ("message_decoder", message_decoder::run),
    ("header_parsing", header_parsing::run),
    ("server_connection", server_connection::run),
    ("client_responses", client_responses::run),
    ("yamux_split", yamux_split::run),
    ("grpc_stream", grpc_stream::run),
    ("client_keepalive", client_keepalive::run),
];

/// The echo service and the virtual-clock executor, shared with the
/// integration tests.
pub use p2p_grpc_test_support::{echo, sim};

/// Most messages the echo service's `Expand` sends for one fuzzed request:
/// a fuzzed count of four billion must stay a short run.
pub const MAX_EXPAND: u32 = 64;

/// The echo service as the fuzz targets serve it (no events, `Expand`
/// capped at [`MAX_EXPAND`]).
pub fn echo_service(runtime: p2p_grpc::rt::SharedRuntime) -> echo::EchoService {
    echo::EchoService {
        max_expand: MAX_EXPAND,
        ..echo::EchoService::new(runtime, None)
    }
}
