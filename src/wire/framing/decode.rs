//! Decoding: DATA frame chunks in, whole messages out.

use std::collections::VecDeque;
use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::HEADER_LEN;
use crate::wire::compression::{decompress, CompressionEncoding};
use crate::wire::status::Status;

/// Chunks smaller than this that arrive while a message is incomplete are
/// copied into one buffer instead of being queued, so that a peer sending
/// many tiny DATA frames cannot make the decoder hold far more memory (chunk
/// handles, and the read buffers they keep alive) than the message size.
const COALESCE_BELOW: usize = 1024;

/// One length-prefixed message as received: the compressed flag and the
/// payload (not yet decompressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Whether the compressed flag was set (payload compressed with the
    /// stream's `grpc-encoding`).
    pub compressed: bool,
    /// The payload.
    pub data: Bytes,
}

/// Why the message stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A header declared a payload longer than the limit.
    TooLarge {
        /// The declared length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a message.
    Truncated {
        /// The bytes left over.
        buffered: usize,
    },
    /// The flag byte was neither 0 nor 1.
    InvalidFlag(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge { len, max } => {
                write!(
                    f,
                    "grpc: received message larger than max ({len} vs. {max})"
                )
            }
            DecodeError::Truncated { buffered } => write!(
                f,
                "grpc: stream ended inside a message ({buffered} bytes left over)"
            ),
            DecodeError::InvalidFlag(flag) => {
                write!(f, "grpc: invalid compressed flag {flag} in message header")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<DecodeError> for Status {
    /// `TooLarge` gives `RESOURCE_EXHAUSTED`; `Truncated` and `InvalidFlag`
    /// give `INTERNAL`.
    fn from(err: DecodeError) -> Status {
        match err {
            DecodeError::TooLarge { .. } => Status::resource_exhausted(err.to_string()),
            DecodeError::Truncated { .. } | DecodeError::InvalidFlag(_) => {
                Status::internal(err.to_string())
            }
        }
    }
}

/// Sans-IO message decoder: push DATA frame chunks in, take whole messages
/// out.
///
/// Buffers across chunks; one chunk may hold several messages. A message that
/// lies inside one chunk is returned without copying (a slice of the chunk).
/// A message spanning chunks is copied once, into an assembly buffer, as its
/// chunks arrive: the chunks (and the transport read buffers behind them) are
/// released at once, and the assembly buffer's memory is used again for the
/// next large message once the previous one has been dropped, so a stream of
/// large messages does not allocate fresh memory for each. The declared length
/// is checked against the limit as soon as a header is complete, before
/// anything is allocated for the payload, and the assembly buffer grows with
/// the bytes that actually arrive (a header alone reserves nothing).
///
/// The kept allocation is as large as the largest spanning message received
/// so far (at most the limit) and lives as long as the decoder, that is, as
/// long as the call.
#[derive(Debug)]
pub struct MessageDecoder {
    /// Received chunks, none empty, followed logically by `tail`; empty
    /// while a message is being assembled.
    chunks: Chunks,
    /// Small chunks received while a message was incomplete, copied together.
    tail: BytesMut,
    /// The message being assembled, if any: its payload so far is
    /// `assembly`.
    partial: Option<Partial>,
    /// Payload bytes of the message being assembled; its allocation is kept
    /// for the next message.
    assembly: BytesMut,
    /// Total bytes in `chunks`, `tail` and `assembly`, plus the header of
    /// the message being assembled.
    buffered: usize,
    max_message_size: usize,
}

/// The queue of received chunks. The first is held in place: a call's
/// message usually comes in one DATA frame, and a `VecDeque` would
/// allocate for it (one allocation per call, `benches/README.md`
/// finding 16).
#[derive(Debug, Default)]
struct Chunks {
    /// `None` only while `rest` is empty too.
    first: Option<Bytes>,
    rest: VecDeque<Bytes>,
}

impl Chunks {
    fn front(&self) -> Option<&Bytes> {
        self.first.as_ref()
    }

    fn front_mut(&mut self) -> Option<&mut Bytes> {
        self.first.as_mut()
    }

    fn push_back(&mut self, chunk: Bytes) {
        match self.first {
            None => self.first = Some(chunk),
            Some(_) => self.rest.push_back(chunk),
        }
    }

    fn push_front(&mut self, chunk: Bytes) {
        if let Some(first) = self.first.replace(chunk) {
            self.rest.push_front(first);
        }
    }

    fn pop_front(&mut self) -> Option<Bytes> {
        let first = self.first.take();
        self.first = self.rest.pop_front();
        first
    }

    fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.first.iter().chain(&self.rest)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.iter().count()
    }
}

/// The header of a message whose payload is still arriving.
#[derive(Debug, Clone, Copy)]
struct Partial {
    compressed: bool,
    len: usize,
}

impl MessageDecoder {
    /// A decoder refusing payloads longer than `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        MessageDecoder {
            chunks: Chunks::default(),
            tail: BytesMut::new(),
            partial: None,
            assembly: BytesMut::new(),
            buffered: 0,
            max_message_size,
        }
    }

    /// Changes the payload size limit.
    pub fn set_max_message_size(&mut self, max: usize) {
        self.max_message_size = max;
    }

    /// The payload size limit.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Adds a chunk (the payload of a DATA frame); empty chunks are ignored.
    pub fn push(&mut self, mut chunk: Bytes) {
        if let Some(partial) = self.partial {
            let k = (partial.len - self.assembly.len()).min(chunk.len());
            self.assemble(&chunk[..k], partial.len);
            chunk.advance(k);
        }
        if chunk.is_empty() {
            return;
        }
        self.buffered += chunk.len();
        if chunk.len() < COALESCE_BELOW && self.buffered > chunk.len() {
            self.tail.extend_from_slice(&chunk);
            return;
        }
        self.flush_tail();
        self.chunks.push_back(chunk);
    }

    /// Moves the tail to the end of the chunk queue.
    fn flush_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    /// The declared payload length of the message being assembled, once its
    /// header is in and its payload is not: what the message will hold.
    pub fn assembling(&self) -> Option<usize> {
        self.partial.map(|partial| partial.len)
    }

    /// Bytes pushed but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// The first buffered byte.
    fn first_byte(&self) -> Option<u8> {
        match self.chunks.front() {
            Some(chunk) => chunk.first().copied(),
            None => self.tail.first().copied(),
        }
    }

    /// Copies the first `out.len()` buffered bytes into `out`; the caller
    /// checks that enough are buffered.
    fn peek(&self, out: &mut [u8]) {
        let mut filled = 0;
        for part in self.chunks.iter().map(|c| &c[..]).chain([&self.tail[..]]) {
            if filled == out.len() {
                break;
            }
            let n = part.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&part[..n]);
            filled += n;
        }
    }

    /// Drops the first `n` buffered bytes (all in `chunks`).
    fn skip(&mut self, mut n: usize) {
        self.buffered -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            let k = front.len().min(n);
            front.advance(k);
            n -= k;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }

    /// Takes the first `n` buffered bytes, without a copy, when the front
    /// chunk holds them all.
    fn take_from_front(&mut self, n: usize) -> Option<Bytes> {
        if n == 0 {
            return Some(Bytes::new());
        }
        let front = self.chunks.front_mut().filter(|front| front.len() >= n)?;
        let data = front.split_to(n);
        if front.is_empty() {
            self.chunks.pop_front();
        }
        self.buffered -= n;
        Some(data)
    }

    /// Appends `bytes` to the payload being assembled (`len` bytes in all),
    /// growing the buffer at most to `len`, and at most to twice what has
    /// arrived, so that a declared length alone reserves nothing.
    fn assemble(&mut self, bytes: &[u8], len: usize) {
        let have = self.assembly.len();
        let needed = have + bytes.len();
        if self.assembly.capacity() < needed {
            let target = needed.max(2 * have).max(4096).min(len);
            if !self.assembly.try_reclaim(target - have) {
                let mut grown = BytesMut::with_capacity(target);
                grown.extend_from_slice(&self.assembly);
                self.assembly = grown;
            }
        }
        self.assembly.extend_from_slice(bytes);
        self.buffered += bytes.len();
    }

    /// Starts assembling a message of `len` payload bytes whose header has
    /// been skipped: the buffered part of its payload (up to `len` bytes;
    /// what follows it stays queued) moves into the assembly buffer.
    fn start_assembly(&mut self, compressed: bool, len: usize) {
        debug_assert!(self.assembly.is_empty());
        // Use the kept allocation again if the previous message is gone.
        if !self.assembly.try_reclaim(len) {
            self.assembly = BytesMut::new();
        }
        self.flush_tail();
        // The header stays counted until the message is returned; `assemble`
        // counts the payload bytes again as it moves them.
        self.buffered += HEADER_LEN;
        while self.assembly.len() < len {
            let Some(mut front) = self.chunks.pop_front() else {
                break;
            };
            let k = (len - self.assembly.len()).min(front.len());
            self.buffered -= k;
            self.assemble(&front[..k], len);
            front.advance(k);
            if !front.is_empty() {
                self.chunks.push_front(front);
            }
        }
        self.partial = Some(Partial { compressed, len });
    }

    /// Returns the next whole message.
    ///
    /// `Ok(None)` when more bytes are needed. `Err(TooLarge)` as soon as a
    /// header declares a length over the limit, `Err(InvalidFlag)` when the
    /// flag byte is neither 0 nor 1; after an error the decoder keeps
    /// returning it (the stream cannot be resynchronised).
    pub fn decode(&mut self) -> Result<Option<RawMessage>, DecodeError> {
        if let Some(partial) = self.partial {
            if self.assembly.len() < partial.len {
                return Ok(None);
            }
            self.partial = None;
            self.buffered -= HEADER_LEN + partial.len;
            return Ok(Some(RawMessage {
                compressed: partial.compressed,
                data: self.assembly.split().freeze(),
            }));
        }
        let Some(flag) = self.first_byte() else {
            return Ok(None);
        };
        if flag > 1 {
            return Err(DecodeError::InvalidFlag(flag));
        }
        if self.buffered < HEADER_LEN {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        self.peek(&mut header);
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let too_large = usize::try_from(len).map_or(true, |len| len > self.max_message_size);
        if too_large {
            return Err(DecodeError::TooLarge {
                len: u64::from(len),
                max: self.max_message_size,
            });
        }
        // `len <= max_message_size`, so it fits in usize.
        let len = len as usize;
        self.flush_tail();
        self.skip(HEADER_LEN);
        if let Some(data) = self.take_from_front(len) {
            return Ok(Some(RawMessage {
                compressed: flag == 1,
                data,
            }));
        }
        // The payload spans chunks: gather it as it comes.
        self.start_assembly(flag == 1, len);
        self.decode()
    }

    /// Call at the end of the stream: `Err(Truncated)` when a partial message
    /// is left.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buffered > 0 {
            Err(DecodeError::Truncated {
                buffered: self.buffered,
            })
        } else {
            Ok(())
        }
    }
}

/// Turns a raw message into a prost message.
///
/// A compressed message needs `encoding` (else `INTERNAL`) and is
/// decompressed with the limit `max_message_size` (`RESOURCE_EXHAUSTED` past
/// it); a prost decode error gives `INTERNAL`.
pub fn decode_message<M: prost::Message + Default>(
    raw: RawMessage,
    encoding: Option<CompressionEncoding>,
    max_message_size: usize,
) -> Result<M, Status> {
    let data = if raw.compressed {
        let Some(encoding) = encoding else {
            return Err(Status::internal("compressed flag set but no grpc-encoding"));
        };
        decompress(encoding, &raw.data, max_message_size)?
    } else {
        raw.data
    };
    M::decode(data).map_err(|e| Status::internal(format!("failed to decode message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::framing::{encode_message, DEFAULT_MAX_MESSAGE_SIZE};
    use crate::wire::status::Code;
    use bytes::BufMut;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Hello {
        #[prost(string, tag = "1")]
        name: String,
    }

    fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn drain(dec: &mut MessageDecoder) -> Vec<RawMessage> {
        let mut out = Vec::new();
        while let Some(m) = dec.decode().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn the_chunk_queue_keeps_its_order_at_either_end() {
        let order = |queue: &Chunks| queue.iter().map(|c| c[0]).collect::<Vec<u8>>();
        let mut queue = Chunks::default();
        assert!(queue.pop_front().is_none() && queue.front().is_none());
        queue.push_front(Bytes::from_static(b"b"));
        for chunk in [b"c", b"d", b"e"] {
            queue.push_back(Bytes::from_static(chunk));
        }
        queue.push_front(Bytes::from_static(b"a"));
        assert_eq!(order(&queue), b"abcde");
        assert_eq!(queue.pop_front().unwrap(), &b"a"[..]);
        assert_eq!(queue.pop_front().unwrap(), &b"b"[..]);
        // A chunk taken from the front and put back (what is left of it)
        // stays ahead of the rest.
        queue.push_front(Bytes::from_static(b"x"));
        assert_eq!(order(&queue), b"xcde");
        assert_eq!(queue.front().unwrap(), &b"x"[..]);
        queue.front_mut().unwrap().truncate(0);
        assert_eq!(queue.len(), 4);
        while queue.pop_front().is_some() {}
        assert!(queue.front().is_none() && queue.len() == 0);
    }
    #[test]
    fn empty_decoder() {
        let mut dec = MessageDecoder::new(10);
        assert_eq!(dec.decode(), Ok(None));
        assert_eq!(dec.buffered(), 0);
        dec.push(Bytes::new());
        assert_eq!(dec.buffered(), 0);
        assert_eq!(dec.finish(), Ok(()));
    }

    #[test]
    fn split_byte_by_byte() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut wire = frame(0, &payload);
        wire.extend(frame(1, b"xy"));
        let mut dec = MessageDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
        let mut got = Vec::new();
        for (i, b) in wire.iter().enumerate() {
            dec.push(Bytes::copy_from_slice(&[*b]));
            got.extend(drain(&mut dec));
            assert!(dec.chunks.len() <= 2, "chunk handles pile up at byte {i}");
        }
        assert_eq!(
            got,
            [
                RawMessage {
                    compressed: false,
                    data: payload.into()
                },
                RawMessage {
                    compressed: true,
                    data: Bytes::from_static(b"xy")
                },
            ]
        );
        assert_eq!(dec.buffered(), 0);
        assert_eq!(dec.finish(), Ok(()));
    }

    #[test]
    fn every_split_point() {
        let mut wire = frame(0, b"hello");
        wire.extend(frame(0, b""));
        wire.extend(frame(0, &[7u8; 2000]));
        for a in 0..=wire.len() {
            for b in [a, (a + 3).min(wire.len()), (a + 1500).min(wire.len())] {
                let mut dec = MessageDecoder::new(5000);
                let mut got = Vec::new();
                for part in [&wire[..a], &wire[a..b], &wire[b..]] {
                    dec.push(Bytes::copy_from_slice(part));
                    got.extend(drain(&mut dec));
                }
                let datas: Vec<_> = got.iter().map(|m| m.data.len()).collect();
                assert_eq!(datas, [5, 0, 2000], "split at {a}, {b}");
                assert_eq!(got[0].data, &b"hello"[..]);
                assert!(got[2].data.iter().all(|&x| x == 7));
                assert_eq!(dec.finish(), Ok(()));
            }
        }
    }

    #[test]
    fn several_messages_in_one_chunk() {
        let mut wire = frame(0, b"one");
        wire.extend(frame(0, b""));
        wire.extend(frame(1, b"three"));
        wire.extend(&frame(0, b"partial")[..6]);
        let mut dec = MessageDecoder::new(100);
        dec.push(Bytes::from(wire));
        let got = drain(&mut dec);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].data, &b"one"[..]);
        assert!(got[1].data.is_empty());
        assert!(!got[1].compressed);
        assert_eq!(got[2].data, &b"three"[..]);
        assert!(got[2].compressed);
        assert_eq!(dec.buffered(), 6);
        assert_eq!(dec.finish(), Err(DecodeError::Truncated { buffered: 6 }));
    }

    #[test]
    fn zero_length_messages() {
        let mut dec = MessageDecoder::new(0);
        let mut wire = frame(0, b"");
        wire.extend(frame(0, b""));
        dec.push(Bytes::from(wire));
        let got = drain(&mut dec);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|m| m.data.is_empty()));
        dec.push(Bytes::from(frame(0, b"x")));
        assert_eq!(dec.decode(), Err(DecodeError::TooLarge { len: 1, max: 0 }));
    }

    #[test]
    fn zero_copy_inside_one_chunk() {
        let mut wire = frame(0, b"first message");
        wire.extend(frame(0, b"second"));
        let chunk = Bytes::from(wire);
        let range = chunk.as_ptr_range();
        let mut dec = MessageDecoder::new(100);
        dec.push(chunk.clone());
        for m in drain(&mut dec) {
            let r = m.data.as_ptr_range();
            assert!(range.start <= r.start && r.end <= range.end);
        }

        // Header at the end of one chunk, payload whole in the next one.
        let big = vec![1u8; 5000];
        let mut dec = MessageDecoder::new(10_000);
        dec.push(Bytes::copy_from_slice(&frame(0, &big)[..5]));
        let payload = Bytes::from(big);
        let range = payload.as_ptr_range();
        dec.push(payload);
        let m = dec.decode().unwrap().unwrap();
        let r = m.data.as_ptr_range();
        assert!(range.start <= r.start && r.end <= range.end);
    }

    #[test]
    fn huge_declared_length_rejected_without_allocating() {
        let mut dec = MessageDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
        dec.push(Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]));
        assert_eq!(
            dec.decode(),
            Err(DecodeError::TooLarge {
                len: u64::from(u32::MAX),
                max: DEFAULT_MAX_MESSAGE_SIZE
            })
        );
        // Nothing was reserved for the payload, anywhere in the decoder.
        assert!(held(&dec) < 1024, "{} bytes held", held(&dec));
        assert_eq!(dec.buffered(), 5);
        // The error sticks.
        assert!(dec.decode().is_err());
        let status = Status::from(dec.decode().unwrap_err());
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "grpc: received message larger than max (4294967295 vs. 4194304)"
        );
    }

    #[test]
    fn limit_is_inclusive_and_adjustable() {
        let mut dec = MessageDecoder::new(3);
        dec.push(Bytes::from(frame(0, b"abc")));
        assert_eq!(dec.decode().unwrap().unwrap().data, &b"abc"[..]);
        dec.push(Bytes::from(frame(0, b"abcd")));
        assert!(matches!(
            dec.decode(),
            Err(DecodeError::TooLarge { len: 4, max: 3 })
        ));
        dec.set_max_message_size(4);
        assert_eq!(dec.max_message_size(), 4);
        assert_eq!(dec.decode().unwrap().unwrap().data, &b"abcd"[..]);
    }

    #[test]
    fn too_large_detected_from_header_alone() {
        let mut dec = MessageDecoder::new(10);
        dec.push(Bytes::from_static(&[0, 0, 0]));
        assert_eq!(dec.decode(), Ok(None));
        dec.push(Bytes::from_static(&[0, 11]));
        assert!(matches!(
            dec.decode(),
            Err(DecodeError::TooLarge { len: 11, .. })
        ));
    }

    #[test]
    fn invalid_flag() {
        let mut dec = MessageDecoder::new(10);
        dec.push(Bytes::from_static(&[2]));
        assert_eq!(dec.decode(), Err(DecodeError::InvalidFlag(2)));
        let status = Status::from(DecodeError::InvalidFlag(2));
        assert_eq!(status.code(), Code::Internal);

        let mut dec = MessageDecoder::new(10);
        dec.push(Bytes::from(frame(0, b"ok")));
        dec.push(Bytes::from(frame(0x80, b"no")));
        assert_eq!(dec.decode().unwrap().unwrap().data, &b"ok"[..]);
        assert_eq!(dec.decode(), Err(DecodeError::InvalidFlag(0x80)));
    }

    #[test]
    fn truncated() {
        let mut dec = MessageDecoder::new(10);
        dec.push(Bytes::from_static(&[0, 0]));
        assert_eq!(dec.decode(), Ok(None));
        let err = dec.finish().unwrap_err();
        assert_eq!(err, DecodeError::Truncated { buffered: 2 });
        assert_eq!(Status::from(err).code(), Code::Internal);
    }

    #[test]
    fn decode_message_plain_and_compressed() {
        let hello = Hello {
            name: "world".repeat(50),
        };
        for compression in [None, Some(CompressionEncoding::Gzip)] {
            let mut buf = BytesMut::new();
            encode_message(&hello, compression, 1000, &mut buf).unwrap();
            let mut dec = MessageDecoder::new(1000);
            dec.push(buf.freeze());
            let raw = dec.decode().unwrap().unwrap();
            assert_eq!(raw.compressed, compression.is_some());
            let back: Hello = decode_message(raw, compression, 1000).unwrap();
            assert_eq!(back, hello);
        }
    }

    #[test]
    fn decode_message_errors() {
        let raw = RawMessage {
            compressed: true,
            data: Bytes::from_static(b"x"),
        };
        let err = decode_message::<Hello>(raw.clone(), None, 100).unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert_eq!(err.message(), "compressed flag set but no grpc-encoding");
        let err = decode_message::<Hello>(raw, Some(CompressionEncoding::Gzip), 100).unwrap_err();
        assert_eq!(err.code(), Code::Internal);

        // Invalid protobuf: field 1 (string) with a length past the end.
        let raw = RawMessage {
            compressed: false,
            data: Bytes::from_static(&[0x0a, 0x05, b'a']),
        };
        let err = decode_message::<Hello>(raw, None, 100).unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert!(err.message().starts_with("failed to decode message: "));

        // Decompressed size past the limit.
        let big = Hello {
            name: "a".repeat(10_000),
        };
        let mut buf = BytesMut::new();
        encode_message(&big, Some(CompressionEncoding::Gzip), 100_000, &mut buf).unwrap();
        let raw = RawMessage {
            compressed: true,
            data: buf.freeze().slice(HEADER_LEN..),
        };
        assert!(raw.data.len() < 1000);
        let err = decode_message::<Hello>(raw, Some(CompressionEncoding::Gzip), 1000).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
    }

    #[test]
    fn uncompressed_message_with_encoding_is_fine() {
        let mut buf = BytesMut::new();
        buf.put_slice(&[0x0a, 0x02, b'h', b'i']);
        let raw = RawMessage {
            compressed: false,
            data: buf.freeze(),
        };
        let m: Hello = decode_message(raw, Some(CompressionEncoding::Gzip), 100).unwrap();
        assert_eq!(m.name, "hi");
    }

    /// Pushes `wire` in chunks of `size` and returns the messages decoded.
    fn push_in_chunks(dec: &mut MessageDecoder, wire: &[u8], size: usize) -> Vec<RawMessage> {
        let mut got = Vec::new();
        for chunk in wire.chunks(size) {
            dec.push(Bytes::copy_from_slice(chunk));
            got.extend(drain(dec));
        }
        got
    }

    #[test]
    fn large_messages_reuse_the_assembly_buffer_once_dropped() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let wire = frame(0, &payload);
        let mut dec = MessageDecoder::new(1 << 20);
        let first = push_in_chunks(&mut dec, &wire, 16 * 1024);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].data, payload);
        let first_ptr = first[0].data.as_ptr();
        drop(first);
        // Were the buffer freed with the message, this allocation of the same
        // size would likely take its place.
        let squatter = vec![1u8; payload.len()];
        let second = push_in_chunks(&mut dec, &wire, 16 * 1024);
        assert_eq!(second[0].data, payload);
        assert_eq!(
            second[0].data.as_ptr(),
            first_ptr,
            "the allocation is used again"
        );
        assert_eq!(squatter[0], 1);
        dec.finish().unwrap();
    }

    #[test]
    fn a_message_still_held_is_never_overwritten() {
        let a = vec![b'a'; 50_000];
        let b = vec![b'b'; 60_000];
        let mut wire = frame(0, &a);
        wire.extend(frame(1, &b));
        wire.extend(frame(0, &a));
        let mut dec = MessageDecoder::new(1 << 20);
        let got = push_in_chunks(&mut dec, &wire, 1000);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].data, a);
        assert_eq!(got[1].data, b);
        assert!(got[1].compressed);
        assert_eq!(got[2].data, a);
        dec.finish().unwrap();
    }

    #[test]
    fn spanning_messages_pushed_before_any_decode() {
        // Found by the message_decoder fuzz target: a spanning message
        // followed by others in the chunks already queued.
        let a = vec![b'a'; 3000];
        let b = vec![b'b'; 2500];
        let mut wire = frame(0, &a);
        wire.extend(frame(1, &b));
        wire.extend(frame(0, b"tail"));
        wire.extend(&frame(0, b"partial")[..7]);
        let mut dec = MessageDecoder::new(1 << 20);
        for chunk in wire.chunks(1500) {
            dec.push(Bytes::copy_from_slice(chunk));
        }
        assert_eq!(dec.buffered(), wire.len());
        let got = drain(&mut dec);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].data, a);
        assert_eq!(got[1].data, b);
        assert!(got[1].compressed);
        assert_eq!(got[2].data, &b"tail"[..]);
        assert_eq!(dec.buffered(), 7);
        assert_eq!(dec.finish(), Err(DecodeError::Truncated { buffered: 7 }));
    }

    /// Every byte the decoder holds memory for: its buffers' capacities and
    /// the queued chunks.
    fn held(dec: &MessageDecoder) -> usize {
        dec.assembly.capacity()
            + dec.tail.capacity()
            + dec.chunks.iter().map(Bytes::len).sum::<usize>()
    }

    #[test]
    fn a_spanning_message_grows_its_buffer_by_doubling_up_to_its_length() {
        // 1 MiB and 20 KiB, in 16 KiB chunks as HTTP/2 DATA frames bring
        // it: past 1 MiB, plain doubling would reserve 2 MiB.
        let len = (1 << 20) + 20 * 1024;
        let mut dec = MessageDecoder::new(4 << 20);
        let mut header = vec![0u8];
        header.extend_from_slice(&(len as u32).to_be_bytes());
        dec.push(Bytes::from(header));
        let payload = vec![9u8; len];
        let mut moves = 0;
        let mut at = None;
        let mut message = None;
        for chunk in payload.chunks(16 * 1024) {
            dec.push(Bytes::copy_from_slice(chunk));
            // As a call's body does: a message is asked for after each chunk.
            if let Some(done) = dec.decode().unwrap() {
                message = Some(done);
                break;
            }
            assert!(
                dec.assembly.capacity() <= len,
                "{} bytes reserved for a message of {len}",
                dec.assembly.capacity()
            );
            assert!(dec.assembly.capacity() <= (2 * dec.assembly.len()).max(4096));
            let now = dec.assembly.as_ptr() as usize;
            if at.replace(now).is_some_and(|before| before != now) {
                moves += 1;
            }
        }
        // Doubling from 16 KiB to 1 MiB moves the buffer a handful of times,
        // not once per chunk (66 chunks).
        assert!(moves <= 8, "the buffer moved {moves} times");
        assert_eq!(message.expect("the whole message").data.len(), len);
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn a_declared_length_alone_reserves_nothing() {
        let mut dec = MessageDecoder::new(4 << 20);
        let mut wire = vec![0u8];
        wire.extend_from_slice(&(4u32 << 20).to_be_bytes());
        wire.extend_from_slice(b"0123456789");
        dec.push(Bytes::from(wire));
        assert_eq!(dec.decode(), Ok(None));
        assert!(
            held(&dec) <= 4096,
            "reserved {} bytes for 10 received",
            held(&dec)
        );
        // Growth follows what arrives, at most doubling it.
        dec.push(Bytes::from(vec![7u8; 100_000]));
        assert_eq!(dec.decode(), Ok(None));
        assert!(held(&dec) <= 2 * 100_010, "{} bytes held", held(&dec));
        assert_eq!(dec.buffered(), HEADER_LEN + 100_010);
        assert_eq!(
            dec.finish(),
            Err(DecodeError::Truncated {
                buffered: HEADER_LEN + 100_010
            })
        );
    }
}
