//! The byte streams every hostile behaviour is checked over, behind one
//! enum: an in-memory pipe, TCP, and (feature `libp2p`) a `GrpcStream` on
//! the libp2p memory transport and on TCP with noise and yamux. A test
//! serves the echo service on a [`Carrier`], then calls it with a client or
//! speaks bare HTTP/2 to it ([`RawH2`]), the same way on each.

use bytes::{BufMut, Bytes, BytesMut};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use h2::client::SendRequest;
use http::Method;
use p2p_grpc::client::Grpc;
use p2p_grpc::io::BoxIo;
use p2p_grpc::server::ServerBuilder;
use p2p_grpc::{Request, Server, Status};
use prost::Message;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use crate::frames;
use crate::{echo_server, memory_channel, runtime, tcp_server, Event, Msg, COLLECT, EXPAND, UNARY};

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// `serve_connection` on one end of an in-memory pipe.
    Pipe,
    /// `serve_listener` on 127.0.0.1.
    Tcp,
    /// A `GrpcStream` on a libp2p network.
    #[cfg(feature = "libp2p")]
    Libp2p(crate::libp2p::Net),
}

/// Every carrier this build has.
pub fn carriers() -> Vec<Carrier> {
    #[allow(unused_mut)]
    let mut all = vec![Carrier::Pipe, Carrier::Tcp];
    #[cfg(feature = "libp2p")]
    all.extend(crate::libp2p::NETS.map(Carrier::Libp2p));
    all
}

/// The limits a hostile test sets, whatever the carrier.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Calls open at once per connection (`max_concurrent_streams`, or the
    /// `GrpcStream`'s own `max_calls_per_connection` over libp2p).
    pub calls_per_connection: Option<u32>,
    /// The server's `max_header_list_size`.
    pub header_list_size: Option<u32>,
}

enum Serving {
    Pipe(Server),
    /// The server (kept for as long as the target) and its address.
    Tcp(#[allow(dead_code)] Server, std::net::SocketAddr),
    #[cfg(feature = "libp2p")]
    Libp2p {
        net: crate::libp2p::Net,
        served: crate::libp2p::Served,
        peer: crate::libp2p::Peer,
    },
}

/// The echo service (and what `services` adds), served on a carrier.
pub struct Target {
    pub carrier: Carrier,
    /// The echo service's events.
    pub events: mpsc::UnboundedReceiver<Event>,
    serving: Serving,
    /// The nodes of [`other_client`](Self::other_client)'s peers.
    #[cfg(feature = "libp2p")]
    others: std::sync::Mutex<Vec<crate::libp2p::Peer>>,
}

impl Target {
    /// Serves the echo service on `carrier` with `limits`; `services` adds
    /// services to the server builder.
    pub async fn serve(
        carrier: Carrier,
        limits: Limits,
        services: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> Target {
        let settings = |mut builder: ServerBuilder, streams: bool| {
            if let Some(size) = limits.header_list_size {
                builder = builder.max_header_list_size(size);
            }
            if streams {
                builder = builder.max_concurrent_streams(limits.calls_per_connection);
            }
            services(builder)
        };
        match carrier {
            Carrier::Pipe | Carrier::Tcp => {
                let (server, events) = echo_server(|b| settings(b, true));
                let serving = match carrier {
                    Carrier::Pipe => Serving::Pipe(server),
                    _ => {
                        let addr = tcp_server(&server);
                        Serving::Tcp(server, addr)
                    }
                };
                Target {
                    carrier,
                    events,
                    serving,
                    #[cfg(feature = "libp2p")]
                    others: Default::default(),
                }
            }
            #[cfg(feature = "libp2p")]
            Carrier::Libp2p(net) => {
                let calls = limits.calls_per_connection;
                let mut served = crate::libp2p::serve(net, |b| {
                    let b = b.server(settings(Server::builder(), false));
                    match calls {
                        Some(max) => b.max_calls_per_connection(Some(max)),
                        None => b,
                    }
                })
                .await;
                let peer = crate::libp2p::Peer::new(net, &served);
                let events = std::mem::replace(&mut served.events, mpsc::unbounded().1);
                Target {
                    carrier,
                    events,
                    serving: Serving::Libp2p { net, served, peer },
                    others: Default::default(),
                }
            }
        }
    }

    /// A client: over a fresh connection (pipe, TCP), or the peer's
    /// reconnecting channel (libp2p).
    pub async fn client(&self) -> Grpc {
        match &self.serving {
            Serving::Pipe(server) => Grpc::new(memory_channel(server).await),
            Serving::Tcp(_, addr) => {
                Grpc::new(p2p_grpc::Channel::connect_tcp(*addr).await.unwrap())
            }
            #[cfg(feature = "libp2p")]
            Serving::Libp2p { served, peer, .. } => peer.client(served),
        }
    }

    /// A client from somewhere else: a fresh connection, or a new peer.
    pub async fn other_client(&self) -> Grpc {
        match &self.serving {
            #[cfg(feature = "libp2p")]
            Serving::Libp2p { net, served, .. } => {
                let peer = crate::libp2p::Peer::new(*net, served);
                let grpc = peer.client(served);
                // The node must outlive the channel: the target keeps it.
                self.others.lock().unwrap().push(peer);
                grpc
            }
            _ => self.client().await,
        }
    }

    /// A fresh byte stream to the server, for a bare HTTP/2 client.
    pub async fn raw(&self) -> BoxIo {
        match &self.serving {
            Serving::Pipe(server) => {
                let (client_io, server_io) = p2p_grpc::io::duplex(256 * 1024);
                let server = server.clone();
                runtime().spawn(Box::pin(async move {
                    let _ = server.serve_connection(server_io).await;
                }));
                Box::new(client_io)
            }
            Serving::Tcp(_, addr) => runtime().tcp_connect(*addr).await.unwrap(),
            #[cfg(feature = "libp2p")]
            Serving::Libp2p { served, peer, .. } => Box::new(peer.raw_stream(served).await),
        }
    }
}

/// A bare HTTP/2 client on any byte stream.
pub struct RawH2 {
    pub send: SendRequest<Bytes>,
    ping: h2::PingPong,
    /// Dropping (or firing) it drops the h2 connection and the stream.
    kill: Option<oneshot::Sender<()>>,
    /// How the connection task ended, once it has.
    pub ended: Option<oneshot::Receiver<Result<(), h2::Error>>>,
}

impl RawH2 {
    pub async fn over(io: BoxIo) -> RawH2 {
        let (send, mut connection) = h2::client::handshake(io.compat()).await.unwrap();
        let ping = connection.ping_pong().unwrap();
        let (kill, killed) = oneshot::channel::<()>();
        let (ended_tx, ended) = oneshot::channel();
        runtime().spawn(Box::pin(async move {
            if let futures::future::Either::Left((result, _)) =
                futures::future::select(connection, killed).await
            {
                let _ = ended_tx.send(result);
            }
        }));
        RawH2 {
            send,
            ping,
            kill: Some(kill),
            ended: Some(ended),
        }
    }

    /// A PING round trip: the server has read every frame sent before it.
    pub async fn sync(&mut self) {
        self.ping.ping(h2::Ping::opaque()).await.unwrap();
    }

    /// Drops the connection and the stream under it, whatever is in flight.
    pub fn drop_stream(&mut self) {
        self.kill.take();
    }

    /// Opens a gRPC call to `path`; the request body is the caller's to send.
    pub async fn start(
        &mut self,
        path: &str,
    ) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
        let mut ready = self.send.clone().ready().await.unwrap();
        ready.send_request(grpc_request(path), false).unwrap()
    }
}

/// The head of a gRPC request to `path`.
pub fn grpc_request(path: &str) -> http::Request<()> {
    http::Request::builder()
        .method(Method::POST)
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// One message with its 5-byte prefix.
pub fn frame(message: &Msg) -> Bytes {
    let payload = message.encode_to_vec();
    let mut buf = BytesMut::new();
    buf.put_u8(0);
    buf.put_u32(payload.len() as u32);
    buf.put_slice(&payload);
    buf.freeze()
}

/// The gRPC status and messages of a raw response.
pub async fn read_response(response: h2::client::ResponseFuture) -> (Status, Vec<Msg>) {
    let response = response.await.unwrap();
    let (parts, mut body) = response.into_parts();
    let mut data = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap();
    let status = trailers
        .as_ref()
        .and_then(Status::from_header_map)
        .or_else(|| Status::from_header_map(&parts.headers))
        .unwrap_or_else(|| panic!("no grpc-status in {:?} / {trailers:?}", parts.headers));
    let mut messages = Vec::new();
    let mut data = data.freeze();
    while data.len() >= 5 {
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        messages.push(Msg::decode(data.slice(5..5 + len)).unwrap());
        data = data.slice(5 + len..);
    }
    (status, messages)
}

/// Reads the next gRPC message of a raw response body (one DATA frame
/// holds it whole: the messages are small).
pub async fn next_message(body: &mut h2::RecvStream) -> Msg {
    let chunk = body.data().await.unwrap().unwrap();
    let _ = body.flow_control().release_capacity(chunk.len());
    Msg::decode(chunk.slice(5..)).unwrap()
}

/// Unary, client-streaming and server-streaming calls on `grpc` succeed.
pub async fn still_served(grpc: &Grpc, label: &str) {
    let reply = grpc
        .unary::<_, Msg>(Request::new(Msg::count(label, 1)), UNARY)
        .await
        .unwrap_or_else(|status| panic!("{label}: {status:?}"));
    assert_eq!(reply.get_ref().text, label);
    let messages = futures::stream::iter(vec![Msg::count("a", 1), Msg::count("b", 2)]);
    let reply = grpc
        .client_streaming::<_, _, Msg>(Request::new(messages), COLLECT)
        .await
        .unwrap_or_else(|status| panic!("{label}: {status:?}"));
    assert_eq!(reply.into_inner(), Msg::count("ab", 3));
    let replies: Vec<Msg> = grpc
        .server_streaming::<_, Msg>(Request::new(Msg::count("x", 3)), EXPAND)
        .await
        .unwrap_or_else(|status| panic!("{label}: {status:?}"))
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(replies.len(), 3);
}

/// The bytes of an HTTP/2 client that opens every window as wide as
/// HTTP/2 allows ([`frames::wide_open_preface`]) and sends `streams` gRPC
/// requests to `path`, each one empty message: what a peer writes before
/// it stops reading, so that only the server's own buffers bound what it
/// queues.
pub fn wide_open_requests(path: &str, streams: u32) -> Vec<u8> {
    let mut out = frames::wide_open_preface();
    for i in 0..streams {
        frames::request(&mut out, 2 * i + 1, path, &[0, 0, 0, 0, 0]);
    }
    out
}
