//! Target `yamux_split`: `p2p_grpc::libp2p::SplitLargeFrames`, the reader
//! below rust-yamux that cuts DATA frames over 1 MiB, fed a stream of yamux
//! frames described by the input, read back in chunks of fuzzed sizes, and
//! checked against what the stream meant:
//! - up to the first frame that is not a valid yamux header, the output is
//!   a sequence of valid frames in the same order; DATA frames carry at
//!   most 1 MiB, and each original DATA frame becomes pieces for the same
//!   stream whose bodies join to the original body, with SYN and ACK on the
//!   first piece only and FIN and RST on the last only; other frames pass
//!   unchanged;
//! - from an invalid header on, the bytes pass unchanged.
//!
//! Input layout: `bytes8` read sizes (each `s` reads `s * 97 + 1` bytes;
//! empty: 64 KiB reads), then frames, each `u8` kind (`0..=3` a frame of
//! that type, anything else raw bytes: `bytes8` of them, verbatim), `u16`
//! flags, `u8` stream id, `u16` length code (DATA: `code * 64` body bytes,
//! so up to 4 MiB; other types: the length field itself); a DATA body is a
//! pattern derived from its position, so that a byte out of place shows.

use futures::executor::block_on;
use futures::io::{AsyncReadExt, Cursor};
use p2p_grpc::libp2p::SplitLargeFrames;

use crate::input::{Input, Output};

const HEADER_LEN: usize = 12;
const MAX_PIECE: usize = 1024 * 1024;
const OPENING: u16 = 0x1 | 0x2;
const CLOSING: u16 = 0x4 | 0x8;

/// One frame of the input, as the seeds write it.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A frame of yamux type `kind` (0 DATA, 1 window update, 2 ping, 3 go
    /// away); for DATA, `len_code * 64` body bytes.
    Yamux {
        kind: u8,
        flags: u16,
        stream: u8,
        len_code: u16,
    },
    /// `0xff` (an invalid version byte), then these bytes as they are.
    Raw(Vec<u8>),
}

/// The input for a scenario (used by the seeds).
pub fn encode(reads: &[u8], frames: &[Frame]) -> Vec<u8> {
    let mut out = Output::new();
    out.bytes8(reads);
    for frame in frames {
        match frame {
            Frame::Yamux {
                kind,
                flags,
                stream,
                len_code,
            } => out.u8(*kind).u16(*flags).u8(*stream).u16(*len_code),
            Frame::Raw(bytes) => out.u8(0xff).bytes8(bytes),
        };
    }
    out.finish()
}

fn header(kind: u8, flags: u16, stream: u32, len: u32) -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[1] = kind;
    header[2..4].copy_from_slice(&flags.to_be_bytes());
    header[4..8].copy_from_slice(&stream.to_be_bytes());
    header[8..12].copy_from_slice(&len.to_be_bytes());
    header
}

/// What one parsed frame of the output is.
struct Parsed {
    kind: u8,
    flags: u16,
    stream: u32,
    len: u32,
    body: std::ops::Range<usize>,
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let reads: Vec<usize> = input
        .bytes8()
        .iter()
        .map(|&s| s as usize * 97 + 1)
        .collect();
    // The stream, and what each frame was meant to be.
    let mut stream = Vec::new();
    let mut meant = Vec::new();
    let mut opaque_from = None;
    let mut body_bytes = 0usize;
    while !input.is_empty() && body_bytes < 8 * MAX_PIECE {
        let kind = input.u8();
        if kind > 3 {
            // Raw bytes start with an invalid version byte: from there on
            // nothing is a frame.
            if opaque_from.is_none() {
                opaque_from = Some(stream.len());
            }
            stream.push(0xff);
            stream.extend_from_slice(input.bytes8());
            continue;
        }
        let flags = input.u16();
        let id = u32::from(input.u8());
        let code = input.u16();
        let len = if kind == 0 {
            u32::from(code) * 64
        } else {
            u32::from(code)
        };
        let start = stream.len();
        stream.extend_from_slice(&header(kind, flags, id, len));
        if kind == 0 {
            stream.extend((0..len as usize).map(|i| (start + i) as u8 ^ (i >> 8) as u8));
            body_bytes += len as usize;
        }
        if opaque_from.is_none() {
            meant.push((kind, flags, id, len, start + HEADER_LEN));
        }
    }
    // Read it all through the splitter.
    let output = block_on(async {
        let mut reader = SplitLargeFrames::new(Cursor::new(stream.clone()));
        let mut output = Vec::new();
        let mut buf = vec![0; 64 * 1024 + 1];
        let mut turn = 0;
        loop {
            let want = reads
                .get(turn % reads.len().max(1))
                .copied()
                .unwrap_or(64 * 1024);
            turn += 1;
            let want = want.min(buf.len());
            let n = reader.read(&mut buf[..want]).await.unwrap();
            if n == 0 {
                return output;
            }
            output.extend_from_slice(&buf[..n]);
        }
    });
    // Walk the output along what was meant: each frame as it was, each
    // DATA frame as pieces that join to it.
    let mut pos = 0;
    let mut next = || -> Parsed {
        assert!(pos + HEADER_LEN <= output.len(), "a frame went missing");
        let h = &output[pos..pos + HEADER_LEN];
        assert_eq!(h[0], 0, "version");
        let kind = h[1];
        let flags = u16::from_be_bytes([h[2], h[3]]);
        let stream = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        let body_len = if kind == 0 { len as usize } else { 0 };
        assert!(
            body_len <= MAX_PIECE,
            "a DATA frame of {body_len} bytes came out"
        );
        let body = pos + HEADER_LEN..pos + HEADER_LEN + body_len;
        assert!(body.end <= output.len(), "a body cut short");
        pos = body.end;
        Parsed {
            kind,
            flags,
            stream,
            len,
            body,
        }
    };
    for &(kind, flags, id, len, body_at) in &meant {
        if kind != 0 {
            let frame = next();
            assert_eq!(
                (frame.kind, frame.flags, frame.stream, frame.len),
                (kind, flags, id, len)
            );
            continue;
        }
        let mut joined = Vec::new();
        let mut first = true;
        loop {
            let piece = next();
            assert_eq!((piece.kind, piece.stream), (0, id));
            joined.extend_from_slice(&output[piece.body.clone()]);
            let last = joined.len() >= len as usize;
            let mut expected = flags;
            if !first {
                expected &= !OPENING;
            }
            if !last {
                expected &= !CLOSING;
            }
            assert_eq!(piece.flags, expected, "flags of a piece");
            first = false;
            if last {
                break;
            }
        }
        assert_eq!(
            joined,
            stream[body_at..body_at + len as usize],
            "a body changed"
        );
    }
    let _ = next;
    // What follows the meant frames passes unchanged (nothing, or the bytes
    // from the first one that is not a valid header on).
    let rest_at = opaque_from.unwrap_or(stream.len());
    assert_eq!(output[pos..], stream[rest_at..], "the rest changed");
}
