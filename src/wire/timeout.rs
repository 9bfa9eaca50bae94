//! The `grpc-timeout` header: parse and format.
//!
//! Its value is 1 to 8 ASCII digits followed by one unit: `H` (hours), `M`
//! (minutes), `S` (seconds), `m` (milliseconds), `u` (microseconds) or `n`
//! (nanoseconds).

use std::fmt;
use std::time::Duration;

use http::HeaderValue;

/// The largest number a `grpc-timeout` value may carry (8 digits).
const MAX_VALUE: u64 = 99_999_999;

/// Why a `grpc-timeout` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutError {
    /// The value is empty.
    Empty,
    /// More than 8 digits.
    TooManyDigits,
    /// No digits, or a byte that is not an ASCII digit before the unit.
    InvalidDigits,
    /// The last byte is not one of `H M S m u n`.
    InvalidUnit(u8),
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeoutError::Empty => f.write_str("empty grpc-timeout"),
            TimeoutError::TooManyDigits => f.write_str("grpc-timeout has more than 8 digits"),
            TimeoutError::InvalidDigits => f.write_str("grpc-timeout has invalid digits"),
            TimeoutError::InvalidUnit(u) => {
                write!(f, "grpc-timeout has invalid unit {:?}", char::from(*u))
            }
        }
    }
}

impl std::error::Error for TimeoutError {}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits then one unit
/// `H M S m u n`.
pub fn parse_timeout(value: &[u8]) -> Result<Duration, TimeoutError> {
    let (&unit, digits) = value.split_last().ok_or(TimeoutError::Empty)?;
    if !matches!(unit, b'H' | b'M' | b'S' | b'm' | b'u' | b'n') {
        return Err(TimeoutError::InvalidUnit(unit));
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(TimeoutError::InvalidDigits);
    }
    if digits.len() > 8 {
        return Err(TimeoutError::TooManyDigits);
    }
    // At most 8 digits: no overflow below, 99999999 hours fit in a Duration.
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Ok(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        _ => Duration::from_nanos(n),
    })
}

/// Formats a duration as a `grpc-timeout` value.
///
/// Picks the finest unit (`n`, `u`, `m`, `S`, `M`, `H`) whose value fits in 8
/// digits, rounding up so the deadline is never shortened. Durations past
/// 99999999 hours saturate to `99999999H`; zero gives `0n`.
pub fn format_timeout(d: Duration) -> HeaderValue {
    const UNITS: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    let nanos = d.as_nanos();
    let (value, unit) = UNITS
        .iter()
        .map(|&(size, unit)| (nanos.div_ceil(size), unit))
        .find(|&(value, _)| value <= u128::from(MAX_VALUE))
        .unwrap_or((u128::from(MAX_VALUE), 'H'));
    let text = format!("{value}{unit}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("99999999H"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_every_unit() {
        assert_eq!(parse_timeout(b"2H"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_timeout(b"3M"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_timeout(b"4S"), Ok(Duration::from_secs(4)));
        assert_eq!(parse_timeout(b"5m"), Ok(Duration::from_millis(5)));
        assert_eq!(parse_timeout(b"6u"), Ok(Duration::from_micros(6)));
        assert_eq!(parse_timeout(b"7n"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_timeout(b"0n"), Ok(Duration::ZERO));
        assert_eq!(parse_timeout(b"00001S"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn parse_limits() {
        assert_eq!(
            parse_timeout(b"99999999H"),
            Ok(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(
            parse_timeout(b"99999999n"),
            Ok(Duration::from_nanos(99_999_999))
        );
        assert_eq!(
            parse_timeout(b"100000000H"),
            Err(TimeoutError::TooManyDigits)
        );
        assert_eq!(
            parse_timeout(b"000000001S"),
            Err(TimeoutError::TooManyDigits)
        );
        assert_eq!(
            parse_timeout(b"99999999999999999999999H"),
            Err(TimeoutError::TooManyDigits)
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(parse_timeout(b""), Err(TimeoutError::Empty));
        assert_eq!(parse_timeout(b"S"), Err(TimeoutError::InvalidDigits));
        assert_eq!(parse_timeout(b"1"), Err(TimeoutError::InvalidUnit(b'1')));
        assert_eq!(parse_timeout(b"10s"), Err(TimeoutError::InvalidUnit(b's')));
        assert_eq!(parse_timeout(b"10h"), Err(TimeoutError::InvalidUnit(b'h')));
        assert_eq!(parse_timeout(b"10 S"), Err(TimeoutError::InvalidDigits));
        assert_eq!(parse_timeout(b"-1S"), Err(TimeoutError::InvalidDigits));
        assert_eq!(parse_timeout(b"+1S"), Err(TimeoutError::InvalidDigits));
        assert_eq!(parse_timeout(b"1.5S"), Err(TimeoutError::InvalidDigits));
        assert_eq!(
            parse_timeout(b"\xff\xffS"),
            Err(TimeoutError::InvalidDigits)
        );
        assert_eq!(parse_timeout(b"1S "), Err(TimeoutError::InvalidUnit(b' ')));
        assert!(!TimeoutError::InvalidUnit(b'x').to_string().is_empty());
    }

    fn fmt(d: Duration) -> String {
        format_timeout(d).to_str().unwrap().to_owned()
    }

    #[test]
    fn format_picks_finest_unit_and_rounds_up() {
        assert_eq!(fmt(Duration::ZERO), "0n");
        assert_eq!(fmt(Duration::from_nanos(1)), "1n");
        assert_eq!(fmt(Duration::from_nanos(99_999_999)), "99999999n");
        // 100 ms = 100_000_000 ns: too many digits in n, exact in u.
        assert_eq!(fmt(Duration::from_millis(100)), "100000u");
        assert_eq!(fmt(Duration::from_nanos(100_000_001)), "100001u");
        assert_eq!(fmt(Duration::from_secs(1)), "1000000u");
        assert_eq!(fmt(Duration::from_secs(100)), "100000m");
        assert_eq!(fmt(Duration::new(100, 1)), "100001m");
        assert_eq!(fmt(Duration::from_secs(100_000)), "100000S");
        assert_eq!(fmt(Duration::new(100_000, 1)), "100001S");
        assert_eq!(fmt(Duration::from_secs(100_000_000)), "1666667M");
        assert_eq!(fmt(Duration::from_secs(6_000_000_000)), "1666667H");
        assert_eq!(fmt(Duration::from_secs(99_999_999 * 3600)), "99999999H");
    }

    #[test]
    fn format_saturates() {
        assert_eq!(fmt(Duration::from_secs(99_999_999 * 3600 + 1)), "99999999H");
        assert_eq!(fmt(Duration::MAX), "99999999H");
    }

    #[test]
    fn round_trip_never_shortens() {
        let mut samples = vec![Duration::ZERO, Duration::MAX];
        // A geometric sweep from 1 ns to far past the saturation point.
        let mut n: u128 = 1;
        while n < u128::from(u64::MAX) * 1_000_000_000 {
            for k in [n, n + 1, n * 3 - 1] {
                let secs = u64::try_from(k / 1_000_000_000).unwrap_or(u64::MAX);
                samples.push(Duration::new(secs, (k % 1_000_000_000) as u32));
            }
            n = n * 7 / 3 + 1;
        }
        let max = parse_timeout(b"99999999H").unwrap();
        for d in samples {
            let text = format_timeout(d);
            let back = parse_timeout(text.as_bytes()).unwrap();
            if d > max {
                assert_eq!(back, max);
                continue;
            }
            assert!(back >= d, "{d:?} -> {text:?} -> {back:?}");
            // Precision: the error is under one unit, and a coarser unit is
            // only used when the value is at least 10^5 of them.
            let err = (back - d).as_nanos();
            assert!(err * 100_000 <= back.as_nanos(), "{d:?} -> {text:?}");
            // Formatted values parse back to themselves.
            assert_eq!(format_timeout(back), text);
        }
    }
}
