//! When to try a failed request again, and how long to wait first.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Exponential backoff for 429, 5xx and failed connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds; doubled for each later one.
    pub initial_backoff_ms: u64,
    /// The longest wait between two attempts, in milliseconds. A `Retry-After` asking
    /// for more than this is not waited for: the call fails with `RateLimited` at once,
    /// so a caller is never held for minutes it did not agree to.
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, given the attempt (1-based) that just
    /// failed and the server's `Retry-After`, or `None` when no retry should be made.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let max = Duration::from_millis(self.max_backoff_ms);
        match retry_after {
            Some(wait) if wait > max => None,
            Some(wait) => Some(wait),
            None => {
                let exp = attempt.saturating_sub(1).min(20);
                let backoff = self.initial_backoff_ms.saturating_mul(1 << exp);
                Some(Duration::from_millis(backoff).min(max))
            }
        }
    }
}

/// Whether a response status deserves another attempt.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
/// A date in the past means "now"; anything unparsable is ignored (`None`).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn backoff_doubles_is_capped_and_bounded_in_attempts() {
        let p = RetryPolicy {
            max_attempts: 4,
            initial_backoff_ms: 100,
            max_backoff_ms: 250,
        };
        assert_eq!(p.delay(1, None), Some(Duration::from_millis(100)));
        assert_eq!(p.delay(2, None), Some(Duration::from_millis(200)));
        assert_eq!(p.delay(3, None), Some(Duration::from_millis(250)));
        assert_eq!(p.delay(4, None), None);
        assert_eq!(
            p.delay(1, Some(Duration::from_millis(200))),
            Some(Duration::from_millis(200))
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(60))), None);
    }
}
