//! Raw HTTP/2 bytes for clients that misbehave: frames, a gRPC request's
//! header block as HPACK literals (so names and values go on the wire
//! byte for byte), and the opening of a client that opens every window as
//! wide as HTTP/2 allows. No IO: the callers write the bytes.

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The largest flow-control window HTTP/2 allows (2^31 − 1).
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// Frame types and flags.
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// Appends one frame. A payload past the 24-bit length field is cut to
/// what it can say, and the stream id's reserved bit is cleared, so any
/// input (a fuzzer's included) gives a well-formed frame header.
pub fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len().min(0xff_ffff);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&payload[..len]);
}

/// The header block of a gRPC request to `path`, as HPACK literals
/// without indexing.
pub fn request_block(path: &str) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        block.extend_from_slice(&[0, name.len() as u8]);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    block
}

/// The preface and SETTINGS with the largest initial stream window, then a
/// connection WINDOW_UPDATE to the largest window: flow control then holds
/// nothing back, and only the server's own buffers bound what it queues
/// for this client.
pub fn wide_open_preface() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    let mut settings = 0x4u16.to_be_bytes().to_vec(); // INITIAL_WINDOW_SIZE
    settings.extend_from_slice(&MAX_WINDOW.to_be_bytes());
    frame(&mut out, SETTINGS, 0, 0, &settings);
    frame(
        &mut out,
        WINDOW_UPDATE,
        0,
        0,
        &(MAX_WINDOW - 65_535).to_be_bytes(),
    );
    out
}

/// A whole request on `stream`: its header block, then `body` (framed gRPC
/// messages) in DATA frames of at most 16 KiB, the last one ending the
/// stream.
pub fn request(out: &mut Vec<u8>, stream: u32, path: &str, body: &[u8]) {
    frame(out, HEADERS, END_HEADERS, stream, &request_block(path));
    if body.is_empty() {
        frame(out, DATA, END_STREAM, stream, &[]);
        return;
    }
    let chunks: Vec<&[u8]> = body.chunks(16_384).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let flags = if i + 1 == chunks.len() { END_STREAM } else { 0 };
        frame(out, DATA, flags, stream, chunk);
    }
}
