//! Ready-made interceptors, for servers and channels alike:
//!
//! - [`Tracing`]: a `tracing` span per call, and one event when it ends,
//!   with the service, method, kind, peer, status, duration and sizes;
//! - `Metrics` (feature `metrics`): call counts, latency and size
//!   histograms through the [`metrics`](https://docs.rs/metrics) facade,
//!   named and labelled as gRPC's OpenTelemetry plugin does (gRFC A66).
//!
//! ```
//! use p2p_grpc::interceptors::Tracing;
//! # fn demo(channel: p2p_grpc::Channel) {
//! let server = p2p_grpc::Server::builder().interceptor(Tracing::new());
//! let channel = channel.with_interceptor(Tracing::new());
//! # drop((server, channel));
//! # }
//! ```

#[cfg(feature = "metrics")]
mod meter;
mod trace;

#[cfg(feature = "metrics")]
pub use self::meter::Metrics;
pub use self::trace::Tracing;

use crate::server::CallInfo;

/// Who is calling, for logs and labels: the libp2p peer, else the TCP
/// address.
fn peer(info: &CallInfo<'_>) -> Option<String> {
    #[cfg(feature = "libp2p")]
    if let Some(peer) = info.peer_id() {
        return Some(peer.to_string());
    }
    info.remote_addr().map(|addr| addr.to_string())
}
