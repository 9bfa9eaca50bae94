//! Fuzz targets for p2p-grpc, as plain functions so that they also run as
//! tests (every seed must pass) and can be debugged without libFuzzer.
//!
//! Each module holds one target's `run(data)`, its input format and the
//! builders its seeds are written with; `fuzz_targets/*.rs` call `run`.

pub mod client_responses;
pub mod echo;
pub mod frames;
pub mod header_parsing;
pub mod input;
pub mod message_decoder;
pub mod seeds;
pub mod server_connection;
pub mod sim;

/// A target's entry point.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name.
pub const TARGETS: [(&str, Target); 4] = [
    ("message_decoder", message_decoder::run),
    ("header_parsing", header_parsing::run),
    ("server_connection", server_connection::run),
    ("client_responses", client_responses::run),
];
