//! All four call kinds in one process, in the spirit of gRPC's route guide:
//! a server over an in-memory pipe (swap in TCP by changing two lines) and a
//! client that prints what happens.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin routeguide
//! cargo run -p p2p-grpc-examples --bin routeguide --no-default-features --features async-std
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use p2p_grpc::{BoxStream, Channel, Request, Response, Server, Status, Streaming};
use p2p_grpc_examples::routeguide::route_guide_client::RouteGuideClient;
use p2p_grpc_examples::routeguide::route_guide_server::{RouteGuide, RouteGuideServer};
use p2p_grpc_examples::routeguide::{Feature, Point, Rectangle, RouteNote, RouteSummary};

/// A few landmarks (latitude, longitude in degrees × 10^7).
const LANDMARKS: &[(&str, i32, i32)] = &[
    ("Patriots Path, Mendham, NJ", 407_838_351, -746_143_763),
    ("101 New Jersey 10, Whippany, NJ", 408_122_808, -743_999_179),
    ("U.S. 6, Shohola, PA", 413_628_156, -749_015_468),
    ("5 Conners Road, Kingston, NY", 419_999_544, -740_371_136),
    ("Mount Wilson, CA", 342_257_710, -1_180_577_430),
];

fn point(latitude: i32, longitude: i32) -> Point {
    Point {
        latitude,
        longitude,
    }
}

fn features() -> Vec<Feature> {
    LANDMARKS
        .iter()
        .map(|&(name, lat, lon)| Feature {
            name: name.into(),
            location: Some(point(lat, lon)),
        })
        .collect()
}

/// Distance in metres between two points (haversine).
fn distance(a: &Point, b: &Point) -> i32 {
    let to_rad = |v: i32| (v as f64 / 1e7).to_radians();
    let (lat1, lat2) = (to_rad(a.latitude), to_rad(b.latitude));
    let dlat = lat2 - lat1;
    let dlon = to_rad(b.longitude) - to_rad(a.longitude);
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    (6_371_000.0 * 2.0 * h.sqrt().atan2((1.0 - h).sqrt())) as i32
}

/// The notes left so far, by point.
type Notes = HashMap<(i32, i32), Vec<RouteNote>>;

#[derive(Clone)]
struct Guide {
    features: Arc<Vec<Feature>>,
    notes: Arc<Mutex<Notes>>,
}

impl Guide {
    fn feature_at(&self, at: &Point) -> Option<&Feature> {
        self.features
            .iter()
            .find(|feature| feature.location.as_ref() == Some(at))
    }
}

#[p2p_grpc::codegen::async_trait]
impl RouteGuide for Guide {
    async fn get_feature(&self, request: Request<Point>) -> Result<Response<Feature>, Status> {
        let at = request.into_inner();
        let feature = self.feature_at(&at).cloned().unwrap_or(Feature {
            name: String::new(),
            location: Some(at),
        });
        Ok(Response::new(feature))
    }

    async fn list_features(
        &self,
        request: Request<Rectangle>,
    ) -> Result<Response<BoxStream<Feature>>, Status> {
        let rect = request.into_inner();
        let (lo, hi) = match (rect.lo, rect.hi) {
            (Some(lo), Some(hi)) => (lo, hi),
            _ => return Err(Status::invalid_argument("a rectangle needs two corners")),
        };
        let (lat_lo, lat_hi) = (lo.latitude.min(hi.latitude), lo.latitude.max(hi.latitude));
        let (lon_lo, lon_hi) = (
            lo.longitude.min(hi.longitude),
            lo.longitude.max(hi.longitude),
        );
        let inside: Vec<Result<Feature, Status>> = self
            .features
            .iter()
            .filter(|feature| {
                feature.location.as_ref().is_some_and(|p| {
                    (lat_lo..=lat_hi).contains(&p.latitude)
                        && (lon_lo..=lon_hi).contains(&p.longitude)
                })
            })
            .cloned()
            .map(Ok)
            .collect();
        Ok(Response::new(Box::pin(stream::iter(inside))))
    }

    async fn record_route(
        &self,
        request: Request<Streaming<Point>>,
    ) -> Result<Response<RouteSummary>, Status> {
        let started = Instant::now();
        let mut points = request.into_inner();
        let mut summary = RouteSummary::default();
        let mut last: Option<Point> = None;
        while let Some(point) = points.message().await? {
            summary.point_count += 1;
            if self.feature_at(&point).is_some() {
                summary.feature_count += 1;
            }
            if let Some(last) = &last {
                summary.distance += distance(last, &point);
            }
            last = Some(point);
        }
        summary.elapsed_time = started.elapsed().as_secs() as i32;
        Ok(Response::new(summary))
    }

    async fn route_chat(
        &self,
        request: Request<Streaming<RouteNote>>,
    ) -> Result<Response<BoxStream<RouteNote>>, Status> {
        let guide = self.clone();
        let replies = request.into_inner().flat_map(move |note| {
            let replies: Vec<Result<RouteNote, Status>> = match note {
                Err(status) => vec![Err(status)],
                Ok(note) => {
                    let key = note
                        .location
                        .as_ref()
                        .map(|p| (p.latitude, p.longitude))
                        .unwrap_or_default();
                    let mut notes = guide.notes.lock().unwrap();
                    let here = notes.entry(key).or_default();
                    let mut replies: Vec<_> = here.iter().cloned().map(Ok).collect();
                    here.push(note.clone());
                    replies.push(Ok(note));
                    replies
                }
            };
            stream::iter(replies)
        });
        Ok(Response::new(Box::pin(replies)))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    p2p_grpc::rt::block_on(async {
        let guide = Guide {
            features: Arc::new(features()),
            notes: Arc::default(),
        };
        let server = Server::builder()
            .add_service(RouteGuideServer::new(guide))
            .build()?;

        // An in-memory pipe instead of a socket: any futures-io byte stream
        // carries gRPC.
        let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
        let serving = server.clone();
        server.runtime().spawn(Box::pin(async move {
            let _ = serving.serve_connection(server_io).await;
        }));
        let client = RouteGuideClient::new(Channel::connect(client_io).await?);

        println!("== unary: GetFeature");
        for &(lat, lon) in &[(407_838_351, -746_143_763), (0, 0)] {
            let feature = client.get_feature(point(lat, lon)).await?.into_inner();
            if feature.name.is_empty() {
                println!("  nothing at ({lat}, {lon})");
            } else {
                println!("  found {:?} at ({lat}, {lon})", feature.name);
            }
        }

        println!("== server streaming: ListFeatures in New Jersey and around");
        let rect = Rectangle {
            lo: Some(point(400_000_000, -750_000_000)),
            hi: Some(point(420_000_000, -730_000_000)),
        };
        let mut listed = client.list_features(rect).await?.into_inner();
        while let Some(feature) = listed.message().await? {
            println!("  {}", feature.name);
        }

        println!("== client streaming: RecordRoute through every landmark");
        let route: Vec<Point> = features().into_iter().filter_map(|f| f.location).collect();
        let summary = client.record_route(stream::iter(route)).await?.into_inner();
        println!(
            "  {} points, {} features, {} km",
            summary.point_count,
            summary.feature_count,
            summary.distance / 1000
        );

        println!("== bidi streaming: RouteChat");
        let notes = vec![
            ("first message", point(0, 1)),
            ("second message", point(0, 2)),
            ("third message", point(0, 1)),
            ("fourth message", point(0, 2)),
        ];
        let outgoing = stream::iter(notes.into_iter().map(|(message, location)| RouteNote {
            location: Some(location),
            message: message.into(),
        }));
        let mut request = Request::new(outgoing);
        request.set_timeout(Duration::from_secs(10));
        let mut incoming = client.route_chat(request).await?;
        while let Some(note) = incoming.message().await? {
            let at = note.location.unwrap_or_default();
            println!(
                "  got {:?} at ({}, {})",
                note.message, at.latitude, at.longitude
            );
        }

        server.shutdown(Duration::from_secs(1)).await;
        Ok(())
    })
}
