//! What every contender provides the workloads: a client, an open bidi
//! call, a running server, and the error type.

use std::net::SocketAddr;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// What a workload does with a connection.
pub trait Client: Send + Sync + 'static {
    /// One unary call echoing `payload`.
    fn unary(&self, payload: Bytes) -> BoxFuture<'_, Result<()>>;
    /// A server-streaming call of `size`-byte messages without end: yields
    /// each message's payload length. Dropping the stream cancels the call.
    fn stream(&self, size: u32) -> BoxFuture<'_, Result<BoxStream<'static, Result<usize>>>>;
    /// Opens a bidi ping-pong call.
    fn ping_pong(&self) -> BoxFuture<'_, Result<Box<dyn PingPong>>>;
    /// One `Hold` call: answered once the server's gate opens.
    fn hold(&self, _payload: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Err("Hold is not implemented by this client".into()) })
    }
}

/// An open bidi call: one message out, the echo back.
pub trait PingPong: Send {
    fn round_trip(&mut self, payload: Bytes) -> BoxFuture<'_, Result<()>>;
}

/// A running server; `stop` shuts it down.
pub struct ServerHandle {
    pub addr: SocketAddr,
    stop: Option<BoxFuture<'static, ()>>,
}

impl ServerHandle {
    /// A server that is left running until the process ends.
    pub fn new(addr: SocketAddr) -> ServerHandle {
        ServerHandle { addr, stop: None }
    }

    /// A server that `stop` shuts down by running `stop`.
    pub fn stoppable(addr: SocketAddr, stop: BoxFuture<'static, ()>) -> ServerHandle {
        ServerHandle {
            addr,
            stop: Some(stop),
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.await;
        }
    }
}
