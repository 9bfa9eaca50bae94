//! HTTP/2 keepalive: a PING every interval, and the connection given up when
//! no PONG comes back in time. This is how a peer that vanished without
//! closing anything (a cut cable, a frozen process) is detected instead of
//! leaving calls hanging.

use std::future::poll_fn;
use std::time::Duration;

use futures::future::{select, Either};

use crate::rt::SharedRuntime;
use crate::Error;

/// When to ping and how long to wait for the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeepAlive {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

/// Pings the peer forever; returns the reason the connection must be dropped
/// (no PONG in time, or the connection failed).
pub(crate) async fn run(
    mut ping_pong: h2::PingPong,
    runtime: SharedRuntime,
    keepalive: KeepAlive,
) -> Error {
    loop {
        runtime.sleep(keepalive.interval).await;
        if let Err(err) = ping_pong.send_ping(h2::Ping::opaque()) {
            return err.into();
        }
        let pong = poll_fn(|cx| ping_pong.poll_pong(cx));
        match select(std::pin::pin!(pong), runtime.sleep(keepalive.timeout)).await {
            Either::Left((Ok(_), _)) => {}
            Either::Left((Err(err), _)) => return err.into(),
            Either::Right(_) => {
                tracing::debug!(?keepalive, "no PONG in time: peer presumed gone");
                return Error::timeout("keepalive: no PING answer");
            }
        }
    }
}
