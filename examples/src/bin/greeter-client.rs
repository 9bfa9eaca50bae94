//! Calls a greeter server over TCP.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin greeter-client -- 127.0.0.1:50051 Alice
//! ```

use std::time::Duration;

use p2p_grpc::{Channel, Request};
use p2p_grpc_examples::helloworld::greeter_client::GreeterClient;
use p2p_grpc_examples::helloworld::HelloRequest;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:50051".into())
        .parse()?;
    let name = args.next().unwrap_or_else(|| "world".into());
    p2p_grpc::rt::block_on(async {
        let client = GreeterClient::new(Channel::connect_tcp(addr).await?);
        let mut request = Request::new(HelloRequest { name });
        request.set_timeout(Duration::from_secs(5));
        let reply = client.say_hello(request).await?;
        println!("{}", reply.into_inner().message);
        Ok(())
    })
}
