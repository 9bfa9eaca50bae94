//! Retries, as gRPC's retry design (proposal A6) specifies: per-method
//! policies, in code or from a service config's JSON, retry throttling, the
//! server's pushback, and `grpc-previous-rpc-attempts`.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::{Code, Status};

/// How a method's failed calls are retried.
///
/// A call is retried when it fails with one of `retryable_codes` before the
/// server committed to it (no response headers yet: a Trailers-Only answer,
/// a refused stream, a connection failure), while attempts remain, its
/// deadline has not passed, and [throttling](ServiceConfig::retry_throttling)
/// allows; a streaming call also needs its requests sent so far to fit the
/// 256 KiB it keeps to replay them. The n-th retry waits a random time between 0 and
/// `min(initial_backoff × backoff_multiplier^(n-1), max_backoff)`, or what
/// the server's `grpc-retry-pushback-ms` says (a negative one stops the
/// retries). Every retry carries `grpc-previous-rpc-attempts`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included: at least 2, at most 5 (more is
    /// taken as 5, as the design says).
    pub max_attempts: u32,
    /// The ceiling of the first retry's random delay.
    pub initial_backoff: Duration,
    /// The largest ceiling.
    pub max_backoff: Duration,
    /// The factor between successive ceilings.
    pub backoff_multiplier: f64,
    /// The codes a call is retried on.
    pub retryable_codes: Vec<Code>,
}

impl RetryPolicy {
    /// The attempts this policy allows, capped at 5.
    fn attempts(&self) -> u32 {
        self.max_attempts.clamp(1, 5)
    }

    /// The ceiling of retry `n` (1 for the first retry).
    fn ceiling(&self, n: u32) -> Duration {
        let exponent = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * self.backoff_multiplier.powi(exponent);
        Duration::from_secs_f64(secs.min(self.max_backoff.as_secs_f64()).max(0.0))
    }
}

/// Which calls a [`RetryPolicy`] applies to: a whole service, one method,
/// or every call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MethodName {
    service: Option<String>,
    method: Option<String>,
}

impl MethodName {
    /// How well this name matches `/service/method`: 2 for the method, 1
    /// for its service, 0 for the default; `None` when it does not match.
    fn matches(&self, service: &str, method: &str) -> Option<u8> {
        match (&self.service, &self.method) {
            (None, _) => Some(0),
            (Some(s), None) if s == service => Some(1),
            (Some(s), Some(m)) if s == service && m == method => Some(2),
            _ => None,
        }
    }
}

/// A channel's per-method settings: the retry policies, and the retry
/// throttling shared by all of the channel's calls.
///
/// ```
/// use std::time::Duration;
/// use p2p_grpc::client::{RetryPolicy, ServiceConfig};
/// use p2p_grpc::Code;
///
/// let policy = RetryPolicy {
///     max_attempts: 4,
///     initial_backoff: Duration::from_millis(100),
///     max_backoff: Duration::from_secs(1),
///     backoff_multiplier: 2.0,
///     retryable_codes: vec![Code::Unavailable],
/// };
/// let config = ServiceConfig::new().retry("helloworld.Greeter", None, policy);
/// // The same, as a service config JSON:
/// let json = ServiceConfig::from_json(r#"{"methodConfig": [{
///     "name": [{"service": "helloworld.Greeter"}],
///     "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
///                     "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#)?;
/// assert_eq!(config, json);
/// # Ok::<(), p2p_grpc::client::ServiceConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceConfig {
    policies: Vec<(MethodName, RetryPolicy)>,
    throttling: Option<(f64, f64)>,
}

impl ServiceConfig {
    /// No policy: calls are not retried.
    pub fn new() -> Self {
        ServiceConfig::default()
    }

    /// Retries calls to `service`'s `method` (every method with `None`)
    /// under `policy`. A method's own policy wins over its service's.
    pub fn retry(mut self, service: &str, method: Option<&str>, policy: RetryPolicy) -> Self {
        self.policies.push((
            MethodName {
                service: Some(service.to_owned()),
                method: method.map(str::to_owned),
            },
            policy,
        ));
        self
    }

    /// Retries every call that no other entry names under `policy`.
    pub fn retry_by_default(mut self, policy: RetryPolicy) -> Self {
        self.policies.push((
            MethodName {
                service: None,
                method: None,
            },
            policy,
        ));
        self
    }

    /// Retry throttling: the channel holds `max_tokens` tokens; a failed
    /// attempt takes one, a success gives back `token_ratio`; retries stop
    /// while half or fewer are left.
    pub fn retry_throttling(mut self, max_tokens: u32, token_ratio: f64) -> Self {
        self.throttling = Some((
            f64::from(max_tokens.clamp(1, 1000)),
            token_ratio.clamp(0.001, 1.0),
        ));
        self
    }

    /// The policy for the call `path` (`/service/method`).
    pub(crate) fn policy_for(&self, path: &str) -> Option<&RetryPolicy> {
        let (service, method) = path.trim_start_matches('/').split_once('/')?;
        self.policies
            .iter()
            .filter_map(|(name, policy)| Some((name.matches(service, method)?, policy)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, policy)| policy)
    }

    pub(crate) fn throttle(&self) -> Option<Throttle> {
        self.throttling.map(|(max, ratio)| Throttle {
            max,
            ratio,
            tokens: Mutex::new(max),
        })
    }

    /// Reads a gRPC service config (the JSON of `service_config.proto`):
    /// `methodConfig[].name` and `retryPolicy`, and `retryThrottling`.
    /// Other fields are ignored; a retry policy the design calls invalid
    /// is an error.
    pub fn from_json(json: &str) -> Result<Self, ServiceConfigError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|err| ServiceConfigError(format!("not JSON: {err}")))?;
        let mut config = ServiceConfig::new();
        let entries = match value.get("methodConfig") {
            None => &[][..],
            Some(serde_json::Value::Array(entries)) => entries.as_slice(),
            Some(_) => return Err(ServiceConfigError("methodConfig is not a list".into())),
        };
        for entry in entries {
            let Some(policy) = entry.get("retryPolicy") else {
                continue;
            };
            let policy = parse_policy(policy)?;
            let names = entry
                .get("name")
                .and_then(|names| names.as_array())
                .ok_or_else(|| ServiceConfigError("a methodConfig has no name list".into()))?;
            for name in names {
                let text = |key: &str| name.get(key).and_then(|v| v.as_str()).map(str::to_owned);
                let service = text("service").filter(|s| !s.is_empty());
                let method = text("method").filter(|m| !m.is_empty());
                if service.is_none() && method.is_some() {
                    return Err(ServiceConfigError(
                        "a method name without its service".into(),
                    ));
                }
                config
                    .policies
                    .push((MethodName { service, method }, policy.clone()));
            }
        }
        if let Some(throttling) = value.get("retryThrottling") {
            let max = throttling
                .get("maxTokens")
                .and_then(|v| v.as_f64())
                .filter(|max| *max > 0.0 && *max <= 1000.0)
                .ok_or_else(|| ServiceConfigError("retryThrottling.maxTokens: 1 to 1000".into()))?;
            let ratio = throttling
                .get("tokenRatio")
                .and_then(|v| v.as_f64())
                .filter(|ratio| *ratio > 0.0)
                .ok_or_else(|| ServiceConfigError("retryThrottling.tokenRatio: above 0".into()))?;
            config.throttling = Some((max.floor(), ratio.min(1.0)));
        }
        Ok(config)
    }
}

fn parse_policy(policy: &serde_json::Value) -> Result<RetryPolicy, ServiceConfigError> {
    let bad = |what: &str| ServiceConfigError(format!("retryPolicy.{what}"));
    let max_attempts = policy
        .get("maxAttempts")
        .and_then(|v| v.as_u64())
        .filter(|n| *n >= 2)
        .ok_or_else(|| bad("maxAttempts: an integer of at least 2"))?;
    let duration = |key: &str| {
        policy
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(parse_duration)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| bad(&format!("{key}: a positive duration such as \"0.5s\"")))
    };
    let initial_backoff = duration("initialBackoff")?;
    let max_backoff = duration("maxBackoff")?;
    let backoff_multiplier = policy
        .get("backoffMultiplier")
        .and_then(|v| v.as_f64())
        .filter(|m| *m > 0.0)
        .ok_or_else(|| bad("backoffMultiplier: above 0"))?;
    let codes = policy
        .get("retryableStatusCodes")
        .and_then(|v| v.as_array())
        .filter(|codes| !codes.is_empty())
        .ok_or_else(|| bad("retryableStatusCodes: a non-empty list"))?;
    let retryable_codes = codes
        .iter()
        .map(|code| {
            match code {
                serde_json::Value::String(name) => code_by_name(name),
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .map(Code::from_i32)
                    .filter(|code| *code != Code::Unknown || n.as_i64() == Some(2)),
                _ => None,
            }
            .ok_or_else(|| bad(&format!("retryableStatusCodes: unknown code {code}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RetryPolicy {
        max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
        initial_backoff,
        max_backoff,
        backoff_multiplier,
        retryable_codes,
    })
}

/// A protobuf JSON duration: decimal seconds and an `s`.
fn parse_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn code_by_name(name: &str) -> Option<Code> {
    Code::ALL
        .into_iter()
        .find(|code| code.name().eq_ignore_ascii_case(name))
}

/// A service config that cannot be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfigError(String);

impl fmt::Display for ServiceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid service config: {}", self.0)
    }
}

impl std::error::Error for ServiceConfigError {}

/// A channel's retry tokens (retry throttling).
#[derive(Debug)]
pub(crate) struct Throttle {
    max: f64,
    ratio: f64,
    tokens: Mutex<f64>,
}

impl Throttle {
    fn failed(&self) {
        let mut tokens = crate::sync::lock(&self.tokens);
        *tokens = (*tokens - 1.0).max(0.0);
    }

    pub(crate) fn succeeded(&self) {
        let mut tokens = crate::sync::lock(&self.tokens);
        *tokens = (*tokens + self.ratio).min(self.max);
    }

    fn allows_retry(&self) -> bool {
        *crate::sync::lock(&self.tokens) > self.max / 2.0
    }
}

/// One call's retries so far.
#[derive(Debug, Default)]
pub(crate) struct Retries {
    /// Attempts made (the first included).
    pub(crate) attempts: u32,
    /// Retries since the backoff last started over (a pushback restarts it).
    backoffs: u32,
}

impl Retries {
    /// A call's retries before its first attempt has run: one attempt made.
    pub(crate) fn first() -> Self {
        Retries {
            attempts: 1,
            backoffs: 0,
        }
    }

    /// After attempt `self.attempts` failed, uncommitted, with `status`:
    /// the delay before the next attempt, or `None` to give up.
    pub(crate) fn next_delay(
        &mut self,
        policy: Option<&RetryPolicy>,
        throttle: Option<&Throttle>,
        status: &Status,
        random: f64,
    ) -> Option<Duration> {
        let policy = policy?;
        let retryable = policy.retryable_codes.contains(&status.code());
        let pushback = status.retry_pushback();
        if retryable || pushback.is_some() {
            if let Some(throttle) = throttle {
                throttle.failed();
            }
        }
        if !retryable || self.attempts >= policy.attempts() {
            return None;
        }
        if throttle.is_some_and(|throttle| !throttle.allows_retry()) {
            return None;
        }
        self.attempts += 1;
        match pushback {
            Some(None) => None,
            Some(Some(delay)) => {
                self.backoffs = 0;
                Some(delay)
            }
            None => {
                self.backoffs += 1;
                Some(
                    policy
                        .ceiling(self.backoffs)
                        .mul_f64(random.clamp(0.0, 1.0)),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            backoff_multiplier: 2.0,
            retryable_codes: vec![Code::Unavailable],
        }
    }

    #[test]
    fn delays_grow_to_the_cap_and_attempts_stop_at_the_maximum() {
        let mut retries = Retries {
            attempts: 1,
            backoffs: 0,
        };
        let unavailable = Status::unavailable("down");
        let delays: Vec<_> = (0..5)
            .map(|_| retries.next_delay(Some(&policy()), None, &unavailable, 1.0))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(
            delays,
            [Some(ms(100)), Some(ms(200)), Some(ms(300)), None, None]
        );
        assert_eq!(retries.attempts, 4);
        // The delay is random below the ceiling.
        let mut retries = Retries {
            attempts: 1,
            backoffs: 0,
        };
        assert_eq!(
            retries.next_delay(Some(&policy()), None, &unavailable, 0.25),
            Some(ms(25))
        );
    }

    #[test]
    fn other_codes_and_a_negative_pushback_are_not_retried() {
        let mut retries = Retries {
            attempts: 1,
            backoffs: 0,
        };
        let internal = Status::internal("bug");
        assert_eq!(
            retries.next_delay(Some(&policy()), None, &internal, 0.5),
            None
        );
        let stop = Status::unavailable("go away").with_retry_pushback(None);
        assert_eq!(retries.next_delay(Some(&policy()), None, &stop, 0.5), None);
        let later = Status::unavailable("later").with_retry_pushback(Some(Duration::from_secs(3)));
        let mut retries = Retries {
            attempts: 1,
            backoffs: 2,
        };
        assert_eq!(
            retries.next_delay(Some(&policy()), None, &later, 0.5),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retries.backoffs, 0);
        assert_eq!(
            retries.next_delay(None, None, &Status::unavailable("x"), 0.5),
            None
        );
    }

    #[test]
    fn throttling_stops_retries_at_half_the_tokens() {
        let throttle = ServiceConfig::new()
            .retry_throttling(4, 0.5)
            .throttle()
            .unwrap();
        let unavailable = Status::unavailable("down");
        let mut allowed = Vec::new();
        for _ in 0..4 {
            let mut retries = Retries {
                attempts: 1,
                backoffs: 0,
            };
            allowed.push(
                retries
                    .next_delay(Some(&policy()), Some(&throttle), &unavailable, 0.5)
                    .is_some(),
            );
        }
        // 4 tokens: 3 left allows, 2 left (half) does not.
        assert_eq!(allowed, [true, false, false, false]);
        // Successes give back half a token each, up to the 4 of the start.
        for _ in 0..20 {
            throttle.succeeded();
        }
        let mut retries = Retries {
            attempts: 1,
            backoffs: 0,
        };
        assert!(retries
            .next_delay(Some(&policy()), Some(&throttle), &unavailable, 0.5)
            .is_some());
    }

    #[test]
    fn the_most_specific_name_wins() {
        let mut slow = policy();
        slow.max_attempts = 2;
        let mut any = policy();
        any.max_attempts = 3;
        let config = ServiceConfig::new()
            .retry_by_default(any.clone())
            .retry("pkg.Svc", None, policy())
            .retry("pkg.Svc", Some("Slow"), slow.clone());
        assert_eq!(config.policy_for("/pkg.Svc/Slow"), Some(&slow));
        assert_eq!(config.policy_for("/pkg.Svc/Fast"), Some(&policy()));
        assert_eq!(config.policy_for("/other.Svc/X"), Some(&any));
        assert_eq!(ServiceConfig::new().policy_for("/pkg.Svc/X"), None);
    }

    #[test]
    fn service_config_json_is_read_and_checked() {
        let config = ServiceConfig::from_json(
            r#"{"methodConfig": [{"name": [{"service": "pkg.Svc", "method": "M"}, {"service": "b.B"}],
                "timeout": "1s",
                "retryPolicy": {"maxAttempts": 9, "initialBackoff": "0.1s", "maxBackoff": "0.3s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", 10, "resource_exhausted"]}}],
               "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#,
        )
        .unwrap();
        let policy = config.policy_for("/pkg.Svc/M").unwrap();
        assert_eq!(
            policy.retryable_codes,
            [Code::Unavailable, Code::Aborted, Code::ResourceExhausted]
        );
        assert_eq!(policy.attempts(), 5, "more than 5 attempts is taken as 5");
        assert!(config.policy_for("/b.B/Any").is_some());
        assert!(config.policy_for("/pkg.Svc/Other").is_none());
        assert_eq!(config.throttling, Some((10.0, 0.1)));
        for (json, part) in [
            ("[", "not JSON"),
            (
                r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 1}}]}"#,
                "maxAttempts",
            ),
            (
                r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1"}}]}"#,
                "initialBackoff",
            ),
            (
                r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 1, "retryableStatusCodes": ["NOPE"]}}]}"#,
                "NOPE",
            ),
            (
                r#"{"retryThrottling": {"maxTokens": 0, "tokenRatio": 1}}"#,
                "maxTokens",
            ),
        ] {
            let err = ServiceConfig::from_json(json).unwrap_err();
            assert!(err.to_string().contains(part), "{json}: {err}");
        }
    }
}
