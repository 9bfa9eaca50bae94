//! What retrying a streaming call needs: the request stream shared between
//! attempts, and a bounded log of the batches already sent, replayed at the
//! start of each new attempt.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::wire::framing::Batch;
use futures::Stream;

/// How many bytes of sent requests a call keeps for a retry (grpc-go's
/// per-call retry buffer). A call that sent more can no longer be retried.
pub(crate) const RETRY_BUFFER_LIMIT: usize = 256 * 1024;

/// A request stream that successive attempts read from in turn: each
/// message is taken once, by the attempt that runs.
pub(crate) struct SharedSource<S> {
    stream: Arc<Mutex<Pin<Box<S>>>>,
}

impl<S> Clone for SharedSource<S> {
    fn clone(&self) -> Self {
        SharedSource {
            stream: self.stream.clone(),
        }
    }
}

impl<S> SharedSource<S> {
    pub(crate) fn new(stream: S) -> Self {
        SharedSource {
            stream: Arc::new(Mutex::new(Box::pin(stream))),
        }
    }
}

impl<S: Stream> Stream for SharedSource<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        // Held only while polling: one attempt reads at a time (the earlier
        // one has stopped before the next starts).
        crate::sync::lock(&self.stream).as_mut().poll_next(cx)
    }
}

/// The encoded batches a call has sent so far, each with whether it ended
/// the request stream, up to [`RETRY_BUFFER_LIMIT`] bytes.
#[derive(Debug, Default)]
pub(crate) struct ReplayLog {
    batches: Vec<(Batch, bool)>,
    bytes: usize,
    overflowed: bool,
}

/// A log shared between a call and its attempts' request pumps.
pub(crate) type SharedLog = Arc<Mutex<ReplayLog>>;

impl ReplayLog {
    /// Notes a batch about to be sent (before it is, so that an attempt
    /// stopped in the middle of sending has it logged).
    pub(crate) fn record(&mut self, batch: &Batch, ended: bool) {
        if self.overflowed {
            return;
        }
        if self.bytes + batch.len() > RETRY_BUFFER_LIMIT {
            self.overflowed = true;
            self.batches = Vec::new();
            return;
        }
        self.bytes += batch.len();
        self.batches.push((batch.clone(), ended));
    }

    /// Whether more was sent than the log keeps: no retry is possible.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The batches to send again, in order.
    pub(crate) fn batches(&self) -> Vec<(Batch, bool)> {
        self.batches.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::StreamExt;

    #[test]
    fn the_log_keeps_batches_until_the_limit_then_nothing() {
        let mut log = ReplayLog::default();
        let half = Bytes::from(vec![0u8; RETRY_BUFFER_LIMIT / 2]);
        log.record(&half.clone().into(), false);
        log.record(&half.into(), false);
        assert!(!log.overflowed());
        assert_eq!(log.batches().len(), 2);
        log.record(&Bytes::from_static(b"x").into(), true);
        assert!(log.overflowed());
        assert!(log.batches().is_empty());
        log.record(&Bytes::from_static(b"y").into(), true);
        assert!(log.batches().is_empty());
    }

    #[test]
    fn each_message_of_a_shared_source_is_taken_once() {
        let source = SharedSource::new(futures::stream::iter(1..=4));
        let mut first = source.clone();
        let mut second = source;
        futures::executor::block_on(async {
            assert_eq!(first.next().await, Some(1));
            assert_eq!(second.next().await, Some(2));
            assert_eq!(first.next().await, Some(3));
            assert_eq!(second.next().await, Some(4));
            assert_eq!(first.next().await, None);
        });
    }
}
