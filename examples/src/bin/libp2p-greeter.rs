//! A greeter between two processes over libp2p (TCP + noise + yamux).
//!
//! ```text
//! # terminal 1: listens and prints its full multiaddr
//! cargo run -p p2p-grpc-examples --bin libp2p-greeter -- listen
//! # terminal 2: dials that address and calls SayHello
//! cargo run -p p2p-grpc-examples --bin libp2p-greeter -- dial /ip4/127.0.0.1/tcp/PORT/p2p/PEER_ID
//! ```

use p2p_grpc::libp2p::libp2p::Multiaddr;
use p2p_grpc::libp2p::{GrpcStream, Node};
use p2p_grpc::{Request, Response, Status};
use p2p_grpc_examples::helloworld::greeter_client::GreeterClient;
use p2p_grpc_examples::helloworld::greeter_server::{Greeter, GreeterServer};
use p2p_grpc_examples::helloworld::{HelloReply, HelloRequest};

struct PeerGreeter;

#[p2p_grpc::codegen::async_trait]
impl Greeter for PeerGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let peer = request
            .peer_id()
            .ok_or_else(|| Status::unauthenticated("no peer"))?;
        println!("SayHello from peer {peer}");
        Ok(Response::new(HelloReply {
            message: format!("Hello {}, peer {peer}!", request.into_inner().name),
        }))
    }
}

fn usage() -> ! {
    eprintln!("usage: libp2p-greeter listen [MULTIADDR] | dial MULTIADDR [NAME]");
    std::process::exit(2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    p2p_grpc::rt::block_on(async {
        let node = Node::builder().build()?;
        let grpc = GrpcStream::new(node.control())?;
        match args.first().map(String::as_str) {
            Some("listen") => {
                let on: Multiaddr = args
                    .get(1)
                    .map(|addr| addr.parse())
                    .transpose()?
                    .unwrap_or_else(|| "/ip4/127.0.0.1/tcp/0".parse().unwrap());
                grpc.register_service(GreeterServer::new(PeerGreeter));
                let _serving = grpc.serve()?;
                let addr = node.listen_on(on).await?;
                println!("listening on {addr}");
                println!(
                    "now run: cargo run -p p2p-grpc-examples --bin libp2p-greeter -- dial {addr}"
                );
                futures::future::pending::<()>().await;
                Ok(())
            }
            Some("dial") => {
                let addr: Multiaddr = args.get(1).unwrap_or_else(|| usage()).parse()?;
                let name = args.get(2).cloned().unwrap_or_else(|| "world".into());
                let peer = node.dial(addr).await?;
                let client = GreeterClient::new(grpc.client(peer));
                let reply = client.say_hello(HelloRequest { name }).await?;
                println!("{}", reply.into_inner().message);
                node.shutdown().await;
                Ok(())
            }
            _ => usage(),
        }
    })
}
