//! h2's errors as gRPC statuses, crate-private so that no h2 type reaches
//! the public API.

use crate::wire::status::{Code, Status};

/// The status of a call that failed with `err`.
///
/// Stream resets and connection errors (GOAWAY) follow the gRPC spec's
/// table: `NO_ERROR`, `PROTOCOL_ERROR`, `INTERNAL_ERROR`,
/// `FLOW_CONTROL_ERROR`, `SETTINGS_TIMEOUT`, `STREAM_CLOSED`,
/// `FRAME_SIZE_ERROR`, `COMPRESSION_ERROR`, `CONNECT_ERROR`,
/// `HTTP_1_1_REQUIRED` give `INTERNAL`; `REFUSED_STREAM` gives
/// `UNAVAILABLE`; `CANCEL` gives `CANCELLED`; `ENHANCE_YOUR_CALM` gives
/// `RESOURCE_EXHAUSTED`; `INADEQUATE_SECURITY` gives `PERMISSION_DENIED`;
/// unknown reasons give `UNKNOWN`. A GOAWAY with `NO_ERROR` (the connection
/// is going away, the call may be retried elsewhere) and IO errors give
/// `UNAVAILABLE`. Other errors (misuse of h2 by this crate) give
/// `INTERNAL`. The message includes h2's text.
pub(crate) fn status_from_h2(err: &h2::Error) -> Status {
    let code = if err.is_io() {
        Code::Unavailable
    } else if let Some(reason) = err.reason() {
        if err.is_go_away() && reason == h2::Reason::NO_ERROR {
            Code::Unavailable
        } else {
            code_from_reason(reason)
        }
    } else {
        Code::Internal
    };
    let message = if err.is_io() {
        format!("connection error: {err}")
    } else {
        format!("h2 protocol error: {err}")
    };
    Status::new(code, message).with_source(H2Error(err.to_string()))
}

/// h2's error as the source of a status: its text (h2's error type is not
/// clonable and stays out of the public API).
#[derive(Debug)]
struct H2Error(String);

impl std::fmt::Display for H2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for H2Error {}

/// The gRPC code for an HTTP/2 error code (RST_STREAM or GOAWAY reason).
fn code_from_reason(reason: h2::Reason) -> Code {
    match reason {
        h2::Reason::NO_ERROR
        | h2::Reason::PROTOCOL_ERROR
        | h2::Reason::INTERNAL_ERROR
        | h2::Reason::FLOW_CONTROL_ERROR
        | h2::Reason::SETTINGS_TIMEOUT
        | h2::Reason::STREAM_CLOSED
        | h2::Reason::FRAME_SIZE_ERROR
        | h2::Reason::COMPRESSION_ERROR
        | h2::Reason::CONNECT_ERROR
        | h2::Reason::HTTP_1_1_REQUIRED => Code::Internal,
        h2::Reason::REFUSED_STREAM => Code::Unavailable,
        h2::Reason::CANCEL => Code::Cancelled,
        h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    #[test]
    fn reasons_map_as_the_spec_says() {
        use h2::Reason;
        let cases = [
            (Reason::NO_ERROR, Code::Internal),
            (Reason::PROTOCOL_ERROR, Code::Internal),
            (Reason::INTERNAL_ERROR, Code::Internal),
            (Reason::FLOW_CONTROL_ERROR, Code::Internal),
            (Reason::SETTINGS_TIMEOUT, Code::Internal),
            (Reason::STREAM_CLOSED, Code::Internal),
            (Reason::FRAME_SIZE_ERROR, Code::Internal),
            (Reason::COMPRESSION_ERROR, Code::Internal),
            (Reason::CONNECT_ERROR, Code::Internal),
            (Reason::HTTP_1_1_REQUIRED, Code::Internal),
            (Reason::REFUSED_STREAM, Code::Unavailable),
            (Reason::CANCEL, Code::Cancelled),
            (Reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
            (Reason::INADEQUATE_SECURITY, Code::PermissionDenied),
            (Reason::from(0xabc), Code::Unknown),
        ];
        for (reason, code) in cases {
            let err = h2::Error::from(reason);
            let status = status_from_h2(&err);
            assert_eq!(status.code(), code, "{reason:?}");
            assert_eq!(status.message(), format!("h2 protocol error: {err}"));
        }
    }

    /// A byte stream whose every read and write fails with `ConnectionReset`.
    struct Broken;

    impl tokio::io::AsyncRead for Broken {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
        }
    }

    impl tokio::io::AsyncWrite for Broken {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_connection_that_failed_in_its_io_is_unavailable() {
        // A real h2 IO error: a client whose byte stream breaks.
        let err = futures::executor::block_on(async {
            match h2::client::handshake(Broken).await {
                Err(err) => err,
                Ok((_send, connection)) => connection.await.expect_err("the stream is broken"),
            }
        });
        assert!(err.is_io(), "{err:?}");
        let status = status_from_h2(&err);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().starts_with("connection error: "),
            "{status:?}"
        );
    }

    /// The error a call sees when its server goes away gracefully before
    /// taking it: a real GOAWAY `NO_ERROR` (last stream 0) from a raw server
    /// over an in-memory pipe.
    fn graceful_goaway() -> h2::Error {
        use tokio::io::AsyncWriteExt;
        futures::executor::block_on(async {
            let (client_io, mut server_io) = tokio::io::duplex(64 * 1024);
            // The server's preface (an empty SETTINGS), then GOAWAY.
            let mut frames = vec![0, 0, 0, 0x4, 0, 0, 0, 0, 0];
            frames.extend(crate::wire::frame_scan::goaway_frame(0, 0, b""));
            server_io.write_all(&frames).await.unwrap();
            let (mut send, connection) = h2::client::handshake(client_io).await.unwrap();
            let request = http::Request::post("http://x/").body(()).unwrap();
            let (response, _body) = send.send_request(request, true).unwrap();
            let (_, response) = futures::join!(connection, response);
            drop(server_io);
            response.expect_err("the server went away")
        })
    }

    #[test]
    fn a_graceful_goaway_is_unavailable_not_internal() {
        let goaway = graceful_goaway();
        assert!(goaway.is_go_away(), "{goaway:?}");
        assert_eq!(goaway.reason(), Some(h2::Reason::NO_ERROR));
        let status = status_from_h2(&goaway);
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        // Only GOAWAY NO_ERROR is retryable; a reset with NO_ERROR is not.
        let reset = h2::Error::from(h2::Reason::NO_ERROR);
        assert!(!reset.is_go_away());
        assert_eq!(status_from_h2(&reset).code(), Code::Internal);
    }

    #[test]
    fn the_status_keeps_h2s_error_text_as_its_source() {
        let err = h2::Error::from(h2::Reason::CANCEL);
        let status = status_from_h2(&err);
        let source = std::error::Error::source(&status).expect("a source");
        assert_eq!(source.to_string(), err.to_string());
        assert!(!source.to_string().is_empty());
    }
}
