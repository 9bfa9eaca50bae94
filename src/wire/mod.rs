//! The gRPC wire format, with no IO and no h2: plain types and functions,
//! unit-tested and fuzzed on their own.
//!
//! - [`framing`]: the 5-byte length-prefixed messages (decode, encode);
//! - [`status`]: `Code` and `Status`, as trailers carry them;
//! - [`metadata`]: custom metadata, ASCII and binary (`-bin`) values;
//! - [`timeout`]: the `grpc-timeout` header;
//! - [`compression`]: message compression and its headers;
//! - [`error_details`]: `google.rpc.Status` and the standard error details;
//! - [`headers`]: the names of the headers gRPC uses;
//! - [`frame_scan`]: a scanner of HTTP/2 frame boundaries, for the frames
//!   h2 does not show (PING, GOAWAY debug data).
//!
//! Public only with the `unstable-internals` feature (for the fuzz crate):
//! what users need of it is re-exported at the crate root and in
//! [`crate::metadata`] and [`crate::compression`].

pub mod compression;
pub mod error_details;
pub mod frame_scan;
pub mod framing;
pub mod headers;
pub mod metadata;
pub mod status;
pub mod timeout;
