//! Shared fixtures of the libp2p tests: the two networks, a node serving
//! the echo service through a `GrpcStream`, and a peer that calls it.

use futures::channel::mpsc;
use p2p_grpc::client::Grpc;
use p2p_grpc::libp2p::libp2p::identity::Keypair;
use p2p_grpc::libp2p::libp2p::{Multiaddr, PeerId, Stream};
use p2p_grpc::libp2p::{GrpcStream, GrpcStreamBuilder, Node, DEFAULT_PROTOCOL};

use crate::{runtime, EchoService, Event};

/// The libp2p transports every behaviour is checked over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    Memory,
    Tcp,
}

pub const NETS: [Net; 2] = [Net::Memory, Net::Tcp];

impl Net {
    /// A node on this network, with `keypair` or a fresh identity.
    pub fn node(self, keypair: Option<Keypair>) -> Node {
        let mut builder = Node::builder();
        if let Some(keypair) = keypair {
            builder = builder.keypair(keypair);
        }
        match self {
            Net::Memory => builder.memory_transport(),
            Net::Tcp => builder.tcp_transport(),
        }
        .build()
        .unwrap()
    }

    /// A listen address that picks a free port.
    pub fn any_addr(self) -> Multiaddr {
        match self {
            Net::Memory => "/memory/0",
            Net::Tcp => "/ip4/127.0.0.1/tcp/0",
        }
        .parse()
        .unwrap()
    }
}

/// A node serving the echo service (and whatever `configure` adds) through
/// a `GrpcStream`.
pub struct Served {
    pub node: Node,
    pub grpc: GrpcStream,
    /// The listen address, with `/p2p/<peer id>`.
    pub addr: Multiaddr,
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl Served {
    pub fn peer(&self) -> PeerId {
        self.node.peer_id()
    }
}

/// Serves on `node`, listening on `listen`.
pub async fn serve_on(
    node: Node,
    listen: Multiaddr,
    configure: impl FnOnce(GrpcStreamBuilder) -> GrpcStreamBuilder,
) -> Served {
    let (events_tx, events) = mpsc::unbounded();
    let echo = EchoService::new(runtime(), Some(events_tx));
    let grpc = configure(GrpcStream::builder().add_service(echo))
        .build(node.control())
        .unwrap();
    grpc.serve().unwrap();
    let addr = node.listen_on(listen).await.unwrap();
    Served {
        node,
        grpc,
        addr,
        events,
    }
}

/// Serves on a fresh node of `net`.
pub async fn serve(
    net: Net,
    configure: impl FnOnce(GrpcStreamBuilder) -> GrpcStreamBuilder,
) -> Served {
    serve_on(net.node(None), net.any_addr(), configure).await
}

/// A node that knows the server's address and calls it.
pub struct Peer {
    pub node: Node,
    pub grpc: GrpcStream,
}

impl Peer {
    pub fn new(net: Net, server: &Served) -> Peer {
        let node = net.node(None);
        node.add_address(server.peer(), server.addr.clone());
        let grpc = GrpcStream::new(node.control()).unwrap();
        Peer { node, grpc }
    }

    pub fn id(&self) -> PeerId {
        self.node.peer_id()
    }

    /// The peer id as handlers report it.
    pub fn name(&self) -> String {
        self.id().to_string()
    }

    /// A reconnecting client to `peer`.
    pub fn to(&self, peer: PeerId) -> Grpc {
        Grpc::new(self.grpc.client(peer))
    }

    /// A reconnecting client to `server`.
    pub fn client(&self, server: &Served) -> Grpc {
        self.to(server.peer())
    }

    /// A raw libp2p stream of the gRPC protocol to `server`.
    pub async fn raw_stream(&self, server: &Served) -> Stream {
        self.node
            .open_stream(server.peer(), DEFAULT_PROTOCOL)
            .await
            .unwrap()
    }

    /// A client over one fresh stream, without reconnection.
    pub async fn wrapped(&self, server: &Served) -> Result<Grpc, p2p_grpc::Error> {
        let stream = self.raw_stream(server).await;
        Ok(Grpc::new(self.grpc.wrap_client(stream).await?))
    }
}
