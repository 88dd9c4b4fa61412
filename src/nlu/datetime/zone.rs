//! Local wall-clock ↔ UTC in the tenant's zone, DST-correct.
//!
//! Owns `to_utc` and `to_local`. Invariants: total functions (no panics, even at the edges of
//! the representable range); a local time in a DST gap is read with the offset in force just
//! before the gap, which moves it forward by the gap's length (London 01:30 on the spring-forward
//! day → 02:30 BST = 01:30 UTC); a local time in a fold (it happens twice) is the earlier
//! instant.

use chrono::{DateTime, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// Converts a local wall-clock value to UTC in `tz` (gaps move forward, folds take the earlier
/// instant).
pub fn to_utc(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, b) => a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
        chrono::LocalResult::None => {
            let day_before = local
                .checked_sub_signed(TimeDelta::days(1))
                .unwrap_or(local);
            let offset = tz
                .offset_from_utc_datetime(&day_before)
                .fix()
                .local_minus_utc();
            let utc = local
                .checked_sub_signed(TimeDelta::seconds(i64::from(offset)))
                .unwrap_or(local);
            Utc.from_utc_datetime(&utc)
        }
    }
}

/// The wall-clock time in `tz` at the instant `utc`.
pub fn to_local(utc: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    utc.with_timezone(&tz).naive_local()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.from_utc_datetime(&local(y, m, d, h, min))
    }

    #[test]
    fn london_plain_winter_and_summer() {
        let tz = chrono_tz::Europe::London;
        assert_eq!(
            to_utc(local(2026, 11, 26, 15, 0), tz),
            utc(2026, 11, 26, 15, 0)
        );
        assert_eq!(to_utc(local(2026, 7, 1, 15, 0), tz), utc(2026, 7, 1, 14, 0));
    }

    #[test]
    fn london_gap_moves_forward() {
        // 2026-03-29 01:00 GMT → 02:00 BST: 01:30 does not exist.
        let tz = chrono_tz::Europe::London;
        let t = to_utc(local(2026, 3, 29, 1, 30), tz);
        assert_eq!(t, utc(2026, 3, 29, 1, 30));
        assert_eq!(to_local(t, tz), local(2026, 3, 29, 2, 30));
    }

    #[test]
    fn london_fold_takes_the_earlier_instant() {
        // 2026-10-25 02:00 BST → 01:00 GMT: 01:30 happens twice.
        let tz = chrono_tz::Europe::London;
        assert_eq!(
            to_utc(local(2026, 10, 25, 1, 30), tz),
            utc(2026, 10, 25, 0, 30)
        );
    }

    #[test]
    fn new_york_gap_and_fold() {
        let tz = chrono_tz::America::New_York;
        // 2026-03-08 02:00 EST → 03:00 EDT.
        let t = to_utc(local(2026, 3, 8, 2, 30), tz);
        assert_eq!(t, utc(2026, 3, 8, 7, 30));
        assert_eq!(to_local(t, tz), local(2026, 3, 8, 3, 30));
        // 2026-11-01 02:00 EDT → 01:00 EST: 01:30 twice; earlier is EDT (UTC-4).
        assert_eq!(
            to_utc(local(2026, 11, 1, 1, 30), tz),
            utc(2026, 11, 1, 5, 30)
        );
        assert_eq!(to_utc(local(2026, 11, 1, 3, 0), tz), utc(2026, 11, 1, 8, 0));
    }

    #[test]
    fn extremes_do_not_panic() {
        let tz = chrono_tz::Pacific::Apia;
        let _ = to_utc(NaiveDateTime::MAX, tz);
        let _ = to_utc(NaiveDateTime::MIN, tz);
        // Samoa skipped 2011-12-30 entirely.
        let t = to_utc(local(2011, 12, 30, 12, 0), tz);
        assert!(t > utc(2011, 12, 29, 0, 0));
    }
}
