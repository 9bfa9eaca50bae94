//! A greeter server on TCP, for `greeter-client` or any gRPC client; over
//! TLS with `--tls CERT KEY`. It serves health checking and server
//! reflection too (`grpcurl -plaintext 127.0.0.1:50051 list`).
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin greeter-server -- 127.0.0.1:50051
//! cargo run -p p2p-grpc-examples --bin greeter-server -- 127.0.0.1:50051 \
//!     --tls interop/certs/server1.pem interop/certs/server1.key
//! ```

use p2p_grpc::tls::{Identity, ServerTlsConfig};
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
        println!(
            "request from {:?} ({:?})",
            request.remote_addr(),
            request.metadata().get("user-agent")
        );
        Ok(Response::new(HelloReply {
            message: format!("Hello {}!", request.into_inner().name),
        }))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args
        .first()
        .filter(|arg| !arg.starts_with("--"))
        .map_or("127.0.0.1:50051", |a| a.as_str())
        .parse()?;
    let mut builder = Server::builder().add_service(GreeterServer::new(MyGreeter));
    if let Some(at) = args.iter().position(|arg| arg == "--tls") {
        let (Some(cert), Some(key)) = (args.get(at + 1), args.get(at + 2)) else {
            return Err("--tls CERT_FILE KEY_FILE".into());
        };
        builder = builder.tls(ServerTlsConfig::new(Identity::from_pem_files(cert, key)?));
    }
    p2p_grpc::rt::block_on(async {
        let server = builder.build()?;
        // grpc.health.v1.Health, for probes: the server and the greeter.
        let health = p2p_grpc::health::HealthReporter::attach(&server);
        health.set_serving("helloworld.Greeter");
        // Server reflection (v1 and v1alpha), for grpcurl and friends.
        p2p_grpc::reflection::Reflection::from_file_descriptor_set(
            p2p_grpc_examples::FILE_DESCRIPTOR_SET,
        )?
        .attach(&server);
        println!("greeter listening on {addr}");
        server.serve(addr).await?;
        Ok(())
    })
}
