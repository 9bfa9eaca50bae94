//! QUIC for [`Node`](super::Node) (feature `quic`): libp2p's QUIC transport
//! (`/udp/<port>/quic-v1`), which in libp2p 0.57 exists only for tokio.
//!
//! libp2p-quic creates tokio sockets and timers from inside its
//! `Transport` calls and its dial futures, so it panics outside a tokio
//! runtime's context. [`InRuntime`] enters the tokio runtime that was
//! current when the node was built around each of those calls, so the
//! swarm that polls it may run on any executor; quinn's own tasks run on
//! that tokio runtime.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{
    Boxed, DialOpts, ListenerId, Transport, TransportError, TransportEvent,
};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use tokio::runtime::Handle;

/// `transport` or, when a tokio runtime is current, QUIC beside it. Without
/// one, QUIC addresses stay unsupported: listening on or dialing one fails
/// with `MultiaddrNotSupported`, and nothing panics.
pub(crate) fn or_transport(
    transport: Boxed<(PeerId, StreamMuxerBox)>,
    keypair: &Keypair,
) -> Boxed<(PeerId, StreamMuxerBox)> {
    let Ok(handle) = Handle::try_current() else {
        tracing::warn!("no tokio runtime is current: the node will not speak QUIC");
        return transport;
    };
    let quic = InRuntime {
        inner: libp2p::quic::tokio::Transport::new(libp2p::quic::Config::new(keypair)),
        handle,
    }
    .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)));
    quic.or_transport(transport)
        .map(|either, _| either.into_inner())
        .boxed()
}

/// A transport, or one of its futures, polled inside a tokio runtime's
/// context.
pub(crate) struct InRuntime<T> {
    inner: T,
    handle: Handle,
}

impl<T> InRuntime<T> {
    fn wrap<U>(&self, inner: U) -> InRuntime<U> {
        InRuntime {
            inner,
            handle: self.handle.clone(),
        }
    }
}

impl<T> Transport for InRuntime<T>
where
    T: Transport + Unpin,
    T::Dial: Unpin,
    T::ListenerUpgrade: Unpin,
{
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = InRuntime<T::ListenerUpgrade>;
    type Dial = InRuntime<T::Dial>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let _context = self.handle.enter();
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let _context = self.handle.enter();
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let _context = self.handle.enter();
        let dial = self.inner.dial(addr, opts)?;
        Ok(self.wrap(dial))
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = self.get_mut();
        let _context = this.handle.enter();
        match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(event) => Poll::Ready(event.map_upgrade(|upgrade| this.wrap(upgrade))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: Future + Unpin> Future for InRuntime<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let _context = this.handle.enter();
        Pin::new(&mut this.inner).poll(cx)
    }
}
