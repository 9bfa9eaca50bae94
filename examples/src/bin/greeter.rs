//! The greeter in one process: a server on a free TCP port of 127.0.0.1,
//! a client that calls it, then a graceful shutdown.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin greeter
//! cargo run -p p2p-grpc-examples --bin greeter --no-default-features --features tokio
//! ```

use std::time::Duration;

use p2p_grpc::{Channel, Request, Response, Server, Status};
use p2p_grpc_examples::helloworld::greeter_client::GreeterClient;
use p2p_grpc_examples::helloworld::greeter_server::{Greeter, GreeterServer};
use p2p_grpc_examples::helloworld::{HelloReply, HelloRequest};

struct MyGreeter;

#[p2p_grpc::codegen::async_trait]
impl Greeter for MyGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}!"),
        }))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    p2p_grpc::rt::block_on(async {
        let server = Server::builder()
            .add_service(GreeterServer::new(MyGreeter))
            .build()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let serving = server.clone();
        server.runtime().spawn(Box::pin(async move {
            if let Err(err) = serving.serve_listener(listener).await {
                eprintln!("server failed: {err}");
            }
        }));
        println!("server listening on {addr}");

        let client = GreeterClient::new(Channel::connect_tcp(addr).await?);
        for name in ["world", "p2p-grpc"] {
            let reply = client.say_hello(HelloRequest { name: name.into() }).await?;
            println!("reply: {}", reply.get_ref().message);
        }

        server.shutdown(Duration::from_secs(1)).await;
        println!("server shut down");
        Ok(())
    })
}
