//! gRPC over libp2p streams ([`GrpcStream`]), and libp2p without tokio: a
//! TCP transport on `async-io` and a ready-made node.
//!
//! # `GrpcStream`
//!
//! [`GrpcStream`] is the Rust counterpart of Polygon Edge's Go `GrpcStream`
//! (`network/grpc/grpc.go`): gRPC services served to, and called on, libp2p
//! peers. It works on any [`libp2p_stream::Control`], whether from a
//! [`Node`] or from your own swarm with a [`libp2p_stream::Behaviour`].
//!
//! * Each libp2p stream of the protocol (default [`DEFAULT_PROTOCOL`],
//!   `/grpc/0.1.0`; one per service as Edge does, or one for all) carries
//!   one HTTP/2 connection, with any number of concurrent calls inside.
//! * Every handler sees the remote peer, whatever the call kind:
//!   [`Request::peer_id`](crate::Request::peer_id) (the [`RemotePeer`]
//!   request extension). Authorisation hooks see it too:
//!   [`GrpcStreamBuilder::authorize`] is called with the peer and the
//!   call's service, method and metadata before the handler runs.
//! * [`GrpcStream::client`] gives a [`Channel`](crate::Channel) to a
//!   [`PeerId`]: it opens a libp2p stream at the first call (dialing the
//!   peer if needed) and a fresh one whenever the current one broke, so it
//!   recovers when a peer comes back.
//! * With [`GrpcStreamBuilder::discovery`], a client channel looks a peer
//!   it cannot reach up in the [`Node`]'s DHT (Kademlia), so a peer id is
//!   enough: [`Node::provide`] announces a protocol, [`Node::find_providers`]
//!   finds who serves it, [`Node::peers_supporting`] reads identify's
//!   protocol lists of connected peers.
//! * A [`Node`] reaches peers over TCP, WebSocket (`/tcp/<port>/ws`) and
//!   circuit relays (`/p2p-circuit`, with DCUtR hole punching; see
//!   [`NodeBuilder::relay_server`]).
//! * [`GrpcStream::shutdown`] stops accepting streams and lets running
//!   calls finish within a grace period.
//! * Limits: calls per connection, connections per peer.
//!
//! ```
//! # #[cfg(any(feature = "smol", feature = "async-std", feature = "tokio"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # p2p_grpc::rt::block_on(async {
//! use std::time::Duration;
//!
//! use p2p_grpc::client::Grpc;
//! use p2p_grpc::libp2p::{GrpcStream, Node};
//! use p2p_grpc::server::{CallFuture, ServerCall, Service};
//! use p2p_grpc::{Request, Response, Status};
//!
//! /// Greets the calling peer (generated `XxxServer::new(impl)` types are
//! /// services too).
//! struct Hello;
//!
//! impl Service for Hello {
//!     fn name(&self) -> &'static str {
//!         "demo.Hello"
//!     }
//!
//!     fn call(&self, method: &str, call: ServerCall) -> CallFuture {
//!         match method {
//!             "Greet" => call.unary(|request: Request<String>| async move {
//!                 let peer = request.peer_id().expect("called over libp2p");
//!                 let name = request.into_inner();
//!                 Ok::<_, Status>(Response::new(format!("hello {name} ({peer})")))
//!             }),
//!             _ => call.unimplemented(),
//!         }
//!     }
//! }
//!
//! // The serving node (over TCP, drop `memory_transport()` and listen on
//! // `/ip4/0.0.0.0/tcp/<port>`).
//! let server = Node::builder().memory_transport().build()?;
//! let addr = server.listen_on("/memory/0".parse()?).await?;
//! let grpc = GrpcStream::new(server.control())?;
//! grpc.register_service(Hello);
//! grpc.serve()?;
//!
//! // A calling node: it learns an address of the server, then calls it by
//! // peer id.
//! let client = Node::builder().memory_transport().build()?;
//! client.add_address(server.peer_id(), addr);
//! let channel = GrpcStream::new(client.control())?.client(server.peer_id());
//! let reply: Response<String> = Grpc::new(channel)
//!     .unary(Request::new("client".to_owned()), "/demo.Hello/Greet")
//!     .await?;
//! assert_eq!(
//!     reply.into_inner(),
//!     format!("hello client ({})", client.peer_id())
//! );
//!
//! grpc.shutdown(Duration::from_secs(5)).await;
//! # Ok(())
//! # })
//! # }
//! # #[cfg(not(any(feature = "smol", feature = "async-std", feature = "tokio")))]
//! # fn main() {}
//! ```
//!
//! ## From Go's `GrpcStream`
//!
//! | Go (Polygon Edge) | p2p-grpc |
//! |---|---|
//! | `NewGrpcStream()` | [`GrpcStream::new(control)`](GrpcStream::new), or [`GrpcStream::builder()`] for the protocol, runtime, limits, authorisation, server and channel settings |
//! | `RegisterService(desc, impl)` | [`register_service(svc)`](GrpcStream::register_service) (or [`add_service`](GrpcStreamBuilder::add_service) on the builder) |
//! | `GrpcServer()` | [`grpc_server()`](GrpcStream::grpc_server): the transport-independent [`Server`](crate::Server), also servable over TCP |
//! | `Serve()` | [`serve()`](GrpcStream::serve): spawns the accept loop on the runtime, returns a [`ServeHandle`] |
//! | `Handler()` (the libp2p stream handler) | [`handle(peer, stream)`](GrpcStream::handle): serves one inbound stream; inbound streams are taken by the `GrpcStream` itself from [`build`](GrpcStreamBuilder::build) on |
//! | `Accept()` | [`accept()`](GrpcStream::accept): the next inbound `(PeerId, Stream)` |
//! | `Client(stream)` | [`client(peer)`](GrpcStream::client): a [`Channel`](crate::Channel) that dials by [`PeerId`] and opens a fresh stream after a failure |
//! | `WrapClient(stream)` | [`wrap_client(stream)`](GrpcStream::wrap_client): a channel over an open stream, no reconnect |
//! | `Close()` (did nothing) | [`shutdown(grace)`](GrpcStream::shutdown): stop accepting, let running calls finish |
//! | peer id in the context, through a unary-only interceptor | [`Request::peer_id`](crate::Request::peer_id) in every call kind; [`CallInfo::peer_id`](crate::server::CallInfo::peer_id) |
//! | (none) | [`authorize`](GrpcStreamBuilder::authorize) per peer and method; [`max_connections_per_peer`](GrpcStreamBuilder::max_connections_per_peer), [`max_calls_per_connection`](GrpcStreamBuilder::max_calls_per_connection) |
//!
//! ## Inbound streams are taken at once
//!
//! `libp2p-stream` hands inbound streams over a channel with a single slot,
//! with `try_send`: a stream that arrives while the previous one has not
//! been taken yet is dropped (in a test, a slow accept loop lost 6 streams
//! of 8; even a tight loop loses some of 64 streams opened at once, because
//! it runs only after a task switch). Go's version had the opposite
//! problem: without `Serve()`, the stream handler blocked forever.
//!
//! A `GrpcStream` therefore polls the `IncomingStreams` with a waker of its
//! own that moves each stream into an unbounded queue synchronously, inside
//! the `try_send` that woke it, so the slot is free again before the next
//! stream comes. [`serve`](GrpcStream::serve) and
//! [`accept`](GrpcStream::accept) read that queue. Streams beyond 1024
//! waiting in the queue, and streams over a peer's connection limit, are
//! closed at once.
//!
//! # libp2p without tokio
//!
//! libp2p 0.57 only ships tokio-based TCP and `SwarmBuilder` paths on native
//! targets. This module supplies what is needed to run a libp2p node under
//! any executor (smol, async-std, tokio, or your own [`Runtime`]):
//!
//! * [`TcpTransport`]: a [`Transport`] for `/ip4|ip6/.../tcp/...` on
//!   `async-io`, whose reactor runs on its own thread when nobody else drives
//!   it; no hidden task is spawned.
//! * [`Node`]: a swarm with TCP (or the in-memory transport, for tests),
//!   noise, yamux and an ed25519 identity, whose behaviour combines
//!   [`libp2p_stream`] (open and accept raw streams per protocol) and
//!   libp2p's peer store (so that a peer can be dialed by [`PeerId`] once one
//!   of its addresses is known). The swarm runs in a task spawned on the
//!   node's [`Runtime`]; [`Node`] is a cheap, cloneable handle that talks to
//!   it over a channel.
//!
//! The [`libp2p`] and [`libp2p_stream`] crates are re-exported so that the
//! versions always match the ones p2p-grpc was built with.
//!
//! ```
//! # #[cfg(any(feature = "smol", feature = "async-std", feature = "tokio"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # p2p_grpc::rt::block_on(async {
//! use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
//! use p2p_grpc::libp2p::{libp2p::StreamProtocol, Node};
//!
//! let a = Node::builder().build()?;
//! let b = Node::builder().build()?;
//! // Port 0: the returned address holds the real port and `/p2p/<a's id>`.
//! let addr = a.listen_on("/ip4/127.0.0.1/tcp/0".parse()?).await?;
//!
//! let protocol = StreamProtocol::new("/echo/1");
//! let mut incoming = a.control().accept(protocol.clone())?;
//! let a_peer = b.dial(addr).await?;
//! let mut stream = b.control().open_stream(a_peer, protocol).await?;
//! stream.write_all(b"hello").await?;
//! let (_peer, mut inbound) = incoming.next().await.unwrap();
//! let mut buf = [0; 5];
//! inbound.read_exact(&mut buf).await?;
//! # Ok(())
//! # })
//! # }
//! # #[cfg(not(any(feature = "smol", feature = "async-std", feature = "tokio")))]
//! # fn main() {}
//! ```
//!
//! [`Runtime`]: crate::rt::Runtime
//! [`Transport`]: ::libp2p::core::Transport
//! [`PeerId`]: ::libp2p::PeerId

mod grpc_stream;
mod node;
mod peer;
#[cfg(feature = "quic")]
mod quic;
mod tcp;
mod yamux;

pub use self::grpc_stream::{
    GrpcStream, GrpcStreamBuilder, GrpcStreamError, ServeHandle, DEFAULT_MAX_CONNECTIONS_PER_PEER,
    DEFAULT_MAX_FRAME_SIZE, DEFAULT_PROTOCOL,
};
pub use self::node::{
    default_connection_limits, provider_key, Cause, ConnectionCounts, ListenerClosed, MemoryLimit,
    Node, NodeBuilder, NodeError, DEFAULT_MAX_ESTABLISHED_INCOMING,
    DEFAULT_MAX_ESTABLISHED_OUTGOING, DEFAULT_MAX_ESTABLISHED_PER_PEER,
    DEFAULT_MAX_MEMORY_FRACTION, DEFAULT_MAX_PENDING_INCOMING, DEFAULT_MAX_PENDING_OUTGOING,
    DEFAULT_MAX_STREAMS_PER_CONNECTION,
};
pub use self::peer::RemotePeer;
pub use self::tcp::{TcpStream, TcpTransport};
pub use self::yamux::{BatchFlushes, SplitLargeFrames, Yamux};

pub use ::libp2p;
pub use ::libp2p_stream;
