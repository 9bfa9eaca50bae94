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

/// The builder methods of the HTTP/2 settings, for a builder whose
/// [`Http2Settings`] are at `self.$($path).+`: the server's and the
/// channel's builders take the same settings with the same words.
macro_rules! http2_setters {
    ($($path:ident).+) => {
        /// HTTP/2 flow-control window of each call (default 1 MiB,
        /// [`DEFAULT_STREAM_WINDOW`](crate::settings::DEFAULT_STREAM_WINDOW)).
        pub fn initial_stream_window_size(mut self, size: u32) -> Self {
            self.$($path).+.initial_stream_window_size = size;
            self
        }

        /// HTTP/2 flow-control window of each connection (default 2 MiB,
        /// [`DEFAULT_CONNECTION_WINDOW`](crate::settings::DEFAULT_CONNECTION_WINDOW)).
        pub fn initial_connection_window_size(mut self, size: u32) -> Self {
            self.$($path).+.initial_connection_window_size = size;
            self
        }

        /// Largest HTTP/2 frame payload accepted (16 KiB to 16 MiB - 1,
        /// default 16 KiB).
        pub fn max_frame_size(mut self, size: u32) -> Self {
            self.$($path).+.max_frame_size = size;
            self
        }

        /// Largest header block accepted from the peer (default 16 KiB).
        pub fn max_header_list_size(mut self, size: u32) -> Self {
            self.$($path).+.max_header_list_size = size;
            self
        }

        /// Time a new connection has to complete the HTTP/2 handshake
        /// (default 20 s).
        pub fn handshake_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.$($path).+.handshake_timeout = timeout;
            self
        }
    };
}
pub(crate) use http2_setters;
