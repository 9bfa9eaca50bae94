//! Round robin over three greeter servers in one process: each reply says
//! which server answered; then one server stops and the calls go on over
//! the two others.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin greeter-balanced
//! # or against servers of your own:
//! cargo run -p p2p-grpc-examples --bin greeter-balanced -- http://10.0.0.1:50051 http://10.0.0.2:50051
//! ```

use std::time::Duration;

use p2p_grpc::client::LoadBalancing;
use p2p_grpc::{Channel, Request, Response, Server, Status};
use p2p_grpc_examples::helloworld::greeter_client::GreeterClient;
use p2p_grpc_examples::helloworld::greeter_server::{Greeter, GreeterServer};
use p2p_grpc_examples::helloworld::{HelloReply, HelloRequest};

struct Numbered(usize);

#[p2p_grpc::codegen::async_trait]
impl Greeter for Numbered {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(HelloReply {
            message: format!(
                "Hello {}, from server {}",
                request.into_inner().name,
                self.0
            ),
        }))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    let given: Vec<String> = std::env::args().skip(1).collect();
    p2p_grpc::rt::block_on(async {
        let mut servers = Vec::new();
        let targets = if given.is_empty() {
            let mut targets = Vec::new();
            for n in 0..3 {
                let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
                targets.push(format!("http://{}", listener.local_addr()?));
                let server = Server::builder()
                    .add_service(GreeterServer::new(Numbered(n)))
                    .build()?;
                let serving = server.clone();
                server.runtime().spawn(Box::pin(async move {
                    let _ = serving.serve_listener(listener).await;
                }));
                servers.push(server);
            }
            targets
        } else {
            given
        };
        let channel = Channel::builder().balance(
            targets.iter().map(String::as_str),
            LoadBalancing::RoundRobin,
        )?;
        let client = GreeterClient::new(channel.clone());
        for round in 0..6 {
            let reply = client
                .say_hello(HelloRequest {
                    name: format!("call {round}"),
                })
                .await?;
            println!("{}", reply.into_inner().message);
        }
        if let Some(server) = servers.first() {
            server.shutdown(Duration::ZERO).await;
            println!("-- server 0 stopped --");
            for round in 6..12 {
                match client
                    .say_hello(HelloRequest {
                        name: format!("call {round}"),
                    })
                    .await
                {
                    Ok(reply) => println!("{}", reply.into_inner().message),
                    Err(status) => println!("call {round} failed: {status:?}"),
                }
            }
        }
        println!("{} endpoints connected", channel.connected_endpoints());
        Ok(())
    })
}
