//! Day matchers: relative days, weekdays, weeks/weekends/months, days of the month, month-name
//! dates, ISO dates and unambiguous numeric dates.
//!
//! Owns `day_atom`. Invariants (docs/understanding.md, "Date and time expressions"): a weekday
//! ("Thursday", "this/next Thursday") is the first one strictly after today; "Thursday next
//! week" is the one in next (Monday-start) week; a day of the month or a month-and-day without
//! a year is the next occurrence on or after today; numeric `d/m` dates are read only when one
//! number is over 12; past references ("last Thursday") give nothing.
//! Weak words ("sat", "sun", "may") only count with support (see `Atom::weak`, and month names
//! only with a day number, a year, or "in"/"early"/"end of").

use chrono::{Datelike, NaiveDate};

use super::atom::{first_best, Atom};
use super::calendar as cal;
use super::lexicon;
use super::scan::Scan;

/// The longest day expression starting at token `i`.
pub(super) fn day_atom(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    first_best(
        [
            relative_day(s, i),
            weekday(s, i),
            period(s, i),
            month_date(s, i),
            month_alone(s, i),
            day_of_month(s, i),
            iso(s, i),
            numeric(s, i),
        ],
        |(end, atom)| (*end, !atom.weak),
    )
}

/// "today", "later today", "tonight", "tomorrow", "the day after tomorrow".
fn relative_day(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    if let Some(end) = s.seq(i, &["the?", "day", "after", "tomorrow"]) {
        return Some((end, Atom::on(cal::add_days(s.today, 2)?)));
    }
    match s.word(i) {
        "today" => Some((i + 1, Atom::on(s.today))),
        "later" if s.is(i + 1, "today") => Some((i + 2, Atom::on(s.today))),
        "tomorrow" => Some((i + 1, Atom::on(cal::add_days(s.today, 1)?))),
        "tonight" => {
            let evening = super::atom::TimeSpec::span(17, 0, 21, 0, super::clock::Mer::Pm);
            Some((
                i + 1,
                Atom {
                    time: Some(evening),
                    ..Atom::on(s.today)
                },
            ))
        }
        _ => None,
    }
}

/// Words before a weekday that make even a weak abbreviation ("sat") a day.
const WEEKDAY_SUPPORT: &str =
    "on|this|next|coming|every|following|by|until|for|before|after|from|or|and|between|to";

/// "Thursday", "on thu", "this/next Thursday", "Thursday next week", "next week Thursday",
/// "the Thursday after next", "Thursday the 26th", "Thu 26 Nov".
fn weekday(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let starts = lexicon::weekday_index(s.word(i)).is_some()
        || s.is(i, "the|next|on|this|coming|every|following");
    if !starts || s.is(i.wrapping_sub(1), "last|past|previous") {
        return None;
    }
    let mut j = s.skip(i, "the", 1);
    let after_the = j;
    let mut next_week = false;
    if let Some(e) = s.seq(j, &["next", "week", ",|on?"]) {
        next_week = true;
        j = e;
    }
    j = s.skip(j, "on|this|next|coming|every|following", 2);
    let paired =
        s.is(j + 1, "or|and|to|until|through|-") && lexicon::weekday_index(s.word(j + 2)).is_some();
    let mut supported = j > after_the || paired || s.is(i.wrapping_sub(1), WEEKDAY_SUPPORT);
    let wd = cal::weekday(lexicon::weekday_index(s.word(j))?);
    let weak_word = s.weak(j);
    let mut end = j + 1;
    if let Some((date, e)) = dated(s, end, wd) {
        return Some((e, Atom::on(date)));
    }
    let mut date = cal::next_weekday(s.today, wd)?;
    if let Some(e) = s
        .seq(end, &["of|,?", "next", "week"])
        .filter(|_| !next_week)
    {
        next_week = true;
        end = e;
    } else if let Some(e) = s.seq(end, &["after", "next"]) {
        date = cal::add_days(date, 7)?;
        end = e;
        supported = true;
    } else if let Some(e) = s.seq(end, &["this", "week"]) {
        end = e;
        supported = true;
    }
    let weak = weak_word && !supported && !next_week;
    if next_week {
        let offset = u64::from(wd.num_days_from_monday());
        date = cal::add_days(cal::next_monday(s.today)?, offset)?;
    }
    Some((end, Atom::on(date).weak(weak)))
}

/// An explicit date right after a weekday: "Thursday the 26th", "Thursday, November 26",
/// "Thu 26 Nov", "Thursday 26" (a bare number only when it falls on that weekday).
fn dated(s: &Scan<'_, '_>, i: usize, wd: chrono::Weekday) -> Option<(NaiveDate, usize)> {
    let j = s.skip(i, ",", 1);
    let explicit = first_best([month_date(s, j), day_of_month(s, j)], |(end, _)| *end);
    if let Some((end, atom)) = explicit {
        if let Some(super::atom::DaySpec::On(d)) = atom.day {
            return Some((d, end));
        }
    }
    if let Some(found) = numeric_on_weekday(s, j, wd) {
        return Some(found);
    }
    let (n, digits) = s.digits(j)?;
    if digits > 2 || s.is(j + 1, ":|.|am|pm|-|o'clock") || !s.follower_ok(j + 1) {
        return None;
    }
    let date = cal::next_day_of_month(s.today, n)?;
    (date.weekday() == wd).then_some((date, j + 1))
}

/// "Thu 3/12": a numeric day/month that would be ambiguous alone, settled by the weekday said
/// (only one reading falls on it).
fn numeric_on_weekday(
    s: &Scan<'_, '_>,
    i: usize,
    wd: chrono::Weekday,
) -> Option<(NaiveDate, usize)> {
    let n = numeric_parts(s, i)?;
    if n.len != 2 || n.sep != "/" || embedded(s, i, n.end) {
        return None;
    }
    let ((a, _), (b, _)) = (n.parts[0], n.parts[1]);
    let fits = |day: u32, month: u32| {
        cal::next_month_day(s.today, month, day).filter(|d| d.weekday() == wd)
    };
    match (fits(a, b), fits(b, a)) {
        (Some(d), None) | (None, Some(d)) => Some((d, n.end)),
        (Some(d), Some(e)) if d == e => Some((d, n.end)),
        _ => None,
    }
}

/// Named stretches of days.
#[derive(Clone, Copy)]
enum Period {
    ThisWeek,
    NextWeek,
    EarlyNextWeek,
    MidNextWeek,
    LateNextWeek,
    LaterThisWeek,
    WeekAfterNext,
    ThisWeekend,
    NextWeekend,
    WeekendAfterNext,
    ThisMonth,
    NextMonth,
    EndOfMonth,
    EndOfNextMonth,
    EarlyNextMonth,
    MidNextMonth,
    LateNextMonth,
}

/// Patterns naming stretches of days (see `Scan::seq` for the notation).
const PERIODS: &[(&[&str], Period)] = &[
    (&["this", "week"], Period::ThisWeek),
    (&["next", "week"], Period::NextWeek),
    (&["early", "next", "week"], Period::EarlyNextWeek),
    (
        &["beginning|start", "of", "next", "week"],
        Period::EarlyNextWeek,
    ),
    (
        &["mid|middle", "-?", "of?", "next", "week"],
        Period::MidNextWeek,
    ),
    (&["late|later", "next", "week"], Period::LateNextWeek),
    (&["end", "of", "next", "week"], Period::LateNextWeek),
    (&["later|late", "this", "week"], Period::LaterThisWeek),
    (&["later|late", "in", "the", "week"], Period::LaterThisWeek),
    (&["end", "of", "the|this", "week"], Period::LaterThisWeek),
    (&["the", "week", "after", "next"], Period::WeekAfterNext),
    (&["week", "after", "next"], Period::WeekAfterNext),
    (&["this|the", "coming?", "weekend"], Period::ThisWeekend),
    (&["weekend"], Period::ThisWeekend),
    (&["next", "weekend"], Period::NextWeekend),
    (
        &["the?", "weekend", "after", "next"],
        Period::WeekendAfterNext,
    ),
    (&["this", "month"], Period::ThisMonth),
    (&["next", "month"], Period::NextMonth),
    (&["end", "of", "the|this", "month"], Period::EndOfMonth),
    (
        &["the?", "last", "day", "of", "the|this", "month"],
        Period::EndOfMonth,
    ),
    (
        &["the?", "last", "day", "of", "next", "month"],
        Period::EndOfNextMonth,
    ),
    (&["end", "of", "next", "month"], Period::EndOfNextMonth),
    (&["early", "next", "month"], Period::EarlyNextMonth),
    (
        &["beginning|start", "of", "next", "month"],
        Period::EarlyNextMonth,
    ),
    (
        &["mid|middle", "-?", "of?", "next", "month"],
        Period::MidNextMonth,
    ),
    (&["late|later", "next", "month"], Period::LateNextMonth),
];

/// First words of the `PERIODS` patterns (a quick filter).
const PERIOD_STARTS: &str =
    "this|next|early|beginning|start|mid|middle|late|later|end|the|week|weekend|last";

/// "this week", "next weekend", "end of the month", …
fn period(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    if !s.is(i, PERIOD_STARTS) {
        return None;
    }
    let (end, which) = PERIODS
        .iter()
        .filter_map(|(pat, which)| s.seq(i, pat).map(|end| (end, *which)))
        .max_by_key(|(end, _)| *end)?;
    Some((end, period_atom(s.today, which)?))
}

fn period_atom(today: NaiveDate, which: Period) -> Option<Atom> {
    use chrono::Weekday::{Fri, Sat, Sun};
    let day = |n: u64| cal::add_days(today, n);
    let next_mon = cal::next_monday(today)?;
    let nw = |n: u64| cal::add_days(next_mon, n);
    let next_month = cal::next_month_start(today)?;
    let nm_end = cal::month_end(next_month.year(), next_month.month())?;
    let nm = |d: u32| next_month.with_day(d);
    match which {
        Period::ThisWeek => Atom::span(today, cal::this_sunday(today)?),
        Period::NextWeek => Atom::span(next_mon, nw(6)?),
        Period::EarlyNextWeek => Atom::span(next_mon, nw(2)?),
        Period::MidNextWeek => Atom::span(nw(1)?, nw(3)?),
        Period::LateNextWeek => Atom::span(nw(3)?, nw(4)?),
        Period::LaterThisWeek => {
            let tomorrow = day(1)?;
            let end = if today.weekday().num_days_from_monday() < Fri.num_days_from_monday() {
                cal::weekday_on_or_after(tomorrow, Fri)?
            } else {
                cal::weekday_on_or_after(tomorrow, Sun)?
            };
            Atom::span(tomorrow, end)
        }
        Period::WeekAfterNext => Atom::span(nw(7)?, nw(13)?),
        Period::ThisWeekend => match today.weekday() {
            Sat | Sun => Atom::span(today, cal::this_sunday(today)?),
            _ => {
                let sat = cal::weekday_on_or_after(today, Sat)?;
                Atom::span(sat, cal::add_days(sat, 1)?)
            }
        },
        Period::NextWeekend => Atom::span(nw(5)?, nw(6)?),
        Period::WeekendAfterNext => Atom::span(nw(12)?, nw(13)?),
        Period::ThisMonth => Atom::span(today, cal::month_end(today.year(), today.month())?),
        Period::NextMonth => Atom::span(next_month, nm_end),
        Period::EndOfMonth => Some(Atom::on(cal::month_end(today.year(), today.month())?)),
        Period::EndOfNextMonth => Some(Atom::on(nm_end)),
        Period::EarlyNextMonth => Atom::span(next_month, nm(10)?),
        Period::MidNextMonth => Atom::span(nm(11)?, nm(20)?),
        Period::LateNextMonth => Atom::span(nm(21)?, nm_end),
    }
}

/// A four-digit year at `i` (1900–2199).
fn year(s: &Scan<'_, '_>, i: usize) -> Option<(i32, usize)> {
    match s.digits(i) {
        Some((y, 4)) if (1900..2200).contains(&y) => Some((i32::try_from(y).ok()?, i + 1)),
        _ => None,
    }
}

/// An optional year after a date: ", 2027" / " 2027".
fn opt_year(s: &Scan<'_, '_>, i: usize) -> (Option<i32>, usize) {
    let j = s.skip(i, ",", 1);
    match year(s, j) {
        Some((y, end)) => (Some(y), end),
        None => (None, i),
    }
}

/// The date `month`/`day` in `year`, or its next occurrence on or after today.
fn dated_day(s: &Scan<'_, '_>, year: Option<i32>, month: u32, day: u32) -> Option<NaiveDate> {
    match year {
        Some(y) => NaiveDate::from_ymd_opt(y, month, day),
        None => cal::next_month_day(s.today, month, day),
    }
}

/// Words before "may"/"march" that make them verbs ("I may", "we march").
fn verb_context(s: &Scan<'_, '_>, i: usize) -> bool {
    s.is(
        i.wrapping_sub(1),
        "i|we|you|they|he|she|it|that|this|which|who|there|what|how|and|or|so|but",
    )
}

/// A day number at `i`: an ordinal ("3rd", "third") or digits 1–31; the flag says it was a
/// bare number.
fn day_number(s: &Scan<'_, '_>, i: usize) -> Option<(u32, usize, bool)> {
    if let Some((v, end, _)) = s.ordinal(i) {
        return (1..=31).contains(&v).then_some((v, end, false));
    }
    match s.digits(i) {
        Some((v, n)) if n <= 2 && (1..=31).contains(&v) => Some((v, i + 1, true)),
        _ => None,
    }
}

/// "March 3rd", "Nov 26, 2026", "December the 1st", "3 March", "3rd of March 2027",
/// "the 26th of November".
fn month_date(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    first_best([month_first(s, i), day_first(s, i)], |(end, _)| *end)
}

fn month_first(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let month = lexicon::month_number(s.word(i))?;
    if s.weak(i) && verb_context(s, i) {
        return None;
    }
    let j = s.skip(i + 1, "the", 1);
    let (day, end, bare) = day_number(s, j)?;
    let (year, end_year) = opt_year(s, end);
    if bare && year.is_none() && (s.is(end, ":|.|am|pm|o'clock") || !s.follower_ok(end)) {
        return None;
    }
    let end = end_year;
    Some((end, Atom::on(dated_day(s, year, month, day)?)))
}

fn day_first(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let j = s.skip(i, "the", 1);
    let (day, j, bare) = day_number(s, j)?;
    let after_trigger = s.is(
        i.wrapping_sub(1),
        "at|@|around|about|from|between|until|before|after|by",
    );
    if bare && (after_trigger || (s.glued(i) && s.is_punct(i.wrapping_sub(1)))) {
        return None;
    }
    let m = s.skip(j, "of", 1);
    let month = lexicon::month_number(s.word(m))?;
    let (year, end) = opt_year(s, m + 1);
    if s.weak(m) && year.is_none() && !s.follower_ok(end) {
        return None;
    }
    Some((end, Atom::on(dated_day(s, year, month, day)?)))
}

/// "in December", "December 2026", "early March", "end of January", "by the end of June".
fn month_alone(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let (j, kind) = if let Some(j) = s.seq(i, &["the?", "end", "of"]) {
        (j, "end")
    } else if let Some(j) = s.seq(i, &["the?", "beginning|start", "of"]) {
        (j, "early")
    } else {
        match s.word(i) {
            "early" | "late" | "mid" => (s.skip(i + 1, "-", 1), s.word(i)),
            "in" | "during" => (i + 1, "in"),
            _ => (i, ""),
        }
    };
    let month = lexicon::month_number(s.word(j))?;
    if s.ordinal(j + 1).is_some() || s.digits(j + 1).is_some_and(|(_, n)| n <= 2) {
        return None;
    }
    if let Some((y, end)) = year(s, j + 1) {
        let first = NaiveDate::from_ymd_opt(y, month, 1)?;
        return Some((
            end,
            Atom::span(first.max(s.today), cal::month_end(y, month)?)?,
        ));
    }
    if kind.is_empty() && s.weak(j) {
        return None;
    }
    let (from, to) = match kind {
        "early" => (1, 10),
        "mid" => (11, 20),
        "late" => (21, 31),
        "end" => (31, 31),
        _ => (1, 31),
    };
    let (first, last) = cal::month_span(s.today, month, from, to)?;
    let atom = if kind == "end" {
        Atom::on(last)
    } else {
        Atom::span(first, last)?
    };
    Some((j + 1, atom))
}

/// "the 14th", "on the 3rd", "14th", "the fourteenth", "on the 14", "the 1st of next month".
fn day_of_month(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let on = s.is(i, "on");
    let j = s.skip(i, "on", 1);
    let the = s.is(j, "the");
    let j = s.skip(j, "the", 1);
    let (day, end, digits) = match s.ordinal(j) {
        Some(found) => found,
        None if on && the => {
            let (v, n) = s.digits(j)?;
            (n <= 2).then_some((v, j + 1, true))?
        }
        None => return None,
    };
    if !digits && !the && !s.is(end, "of") {
        return None;
    }
    let before_month = s.skip(end, "of", 1);
    if lexicon::month_number(s.word(before_month)).is_some() {
        // "on 2nd December": the month-name reader takes it from the day number.
        return None;
    }
    if let Some(e) = s.seq(end, &["of", "next", "month"]) {
        let first = cal::next_month_start(s.today)?;
        return Some((e, Atom::on(first.with_day(day)?)));
    }
    if let Some(e) = s.seq(end, &["of", "this|the", "month"]) {
        return Some((e, Atom::on(s.today.with_day(day)?)));
    }
    if !s.follower_ok(end) || s.is(end, "-|:") {
        return None;
    }
    Some((end, Atom::on(cal::next_day_of_month(s.today, day)?)))
}

/// Glued digit/separator/digit(/separator/digit) tokens from `i`, one separator throughout.
struct Numeric<'s> {
    /// Values and digit counts, in order (two or three used).
    parts: [(u32, usize); 3],
    /// How many of `parts` were read.
    len: usize,
    /// The separator ("-", "/" or "."), "" when only one number was read.
    sep: &'s str,
    /// Index after the last number.
    end: usize,
}

fn numeric_parts<'s>(s: &'s Scan<'_, '_>, i: usize) -> Option<Numeric<'s>> {
    let mut n = Numeric {
        parts: [s.digits(i)?, (0, 0), (0, 0)],
        len: 1,
        sep: "",
        end: i + 1,
    };
    while n.len < 3 && s.glued(n.end) && s.glued(n.end + 1) && s.is(n.end, "-|/|.") {
        let this = s.toks.get(n.end).map_or("", |t| t.norm.as_ref());
        if !n.sep.is_empty() && n.sep != this {
            break;
        }
        let Some(part) = s.digits(n.end + 1) else {
            break;
        };
        n.sep = this;
        n.parts[n.len] = part;
        n.len += 1;
        n.end += 2;
    }
    Some(n)
}

/// Whether the tokens around `i..end` continue a longer number ("1/2/3/4", "3.5.1").
fn embedded(s: &Scan<'_, '_>, i: usize, end: usize) -> bool {
    let before =
        i > 0 && s.glued(i) && (s.is(i - 1, "-|/|.|:|$|£|€|#") || s.digits(i - 1).is_some());
    let after =
        s.glued(end) && s.is(end, "-|/|.|:|%") && s.glued(end + 1) && s.digits(end + 1).is_some();
    before || after
}

/// "2026-12-03", "2026/12/03".
fn iso(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let n = numeric_parts(s, i)?;
    if n.len != 3 || n.parts[0].1 != 4 || n.sep == "." || embedded(s, i, n.end) {
        return None;
    }
    let y = i32::try_from(n.parts[0].0).ok()?;
    let date = NaiveDate::from_ymd_opt(y, n.parts[1].0, n.parts[2].0)?;
    Some((n.end, Atom::on(date)))
}

/// "25/12", "12/25", "25/12/2026", "25.12.2026": only when the order is unambiguous.
fn numeric(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let n = numeric_parts(s, i)?;
    let dashed_ok = n.len == 3 && n.parts[2].1 == 4;
    if n.len < 2
        || (n.sep == "-" && !dashed_ok)
        || (n.sep == "." && n.len < 3)
        || embedded(s, i, n.end)
    {
        return None;
    }
    let ((a, an), (b, bn)) = (n.parts[0], n.parts[1]);
    if an > 2 || bn > 2 || (a, b) == (24, 7) {
        return None;
    }
    let (day, month) = match (a > 12, b > 12) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => return None,
    };
    let year = match (n.len, n.parts[2]) {
        (3, (y, 4)) => Some(i32::try_from(y).ok()?),
        (3, (y, 2)) => Some(2000 + i32::try_from(y).ok()?),
        (3, _) => return None,
        _ => None,
    };
    Some((n.end, Atom::on(dated_day(s, year, month, day)?)))
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn at(text: &str, today: (i32, u32, u32)) -> String {
        let toks = tokenize(text);
        let now = NaiveDate::from_ymd_opt(today.0, today.1, today.2)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .unwrap();
        let s = Scan {
            toks: &toks,
            now,
            today: now.date(),
            tz: chrono_tz::UTC,
        };
        let Some((end, atom)) = day_atom(&s, 0) else {
            return "none".into();
        };
        let mut out = match atom.day {
            Some(super::super::atom::DaySpec::On(d)) => d.to_string(),
            Some(super::super::atom::DaySpec::Span(a, b)) => format!("{a}..{b}"),
            None => "?".into(),
        };
        if atom.weak {
            out.push('!');
        }
        if end != toks.len() {
            out.push_str(&format!("/{end}"));
        }
        out
    }

    /// Reference today: Tuesday 2026-11-24.
    fn r(text: &str) -> String {
        at(text, (2026, 11, 24))
    }

    #[test]
    fn relative_days() {
        assert_eq!(r("today"), "2026-11-24");
        assert_eq!(r("tomorrow"), "2026-11-25");
        assert_eq!(r("the day after tomorrow"), "2026-11-26");
        assert_eq!(r("day after tomorrow"), "2026-11-26");
        assert_eq!(r("tonight"), "2026-11-24");
    }

    #[test]
    fn weekdays() {
        assert_eq!(r("thursday"), "2026-11-26");
        assert_eq!(r("on thursday"), "2026-11-26");
        assert_eq!(r("this thursday"), "2026-11-26");
        assert_eq!(r("next thursday"), "2026-11-26");
        assert_eq!(r("tuesday"), "2026-12-01");
        assert_eq!(r("thursday next week"), "2026-12-03");
        assert_eq!(r("next week thursday"), "2026-12-03");
        assert_eq!(r("next week on thursday"), "2026-12-03");
        assert_eq!(r("thursday of next week"), "2026-12-03");
        assert_eq!(r("the thursday after next"), "2026-12-03");
        assert_eq!(r("monday next week"), "2026-11-30");
        assert_eq!(r("sat"), "2026-11-28!");
        assert_eq!(r("on sat"), "2026-11-28");
    }

    #[test]
    fn weekdays_with_dates() {
        assert_eq!(r("thursday the 3rd"), "2026-12-03");
        assert_eq!(r("thursday 26th"), "2026-11-26");
        assert_eq!(r("thursday 26"), "2026-11-26");
        assert_eq!(r("thursday, november 26th"), "2026-11-26");
        assert_eq!(r("thu 3 dec"), "2026-12-03");
        assert_eq!(r("thursday 3pm"), "2026-11-26/1");
    }

    #[test]
    fn periods() {
        assert_eq!(r("this week"), "2026-11-24..2026-11-29");
        assert_eq!(r("next week"), "2026-11-30..2026-12-06");
        assert_eq!(r("early next week"), "2026-11-30..2026-12-02");
        assert_eq!(r("later this week"), "2026-11-25..2026-11-27");
        assert_eq!(r("end of the week"), "2026-11-25..2026-11-27");
        assert_eq!(r("this weekend"), "2026-11-28..2026-11-29");
        assert_eq!(r("the weekend"), "2026-11-28..2026-11-29");
        assert_eq!(r("next weekend"), "2026-12-05..2026-12-06");
        assert_eq!(r("next month"), "2026-12-01..2026-12-31");
        assert_eq!(r("end of the month"), "2026-11-30");
        assert_eq!(r("the last day of the month"), "2026-11-30");
        assert_eq!(r("last day of next month"), "2026-12-31");
        assert_eq!(r("the week after next"), "2026-12-07..2026-12-13");
    }

    #[test]
    fn periods_late_in_the_week() {
        // Friday 2026-11-27, Saturday 28, Sunday 29.
        assert_eq!(
            at("later this week", (2026, 11, 27)),
            "2026-11-28..2026-11-29"
        );
        assert_eq!(at("this weekend", (2026, 11, 28)), "2026-11-28..2026-11-29");
        assert_eq!(at("this weekend", (2026, 11, 29)), "2026-11-29..2026-11-29");
        assert_eq!(at("next weekend", (2026, 11, 28)), "2026-12-05..2026-12-06");
        assert_eq!(at("next week", (2026, 11, 29)), "2026-11-30..2026-12-06");
        assert_eq!(at("next month", (2026, 12, 10)), "2027-01-01..2027-01-31");
        assert_eq!(at("end of the month", (2028, 2, 3)), "2028-02-29");
    }

    #[test]
    fn days_of_the_month() {
        assert_eq!(r("the 14th"), "2026-12-14");
        assert_eq!(r("on the 3rd"), "2026-12-03");
        assert_eq!(r("the 24th"), "2026-11-24");
        assert_eq!(r("the 30th"), "2026-11-30");
        assert_eq!(r("the fourteenth"), "2026-12-14");
        assert_eq!(r("the twenty-first"), "2026-12-21");
        assert_eq!(r("on the 28"), "2026-11-28");
        assert_eq!(r("the 1st of next month"), "2026-12-01");
        assert_eq!(at("the 3rd", (2026, 12, 24)), "2027-01-03");
        assert_eq!(r("the 3rd floor"), "none");
        assert_eq!(r("the second"), "2026-12-02");
    }

    #[test]
    fn month_names() {
        assert_eq!(r("march 3rd"), "2027-03-03");
        assert_eq!(r("3 march"), "2027-03-03");
        assert_eq!(r("3rd of march 2027"), "2027-03-03");
        assert_eq!(r("dec 1"), "2026-12-01");
        assert_eq!(r("nov 24"), "2026-11-24");
        assert_eq!(r("nov 23"), "2027-11-23");
        assert_eq!(r("the 26th of november"), "2026-11-26");
        assert_eq!(r("november 26, 2027"), "2027-11-26");
        assert_eq!(r("december 5 2026"), "2026-12-05");
        assert_eq!(r("feb 29"), "2028-02-29");
        assert_eq!(r("feb 30"), "none");
        assert_eq!(r("in december"), "2026-12-01..2026-12-31");
        assert_eq!(r("end of january"), "2027-01-31");
        assert_eq!(r("early march"), "2027-03-01..2027-03-10");
        assert_eq!(r("may"), "none");
        assert_eq!(r("in may"), "2027-05-01..2027-05-31");
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(r("2026-12-03"), "2026-12-03");
        assert_eq!(r("13/12"), "2026-12-13");
        assert_eq!(r("12/13"), "2026-12-13");
        assert_eq!(r("3/12"), "none");
        assert_eq!(r("25/12/2026"), "2026-12-25");
        assert_eq!(r("25/12/27"), "2027-12-25");
        assert_eq!(r("24/7"), "none");
        assert_eq!(r("5/5"), "none");
        assert_eq!(r("10/10"), "none");
        assert_eq!(r("2026-02-30"), "none");
        assert_eq!(r("1/2/3/4"), "none");
    }
}
