//! gRPC on [`h2`] for any async executor and for libp2p streams.
//!
//! (The crate documentation is README.md; see it for examples.)
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod codec;
pub mod compression;
pub(crate) mod headers;
pub mod metadata;
pub mod status;
pub mod timeout;

pub mod rt;

mod body;
pub mod client;
mod error;
mod request;
mod response;
pub mod server;
mod streaming;
pub mod transport;

#[cfg(feature = "libp2p")]
pub mod libp2p;

pub use client::Channel;
pub use compression::CompressionEncoding;
pub use error::Error;
pub use metadata::MetadataMap;
pub use request::{IntoRequest, IntoStreamingRequest, Request};
pub use response::Response;
pub use server::Server;
pub use status::{Code, Status};
pub use streaming::Streaming;

/// A boxed stream of response messages, as generated service traits return
/// for server-streaming and bidi methods.
pub type BoxStream<T> =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// What generated code needs, re-exported so that it names one crate only.
#[doc(hidden)]
pub mod codegen {
    pub use async_trait::async_trait;
    pub use futures::future::BoxFuture;
    pub use futures::Stream;
    pub use std::sync::Arc;
}

/// Includes the code `p2p-grpc-build` generated for a proto package, from
/// `OUT_DIR`: `p2p_grpc::include_proto!("helloworld");`.
#[macro_export]
macro_rules! include_proto {
    ($package:tt) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}
