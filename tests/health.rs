//! The health service: `Check` and `Watch` as a health client sees them,
//! the reporter's changes, and NOT_SERVING on graceful shutdown.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use p2p_grpc::health::{HealthCheckRequest, HealthClient, HealthReporter, ServingStatus};
use p2p_grpc::{Channel, Code, Server};

fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

async fn served() -> (Server, HealthReporter, HealthClient) {
    let server = Server::builder().build().unwrap();
    let health = HealthReporter::attach(&server);
    let addr = tcp_server(&server);
    let client = HealthClient::new(Channel::connect_tcp(addr).await.unwrap());
    (server, health, client)
}

async fn next(
    updates: &mut p2p_grpc::Streaming<p2p_grpc::health::HealthCheckResponse>,
) -> ServingStatus {
    status_of(updates.next().await.unwrap().unwrap().status)
}

fn status_of(code: i32) -> ServingStatus {
    ServingStatus::try_from(code).unwrap()
}

#[test]
fn check_answers_the_status_of_the_server_and_of_each_service() {
    run(async {
        let (_server, health, client) = served().await;
        let now = client.check(request("")).await.unwrap().into_inner();
        assert_eq!(status_of(now.status), ServingStatus::Serving);
        let status = client
            .check(request("helloworld.Greeter"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        health.set_not_serving("helloworld.Greeter");
        let now = client
            .check(request("helloworld.Greeter"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status_of(now.status), ServingStatus::NotServing);
        health.clear("helloworld.Greeter");
        let status = client
            .check(request("helloworld.Greeter"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    });
}

#[test]
fn watch_sends_the_status_then_every_change() {
    run(async {
        let (_server, health, client) = served().await;
        let mut updates = client
            .watch(request("helloworld.Greeter"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(next(&mut updates).await, ServingStatus::ServiceUnknown);
        health.set_serving("helloworld.Greeter");
        assert_eq!(next(&mut updates).await, ServingStatus::Serving);
        // The same status again is not a change.
        health.set_serving("helloworld.Greeter");
        health.set_not_serving("helloworld.Greeter");
        assert_eq!(next(&mut updates).await, ServingStatus::NotServing);
        health.clear("helloworld.Greeter");
        assert_eq!(next(&mut updates).await, ServingStatus::ServiceUnknown);
    });
}

#[test]
fn graceful_shutdown_reports_not_serving_before_the_server_stops() {
    run(async {
        let (server, health, client) = served().await;
        health.set_serving("helloworld.Greeter");
        let mut server_updates = client.watch(request("")).await.unwrap().into_inner();
        let mut service_updates = client
            .watch(request("helloworld.Greeter"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(next(&mut server_updates).await, ServingStatus::Serving);
        assert_eq!(next(&mut service_updates).await, ServingStatus::Serving);
        let shutdown = server.shutdown(Duration::from_secs(30));
        let watched = async {
            assert_eq!(next(&mut server_updates).await, ServingStatus::NotServing);
            assert_eq!(next(&mut service_updates).await, ServingStatus::NotServing);
            // The watchers have seen it: now they go, and the server stops.
            drop(server_updates);
            drop(service_updates);
        };
        futures::join!(shutdown, watched);
        assert_eq!(health.status(""), Some(ServingStatus::NotServing));
        assert_eq!(server.connection_count(), 0);
    });
}
