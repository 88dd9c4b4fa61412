//! Retry policy: exponential backoff with full jitter, capped.

use std::time::Duration;

use rand::Rng;

/// Delay before attempt `attempt + 1`, given `attempt` (1-based) has failed: a uniformly random
/// duration in `[0, min(cap, base * 2^(attempt-1))]`.
pub fn backoff(attempt: i32, base: Duration, cap: Duration) -> Duration {
    let ceiling = exponential_ceiling(attempt, base, cap);
    let millis = ceiling.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
}

fn exponential_ceiling(attempt: i32, base: Duration, cap: Duration) -> Duration {
    let exponent = attempt.clamp(1, 31) as u32 - 1;
    base.checked_mul(1u32 << exponent.min(20))
        .unwrap_or(cap)
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_per_attempt_until_the_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        assert_eq!(
            exponential_ceiling(1, base, cap),
            Duration::from_millis(100)
        );
        assert_eq!(
            exponential_ceiling(2, base, cap),
            Duration::from_millis(200)
        );
        assert_eq!(
            exponential_ceiling(4, base, cap),
            Duration::from_millis(800)
        );
        assert_eq!(exponential_ceiling(5, base, cap), cap);
        assert_eq!(exponential_ceiling(100, base, cap), cap);
    }

    #[test]
    fn jittered_delay_stays_within_the_ceiling() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for attempt in 1..10 {
            let d = backoff(attempt, base, cap);
            assert!(d <= exponential_ceiling(attempt, base, cap));
        }
    }
}
