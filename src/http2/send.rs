//! Moving bytes in and out of h2 streams with flow control.
//!
//! Sending reserves capacity first and sends only what the peer's window
//! grants, so a slow reader bounds the sender's memory (h2's `send_data`
//! would otherwise buffer without limit). Receiving releases capacity as
//! chunks are handed to the message decoder, which is pulled only when a
//! message is wanted.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use h2::SendStream;

use crate::wire::framing::{Batch, EncodeBuf};

/// Sends `data` on `stream`, waiting for flow-control capacity as needed, and
/// ends the stream when `end_of_stream` is set.
pub(crate) async fn send_data(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    end_of_stream: bool,
) -> Result<(), h2::Error> {
    if data.is_empty() {
        if end_of_stream {
            stream.send_data(data, true)?;
        }
        return Ok(());
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = match stream.capacity() {
            0 => match poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(granted) => granted?,
                // The stream is gone: the reset reason, if any, comes with
                // the next poll_reset; report it as a closed stream.
                None => return Err(h2::Error::from(h2::Reason::STREAM_CLOSED)),
            },
            available => available,
        };
        if granted == 0 {
            continue;
        }
        let chunk = data.split_to(granted.min(data.len()));
        stream.send_data(chunk, end_of_stream && data.is_empty())?;
    }
    Ok(())
}

/// Sends `batch`'s chunks on `stream` in order with [`send_data`], ending
/// the stream with the last when `end_of_stream` is set.
pub(crate) async fn send_batch(
    stream: &mut SendStream<Bytes>,
    batch: Batch,
    end_of_stream: bool,
) -> Result<(), h2::Error> {
    for (chunk, last) in batch.into_chunks() {
        send_data(stream, chunk, end_of_stream && last).await?;
    }
    Ok(())
}

/// Ready once the peer's windows let `stream` send at least one byte
/// (asking for a [`BATCH`]'s worth).
///
/// A sender waits here before it encodes what it is about to send: a stream
/// whose reader has stopped reading then holds no encoded batch of its own,
/// only the message its producer handed over, and the producer is not asked
/// for the next one. (Thousands of such streams each holding an encoded
/// batch, freed only when the reader went away, left the allocator with
/// fragmented memory it did not give back.) The reservation is only made
/// with a message in hand, so streams that wait for their next message hold
/// no connection window that others could use.
pub(crate) fn poll_window(
    stream: &mut SendStream<Bytes>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), h2::Error>> {
    if stream.capacity() > 0 {
        return Poll::Ready(Ok(()));
    }
    stream.reserve_capacity(BATCH);
    loop {
        if stream.capacity() > 0 {
            return Poll::Ready(Ok(()));
        }
        match ready!(stream.poll_capacity(cx)) {
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Poll::Ready(Err(err)),
            None => return Poll::Ready(Err(h2::Error::from(h2::Reason::STREAM_CLOSED))),
        }
    }
}

/// Ready messages are gathered into one write up to this many bytes: fewer
/// DATA frames and h2 round trips, and a slow reader is not flooded with
/// tiny frames (h2 ends connections that send too many small ones).
pub(crate) const BATCH: usize = 32 * 1024;

/// How filling a batch ended.
#[derive(Debug)]
pub(crate) enum Filled<E> {
    /// The batch is full, or no further message is ready now.
    Ready,
    /// The stream of messages ended.
    Ended,
    /// An item could not be encoded, or was an error: the call ends.
    Failed(E),
}

/// Encodes `first`, then every item `items` has ready without waiting, into
/// `buf`, until it holds [`BATCH`] bytes. `encode` frames one item (or
/// fails the call with it); both roles send their messages this way.
pub(crate) fn fill_batch<S, E>(
    buf: &mut EncodeBuf,
    first: S::Item,
    mut items: Pin<&mut S>,
    mut encode: impl FnMut(&mut EncodeBuf, S::Item) -> Result<(), E>,
) -> Filled<E>
where
    S: Stream,
{
    let mut item = first;
    loop {
        if let Err(err) = encode(buf, item) {
            return Filled::Failed(err);
        }
        if buf.len() >= BATCH {
            return Filled::Ready;
        }
        match items.as_mut().next().now_or_never() {
            Some(Some(next)) => item = next,
            Some(None) => return Filled::Ended,
            None => return Filled::Ready,
        }
    }
}
