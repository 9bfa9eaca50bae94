//! Moving bytes in and out of h2 streams with flow control.
//!
//! Sending reserves capacity first and sends only what the peer's window
//! grants, so a slow reader bounds the sender's memory (h2's `send_data`
//! would otherwise buffer without limit). Receiving releases capacity as
//! chunks are handed to the message decoder, which is pulled only when a
//! message is wanted.

use std::future::poll_fn;

use bytes::Bytes;
use h2::SendStream;

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
