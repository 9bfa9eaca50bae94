//! Connection backoff, as gRPC's `connection-backoff.md` specifies: the
//! delays between a channel's connection attempts, and the state that makes
//! calls fail fast (or wait) while the channel waits to try again.

use std::sync::Mutex;
use std::time::Duration;

use event_listener::Event;

use crate::Status;

/// How long a channel waits between failed connection attempts.
///
/// The defaults are the spec's: the first attempt's deadline is `initial`
/// (1 s) after it started; each following delay is the previous one times
/// `multiplier` (1.6), capped at `max` (120 s), and moved by a random
/// ±`jitter` (20 %) of itself. An attempt may take
/// [`connect_timeout`](super::ChannelBuilder::connect_timeout) (20 s) or
/// its delay, whichever is longer; the next one starts when its delay has
/// passed, counted from the start of the failed one. A connection that
/// succeeds resets the sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay (default 1 s).
    pub initial: Duration,
    /// The factor between delays (default 1.6).
    pub multiplier: f64,
    /// The random share of a delay, from 0 to 1 (default 0.2: ±20 %).
    pub jitter: f64,
    /// The longest delay, before jitter (default 120 s).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(120),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1` (0: the first attempt's own
    /// deadline, which has no jitter), given a random number in `[0, 1)`.
    pub(crate) fn delay(&self, attempt: u32, random: f64) -> Duration {
        if attempt == 0 {
            return self.initial;
        }
        let multiplier = self.multiplier.max(1.0);
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        // Grows to infinity at worst, which the cap then takes.
        let base =
            (self.initial.as_secs_f64() * multiplier.powi(exponent)).min(self.max.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * random - 1.0);
        Duration::from_secs_f64((base * factor).max(0.0))
    }
}

/// Whether a channel is waiting before its next attempt, and why.
#[derive(Debug, Default)]
pub(crate) struct BackoffState {
    inner: Mutex<Attempts>,
    /// Notified when a wait ends.
    ready: Event,
}

#[derive(Debug, Default)]
struct Attempts {
    /// Failed attempts since the last success.
    failures: u32,
    /// The failure being waited out, while the channel waits.
    waiting: Option<Status>,
}

impl BackoffState {
    /// The number of the next attempt (0 after a success).
    pub(crate) fn attempt(&self) -> u32 {
        crate::sync::lock(&self.inner).failures
    }

    /// While the channel waits: the last failure, and a listener notified
    /// when the wait ends. `None` when an attempt may start now.
    pub(crate) fn waiting(&self) -> Option<(Status, event_listener::EventListener)> {
        let attempts = crate::sync::lock(&self.inner);
        let status = attempts.waiting.clone()?;
        let listener = self.ready.listen();
        Some((status, listener))
    }

    pub(crate) fn succeeded(&self) {
        let mut attempts = crate::sync::lock(&self.inner);
        attempts.failures = 0;
        attempts.waiting = None;
    }

    /// An attempt failed with `status`: the channel waits until `wait_over`
    /// is called.
    pub(crate) fn failed(&self, status: Status) {
        let mut attempts = crate::sync::lock(&self.inner);
        attempts.failures = attempts.failures.saturating_add(1);
        attempts.waiting = Some(status);
    }

    /// The delay after a failure has passed: the next call may attempt.
    pub(crate) fn wait_over(&self) {
        crate::sync::lock(&self.inner).waiting = None;
        self.ready.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delays_follow_the_spec_formula() {
        let backoff = Backoff::default();
        // random = 0.5 is the middle of the jitter range: no jitter.
        let middle: Vec<f64> = (0..14)
            .map(|attempt| backoff.delay(attempt, 0.5).as_secs_f64())
            .collect();
        let mut expected = vec![1.0];
        let mut base: f64 = 1.0;
        for _ in 1..14 {
            base = (base * 1.6).min(120.0);
            expected.push(base);
        }
        for (got, want) in middle.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-9, "{middle:?} vs {expected:?}");
        }
        // The cap is reached at the 11th delay (1.6^11 = 175.9 > 120).
        assert_eq!(backoff.delay(11, 0.5), Duration::from_secs(120));
        // Jitter spans ±20 % of the delay, and never touches the first.
        assert!((backoff.delay(1, 0.0).as_secs_f64() - 1.6 * 0.8).abs() < 1e-9);
        assert!((backoff.delay(1, 1.0).as_secs_f64() - 1.6 * 1.2).abs() < 1e-9);
        assert_eq!(backoff.delay(0, 0.0), Duration::from_secs(1));
        assert_eq!(backoff.delay(u32::MAX, 0.5), Duration::from_secs(120));
    }
}
