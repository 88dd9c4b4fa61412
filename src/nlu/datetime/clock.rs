//! Clock readings: "3pm", "3:30", "15:00", "noon", "three thirty", "half past two",
//! "quarter to 5", "10 past 9", "3ish", "3 o'clock", and how a reading becomes a time of day.
//!
//! Owns `Clock` (the hour as said, minutes, and what fixes am/pm) and `clock` (the reader).
//! Invariants: a `Clock` keeps the hour as written, so the business-hours rule (1–7 → pm,
//! 8–11 → am, 12 → noon) or a part of the day ("at 7 in the morning") decides am/pm only
//! when the text did not; "N to H" is computed from H's reading ("quarter to 8" → 07:45).
//! A reading is "strong" when it cannot be an ordinary number (am/pm, a colon, "o'clock",
//! "ish", "past"/"to"); bare numbers need a trigger word, which the callers check.

use chrono::{NaiveTime, TimeDelta, Timelike};

use super::atom::first_best;
use super::lexicon;
use super::scan::Scan;

/// What decides whether an hour is before or after noon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mer {
    /// "am" said.
    Am,
    /// "pm" said.
    Pm,
    /// A 24-hour reading ("15:00", "09:30", "noon", "midnight").
    Fixed,
    /// Nothing said: the business-hours rule applies.
    Bare,
}

/// A clock reading as said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Clock {
    /// The hour as written (1–12, or 0–24 for 24-hour readings).
    pub h: u32,
    /// Minutes past the hour, or before it when `to`.
    pub m: u32,
    /// "quarter to 5": `m` minutes before hour `h`.
    pub to: bool,
    /// What fixes am/pm.
    pub mer: Mer,
}

impl Clock {
    fn at(h: u32, m: u32, mer: Mer) -> Self {
        Clock {
            h,
            m,
            to: false,
            mer,
        }
    }

    /// The hour on a 24-hour clock, the business-hours rule for bare hours.
    pub fn hour24(self) -> Option<u32> {
        match (self.mer, self.h) {
            (Mer::Am, 12) => Some(0),
            (Mer::Am, 1..=11) => Some(self.h),
            (Mer::Pm, 12) => Some(12),
            (Mer::Pm, 1..=11) => Some(self.h + 12),
            (Mer::Pm, 13..=23) => Some(self.h),
            (Mer::Fixed | Mer::Bare, 24) => Some(0),
            (Mer::Fixed, 0..=23) => Some(self.h),
            (Mer::Bare, 1..=7) => Some(self.h + 12),
            (Mer::Bare, 0 | 8..=23) => Some(self.h),
            _ => None,
        }
    }

    /// The time of day this reading names.
    pub fn time(self) -> Option<NaiveTime> {
        if self.m >= 60 {
            return None;
        }
        let h = self.hour24()?;
        if self.to {
            let base = NaiveTime::from_hms_opt(h, 0, 0)?;
            let back = TimeDelta::try_minutes(i64::from(self.m))?;
            Some(base.overflowing_sub_signed(back).0)
        } else {
            NaiveTime::from_hms_opt(h, self.m, 0)
        }
    }

    /// This reading with am/pm taken from a part of the day when the text left it open.
    pub fn hinted(self, hint: Option<Mer>) -> Self {
        match (self.mer, hint) {
            (Mer::Bare, Some(m @ (Mer::Am | Mer::Pm))) if (1..=11).contains(&self.h) => {
                Clock { mer: m, ..self }
            }
            _ => self,
        }
    }

    /// Whether am or pm was said.
    pub fn has_meridiem(self) -> bool {
        matches!(self.mer, Mer::Am | Mer::Pm)
    }
}

/// A clock reading starting at `i`: the reading, the index after it, and whether it is strong.
pub(super) fn clock(s: &Scan<'_, '_>, i: usize) -> Option<(Clock, usize, bool)> {
    first_best(
        [named(s, i), digital(s, i), worded(s, i), past_to(s, i)],
        |(_, end, strong)| (*end, *strong),
    )
}

/// A clock reading that starts a range: as `clock`, but never "N to H", so "from ten to two"
/// is a range, not 13:50.
pub(super) fn range_start(s: &Scan<'_, '_>, i: usize) -> Option<(Clock, usize, bool)> {
    let minutes_to = past_to(s, i).filter(|(c, _, _)| !c.to);
    first_best(
        [named(s, i), digital(s, i), worded(s, i), minutes_to],
        |(_, end, strong)| (*end, *strong),
    )
}

/// "noon", "midday", "midnight".
fn named(s: &Scan<'_, '_>, i: usize) -> Option<(Clock, usize, bool)> {
    match s.word(i) {
        "noon" | "midday" => Some((Clock::at(12, 0, Mer::Fixed), i + 1, true)),
        "midnight" => Some((Clock::at(0, 0, Mer::Fixed), i + 1, true)),
        _ => None,
    }
}

/// What follows an hour: am/pm, "o'clock" or "ish"; returns the meridiem said (if any), the
/// index after, and whether the suffix makes the reading strong.
fn suffix(s: &Scan<'_, '_>, j: usize) -> (Option<Mer>, usize, bool) {
    let glued_letter = s.glued(j) && s.is(j, "a|p");
    match s.word(j) {
        "am" => (Some(Mer::Am), j + 1, true),
        "pm" => (Some(Mer::Pm), j + 1, true),
        "a" if glued_letter => (Some(Mer::Am), j + 1, true),
        "p" if glued_letter => (Some(Mer::Pm), j + 1, true),
        "o'clock" | "ish" => (None, j + 1, true),
        _ if s.is(j, "-") && s.glued(j) && s.glued(j + 1) && s.is(j + 1, "ish") => {
            (None, j + 2, true)
        }
        _ => (None, j, false),
    }
}

/// Digit readings: "3", "3pm", "3:30", "3.30pm", "15:00", "0930", "930am", "12 noon".
fn digital(s: &Scan<'_, '_>, i: usize) -> Option<(Clock, usize, bool)> {
    let (v, n) = s.digits(i)?;
    let mut j = i + 1;
    let (mut h, mut m, mut colon, mut dot) = (v, 0, false, false);
    if n > 2 {
        if n > 4 {
            return None;
        }
        (h, m) = (v / 100, v % 100);
    } else if s.is(j, ":|.") && s.glued(j) && s.glued(j + 1) {
        if let Some((mm, 2)) = s.digits(j + 1) {
            colon = s.is(j, ":");
            dot = !colon;
            m = mm;
            j += 2;
        }
    }
    if n <= 2 && m == 0 && !colon && !dot && h == 12 {
        match s.word(j) {
            "noon" | "midday" => return Some((Clock::at(12, 0, Mer::Fixed), j + 1, true)),
            "midnight" => return Some((Clock::at(0, 0, Mer::Fixed), j + 1, true)),
            _ => {}
        }
    }
    let (mer, end, strong_suffix) = suffix(s, j);
    if m >= 60 || (n > 2 && mer.is_none()) {
        return None;
    }
    let mer = match mer {
        Some(Mer::Am) if (1..=12).contains(&h) => Mer::Am,
        Some(Mer::Pm) if (1..=23).contains(&h) => Mer::Pm,
        Some(_) => return None,
        None if (colon || dot) && ((n == 2 && v < 10) || h == 0 || h >= 13) => Mer::Fixed,
        None if h <= 24 => Mer::Bare,
        None => return None,
    };
    if h == 24 && m != 0 {
        return None;
    }
    Some((Clock::at(h, m, mer), end, strong_suffix || colon))
}

/// Minutes said in words after an hour word: "thirty", "forty five", "oh five".
fn minute_words(s: &Scan<'_, '_>, j: usize) -> Option<(u32, usize)> {
    if s.is(j, "oh|o") {
        let u = lexicon::unit_number(s.word(j + 1)).filter(|u| (1..=9).contains(u))?;
        return Some((u, j + 2));
    }
    s.number_words(j).filter(|(m, _)| (10..=59).contains(m))
}

/// Word readings: "three", "three thirty", "ten forty-five pm", "eleven o'clock".
fn worded(s: &Scan<'_, '_>, i: usize) -> Option<(Clock, usize, bool)> {
    let h = lexicon::unit_number(s.word(i)).filter(|h| (1..=12).contains(h))?;
    let (m, j) = minute_words(s, i + 1).unwrap_or((0, i + 1));
    let (mer, end, strong) = suffix(s, j);
    Some((Clock::at(h, m, mer.unwrap_or(Mer::Bare)), end, strong))
}

/// The hour after "past"/"to": digits or a word, 1–12 (or noon/midnight), with its suffix.
fn named_hour(s: &Scan<'_, '_>, j: usize) -> Option<(Clock, usize)> {
    if let Some((c, end, _)) = named(s, j) {
        return Some((c, end));
    }
    let h = match s.digits(j) {
        Some((v, n)) if n <= 2 => v,
        Some(_) => return None,
        None => lexicon::unit_number(s.word(j))?,
    };
    if !(1..=12).contains(&h) {
        return None;
    }
    let (mer, end, _) = suffix(s, j + 1);
    Some((Clock::at(h, 0, mer.unwrap_or(Mer::Bare)), end))
}

/// "half past two", "quarter to 5", "ten past 9", "20 minutes to 4", "half two" (UK).
fn past_to(s: &Scan<'_, '_>, i: usize) -> Option<(Clock, usize, bool)> {
    let j = if s.is(i, "a") { i + 1 } else { i };
    let (m, worded, mut j) = match s.word(j) {
        "half" => (30, true, j + 1),
        "quarter" => (15, true, j + 1),
        _ if i == j => {
            let (m, end) = s.cardinal(j)?;
            (m, s.digits(j).is_none(), end)
        }
        _ => return None,
    };
    if !(1..=30).contains(&m) {
        return None;
    }
    let said_minutes = s.is(j, "minute");
    if said_minutes {
        j += 1;
    }
    let to = match s.word(j) {
        "past" => false,
        "after" if worded => false,
        "to" if m != 30 && (said_minutes || (worded && m % 5 == 0)) => true,
        _ if m == 30 && s.is(i, "half") => {
            // UK "half two" = 2:30; weak, the caller needs a trigger word.
            let (c, end) = named_hour(s, j)?;
            return Some((Clock { m: 30, ..c }, end, false));
        }
        _ => return None,
    };
    let (c, end) = named_hour(s, j + 1)?;
    Some((Clock { m, to, ..c }, end, true))
}

/// The time of day `t` shifted by twelve hours when that stays within the day.
pub(super) fn plus_twelve(t: NaiveTime) -> Option<NaiveTime> {
    (t.hour() < 12).then(|| t.overflowing_add_signed(TimeDelta::hours(12)).0)
}

/// The time of day `t` moved back twelve hours when it is in the afternoon.
pub(super) fn minus_twelve(t: NaiveTime) -> Option<NaiveTime> {
    (t.hour() >= 12).then(|| t.overflowing_sub_signed(TimeDelta::hours(12)).0)
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;
    use chrono::NaiveDate;

    fn read(text: &str) -> Option<(String, bool)> {
        let toks = tokenize(text);
        let now = NaiveDate::from_ymd_opt(2026, 11, 24)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .unwrap();
        let s = Scan {
            toks: &toks,
            now,
            today: now.date(),
            tz: chrono_tz::UTC,
        };
        let (c, end, strong) = clock(&s, 0)?;
        assert_eq!(end, toks.len(), "{text} not fully read");
        Some((c.time()?.format("%H:%M").to_string(), strong))
    }

    fn strong(text: &str) -> String {
        match read(text) {
            Some((t, true)) => t,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn bare(text: &str) -> String {
        match read(text) {
            Some((t, false)) => t,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn am_pm_readings() {
        assert_eq!(strong("3pm"), "15:00");
        assert_eq!(strong("3 PM"), "15:00");
        assert_eq!(strong("3 p.m."), "15:00");
        assert_eq!(strong("3:30pm"), "15:30");
        assert_eq!(strong("3.30pm"), "15:30");
        assert_eq!(strong("12am"), "00:00");
        assert_eq!(strong("12pm"), "12:00");
        assert_eq!(strong("11 am"), "11:00");
        assert_eq!(strong("930am"), "09:30");
        assert_eq!(strong("3p"), "15:00");
        assert_eq!(read("13am"), None);
        assert_eq!(read("0pm"), None);
    }

    #[test]
    fn colon_readings() {
        assert_eq!(strong("15:00"), "15:00");
        assert_eq!(strong("09:30"), "09:30");
        assert_eq!(strong("2:30"), "14:30");
        assert_eq!(strong("10:45"), "10:45");
        assert_eq!(strong("00:15"), "00:15");
        assert_eq!(read("3:75"), None);
    }

    #[test]
    fn bare_hours_follow_business_hours() {
        assert_eq!(bare("3"), "15:00");
        assert_eq!(bare("7"), "19:00");
        assert_eq!(bare("8"), "08:00");
        assert_eq!(bare("11"), "11:00");
        assert_eq!(bare("12"), "12:00");
        assert_eq!(bare("15"), "15:00");
        assert_eq!(bare("four"), "16:00");
        assert_eq!(bare("3.30"), "15:30");
        assert_eq!(read("25"), None);
    }

    #[test]
    fn words_and_named_times() {
        assert_eq!(strong("noon"), "12:00");
        assert_eq!(strong("midday"), "12:00");
        assert_eq!(strong("midnight"), "00:00");
        assert_eq!(strong("12 noon"), "12:00");
        assert_eq!(strong("three o'clock"), "15:00");
        assert_eq!(strong("3 oclock"), "15:00");
        assert_eq!(strong("3ish"), "15:00");
        assert_eq!(strong("ten thirty am"), "10:30");
        assert_eq!(bare("two thirty"), "14:30");
        assert_eq!(bare("ten oh five"), "10:05");
    }

    #[test]
    fn past_and_to() {
        assert_eq!(strong("half past two"), "14:30");
        assert_eq!(strong("quarter past 9"), "09:15");
        assert_eq!(strong("quarter to 5"), "16:45");
        assert_eq!(strong("a quarter to twelve"), "11:45");
        assert_eq!(strong("quarter to 8"), "07:45");
        assert_eq!(strong("ten past 3"), "15:10");
        assert_eq!(strong("twenty to four"), "15:40");
        assert_eq!(strong("20 minutes to 4"), "15:40");
        assert_eq!(strong("half past 10 am"), "10:30");
        assert_eq!(strong("quarter to 5pm"), "16:45");
        assert_eq!(bare("half two"), "14:30");
    }

    #[test]
    fn hints_apply_only_when_open() {
        let c = Clock::at(7, 0, Mer::Bare);
        assert_eq!(c.hinted(Some(Mer::Am)).hour24(), Some(7));
        assert_eq!(c.hinted(Some(Mer::Pm)).hour24(), Some(19));
        let pm = Clock::at(3, 0, Mer::Pm);
        assert_eq!(pm.hinted(Some(Mer::Am)).hour24(), Some(15));
    }
}
