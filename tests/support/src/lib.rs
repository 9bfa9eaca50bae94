//! What the project's test suites share: the echo service ([`echo`]), a
//! deterministic executor with a virtual clock ([`sim`]), runners on the
//! runtime the features chose, connection helpers over an in-memory pipe
//! and TCP, and (feature `libp2p`) networks of libp2p nodes.
//!
//! The integration tests (`tests/`), the fuzz targets, the benchmarks and
//! the interop tests depend on it, so each piece exists once.
#![allow(missing_docs)]

pub mod alloc;
pub mod certs;
pub mod echo;
pub mod frames;
#[cfg(feature = "libp2p")]
pub mod libp2p;
pub mod recording;
pub mod sim;

pub use echo::*;

#[cfg(feature = "runners")]
pub mod carriers;
#[cfg(feature = "runners")]
mod runners;
#[cfg(feature = "runners")]
pub mod watch;
#[cfg(feature = "runners")]
pub use runners::*;
