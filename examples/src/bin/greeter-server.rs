//! A greeter server on TCP, for `greeter-client` or any gRPC client; over
//! TLS with `--tls CERT KEY`. It serves health checking and server
//! reflection too (`grpcurl -plaintext 127.0.0.1:50051 list`). With
//! `--token TOKEN`, greeter calls need `authorization: Bearer TOKEN` (an
//! interceptor checks it; health and reflection stay open to probes and
//! tools). Every call is logged by the `Tracing` interceptor: run it with
//! `RUST_LOG=info` to see one line per call. With `--metrics`, the
//! `Metrics` interceptor records gRPC's OpenTelemetry metrics too, to a
//! recorder that logs them (`RUST_LOG=info`). `--plain` leaves every
//! interceptor out.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin greeter-server -- 127.0.0.1:50051
//! cargo run -p p2p-grpc-examples --bin greeter-server -- 127.0.0.1:50051 --token s3cret
//! RUST_LOG=info cargo run -p p2p-grpc-examples --bin greeter-server -- 127.0.0.1:50051 --metrics
//! cargo run -p p2p-grpc-examples --bin greeter-server -- 127.0.0.1:50051 \
//!     --tls interop/certs/server1.pem interop/certs/server1.key
//! ```

use p2p_grpc::interceptors::{Metrics, Tracing};
use p2p_grpc::server::{CallStart, Interceptor};
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
        tracing::info!(
            from = ?request.remote_addr(),
            user_agent = ?request.metadata().get("user-agent"),
            "greeting"
        );
        Ok(Response::new(HelloReply {
            message: format!("Hello {}!", request.into_inner().name),
        }))
    }
}

/// Refuses greeter calls without the bearer token.
struct RequireToken(String);

impl Interceptor for RequireToken {
    async fn on_start(&self, call: &mut CallStart) -> Result<(), Status> {
        let info = call.info();
        if info.service() != "helloworld.Greeter" {
            return Ok(());
        }
        let expected = format!("Bearer {}", self.0);
        match info.metadata().get("authorization") {
            Some(token) if token == expected => Ok(()),
            Some(_) => Err(Status::unauthenticated("wrong token")),
            None => Err(Status::unauthenticated("this server wants a bearer token")),
        }
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
    // `--plain`: no interceptor at all, to measure what they cost.
    if !args.iter().any(|arg| arg == "--plain") {
        builder = builder.interceptor(Tracing::new());
    }
    if args.iter().any(|arg| arg == "--metrics") {
        p2p_grpc_examples::log_metrics();
        builder = builder.interceptor(Metrics::new());
    }
    if let Some(at) = args.iter().position(|arg| arg == "--token") {
        let Some(token) = args.get(at + 1) else {
            return Err("--token TOKEN".into());
        };
        builder = builder.interceptor(RequireToken(token.clone()));
    }
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
