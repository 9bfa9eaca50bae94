//! Encoding: one message into a 5-byte header and its payload.

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::HEADER_LEN;
use crate::wire::compression::{compress, CompressionEncoding};
use crate::wire::status::Status;

/// Appends one framed message (5-byte header and payload) to `buf`.
///
/// Without compression the message is encoded straight into `buf` after the
/// header (no intermediate copy). With compression the encoded bytes are
/// compressed into `buf` and the compressed flag is set.
///
/// Gives `RESOURCE_EXHAUSTED` when the (possibly compressed) payload is
/// longer than `max_message_size` (or than `u32::MAX`), and `INTERNAL` if
/// encoding or compressing fails; `buf` is left unchanged on error.
pub fn encode_message<M: prost::Message>(
    msg: &M,
    compression: Option<CompressionEncoding>,
    max_message_size: usize,
    buf: &mut BytesMut,
) -> Result<(), Status> {
    encode_into(msg, compression, max_message_size, buf, None)
}

/// [`encode_message`], with large owned byte fields moved to `spliced`
/// instead of copied (see [`Splicing`]) when `spliced` is given.
fn encode_into<M: prost::Message>(
    msg: &M,
    compression: Option<CompressionEncoding>,
    max_message_size: usize,
    buf: &mut BytesMut,
    spliced: Option<&mut Vec<Bytes>>,
) -> Result<(), Status> {
    let start = buf.len();
    match compression {
        None => {
            let len = msg.encoded_len();
            check_len(len, max_message_size)?;
            // The whole message's room, spliced fields included: room never
            // written is never touched, so it costs address space only.
            buf.reserve(HEADER_LEN + len);
            buf.put_u8(0);
            // `check_len` made sure it fits in u32.
            buf.put_u32(len as u32);
            let encoded = match spliced {
                Some(parts) => msg.encode(&mut Splicing { buf, parts }),
                None => msg.encode(buf),
            };
            if let Err(e) = encoded {
                // prost fails before it writes anything (the room check), so
                // nothing of this message was spliced out: `start` still
                // indexes `buf`.
                buf.truncate(start);
                return Err(Status::internal(format!("failed to encode message: {e}")));
            }
        }
        Some(encoding) => {
            let encoded = msg.encode_to_vec();
            buf.reserve(HEADER_LEN + encoded.len() / 2 + 32);
            buf.put_bytes(0, HEADER_LEN);
            if let Err(e) = compress(encoding, &encoded, buf) {
                buf.truncate(start);
                return Err(Status::internal(format!("failed to compress message: {e}")));
            }
            let len = buf.len() - start - HEADER_LEN;
            if let Err(status) = check_len(len, max_message_size) {
                buf.truncate(start);
                return Err(status);
            }
            buf[start] = 1;
            buf[start + 1..start + HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        }
    }
    Ok(())
}

/// An owned byte field at least this long is sent from its own memory
/// instead of being copied into the batch: one DATA frame more (the bytes
/// before it), against a copy of 64 KiB or more.
const SPLICE_AT: usize = 64 * 1024;

/// A batch's buffer as prost writes into it, keeping large byte fields out
/// of it: prost hands a `bytes::Bytes` field to [`BufMut::put`], and a
/// `Bytes` gives itself away without a copy (`copy_to_bytes` is a
/// `split_to`). A field of [`SPLICE_AT`] bytes or more ends the buffer's
/// current chunk (pushed to `parts`) and becomes a chunk of its own; the
/// message goes on in the buffer. A `Vec<u8>` field (a `&[u8]` to `put`)
/// is copied once either way, into a chunk of its own.
struct Splicing<'a> {
    buf: &'a mut BytesMut,
    parts: &'a mut Vec<Bytes>,
}

// SAFETY: `BufMut` is unsafe to implement because callers write through
// `chunk_mut` and then claim the bytes with `advance_mut`, trusting that
// the two describe the same memory. Both forward to the one `BytesMut`,
// unchanged, so they hold `BytesMut`'s own guarantees; `remaining_mut`
// forwards too. The other methods write only through `BytesMut`'s safe
// API, or push whole `Bytes` to `parts`, never touching `buf`'s memory.
#[allow(unsafe_code)]
unsafe impl BufMut for Splicing<'_> {
    fn remaining_mut(&self) -> usize {
        self.buf.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise (`cnt` bytes of `chunk_mut`, which
        // is `buf`'s, are initialised) is the one `BytesMut` needs.
        unsafe { self.buf.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.buf.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        self.buf.put_slice(src);
    }

    fn put_u8(&mut self, n: u8) {
        self.buf.put_u8(n);
    }

    fn put<T: Buf>(&mut self, mut src: T) {
        let len = src.remaining();
        if len < SPLICE_AT {
            self.buf.put(src);
            return;
        }
        if !self.buf.is_empty() {
            self.parts.push(self.buf.split().freeze());
        }
        self.parts.push(src.copy_to_bytes(len));
    }
}

/// A batch of framed messages as it leaves: the send buffer's bytes, in
/// one chunk, or in several with large byte fields between them (see
/// [`Splicing`]). Sent chunk after chunk, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Batch {
    /// The chunks before the last, in order.
    first: Vec<Bytes>,
    last: Bytes,
}

impl Batch {
    /// Bytes in the batch.
    pub(crate) fn len(&self) -> usize {
        self.first.iter().map(Bytes::len).sum::<usize>() + self.last.len()
    }

    /// The chunks, in order, each with whether it is the last.
    pub(crate) fn into_chunks(self) -> impl Iterator<Item = (Bytes, bool)> {
        let first = self.first.into_iter().map(|chunk| (chunk, false));
        first.chain(std::iter::once((self.last, true)))
    }

    /// The batch with each chunk replaced by `f`'s answer for it (told
    /// whether it is the last).
    pub(crate) fn map(self, mut f: impl FnMut(Bytes, bool) -> Bytes) -> Batch {
        let first = if self.first.is_empty() {
            self.first
        } else {
            self.first
                .into_iter()
                .map(|chunk| f(chunk, false))
                .collect()
        };
        Batch {
            first,
            last: f(self.last, true),
        }
    }
}

#[cfg(test)]
impl Batch {
    /// The batch's one chunk (it must have only one).
    fn single(self) -> Bytes {
        assert!(self.first.is_empty(), "{} chunks", self.first.len() + 1);
        self.last
    }
}

impl From<Bytes> for Batch {
    fn from(last: Bytes) -> Self {
        Batch {
            first: Vec::new(),
            last,
        }
    }
}

/// The largest batch whose memory a send buffer keeps for the next ones
/// (a stream of 1 MiB messages still reuses its two buffers).
const KEEP_AT_MOST: usize = 2 * 1024 * 1024;

/// The send buffer of one stream: messages are framed into it (several per
/// batch) and taken out as one chunk per batch.
///
/// A chunk stays alive in the HTTP/2 send queue until it is written out, so
/// a buffer cannot use its memory again for the next batch at once. Two
/// allocations are kept, and a batch goes into whichever the transport is
/// done with: a stream of large messages then does not allocate (and fault
/// in) fresh memory for every message.
#[derive(Debug, Default)]
pub(crate) struct EncodeBuf {
    current: BytesMut,
    /// The batch's chunks before `current`'s bytes (see [`Splicing`]).
    spliced: Vec<Bytes>,
    spare: BytesMut,
    /// The length of the last batch taken: what the next one likely needs
    /// (a hint only; encoding reserves what it really needs).
    last: usize,
    /// Messages in the batch.
    messages: u64,
}

impl EncodeBuf {
    /// Appends one framed message to the batch; see [`encode_message`].
    pub(crate) fn encode<M: prost::Message>(
        &mut self,
        msg: &M,
        compression: Option<CompressionEncoding>,
        max_message_size: usize,
    ) -> Result<(), Status> {
        if self.is_empty() {
            self.pick(self.last);
            if self.is_fresh() && self.current.capacity() == 0 && compression.is_none() {
                // Nothing allocated yet: exactly the first message's room
                // (`reserve` rounds a small one up to 8 bytes), so that a
                // batch of it alone freezes whole in `take`.
                self.current = BytesMut::with_capacity(HEADER_LEN + msg.encoded_len());
            }
        }
        encode_into(
            msg,
            compression,
            max_message_size,
            &mut self.current,
            Some(&mut self.spliced),
        )?;
        self.messages += 1;
        Ok(())
    }

    /// Whether no batch was taken yet (or the last was too large to keep)
    /// and no allocation is kept but `current`'s.
    fn is_fresh(&self) -> bool {
        self.last == 0 && self.spare.capacity() == 0
    }

    /// Makes `current` a buffer with room for `needed` bytes without a new
    /// allocation, if either kept allocation is free again (a freed one is
    /// reclaimed whole, whatever `needed` is).
    fn pick(&mut self, needed: usize) {
        if self.current.try_reclaim(needed) {
            return;
        }
        if self.spare.try_reclaim(needed) {
            std::mem::swap(&mut self.current, &mut self.spare);
        }
    }

    /// Bytes in the batch.
    pub(crate) fn len(&self) -> usize {
        self.spliced.iter().map(Bytes::len).sum::<usize>() + self.current.len()
    }

    /// Whether the batch is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.spliced.is_empty() && self.current.is_empty()
    }

    /// Messages in the batch.
    pub(crate) fn messages(&self) -> u64 {
        self.messages
    }

    /// Takes the batch out.
    pub(crate) fn take(&mut self) -> Batch {
        let first = std::mem::take(&mut self.spliced);
        if first.is_empty() && self.is_fresh() && self.current.len() == self.current.capacity() {
            // The first batch, in a buffer it fills exactly (a unary call's
            // one message): given away whole, it needs no shared header, an
            // allocation less (finding 16). The next batch allocates anew.
            let batch = std::mem::take(&mut self.current).freeze();
            self.last = batch.len();
            self.messages = 0;
            return batch.into();
        }
        let mut batch = Batch {
            first,
            last: self.current.split().freeze(),
        };
        if batch.last.is_empty() {
            // The batch ended with a spliced field: no empty chunk to send.
            if let Some(last) = batch.first.pop() {
                batch.last = last;
            }
        }
        self.last = batch.len();
        self.messages = 0;
        if self.last > KEEP_AT_MOST {
            // Not kept for reuse: a call that once sent a message this large
            // would hold two such buffers for as long as it runs. The batch
            // frees the memory once it is written out.
            self.current = BytesMut::new();
            self.last = 0;
        }
        // The next batch goes to the other allocation, which has had longer
        // to be written out.
        std::mem::swap(&mut self.current, &mut self.spare);
        batch
    }
}

fn check_len(len: usize, max: usize) -> Result<(), Status> {
    if len > max || u32::try_from(len).is_err() {
        return Err(Status::resource_exhausted(format!(
            "message larger than max ({len} vs. {max})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::compression::decompress;
    use crate::wire::framing::{MessageDecoder, DEFAULT_MAX_MESSAGE_SIZE};
    use crate::wire::status::Code;
    use prost::Message as _;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Hello {
        #[prost(string, tag = "1")]
        name: String,
    }

    #[test]
    fn plain_layout() {
        let hello = Hello { name: "hi".into() };
        let mut buf = BytesMut::from(&b"keep"[..]);
        encode_message(&hello, None, DEFAULT_MAX_MESSAGE_SIZE, &mut buf).unwrap();
        assert_eq!(&buf[..], b"keep\x00\x00\x00\x00\x04\x0a\x02hi");
    }

    #[test]
    fn empty_message() {
        let mut buf = BytesMut::new();
        encode_message(&Hello::default(), None, 0, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 0, 0]);
    }

    #[test]
    fn compressed_layout() {
        let hello = Hello {
            name: "abc".repeat(100),
        };
        let mut buf = BytesMut::from(&b"x"[..]);
        encode_message(
            &hello,
            Some(CompressionEncoding::Gzip),
            DEFAULT_MAX_MESSAGE_SIZE,
            &mut buf,
        )
        .unwrap();
        assert_eq!(buf[1], 1);
        let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
        assert_eq!(buf.len(), 1 + HEADER_LEN + len);
        assert!(len < hello.encoded_len());
        let plain = decompress(CompressionEncoding::Gzip, &buf[6..], 1000).unwrap();
        assert_eq!(Hello::decode(plain).unwrap(), hello);
    }

    #[test]
    fn too_large_leaves_buf_unchanged() {
        let hello = Hello {
            name: "x".repeat(100),
        };
        let mut buf = BytesMut::from(&b"keep"[..]);
        let err = encode_message(&hello, None, 50, &mut buf).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(err.message(), "message larger than max (102 vs. 50)");
        assert_eq!(&buf[..], b"keep");

        // Incompressible data stays too large after compression.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let noisy = Hello {
            name: (0..400)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from(b'!' + (state % 90) as u8)
                })
                .collect(),
        };
        let err =
            encode_message(&noisy, Some(CompressionEncoding::Gzip), 100, &mut buf).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(&buf[..], b"keep");
    }

    #[test]
    fn compression_can_make_a_message_fit() {
        let hello = Hello {
            name: "a".repeat(1000),
        };
        let mut buf = BytesMut::new();
        assert!(encode_message(&hello, None, 100, &mut buf).is_err());
        encode_message(&hello, Some(CompressionEncoding::Gzip), 100, &mut buf).unwrap();
        assert!(buf.len() <= HEADER_LEN + 100);
    }

    #[test]
    fn round_trip_through_decoder() {
        let msgs: Vec<Hello> = (0..20)
            .map(|i| Hello {
                name: "n".repeat(i * 37),
            })
            .collect();
        let mut buf = BytesMut::new();
        for (i, m) in msgs.iter().enumerate() {
            let c = (i % 2 == 1).then_some(CompressionEncoding::Gzip);
            encode_message(m, c, DEFAULT_MAX_MESSAGE_SIZE, &mut buf).unwrap();
        }
        let wire = buf.freeze();
        let mut dec = MessageDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
        let mut got = Vec::new();
        for chunk in wire.chunks(7) {
            dec.push(bytes::Bytes::copy_from_slice(chunk));
            while let Some(raw) = dec.decode().unwrap() {
                let m: Hello = crate::wire::framing::decode_message(
                    raw,
                    Some(CompressionEncoding::Gzip),
                    DEFAULT_MAX_MESSAGE_SIZE,
                )
                .unwrap();
                got.push(m);
            }
        }
        dec.finish().unwrap();
        assert_eq!(got, msgs);
    }

    #[test]
    fn encode_buf_uses_memory_the_transport_is_done_with() {
        let big = Hello {
            name: "x".repeat(200_000),
        };
        let mut buf = EncodeBuf::default();
        // The first batch fills its buffer exactly: it is given away whole
        // (no shared header to allocate), and nothing of it is kept.
        buf.encode(&big, None, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        let given = buf.take().single();
        assert!(given.is_unique());
        let given_len = given.len();
        drop(given);
        assert!(!buf.current.try_reclaim(given_len) && !buf.spare.try_reclaim(given_len));
        // So is one empty message, in a buffer made to its size (5 bytes,
        // where `reserve` would have made 8).
        let mut empty = EncodeBuf::default();
        empty
            .encode(&Hello::default(), None, DEFAULT_MAX_MESSAGE_SIZE)
            .unwrap();
        let given = empty.take().single();
        assert_eq!(&given[..], &[0, 0, 0, 0, 0]);
        assert!(given.is_unique());
        drop(given);
        assert!(!empty.current.try_reclaim(HEADER_LEN) && !empty.spare.try_reclaim(HEADER_LEN));
        // From the second batch on, the allocations are kept.
        buf.encode(&big, None, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        let first = buf.take().single();
        // The first kept batch is still queued: the next goes elsewhere.
        buf.encode(&big, None, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        let second = buf.take().single();
        assert_ne!(first.as_ptr(), second.as_ptr());
        let first_ptr = first.as_ptr();
        let len = first.len();
        drop(first);
        // Were the memory freed with the batch, this would likely take it.
        let squatter = vec![1u8; len];
        buf.encode(&big, None, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        let third = buf.take().single();
        assert_eq!(third.as_ptr(), first_ptr);
        assert_eq!(third, second, "the batch still queued is untouched");
        assert_eq!(squatter[0], 1);
        // The batch due for reuse (the second) is still queued, the other
        // (the third) is free: the free one is used.
        drop(third);
        buf.encode(&big, None, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        assert!(!buf.is_empty());
        let fourth = buf.take().single();
        assert_eq!(fourth.as_ptr(), first_ptr);
        assert_eq!(fourth, second);
        // Several small messages make one batch.
        for _ in 0..3 {
            buf.encode(&Hello { name: "hi".into() }, None, 100).unwrap();
        }
        assert_eq!(buf.len(), 3 * (HEADER_LEN + 4));
        assert_eq!(
            &buf.take().single()[..HEADER_LEN + 4],
            b"\x00\x00\x00\x00\x04\x0a\x02hi"
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn encode_buf_does_not_keep_a_very_large_batch() {
        let huge = Hello {
            name: "x".repeat(KEEP_AT_MOST + 1),
        };
        let mut buf = EncodeBuf::default();
        buf.encode(&huge, None, usize::MAX).unwrap();
        let batch = buf.take().single();
        // Only the batch refers to the memory now: it goes when the batch does.
        assert!(batch.is_unique());
        assert_eq!(buf.current.capacity() + buf.spare.capacity(), 0);
        // A batch of exactly the limit is kept (a name of `KEEP_AT_MOST - 9`
        // bytes encodes to `KEEP_AT_MOST - 5`, and the prefix is 5), and so
        // is one of a 1 MiB message.
        let exactly = Hello {
            name: "x".repeat(KEEP_AT_MOST - 9),
        };
        buf.encode(&exactly, None, usize::MAX).unwrap();
        assert_eq!(buf.len(), KEEP_AT_MOST);
        assert!(!buf.take().single().is_unique());
        for len in [KEEP_AT_MOST - 16, 1024 * 1024 + 100] {
            let big = Hello {
                name: "x".repeat(len),
            };
            buf.encode(&big, None, usize::MAX).unwrap();
            let batch = buf.take().single();
            assert!(!batch.is_unique(), "{len}");
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct Blob {
        #[prost(bytes = "bytes", tag = "1")]
        data: Bytes,
        #[prost(string, tag = "2")]
        name: String,
        #[prost(bytes = "bytes", tag = "3")]
        more: Bytes,
        #[prost(bytes = "vec", tag = "4")]
        vec: Vec<u8>,
    }

    fn filled(len: usize, byte: u8) -> Bytes {
        Bytes::from(vec![byte; len])
    }

    /// What the copying path makes of `messages`: one buffer.
    fn copied(messages: &[Blob]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for message in messages {
            encode_message(message, None, usize::MAX, &mut buf).unwrap();
        }
        buf.to_vec()
    }

    /// `messages` in one batch, as chunks.
    fn batch_of(messages: &[Blob]) -> Vec<Bytes> {
        let mut buf = EncodeBuf::default();
        for message in messages {
            buf.encode(message, None, usize::MAX).unwrap();
        }
        let len = buf.len();
        let chunks: Vec<Bytes> = buf.take().into_chunks().map(|(chunk, _)| chunk).collect();
        assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), len);
        assert_eq!(chunks.concat(), copied(messages), "the same bytes");
        chunks
    }

    #[test]
    fn a_large_bytes_field_is_sent_from_its_own_memory() {
        let blob = Blob {
            data: filled(SPLICE_AT, 1),
            name: "tail".into(),
            ..Blob::default()
        };
        let chunks = batch_of(std::slice::from_ref(&blob));
        // Header, tag and length; the field itself; the rest.
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].len(), HEADER_LEN + 1 + 3);
        assert_eq!(chunks[1].as_ptr(), blob.data.as_ptr(), "not copied");
        assert_eq!(&chunks[2][..], b"\x12\x04tail");
        // The chunks decode back to the message.
        let mut decoder = MessageDecoder::new(usize::MAX);
        for chunk in chunks {
            decoder.push(chunk);
        }
        let raw = decoder.decode().unwrap().expect("a whole message");
        let back: Blob =
            crate::wire::framing::decode_message(raw, None, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        assert_eq!(back, blob);
    }

    #[test]
    fn a_field_under_the_threshold_is_copied() {
        let blob = Blob {
            data: filled(SPLICE_AT - 1, 1),
            ..Blob::default()
        };
        let chunks = batch_of(&[blob]);
        assert_eq!(chunks.len(), 1);
    }

    #[test]
    fn a_batch_ending_with_a_spliced_field_has_no_empty_chunk() {
        let small = Blob {
            name: "first".into(),
            ..Blob::default()
        };
        let big = Blob {
            data: filled(SPLICE_AT, 2),
            ..Blob::default()
        };
        let chunks = batch_of(&[small.clone(), big.clone()]);
        // The small message with the big one's header, then the field.
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].as_ptr(), big.data.as_ptr());
        // A message after it in the same batch goes on in the buffer.
        let chunks = batch_of(&[big.clone(), small.clone(), big.clone(), small]);
        assert_eq!(chunks.len(), 5);
        assert_eq!(chunks[1].as_ptr(), big.data.as_ptr());
        assert_eq!(chunks[3].as_ptr(), big.data.as_ptr());
        assert!(chunks.iter().all(|chunk| !chunk.is_empty()));
    }

    #[test]
    fn two_large_fields_of_one_message_are_both_spliced() {
        let blob = Blob {
            data: filled(SPLICE_AT, 3),
            name: "between".into(),
            more: filled(2 * SPLICE_AT, 4),
            ..Blob::default()
        };
        let chunks = batch_of(std::slice::from_ref(&blob));
        assert_eq!(chunks.len(), 4);
        assert_eq!(chunks[1].as_ptr(), blob.data.as_ptr());
        assert_eq!(chunks[3].as_ptr(), blob.more.as_ptr());
    }

    #[test]
    fn a_large_vec_field_is_copied_once_into_a_chunk_of_its_own() {
        let blob = Blob {
            vec: vec![5; SPLICE_AT],
            ..Blob::default()
        };
        let chunks = batch_of(std::slice::from_ref(&blob));
        assert_eq!(chunks.len(), 2);
        assert_eq!(&chunks[1][..], &blob.vec[..]);
        assert_ne!(chunks[1].as_ptr(), blob.vec.as_ptr());
    }

    #[test]
    fn compressed_messages_are_not_spliced() {
        let blob = Blob {
            data: filled(SPLICE_AT, 6),
            ..Blob::default()
        };
        let mut buf = EncodeBuf::default();
        buf.encode(&blob, Some(CompressionEncoding::Gzip), usize::MAX)
            .unwrap();
        let batch = buf.take().single();
        assert_eq!(batch[0], 1, "compressed");
    }

    #[test]
    fn mapped_chunks_keep_their_order_and_last_mark() {
        let blob = Blob {
            data: filled(SPLICE_AT, 7),
            name: "x".into(),
            ..Blob::default()
        };
        let mut buf = EncodeBuf::default();
        buf.encode(&blob, None, usize::MAX).unwrap();
        let batch = buf.take();
        let chunks: Vec<(usize, bool)> = batch
            .clone()
            .into_chunks()
            .map(|(chunk, last)| (chunk.len(), last))
            .collect();
        assert_eq!(chunks.len(), 3);
        let mut seen = Vec::new();
        let mapped = batch.map(|chunk, last| {
            seen.push((chunk.len(), last));
            chunk.slice(1..)
        });
        // `f` sees each chunk in order, told which is the last ...
        assert_eq!(seen, chunks);
        // ... and its answers keep that order and mark.
        let marks: Vec<(usize, bool)> = mapped
            .into_chunks()
            .map(|(chunk, last)| (chunk.len(), last))
            .collect();
        let expected: Vec<(usize, bool)> =
            chunks.iter().map(|&(len, last)| (len - 1, last)).collect();
        assert_eq!(marks, expected);
    }
}
