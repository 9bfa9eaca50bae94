//! A greeter server on TCP, for `greeter-client` or any gRPC client.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin greeter-server -- 127.0.0.1:50051
//! ```

use p2p_grpc::{Request, Response, Server, Status};
use p2p_grpc_examples::helloworld::greeter_server::{Greeter, GreeterServer};
use p2p_grpc_examples::helloworld::{HelloReply, HelloRequest};

struct MyGreeter;

#[p2p_grpc::codegen::async_trait]
impl Greeter for MyGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        println!("request from {:?}", request.metadata().get("user-agent"));
        Ok(Response::new(HelloReply {
            message: format!("Hello {}!", request.into_inner().name),
        }))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50051".into())
        .parse()?;
    p2p_grpc::rt::block_on(async {
        let server = Server::builder()
            .add_service(GreeterServer::new(MyGreeter))
            .build()?;
        println!("greeter listening on {addr}");
        server.serve(addr).await?;
        Ok(())
    })
}
