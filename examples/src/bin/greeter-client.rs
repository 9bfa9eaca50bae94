//! Calls a greeter server over TCP, or over TLS with `--tls`.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin greeter-client -- 127.0.0.1:50051 Alice
//! # TLS, trusting a CA file and checking the certificate for a name:
//! cargo run -p p2p-grpc-examples --bin greeter-client -- 127.0.0.1:50051 Alice \
//!     --tls interop/certs/ca.pem foo.test.google.fr
//! ```

use std::time::Duration;

use p2p_grpc::tls::{Certificate, ClientTlsConfig};
use p2p_grpc::{Channel, Request};
use p2p_grpc_examples::helloworld::greeter_client::GreeterClient;
use p2p_grpc_examples::helloworld::HelloRequest;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
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
        let client = GreeterClient::new(builder.connect_tcp(addr).await?);
        let mut request = Request::new(HelloRequest { name });
        request.set_timeout(Duration::from_secs(5));
        let reply = client.say_hello(request).await?;
        println!("{}", reply.into_inner().message);
        Ok(())
    })
}
