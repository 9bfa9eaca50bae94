//! The HTTP/2 handshake of either role, under a time limit.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use crate::error::Error;
use crate::rt::SharedRuntime;
use crate::sync::SignalWait;

/// Runs `handshake` (`what`: the HTTP/2 or TLS one) unless `limit` passes
/// first (a timeout error) or `abort` fires (a shutdown error).
pub(crate) async fn limited<T>(
    handshake: impl Future<Output = Result<T, Error>>,
    runtime: &SharedRuntime,
    limit: Duration,
    mut abort: Option<&mut SignalWait>,
    what: &'static str,
) -> Result<T, Error> {
    let mut handshake = pin!(handshake);
    let mut timer = runtime.sleep(limit);
    poll_fn(|cx| {
        if let Poll::Ready(result) = handshake.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(Error::timeout(what)));
        }
        if let Some(abort) = abort.as_mut() {
            if Pin::new(&mut **abort).poll(cx).is_ready() {
                return Poll::Ready(Err(Error::shutdown()));
            }
        }
        Poll::Pending
    })
    .await
}
