//! gRPC on [`h2`] for any async executor and for libp2p streams.
//!
//! p2p-grpc speaks standard gRPC (wire-compatible with grpc-go, the C core
//! and tonic) over any `futures::io::{AsyncRead, AsyncWrite}` byte stream: a
//! TCP socket, a libp2p stream, an in-memory pipe. It runs on smol (the
//! default), async-std or tokio, or on an executor of your own through the
//! [`rt::Runtime`] trait.
//!
//! A service, a server and a client over an in-memory pipe, without code
//! generation (generated code, from `p2p-grpc-build`, writes the
//! [`Service`](server::Service) impl and a typed client for you):
//!
//! ```
//! use p2p_grpc::client::Grpc;
//! use p2p_grpc::server::{CallFuture, ServerCall, Service};
//! use p2p_grpc::{Channel, Request, Response, Server, Status};
//!
//! struct Shout;
//!
//! impl Service for Shout {
//!     fn name(&self) -> &'static str {
//!         "demo.Shout"
//!     }
//!
//!     fn call(&self, method: &str, call: ServerCall) -> CallFuture {
//!         match method {
//!             "Loud" => call.unary(|request: Request<String>| async move {
//!                 Ok::<_, Status>(Response::new(request.into_inner().to_uppercase()))
//!             }),
//!             _ => call.unimplemented(),
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! p2p_grpc::rt::block_on(async {
//!     let server = Server::builder().add_service(Shout).build()?;
//!     let (client_io, server_io) = p2p_grpc::transport::duplex(64 * 1024);
//!     let serving = server.clone();
//!     server.runtime().spawn(Box::pin(async move {
//!         let _ = serving.serve_connection(server_io).await;
//!     }));
//!
//!     let grpc = Grpc::new(Channel::connect(client_io).await?);
//!     let reply = grpc
//!         .unary::<_, String>(Request::new("hello".to_string()), "/demo.Shout/Loud")
//!         .await?;
//!     assert_eq!(reply.into_inner(), "HELLO");
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Layers, each in its own module:
//! - protocol pieces with no IO: [`codec`] (length-prefixed messages),
//!   [`status`], [`metadata`], [`timeout`] (`grpc-timeout`), [`compression`];
//! - [`rt`]: the runtime seam, one file per executor;
//! - [`transport`]: futures-io streams to HTTP/2, TCP helpers, an in-memory pipe;
//! - [`server`] and [`client`]: calls of the four kinds on h2;
//! - `libp2p` (feature `libp2p`): `GrpcStream`, gRPC between libp2p peers.
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
mod frame_scan;
mod keepalive;
mod request;
mod response;
pub mod server;
mod streaming;
mod sync;
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
