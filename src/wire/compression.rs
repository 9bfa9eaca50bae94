//! Message compression (`grpc-encoding`, `grpc-accept-encoding`).
//!
//! gzip and deflate (the zlib format, RFC 1950, as gRPC means it) always;
//! zstd with the `zstd` feature (it builds the C library). gzip and deflate
//! use level 6, the zlib default that grpc-go and tonic use too; zstd uses
//! level 3, its own default and tonic's. Decompression is bounded by a size
//! limit so that a small "bomb" cannot exhaust memory, whatever the codec.

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use flate2::read::{MultiGzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};
use http::HeaderValue;

use crate::wire::status::Status;

/// The gzip and deflate level used by [`compress`].
const GZIP_LEVEL: u32 = 6;

/// The zstd level used by [`compress`].
#[cfg(feature = "zstd")]
const ZSTD_LEVEL: i32 = 3;

/// The largest zstd window a message may ask the decoder for: 2^23 bytes
/// (8 MiB), what zstd's format guarantees every decoder supports.
#[cfg(feature = "zstd")]
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// A message compression algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CompressionEncoding {
    /// gzip (RFC 1952).
    Gzip,
    /// deflate: the zlib format (RFC 1950), as gRPC's compression spec
    /// means it.
    Deflate,
    /// Zstandard (RFC 8878; feature `zstd`).
    #[cfg(feature = "zstd")]
    Zstd,
}

impl CompressionEncoding {
    /// Every supported encoding.
    pub const ALL: &'static [CompressionEncoding] = &[
        CompressionEncoding::Gzip,
        CompressionEncoding::Deflate,
        #[cfg(feature = "zstd")]
        CompressionEncoding::Zstd,
    ];

    /// The name of the encoding in `grpc-encoding` (`"gzip"`, `"deflate"`,
    /// `"zstd"`).
    pub fn as_str(self) -> &'static str {
        match self {
            CompressionEncoding::Gzip => "gzip",
            CompressionEncoding::Deflate => "deflate",
            #[cfg(feature = "zstd")]
            CompressionEncoding::Zstd => "zstd",
        }
    }

    /// The `grpc-encoding` header value of the encoding.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.as_str())
    }

    /// The encoding with this name, if supported (exact, lowercase match).
    pub fn from_name(name: &[u8]) -> Option<Self> {
        CompressionEncoding::ALL
            .iter()
            .copied()
            .find(|e| e.as_str().as_bytes() == name)
    }

    /// Reads a `grpc-encoding` header value: absent or `identity` gives
    /// `Ok(None)`, a supported name its encoding, anything else an
    /// `UNIMPLEMENTED` status (the caller may add `grpc-accept-encoding` to
    /// its metadata).
    pub fn from_encoding_header(value: Option<&HeaderValue>) -> Result<Option<Self>, Status> {
        let Some(value) = value else {
            return Ok(None);
        };
        let name = value.as_bytes().trim_ascii();
        if name == b"identity" {
            return Ok(None);
        }
        match Self::from_name(name) {
            Some(encoding) => Ok(Some(encoding)),
            None => Err(Status::unimplemented(format!(
                "message compressed with `{}` which is not supported",
                String::from_utf8_lossy(name)
            ))),
        }
    }

    /// Whether a `grpc-accept-encoding` header value (a comma-separated list,
    /// spaces allowed) lists this encoding.
    pub fn is_accepted_by(self, accept_header: Option<&HeaderValue>) -> bool {
        let Some(accept) = accept_header else {
            return false;
        };
        accept.as_bytes().split(|&b| b == b',').any(|name| {
            name.trim_ascii()
                .eq_ignore_ascii_case(self.as_str().as_bytes())
        })
    }
}

/// Server side: put `CompressionOverride::Disable` in a [`Response`](crate::Response)'s
/// extensions to send that response uncompressed, even when the server compresses
/// responses ([`ServerBuilder::send_compressed`](crate::server::ServerBuilder::send_compressed))
/// and the client accepts the encoding. It covers the whole response (every message of a
/// streaming one); to decide message by message, use a [`MessageCompression`] switch
/// instead. tonic's `SingleMessageCompressionOverride` does the same for unary responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompressionOverride {
    /// Compress as the server and the client agreed (the default).
    #[default]
    Inherit,
    /// Send this response uncompressed.
    Disable,
}

/// A switch for compressing message by message, within a call whose
/// encoding was agreed (the client's `send_compressed`, or the server's
/// `send_compressed` with a client that accepts it).
///
/// Put a clone in the extensions of a streaming [`Request`](crate::Request)
/// (client side) or of a [`Response`](crate::Response) (server side), and
/// set it before each message leaves your stream: every message is
/// compressed or not as the switch says when it is encoded. It starts on.
///
/// ```
/// use futures::StreamExt;
/// use p2p_grpc::compression::MessageCompression;
///
/// let switch = MessageCompression::new();
/// let flags = switch.clone();
/// // The first message compressed, the second not.
/// let messages = futures::stream::iter([(true, "big"), (false, "small")])
///     .map(move |(compress, text)| {
///         flags.set(compress);
///         text.to_string()
///     });
/// let mut request = p2p_grpc::Request::new(messages);
/// request.extensions_mut().insert(switch);
/// ```
#[derive(Clone, Debug)]
pub struct MessageCompression(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl MessageCompression {
    /// A switch that starts on (messages are compressed).
    pub fn new() -> Self {
        MessageCompression(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
            true,
        )))
    }

    /// Compress the next messages (`true`) or send them plain (`false`).
    pub fn set(&self, compress: bool) {
        self.0.store(compress, std::sync::atomic::Ordering::Release);
    }

    /// Whether the next message will be compressed.
    pub fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The encoding for the next message: `agreed`, unless the switch is off.
    pub(crate) fn apply(
        switch: Option<&MessageCompression>,
        agreed: Option<CompressionEncoding>,
    ) -> Option<CompressionEncoding> {
        match switch {
            Some(switch) if !switch.is_on() => None,
            _ => agreed,
        }
    }
}

impl Default for MessageCompression {
    fn default() -> Self {
        Self::new()
    }
}

/// The `grpc-accept-encoding` value advertising every supported encoding
/// (`"gzip,deflate"`, and `zstd` with the feature).
pub fn accept_encoding_header_value() -> HeaderValue {
    #[cfg(feature = "zstd")]
    {
        HeaderValue::from_static("gzip,deflate,zstd")
    }
    #[cfg(not(feature = "zstd"))]
    {
        HeaderValue::from_static("gzip,deflate")
    }
}

/// Compresses `src`, appending the compressed bytes to `dst`.
pub fn compress(
    encoding: CompressionEncoding,
    src: &[u8],
    dst: &mut BytesMut,
) -> std::io::Result<()> {
    // Compressed data is usually smaller; a rough guess avoids most
    // reallocations.
    dst.reserve(src.len() / 2 + 32);
    match encoding {
        CompressionEncoding::Gzip => {
            let mut encoder = GzEncoder::new(dst.writer(), flate2::Compression::new(GZIP_LEVEL));
            encoder.write_all(src)?;
            encoder.finish()?;
        }
        CompressionEncoding::Deflate => {
            let mut encoder = ZlibEncoder::new(dst.writer(), flate2::Compression::new(GZIP_LEVEL));
            encoder.write_all(src)?;
            encoder.finish()?;
        }
        #[cfg(feature = "zstd")]
        CompressionEncoding::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(dst.writer(), ZSTD_LEVEL)?;
            encoder.write_all(src)?;
            encoder.finish()?;
        }
    }
    Ok(())
}

/// Decompresses `src`, refusing output larger than `limit` bytes.
///
/// Gives a `RESOURCE_EXHAUSTED` status when the output would exceed `limit`
/// (at most about `limit` bytes are ever allocated) and an `INTERNAL` status
/// for corrupt data. Concatenated gzip members are decoded as one stream.
pub fn decompress(
    encoding: CompressionEncoding,
    src: &[u8],
    limit: usize,
) -> Result<Bytes, Status> {
    match encoding {
        CompressionEncoding::Gzip => read_limited(MultiGzDecoder::new(src), src.len(), limit),
        CompressionEncoding::Deflate => read_limited(ZlibDecoder::new(src), src.len(), limit),
        #[cfg(feature = "zstd")]
        CompressionEncoding::Zstd => {
            // The decoder allocates the window a frame asks for before it
            // writes a byte: capped at 8 MiB (zstd's own default would let
            // a tiny frame claim 128 MiB). The output goes to our bounded
            // buffer, so the message limit holds too.
            let failed =
                |e: std::io::Error| Status::internal(format!("failed to decompress message: {e}"));
            let mut decoder = zstd::stream::read::Decoder::with_buffer(src).map_err(failed)?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(failed)?;
            read_limited(decoder, src.len(), limit)
        }
    }
}

fn read_limited(mut reader: impl Read, src_len: usize, limit: usize) -> Result<Bytes, Status> {
    // One byte past the limit tells "exactly limit" from "too large".
    let cap = limit.saturating_add(1);
    let mut out: Vec<u8> = Vec::new();
    let mut filled = 0;
    loop {
        if filled == out.len() {
            if filled >= cap {
                break;
            }
            let grow_to = if out.is_empty() {
                src_len.saturating_mul(4).clamp(256, 64 * 1024)
            } else {
                out.len().saturating_mul(2)
            };
            out.resize(grow_to.min(cap), 0);
        }
        match reader.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Status::internal(format!(
                    "failed to decompress message: {e}"
                )))
            }
        }
    }
    if filled > limit {
        return Err(Status::resource_exhausted(format!(
            "decompressed message larger than max ({limit} bytes)"
        )));
    }
    out.truncate(filled);
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::status::Code;

    fn gzip(data: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        compress(CompressionEncoding::Gzip, data, &mut out).unwrap();
        out
    }

    #[test]
    fn names_and_headers() {
        assert_eq!(CompressionEncoding::Gzip.as_str(), "gzip");
        assert_eq!(CompressionEncoding::Gzip.header_value(), "gzip");
        assert_eq!(CompressionEncoding::Deflate.as_str(), "deflate");
        assert!(accept_encoding_header_value()
            .to_str()
            .unwrap()
            .starts_with("gzip,deflate"));
        assert_eq!(
            CompressionEncoding::ALL[..2],
            [CompressionEncoding::Gzip, CompressionEncoding::Deflate]
        );
        assert_eq!(
            CompressionEncoding::from_name(b"gzip"),
            Some(CompressionEncoding::Gzip)
        );
        assert_eq!(CompressionEncoding::from_name(b"br"), None);
    }

    #[test]
    fn encoding_header() {
        let parse = |v: Option<&'static str>| {
            let v = v.map(HeaderValue::from_static);
            CompressionEncoding::from_encoding_header(v.as_ref())
        };
        assert_eq!(parse(None).unwrap(), None);
        assert_eq!(parse(Some("identity")).unwrap(), None);
        assert_eq!(
            parse(Some("gzip")).unwrap(),
            Some(CompressionEncoding::Gzip)
        );
        let err = parse(Some("br")).unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented);
        assert_eq!(
            err.message(),
            "message compressed with `br` which is not supported"
        );
        let err = CompressionEncoding::from_encoding_header(Some(
            &HeaderValue::from_bytes(b"\xffzz").unwrap(),
        ))
        .unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented);
    }

    #[test]
    fn accept_header() {
        let gz = CompressionEncoding::Gzip;
        let accepts = |v: &'static str| gz.is_accepted_by(Some(&HeaderValue::from_static(v)));
        assert!(!gz.is_accepted_by(None));
        assert!(accepts("gzip"));
        assert!(accepts("identity,gzip"));
        assert!(accepts("deflate, gzip , snappy"));
        assert!(accepts("GZIP"));
        assert!(!accepts("identity"));
        assert!(!accepts("gzipx, deflate"));
        assert!(!accepts(""));
    }

    #[test]
    fn round_trip() {
        for data in [
            Vec::new(),
            b"hello hello hello hello".to_vec(),
            (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect(),
        ] {
            let mut compressed = BytesMut::from(&b"prefix"[..]);
            compress(CompressionEncoding::Gzip, &data, &mut compressed).unwrap();
            assert_eq!(&compressed[..6], b"prefix");
            let back = decompress(CompressionEncoding::Gzip, &compressed[6..], data.len()).unwrap();
            assert_eq!(back, data);
        }
    }

    #[test]
    fn exact_limit_is_allowed_one_more_is_not() {
        let data = vec![42u8; 1000];
        let c = gzip(&data);
        assert_eq!(
            decompress(CompressionEncoding::Gzip, &c, 1000)
                .unwrap()
                .len(),
            1000
        );
        let err = decompress(CompressionEncoding::Gzip, &c, 999).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        let err = decompress(CompressionEncoding::Gzip, &c, 0).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
    }

    #[test]
    fn every_codec_round_trips_stops_a_bomb_and_rejects_garbage() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let zeros = vec![0u8; 10 * 1024 * 1024];
        for &encoding in CompressionEncoding::ALL {
            for input in [&[][..], &b"hello hello hello"[..], &data[..]] {
                let mut compressed = BytesMut::new();
                compress(encoding, input, &mut compressed).unwrap();
                let back = decompress(encoding, &compressed, input.len()).unwrap();
                assert_eq!(back, input, "{encoding:?}");
            }
            let mut bomb = BytesMut::new();
            compress(encoding, &zeros, &mut bomb).unwrap();
            assert!(bomb.len() < 64 * 1024, "{encoding:?}: {}", bomb.len());
            let err = decompress(encoding, &bomb, 1024 * 1024).unwrap_err();
            assert_eq!(err.code(), Code::ResourceExhausted, "{encoding:?}");
            let err = decompress(encoding, b"definitely not compressed", 1024).unwrap_err();
            assert_eq!(err.code(), Code::Internal, "{encoding:?}");
            assert_eq!(
                CompressionEncoding::from_name(encoding.as_str().as_bytes()),
                Some(encoding)
            );
        }
    }

    /// A zstd frame may declare a window far larger than its content, which
    /// the decoder would allocate up front: one over 8 MiB is refused.
    #[cfg(feature = "zstd")]
    #[test]
    fn a_zstd_frame_asking_for_a_huge_window_is_refused() {
        let mut frame = Vec::new();
        let mut encoder = zstd::stream::write::Encoder::new(&mut frame, 1).unwrap();
        encoder.window_log(27).unwrap();
        encoder.write_all(&[7u8; 1024]).unwrap();
        encoder.finish().unwrap();
        let err = decompress(CompressionEncoding::Zstd, &frame, usize::MAX).unwrap_err();
        assert_eq!(err.code(), Code::Internal, "{err:?}");
        // Within the cap, the same content decodes.
        let mut small = BytesMut::new();
        compress(CompressionEncoding::Zstd, &[7u8; 1024], &mut small).unwrap();
        assert_eq!(
            decompress(CompressionEncoding::Zstd, &small, 4096)
                .unwrap()
                .len(),
            1024
        );
    }

    #[test]
    fn bomb_is_limited() {
        let zeros = vec![0u8; 10 * 1024 * 1024];
        let c = gzip(&zeros);
        assert!(c.len() < 64 * 1024, "compressed to {}", c.len());
        let err = decompress(CompressionEncoding::Gzip, &c, 1024 * 1024).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        // With enough room it decodes.
        let back = decompress(CompressionEncoding::Gzip, &c, usize::MAX).unwrap();
        assert_eq!(back.len(), zeros.len());
    }

    #[test]
    fn corrupt_data_is_internal() {
        let mut c = gzip(b"some data that is long enough to matter, some data");
        // Not gzip at all.
        let err = decompress(CompressionEncoding::Gzip, b"definitely not gzip", 1024).unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        // Truncated.
        let err = decompress(CompressionEncoding::Gzip, &c[..c.len() - 6], 1024).unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        // Bad CRC.
        let n = c.len();
        c[n - 8] ^= 0xff;
        let err = decompress(CompressionEncoding::Gzip, &c, 1024).unwrap_err();
        assert_eq!(err.code(), Code::Internal);
    }

    #[test]
    fn empty_input() {
        // An empty payload is not a gzip stream.
        let err = decompress(CompressionEncoding::Gzip, b"", 100).unwrap_err();
        assert_eq!(err.code(), Code::Internal);
    }

    #[test]
    fn concatenated_members() {
        let mut c = gzip(b"abc");
        c.extend_from_slice(&gzip(b"def"));
        assert_eq!(
            decompress(CompressionEncoding::Gzip, &c, 100).unwrap(),
            &b"abcdef"[..]
        );
    }
}
