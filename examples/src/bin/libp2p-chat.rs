//! A bidirectional streaming chat between two libp2p peers (in one process,
//! over the TCP transport): Alice opens a `Talk` stream to Bob; Bob's
//! handler answers each line as it arrives, and both sides print the
//! conversation.
//!
//! ```text
//! cargo run -p p2p-grpc-examples --bin libp2p-chat
//! ```

use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use p2p_grpc::libp2p::{GrpcStream, Node};
use p2p_grpc::{BoxStream, Request, Response, Status, Streaming};
use p2p_grpc_examples::chat::chat_client::ChatClient;
use p2p_grpc_examples::chat::chat_server::{Chat, ChatServer};
use p2p_grpc_examples::chat::Line;

/// Bob: answers every line, naming the peer he is talking to.
struct Bob;

#[p2p_grpc::codegen::async_trait]
impl Chat for Bob {
    async fn talk(
        &self,
        request: Request<Streaming<Line>>,
    ) -> Result<Response<BoxStream<Line>>, Status> {
        let peer = request
            .peer_id()
            .ok_or_else(|| Status::unauthenticated("chat needs a peer"))?;
        let short = peer.to_string()[..12].to_owned();
        let replies = request.into_inner().map(move |line| {
            let line = line?;
            println!("bob   <- {}: {}", line.from, line.text);
            let answer = match line.text.as_str() {
                "hello" => format!("hi {} (peer {short}...)", line.from),
                "how are you?" => "fine, streaming over yamux".to_string(),
                "bye" => "bye!".to_string(),
                other => format!("you said {:?}", other),
            };
            Ok(Line {
                from: "bob".into(),
                text: answer,
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_examples::init_logging();
    p2p_grpc::rt::block_on(async {
        let alice = Node::builder().build()?;
        let bob = Node::builder().build()?;

        let bob_grpc = GrpcStream::new(bob.control())?;
        bob_grpc.register_service(ChatServer::new(Bob));
        let _serving = bob_grpc.serve()?;
        let bob_addr = bob.listen_on("/ip4/127.0.0.1/tcp/0".parse()?).await?;

        let alice_grpc = GrpcStream::new(alice.control())?;
        let bob_peer = alice.dial(bob_addr).await?;
        let client = ChatClient::new(alice_grpc.client(bob_peer));

        // Alice types one line, waits for the answer, then types the next.
        let (mut typing, lines) = mpsc::channel::<Line>(4);
        let mut request = Request::new(lines);
        request.set_timeout(Duration::from_secs(30));
        let say = |text: &str| Line {
            from: "alice".into(),
            text: text.into(),
        };
        typing.send(say("hello")).await?;
        let mut answers = client.talk(request).await?;
        for next in ["how are you?", "bye"] {
            let answer = answers.message().await?.expect("bob answers");
            println!("alice <- {}: {}", answer.from, answer.text);
            println!("alice -> {next}");
            typing.send(say(next)).await?;
        }
        let answer = answers.message().await?.expect("bob answers");
        println!("alice <- {}: {}", answer.from, answer.text);
        drop(typing); // hang up
        assert!(answers.message().await?.is_none());

        alice.shutdown().await;
        bob.shutdown().await;
        Ok(())
    })
}
