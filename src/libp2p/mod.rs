//! libp2p without tokio: a TCP transport on `async-io` and a ready-made node.
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

mod node;
mod tcp;

pub use self::node::{Node, NodeBuilder, NodeError};
pub use self::tcp::{TcpStream, TcpTransport};

pub use ::libp2p;
pub use ::libp2p_stream;
