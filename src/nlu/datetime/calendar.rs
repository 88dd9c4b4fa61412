//! Calendar arithmetic behind the rules: weekdays, Monday-start weeks, month ends, the next
//! occurrence of a day of the month or of a month and day.
//!
//! Invariants: every function is total — arithmetic is checked and an impossible date gives
//! `None`, never a panic; "next occurrence" searches are bounded (a few months or years).

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};

/// `d` plus `n` days.
pub(super) fn add_days(d: NaiveDate, n: u64) -> Option<NaiveDate> {
    d.checked_add_days(Days::new(n))
}

/// `d` plus `n` calendar months (the day clamped to the month's end).
pub(super) fn add_months(d: NaiveDate, n: u32) -> Option<NaiveDate> {
    d.checked_add_months(Months::new(n))
}

/// Weekday from its index (0 = Monday).
pub(super) fn weekday(index: usize) -> Weekday {
    match index {
        0 => Weekday::Mon,
        1 => Weekday::Tue,
        2 => Weekday::Wed,
        3 => Weekday::Thu,
        4 => Weekday::Fri,
        5 => Weekday::Sat,
        _ => Weekday::Sun,
    }
}

/// The first `wd` strictly after `today` (1–7 days ahead).
pub(super) fn next_weekday(today: NaiveDate, wd: Weekday) -> Option<NaiveDate> {
    let ahead = (7 + wd.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
    add_days(today, u64::from(if ahead == 0 { 7 } else { ahead }))
}

/// The first `wd` on or after `from`.
pub(super) fn weekday_on_or_after(from: NaiveDate, wd: Weekday) -> Option<NaiveDate> {
    let ahead = (7 + wd.num_days_from_monday() - from.weekday().num_days_from_monday()) % 7;
    add_days(from, u64::from(ahead))
}

/// Monday of the week after `today`'s.
pub(super) fn next_monday(today: NaiveDate) -> Option<NaiveDate> {
    add_days(today, u64::from(7 - today.weekday().num_days_from_monday()))
}

/// Sunday of `today`'s week.
pub(super) fn this_sunday(today: NaiveDate) -> Option<NaiveDate> {
    add_days(today, u64::from(6 - today.weekday().num_days_from_monday()))
}

/// Last day of the month `month` of `year`.
pub(super) fn month_end(year: i32, month: u32) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    add_months(first, 1)?.pred_opt()
}

/// First day of the month after `d`'s.
pub(super) fn next_month_start(d: NaiveDate) -> Option<NaiveDate> {
    add_months(NaiveDate::from_ymd_opt(d.year(), d.month(), 1)?, 1)
}

/// The next date on or after `today` whose day of the month is `day` (this month when not yet
/// past, else the first later month that has that day).
pub(super) fn next_day_of_month(today: NaiveDate, day: u32) -> Option<NaiveDate> {
    if !(1..=31).contains(&day) {
        return None;
    }
    let mut first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1)?;
    for _ in 0..13 {
        if let Some(d) = first.with_day(day).filter(|d| *d >= today) {
            return Some(d);
        }
        first = add_months(first, 1)?;
    }
    None
}

/// The next `month`/`day` on or after `today` (up to eight years ahead, for 29 February).
pub(super) fn next_month_day(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    (today.year()..today.year().saturating_add(9))
        .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
        .find(|d| *d >= today)
}

/// Days `from..=to` of `month` (day numbers, `to` clamped to the month's end) in the first
/// year, from `today`'s on, where that span has not fully passed; its start is not before
/// today.
pub(super) fn month_span(
    today: NaiveDate,
    month: u32,
    from: u32,
    to: u32,
) -> Option<(NaiveDate, NaiveDate)> {
    for year in [today.year(), today.year().saturating_add(1)] {
        let end = month_end(year, month)?;
        let last = end.with_day(to.min(end.day()))?;
        if last < today {
            continue;
        }
        let first = NaiveDate::from_ymd_opt(year, month, from)?.max(today);
        return Some((first, last));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn next_weekday_is_strictly_after() {
        let tue = d(2026, 11, 24);
        assert_eq!(next_weekday(tue, Weekday::Thu), Some(d(2026, 11, 26)));
        assert_eq!(next_weekday(tue, Weekday::Tue), Some(d(2026, 12, 1)));
        assert_eq!(next_weekday(tue, Weekday::Mon), Some(d(2026, 11, 30)));
    }

    #[test]
    fn weeks_start_on_monday() {
        assert_eq!(next_monday(d(2026, 11, 24)), Some(d(2026, 11, 30)));
        assert_eq!(next_monday(d(2026, 11, 30)), Some(d(2026, 12, 7)));
        assert_eq!(next_monday(d(2026, 11, 29)), Some(d(2026, 11, 30)));
        assert_eq!(this_sunday(d(2026, 11, 29)), Some(d(2026, 11, 29)));
    }

    #[test]
    fn month_ends() {
        assert_eq!(month_end(2028, 2), Some(d(2028, 2, 29)));
        assert_eq!(month_end(2026, 12), Some(d(2026, 12, 31)));
        assert_eq!(month_end(2026, 13), None);
    }

    #[test]
    fn day_of_month_rolls_forward() {
        assert_eq!(
            next_day_of_month(d(2026, 11, 24), 24),
            Some(d(2026, 11, 24))
        );
        assert_eq!(next_day_of_month(d(2026, 11, 24), 3), Some(d(2026, 12, 3)));
        assert_eq!(
            next_day_of_month(d(2026, 11, 24), 31),
            Some(d(2026, 12, 31))
        );
        assert_eq!(next_day_of_month(d(2026, 12, 24), 3), Some(d(2027, 1, 3)));
        assert_eq!(next_day_of_month(d(2027, 2, 10), 30), Some(d(2027, 3, 30)));
        assert_eq!(next_day_of_month(d(2027, 2, 10), 32), None);
    }

    #[test]
    fn month_day_finds_leap_years() {
        assert_eq!(next_month_day(d(2026, 11, 24), 2, 29), Some(d(2028, 2, 29)));
        assert_eq!(
            next_month_day(d(2026, 11, 24), 11, 23),
            Some(d(2027, 11, 23))
        );
        assert_eq!(next_month_day(d(2026, 11, 24), 2, 30), None);
    }

    #[test]
    fn month_spans_start_today_at_the_earliest() {
        let today = d(2026, 11, 24);
        assert_eq!(
            month_span(today, 12, 1, 31),
            Some((d(2026, 12, 1), d(2026, 12, 31)))
        );
        assert_eq!(month_span(today, 11, 1, 31), Some((today, d(2026, 11, 30))));
        assert_eq!(
            month_span(today, 11, 1, 10),
            Some((d(2027, 11, 1), d(2027, 11, 10)))
        );
        assert_eq!(
            month_span(today, 3, 1, 31),
            Some((d(2027, 3, 1), d(2027, 3, 31)))
        );
    }
}
