//! What interceptors observe of a call, on either side: its kind, the
//! messages and bytes it moved, and the one moment it ends.
//!
//! Nothing here exists for a call unless an interceptor is installed: the
//! counters and the end hook are `Option`s on the call's plumbing.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::wire::status::Status;

/// The four kinds of gRPC call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// One request, one response.
    Unary,
    /// A stream of requests, one response.
    ClientStreaming,
    /// One request, a stream of responses.
    ServerStreaming,
    /// Streams both ways.
    BidiStreaming,
}

impl CallKind {
    /// A short lowercase name: `unary`, `client_streaming`,
    /// `server_streaming`, `bidi_streaming`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Unary => "unary",
            CallKind::ClientStreaming => "client_streaming",
            CallKind::ServerStreaming => "server_streaming",
            CallKind::BidiStreaming => "bidi_streaming",
        }
    }
}

impl fmt::Display for CallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one call moved, counted on this side of it. Bytes are message
/// payloads as they crossed the wire (compressed, when they were), without
/// the 5-byte gRPC prefix, as gRPC's metrics count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Messages this side sent.
    pub messages_sent: u64,
    /// Messages this side received.
    pub messages_received: u64,
    /// Payload bytes this side sent.
    pub bytes_sent: u64,
    /// Payload bytes this side received.
    pub bytes_received: u64,
}

/// The live counters behind a [`CallStats`], shared by the halves of a call
/// (the receiving stream and the sender run in different places).
#[derive(Debug, Default)]
pub(crate) struct CallCounters {
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// The gRPC prefix of every message: a flag byte and a 4-byte length.
const PREFIX_LEN: u64 = 5;

impl CallCounters {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(CallCounters::default())
    }

    /// Counts `messages` messages sent, `framed` bytes with their prefixes.
    pub(crate) fn sent(&self, messages: u64, framed: u64) {
        self.messages_sent.fetch_add(messages, Ordering::Relaxed);
        self.bytes_sent.fetch_add(
            framed.saturating_sub(messages * PREFIX_LEN),
            Ordering::Relaxed,
        );
    }

    /// Counts the batch in `buf` as sent.
    pub(crate) fn sent_batch(&self, buf: &crate::wire::framing::EncodeBuf) {
        self.sent(buf.messages(), buf.len() as u64);
    }

    /// Counts one message received, of `payload` bytes.
    pub(crate) fn received(&self, payload: usize) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
        self.bytes_received
            .fetch_add(payload as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CallStats {
        CallStats {
            messages_sent: self.messages_sent.load(Ordering::Relaxed),
            messages_received: self.messages_received.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
        }
    }
}

type EndFn = Box<dyn FnOnce(&Status) + Send>;

/// Runs its hook once, with the call's final status: when the call ends,
/// or, if it is dropped first, with `CANCELLED`.
pub(crate) struct CallEndHook {
    hook: Option<EndFn>,
}

impl CallEndHook {
    pub(crate) fn new(hook: impl FnOnce(&Status) + Send + 'static) -> Self {
        CallEndHook {
            hook: Some(Box::new(hook)),
        }
    }

    /// Runs the hook with `status`, unless it has run already.
    pub(crate) fn finish(&mut self, status: &Status) {
        if let Some(hook) = self.hook.take() {
            hook(status);
        }
    }
}

impl Drop for CallEndHook {
    fn drop(&mut self) {
        self.finish(&Status::cancelled("the call was dropped before it ended"));
    }
}

impl fmt::Debug for CallEndHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallEndHook")
            .field("pending", &self.hook.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use crate::wire::status::Code;

    #[test]
    fn counters_leave_out_the_prefixes() {
        let counters = CallCounters::new();
        counters.sent(2, 2 * 5 + 30);
        counters.received(7);
        counters.received(0);
        assert_eq!(
            counters.snapshot(),
            CallStats {
                messages_sent: 2,
                messages_received: 2,
                bytes_sent: 30,
                bytes_received: 7,
            }
        );
    }

    #[test]
    fn end_hook_runs_once_and_on_drop() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let mut hook = CallEndHook::new(move |status| log.lock().unwrap().push(status.code()));
        hook.finish(Status::ok_shared());
        hook.finish(&Status::internal("again"));
        drop(hook);
        let log = seen.clone();
        drop(CallEndHook::new(move |status| {
            log.lock().unwrap().push(status.code())
        }));
        assert_eq!(*seen.lock().unwrap(), [Code::Ok, Code::Cancelled]);
    }
}
