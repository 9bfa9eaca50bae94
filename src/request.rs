//! [`Request`]: a message with its metadata, extensions and timeout.

use std::time::Duration;

use futures::Stream;

use crate::wire::metadata::MetadataMap;

/// A gRPC request: a message (or a stream of messages) with metadata.
///
/// On the client, [`set_timeout`](Request::set_timeout) sets the call's
/// deadline (sent as `grpc-timeout` and enforced locally). On the server,
/// [`timeout`](Request::timeout) is the time the client allowed, and the
/// [`extensions`](Request::extensions) hold what the transport attached, such
/// as the remote libp2p peer.
#[derive(Debug, Default)]
pub struct Request<T> {
    metadata: MetadataMap,
    message: T,
    extensions: http::Extensions,
    timeout: Option<Duration>,
    wait_for_ready: bool,
}

impl<T> Request<T> {
    /// A request with no metadata.
    pub fn new(message: T) -> Self {
        Request {
            metadata: MetadataMap::new(),
            message,
            extensions: http::Extensions::new(),
            timeout: None,
            wait_for_ready: false,
        }
    }

    /// Builds a request from its parts.
    pub fn from_parts(metadata: MetadataMap, extensions: http::Extensions, message: T) -> Self {
        Request {
            metadata,
            message,
            extensions,
            timeout: None,
            wait_for_ready: false,
        }
    }

    /// Splits the request into metadata, extensions and message.
    pub fn into_parts(self) -> (MetadataMap, http::Extensions, T) {
        (self.metadata, self.extensions, self.message)
    }

    /// The message.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The message, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// Takes the message out.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// The custom metadata (request headers).
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// The custom metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// Server side, over TCP: the client's address (from the
    /// [`TcpConnectInfo`](crate::TcpConnectInfo) that
    /// [`Server::serve`](crate::Server::serve) and `serve_listener` attach).
    pub fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        self.extensions
            .get::<crate::TcpConnectInfo>()
            .map(|info| info.remote_addr)
    }

    /// Server side, over TLS: the certificate chain the client presented
    /// (leaf first), when it presented one (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn peer_certificates(&self) -> Option<&[crate::tls::Certificate]> {
        self.extensions
            .get::<crate::tls::PeerCertificates>()
            .map(|certificates| certificates.chain())
    }

    /// Typed values attached by the application or the transport.
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// Typed values, mutably.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }

    /// Client side: the time the call may take, sent as `grpc-timeout`.
    /// Server side: the timeout the client sent, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Sets the call's timeout (client side).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// Sets the call's timeout and returns the request, for chaining.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Client side: whether the call waits while the channel cannot
    /// connect (gRPC's wait-for-ready), instead of failing at once with
    /// `UNAVAILABLE`. A waiting call keeps trying as the channel's
    /// [backoff](crate::client::Backoff) allows, until its deadline.
    pub fn wait_for_ready(&self) -> bool {
        self.wait_for_ready
    }

    /// Sets [`wait_for_ready`](Self::wait_for_ready) (default: off).
    pub fn set_wait_for_ready(&mut self, wait: bool) {
        self.wait_for_ready = wait;
    }

    pub(crate) fn set_timeout_opt(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Maps the message, keeping metadata, extensions and timeout.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            metadata: self.metadata,
            message: f(self.message),
            extensions: self.extensions,
            timeout: self.timeout,
            wait_for_ready: self.wait_for_ready,
        }
    }
}

/// Turns a message (or a ready [`Request`]) into a [`Request`]; what generated
/// client methods accept.
pub trait IntoRequest<T> {
    /// Wraps the value in a request.
    fn into_request(self) -> Request<T>;
}

impl<T> IntoRequest<T> for T {
    fn into_request(self) -> Request<T> {
        Request::new(self)
    }
}

impl<T> IntoRequest<T> for Request<T> {
    fn into_request(self) -> Request<T> {
        self
    }
}

/// Turns a stream of messages (or a [`Request`] holding one) into a streaming
/// request; what generated client methods of the streaming kinds accept.
pub trait IntoStreamingRequest {
    /// The stream of messages.
    type Stream: Stream<Item = Self::Message> + Send + 'static;
    /// The message type.
    type Message;

    /// Wraps the stream in a request.
    fn into_streaming_request(self) -> Request<Self::Stream>;
}

impl<T> IntoStreamingRequest for T
where
    T: Stream + Send + 'static,
{
    type Stream = T;
    type Message = T::Item;

    fn into_streaming_request(self) -> Request<T> {
        Request::new(self)
    }
}

impl<T> IntoStreamingRequest for Request<T>
where
    T: Stream + Send + 'static,
{
    type Stream = T;
    type Message = T::Item;

    fn into_streaming_request(self) -> Request<T> {
        self
    }
}
