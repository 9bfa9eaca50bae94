//! [`GrpcStreamBuilder`]: the protocol, limits, runtime, authorisation, and
//! the server and channel settings of a [`GrpcStream`].

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use libp2p::{PeerId, StreamProtocol};
use libp2p_stream::Control;

use super::accept_queue::AcceptQueue;
use super::peer_slots::PeerSlots;
use super::{
    GrpcStream, GrpcStreamError, State, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_PEER,
    DEFAULT_MAX_FRAME_SIZE, DEFAULT_PROTOCOL,
};
use crate::client::ChannelBuilder;
use crate::libp2p::Node;
use crate::rt::SharedRuntime;
use crate::server::{CallInfo, ServerBuilder, Service};
use crate::wire::status::Status;

type PeerAuthorizeFn = dyn Fn(PeerId, &CallInfo<'_>) -> Result<(), Status> + Send + Sync;

/// Where the calls-per-connection limit comes from.
#[derive(Clone, Copy, Debug)]
enum CallLimit {
    /// The server builder's (set with [`GrpcStreamBuilder::server`]).
    FromServer,
    /// This builder's: a number, or `None` for no limit.
    Set(Option<u32>),
}

/// Configures and builds a [`GrpcStream`].
pub struct GrpcStreamBuilder {
    protocol: StreamProtocol,
    server: ServerBuilder,
    services: Vec<Arc<dyn Service>>,
    channel: Option<ChannelBuilder>,
    runtime: Option<SharedRuntime>,
    max_calls_per_connection: CallLimit,
    max_connections_per_peer: Option<usize>,
    authorize: Option<Arc<PeerAuthorizeFn>>,
    connect_timeout: Duration,
    discovery: Option<Node>,
}

impl fmt::Debug for GrpcStreamBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcStreamBuilder")
            .field("protocol", &self.protocol)
            .field("server", &self.server)
            .field(
                "services",
                &self.services.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("channel", &self.channel)
            .field("runtime", &self.runtime)
            .field("max_calls_per_connection", &self.max_calls_per_connection)
            .field("max_connections_per_peer", &self.max_connections_per_peer)
            .field("authorize", &self.authorize.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("discovery", &self.discovery)
            .finish()
    }
}

impl Default for GrpcStreamBuilder {
    fn default() -> Self {
        GrpcStreamBuilder {
            protocol: DEFAULT_PROTOCOL,
            server: ServerBuilder::default(),
            services: Vec::new(),
            channel: None,
            runtime: None,
            max_calls_per_connection: CallLimit::FromServer,
            max_connections_per_peer: Some(DEFAULT_MAX_CONNECTIONS_PER_PEER),
            authorize: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            discovery: None,
        }
    }
}

impl GrpcStreamBuilder {
    /// The libp2p protocol the streams are opened and accepted for (default
    /// [`DEFAULT_PROTOCOL`], `/grpc/0.1.0`). Use one protocol for all
    /// services, or one `GrpcStream` per service with a protocol each, as
    /// Polygon Edge does (`/syncer/0.2`...).
    pub fn protocol(mut self, protocol: StreamProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The runtime that runs the accept loop, connections, calls and client
    /// channels (default: the one the server builder has, else
    /// [`rt::default_runtime`](crate::rt::default_runtime)).
    pub fn runtime(mut self, runtime: SharedRuntime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The settings of the inner [`Server`](crate::Server) (message sizes, compression,
    /// HTTP/2 windows, handshake timeout...). Services added with
    /// [`add_service`](Self::add_service) are kept whatever the order of
    /// the calls, and so are its [interceptors](ServerBuilder::interceptor);
    /// [`authorize`](Self::authorize) runs after them.
    pub fn server(mut self, server: ServerBuilder) -> Self {
        self.server = server;
        self
    }

    /// The settings of the channels [`client`](GrpcStream::client) and
    /// [`wrap_client`](GrpcStream::wrap_client) create (windows, user
    /// agent, handshake timeout...). Their runtime is always the
    /// `GrpcStream`'s; [`client`](GrpcStream::client) sets the
    /// `:authority` to the remote peer id.
    pub fn channel(mut self, channel: ChannelBuilder) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Registers a service (a generated `XxxServer`, or your own
    /// [`Service`]). More can be added later with
    /// [`GrpcStream::register_service`].
    pub fn add_service(mut self, service: impl Service) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Most calls open at once on one connection, that is one libp2p stream
    /// (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`; `None` for no limit).
    /// Default: the server builder's (1024).
    pub fn max_calls_per_connection(mut self, max: Option<u32>) -> Self {
        self.max_calls_per_connection = CallLimit::Set(max);
        self
    }

    /// Most connections (libp2p streams of this protocol) served at once
    /// for one peer (default 16; `None` for no limit). Streams beyond the
    /// limit are closed as soon as they arrive, and logged.
    pub fn max_connections_per_peer(mut self, max: Option<usize>) -> Self {
        self.max_connections_per_peer = max;
        self
    }

    /// Checks every call with the remote peer and the call's service,
    /// method and metadata before its handler runs. An `Err` status (for
    /// example [`Status::permission_denied`]) is sent back instead of
    /// running the handler.
    ///
    /// Calls that carry no libp2p peer, such as calls the
    /// [`grpc_server`](GrpcStream::grpc_server) receives over TCP, are
    /// refused with `UNAUTHENTICATED`. To authorise those differently, give
    /// [`server`](Self::server) a builder with its own
    /// [`authorize`](ServerBuilder::authorize) hook instead, and read the
    /// peer with [`CallInfo::peer_id`].
    pub fn authorize<F>(mut self, hook: F) -> Self
    where
        F: Fn(PeerId, &CallInfo<'_>) -> Result<(), Status> + Send + Sync + 'static,
    {
        self.authorize = Some(Arc::new(hook));
        self
    }

    /// Time [`client`](GrpcStream::client) channels may take to open a
    /// libp2p stream, dialing the peer if needed (default 20 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Lets [`client`](GrpcStream::client) channels find a peer through
    /// `node`'s DHT: when a stream to the peer cannot be opened (the node
    /// knows no address of it), the channel looks the peer up
    /// ([`Node::find_peer`]) and tries once more, within the
    /// [connect timeout](Self::connect_timeout). So a peer id alone, from
    /// [`Node::find_providers`] say, is enough to call it.
    pub fn discovery(mut self, node: &Node) -> Self {
        self.discovery = Some(node.clone());
        self
    }

    /// Builds the `GrpcStream` and starts taking the protocol's inbound
    /// streams off `control` (see [`Node::control`](super::Node::control)).
    ///
    /// From now on inbound streams are taken the moment they arrive and
    /// queued until [`serve`](GrpcStream::serve) or
    /// [`accept`](GrpcStream::accept) picks them up.
    pub fn build(self, mut control: Control) -> Result<GrpcStream, GrpcStreamError> {
        let mut server = self.server.or_max_frame_size(DEFAULT_MAX_FRAME_SIZE);
        if let Some(runtime) = self.runtime {
            server = server.runtime(runtime);
        }
        if let CallLimit::Set(max) = self.max_calls_per_connection {
            server = server.max_concurrent_streams(max);
        }
        if let Some(hook) = self.authorize {
            server = server.authorize(move |info: &CallInfo<'_>| match info.peer_id() {
                Some(peer) => hook(peer, info),
                None => Err(Status::unauthenticated(
                    "the call did not come through a libp2p stream",
                )),
            });
        }
        for service in self.services {
            server = server.add_service(service);
        }
        let server = server.build().map_err(GrpcStreamError::Build)?;
        let runtime = server.runtime().clone();
        let channel = self
            .channel
            .unwrap_or_default()
            .or_max_frame_size(DEFAULT_MAX_FRAME_SIZE)
            .runtime(runtime.clone());

        let incoming = control
            .accept(self.protocol.clone())
            .map_err(|_| GrpcStreamError::AlreadyRegistered(self.protocol.clone()))?;
        let (queue, queued_streams) = mpsc::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        let inbox = AcceptQueue::start(incoming, queue, queued.clone(), self.protocol.clone());

        Ok(GrpcStream {
            inbox,
            state: Arc::new(State {
                protocol: self.protocol,
                control,
                server,
                runtime,
                channel,
                connect_timeout: self.connect_timeout,
                discovery: self.discovery,
                peers: PeerSlots::new(self.max_connections_per_peer),
                incoming: futures::lock::Mutex::new(queued_streams),
                queued,
                serving: AtomicBool::new(false),
                closing: AtomicBool::new(false),
            }),
        })
    }
}
