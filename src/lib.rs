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
//!     let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
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
//! Layers, each in its own folder, each importing only the ones below it:
//! - `wire/`: the gRPC wire format, no IO and no h2 (framing, [`Status`],
//!   [`metadata`], `grpc-timeout`, [`compression`]);
//! - [`io`]: byte streams (the [`Io`](io::Io) trait, an in-memory
//!   [`duplex`](io::duplex) pipe) and the adapter that hands them to h2;
//! - [`rt`]: the runtime seam, one file per executor, and TCP on `async-io`;
//! - `http2/`: gRPC calls on h2, what both roles share (settings,
//!   handshake, keepalive, sending, receiving, deadlines);
//! - [`server`] and [`client`]: the two roles, with their interceptors;
//! - `libp2p` (feature `libp2p`): `GrpcStream`, gRPC between libp2p peers;
//! - [`interceptors`]: ready-made interceptors (`Tracing`, `Metrics`).
#![warn(missing_docs)]
// One exception, allowed where it stands with its proof: the `BufMut` that
// keeps large byte fields out of a send batch (`wire/framing/encode.rs`).
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "unstable-internals")]
pub mod wire;
#[cfg(not(feature = "unstable-internals"))]
#[allow(dead_code, unused_imports)]
mod wire;

mod sync;

pub mod io;
pub mod rt;

mod http2;

pub mod client;
pub mod server;

mod connect_info;
mod error;
mod request;
mod response;
mod streaming;

pub mod health;
pub mod interceptors;
pub mod reflection;

#[cfg(feature = "tls")]
pub mod tls;

#[cfg(feature = "libp2p")]
pub mod libp2p;

pub use client::Channel;
pub use connect_info::TcpConnectInfo;
pub use error::Error;
pub use http2::observe::{CallKind, CallStats};
pub use request::{IntoRequest, IntoStreamingRequest, Request};
pub use response::Response;
pub use server::Server;
pub use streaming::Streaming;
pub use wire::compression::CompressionEncoding;
pub use wire::framing::DEFAULT_MAX_MESSAGE_SIZE;
pub use wire::metadata::MetadataMap;
pub use wire::status::{Code, Status};

/// Custom metadata: the headers and trailers of a call that are not gRPC's
/// own.
pub mod metadata {
    pub use crate::wire::metadata::{is_reserved, MetadataError, MetadataMap, MetadataValue};
}

/// Rich error details: `google.rpc.Status` in `grpc-status-details-bin` and
/// the standard error detail messages, written and read through
/// [`Status::with_error_details`] and [`Status::error_details`].
pub mod error_details {
    pub use crate::wire::error_details::{
        Any, BadRequest, DebugInfo, ErrorDetails, ErrorInfo, FieldViolation, Help, HelpLink,
        LocalizedMessage, PreconditionFailure, PreconditionViolation, ProtoDuration, QuotaFailure,
        QuotaViolation, RequestInfo, ResourceInfo, RetryInfo, RpcStatus,
    };
}

/// Message compression: the encodings, and the switches that turn it off
/// for a response or message by message.
pub mod compression {
    pub use crate::wire::compression::{
        CompressionEncoding, CompressionOverride, MessageCompression,
    };
}

/// The HTTP/2 settings' defaults, shared by servers and channels.
pub mod settings {
    pub use crate::http2::settings::{
        DEFAULT_CONNECTION_WINDOW, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_FRAME_SIZE,
        DEFAULT_MAX_HEADER_LIST_SIZE, DEFAULT_MAX_SEND_BUFFER, DEFAULT_STREAM_WINDOW,
    };
}

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
