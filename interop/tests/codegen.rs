//! The code p2p-grpc-build generated for `proto/test` compiles, can be implemented, and
//! works end to end over an in-memory connection: the four call kinds, well-known types,
//! keyword names and a nested package.

use futures::{stream, StreamExt};
// The runtime of whichever p2p-grpc feature is on (under tokio, the server and
// channel need its context to find the runtime).
use p2p_grpc::rt::block_on;
use p2p_grpc::{BoxStream, Request, Response, Status, Streaming};
use p2p_grpc_interop::p2p::test::{
    self as pb, clock_server, echo_client, echo_server, idle_server, match_client, match_server,
    nested,
};

struct EchoImpl;

fn reply(message: String) -> pb::EchoResponse {
    pb::EchoResponse { message, at: None }
}

#[p2p_grpc::codegen::async_trait]
impl echo_server::Echo for EchoImpl {
    async fn unary_echo(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(Response::new(reply(request.into_inner().message)))
    }

    async fn server_streaming_echo(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<BoxStream<pb::EchoResponse>>, Status> {
        let req = request.into_inner();
        let items = (0..req.count).map(move |i| Ok(reply(format!("{} {i}", req.message))));
        Ok(Response::new(Box::pin(stream::iter(items))))
    }

    async fn client_streaming_echo(
        &self,
        request: Request<Streaming<pb::EchoRequest>>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        let mut inbound = request.into_inner();
        let mut all = Vec::new();
        while let Some(msg) = inbound.next().await {
            all.push(msg?.message);
        }
        Ok(Response::new(reply(all.join(","))))
    }

    async fn bidirectional_streaming_echo(
        &self,
        request: Request<Streaming<pb::EchoRequest>>,
    ) -> Result<Response<BoxStream<pb::EchoResponse>>, Status> {
        let inbound = request.into_inner();
        Ok(Response::new(Box::pin(
            inbound.map(|msg| msg.map(|m| reply(m.message.to_uppercase()))),
        )))
    }
}

struct MatchImpl;

#[p2p_grpc::codegen::async_trait]
impl match_server::Match for MatchImpl {
    async fn r#type(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(Response::new(reply(format!(
            "type {}",
            request.into_inner().message
        ))))
    }
    async fn self_(
        &self,
        _request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(Response::new(reply("self".into())))
    }
    async fn r#async(
        &self,
        _request: Request<Streaming<pb::EchoRequest>>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Err(Status::unimplemented("async"))
    }
    async fn new(
        &self,
        _request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(Response::new(reply("new".into())))
    }
    async fn clone(
        &self,
        _request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(Response::new(reply("clone".into())))
    }
    async fn into_bytes(
        &self,
        _request: Request<Streaming<pb::EchoRequest>>,
    ) -> Result<Response<BoxStream<pb::EchoResponse>>, Status> {
        Ok(Response::new(Box::pin(stream::empty())))
    }
}

struct ClockImpl;

#[p2p_grpc::codegen::async_trait]
impl clock_server::Clock for ClockImpl {
    async fn now(&self, _request: Request<()>) -> Result<Response<prost_types::Timestamp>, Status> {
        Ok(Response::new(prost_types::Timestamp {
            seconds: 1,
            nanos: 2,
        }))
    }
    async fn reset(
        &self,
        _request: Request<prost_types::Timestamp>,
    ) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }
    async fn is_leap(&self, request: Request<u32>) -> Result<Response<bool>, Status> {
        let year = request.into_inner();
        Ok(Response::new(
            year % 4 == 0 && (year % 100 != 0 || year % 400 == 0),
        ))
    }
    async fn ticks(
        &self,
        _request: Request<()>,
    ) -> Result<Response<BoxStream<prost_types::Timestamp>>, Status> {
        Ok(Response::new(Box::pin(stream::empty())))
    }
    async fn old(&self, request: Request<String>) -> Result<Response<String>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

struct Idle;
impl idle_server::Idle for Idle {}

struct NestedImpl;

#[p2p_grpc::codegen::async_trait]
impl nested::nested_service_server::NestedService for NestedImpl {
    async fn dive(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<nested::Deep>, Status> {
        Ok(Response::new(nested::Deep {
            level: 1,
            echo: Some(request.into_inner()),
        }))
    }
    async fn surface(
        &self,
        _request: Request<Streaming<nested::Deep>>,
    ) -> Result<Response<BoxStream<pb::EchoResponse>>, Status> {
        Ok(Response::new(Box::pin(stream::empty())))
    }
}

fn server() -> p2p_grpc::Server {
    p2p_grpc::Server::builder()
        .add_service(echo_server::EchoServer::new(EchoImpl))
        .add_service(match_server::MatchServer::new(MatchImpl))
        .add_service(clock_server::ClockServer::new(ClockImpl))
        .add_service(idle_server::IdleServer::new(Idle))
        .add_service(nested::nested_service_server::NestedServiceServer::new(
            NestedImpl,
        ))
        .build()
        .expect("server builds")
}

fn request(message: &str, count: u32) -> pb::EchoRequest {
    pb::EchoRequest {
        message: message.into(),
        count,
    }
}

#[test]
fn service_names_and_debug() {
    use p2p_grpc::server::Service;
    let svc = echo_server::EchoServer::new(EchoImpl);
    assert_eq!(svc.name(), "p2p.test.Echo");
    assert_eq!(echo_server::SERVICE_NAME, "p2p.test.Echo");
    assert_eq!(match_server::SERVICE_NAME, "p2p.test.Match");
    assert_eq!(
        nested::nested_service_server::SERVICE_NAME,
        "p2p.test.nested.NestedService"
    );
    assert!(format!("{:?}", svc.clone()).contains("EchoServer"));
    let mut names = block_on(async { server() }).service_names();
    names.sort();
    assert_eq!(
        names,
        [
            "p2p.test.Clock",
            "p2p.test.Echo",
            "p2p.test.Idle",
            "p2p.test.Match",
            "p2p.test.nested.NestedService"
        ]
    );
}

#[test]
fn generated_code_works_end_to_end() {
    let (client_io, server_io) = p2p_grpc::io::duplex(64 * 1024);
    block_on(async {
        let server = server();
        let serve = server.serve_connection(server_io);
        let calls = async {
            let channel = p2p_grpc::Channel::connect(client_io)
                .await
                .expect("connect");
            let echo = echo_client::EchoClient::new(channel.clone());

            let one = echo.unary_echo(request("hi", 0)).await.unwrap();
            assert_eq!(one.into_inner().message, "hi");

            let many: Vec<_> = echo
                .server_streaming_echo(request("n", 3))
                .await
                .unwrap()
                .into_inner()
                .map(|m| m.unwrap().message)
                .collect()
                .await;
            assert_eq!(many, ["n 0", "n 1", "n 2"]);

            let joined = echo
                .client_streaming_echo(stream::iter(vec![request("a", 0), request("b", 0)]))
                .await
                .unwrap();
            assert_eq!(joined.into_inner().message, "a,b");

            let upper: Vec<_> = echo
                .bidirectional_streaming_echo(stream::iter(vec![request("x", 0), request("y", 0)]))
                .await
                .unwrap()
                .map(|m| m.unwrap().message)
                .collect()
                .await;
            assert_eq!(upper, ["X", "Y"]);

            let keywords = match_client::MatchClient::new(channel.clone());
            let typed = keywords.r#type(request("t", 0)).await.unwrap();
            assert_eq!(typed.into_inner().message, "type t");
            assert_eq!(
                keywords
                    .self_(request("", 0))
                    .await
                    .unwrap()
                    .into_inner()
                    .message,
                "self"
            );
            assert_eq!(
                keywords
                    .new_rpc(request("", 0))
                    .await
                    .unwrap()
                    .into_inner()
                    .message,
                "new"
            );
            // `clone()` is still `Clone::clone`; the rpc is `clone_rpc`.
            let copy = keywords.clone();
            assert_eq!(
                copy.clone_rpc(request("", 0))
                    .await
                    .unwrap()
                    .into_inner()
                    .message,
                "clone"
            );

            let clock = pb::clock_client::ClockClient::new(channel.clone());
            let now = clock.now(()).await.unwrap().into_inner();
            assert_eq!((now.seconds, now.nanos), (1, 2));
            assert!(clock.is_leap(2000).await.unwrap().into_inner());
            assert!(!clock.is_leap(1900).await.unwrap().into_inner());
            #[allow(deprecated)]
            let old = clock.old("kept".to_string()).await.unwrap();
            assert_eq!(old.into_inner(), "kept");

            let deep = nested::nested_service_client::NestedServiceClient::new(channel.clone())
                .dive(request("d", 0))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(deep.level, 1);
            assert_eq!(deep.echo.unwrap().message, "d");

            // A service without methods answers UNIMPLEMENTED.
            let idle = pb::idle_client::IdleClient::new(channel.clone());
            drop(idle);
            let status = match_client::MatchClient::new(channel)
                .r#async(stream::iter(vec![request("", 0)]))
                .await
                .unwrap_err();
            assert_eq!(status.code(), p2p_grpc::Code::Unimplemented);
        };
        futures::pin_mut!(serve);
        futures::pin_mut!(calls);
        match futures::future::select(serve, calls).await {
            futures::future::Either::Left((result, _)) => panic!("server stopped: {result:?}"),
            futures::future::Either::Right(((), _)) => {}
        }
    });
}
