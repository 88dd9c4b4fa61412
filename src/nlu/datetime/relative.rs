//! Offsets from now: "in 3 days", "in two weeks", "in a week", "in a fortnight", "in 2 hours",
//! "in 30 minutes", "in half an hour", "in an hour and a half", "3 days from now".
//!
//! Owns `relative_atom`. Invariants: days/weeks/months give a date (today + n; months keep the
//! day, clamped to the month's end); hours/minutes give a moment: now plus that elapsed time
//! (through UTC, so a DST change in between is honoured), rounded down to the minute. Amounts
//! are bounded (nothing beyond ~10 years) and all arithmetic is checked.

use chrono::{TimeDelta, Timelike};

use super::atom::Atom;
use super::calendar as cal;
use super::scan::Scan;
use super::zone::{to_local, to_utc};

/// How far ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offset {
    Minutes(i64),
    Days(u64),
    Months(u32),
}

/// Largest amount read, in the unit said.
const MAX_AMOUNT: u32 = 5000;

/// "in …" or "… from now" starting at token `i`.
pub(super) fn relative_atom(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let has_in = s.is(i, "in|within");
    let start = if has_in {
        s.skip(i + 1, "like|about|around|just|only|maybe", 2)
    } else {
        i
    };
    let (offset, mut end) = amount_unit(s, start)?;
    if s.is(end, "'") && s.is(end + 1, "time") {
        end += 2;
    } else if s.is(end, "time") {
        end += 1;
    }
    if let Some(e) = s.seq(end, &["from", "tomorrow"]) {
        let Offset::Days(n) = offset else {
            return None;
        };
        return Some((e, Atom::on(cal::add_days(s.today, n.checked_add(1)?)?)));
    }
    match s.seq(end, &["from", "now|today"]) {
        Some(e) => end = e,
        None if !has_in => return week_from_day(s, offset, end),
        None => {}
    }
    Some((end, apply(s, offset)?))
}

/// UK "a week today", "a fortnight tomorrow": that many days after today or tomorrow.
fn week_from_day(s: &Scan<'_, '_>, offset: Offset, end: usize) -> Option<(usize, Atom)> {
    let Offset::Days(n) = offset else {
        return None;
    };
    let base = match s.word(end) {
        "today" if n >= 7 => s.today,
        "tomorrow" if n >= 7 => cal::add_days(s.today, 1)?,
        _ => return None,
    };
    Some((end + 1, Atom::on(cal::add_days(base, n)?)))
}

fn apply(s: &Scan<'_, '_>, offset: Offset) -> Option<Atom> {
    match offset {
        Offset::Days(n) => Some(Atom::on(cal::add_days(s.today, n)?)),
        Offset::Months(n) => Some(Atom::on(cal::add_months(s.today, n)?)),
        Offset::Minutes(n) => {
            let later = to_utc(s.now, s.tz).checked_add_signed(TimeDelta::try_minutes(n)?)?;
            let local = to_local(later, s.tz).with_second(0)?.with_nanosecond(0)?;
            Some(Atom {
                moment: Some(local),
                ..Atom::default()
            })
        }
    }
}

/// An amount in halves: "a"/"an"/"one" (2), "a couple of" (4), "3" (6), "1.5" (3),
/// "two and a half" (5).
fn amount(s: &Scan<'_, '_>, i: usize) -> Option<(u32, usize)> {
    if let Some(e) = s.seq(i, &["a?", "couple", "of?"]) {
        return Some((4, e));
    }
    let (whole, mut end) = if s.is(i, "a|an") {
        (1, i + 1)
    } else {
        match s.digits(i) {
            Some((v, n)) if n <= 4 => (v, i + 1),
            Some(_) => return None,
            None => s.number_words(i)?,
        }
    };
    if whole > MAX_AMOUNT {
        return None;
    }
    let mut halves = whole * 2;
    if s.is(end, ".") && s.glued(end) && s.glued(end + 1) && s.digits(end + 1) == Some((5, 1)) {
        halves += 1;
        end += 2;
    } else if let Some(e) = s.seq(end, &["and", "a", "half"]) {
        halves += 1;
        end = e;
    }
    Some((halves, end))
}

/// An amount and its unit, with "and a half" / "and 30 minutes" after an hour.
fn amount_unit(s: &Scan<'_, '_>, i: usize) -> Option<(Offset, usize)> {
    if let Some(e) = s.seq(i, &["half", "an|a", "hour"]) {
        return Some((Offset::Minutes(30), e));
    }
    let (halves, j) = amount(s, i)?;
    let unit = s.word(j);
    let mut end = j + 1;
    let whole_only = |per: u64| (halves % 2 == 0).then(|| u64::from(halves / 2) * per);
    let offset = match unit {
        "minute" => Offset::Minutes(i64::from(halves) * 30 / 60),
        "hour" => {
            let mut minutes = i64::from(halves) * 30;
            if halves % 2 == 0 {
                if let Some(e) = s.seq(end, &["and", "a", "half"]) {
                    minutes += 30;
                    end = e;
                } else if let Some(e) = extra_minutes(s, end, &mut minutes) {
                    end = e;
                }
            }
            Offset::Minutes(minutes)
        }
        "day" => Offset::Days(whole_only(1)?),
        "week" => Offset::Days(whole_only(7)?),
        "fortnight" => Offset::Days(whole_only(14)?),
        "month" => Offset::Months(u32::try_from(whole_only(1)?).ok()?),
        _ => return None,
    };
    Some((offset, end))
}

/// "… and 30 minutes" after hours.
fn extra_minutes(s: &Scan<'_, '_>, i: usize, minutes: &mut i64) -> Option<usize> {
    if !s.is(i, "and") {
        return None;
    }
    let (m, j) = s.cardinal(i + 1)?;
    if !s.is(j, "minute") || m >= 60 {
        return None;
    }
    *minutes += i64::from(m);
    Some(j + 1)
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;
    use chrono::NaiveDate;

    fn r(text: &str) -> String {
        let toks = tokenize(text);
        let now = NaiveDate::from_ymd_opt(2026, 11, 24)
            .and_then(|d| d.and_hms_opt(10, 17, 42))
            .unwrap();
        let s = Scan {
            toks: &toks,
            now,
            today: now.date(),
            tz: chrono_tz::Europe::London,
        };
        match relative_atom(&s, 0) {
            Some((end, atom)) if end == toks.len() => match (atom.moment, atom.day) {
                (Some(m), _) => m.format("%Y-%m-%dT%H:%M").to_string(),
                (None, Some(super::super::atom::DaySpec::On(d))) => d.to_string(),
                _ => "?".into(),
            },
            Some((end, _)) => format!("partial {end}"),
            None => "none".into(),
        }
    }

    #[test]
    fn days_weeks_months() {
        assert_eq!(r("in 3 days"), "2026-11-27");
        assert_eq!(r("in two weeks"), "2026-12-08");
        assert_eq!(r("in a week"), "2026-12-01");
        assert_eq!(r("in a fortnight"), "2026-12-08");
        assert_eq!(r("in a couple of days"), "2026-11-26");
        assert_eq!(r("in 2 weeks time"), "2026-12-08");
        assert_eq!(r("in a month"), "2026-12-24");
        assert_eq!(r("3 days from now"), "2026-11-27");
        assert_eq!(r("a week from tomorrow"), "2026-12-02");
        assert_eq!(r("a week today"), "2026-12-01");
        assert_eq!(r("a fortnight tomorrow"), "2026-12-09");
        assert_eq!(r("3 days"), "none");
    }

    #[test]
    fn hours_and_minutes_round_down() {
        assert_eq!(r("in an hour"), "2026-11-24T11:17");
        assert_eq!(r("in 2 hours"), "2026-11-24T12:17");
        assert_eq!(r("in 30 minutes"), "2026-11-24T10:47");
        assert_eq!(r("in half an hour"), "2026-11-24T10:47");
        assert_eq!(r("in an hour and a half"), "2026-11-24T11:47");
        assert_eq!(r("in 1.5 hours"), "2026-11-24T11:47");
        assert_eq!(r("in 2 hours and 15 minutes"), "2026-11-24T12:32");
        assert_eq!(r("in 90 mins"), "2026-11-24T11:47");
        assert_eq!(r("in about an hour"), "2026-11-24T11:17");
        assert_eq!(r("in like 20 mins"), "2026-11-24T10:37");
        assert_eq!(r("in 99999 hours"), "none");
    }

    #[test]
    fn hours_cross_dst_as_elapsed_time() {
        let toks = tokenize("in 2 hours");
        let now = NaiveDate::from_ymd_opt(2026, 3, 29)
            .and_then(|d| d.and_hms_opt(0, 30, 0))
            .unwrap();
        let s = Scan {
            toks: &toks,
            now,
            today: now.date(),
            tz: chrono_tz::Europe::London,
        };
        let (_, atom) = relative_atom(&s, 0).unwrap();
        // 00:30 GMT + 2h = 02:30 UTC = 03:30 BST.
        assert_eq!(
            atom.moment,
            NaiveDate::from_ymd_opt(2026, 3, 29).and_then(|d| d.and_hms_opt(3, 30, 0))
        );
    }
}
