//! [`Request`]: a message with its metadata, extensions and timeout.

use std::sync::Arc;
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
    extensions: RequestExtensions,
    timeout: Option<Duration>,
    wait_for_ready: bool,
}

/// A request's extensions: its own, or, until they are changed, the ones
/// its connection attaches to every request, shared rather than copied (a
/// copy is three allocations per call, `benches/README.md` finding 16).
#[derive(Debug, Clone)]
pub(crate) enum RequestExtensions {
    /// The request's own.
    Owned(http::Extensions),
    /// The connection's, not yet changed by this request.
    Shared(Arc<http::Extensions>),
}

impl RequestExtensions {
    pub(crate) fn get(&self) -> &http::Extensions {
        match self {
            RequestExtensions::Owned(extensions) => extensions,
            RequestExtensions::Shared(extensions) => extensions,
        }
    }

    /// Copies shared extensions on the first change.
    fn get_mut(&mut self) -> &mut http::Extensions {
        if let RequestExtensions::Shared(shared) = self {
            *self = RequestExtensions::Owned(http::Extensions::clone(shared));
        }
        match self {
            RequestExtensions::Owned(extensions) => extensions,
            RequestExtensions::Shared(_) => unreachable!("made owned above"),
        }
    }

    /// The extensions as the request's own (copied if still shared).
    pub(crate) fn into_owned(self) -> http::Extensions {
        match self {
            RequestExtensions::Owned(extensions) => extensions,
            RequestExtensions::Shared(shared) => Arc::unwrap_or_clone(shared),
        }
    }
}

impl Default for RequestExtensions {
    fn default() -> Self {
        RequestExtensions::Owned(http::Extensions::new())
    }
}

impl<T> Request<T> {
    /// A request with no metadata.
    pub fn new(message: T) -> Self {
        Request {
            metadata: MetadataMap::new(),
            message,
            extensions: RequestExtensions::default(),
            timeout: None,
            wait_for_ready: false,
        }
    }

    /// Builds a request from its parts.
    pub fn from_parts(metadata: MetadataMap, extensions: http::Extensions, message: T) -> Self {
        Request::with_extensions(metadata, RequestExtensions::Owned(extensions), message)
    }

    /// [`from_parts`](Self::from_parts), with extensions that may be shared.
    pub(crate) fn with_extensions(
        metadata: MetadataMap,
        extensions: RequestExtensions,
        message: T,
    ) -> Self {
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
        (self.metadata, self.extensions.into_owned(), self.message)
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
        self.extensions()
            .get::<crate::TcpConnectInfo>()
            .map(|info| info.remote_addr)
    }

    /// Server side, over TLS: the certificate chain the client presented
    /// (leaf first), when it presented one (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn peer_certificates(&self) -> Option<&[crate::tls::Certificate]> {
        self.extensions()
            .get::<crate::tls::PeerCertificates>()
            .map(|certificates| certificates.chain())
    }

    /// Typed values attached by the application or the transport.
    pub fn extensions(&self) -> &http::Extensions {
        self.extensions.get()
    }

    /// Typed values, mutably.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        self.extensions.get_mut()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Peer(u32);

    #[test]
    fn shared_extensions_are_copied_on_the_first_change_only() {
        let mut connection = http::Extensions::new();
        connection.insert(Peer(7));
        let connection = Arc::new(connection);
        let mut request = Request::with_extensions(
            MetadataMap::new(),
            RequestExtensions::Shared(connection.clone()),
            (),
        );
        assert_eq!(request.extensions().get::<Peer>(), Some(&Peer(7)));
        // Read, nothing is copied: the connection's map is the request's.
        assert!(std::ptr::eq(request.extensions(), &*connection));

        request.extensions_mut().insert(Peer(8));
        request.extensions_mut().insert(5u8);
        assert_eq!(request.extensions().get::<Peer>(), Some(&Peer(8)));
        assert_eq!(request.extensions().get::<u8>(), Some(&5));
        // The connection's, seen by its other requests, did not change.
        assert_eq!(connection.get::<Peer>(), Some(&Peer(7)));
        assert_eq!(connection.get::<u8>(), None);

        let (_, extensions, ()) = request.into_parts();
        assert_eq!(extensions.get::<Peer>(), Some(&Peer(8)));
    }

    #[test]
    fn shared_extensions_survive_map_and_into_parts() {
        let mut connection = http::Extensions::new();
        connection.insert(Peer(1));
        let request = Request::with_extensions(
            MetadataMap::new(),
            RequestExtensions::Shared(Arc::new(connection)),
            "message",
        )
        .map(str::len);
        assert_eq!(request.get_ref(), &7);
        let (_, extensions, _) = request.into_parts();
        assert_eq!(extensions.get::<Peer>(), Some(&Peer(1)));
    }
}
