//! [`Response`]: a message with its header and trailer metadata.

use crate::wire::metadata::MetadataMap;

/// A gRPC response: a message (or a stream of messages) with metadata.
///
/// [`metadata`](Response::metadata) travels in the response headers,
/// [`trailers`](Response::trailers) in the trailers after the last message.
/// A server handler may fill both; a client finds both filled in (for
/// streaming responses, the trailers come from
/// [`Streaming::trailers`](crate::Streaming::trailers) once the stream ended).
#[derive(Debug, Default)]
pub struct Response<T> {
    metadata: MetadataMap,
    message: T,
    extensions: http::Extensions,
    trailers: MetadataMap,
}

impl<T> Response<T> {
    /// A response with no metadata.
    pub fn new(message: T) -> Self {
        Response {
            metadata: MetadataMap::new(),
            message,
            extensions: http::Extensions::new(),
            trailers: MetadataMap::new(),
        }
    }

    /// Builds a response from header metadata, message and extensions.
    pub fn from_parts(metadata: MetadataMap, message: T, extensions: http::Extensions) -> Self {
        Response {
            metadata,
            message,
            extensions,
            trailers: MetadataMap::new(),
        }
    }

    /// Splits the response into header metadata, message and extensions
    /// (trailers are dropped; read them first with [`trailers`](Self::trailers)).
    pub fn into_parts(self) -> (MetadataMap, T, http::Extensions) {
        (self.metadata, self.message, self.extensions)
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

    /// Metadata sent in the response headers.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// Header metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// Metadata sent in the trailers, with the status.
    pub fn trailers(&self) -> &MetadataMap {
        &self.trailers
    }

    /// Trailer metadata, mutably (server side: sent after the last message).
    pub fn trailers_mut(&mut self) -> &mut MetadataMap {
        &mut self.trailers
    }

    /// Typed values attached by the application.
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// Typed values, mutably.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }

    /// Maps the message, keeping metadata, trailers and extensions.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            metadata: self.metadata,
            message: f(self.message),
            extensions: self.extensions,
            trailers: self.trailers,
        }
    }

    pub(crate) fn set_trailers(&mut self, trailers: MetadataMap) {
        self.trailers = trailers;
    }

    pub(crate) fn take_trailers(&mut self) -> MetadataMap {
        std::mem::take(&mut self.trailers)
    }
}
