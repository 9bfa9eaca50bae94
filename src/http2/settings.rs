//! The HTTP/2 settings both roles take, with their defaults in one place.

use std::time::Duration;

/// Flow-control window of each call (1 MiB).
pub const DEFAULT_STREAM_WINDOW: u32 = 1024 * 1024;
/// Flow-control window of a connection (2 MiB).
pub const DEFAULT_CONNECTION_WINDOW: u32 = 2 * 1024 * 1024;
/// Largest frame payload accepted (16 KiB, HTTP/2's own default; a
/// `GrpcStream` over libp2p takes 64 KiB unless told otherwise).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16 * 1024;
/// The largest frame payload HTTP/2 allows a peer to accept (16 MiB - 1).
const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
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
    /// `None`: the transport's default ([`DEFAULT_MAX_FRAME_SIZE`] unless
    /// [`or_max_frame_size`](Self::or_max_frame_size) gave another).
    pub(crate) max_frame_size: Option<u32>,
    pub(crate) max_header_list_size: u32,
    pub(crate) max_send_buffer_size: usize,
    pub(crate) handshake_timeout: Duration,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            initial_stream_window_size: DEFAULT_STREAM_WINDOW,
            initial_connection_window_size: DEFAULT_CONNECTION_WINDOW,
            max_frame_size: None,
            max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
            max_send_buffer_size: DEFAULT_MAX_SEND_BUFFER,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl Http2Settings {
    /// Takes `size` as the largest frame payload, unless one was set.
    #[cfg(feature = "libp2p")]
    pub(crate) fn or_max_frame_size(&mut self, size: u32) {
        self.max_frame_size.get_or_insert(size);
    }

    /// The largest frame payload to accept, within what HTTP/2 allows (h2
    /// panics outside it).
    fn frame_size(&self) -> u32 {
        self.max_frame_size
            .unwrap_or(DEFAULT_MAX_FRAME_SIZE)
            .clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE)
    }

    /// A client builder with these settings.
    pub(crate) fn client(&self) -> h2::client::Builder {
        let mut builder = h2::client::Builder::new();
        builder
            .initial_window_size(self.initial_stream_window_size)
            .initial_connection_window_size(self.initial_connection_window_size)
            .max_frame_size(self.frame_size())
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
            .max_frame_size(self.frame_size())
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

        /// Largest HTTP/2 frame payload accepted (16 KiB to 16 MiB - 1;
        /// values outside are taken as the nearest bound). Default 16 KiB
        /// ([`DEFAULT_MAX_FRAME_SIZE`](crate::settings::DEFAULT_MAX_FRAME_SIZE)),
        /// and 64 KiB in a `GrpcStream` over libp2p, where it lifts the
        /// throughput of large messages.
        pub fn max_frame_size(mut self, size: u32) -> Self {
            self.$($path).+.max_frame_size = Some(size);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_outside_what_http2_allows_take_the_nearest_bound() {
        let with = |size| Http2Settings {
            max_frame_size: size,
            ..Http2Settings::default()
        };
        assert_eq!(with(None).frame_size(), 16_384);
        assert_eq!(with(Some(100)).frame_size(), 16_384);
        assert_eq!(with(Some(65_536)).frame_size(), 65_536);
        assert_eq!(with(Some(u32::MAX)).frame_size(), (1 << 24) - 1);
    }
}
