//! Target `message_decoder`: the length-prefixed message decoder fed
//! arbitrary chunks, checked against a straightforward reference decoder;
//! then every decoded message through `decode_message` with and without
//! gzip.
//!
//! Input layout (see [`Input`]):
//! - `u16` limit: the max message size (`0xFFFF` = the 4 MiB default);
//! - `u8` mode: bit 0 = decode after every chunk (else only at the end);
//! - `bytes8` split table: chunk sizes used in turn (`s < 0x80`: `s` bytes,
//!   `0` an empty chunk; `s >= 0x80`: `(s & 0x7f) * 64` bytes, large enough
//!   to skip the decoder's small-chunk coalescing); empty table = one chunk;
//! - the rest: the byte stream.

use bytes::{Bytes, BytesMut};
use p2p_grpc::wire::compression::decompress;
use p2p_grpc::wire::framing::{
    decode_message, encode_message, DecodeError, MessageDecoder, RawMessage,
    DEFAULT_MAX_MESSAGE_SIZE, HEADER_LEN,
};
use p2p_grpc::{Code, CompressionEncoding};

use crate::echo::Msg;
use crate::input::{Input, Output};

/// The input for a scenario (used by the seeds).
pub fn encode(max: u16, streaming: bool, splits: &[u8], stream: &[u8]) -> Vec<u8> {
    Output::new()
        .u16(max)
        .u8(streaming as u8)
        .bytes8(splits)
        .raw(stream)
        .finish()
}

/// What the reference decoder makes of the whole stream at once.
struct Reference<'a> {
    messages: Vec<(bool, &'a [u8])>,
    error: Option<DecodeError>,
    /// Bytes left after the last whole message (when no error).
    remaining: usize,
}

fn reference(stream: &[u8], max: usize) -> Reference<'_> {
    let mut messages = Vec::new();
    let mut pos = 0;
    let error = loop {
        let rest = &stream[pos..];
        let Some(&flag) = rest.first() else {
            break None;
        };
        if flag > 1 {
            break Some(DecodeError::InvalidFlag(flag));
        }
        if rest.len() < HEADER_LEN {
            break None;
        }
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        if len as u64 > max as u64 {
            break Some(DecodeError::TooLarge {
                len: len.into(),
                max,
            });
        }
        let len = len as usize;
        if rest.len() - HEADER_LEN < len {
            break None;
        }
        messages.push((flag == 1, &rest[HEADER_LEN..HEADER_LEN + len]));
        pos += HEADER_LEN + len;
    };
    Reference {
        messages,
        error,
        remaining: stream.len() - pos,
    }
}

fn chunk_size(s: u8) -> usize {
    if s < 0x80 {
        s as usize
    } else {
        (s & 0x7f) as usize * 64
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let max = match input.u16() {
        0xFFFF => DEFAULT_MAX_MESSAGE_SIZE,
        n => n as usize,
    };
    let streaming = input.u8() & 1 == 1;
    let splits = input.bytes8();
    let stream = input.rest();

    // Chunk boundaries.
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut pos = 0;
    let mut zeros_in_a_row = 0;
    let mut turn = 0;
    while pos < stream.len() {
        let size = match splits.is_empty() || zeros_in_a_row >= splits.len() {
            true => stream.len() - pos,
            false => chunk_size(splits[turn % splits.len()]),
        };
        turn += 1;
        if size == 0 {
            zeros_in_a_row += 1;
        } else {
            zeros_in_a_row = 0;
        }
        let end = (pos + size).min(stream.len());
        chunks.push(&stream[pos..end]);
        pos = end;
    }

    let mut decoder = MessageDecoder::new(max);
    assert_eq!(decoder.max_message_size(), max);
    let mut pushed = 0usize;
    let mut consumed = 0usize;
    let mut got: Vec<RawMessage> = Vec::new();
    let mut error = None;
    let mut drain = |decoder: &mut MessageDecoder, consumed: &mut usize| -> Option<DecodeError> {
        loop {
            match decoder.decode() {
                Ok(Some(message)) => {
                    assert!(message.data.len() <= max, "message over the limit");
                    *consumed += HEADER_LEN + message.data.len();
                    got.push(message);
                }
                Ok(None) => return None,
                Err(err) => return Some(err),
            }
        }
    };
    for chunk in &chunks {
        decoder.push(Bytes::copy_from_slice(chunk));
        pushed += chunk.len();
        assert_eq!(
            decoder.buffered(),
            pushed - consumed,
            "buffered() after push"
        );
        if streaming {
            error = drain(&mut decoder, &mut consumed);
            assert_eq!(
                decoder.buffered(),
                pushed - consumed,
                "buffered() after decode"
            );
            if error.is_some() {
                break;
            }
        }
    }
    if !streaming {
        error = drain(&mut decoder, &mut consumed);
    }
    assert_eq!(decoder.buffered(), pushed - consumed);

    let expected = reference(stream, max);
    assert_eq!(got.len(), expected.messages.len(), "message count");
    for (raw, (compressed, data)) in got.iter().zip(&expected.messages) {
        assert_eq!(raw.compressed, *compressed);
        assert_eq!(&raw.data[..], *data);
    }
    assert_eq!(error, expected.error, "decode error");
    match &error {
        Some(err) => {
            // Errors stick: the stream cannot be resynchronised.
            let buffered = decoder.buffered();
            assert_eq!(decoder.decode().as_ref(), Err(err));
            assert_eq!(decoder.buffered(), buffered);
            // The statuses they map to.
            let status = p2p_grpc::Status::from(err.clone());
            match err {
                DecodeError::TooLarge { .. } => assert_eq!(status.code(), Code::ResourceExhausted),
                _ => assert_eq!(status.code(), Code::Internal),
            }
        }
        None => {
            assert_eq!(decoder.buffered(), expected.remaining);
            assert_eq!(decoder.decode(), Ok(None));
            match decoder.finish() {
                Ok(()) => assert_eq!(expected.remaining, 0),
                Err(err) => assert_eq!(
                    err,
                    DecodeError::Truncated {
                        buffered: expected.remaining
                    }
                ),
            }
        }
    }

    for raw in got {
        check_decode_message(raw, max);
    }
}

/// `decode_message` on one raw message, plain and with gzip.
fn check_decode_message(raw: RawMessage, max: usize) {
    let plain = decode_message::<Msg>(raw.clone(), None, max);
    let gzip = decode_message::<Msg>(raw.clone(), Some(CompressionEncoding::Gzip), max);
    if !raw.compressed {
        // The encoding matters only for compressed messages.
        assert_eq!(
            plain
                .as_ref()
                .map_err(|s| (s.code(), s.message().to_owned())),
            gzip.as_ref()
                .map_err(|s| (s.code(), s.message().to_owned()))
        );
    } else {
        let err = plain.as_ref().unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        let decompressed = decompress(CompressionEncoding::Gzip, &raw.data, max);
        match &decompressed {
            Ok(bytes) => assert!(bytes.len() <= max, "decompressed past the limit"),
            Err(status) => {
                assert!(matches!(
                    status.code(),
                    Code::Internal | Code::ResourceExhausted
                ));
                // A failed decompression fails decode_message the same way.
                let err = gzip.as_ref().unwrap_err();
                assert_eq!(err.code(), status.code());
            }
        }
    }
    // Whatever decoded re-encodes and decodes to the same message.
    for msg in [plain, gzip].into_iter().flatten() {
        let mut buf = BytesMut::new();
        encode_message(&msg, None, usize::MAX, &mut buf).unwrap();
        let mut decoder = MessageDecoder::new(usize::MAX);
        decoder.push(buf.freeze());
        let again = decoder.decode().unwrap().unwrap();
        decoder.finish().unwrap();
        let back: Msg = decode_message(again, None, usize::MAX).unwrap();
        assert_eq!(back, msg);
    }
}
