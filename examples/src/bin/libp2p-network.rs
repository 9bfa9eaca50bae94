//! A small libp2p network in one process, over TCP, showing how callers
//! find and reach gRPC servers they have no address for:
//!
//! 1. a hub node (the DHT's bootstrap peer, and a circuit relay);
//! 2. three greeter providers that join through the hub and announce the
//!    gRPC protocol in the DHT;
//! 3. a caller that knows only the hub: it finds the providers in the DHT
//!    and spreads calls over them, each reply naming the peer that served;
//! 4. a greeter with no listener of its own, reachable only through the
//!    hub's relay;
//! 5. a greeter listening on WebSocket.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin libp2p-network
//! ```

use p2p_grpc::client::LoadBalancing;
use p2p_grpc::libp2p::libp2p::multiaddr::Protocol;
use p2p_grpc::libp2p::libp2p::Multiaddr;
use p2p_grpc::libp2p::{GrpcStream, Node, DEFAULT_PROTOCOL};
use p2p_grpc::{Request, Response, Status};
use p2p_grpc_examples::helloworld::greeter_client::GreeterClient;
use p2p_grpc_examples::helloworld::greeter_server::{Greeter, GreeterServer};
use p2p_grpc_examples::helloworld::{HelloReply, HelloRequest};

/// Greets, saying which server answered.
struct Named(&'static str);

#[p2p_grpc::codegen::async_trait]
impl Greeter for Named {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(HelloReply {
            message: format!("hello {} from {}", request.into_inner().name, self.0),
        }))
    }
}

/// A node serving the greeter as `name`.
fn greeter(node: &Node, name: &'static str) -> Result<GrpcStream, Box<dyn std::error::Error>> {
    let grpc = GrpcStream::builder()
        .add_service(GreeterServer::new(Named(name)))
        .build(node.control())?;
    grpc.serve()?;
    Ok(grpc)
}

fn tcp() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().expect("a valid address")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    p2p_grpc::rt::block_on(async {
        // 1. The hub.
        let hub = Node::builder().relay_server(Default::default()).build()?;
        let hub_addr = hub.listen_on(tcp()).await?;
        hub.add_external_address(hub_addr.clone());
        println!("hub {} at {hub_addr}", hub.peer_id());

        // 2. Three providers.
        let mut providers = Vec::new();
        for name in ["provider-1", "provider-2", "provider-3"] {
            let node = Node::builder().bootstrap_peer(hub_addr.clone()).build()?;
            let grpc = greeter(&node, name)?;
            node.listen_on(tcp()).await?;
            node.bootstrap().await?;
            node.provide(DEFAULT_PROTOCOL).await?;
            println!(
                "{name} is {} and provides {DEFAULT_PROTOCOL}",
                node.peer_id()
            );
            providers.push((name, node, grpc));
        }

        // 3. The caller finds them in the DHT and balances over them.
        let caller = Node::builder().bootstrap_peer(hub_addr.clone()).build()?;
        caller.bootstrap().await?;
        let found = caller.find_providers(DEFAULT_PROTOCOL).await?;
        println!(
            "the DHT knows {} providers of {DEFAULT_PROTOCOL}",
            found.len()
        );
        let calls = GrpcStream::builder()
            .discovery(&caller)
            .build(caller.control())?;
        let client = GreeterClient::new(calls.balanced_client(found, LoadBalancing::RoundRobin)?);
        for i in 0..6 {
            let reply = client
                .say_hello(HelloRequest {
                    name: format!("call {i}"),
                })
                .await?;
            let served_by = reply.peer_id().expect("a libp2p call");
            let name = providers
                .iter()
                .find(|(_, node, _)| node.peer_id() == served_by)
                .map_or("?", |(name, _, _)| *name);
            println!(
                "  balanced: {:?} (served by {name})",
                reply.get_ref().message
            );
        }

        // 4. Behind a relay: no listener, only a reservation on the hub.
        let hidden = Node::builder().build()?;
        let _hidden_grpc = greeter(&hidden, "hidden")?;
        let hidden_addr = hidden
            .listen_on(hub_addr.clone().with(Protocol::P2pCircuit))
            .await?;
        println!("hidden greeter reachable at {hidden_addr}");
        caller.dial(hidden_addr).await?;
        let reply = GreeterClient::new(calls.client(hidden.peer_id()))
            .say_hello(HelloRequest {
                name: "through the relay".into(),
            })
            .await?;
        println!("  relayed: {:?}", reply.get_ref().message);

        // 5. WebSocket.
        let web = Node::builder().build()?;
        let _web_grpc = greeter(&web, "websocket")?;
        let web_addr = web.listen_on("/ip4/127.0.0.1/tcp/0/ws".parse()?).await?;
        caller.add_address(web.peer_id(), web_addr.clone());
        let reply = GreeterClient::new(calls.client(web.peer_id()))
            .say_hello(HelloRequest {
                name: "over WebSocket".into(),
            })
            .await?;
        println!("  websocket ({web_addr}): {:?}", reply.get_ref().message);

        for node in [&caller, &hidden, &web, &hub] {
            node.shutdown().await;
        }
        for (_, node, _) in &providers {
            node.shutdown().await;
        }
        println!("network shut down");
        Ok(())
    })
}
