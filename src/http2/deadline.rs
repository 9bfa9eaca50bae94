//! Deadlines: the one race of a call against its timer, and the one status
//! a passed deadline gives.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::{Context, Poll};

use crate::rt::Sleep;
use crate::wire::status::Status;

/// The status of a call whose deadline passed (client or server side:
/// never `CANCELLED`).
pub(crate) fn exceeded() -> Status {
    Status::deadline_exceeded("deadline exceeded")
}

/// Whether `deadline` (if any) has passed; registers `cx` to be woken when
/// it does.
pub(crate) fn passed(deadline: &mut Option<Sleep>, cx: &mut Context<'_>) -> bool {
    deadline
        .as_mut()
        .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready())
}

/// Runs `call` unless the deadline passes first (then `DEADLINE_EXCEEDED`,
/// and `call` is dropped). The timer stays usable for the rest of the call.
pub(crate) async fn race<T>(
    deadline: &mut Option<Sleep>,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let mut call = pin!(call);
    poll_fn(|cx| {
        if let Poll::Ready(result) = call.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        if passed(deadline, cx) {
            return Poll::Ready(Err(exceeded()));
        }
        Poll::Pending
    })
    .await
}
