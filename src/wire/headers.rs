//! Names (and a few fixed values) of the HTTP/2 headers that gRPC uses.
//!
//! The names are [`http::HeaderName`] constants, built at compile time:
//! looking a header up or inserting one by a `&str` name parses and
//! validates the name on every call (it showed in the server's per-call
//! profile). The standard HTTP headers gRPC uses (`content-type`, `te`,
//! `user-agent`) come from [`http::header`].

use http::{HeaderName, HeaderValue};

/// The status code of a call, in trailers (or trailers-only headers).
pub(crate) const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// The percent-encoded status message.
pub(crate) const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// The server's retry pushback (gRPC proposal A6): milliseconds to wait
/// before retrying, or a negative value for "do not retry".
pub(crate) const GRPC_RETRY_PUSHBACK_MS: HeaderName =
    HeaderName::from_static("grpc-retry-pushback-ms");
/// How many attempts of a call came before this one (proposal A6).
pub(crate) const GRPC_PREVIOUS_RPC_ATTEMPTS: HeaderName =
    HeaderName::from_static("grpc-previous-rpc-attempts");
/// The base64 encoded `google.rpc.Status` (or any bytes) of a status.
pub(crate) const GRPC_STATUS_DETAILS_BIN: HeaderName =
    HeaderName::from_static("grpc-status-details-bin");
/// The time the client allows for a call, see [`super::timeout`].
pub(crate) const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
/// The compression of the messages a peer sends.
pub(crate) const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
/// The compressions a peer accepts, comma-separated.
pub(crate) const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");

/// The base content type of gRPC (`application/grpc+proto` and other
/// `application/grpc+...` subtypes are accepted on receipt).
pub(crate) const APPLICATION_GRPC: &str = "application/grpc";
/// The only value of the `te` request header that gRPC allows.
pub(crate) const TE_TRAILERS: &str = "trailers";

/// Whether a `content-type` value is a gRPC one: `application/grpc`,
/// optionally followed by `+subtype` or `;parameters`.
pub(crate) fn is_grpc_content_type(value: &[u8]) -> bool {
    let base = APPLICATION_GRPC.as_bytes();
    if value.len() < base.len() || !value[..base.len()].eq_ignore_ascii_case(base) {
        return false;
    }
    matches!(value.get(base.len()), None | Some(b'+') | Some(b';'))
}

/// Whether `headers` say the body is gRPC (see [`is_grpc_content_type`]).
pub(crate) fn has_grpc_content_type(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| is_grpc_content_type(value.as_bytes()))
}

/// The reserved headers of a received request that the server reads,
/// handed over by [`MetadataMap::from_headers_taking`](crate::MetadataMap)
/// as it drops them from the metadata: one pass, no lookup per header.
#[derive(Debug, Default)]
pub(crate) struct RequestHeaders {
    /// `content-type`.
    pub(crate) content_type: Option<HeaderValue>,
    /// `grpc-timeout`.
    pub(crate) timeout: Option<HeaderValue>,
    /// `grpc-encoding`.
    pub(crate) encoding: Option<HeaderValue>,
    /// `grpc-accept-encoding`.
    pub(crate) accept_encoding: Option<HeaderValue>,
}

impl RequestHeaders {
    /// Keeps `value` if `name` is one of the headers above.
    pub(crate) fn take(&mut self, name: &HeaderName, value: HeaderValue) {
        let slot = if *name == http::header::CONTENT_TYPE {
            &mut self.content_type
        } else if *name == GRPC_TIMEOUT {
            &mut self.timeout
        } else if *name == GRPC_ENCODING {
            &mut self.encoding
        } else if *name == GRPC_ACCEPT_ENCODING {
            &mut self.accept_encoding
        } else {
            return;
        };
        *slot = Some(value);
    }

    /// Whether the body is gRPC (see [`is_grpc_content_type`]).
    pub(crate) fn is_grpc(&self) -> bool {
        self.content_type
            .as_ref()
            .is_some_and(|value| is_grpc_content_type(value.as_bytes()))
    }
}

/// The service (`package.Service`) and the method of a call's path,
/// `/package.Service/Method`; `None` when either part is missing.
pub(crate) fn split_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix('/')
        .and_then(|path| path.rsplit_once('/'))
        .filter(|(service, method)| !service.is_empty() && !method.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_keeps_the_grpc_headers_the_server_reads() {
        let mut grpc = RequestHeaders::default();
        assert!(!grpc.is_grpc(), "no content-type");
        for (name, value) in [
            (http::header::CONTENT_TYPE, "application/grpc+proto"),
            (GRPC_TIMEOUT, "5m"),
            (GRPC_ENCODING, "gzip"),
            (GRPC_ACCEPT_ENCODING, "gzip,identity"),
            (http::header::TE, "trailers"),
        ] {
            grpc.take(&name, HeaderValue::from_static(value));
        }
        assert!(grpc.is_grpc());
        assert_eq!(grpc.timeout.unwrap(), "5m");
        assert_eq!(grpc.encoding.unwrap(), "gzip");
        assert_eq!(grpc.accept_encoding.unwrap(), "gzip,identity");
        let mut json = RequestHeaders::default();
        json.take(
            &http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!json.is_grpc());
    }

    use super::*;

    #[test]
    fn names_are_the_grpc_header_names() {
        let names = [
            GRPC_STATUS,
            GRPC_MESSAGE,
            GRPC_STATUS_DETAILS_BIN,
            GRPC_TIMEOUT,
            GRPC_ENCODING,
            GRPC_ACCEPT_ENCODING,
        ];
        let texts = [
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
            "grpc-timeout",
            "grpc-encoding",
            "grpc-accept-encoding",
        ];
        for (name, text) in names.iter().zip(texts) {
            assert_eq!(
                name,
                &http::HeaderName::from_bytes(text.as_bytes()).unwrap()
            );
        }
    }

    #[test]
    fn a_header_map_says_whether_the_body_is_grpc() {
        let mut headers = http::HeaderMap::new();
        assert!(!has_grpc_content_type(&headers), "no content-type");
        headers.insert("content-type", "application/json".parse().unwrap());
        assert!(!has_grpc_content_type(&headers));
        headers.insert("content-type", "application/grpc+proto".parse().unwrap());
        assert!(has_grpc_content_type(&headers));
    }

    #[test]
    fn grpc_content_types() {
        assert!(is_grpc_content_type(b"application/grpc"));
        assert!(is_grpc_content_type(b"application/grpc+proto"));
        assert!(is_grpc_content_type(b"application/grpc;charset=utf-8"));
        assert!(is_grpc_content_type(b"Application/GRPC"));
        assert!(!is_grpc_content_type(b"application/grpcx"));
        assert!(!is_grpc_content_type(b"application/json"));
        assert!(!is_grpc_content_type(b"application/grp"));
        assert!(!is_grpc_content_type(b""));
    }

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(split_path("/a.B/C"), Some(("a.B", "C")));
        assert_eq!(split_path("/a/b.C/D"), Some(("a/b.C", "D")));
        for bad in ["", "/", "a.B/C", "/a.B/", "//C", "/a.B"] {
            assert_eq!(split_path(bad), None, "{bad:?}");
        }
    }
}
