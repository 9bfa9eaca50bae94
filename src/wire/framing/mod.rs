//! The gRPC length-prefixed message framing, without IO.
//!
//! Every message on a gRPC stream is sent as a 5-byte header, a compressed
//! flag (`0` or `1`) and the payload length as a big-endian `u32`, followed by
//! the payload. HTTP/2 DATA frames do not line up with messages: one frame may
//! hold several messages, and a message may span many frames.
//! [`MessageDecoder`] buffers chunks and hands out whole messages;
//! [`encode_message`] frames one message into a buffer.

mod decode;
mod encode;

pub use decode::{decode_message, DecodeError, MessageDecoder, RawMessage};
pub use encode::encode_message;
pub(crate) use encode::{Batch, EncodeBuf};

/// The length of a message header: 1 flag byte and a 4-byte length.
pub const HEADER_LEN: usize = 5;

/// The default limit on the size of a message, sent or received (4 MiB, as in
/// grpc-go and tonic).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
