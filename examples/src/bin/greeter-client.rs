//! Calls a greeter server over TCP, or over TLS with `--tls`; with
//! `--token TOKEN`, an interceptor adds `authorization: Bearer TOKEN` to
//! every call.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin greeter-client -- 127.0.0.1:50051 Alice
//! cargo run -p p2p-grpc-examples --bin greeter-client -- 127.0.0.1:50051 Alice --token s3cret
//! # TLS, trusting a CA file and checking the certificate for a name:
//! cargo run -p p2p-grpc-examples --bin greeter-client -- 127.0.0.1:50051 Alice \
//!     --tls interop/certs/ca.pem foo.test.google.fr
//! ```

use std::time::Duration;

use p2p_grpc::client::{CallStart, Interceptor};
use p2p_grpc::tls::{Certificate, ClientTlsConfig};
use p2p_grpc::{Channel, Request, Status};
use p2p_grpc_examples::helloworld::greeter_client::GreeterClient;
use p2p_grpc_examples::helloworld::HelloRequest;

/// Adds the bearer token to every call. A real one would fetch and refresh
/// it here, asynchronously, before each call that needs it.
struct BearerToken(String);

impl Interceptor for BearerToken {
    async fn on_start(&self, call: &mut CallStart) -> Result<(), Status> {
        call.metadata_mut()
            .insert("authorization", &format!("Bearer {}", self.0))
            .map_err(|err| Status::invalid_argument(format!("token: {err}")))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let token = match args.iter().position(|arg| arg == "--token") {
        Some(at) => {
            let Some(token) = args.get(at + 1).cloned() else {
                return Err("--token TOKEN".into());
            };
            args.drain(at..at + 2);
            Some(token)
        }
        None => None,
    };
    let (plain, tls) = match args.iter().position(|arg| arg == "--tls") {
        Some(at) => (&args[..at], Some(&args[at + 1..])),
        None => (&args[..], None),
    };
    let addr = plain
        .first()
        .map_or("127.0.0.1:50051", |a| a.as_str())
        .parse()?;
    let name = plain.get(1).cloned().unwrap_or_else(|| "world".into());
    let mut builder = Channel::builder();
    if let Some(tls) = tls {
        let Some(ca) = tls.first() else {
            return Err("--tls CA_FILE [SERVER_NAME]".into());
        };
        let mut config = ClientTlsConfig::new().ca_certificates(Certificate::from_pem_file(ca)?);
        if let Some(server_name) = tls.get(1) {
            config = config.server_name(server_name);
        }
        builder = builder.tls(config);
    }
    p2p_grpc::rt::block_on(async {
        let mut channel = builder.connect_tcp(addr).await?;
        if let Some(token) = token {
            channel = channel.with_interceptor(BearerToken(token));
        }
        let client = GreeterClient::new(channel);
        let mut request = Request::new(HelloRequest { name });
        request.set_timeout(Duration::from_secs(5));
        let reply = client.say_hello(request).await?;
        println!("{}", reply.into_inner().message);
        Ok(())
    })
}
