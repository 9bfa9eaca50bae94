//! One node serving two services on two libp2p protocols, as Polygon Edge
//! does (`/syncer/0.2`, `/id/0.1`, `/disc/0.1`: one `GrpcStream` per
//! service), and a peer calling each on its own protocol. Both use
//! secp256k1 identities, as Edge's nodes do.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin libp2p-edge
//! ```
//!
//! To speak to an Edge-style peer: open a libp2p stream of the service's
//! protocol and run gRPC over it as HTTP/2 with prior knowledge, which is
//! what Edge's Go client does (`grpc.WithContextDialer` returning the
//! stream, no TLS: noise already secures the connection).
//! `GrpcStream::builder().protocol(..).build(control).client(peer)` does
//! exactly that; the `:authority` does not matter to Edge.

use p2p_grpc::libp2p::libp2p::identity::Keypair;
use p2p_grpc::libp2p::libp2p::StreamProtocol;
use p2p_grpc::libp2p::{GrpcStream, Node};
use p2p_grpc::{Request, Response, Status};
use p2p_grpc_examples::helloworld::greeter_client::GreeterClient;
use p2p_grpc_examples::helloworld::greeter_server::{Greeter, GreeterServer};
use p2p_grpc_examples::helloworld::{HelloReply, HelloRequest};
use p2p_grpc_examples::routeguide::route_guide_client::RouteGuideClient;
use p2p_grpc_examples::routeguide::route_guide_server::{RouteGuide, RouteGuideServer};
use p2p_grpc_examples::routeguide::{Feature, Point, Rectangle, RouteNote, RouteSummary};

/// Edge's protocol ids for two of its services.
const SYNCER: StreamProtocol = StreamProtocol::new("/syncer/0.2");
const IDENTITY: StreamProtocol = StreamProtocol::new("/id/0.1");

struct Hello;

#[p2p_grpc::codegen::async_trait]
impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let peer = request.peer_id().expect("a libp2p call");
        Ok(Response::new(HelloReply {
            message: format!("{IDENTITY}: hello {} ({peer})", request.into_inner().name),
        }))
    }
}

struct Sync;

#[p2p_grpc::codegen::async_trait]
impl RouteGuide for Sync {
    async fn get_feature(&self, request: Request<Point>) -> Result<Response<Feature>, Status> {
        Ok(Response::new(Feature {
            name: format!("{SYNCER}: block {}", request.get_ref().latitude),
            location: Some(request.into_inner()),
        }))
    }

    async fn list_features(
        &self,
        _request: Request<Rectangle>,
    ) -> Result<Response<p2p_grpc::BoxStream<Feature>>, Status> {
        Err(Status::unimplemented("not part of this example"))
    }

    async fn record_route(
        &self,
        _request: Request<p2p_grpc::Streaming<Point>>,
    ) -> Result<Response<RouteSummary>, Status> {
        Err(Status::unimplemented("not part of this example"))
    }

    async fn route_chat(
        &self,
        _request: Request<p2p_grpc::Streaming<RouteNote>>,
    ) -> Result<Response<p2p_grpc::BoxStream<RouteNote>>, Status> {
        Err(Status::unimplemented("not part of this example"))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    p2p_grpc::rt::block_on(async {
        let server = Node::builder()
            .keypair(Keypair::generate_secp256k1())
            .build()?;
        // One GrpcStream per protocol, each with its service.
        let syncer = GrpcStream::builder()
            .protocol(SYNCER)
            .add_service(RouteGuideServer::new(Sync))
            .build(server.control())?;
        let identity = GrpcStream::builder()
            .protocol(IDENTITY)
            .add_service(GreeterServer::new(Hello))
            .build(server.control())?;
        syncer.serve()?;
        identity.serve()?;
        let addr = server.listen_on("/ip4/127.0.0.1/tcp/0".parse()?).await?;
        println!(
            "server {} serves {SYNCER} and {IDENTITY} at {addr}",
            server.peer_id()
        );

        let peer = Node::builder()
            .keypair(Keypair::generate_secp256k1())
            .build()?;
        peer.add_address(server.peer_id(), addr);
        let to_syncer = GrpcStream::builder()
            .protocol(SYNCER)
            .build(peer.control())?;
        let to_identity = GrpcStream::builder()
            .protocol(IDENTITY)
            .build(peer.control())?;

        let feature = RouteGuideClient::new(to_syncer.client(server.peer_id()))
            .get_feature(Point {
                latitude: 42,
                longitude: 0,
            })
            .await?;
        println!("  {}", feature.get_ref().name);
        let hello = GreeterClient::new(to_identity.client(server.peer_id()))
            .say_hello(HelloRequest {
                name: "edge peer".into(),
            })
            .await?;
        println!("  {}", hello.get_ref().message);
        // A service is reached only on its own protocol.
        let wrong = GreeterClient::new(to_syncer.client(server.peer_id()))
            .say_hello(HelloRequest {
                name: "wrong protocol".into(),
            })
            .await;
        println!(
            "  the greeter on {SYNCER}: {:?}",
            wrong.map(|_| ()).unwrap_err().code()
        );
        peer.shutdown().await;
        server.shutdown().await;
        println!("done");
        Ok(())
    })
}
