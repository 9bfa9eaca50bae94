//! The client: a [`Channel`] over one HTTP/2 connection and [`Grpc`], the
//! typed calls of the four kinds that generated clients wrap.

mod backoff;
pub(crate) mod balance;
mod channel;
mod grpc;
mod intercept;
mod replay;
mod retry;
mod target;

pub use self::backoff::Backoff;
pub use self::balance::LoadBalancing;
pub use self::channel::{
    Channel, ChannelBuilder, Connector, DEFAULT_CONNECT_TIMEOUT, MIN_KEEPALIVE_INTERVAL, USER_AGENT,
};
pub use self::grpc::Grpc;
pub use self::intercept::{CallEnd, CallInfo, CallStart, Interceptor};
pub use self::retry::{RetryPolicy, ServiceConfig, ServiceConfigError};
