//! The remote peer of a call: [`RemotePeer`] and its accessors.

use libp2p::PeerId;

use crate::server::CallInfo;
use crate::{Request, Response, Streaming};

/// The libp2p peer at the other end of a call.
///
/// [`GrpcStream`](super::GrpcStream) inserts it into the extensions of every
/// request it serves, whatever the call kind (unary, client streaming,
/// server streaming, bidi). Read it with [`Request::peer_id`] or
/// [`CallInfo::peer_id`], or from the extensions directly.
///
/// It is authenticated: the connection's noise handshake proved that the
/// remote holds this peer id's private key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemotePeer(pub PeerId);

impl<T> Request<T> {
    /// The libp2p peer that sent this request, when it came through a
    /// [`GrpcStream`](super::GrpcStream); `None` for calls over other
    /// transports (TCP...).
    ///
    /// Every handler kind sees it, streaming ones included:
    ///
    /// ```
    /// use p2p_grpc::{Request, Response, Status, Streaming};
    ///
    /// async fn count(request: Request<Streaming<String>>) -> Result<Response<u32>, Status> {
    ///     let peer = request
    ///         .peer_id()
    ///         .ok_or_else(|| Status::unauthenticated("libp2p peers only"))?;
    ///     let mut messages = request.into_inner();
    ///     let mut n = 0;
    ///     while let Some(_message) = messages.message().await? {
    ///         n += 1;
    ///     }
    ///     println!("{peer} sent {n} messages");
    ///     Ok(Response::new(n))
    /// }
    /// ```
    pub fn peer_id(&self) -> Option<PeerId> {
        self.extensions().get::<RemotePeer>().map(|peer| peer.0)
    }
}

impl CallInfo<'_> {
    /// The libp2p peer making the call, when it came through a
    /// [`GrpcStream`](super::GrpcStream); for authorisation hooks.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.extensions().get::<RemotePeer>().map(|peer| peer.0)
    }
}

impl<T> Response<T> {
    /// Client side: the libp2p peer that answered, for calls made through
    /// a [`GrpcStream`](super::GrpcStream) channel (with a
    /// [balanced one](super::GrpcStream::balanced_client), the peer picked
    /// for this call); `None` over other transports.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.extensions().get::<RemotePeer>().map(|peer| peer.0)
    }
}

impl<T> Streaming<T> {
    /// Client side: the libp2p peer that answers this call (see
    /// [`Response::peer_id`]), once the response headers arrived.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.extensions().get::<RemotePeer>().map(|peer| peer.0)
    }
}
