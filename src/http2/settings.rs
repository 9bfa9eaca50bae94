//! The HTTP/2 settings both roles take, with their defaults in one place.

use std::time::Duration;

/// Flow-control window of each call (1 MiB).
pub const DEFAULT_STREAM_WINDOW: u32 = 1024 * 1024;
/// Flow-control window of a connection (2 MiB).
pub const DEFAULT_CONNECTION_WINDOW: u32 = 2 * 1024 * 1024;
/// Largest frame payload accepted (16 KiB, HTTP/2's own default).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16 * 1024;
/// Largest header block accepted (16 KiB).
pub const DEFAULT_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
/// Data h2 may hold per stream before it applies back pressure (1 MiB).
pub const DEFAULT_MAX_SEND_BUFFER: usize = 1024 * 1024;
/// Time the HTTP/2 handshake may take (20 s, as grpc-go's connect timeout).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// The HTTP/2 settings of a server's connections or a channel's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Http2Settings {
    pub(crate) initial_stream_window_size: u32,
    pub(crate) initial_connection_window_size: u32,
    pub(crate) max_frame_size: u32,
    pub(crate) max_header_list_size: u32,
    pub(crate) max_send_buffer_size: usize,
    pub(crate) handshake_timeout: Duration,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            initial_stream_window_size: DEFAULT_STREAM_WINDOW,
            initial_connection_window_size: DEFAULT_CONNECTION_WINDOW,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
            max_send_buffer_size: DEFAULT_MAX_SEND_BUFFER,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl Http2Settings {
    /// A client builder with these settings.
    pub(crate) fn client(&self) -> h2::client::Builder {
        let mut builder = h2::client::Builder::new();
        builder
            .initial_window_size(self.initial_stream_window_size)
            .initial_connection_window_size(self.initial_connection_window_size)
            .max_frame_size(self.max_frame_size)
            .max_header_list_size(self.max_header_list_size)
            .max_send_buffer_size(self.max_send_buffer_size);
        builder
    }

    /// A server builder with these settings.
    pub(crate) fn server(&self) -> h2::server::Builder {
        let mut builder = h2::server::Builder::new();
        builder
            .initial_window_size(self.initial_stream_window_size)
            .initial_connection_window_size(self.initial_connection_window_size)
            .max_frame_size(self.max_frame_size)
            .max_header_list_size(self.max_header_list_size)
            .max_send_buffer_size(self.max_send_buffer_size);
        builder
    }
}
