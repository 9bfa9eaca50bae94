//! gRPC calls on h2, the plumbing both roles share: the HTTP/2 settings and
//! handshake, keepalive, sending with flow control (and the one batching
//! encoder), receiving (the message stream of a call), deadlines, and h2's
//! errors as statuses. Nothing here is public: h2's types stay inside.

pub(crate) mod deadline;
pub(crate) mod errors;
pub(crate) mod handshake;
pub(crate) mod keepalive;
pub(crate) mod observe;
pub(crate) mod recv;
pub(crate) mod send;
pub(crate) mod settings;
