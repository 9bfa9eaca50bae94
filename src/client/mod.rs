//! The client: a [`Channel`] over one HTTP/2 connection and [`Grpc`], the
//! typed calls of the four kinds that generated clients wrap.

mod channel;
mod grpc;

pub use self::channel::{Channel, ChannelBuilder, Connector, MIN_KEEPALIVE_INTERVAL, USER_AGENT};
pub use self::grpc::Grpc;
