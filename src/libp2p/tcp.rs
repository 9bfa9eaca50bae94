//! A libp2p TCP transport on [`async_io`], usable under any executor.
//!
//! `libp2p-tcp` only ships a tokio provider (and its provider trait is
//! private), so p2p-grpc brings its own: sockets are registered with
//! `async-io`'s reactor, which runs on a thread of its own whenever nobody
//! else drives it. Nothing here spawns a task; the transport makes progress
//! only while the swarm polls it.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use async_io::Async;
use futures::future::{self, BoxFuture, FutureExt as _};
use futures::io::{AsyncRead, AsyncWrite};
use libp2p::core::multiaddr::{Multiaddr, Protocol};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::Transport;

use crate::rt::async_io::AsyncIoTcp;

/// A TCP transport for libp2p built on [`async_io`].
///
/// Supported addresses are `/ip4/A/tcp/P` and `/ip6/A/tcp/P`; for dialing, a
/// trailing `/p2p/<peer id>` is accepted (and ignored here: the security
/// upgrade checks it). Anything else is refused with
/// [`TransportError::MultiaddrNotSupported`], so the transport composes with
/// others through [`Transport::or_transport`].
///
/// Behaviour worth knowing:
///
/// * Listening on port 0 binds an ephemeral port; the real port is reported
///   in [`TransportEvent::NewAddress`].
/// * Listening on an unspecified address (`0.0.0.0` or `::`) reports the
///   loopback address (`127.0.0.1` or `::1`) and, if the machine has a route
///   to the public internet, the local address of the interface that route
///   uses (found with an unconnected UDP socket: no packet is sent). Other
///   interfaces are not enumerated, and interface changes are not watched, so
///   [`TransportEvent::AddressExpired`] is never emitted.
/// * Every socket, accepted or dialed, gets `TCP_NODELAY`.
/// * Dials always use a fresh local port ([`PortUse`] is ignored): no
///   `SO_REUSEPORT` tricks, hence no help with hole punching.
///
/// [`PortUse`]: libp2p::core::transport::PortUse
#[derive(Default)]
pub struct TcpTransport {
    listeners: VecDeque<Listener>,
    /// Events produced outside [`Transport::poll`] (new addresses, closed
    /// listeners), delivered first.
    pending: VecDeque<TransportEvent<<Self as Transport>::ListenerUpgrade, io::Error>>,
    /// The task that last polled the transport, woken when `pending` grows.
    waker: Option<Waker>,
}

struct Listener {
    id: ListenerId,
    socket: Async<TcpListener>,
}

impl TcpTransport {
    /// A transport with no listener.
    pub fn new() -> Self {
        Self::default()
    }

    fn push_event(
        &mut self,
        event: TransportEvent<<Self as Transport>::ListenerUpgrade, io::Error>,
    ) {
        self.pending.push_back(event);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let listeners: Vec<_> = self
            .listeners
            .iter()
            .map(|l| (l.id, l.socket.get_ref().local_addr().ok()))
            .collect();
        f.debug_struct("TcpTransport")
            .field("listeners", &listeners)
            .finish()
    }
}

impl Transport for TcpTransport {
    type Output = TcpStream;
    type Error = io::Error;
    type ListenerUpgrade = future::Ready<Result<TcpStream, io::Error>>;
    type Dial = BoxFuture<'static, Result<TcpStream, io::Error>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let Some(socket_addr) = socket_addr_of(&addr, false) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let socket = Async::<TcpListener>::bind(socket_addr).map_err(TransportError::Other)?;
        let local = socket
            .get_ref()
            .local_addr()
            .map_err(TransportError::Other)?;
        tracing::debug!(%id, %local, "TCP listener bound");
        for listen_addr in reported_addrs(local) {
            self.push_event(TransportEvent::NewAddress {
                listener_id: id,
                listen_addr,
            });
        }
        self.listeners.push_back(Listener { id, socket });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(index) = self.listeners.iter().position(|l| l.id == id) else {
            return false;
        };
        // Dropping the socket closes it.
        self.listeners.remove(index);
        tracing::debug!(%id, "TCP listener removed");
        self.push_event(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        true
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let socket_addr = match socket_addr_of(&addr, true) {
            Some(a) if a.port() != 0 && !a.ip().is_unspecified() => a,
            _ => return Err(TransportError::MultiaddrNotSupported(addr)),
        };
        tracing::debug!(%socket_addr, "TCP dial");
        Ok(async move {
            let stream = Async::<std::net::TcpStream>::connect(socket_addr).await?;
            stream.get_ref().set_nodelay(true)?;
            Ok(TcpStream(AsyncIoTcp::new(stream)))
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = &mut *self;
        if let Some(event) = this.pending.pop_front() {
            return Poll::Ready(event);
        }
        // Visit each listener once, rotating the queue so that a busy
        // listener cannot starve the others.
        for _ in 0..this.listeners.len() {
            let listener = this.listeners.pop_front().expect("length checked");
            let event = poll_accept(&listener, cx);
            this.listeners.push_back(listener);
            if let Some(event) = event {
                return Poll::Ready(event);
            }
        }
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Accepts one connection from `listener` if one is ready; otherwise
/// registers `cx` with the reactor and returns `None`.
fn poll_accept(
    listener: &Listener,
    cx: &mut Context<'_>,
) -> Option<TransportEvent<future::Ready<Result<TcpStream, io::Error>>, io::Error>> {
    loop {
        // The socket is non-blocking (async-io made it so).
        match listener.socket.get_ref().accept() {
            Ok((stream, remote)) => {
                let local = stream.local_addr();
                let upgrade = stream
                    .set_nodelay(true)
                    .and_then(|()| Async::new(stream))
                    .map(|stream| TcpStream(AsyncIoTcp::new(stream)));
                let local_addr = match local {
                    Ok(local) => multiaddr_of(local),
                    Err(error) => {
                        return Some(TransportEvent::ListenerError {
                            listener_id: listener.id,
                            error,
                        })
                    }
                };
                tracing::trace!(%remote, "TCP connection accepted");
                return Some(TransportEvent::Incoming {
                    listener_id: listener.id,
                    upgrade: future::ready(upgrade),
                    local_addr,
                    send_back_addr: multiaddr_of(remote),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match listener.socket.poll_readable(cx) {
                    // Readiness arrived in between: try again.
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(error)) => {
                        return Some(TransportEvent::ListenerError {
                            listener_id: listener.id,
                            error,
                        })
                    }
                    Poll::Pending => return None,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Per-connection failures (ECONNABORTED, EMFILE...) do not close
            // the listener.
            Err(error) => {
                return Some(TransportEvent::ListenerError {
                    listener_id: listener.id,
                    error,
                })
            }
        }
    }
}

/// Parses `/ip4|ip6/A/tcp/P`, plus a trailing `/p2p/...` when `dialing`.
fn socket_addr_of(addr: &Multiaddr, dialing: bool) -> Option<SocketAddr> {
    let mut iter = addr.iter();
    let ip: IpAddr = match iter.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    let port = match iter.next()? {
        Protocol::Tcp(port) => port,
        _ => return None,
    };
    match (iter.next(), iter.next()) {
        (None, _) => {}
        (Some(Protocol::P2p(_)), None) if dialing => {}
        _ => return None,
    }
    Some(SocketAddr::new(ip, port))
}

fn multiaddr_of(addr: SocketAddr) -> Multiaddr {
    Multiaddr::empty()
        .with(addr.ip().into())
        .with(Protocol::Tcp(addr.port()))
}

/// The addresses to announce for a listener bound to `local`.
fn reported_addrs(local: SocketAddr) -> Vec<Multiaddr> {
    if !local.ip().is_unspecified() {
        return vec![multiaddr_of(local)];
    }
    let (loopback, probe): (IpAddr, SocketAddr) = match local {
        SocketAddr::V4(_) => (
            Ipv4Addr::LOCALHOST.into(),
            // TEST-NET-2: never contacted, only used for a route lookup.
            (Ipv4Addr::new(198, 51, 100, 1), 9).into(),
        ),
        SocketAddr::V6(_) => (
            Ipv6Addr::LOCALHOST.into(),
            // The documentation prefix, likewise.
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into(),
        ),
    };
    let mut ips = vec![loopback];
    if let Some(ip) = default_route_ip(probe) {
        if !ip.is_loopback() && !ip.is_unspecified() && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips.into_iter()
        .map(|ip| multiaddr_of(SocketAddr::new(ip, local.port())))
        .collect()
}

/// The local address the kernel would use to reach `probe`. Connecting a UDP
/// socket only selects a route; nothing goes on the wire.
fn default_route_ip(probe: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = match probe {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// A TCP connection made by [`TcpTransport`]: an [`async_io::Async`] socket
/// implementing the `futures` IO traits.
///
/// Unlike `Async<TcpStream>` itself, closing it (`poll_close`) shuts the
/// write half down, so the peer reads EOF.
#[derive(Debug)]
pub struct TcpStream(AsyncIoTcp);

impl TcpStream {
    /// The underlying socket.
    pub fn get_ref(&self) -> &std::net::TcpStream {
        self.0.get_ref()
    }

    /// The `async-io` wrapper around the socket.
    pub fn into_inner(self) -> Async<std::net::TcpStream> {
        self.0.into_inner()
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    crate::io::forward_writes!(0);

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use futures::StreamExt as _;
    use libp2p::core::transport::PortUse;
    use libp2p::core::Endpoint;
    use std::time::Duration;

    fn dial_opts() -> DialOpts {
        DialOpts {
            role: Endpoint::Dialer,
            port_use: PortUse::New,
        }
    }

    /// Runs `test` on the default runtime, failing after 20 seconds.
    fn run<F: std::future::Future<Output = ()>>(test: F) {
        crate::rt::block_on(async {
            let rt = crate::rt::default_runtime().expect("a runtime feature");
            futures::select! {
                () = test.fuse() => {},
                () = rt.sleep(Duration::from_secs(20)).fuse() => panic!("test timed out"),
            }
        })
    }

    fn next_event(
        transport: &mut TcpTransport,
    ) -> impl std::future::Future<
        Output = TransportEvent<future::Ready<Result<TcpStream, io::Error>>, io::Error>,
    > + '_ {
        future::poll_fn(move |cx| Pin::new(&mut *transport).poll(cx))
    }

    #[test]
    fn listen_dial_exchange() {
        run(async {
            let mut server = TcpTransport::new();
            let id = ListenerId::next();
            server
                .listen_on(id, "/ip4/127.0.0.1/tcp/0".parse().unwrap())
                .unwrap();
            let addr = match next_event(&mut server).await {
                TransportEvent::NewAddress {
                    listener_id,
                    listen_addr,
                } => {
                    assert_eq!(listener_id, id);
                    listen_addr
                }
                _ => panic!("expected NewAddress"),
            };
            let port = socket_addr_of(&addr, false).unwrap().port();
            assert_ne!(port, 0, "the real port is reported");

            let mut client = TcpTransport::new();
            let dial = client.dial(addr.clone(), dial_opts()).unwrap();
            let (accepted, dialed) = future::join(next_event(&mut server), dial).await;
            let mut dialed = dialed.unwrap();
            let mut accepted = match accepted {
                TransportEvent::Incoming {
                    upgrade,
                    local_addr,
                    send_back_addr,
                    ..
                } => {
                    assert_eq!(local_addr, addr);
                    assert_eq!(
                        socket_addr_of(&send_back_addr, false).unwrap(),
                        dialed.get_ref().local_addr().unwrap()
                    );
                    upgrade.await.unwrap()
                }
                _ => panic!("expected Incoming"),
            };
            assert!(dialed.get_ref().nodelay().unwrap());
            assert!(accepted.get_ref().nodelay().unwrap());

            dialed.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            accepted.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            accepted.write_all(b"pong").await.unwrap();
            accepted.close().await.unwrap();
            let mut reply = Vec::new();
            dialed.read_to_end(&mut reply).await.unwrap();
            assert_eq!(reply, b"pong");
        });
    }

    #[test]
    fn a_p2p_suffix_is_dialed_over_ipv4() {
        run(async {
            let mut server = TcpTransport::new();
            server
                .listen_on(ListenerId::next(), "/ip4/127.0.0.1/tcp/0".parse().unwrap())
                .unwrap();
            let addr = match next_event(&mut server).await {
                TransportEvent::NewAddress { listen_addr, .. } => listen_addr,
                _ => panic!("expected NewAddress"),
            };
            let mut client = TcpTransport::new();
            let dial = client
                .dial(
                    addr.with(Protocol::P2p(libp2p::PeerId::random())),
                    dial_opts(),
                )
                .unwrap();
            let (accepted, dialed) = future::join(next_event(&mut server), dial).await;
            dialed.unwrap();
            assert!(matches!(accepted, TransportEvent::Incoming { .. }));
        });
    }

    #[test]
    fn ipv6_and_p2p_suffix() {
        run(async {
            let mut server = TcpTransport::new();
            let listen = server.listen_on(ListenerId::next(), "/ip6/::1/tcp/0".parse().unwrap());
            // The transport listens on `::1` exactly when the host can.
            let host_has_ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
            assert_eq!(listen.is_ok(), host_has_ipv6, "{listen:?}");
            if !host_has_ipv6 {
                return;
            }
            let addr = match next_event(&mut server).await {
                TransportEvent::NewAddress { listen_addr, .. } => listen_addr,
                _ => panic!("expected NewAddress"),
            };
            let peer = libp2p::PeerId::random();
            let mut client = TcpTransport::new();
            let dial = client
                .dial(addr.with(Protocol::P2p(peer)), dial_opts())
                .unwrap();
            let (accepted, dialed) = future::join(next_event(&mut server), dial).await;
            dialed.unwrap();
            assert!(matches!(accepted, TransportEvent::Incoming { .. }));
        });
    }

    #[test]
    fn unsupported_addresses_are_rejected() {
        let mut transport = TcpTransport::new();
        for addr in [
            "/memory/1234",
            "/ip4/127.0.0.1/udp/1234",
            "/ip4/127.0.0.1/tcp/1234/ws",
            "/dns4/localhost/tcp/1234",
            "/ip4/127.0.0.1/tcp/0",
            "/ip4/0.0.0.0/tcp/1234",
        ] {
            let addr: Multiaddr = addr.parse().unwrap();
            assert!(
                matches!(
                    transport.dial(addr.clone(), dial_opts()),
                    Err(TransportError::MultiaddrNotSupported(a)) if a == addr
                ),
                "dial {addr}"
            );
        }
        for addr in [
            "/memory/0",
            "/ip4/127.0.0.1/udp/0",
            "/ip4/127.0.0.1/tcp/0/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
        ] {
            let addr: Multiaddr = addr.parse().unwrap();
            assert!(
                matches!(
                    transport.listen_on(ListenerId::next(), addr.clone()),
                    Err(TransportError::MultiaddrNotSupported(a)) if a == addr
                ),
                "listen {addr}"
            );
        }
    }

    #[test]
    fn unspecified_address_reports_loopback() {
        run(async {
            let mut server = TcpTransport::new();
            let id = ListenerId::next();
            server
                .listen_on(id, "/ip4/0.0.0.0/tcp/0".parse().unwrap())
                .unwrap();
            let first = match next_event(&mut server).await {
                TransportEvent::NewAddress { listen_addr, .. } => listen_addr,
                _ => panic!("expected NewAddress"),
            };
            let first_sa = socket_addr_of(&first, false).unwrap();
            assert_eq!(first_sa.ip(), IpAddr::from(Ipv4Addr::LOCALHOST));
            assert_ne!(first_sa.port(), 0);
            // The loopback address is reachable.
            let mut client = TcpTransport::new();
            let dial = client.dial(first, dial_opts()).unwrap();
            let mut events =
                futures::stream::poll_fn(|cx| Pin::new(&mut server).poll(cx).map(Some));
            let accept = async {
                loop {
                    match events.next().await.unwrap() {
                        TransportEvent::Incoming { upgrade, .. } => break upgrade.await,
                        TransportEvent::NewAddress { .. } => continue,
                        _ => panic!("unexpected event"),
                    }
                }
            };
            let (accepted, dialed) = future::join(accept, dial).await;
            accepted.unwrap();
            dialed.unwrap();
        });
    }

    #[test]
    fn remove_listener_closes() {
        run(async {
            let mut server = TcpTransport::new();
            let id = ListenerId::next();
            server
                .listen_on(id, "/ip4/127.0.0.1/tcp/0".parse().unwrap())
                .unwrap();
            let addr = match next_event(&mut server).await {
                TransportEvent::NewAddress { listen_addr, .. } => listen_addr,
                _ => panic!("expected NewAddress"),
            };
            assert!(server.remove_listener(id));
            assert!(!server.remove_listener(id));
            assert!(!server.remove_listener(ListenerId::next()));
            match next_event(&mut server).await {
                TransportEvent::ListenerClosed {
                    listener_id,
                    reason: Ok(()),
                } => assert_eq!(listener_id, id),
                _ => panic!("expected ListenerClosed"),
            }
            // The port no longer accepts connections.
            let mut client = TcpTransport::new();
            let error = client
                .dial(addr, dial_opts())
                .unwrap()
                .await
                .expect_err("the listener is closed");
            assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        });
    }
}
