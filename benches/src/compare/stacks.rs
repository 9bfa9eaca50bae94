//! The gRPC stacks under test, behind one client trait: p2p-grpc, tonic,
//! and (in `bare_h2`) hand-framed messages on bare h2.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, SinkExt, StreamExt};
use p2p_grpc::rt::SharedRuntime;
use p2p_grpc_bench::{pb, tonic_pb, Gate, P2pBench, TonicBench};

use crate::bare_h2;

pub use crate::contender::{BoxError, Client, PingPong, Result, ServerHandle};

/// Which implementation serves and calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    P2p,
    Tonic,
    BareH2,
}

impl Stack {
    pub fn id(self) -> &'static str {
        match self {
            Stack::P2p => "p2p",
            Stack::Tonic => "tonic",
            Stack::BareH2 => "h2",
        }
    }

    pub fn from_id(id: &str) -> Option<Stack> {
        [Stack::P2p, Stack::Tonic, Stack::BareH2]
            .into_iter()
            .find(|stack| stack.id() == id)
    }
}

/// Starts `stack`'s server on a free loopback port. Call from inside the
/// executor `rt` spawns on (tonic needs the tokio context).
pub async fn serve(
    stack: Stack,
    rt: SharedRuntime,
    gate: Arc<Gate>,
    max_concurrent_streams: u32,
) -> Result<ServerHandle> {
    match stack {
        Stack::P2p => {
            let server = p2p_grpc::Server::builder()
                .runtime(rt.clone())
                .max_concurrent_streams(Some(max_concurrent_streams))
                .add_service(pb::bench_server::BenchServer::new(P2pBench { gate }))
                .build()?;
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let serving = server.clone();
            rt.spawn(Box::pin(async move {
                if let Err(err) = serving.serve_listener(listener).await {
                    eprintln!("p2p-grpc server failed: {err}");
                }
            }));
            Ok(ServerHandle::stoppable(
                addr,
                Box::pin(async move {
                    server.shutdown(Duration::from_millis(200)).await;
                }),
            ))
        }
        Stack::Tonic => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
            let (done_tx, done_rx) = futures::channel::oneshot::channel::<()>();
            let router = tonic::transport::Server::builder()
                .max_concurrent_streams(max_concurrent_streams)
                .add_service(tonic_pb::bench_server::BenchServer::new(TonicBench {
                    gate,
                }));
            rt.spawn(Box::pin(async move {
                if let Err(err) = router
                    .serve_with_incoming_shutdown(incoming, stop_rx.map(|_| ()))
                    .await
                {
                    eprintln!("tonic server failed: {err}");
                }
                let _ = done_tx.send(());
            }));
            Ok(ServerHandle::stoppable(
                addr,
                Box::pin(async move {
                    let _ = stop_tx.send(());
                    let _ = done_rx.await;
                }),
            ))
        }
        Stack::BareH2 => bare_h2::serve(rt).await,
    }
}

/// Opens one connection to `addr` with `stack`'s client.
pub async fn connect(stack: Stack, rt: SharedRuntime, addr: SocketAddr) -> Result<Arc<dyn Client>> {
    Ok(match stack {
        Stack::P2p => {
            let channel = p2p_grpc::Channel::builder()
                .runtime(rt)
                .connect_tcp(addr)
                .await?;
            Arc::new(P2pClient(pb::bench_client::BenchClient::new(channel)))
        }
        Stack::Tonic => {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await?;
            Arc::new(TonicClient(tonic_pb::bench_client::BenchClient::new(
                channel,
            )))
        }
        Stack::BareH2 => bare_h2::connect(rt, addr).await?,
    })
}

/// A p2p-grpc client on one channel.
pub struct P2pClient(pub pb::bench_client::BenchClient);

impl Client for P2pClient {
    fn hold(&self, payload: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.0.hold(pb::Payload { payload }).await?;
            Ok(())
        })
    }

    fn unary(&self, payload: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let reply = self.0.unary(pb::Payload { payload }).await?;
            debug_assert!(!reply.get_ref().payload.is_empty());
            Ok(())
        })
    }

    fn stream(&self, size: u32) -> BoxFuture<'_, Result<BoxStream<'static, Result<usize>>>> {
        Box::pin(async move {
            let response = self
                .0
                .server_stream(pb::StreamRequest { count: 0, size })
                .await?;
            Ok(response
                .into_inner()
                .map(|item| item.map(|m| m.payload.len()).map_err(BoxError::from))
                .boxed())
        })
    }

    fn ping_pong(&self) -> BoxFuture<'_, Result<Box<dyn PingPong>>> {
        Box::pin(async move {
            let (tx, rx) = mpsc::channel::<pb::Payload>(1);
            let rx = self.0.ping_pong(rx).await?;
            Ok(Box::new(P2pPingPong { tx, rx }) as Box<dyn PingPong>)
        })
    }
}

struct P2pPingPong {
    tx: mpsc::Sender<pb::Payload>,
    rx: p2p_grpc::Streaming<pb::Payload>,
}

impl PingPong for P2pPingPong {
    fn round_trip(&mut self, payload: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.tx.send(pb::Payload { payload }).await?;
            match self.rx.message().await? {
                Some(_) => Ok(()),
                None => Err("ping-pong ended".into()),
            }
        })
    }
}

/// A tonic client on one channel.
pub struct TonicClient(pub tonic_pb::bench_client::BenchClient<tonic::transport::Channel>);

impl Client for TonicClient {
    fn hold(&self, payload: Bytes) -> BoxFuture<'_, Result<()>> {
        let mut client = self.0.clone();
        Box::pin(async move {
            client.hold(tonic_pb::Payload { payload }).await?;
            Ok(())
        })
    }

    fn unary(&self, payload: Bytes) -> BoxFuture<'_, Result<()>> {
        // Cloning a tonic client is how concurrent calls share a channel.
        let mut client = self.0.clone();
        Box::pin(async move {
            client.unary(tonic_pb::Payload { payload }).await?;
            Ok(())
        })
    }

    fn stream(&self, size: u32) -> BoxFuture<'_, Result<BoxStream<'static, Result<usize>>>> {
        let mut client = self.0.clone();
        Box::pin(async move {
            let response = client
                .server_stream(tonic_pb::StreamRequest { count: 0, size })
                .await?;
            Ok(response
                .into_inner()
                .map(|item| item.map(|m| m.payload.len()).map_err(BoxError::from))
                .boxed())
        })
    }

    fn ping_pong(&self) -> BoxFuture<'_, Result<Box<dyn PingPong>>> {
        let mut client = self.0.clone();
        Box::pin(async move {
            let (tx, rx) = mpsc::channel::<tonic_pb::Payload>(1);
            let response = client.ping_pong(rx).await?;
            Ok(Box::new(TonicPingPong {
                tx,
                rx: response.into_inner(),
            }) as Box<dyn PingPong>)
        })
    }
}

struct TonicPingPong {
    tx: mpsc::Sender<tonic_pb::Payload>,
    rx: tonic::Streaming<tonic_pb::Payload>,
}

impl PingPong for TonicPingPong {
    fn round_trip(&mut self, payload: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.tx.send(tonic_pb::Payload { payload }).await?;
            match self.rx.message().await? {
                Some(_) => Ok(()),
                None => Err("ping-pong ended".into()),
            }
        })
    }
}
