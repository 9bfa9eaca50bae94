//! Names (and a few fixed values) of the HTTP/2 headers that gRPC uses.
//!
//! The names are [`http::HeaderName`] constants, built at compile time:
//! looking a header up or inserting one by a `&str` name parses and
//! validates the name on every call (it showed in the server's per-call
//! profile). The standard HTTP headers gRPC uses (`content-type`, `te`,
//! `user-agent`) come from [`http::header`].

use http::HeaderName;

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

/// The service (`package.Service`) and the method of a call's path,
/// `/package.Service/Method`; `None` when either part is missing.
pub(crate) fn split_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix('/')
        .and_then(|path| path.rsplit_once('/'))
        .filter(|(service, method)| !service.is_empty() && !method.is_empty())
}

#[cfg(test)]
mod tests {
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
