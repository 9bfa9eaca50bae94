//! HTTP/2 keepalive, as gRPC specifies it (proposal A8, "client-side
//! keepalive"), on both sides:
//!
//! - **Pinging**: a PING every interval, and the connection given up when no
//!   PONG comes back in time. This is how a peer that vanished without
//!   closing anything (a cut cable, a frozen process) is detected instead of
//!   leaving calls hanging. A client pings only while it has calls running,
//!   unless told to ping while idle too, and never more often than every
//!   [`MIN_CLIENT_INTERVAL`].
//! - **Enforcement**: a server counts the PINGs its client sends. A PING
//!   sooner than [`PingPolicy::min_time`] after the previous one (or, with
//!   no call running and no permission to ping then, sooner than two
//!   hours) is a strike; the server's own HEADERS or DATA in between clear
//!   the count. After more than [`MAX_PING_STRIKES`] the server closes the
//!   connection with GOAWAY `ENHANCE_YOUR_CALM` and debug data
//!   `too_many_pings`. These are grpc-go's rules and defaults; the C core's
//!   are the same.
//! - **Backing off**: a client told `too_many_pings` doubles its interval
//!   for the connections it opens later.
//!
//! h2 answers PINGs itself and shows neither them nor a GOAWAY's debug data
//! to its user, so the counting and the GOAWAY reading are done by a
//! [`Tap`] on the bytes between h2 and the stream, with a
//! [`FrameScanner`] per direction.

use std::future::poll_fn;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{select, Either};

use crate::error::Error;
use crate::io::Tap;
use crate::rt::SharedRuntime;
use crate::sync::{lock, Signal, Tracker};
use crate::wire::frame_scan::{
    goaway_frame, Frame, FrameScanner, DATA, FLAG_ACK, FRAME_HEAD, HEADERS, PING,
};

/// The shortest interval between a client's PINGs (A8: at least 10 s).
pub const MIN_CLIENT_INTERVAL: Duration = Duration::from_secs(10);

/// Strikes a client may collect before a server closes its connection.
pub const MAX_PING_STRIKES: u32 = 2;

/// The HTTP/2 error code `ENHANCE_YOUR_CALM`.
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// The GOAWAY debug data that tells a client it pinged too often.
pub(crate) const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// How long a PING must wait after the previous one when no call is
/// running and the policy does not permit pings then (grpc-go's value).
const IDLE_PING_MIN_TIME: Duration = Duration::from_secs(2 * 60 * 60);

/// When to ping and how long to wait for the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeepAlive {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    /// Ping also while no call runs (client side; a server always pings).
    pub(crate) while_idle: bool,
}

/// How often a server lets its clients ping (grpc-go's
/// `keepalive.EnforcementPolicy`). The default is grpc-go's: at most one
/// PING every 5 minutes, none while no call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingPolicy {
    /// The shortest time a client must leave between two PINGs.
    pub min_time: Duration,
    /// Whether a client may ping while it has no call running.
    pub permit_without_calls: bool,
}

impl Default for PingPolicy {
    fn default() -> Self {
        PingPolicy {
            min_time: Duration::from_secs(5 * 60),
            permit_without_calls: false,
        }
    }
}

/// Pings the peer until the connection must be dropped, and returns why (no
/// PONG in time, or the connection failed). With `calls`, a round with no
/// call running sends no PING unless `keepalive.while_idle` is set.
async fn run(
    mut ping_pong: h2::PingPong,
    runtime: SharedRuntime,
    keepalive: KeepAlive,
    calls: Option<Tracker>,
) -> Error {
    loop {
        runtime.sleep(keepalive.interval).await;
        let idle = calls.as_ref().is_some_and(|calls| calls.count() == 0);
        if idle && !keepalive.while_idle {
            continue;
        }
        if let Err(err) = ping_pong.send_ping(h2::Ping::opaque()) {
            return Error::http2(err);
        }
        let pong = poll_fn(|cx| ping_pong.poll_pong(cx));
        match select(std::pin::pin!(pong), runtime.sleep(keepalive.timeout)).await {
            Either::Left((Ok(_), _)) => {}
            Either::Left((Err(err), _)) => return Error::http2(err),
            Either::Right(_) => {
                tracing::debug!(?keepalive, "no PONG in time: peer presumed gone");
                return Error::timeout("keepalive: no PING answer");
            }
        }
    }
}

/// The pinging task of a new connection, when keepalive is on (and h2 has
/// a PING handle for it).
pub(crate) fn pinger(
    keepalive: Option<KeepAlive>,
    ping_pong: Option<h2::PingPong>,
    runtime: &SharedRuntime,
    calls: Option<Tracker>,
) -> Option<impl std::future::Future<Output = Error> + Send + 'static> {
    let (keepalive, ping_pong) = keepalive.zip(ping_pong)?;
    Some(run(ping_pong, runtime.clone(), keepalive, calls))
}

/// The keepalive settings of a client, shared by its connections: the
/// interval doubles when a server says `too_many_pings`.
#[derive(Clone, Debug)]
pub(crate) struct ClientKeepAlive(Arc<Mutex<KeepAlive>>);

impl ClientKeepAlive {
    pub(crate) fn new(keepalive: KeepAlive) -> Self {
        ClientKeepAlive(Arc::new(Mutex::new(keepalive)))
    }

    /// The settings for a connection opened now.
    pub(crate) fn current(&self) -> KeepAlive {
        *lock(&self.0)
    }

    /// A server said we ping too often: later connections ping half as
    /// often.
    fn back_off(&self) {
        let mut keepalive = lock(&self.0);
        keepalive.interval = keepalive.interval.saturating_mul(2);
        tracing::warn!(
            interval = ?keepalive.interval,
            "server sent GOAWAY ENHANCE_YOUR_CALM too_many_pings; keepalive interval doubled"
        );
    }

    /// The tap that watches a connection's incoming frames for the
    /// `too_many_pings` GOAWAY.
    pub(crate) fn tap(&self) -> Box<dyn Tap> {
        Box::new(ClientTap {
            incoming: FrameScanner::frames(),
            keepalive: self.clone(),
        })
    }
}

struct ClientTap {
    incoming: FrameScanner,
    keepalive: ClientKeepAlive,
}

impl Tap for ClientTap {
    fn read(&mut self, bytes: &[u8]) -> usize {
        let keepalive = &self.keepalive;
        self.incoming.scan(bytes, |frame| {
            if let Frame::GoAway { code, debug, .. } = frame {
                if code == ENHANCE_YOUR_CALM && debug == TOO_MANY_PINGS {
                    keepalive.back_off();
                }
            }
        });
        bytes.len()
    }

    fn wrote(&mut self, _bytes: &[u8]) {}

    fn insert(&mut self, _out: &mut Vec<u8>) {}
}

/// The server's count of one connection's PINGs.
#[derive(Debug)]
pub(crate) struct PingStrikes {
    policy: PingPolicy,
    last_ping: Option<Instant>,
    strikes: u32,
    /// The server sent HEADERS or DATA since the last PING.
    answered: bool,
}

impl PingStrikes {
    pub(crate) fn new(policy: PingPolicy) -> Self {
        PingStrikes {
            policy,
            last_ping: None,
            strikes: 0,
            answered: false,
        }
    }

    /// The server sent HEADERS or DATA: pings are welcome again.
    pub(crate) fn server_sent(&mut self) {
        self.answered = true;
    }

    /// A PING arrived at `now` with `calls` calls running; whether the
    /// client has now collected too many strikes.
    pub(crate) fn ping(&mut self, now: Instant, calls: usize) -> bool {
        let previous = self.last_ping.replace(now);
        if std::mem::take(&mut self.answered) {
            self.strikes = 0;
            return false;
        }
        let min_time = if calls == 0 && !self.policy.permit_without_calls {
            IDLE_PING_MIN_TIME
        } else {
            self.policy.min_time
        };
        if previous.is_some_and(|previous| now.duration_since(previous) < min_time) {
            self.strikes += 1;
        }
        self.strikes > MAX_PING_STRIKES
    }
}

/// Counts a client's PINGs on one server connection and, once it has too
/// many strikes, fires `too_many` and adds the `too_many_pings` GOAWAY to
/// the output at the next frame boundary.
pub(crate) struct ServerTap {
    incoming: FrameScanner,
    outgoing: FrameScanner,
    strikes: PingStrikes,
    calls: Tracker,
    too_many: Signal,
    /// The highest stream id the client opened.
    last_stream: u32,
    goaway_sent: bool,
}

impl ServerTap {
    pub(crate) fn new(policy: PingPolicy, calls: Tracker, too_many: Signal) -> Self {
        ServerTap {
            incoming: FrameScanner::after_preface(),
            outgoing: FrameScanner::frames(),
            strikes: PingStrikes::new(policy),
            calls,
            too_many,
            last_stream: 0,
            goaway_sent: false,
        }
    }
}

impl Tap for ServerTap {
    fn read(&mut self, bytes: &[u8]) -> usize {
        let (strikes, calls, too_many, last_stream) = (
            &mut self.strikes,
            &self.calls,
            &self.too_many,
            &mut self.last_stream,
        );
        let stopped = self.incoming.scan_until(bytes, |frame| {
            let Frame::Head(head) = frame else {
                return ControlFlow::Continue(());
            };
            match head.kind {
                HEADERS => *last_stream = (*last_stream).max(head.stream),
                PING if head.flags & FLAG_ACK == 0
                    && strikes.ping(Instant::now(), calls.count()) =>
                {
                    tracing::warn!(
                        "client pinged too often; closing the connection (too_many_pings)"
                    );
                    too_many.fire();
                    return ControlFlow::Break(());
                }
                _ => {}
            }
            ControlFlow::Continue(())
        });
        // h2 never sees the PING that was one too many, nor anything
        // after it: a flood is cut there instead of ACKed to the end of
        // the read (some 3,800 PINGs in 64 KiB).
        match stopped {
            Some(scanned) => scanned.saturating_sub(FRAME_HEAD),
            None => bytes.len(),
        }
    }

    fn wrote(&mut self, bytes: &[u8]) {
        let strikes = &mut self.strikes;
        self.outgoing.scan(bytes, |frame| {
            if let Frame::Head(head) = frame {
                if head.kind == HEADERS || head.kind == DATA {
                    strikes.server_sent();
                }
            }
        });
    }

    fn insert(&mut self, out: &mut Vec<u8>) {
        if self.too_many.is_fired() && !self.goaway_sent && self.outgoing.at_boundary() {
            self.goaway_sent = true;
            // h2 follows with a GOAWAY of its own (no debug data) when the
            // connection task closes the connection. This one goes out before
            // anything h2 writes after the strike (the signal fires while h2
            // reads the PING, before the task can react), so it comes first,
            // with a last stream id no lower than h2's.
            out.extend_from_slice(&goaway_frame(
                self.last_stream,
                ENHANCE_YOUR_CALM,
                TOO_MANY_PINGS,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn pings_at_the_allowed_rate_never_strike() {
        let mut strikes = PingStrikes::new(PingPolicy {
            min_time: 10 * SEC,
            permit_without_calls: false,
        });
        let start = Instant::now();
        for i in 0..100 {
            assert!(!strikes.ping(start + 10 * SEC * i, 1));
        }
        assert_eq!(strikes.strikes, 0);
    }

    #[test]
    fn the_third_strike_is_one_too_many() {
        let mut strikes = PingStrikes::new(PingPolicy::default());
        let start = Instant::now();
        // The first PING has nothing to be compared with.
        assert!(!strikes.ping(start, 1));
        assert!(!strikes.ping(start + SEC, 1));
        assert!(!strikes.ping(start + 2 * SEC, 1));
        assert_eq!(strikes.strikes, 2);
        assert!(strikes.ping(start + 3 * SEC, 1));
    }

    #[test]
    fn server_frames_between_pings_clear_the_strikes() {
        let mut strikes = PingStrikes::new(PingPolicy::default());
        let start = Instant::now();
        for i in 0..10 {
            strikes.server_sent();
            assert!(!strikes.ping(start + SEC * i, 1));
        }
    }

    #[test]
    fn without_calls_the_idle_limit_applies_unless_permitted() {
        let start = Instant::now();
        let strict = PingPolicy {
            min_time: SEC,
            permit_without_calls: false,
        };
        let mut strikes = PingStrikes::new(strict);
        assert!(!strikes.ping(start, 0));
        // Ten minutes apart is fine with a call running ...
        assert!(!strikes.ping(start + 600 * SEC, 1));
        // ... and a strike with none.
        assert!(!strikes.ping(start + 1200 * SEC, 0));
        assert_eq!(strikes.strikes, 1);

        let mut permissive = PingStrikes::new(PingPolicy {
            permit_without_calls: true,
            ..strict
        });
        assert!(!permissive.ping(start, 0));
        assert!(!permissive.ping(start + 2 * SEC, 0));
        assert_eq!(permissive.strikes, 0);
    }

    #[test]
    fn the_server_tap_inserts_its_goaway_once_after_the_strikes() {
        let too_many = Signal::default();
        let mut tap = ServerTap::new(PingPolicy::default(), Tracker::default(), too_many.clone());
        let mut incoming = crate::wire::frame_scan::CLIENT_PREFACE.to_vec();
        // HEADERS of stream 5, then four PINGs (no call runs).
        incoming.extend_from_slice(&[0, 0, 0, HEADERS, 0x4, 0, 0, 0, 5]);
        for _ in 0..3 {
            incoming.extend_from_slice(&[0, 0, 8, PING, 0, 0, 0, 0, 0]);
            incoming.extend_from_slice(&[0; 8]);
        }
        tap.read(&incoming);
        let mut out = Vec::new();
        tap.insert(&mut out);
        assert!(
            out.is_empty() && !too_many.is_fired(),
            "two strikes are allowed"
        );
        tap.read(&[0, 0, 8, PING, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(too_many.is_fired());
        tap.insert(&mut out);
        assert_eq!(out, goaway_frame(5, ENHANCE_YOUR_CALM, TOO_MANY_PINGS));
        let mut again = Vec::new();
        tap.insert(&mut again);
        assert!(again.is_empty(), "one GOAWAY only");
    }

    #[test]
    fn the_client_tap_doubles_on_too_many_pings_only() {
        let keepalive = ClientKeepAlive::new(KeepAlive {
            interval: 10 * SEC,
            timeout: SEC,
            while_idle: false,
        });
        let mut tap = keepalive.tap();
        tap.read(&goaway_frame(1, 0, b""));
        tap.read(&goaway_frame(1, ENHANCE_YOUR_CALM, b"something else"));
        assert_eq!(keepalive.current().interval, 10 * SEC);
        let frame = goaway_frame(3, ENHANCE_YOUR_CALM, TOO_MANY_PINGS);
        tap.read(&frame[..5]);
        tap.read(&frame[5..]);
        assert_eq!(keepalive.current().interval, 20 * SEC);
    }
}
