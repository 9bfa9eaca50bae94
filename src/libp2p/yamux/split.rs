//! [`SplitLargeFrames`]: a byte stream below rust-yamux that cuts yamux DATA
//! frames longer than rust-yamux accepts into several shorter ones.
//!
//! The yamux spec sets no limit on a frame's length other than the stream's
//! window, and js-libp2p's yamux sends DATA frames as long as its whole send
//! window. rust-yamux 0.14 grows a stream's receive window past 1 MiB by
//! itself, yet closes the connection, without a GoAway, on any frame body
//! over 1 MiB (`FrameDecodeError::FrameTooLarge`). The read side of the
//! connection therefore rewrites such a frame into pieces of at most
//! [`MAX_PIECE`] bytes, each with its own 12-byte header for the same stream:
//! the first keeps `SYN` and `ACK`, the last keeps `FIN` and `RST`, and
//! every piece keeps flags the spec does not define. The
//! stream sees the same bytes in the same order; rust-yamux still checks
//! each piece against the stream's window, so a peer that overruns its window
//! is still refused. Bodies are passed through without being copied or
//! buffered; only headers are.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures::{AsyncRead, AsyncWrite};

/// The length of a yamux frame header.
pub(crate) const HEADER_LEN: usize = 12;

/// The longest DATA body rust-yamux 0.14 accepts (its `MAX_FRAME_BODY_LEN`).
pub(crate) const MAX_PIECE: u32 = 1024 * 1024;

/// The yamux frame type of DATA frames.
const TYPE_DATA: u8 = 0;
/// The highest frame type the spec defines (GoAway).
const TYPE_LAST: u8 = 3;
/// The flags that open a stream (SYN, ACK): they go on the first piece.
const OPENING_FLAGS: u16 = 0x1 | 0x2;
/// The flags that end a stream (FIN, RST): they go on the last piece.
const CLOSING_FLAGS: u16 = 0x4 | 0x8;

/// What the splitter does with the frame whose header it has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Hand the header on as it is, followed by `body` bytes.
    Keep { body: u32 },
    /// A DATA frame over [`MAX_PIECE`]: hand on pieces instead.
    Split(Pieces),
    /// Not a yamux header (unknown version or type): stop interpreting the
    /// stream and hand everything on unchanged; rust-yamux reports the error.
    Opaque,
}

/// The pieces still to come of a DATA frame being split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pieces {
    /// The original header, for its version, type, flags and stream id.
    header: [u8; HEADER_LEN],
    /// Body bytes of the original frame not yet announced by a piece header.
    left: u32,
    /// Whether the next piece is the first one.
    first: bool,
}

impl Pieces {
    /// The header of the next piece and the length of its body, or `None`
    /// when every byte of the original body has been announced.
    pub(crate) fn next_piece(&mut self) -> Option<([u8; HEADER_LEN], u32)> {
        if self.left == 0 {
            return None;
        }
        let len = self.left.min(MAX_PIECE);
        self.left -= len;
        let flags = u16::from_be_bytes([self.header[2], self.header[3]]);
        // Flags the spec does not define are kept on every piece.
        let mut dropped = 0;
        if !self.first {
            dropped |= OPENING_FLAGS;
        }
        if self.left != 0 {
            dropped |= CLOSING_FLAGS;
        }
        self.first = false;
        let mut header = self.header;
        header[2..4].copy_from_slice(&(flags & !dropped).to_be_bytes());
        header[8..12].copy_from_slice(&len.to_be_bytes());
        Some((header, len))
    }
}

/// Decides what to do with a complete frame header.
pub(crate) fn plan(header: &[u8; HEADER_LEN]) -> Plan {
    let (version, kind) = (header[0], header[1]);
    if version != 0 || kind > TYPE_LAST {
        return Plan::Opaque;
    }
    if kind != TYPE_DATA {
        // Window updates, pings and GoAways carry a value, not a body.
        return Plan::Keep { body: 0 };
    }
    let len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if len <= MAX_PIECE {
        return Plan::Keep { body: len };
    }
    Plan::Split(Pieces {
        header: *header,
        left: len,
        first: true,
    })
}

/// Where the reader is in the frame sequence.
#[derive(Debug)]
enum ReadState {
    /// Reading a header from the connection; `filled` bytes are in.
    Header {
        buf: [u8; HEADER_LEN],
        filled: usize,
    },
    /// Handing on a (possibly rewritten) header, then `body` body bytes,
    /// then the rest of a split frame, if any.
    Frame {
        header: [u8; HEADER_LEN],
        /// Header bytes already handed on.
        sent: usize,
        body: u32,
        rest: Option<Pieces>,
    },
    /// Everything is passed on unchanged: first `pending[sent..]`, the bytes
    /// already read, then the connection's bytes.
    Opaque {
        pending: [u8; HEADER_LEN],
        sent: usize,
        len: usize,
    },
}

/// A byte stream that cuts yamux DATA frames over 1 MiB read from `inner`
/// into frames rust-yamux accepts (see the module docs). Writes go to
/// `inner` unchanged.
#[derive(Debug)]
pub struct SplitLargeFrames<C> {
    inner: C,
    state: ReadState,
}

impl<C> SplitLargeFrames<C> {
    /// Wraps the connection yamux runs on.
    pub fn new(inner: C) -> Self {
        SplitLargeFrames {
            inner,
            state: ReadState::Header {
                buf: [0; HEADER_LEN],
                filled: 0,
            },
        }
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for SplitLargeFrames<C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match &mut this.state {
                ReadState::Header { buf, filled } => {
                    let n = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf[*filled..]))?;
                    if n == 0 {
                        // The connection ended, possibly inside a header: hand
                        // on what came, then the end.
                        let (pending, len) = (*buf, *filled);
                        this.state = ReadState::Opaque {
                            pending,
                            sent: 0,
                            len,
                        };
                        continue;
                    }
                    *filled += n;
                    if *filled < HEADER_LEN {
                        continue;
                    }
                    let header = *buf;
                    this.state = match plan(&header) {
                        Plan::Keep { body } => ReadState::Frame {
                            header,
                            sent: 0,
                            body,
                            rest: None,
                        },
                        Plan::Split(mut pieces) => {
                            let (header, body) = pieces.next_piece().expect("a split frame");
                            ReadState::Frame {
                                header,
                                sent: 0,
                                body,
                                rest: Some(pieces),
                            }
                        }
                        Plan::Opaque => ReadState::Opaque {
                            pending: header,
                            sent: 0,
                            len: HEADER_LEN,
                        },
                    };
                }
                ReadState::Frame {
                    header,
                    sent,
                    body,
                    rest,
                } => {
                    if *sent < HEADER_LEN {
                        let n = out.len().min(HEADER_LEN - *sent);
                        out[..n].copy_from_slice(&header[*sent..*sent + n]);
                        *sent += n;
                        return Poll::Ready(Ok(n));
                    }
                    if *body > 0 {
                        let want = out.len().min(*body as usize);
                        let n = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut out[..want]))?;
                        // A short body at the end of the connection is
                        // rust-yamux's to report.
                        *body -= n as u32;
                        return Poll::Ready(Ok(n));
                    }
                    this.state = match rest.as_mut().and_then(Pieces::next_piece) {
                        Some((header, body)) => ReadState::Frame {
                            header,
                            sent: 0,
                            body,
                            rest: *rest,
                        },
                        None => ReadState::Header {
                            buf: [0; HEADER_LEN],
                            filled: 0,
                        },
                    };
                }
                ReadState::Opaque { pending, sent, len } => {
                    if *sent < *len {
                        let n = out.len().min(*len - *sent);
                        out[..n].copy_from_slice(&pending[*sent..*sent + n]);
                        *sent += n;
                        return Poll::Ready(Ok(n));
                    }
                    return Pin::new(&mut this.inner).poll_read(cx, out);
                }
            }
        }
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for SplitLargeFrames<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::io::{AsyncReadExt, Cursor};

    use super::*;

    const SYN: u16 = 0x1;
    const ACK: u16 = 0x2;
    const FIN: u16 = 0x4;
    const RST: u16 = 0x8;

    fn header(kind: u8, flags: u16, stream: u32, len: u32) -> [u8; HEADER_LEN] {
        let mut header = [0; HEADER_LEN];
        header[1] = kind;
        header[2..4].copy_from_slice(&flags.to_be_bytes());
        header[4..8].copy_from_slice(&stream.to_be_bytes());
        header[8..12].copy_from_slice(&len.to_be_bytes());
        header
    }

    fn data(flags: u16, stream: u32, body: &[u8]) -> Vec<u8> {
        let mut frame = header(TYPE_DATA, flags, stream, body.len() as u32).to_vec();
        frame.extend_from_slice(body);
        frame
    }

    /// Reads everything through the splitter, `chunk` bytes at a time.
    fn split(input: Vec<u8>, chunk: usize) -> Vec<u8> {
        futures::executor::block_on(async {
            let mut reader = SplitLargeFrames::new(Cursor::new(input));
            let mut output = Vec::new();
            let mut buf = vec![0; chunk];
            loop {
                let n = reader.read(&mut buf).await.unwrap();
                if n == 0 {
                    return output;
                }
                output.extend_from_slice(&buf[..n]);
            }
        })
    }

    /// A body whose bytes tell their position, so a shifted byte shows.
    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn frames_within_the_limit_pass_unchanged() {
        let mut input = data(SYN, 1, &body(MAX_PIECE as usize));
        input.extend_from_slice(&header(1, ACK, 1, 5 * 1024 * 1024)); // window update
        input.extend_from_slice(&header(2, SYN, 0, 7)); // ping
        input.extend_from_slice(&data(FIN, 1, b""));
        input.extend_from_slice(&header(3, 0, 0, 0)); // go away
        for chunk in [1, 5, 12, 4096, 2 * 1024 * 1024] {
            assert_eq!(split(input.clone(), chunk), input, "chunk {chunk}");
        }
    }

    #[test]
    fn a_long_data_frame_becomes_pieces_with_the_flags_at_the_ends() {
        let long = body(2 * MAX_PIECE as usize + 10);
        let mut input = data(ACK | FIN, 3, &long);
        input.extend_from_slice(&data(0, 5, b"next"));
        let mut expected = data(ACK, 3, &long[..MAX_PIECE as usize]);
        expected.extend_from_slice(&data(
            0,
            3,
            &long[MAX_PIECE as usize..2 * MAX_PIECE as usize],
        ));
        expected.extend_from_slice(&data(FIN, 3, &long[2 * MAX_PIECE as usize..]));
        expected.extend_from_slice(&data(0, 5, b"next"));
        for chunk in [7, 4096, 3 * 1024 * 1024] {
            assert_eq!(split(input.clone(), chunk), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn a_frame_one_byte_over_the_limit_ends_in_a_one_byte_piece() {
        let long = body(MAX_PIECE as usize + 1);
        let mut expected = data(SYN, 7, &long[..MAX_PIECE as usize]);
        expected.extend_from_slice(&data(RST, 7, &long[MAX_PIECE as usize..]));
        assert_eq!(split(data(SYN | RST, 7, &long), 65536), expected);
        // A flag the spec does not define stays on every piece (found by
        // the fuzz target).
        let mut expected = data(SYN | 0x40, 7, &long[..MAX_PIECE as usize]);
        expected.extend_from_slice(&data(RST | 0x40, 7, &long[MAX_PIECE as usize..]));
        assert_eq!(split(data(SYN | RST | 0x40, 7, &long), 65536), expected);
    }

    #[test]
    fn pieces_announce_every_byte_once() {
        let mut pieces = match plan(&header(TYPE_DATA, SYN | FIN, 9, u32::MAX)) {
            Plan::Split(pieces) => pieces,
            other => panic!("{other:?}"),
        };
        let (mut total, mut count) = (0u64, 0);
        while let Some((header, len)) = pieces.next_piece() {
            assert!(len <= MAX_PIECE && len > 0);
            assert_eq!(u32::from_be_bytes(header[8..12].try_into().unwrap()), len);
            assert_eq!(u32::from_be_bytes(header[4..8].try_into().unwrap()), 9);
            total += u64::from(len);
            count += 1;
        }
        assert_eq!(total, u64::from(u32::MAX));
        assert_eq!(count, 4096);
    }

    #[test]
    fn a_go_away_is_a_frame_like_the_others() {
        // Type 3 is the last type there is, not an unknown one: what follows
        // it is still read as frames.
        let long = body(MAX_PIECE as usize + 1);
        let mut input = header(3, 0, 0, 0).to_vec();
        input.extend_from_slice(&data(0, 1, &long));
        let mut expected = header(3, 0, 0, 0).to_vec();
        expected.extend_from_slice(&data(0, 1, &long[..MAX_PIECE as usize]));
        expected.extend_from_slice(&data(0, 1, &long[MAX_PIECE as usize..]));
        assert_eq!(split(input, 4096), expected);
    }

    /// Keeps what is written, flushed and closed.
    #[derive(Default)]
    struct Sink {
        written: Vec<u8>,
        flushed: bool,
        closed: bool,
    }

    impl AsyncWrite for Sink {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushed = true;
            Poll::Ready(Ok(()))
        }

        fn poll_close(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.closed = true;
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn writes_pass_through_unchanged() {
        use futures::io::AsyncWriteExt;
        futures::executor::block_on(async {
            let mut writer = SplitLargeFrames::new(Sink::default());
            writer.write_all(b"one").await.unwrap();
            let n = writer
                .write_vectored(&[io::IoSlice::new(b"two"), io::IoSlice::new(b"three")])
                .await
                .unwrap();
            assert_eq!(
                n, 3,
                "the sink takes the first slice, as futures-io's default does"
            );
            writer.flush().await.unwrap();
            assert!(writer.inner.flushed);
            writer.close().await.unwrap();
            assert!(writer.inner.closed);
            assert_eq!(writer.inner.written, b"onetwo");
        });
    }

    #[test]
    fn a_bad_header_turns_the_rest_of_the_stream_opaque() {
        // An unknown frame type: everything after it, even what looks like a
        // long DATA frame, is handed on unchanged for rust-yamux to refuse.
        let mut input = header(9, 0, 1, 0).to_vec();
        input.extend_from_slice(&data(0, 1, &body(MAX_PIECE as usize + 5)));
        assert_eq!(split(input.clone(), 4096), input);
        let mut input = header(TYPE_DATA, 0, 1, 0).to_vec();
        input[0] = 1; // version 1
        input.extend_from_slice(&data(0, 1, &body(MAX_PIECE as usize + 5)));
        assert_eq!(split(input.clone(), 4096), input);
    }

    #[test]
    fn the_end_inside_a_header_or_a_body_is_handed_on() {
        let frame = data(0, 1, &body(MAX_PIECE as usize + 100));
        assert_eq!(split(frame[..7].to_vec(), 3), frame[..7]);
        // Cut inside the second piece: the first piece and the second
        // piece's header come out, then the bytes that arrived.
        let cut = HEADER_LEN + MAX_PIECE as usize + 40;
        let mut expected = data(0, 1, &frame[HEADER_LEN..HEADER_LEN + MAX_PIECE as usize]);
        expected.extend_from_slice(&header(TYPE_DATA, 0, 1, 100));
        expected.extend_from_slice(&frame[HEADER_LEN + MAX_PIECE as usize..cut]);
        assert_eq!(split(frame[..cut].to_vec(), 4096), expected);
    }
}
