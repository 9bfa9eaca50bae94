//! Byte streams that record what crosses them, and a parser of the HTTP/2
//! frames recorded: what tests use to see frames h2 does not show.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

/// One end of a pipe that keeps a copy of every byte read from it.
pub struct Recording {
    io: p2p_grpc::io::Duplex,
    read: Arc<Mutex<Vec<u8>>>,
}

impl Recording {
    /// `io`, copying what is read from it into `read`.
    pub fn new(io: p2p_grpc::io::Duplex, read: Arc<Mutex<Vec<u8>>>) -> Self {
        Recording { io, read }
    }
}

impl AsyncRead for Recording {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.read.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        polled
    }
}

impl AsyncWrite for Recording {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// The HTTP/2 frames in a byte stream, as (type, payload): what a client
/// sent (`client`: the preface comes first) or what a server sent. A frame
/// cut off at the end is left out.
pub fn frames(bytes: &[u8], client: bool) -> Vec<(u8, Vec<u8>)> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut rest = bytes;
    if client {
        assert!(
            bytes.starts_with(PREFACE),
            "the connection preface comes first"
        );
        rest = &bytes[PREFACE.len()..];
    }
    let mut frames = Vec::new();
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        if rest.len() < 9 + len {
            break;
        }
        let kind = rest[3];
        frames.push((kind, rest[9..9 + len].to_vec()));
        rest = &rest[9 + len..];
    }
    frames
}
