//! gRPC status codes and the [`Status`] that ends every call.
//!
//! On the wire a status travels in trailers (or in the headers of a
//! trailers-only response) as `grpc-status` (the code in decimal),
//! `grpc-message` (percent-encoded UTF-8) and `grpc-status-details-bin`
//! (base64 bytes, usually a serialized `google.rpc.Status`), next to any
//! custom metadata.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS};

use super::headers::{GRPC_MESSAGE, GRPC_RETRY_PUSHBACK_MS, GRPC_STATUS, GRPC_STATUS_DETAILS_BIN};
use super::metadata::{MetadataMap, BASE64};

/// A gRPC status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// The operation completed successfully.
    Ok = 0,
    /// The operation was cancelled (typically by the caller).
    Cancelled = 1,
    /// Unknown error.
    Unknown = 2,
    /// The client specified an invalid argument.
    InvalidArgument = 3,
    /// The deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// Some requested entity was not found.
    NotFound = 5,
    /// Some entity that we attempted to create already exists.
    AlreadyExists = 6,
    /// The caller does not have permission to execute the operation.
    PermissionDenied = 7,
    /// Some resource has been exhausted.
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// The operation was aborted.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or not supported.
    Unimplemented = 12,
    /// Internal error.
    Internal = 13,
    /// The service is currently unavailable.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request does not have valid authentication credentials.
    Unauthenticated = 16,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The code with this number; [`Code::Unknown`] when out of range.
    pub fn from_i32(i: i32) -> Code {
        usize::try_from(i)
            .ok()
            .and_then(|i| Code::ALL.get(i).copied())
            .unwrap_or(Code::Unknown)
    }

    /// The code's canonical name, as the gRPC spec, service configs and
    /// metrics spell it: `"OK"`, `"DEADLINE_EXCEEDED"`...
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 17] = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        NAMES[self as usize]
    }

    /// The number of the code.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// Parses a `grpc-status` header value (`"0"` to `"16"`, surrounding
    /// whitespace ignored); anything else gives [`Code::Unknown`].
    pub fn from_bytes(b: &[u8]) -> Code {
        let b = b.trim_ascii();
        if b.is_empty() || b.len() > 2 || !b.iter().all(u8::is_ascii_digit) {
            return Code::Unknown;
        }
        let n = b.iter().fold(0i32, |n, d| n * 10 + i32::from(d - b'0'));
        Code::from_i32(n)
    }

    /// A sentence describing the code.
    pub fn description(self) -> &'static str {
        match self {
            Code::Ok => "The operation completed successfully",
            Code::Cancelled => "The operation was cancelled",
            Code::Unknown => "Unknown error",
            Code::InvalidArgument => "Client specified an invalid argument",
            Code::DeadlineExceeded => "Deadline expired before operation could complete",
            Code::NotFound => "Some requested entity was not found",
            Code::AlreadyExists => "Some entity that we attempted to create already exists",
            Code::PermissionDenied => {
                "The caller does not have permission to execute the specified operation"
            }
            Code::ResourceExhausted => "Some resource has been exhausted",
            Code::FailedPrecondition => {
                "The system is not in a state required for the operation's execution"
            }
            Code::Aborted => "The operation was aborted",
            Code::OutOfRange => "Operation was attempted past the valid range",
            Code::Unimplemented => "Operation is not implemented or not supported",
            Code::Internal => "Internal error",
            Code::Unavailable => "The service is currently unavailable",
            Code::DataLoss => "Unrecoverable data loss or corruption",
            Code::Unauthenticated => "The request does not have valid authentication credentials",
        }
    }

    /// The `grpc-status` header value of the code (static, no allocation).
    pub fn header_value(self) -> HeaderValue {
        const VALUES: [&str; 17] = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
            "16",
        ];
        HeaderValue::from_static(VALUES[self as usize])
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl From<i32> for Code {
    fn from(i: i32) -> Code {
        Code::from_i32(i)
    }
}

impl From<Code> for i32 {
    fn from(code: Code) -> i32 {
        code.as_i32()
    }
}

/// The bytes of a `grpc-message` that are percent-encoded: everything outside
/// `0x20..=0x7E` (controls and all non-ASCII bytes) and `%` itself.
const GRPC_MESSAGE_ENCODE_SET: &AsciiSet = &CONTROLS.add(b'%');

/// Percent-encodes a status message for the `grpc-message` header: every
/// UTF-8 byte outside `0x20..=0x7E`, and `%`, becomes `%XX` (uppercase hex).
pub fn encode_grpc_message(msg: &str) -> Cow<'_, str> {
    percent_encoding::utf8_percent_encode(msg, GRPC_MESSAGE_ENCODE_SET).into()
}

/// Decodes a `grpc-message` header value: `%XX` sequences are decoded,
/// invalid ones kept literally, and invalid UTF-8 replaced by U+FFFD.
pub fn decode_grpc_message(value: &[u8]) -> Cow<'_, str> {
    percent_encoding::percent_decode(value).decode_utf8_lossy()
}

/// The outcome of a call: a [`Code`], a message, optional binary details
/// and custom trailing metadata.
///
/// The fields are boxed so that a `Result<T, Status>` stays small (one
/// pointer for the error).
#[derive(Clone)]
pub struct Status {
    inner: Box<StatusInner>,
}

#[derive(Clone)]
struct StatusInner {
    code: Code,
    message: String,
    details: Bytes,
    metadata: MetadataMap,
    /// `grpc-retry-pushback-ms`: `Some(None)` is "do not retry".
    pushback: Option<Option<std::time::Duration>>,
    /// The local error behind the status (never sent).
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

macro_rules! code_constructors {
    ($($(#[$doc:meta])* $name:ident => $code:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(message: impl Into<String>) -> Status {
                Status::new(Code::$code, message)
            }
        )*
    };
}

impl Status {
    /// A status with a code and a message.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status::with_details_and_metadata(code, message, Bytes::new(), MetadataMap::new())
    }

    /// A status with binary details (usually a serialized `google.rpc.Status`).
    pub fn with_details(code: Code, message: impl Into<String>, details: Bytes) -> Status {
        Status::with_details_and_metadata(code, message, details, MetadataMap::new())
    }

    /// A status with custom metadata, sent in the trailers.
    pub fn with_metadata(code: Code, message: impl Into<String>, metadata: MetadataMap) -> Status {
        Status::with_details_and_metadata(code, message, Bytes::new(), metadata)
    }

    /// A status with binary details and custom metadata.
    pub fn with_details_and_metadata(
        code: Code,
        message: impl Into<String>,
        details: Bytes,
        metadata: MetadataMap,
    ) -> Status {
        Status {
            inner: Box::new(StatusInner {
                code,
                message: message.into(),
                details,
                metadata,
                pushback: None,
                source: None,
            }),
        }
    }

    /// `OK` with no message, made once: a call that ends well needs no
    /// status of its own (an allocation per call, finding 16).
    pub(crate) fn ok_shared() -> &'static Status {
        static OK: std::sync::LazyLock<Status> = std::sync::LazyLock::new(|| Status::ok(""));
        &OK
    }

    /// The status with `source` as the local error behind it (an IO or
    /// HTTP/2 error, say): [`std::error::Error::source`] returns it. It is
    /// not sent to the peer.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Status {
        self.inner.source = Some(Arc::new(source));
        self
    }

    code_constructors! {
        /// A status with [`Code::Ok`].
        ok => Ok,
        /// A status with [`Code::Cancelled`].
        cancelled => Cancelled,
        /// A status with [`Code::Unknown`].
        unknown => Unknown,
        /// A status with [`Code::InvalidArgument`].
        invalid_argument => InvalidArgument,
        /// A status with [`Code::DeadlineExceeded`].
        deadline_exceeded => DeadlineExceeded,
        /// A status with [`Code::NotFound`].
        not_found => NotFound,
        /// A status with [`Code::AlreadyExists`].
        already_exists => AlreadyExists,
        /// A status with [`Code::PermissionDenied`].
        permission_denied => PermissionDenied,
        /// A status with [`Code::ResourceExhausted`].
        resource_exhausted => ResourceExhausted,
        /// A status with [`Code::FailedPrecondition`].
        failed_precondition => FailedPrecondition,
        /// A status with [`Code::Aborted`].
        aborted => Aborted,
        /// A status with [`Code::OutOfRange`].
        out_of_range => OutOfRange,
        /// A status with [`Code::Unimplemented`].
        unimplemented => Unimplemented,
        /// A status with [`Code::Internal`].
        internal => Internal,
        /// A status with [`Code::Unavailable`].
        unavailable => Unavailable,
        /// A status with [`Code::DataLoss`].
        data_loss => DataLoss,
        /// A status with [`Code::Unauthenticated`].
        unauthenticated => Unauthenticated,
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.inner.code
    }

    /// The status message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The binary details (empty when none).
    pub fn details(&self) -> &Bytes {
        &self.inner.details
    }

    /// Asks the client not to retry this call before `delay` has passed, or
    /// (`None`) not at all: the `grpc-retry-pushback-ms` trailer of
    /// gRPC's retry design, which a client retrying under a policy obeys.
    pub fn with_retry_pushback(mut self, delay: Option<std::time::Duration>) -> Status {
        self.inner.pushback = Some(delay);
        self
    }

    /// The server's retry pushback, when it sent one: `Some(None)` means
    /// "do not retry" (a negative or unreadable value).
    pub fn retry_pushback(&self) -> Option<Option<std::time::Duration>> {
        self.inner.pushback
    }

    /// The custom metadata sent along (in the trailers).
    pub fn metadata(&self) -> &MetadataMap {
        &self.inner.metadata
    }

    /// The custom metadata, to change it.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.inner.metadata
    }

    /// Writes `grpc-status`, `grpc-message` (percent-encoded; omitted when
    /// empty), `grpc-status-details-bin` (base64 without padding; omitted
    /// when empty) and then every metadata entry into `headers`.
    ///
    /// The three `grpc-*` headers replace any present; metadata is appended.
    pub fn add_header(&self, headers: &mut HeaderMap) {
        headers.insert(GRPC_STATUS, self.inner.code.header_value());
        if !self.inner.message.is_empty() {
            let encoded = encode_grpc_message(&self.inner.message);
            // Always valid: the encoded text is printable ASCII.
            if let Ok(value) = HeaderValue::from_str(&encoded) {
                headers.insert(GRPC_MESSAGE, value);
            }
        }
        if !self.inner.details.is_empty() {
            let encoded = BASE64.encode(&self.inner.details);
            if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(encoded)) {
                headers.insert(GRPC_STATUS_DETAILS_BIN, value);
            }
        }
        if let Some(pushback) = self.inner.pushback {
            let value = match pushback {
                Some(delay) => {
                    HeaderValue::from(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
                }
                None => HeaderValue::from_static("-1"),
            };
            headers.insert(GRPC_RETRY_PUSHBACK_MS, value);
        }
        self.inner.metadata.append_to(headers);
    }

    /// The status as a header map (trailers), see [`add_header`](Self::add_header).
    pub fn to_header_map(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(3 + self.inner.metadata.len());
        self.add_header(&mut headers);
        headers
    }

    /// Reads a status out of trailers (or trailers-only headers); `None` when
    /// there is no `grpc-status` header.
    ///
    /// `grpc-message` is percent-decoded, `grpc-status-details-bin` base64
    /// decoded (padded or not; an undecodable value gives empty details), and
    /// the non-reserved headers become the metadata.
    pub fn from_header_map(headers: &HeaderMap) -> Option<Status> {
        let code = Code::from_bytes(headers.get(&GRPC_STATUS)?.as_bytes());
        let message = headers
            .get(&GRPC_MESSAGE)
            .map(|v| decode_grpc_message(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let details = headers
            .get(&GRPC_STATUS_DETAILS_BIN)
            .and_then(|v| BASE64.decode(v.as_bytes().trim_ascii()).ok())
            .map(Bytes::from)
            .unwrap_or_default();
        let metadata = MetadataMap::from_headers_ref(headers);
        let mut status = Status::with_details_and_metadata(code, message, details, metadata);
        if let Some(value) = headers.get(&GRPC_RETRY_PUSHBACK_MS) {
            let millis = std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok());
            status.inner.pushback = Some(
                millis
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(std::time::Duration::from_millis),
            );
        }
        Some(status)
    }

    /// The gRPC spec's mapping of the HTTP status of a response that has no
    /// `grpc-status`: 400 gives `INTERNAL`, 401 `UNAUTHENTICATED`, 403
    /// `PERMISSION_DENIED`, 404 `UNIMPLEMENTED`, 429, 502, 503 and 504
    /// `UNAVAILABLE`, anything else `UNKNOWN`.
    pub fn from_http_status(status: http::StatusCode) -> Status {
        let code = match status.as_u16() {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        };
        Status::new(code, format!("HTTP status {status}"))
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Status");
        s.field("code", &self.inner.code)
            .field("message", &self.inner.message);
        if !self.inner.details.is_empty() {
            s.field("details_len", &self.inner.details.len());
        }
        if !self.inner.metadata.is_empty() {
            s.field("metadata", &self.inner.metadata.as_headers());
        }
        s.finish()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "status: {:?}, message: {:?}",
            self.inner.code, self.inner.message
        )
    }
}

impl std::error::Error for Status {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Status {
    /// Connection-level IO errors (broken pipe, reset, aborted, refused, not
    /// connected, unexpected EOF, timed out, write zero) give `UNAVAILABLE`;
    /// others `UNKNOWN`.
    fn from(err: std::io::Error) -> Status {
        use std::io::ErrorKind::*;
        let code = match err.kind() {
            BrokenPipe | ConnectionReset | ConnectionAborted | ConnectionRefused | NotConnected
            | UnexpectedEof | TimedOut | WriteZero | AddrNotAvailable => Code::Unavailable,
            _ => Code::Unknown,
        };
        Status::new(code, format!("io error: {err}")).with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_round_trips() {
        for (i, code) in Code::ALL.iter().enumerate() {
            let n = i as i32;
            assert_eq!(code.as_i32(), n);
            assert_eq!(Code::from_i32(n), *code);
            assert_eq!(Code::from(n), *code);
            assert_eq!(i32::from(*code), n);
            let hv = code.header_value();
            assert_eq!(hv.to_str().unwrap(), n.to_string());
            assert_eq!(Code::from_bytes(hv.as_bytes()), *code);
            assert!(!code.description().is_empty());
            assert_eq!(code.to_string(), code.description());
        }
    }

    #[test]
    fn code_names_are_the_spec_names() {
        assert_eq!(Code::Ok.name(), "OK");
        assert_eq!(Code::DeadlineExceeded.name(), "DEADLINE_EXCEEDED");
        assert_eq!(Code::Unauthenticated.name(), "UNAUTHENTICATED");
        let names: std::collections::HashSet<_> = Code::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Code::ALL.len());
    }

    #[test]
    fn code_garbage_is_unknown() {
        for n in [-1, 17, 100, i32::MIN, i32::MAX] {
            assert_eq!(Code::from_i32(n), Code::Unknown);
        }
        for b in [
            &b""[..],
            b"17",
            b"99",
            b"100",
            b"-1",
            b"+1",
            b"a",
            b"1a",
            b"0x1",
            b"\xff",
            b"000",
        ] {
            assert_eq!(Code::from_bytes(b), Code::Unknown, "{b:?}");
        }
        assert_eq!(Code::from_bytes(b" 5 "), Code::NotFound);
        assert_eq!(Code::from_bytes(b"05"), Code::NotFound);
    }

    #[test]
    fn constructors() {
        type Make = fn(&'static str) -> Status;
        let cases: [(Make, Code); 17] = [
            (|m| Status::ok(m), Code::Ok),
            (|m| Status::cancelled(m), Code::Cancelled),
            (|m| Status::unknown(m), Code::Unknown),
            (|m| Status::invalid_argument(m), Code::InvalidArgument),
            (|m| Status::deadline_exceeded(m), Code::DeadlineExceeded),
            (|m| Status::not_found(m), Code::NotFound),
            (|m| Status::already_exists(m), Code::AlreadyExists),
            (|m| Status::permission_denied(m), Code::PermissionDenied),
            (|m| Status::resource_exhausted(m), Code::ResourceExhausted),
            (|m| Status::failed_precondition(m), Code::FailedPrecondition),
            (|m| Status::aborted(m), Code::Aborted),
            (|m| Status::out_of_range(m), Code::OutOfRange),
            (|m| Status::unimplemented(m), Code::Unimplemented),
            (|m| Status::internal(m), Code::Internal),
            (|m| Status::unavailable(m), Code::Unavailable),
            (|m| Status::data_loss(m), Code::DataLoss),
            (|m| Status::unauthenticated(m), Code::Unauthenticated),
        ];
        for (make, code) in cases {
            let s = make("msg");
            assert_eq!(s.code(), code);
            assert_eq!(s.message(), "msg");
            assert!(s.details().is_empty());
            assert!(s.metadata().is_empty());
        }
    }

    #[test]
    fn message_encoding() {
        assert_eq!(encode_grpc_message("plain text ~"), "plain text ~");
        assert!(matches!(encode_grpc_message("plain"), Cow::Borrowed(_)));
        assert_eq!(encode_grpc_message("100%"), "100%25");
        assert_eq!(encode_grpc_message("a\nb\r\t"), "a%0Ab%0D%09");
        assert_eq!(encode_grpc_message("é"), "%C3%A9");
        assert_eq!(encode_grpc_message("\u{7f}"), "%7F");
        assert_eq!(decode_grpc_message(b"100%25"), "100%");
        assert_eq!(decode_grpc_message(b"%C3%A9"), "é");
        // Invalid sequences are kept literally, invalid UTF-8 replaced.
        assert_eq!(decode_grpc_message(b"50% off %zz %4"), "50% off %zz %4");
        assert_eq!(decode_grpc_message(b"%FF"), "\u{FFFD}");
        assert_eq!(decode_grpc_message(b"%c3%a9"), "é");
    }

    #[test]
    fn header_round_trip() {
        let mut metadata = MetadataMap::new();
        metadata.insert("x-retry", "no").unwrap();
        metadata.insert_bin("x-blob-bin", [0u8, 1, 2, 255]).unwrap();
        let message = "\u{1F600} 100% done\n";
        let details = Bytes::from_static(b"\x08\x03\x12\x04oops\xff");
        let status = Status::with_details_and_metadata(
            Code::InvalidArgument,
            message,
            details.clone(),
            metadata,
        );
        let mut headers = HeaderMap::new();
        status.add_header(&mut headers);
        assert_eq!(headers.get("grpc-status").unwrap(), "3");
        assert_eq!(
            headers.get("grpc-message").unwrap(),
            "%F0%9F%98%80 100%25 done%0A"
        );
        let details_header = headers.get("grpc-status-details-bin").unwrap();
        assert!(!details_header.as_bytes().ends_with(b"="));
        assert_eq!(headers.get("x-retry").unwrap(), "no");

        let back = Status::from_header_map(&headers).unwrap();
        assert_eq!(back.code(), Code::InvalidArgument);
        assert_eq!(back.message(), message);
        assert_eq!(back.details(), &details);
        assert_eq!(back.metadata().get("x-retry"), Some("no"));
        assert_eq!(
            back.metadata().get_bin("x-blob-bin").unwrap().unwrap(),
            &[0u8, 1, 2, 255][..]
        );
        assert_eq!(back.metadata().len(), 2);
        assert_eq!(status.to_header_map(), headers);
    }

    #[test]
    fn empty_message_and_details_are_omitted() {
        let mut headers = HeaderMap::new();
        Status::ok("").add_header(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers.get("grpc-status").unwrap(), "0");
        let back = Status::from_header_map(&headers).unwrap();
        assert_eq!(back.code(), Code::Ok);
        assert_eq!(back.message(), "");
        assert!(back.details().is_empty());
        assert!(back.metadata().is_empty());
    }

    #[test]
    fn from_header_map_edge_cases() {
        let mut headers = HeaderMap::new();
        headers.insert("x-other", HeaderValue::from_static("1"));
        assert!(Status::from_header_map(&headers).is_none());

        headers.insert("grpc-status", HeaderValue::from_static("garbage"));
        headers.insert("grpc-status-details-bin", HeaderValue::from_static("AQI="));
        headers.insert("grpc-message", HeaderValue::from_static("bad %zz"));
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        let s = Status::from_header_map(&headers).unwrap();
        assert_eq!(s.code(), Code::Unknown);
        assert_eq!(s.message(), "bad %zz");
        assert_eq!(s.details().as_ref(), &[1, 2]);
        assert_eq!(s.metadata().len(), 1);

        headers.insert("grpc-status-details-bin", HeaderValue::from_static("!!!"));
        let s = Status::from_header_map(&headers).unwrap();
        assert!(s.details().is_empty());
    }

    #[test]
    fn a_status_keeps_its_source_but_does_not_send_it() {
        let status = Status::from(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "pipe gone",
        ));
        let source = std::error::Error::source(&status).expect("the io error");
        assert_eq!(source.to_string(), "pipe gone");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe);
        // Clones share it; the wire form does not carry it.
        assert!(std::error::Error::source(&status.clone()).is_some());
        let back = Status::from_header_map(&status.to_header_map()).unwrap();
        assert!(std::error::Error::source(&back).is_none());
        assert!(std::error::Error::source(&Status::internal("x")).is_none());
    }

    #[test]
    fn io_error_mapping() {
        let s = Status::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().contains("reset"));
        for kind in [
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::ConnectionAborted,
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::NotConnected,
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::TimedOut,
            std::io::ErrorKind::WriteZero,
            std::io::ErrorKind::AddrNotAvailable,
        ] {
            assert_eq!(
                Status::from(std::io::Error::from(kind)).code(),
                Code::Unavailable,
                "{kind:?}"
            );
        }
        assert_eq!(
            Status::from(std::io::Error::from(std::io::ErrorKind::InvalidData)).code(),
            Code::Unknown
        );
    }

    #[test]
    fn http_status_mapping() {
        use http::StatusCode;
        let cases = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (200, Code::Unknown),
            (500, Code::Unknown),
            (418, Code::Unknown),
        ];
        for (n, code) in cases {
            let s = Status::from_http_status(StatusCode::from_u16(n).unwrap());
            assert_eq!(s.code(), code, "{n}");
        }
        assert_eq!(
            Status::from_http_status(StatusCode::NOT_FOUND).message(),
            "HTTP status 404 Not Found"
        );
    }

    #[test]
    fn status_is_small() {
        assert_eq!(std::mem::size_of::<Status>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn debug_and_display() {
        let mut s = Status::with_details(Code::Internal, "boom \"x\"", Bytes::from_static(b"abc"));
        s.metadata_mut().insert("k", "v").unwrap();
        assert_eq!(
            s.to_string(),
            "status: Internal, message: \"boom \\\"x\\\"\""
        );
        let dbg = format!("{s:?}");
        assert!(dbg.contains("Internal"), "{dbg}");
        assert!(dbg.contains("details_len: 3"), "{dbg}");
        assert!(dbg.contains("\"k\""), "{dbg}");
        let err: Box<dyn std::error::Error> = Box::new(s);
        assert!(err.to_string().starts_with("status: Internal"));
    }
}
