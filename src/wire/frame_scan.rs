//! A sans-IO scanner of an HTTP/2 byte stream: it follows frame boundaries
//! in bytes as they are read or written and reports each frame's header,
//! with the payload of the few control frames whose content matters here
//! (GOAWAY). It never buffers a payload it does not report, so it costs a
//! few comparisons per frame whatever the frames carry.
//!
//! h2 handles PING and GOAWAY itself and shows neither to its user: the
//! keepalive enforcement of the server (counting the client's PINGs) and the
//! client's reaction to a `too_many_pings` GOAWAY are built on this scanner
//! instead, in the IO adapter between h2 and the byte stream.

use std::cell::Cell;
use std::ops::ControlFlow;

/// The length of a frame header.
pub(crate) const FRAME_HEAD: usize = 9;

/// The 24 bytes a client sends before its first frame.
pub(crate) const CLIENT_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113, section 6).
pub(crate) const DATA: u8 = 0x0;
/// HEADERS.
pub(crate) const HEADERS: u8 = 0x1;
/// PING.
pub(crate) const PING: u8 = 0x6;
/// GOAWAY.
pub(crate) const GOAWAY: u8 = 0x7;
/// The ACK flag of PING and SETTINGS.
pub(crate) const FLAG_ACK: u8 = 0x1;

/// How much of a GOAWAY payload is kept: the last stream id, the error code
/// and the start of the debug data.
const GOAWAY_CAPTURE: usize = 8 + 64;

/// The 9-byte header of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHead {
    pub(crate) len: u32,
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) stream: u32,
}

impl FrameHead {
    fn parse(bytes: &[u8; FRAME_HEAD]) -> Self {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *bytes;
        FrameHead {
            len: u32::from_be_bytes([0, l0, l1, l2]),
            kind,
            flags,
            stream: u32::from_be_bytes([s0, s1, s2, s3]) & 0x7fff_ffff,
        }
    }
}

/// What the scanner reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A frame's header, as soon as it is complete (any type but GOAWAY).
    Head(FrameHead),
    /// A whole GOAWAY frame.
    GoAway {
        last_stream: u32,
        code: u32,
        /// The start of the debug data (at most 64 bytes).
        debug: Vec<u8>,
    },
}

#[derive(Debug)]
enum State {
    /// Skipping what is left of the client preface.
    Preface(usize),
    /// Gathering a frame header.
    Head { buf: [u8; 9], have: usize },
    /// Inside a payload: `left` bytes to go.
    Payload {
        left: usize,
        capture: Option<Vec<u8>>,
    },
}

/// Follows the frames of one direction of an HTTP/2 connection.
#[derive(Debug)]
pub(crate) struct FrameScanner {
    state: State,
}

impl FrameScanner {
    /// For bytes a server reads: the client preface comes first.
    pub(crate) fn after_preface() -> Self {
        FrameScanner {
            state: State::Preface(CLIENT_PREFACE.len()),
        }
    }

    /// For a stream of frames with no preface (what a server writes, what a
    /// client reads).
    pub(crate) fn frames() -> Self {
        FrameScanner {
            state: State::Head {
                buf: [0; 9],
                have: 0,
            },
        }
    }

    /// Whether the bytes so far end on a frame boundary.
    pub(crate) fn at_boundary(&self) -> bool {
        matches!(self.state, State::Head { have: 0, .. })
    }

    /// Scans `bytes`, the next bytes of the stream, calling `on_frame` for
    /// each frame reported.
    pub(crate) fn scan(&mut self, bytes: &[u8], mut on_frame: impl FnMut(Frame)) {
        let _ = self.scan_until(bytes, |frame| {
            on_frame(frame);
            ControlFlow::Continue(())
        });
    }

    /// Scans `bytes` as [`scan`](Self::scan) does, until `on_frame` breaks.
    /// Then returns how many of `bytes` were scanned: those up to the end
    /// of the reported frame's header (of the whole frame, for a GOAWAY).
    /// The scanner is left there, and should not be fed more.
    pub(crate) fn scan_until(
        &mut self,
        bytes: &[u8],
        mut on_frame: impl FnMut(Frame) -> ControlFlow<()>,
    ) -> Option<usize> {
        let total = bytes.len();
        let mut bytes = bytes;
        let stop = Cell::new(false);
        let mut report = |frame| {
            if !stop.get() {
                stop.set(on_frame(frame).is_break());
            }
        };
        while !bytes.is_empty() {
            match &mut self.state {
                State::Preface(left) => {
                    let n = (*left).min(bytes.len());
                    bytes = &bytes[n..];
                    *left -= n;
                    if *left == 0 {
                        self.state = State::Head {
                            buf: [0; 9],
                            have: 0,
                        };
                    }
                }
                State::Head { buf, have } => {
                    let head = match bytes.first_chunk::<FRAME_HEAD>() {
                        // The usual case: a whole header here, read in place.
                        Some(whole) if *have == 0 => {
                            bytes = &bytes[FRAME_HEAD..];
                            FrameHead::parse(whole)
                        }
                        _ => {
                            let n = (FRAME_HEAD - *have).min(bytes.len());
                            buf[*have..*have + n].copy_from_slice(&bytes[..n]);
                            *have += n;
                            bytes = &bytes[n..];
                            if *have < FRAME_HEAD {
                                continue;
                            }
                            FrameHead::parse(buf)
                        }
                    };
                    let capture = (head.kind == GOAWAY).then(Vec::new);
                    if capture.is_none() {
                        report(Frame::Head(head));
                    }
                    self.state = State::Payload {
                        left: head.len as usize,
                        capture,
                    };
                    self.finish_empty_payload(&mut report);
                }
                State::Payload { left, capture, .. } => {
                    let n = (*left).min(bytes.len());
                    if let Some(capture) = capture {
                        let room = GOAWAY_CAPTURE.saturating_sub(capture.len()).min(n);
                        capture.extend_from_slice(&bytes[..room]);
                    }
                    *left -= n;
                    bytes = &bytes[n..];
                    self.finish_empty_payload(&mut report);
                }
            }
            if stop.get() {
                return Some(total - bytes.len());
            }
        }
        None
    }

    /// Ends the payload once nothing of it is left, reporting a GOAWAY.
    fn finish_empty_payload(&mut self, on_frame: &mut impl FnMut(Frame)) {
        let State::Payload {
            left: 0, capture, ..
        } = &mut self.state
        else {
            return;
        };
        if let Some(payload) = capture.take() {
            if payload.len() >= 8 {
                on_frame(Frame::GoAway {
                    last_stream: u32::from_be_bytes([
                        payload[0], payload[1], payload[2], payload[3],
                    ]) & 0x7fff_ffff,
                    code: u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]),
                    debug: payload[8..].to_vec(),
                });
            }
        }
        self.state = State::Head {
            buf: [0; 9],
            have: 0,
        };
    }
}

/// Encodes a GOAWAY frame.
pub(crate) fn goaway_frame(last_stream: u32, code: u32, debug: &[u8]) -> Vec<u8> {
    let len = 8 + debug.len() as u32;
    let mut frame = Vec::with_capacity(9 + len as usize);
    frame.extend_from_slice(&len.to_be_bytes()[1..]);
    frame.push(GOAWAY);
    frame.push(0);
    frame.extend_from_slice(&0u32.to_be_bytes());
    frame.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(debug);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn scan_in_pieces(scanner: &mut FrameScanner, bytes: &[u8], piece: usize) -> Vec<Frame> {
        let mut seen = Vec::new();
        for chunk in bytes.chunks(piece) {
            scanner.scan(chunk, |frame| seen.push(frame));
        }
        seen
    }

    #[test]
    fn frames_are_found_whatever_the_read_sizes() {
        let mut stream = CLIENT_PREFACE.to_vec();
        stream.extend(frame(HEADERS, 0x4, 1, &[0xaa; 10]));
        stream.extend(frame(DATA, 0x1, 1, &[7; 70_000]));
        stream.extend(frame(PING, 0, 0, &[1; 8]));
        stream.extend(frame(PING, FLAG_ACK, 0, &[1; 8]));
        stream.extend(frame(0x4, 0, 0, &[]));
        let expected = vec![
            Frame::Head(FrameHead {
                len: 10,
                kind: HEADERS,
                flags: 0x4,
                stream: 1,
            }),
            Frame::Head(FrameHead {
                len: 70_000,
                kind: DATA,
                flags: 0x1,
                stream: 1,
            }),
            Frame::Head(FrameHead {
                len: 8,
                kind: PING,
                flags: 0,
                stream: 0,
            }),
            Frame::Head(FrameHead {
                len: 8,
                kind: PING,
                flags: FLAG_ACK,
                stream: 0,
            }),
            Frame::Head(FrameHead {
                len: 0,
                kind: 0x4,
                flags: 0,
                stream: 0,
            }),
        ];
        for piece in [1, 3, 9, 10, 4096, usize::MAX] {
            let mut scanner = FrameScanner::after_preface();
            let seen = scan_in_pieces(&mut scanner, &stream, piece.min(stream.len()));
            assert_eq!(seen, expected, "pieces of {piece}");
            assert!(scanner.at_boundary());
        }
    }

    #[test]
    fn goaway_reports_code_stream_and_debug_data() {
        let payload = goaway_frame(7, 0xb, b"too_many_pings");
        for piece in [1, 5, payload.len()] {
            let mut scanner = FrameScanner::frames();
            let seen = scan_in_pieces(&mut scanner, &payload, piece);
            assert_eq!(
                seen,
                [Frame::GoAway {
                    last_stream: 7,
                    code: 0xb,
                    debug: b"too_many_pings".to_vec()
                }]
            );
        }
        // Long debug data is cut, not buffered whole.
        let long = goaway_frame(1, 0, &[b'x'; 5000]);
        let mut scanner = FrameScanner::frames();
        let seen = scan_in_pieces(&mut scanner, &long, 100);
        let [Frame::GoAway { debug, .. }] = &seen[..] else {
            panic!("{seen:?}")
        };
        assert_eq!(debug.len(), 64);
        assert!(scanner.at_boundary());
    }

    #[test]
    fn mid_frame_is_not_a_boundary() {
        let mut scanner = FrameScanner::frames();
        let bytes = frame(DATA, 0, 1, &[0; 20]);
        scanner.scan(&bytes[..4], |_| {});
        assert!(!scanner.at_boundary());
        scanner.scan(&bytes[4..15], |_| {});
        assert!(!scanner.at_boundary());
        scanner.scan(&bytes[15..], |_| {});
        assert!(scanner.at_boundary());
    }

    #[test]
    fn scanning_until_a_frame_stops_right_after_its_header() {
        let mut bytes = frame(DATA, 0, 1, &[0; 20]);
        let ping_at = bytes.len();
        bytes.extend(frame(PING, 0, 0, &[0; 8]));
        bytes.extend(frame(PING, 0, 0, &[0; 8]));
        let stop_at_ping = |frame: Frame| match frame {
            Frame::Head(FrameHead { kind: PING, .. }) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        };
        // In one piece: stopped after the first PING's header.
        let mut scanner = FrameScanner::frames();
        assert_eq!(
            scanner.scan_until(&bytes, stop_at_ping),
            Some(ping_at + FRAME_HEAD)
        );
        // With the PING's header split over two reads: the first read has
        // no frame to stop at, the second stops 4 bytes in.
        let mut scanner = FrameScanner::frames();
        let split = ping_at + 5;
        assert_eq!(scanner.scan_until(&bytes[..split], stop_at_ping), None);
        assert_eq!(scanner.scan_until(&bytes[split..], stop_at_ping), Some(4));
        // Nothing to stop at: all scanned.
        let mut scanner = FrameScanner::frames();
        assert_eq!(scanner.scan_until(&bytes[..ping_at], stop_at_ping), None);
        assert!(scanner.at_boundary());
    }
}
