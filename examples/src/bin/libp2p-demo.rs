//! Two libp2p nodes in one process, connected over TCP with noise and yamux,
//! making the four kinds of call; each handler prints the remote `PeerId` it
//! saw.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin libp2p-demo
//! cargo run -p p2p-grpc-examples --bin libp2p-demo --no-default-features --features tokio
//! ```

use std::time::Duration;

use futures::{stream, StreamExt};
use p2p_grpc::libp2p::{GrpcStream, Node};
use p2p_grpc::{BoxStream, Request, Response, Status, Streaming};
use p2p_grpc_examples::routeguide::route_guide_client::RouteGuideClient;
use p2p_grpc_examples::routeguide::route_guide_server::{RouteGuide, RouteGuideServer};
use p2p_grpc_examples::routeguide::{Feature, Point, Rectangle, RouteNote, RouteSummary};

/// Answers every kind of call and says which peer asked.
struct Guide;

fn caller<T>(request: &Request<T>, kind: &str) -> Result<(), Status> {
    let peer = request
        .peer_id()
        .ok_or_else(|| Status::unauthenticated("not a libp2p call"))?;
    println!("  [server] {kind:<17} called by {peer}");
    Ok(())
}

#[p2p_grpc::codegen::async_trait]
impl RouteGuide for Guide {
    async fn get_feature(&self, request: Request<Point>) -> Result<Response<Feature>, Status> {
        caller(&request, "unary")?;
        Ok(Response::new(Feature {
            name: "the peer-to-peer cafe".into(),
            location: Some(request.into_inner()),
        }))
    }

    async fn list_features(
        &self,
        request: Request<Rectangle>,
    ) -> Result<Response<BoxStream<Feature>>, Status> {
        caller(&request, "server streaming")?;
        let features = (0..3).map(|i| {
            Ok(Feature {
                name: format!("feature #{i}"),
                location: Some(Point {
                    latitude: i,
                    longitude: i,
                }),
            })
        });
        Ok(Response::new(Box::pin(stream::iter(features))))
    }

    async fn record_route(
        &self,
        request: Request<Streaming<Point>>,
    ) -> Result<Response<RouteSummary>, Status> {
        caller(&request, "client streaming")?;
        let mut points = request.into_inner();
        let mut summary = RouteSummary::default();
        while points.message().await?.is_some() {
            summary.point_count += 1;
        }
        Ok(Response::new(summary))
    }

    async fn route_chat(
        &self,
        request: Request<Streaming<RouteNote>>,
    ) -> Result<Response<BoxStream<RouteNote>>, Status> {
        caller(&request, "bidi streaming")?;
        let replies = request.into_inner().map(|note| {
            note.map(|note| RouteNote {
                message: format!("ack: {}", note.message),
                location: note.location,
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    p2p_grpc::rt::block_on(async {
        // Node A serves; node B calls.
        let a = Node::builder().build()?;
        let b = Node::builder().build()?;
        println!("node A is {}", a.peer_id());
        println!("node B is {}", b.peer_id());

        let server = GrpcStream::new(a.control())?;
        server.register_service(RouteGuideServer::new(Guide));
        let serving = server.serve()?;
        let addr = a.listen_on("/ip4/127.0.0.1/tcp/0".parse()?).await?;
        println!("A listens on {addr}");

        let client_side = GrpcStream::new(b.control())?;
        let a_peer = b.dial(addr).await?;
        let client = RouteGuideClient::new(client_side.client(a_peer));

        println!("B calls A, unary:");
        let feature = client
            .get_feature(Point {
                latitude: 1,
                longitude: 2,
            })
            .await?;
        println!("  [client] got {:?}", feature.get_ref().name);

        println!("B calls A, server streaming:");
        let mut features = client
            .list_features(Rectangle::default())
            .await?
            .into_inner();
        while let Some(feature) = features.message().await? {
            println!("  [client] got {:?}", feature.name);
        }

        println!("B calls A, client streaming:");
        let points = (0..5).map(|i| Point {
            latitude: i,
            longitude: i,
        });
        let summary = client.record_route(stream::iter(points)).await?;
        println!(
            "  [client] A counted {} points",
            summary.get_ref().point_count
        );

        println!("B calls A, bidi streaming:");
        let notes = ["hello", "from", "B"].map(|text| RouteNote {
            location: None,
            message: text.into(),
        });
        let mut request = Request::new(stream::iter(notes));
        request.set_timeout(Duration::from_secs(10));
        let mut replies = client.route_chat(request).await?;
        while let Some(note) = replies.message().await? {
            println!("  [client] got {:?}", note.message);
        }

        server.shutdown(Duration::from_secs(1)).await;
        drop(serving);
        a.shutdown().await;
        b.shutdown().await;
        Ok(())
    })
}
