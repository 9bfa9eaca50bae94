//! Names (and a few fixed values) of the HTTP/2 headers that gRPC uses.
//!
//! All names are lowercase, as HTTP/2 requires; turn them into
//! [`http::HeaderName`]s with [`http::HeaderName::from_static`]. The
//! standard HTTP headers gRPC uses (`content-type`, `te`, `user-agent`)
//! come from [`http::header`].

/// The status code of a call, in trailers (or trailers-only headers).
pub(crate) const GRPC_STATUS: &str = "grpc-status";
/// The percent-encoded status message.
pub(crate) const GRPC_MESSAGE: &str = "grpc-message";
/// The base64 encoded `google.rpc.Status` (or any bytes) of a status.
pub(crate) const GRPC_STATUS_DETAILS_BIN: &str = "grpc-status-details-bin";
/// The time the client allows for a call, see [`super::timeout`].
pub(crate) const GRPC_TIMEOUT: &str = "grpc-timeout";
/// The compression of the messages a peer sends.
pub(crate) const GRPC_ENCODING: &str = "grpc-encoding";
/// The compressions a peer accepts, comma-separated.
pub(crate) const GRPC_ACCEPT_ENCODING: &str = "grpc-accept-encoding";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_lowercase_header_names() {
        for name in [
            GRPC_STATUS,
            GRPC_MESSAGE,
            GRPC_STATUS_DETAILS_BIN,
            GRPC_TIMEOUT,
            GRPC_ENCODING,
            GRPC_ACCEPT_ENCODING,
        ] {
            let parsed = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(parsed.as_str(), name);
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
}
