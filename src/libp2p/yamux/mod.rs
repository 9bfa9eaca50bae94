//! [`Yamux`]: libp2p's yamux multiplexer that accepts DATA frames of any
//! length, as the yamux spec allows and js-libp2p sends, and flushes the
//! frames of one turn together.
//!
//! [`Node`](super::Node) always uses it. With a swarm of your own, pass it
//! where you would pass `libp2p::yamux::Config`:
//!
//! ```
//! use p2p_grpc::libp2p::libp2p::core::upgrade::Version;
//! use p2p_grpc::libp2p::libp2p::core::Transport;
//! use p2p_grpc::libp2p::libp2p::{identity, noise};
//! use p2p_grpc::libp2p::{TcpTransport, Yamux};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keypair = identity::Keypair::generate_ed25519();
//! let transport = TcpTransport::new()
//!     .upgrade(Version::V1Lazy)
//!     .authenticate(noise::Config::new(&keypair)?)
//!     .multiplex(Yamux::default())
//!     .boxed();
//! # drop(transport);
//! # Ok(())
//! # }
//! ```

mod flush;
mod split;

use std::io;

use futures::{AsyncRead, AsyncWrite};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use libp2p::yamux;

pub use self::flush::BatchFlushes;
pub use self::split::SplitLargeFrames;

/// The yamux multiplexer of libp2p (`/yamux/1.0.0`, rust-yamux 0.14), with
/// the connection wrapped in [`SplitLargeFrames`] (reads) and
/// [`BatchFlushes`] (flushes).
///
/// rust-yamux grows a stream's receive window past 1 MiB, yet closes the
/// whole connection, without a GoAway, when a peer sends a DATA frame over
/// 1 MiB: js-libp2p does, as soon as its send window allows (gRPC calls of
/// a few MiB at once on two streams were enough). This upgrade cuts such
/// frames into pieces rust-yamux accepts before it reads them, so no
/// conforming peer can trigger that failure.
///
/// rust-yamux also flushes the connection after every frame, which made each
/// frame an encrypted message and a system call of its own; the frames
/// written in one turn of the connection's task now leave together.
/// Everything else, the window checks included, is rust-yamux's.
#[derive(Debug, Clone, Default)]
pub struct Yamux {
    config: yamux::Config,
}

impl Yamux {
    /// The upgrade with libp2p's yamux `config`.
    pub fn new(config: yamux::Config) -> Self {
        Yamux { config }
    }
}

impl UpgradeInfo for Yamux {
    type Info = <yamux::Config as UpgradeInfo>::Info;
    type InfoIter = <yamux::Config as UpgradeInfo>::InfoIter;

    fn protocol_info(&self) -> Self::InfoIter {
        self.config.protocol_info()
    }
}

impl<C> InboundConnectionUpgrade<C> for Yamux
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = yamux::Muxer<SplitLargeFrames<BatchFlushes<C>>>;
    type Error = io::Error;
    type Future =
        <yamux::Config as InboundConnectionUpgrade<SplitLargeFrames<BatchFlushes<C>>>>::Future;

    fn upgrade_inbound(self, io: C, info: Self::Info) -> Self::Future {
        self.config
            .upgrade_inbound(SplitLargeFrames::new(BatchFlushes::new(io)), info)
    }
}

impl<C> OutboundConnectionUpgrade<C> for Yamux
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = yamux::Muxer<SplitLargeFrames<BatchFlushes<C>>>;
    type Error = io::Error;
    type Future =
        <yamux::Config as OutboundConnectionUpgrade<SplitLargeFrames<BatchFlushes<C>>>>::Future;

    fn upgrade_outbound(self, io: C, info: Self::Info) -> Self::Future {
        self.config
            .upgrade_outbound(SplitLargeFrames::new(BatchFlushes::new(io)), info)
    }
}
