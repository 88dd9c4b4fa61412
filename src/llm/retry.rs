//! The retry timing policy: exponential back-off with full jitter, Retry-After handling and an
//! overall time budget. Pure functions; the loop that uses them lives in the client.
//!
//! Invariants: every delay is at most `max(max, retry_after_cap)`; a retry is only scheduled
//! when the delay still fits in the remaining budget, so a call never outlives `budget` by more
//! than one attempt's own timeout (which the client also clamps to the budget).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use super::error::LlmError;

/// Back-off tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackoffSettings {
    /// Ceiling of the first retry's delay; doubles per retry.
    pub base: Duration,
    /// Largest computed back-off ceiling.
    pub max: Duration,
    /// Longest Retry-After we are willing to honour (longer values are cut to this).
    pub retry_after_cap: Duration,
    /// Total wall time for one call including all attempts and waits.
    pub budget: Duration,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(250),
            max: Duration::from_secs(4),
            retry_after_cap: Duration::from_secs(5),
            budget: Duration::from_secs(30),
        }
    }
}

impl BackoffSettings {
    /// Check the settings, returning a reason when they are unusable.
    pub fn validate(&self) -> Result<(), String> {
        if self.base > self.max {
            return Err("backoff.base must not exceed backoff.max".into());
        }
        if self.budget.is_zero() {
            return Err("backoff.budget must be positive".into());
        }
        Ok(())
    }

    /// The jitter ceiling for retry number `retry` (0 = first retry): `min(max, base·2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before retry number `retry` after `error`: the provider's Retry-After (capped)
    /// when it sent one, otherwise a uniformly random delay in `0 ..= ceiling(retry)`.
    pub fn delay_for<R: Rng + ?Sized>(
        &self,
        retry: u32,
        error: &LlmError,
        rng: &mut R,
    ) -> Duration {
        if let LlmError::RateLimited {
            retry_after: Some(after),
        } = error
        {
            return (*after).min(self.retry_after_cap);
        }
        full_jitter(self.ceiling(retry), rng)
    }
}

/// A uniformly random duration in `0 ..= ceiling` (AWS "full jitter").
pub fn full_jitter<R: Rng + ?Sized>(ceiling: Duration, rng: &mut R) -> Duration {
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.gen_range(0..=nanos))
}

/// Read a Retry-After from the `retry-after-ms` header (milliseconds, as OpenAI sends it) or
/// the standard `retry-after` header (delta-seconds, possibly fractional, or an HTTP date).
/// Unparseable or negative values are ignored.
pub fn parse_retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let value = retry_after?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn settings() -> BackoffSettings {
        BackoffSettings {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            retry_after_cap: Duration::from_millis(2000),
            budget: Duration::from_secs(10),
        }
    }

    #[test]
    fn ceiling_doubles_and_caps() {
        let s = settings();
        assert_eq!(s.ceiling(0), Duration::from_millis(100));
        assert_eq!(s.ceiling(1), Duration::from_millis(200));
        assert_eq!(s.ceiling(3), Duration::from_millis(800));
        assert_eq!(s.ceiling(4), Duration::from_millis(1000));
        assert_eq!(s.ceiling(200), Duration::from_millis(1000));
    }

    #[test]
    fn full_jitter_stays_in_range_and_varies() {
        let s = settings();
        let mut rng = StdRng::seed_from_u64(7);
        let err = LlmError::Timeout;
        let delays: Vec<Duration> = (0..200).map(|_| s.delay_for(2, &err, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        let min = delays.iter().min().copied().unwrap_or_default();
        let max = delays.iter().max().copied().unwrap_or_default();
        assert!(min < Duration::from_millis(50), "min {min:?}");
        assert!(max > Duration::from_millis(350), "max {max:?}");
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let s = settings();
        let mut rng = StdRng::seed_from_u64(1);
        let short = LlmError::RateLimited {
            retry_after: Some(Duration::from_millis(700)),
        };
        assert_eq!(s.delay_for(0, &short, &mut rng), Duration::from_millis(700));
        let long = LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(s.delay_for(0, &long, &mut rng), Duration::from_millis(2000));
    }

    #[test]
    fn parses_retry_after_forms() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 27, 30).unwrap();
        assert_eq!(
            parse_retry_after(Some("250"), Some("9"), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after(None, Some("2"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after(None, Some("0.5"), now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after(None, Some("Wed, 21 Oct 2015 07:28:00 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(None, Some("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(None, Some("soon"), now), None);
        assert_eq!(parse_retry_after(Some("-5"), Some("-1"), now), None);
        assert_eq!(parse_retry_after(None, None, now), None);
    }

    #[test]
    fn validation() {
        assert!(BackoffSettings::default().validate().is_ok());
        let bad = BackoffSettings {
            base: Duration::from_secs(5),
            max: Duration::from_secs(1),
            ..BackoffSettings::default()
        };
        assert!(bad.validate().is_err());
    }
}
