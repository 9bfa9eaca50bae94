//! Names (and a few fixed values) of the HTTP/2 headers that gRPC uses.
//!
//! All names are lowercase, as HTTP/2 requires; turn them into
//! [`http::HeaderName`]s with [`http::HeaderName::from_static`].

// Each side (client, server, status) uses only some of these constants.
#![allow(dead_code)]

/// The status code of a call, in trailers (or trailers-only headers).
pub(crate) const GRPC_STATUS: &str = "grpc-status";
/// The percent-encoded status message.
pub(crate) const GRPC_MESSAGE: &str = "grpc-message";
/// The base64 encoded `google.rpc.Status` (or any bytes) of a status.
pub(crate) const GRPC_STATUS_DETAILS_BIN: &str = "grpc-status-details-bin";
/// The time the client allows for a call, see [`crate::timeout`].
pub(crate) const GRPC_TIMEOUT: &str = "grpc-timeout";
/// The compression of the messages a peer sends.
pub(crate) const GRPC_ENCODING: &str = "grpc-encoding";
/// The compressions a peer accepts, comma-separated.
pub(crate) const GRPC_ACCEPT_ENCODING: &str = "grpc-accept-encoding";
/// The content type of requests and responses.
pub(crate) const CONTENT_TYPE: &str = "content-type";
/// The `te` request header; gRPC requires the value `trailers`.
pub(crate) const TE: &str = "te";
/// The user agent of a client.
pub(crate) const USER_AGENT: &str = "user-agent";

/// The base content type of gRPC (`application/grpc+proto` and other
/// `application/grpc+...` subtypes are accepted on receipt).
pub(crate) const APPLICATION_GRPC: &str = "application/grpc";
/// The only value of [`TE`] allowed by gRPC.
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
            CONTENT_TYPE,
            TE,
            USER_AGENT,
        ] {
            let parsed = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(parsed.as_str(), name);
        }
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
