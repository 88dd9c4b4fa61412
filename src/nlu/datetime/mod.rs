//! Date and time expressions in customer messages, resolved to local wall-clock values in the
//! tenant's time zone, exactly as docs/understanding.md ("Date and time expressions") fixes them.
//!
//! Owns the public API: [`TimeContext`], [`TimeValue`] (with its canonical form),
//! [`TimeMention`], [`extract`], [`resolve`] and [`to_utc`]. Submodules: `lexer` (tokens with
//! byte spans), `lexicon` (vocabulary, abbreviations, typos, number words), `scan` (shared token
//! view), `calendar` (date arithmetic), `clock` (clock readings), `atom` (intermediate pieces),
//! `days`, `times`, `relative` (the matchers), `combine` (joining and choosing), `zone` (UTC).
//!
//! Invariants: pure and deterministic (no clock reads: "now" comes from the [`TimeContext`]);
//! never panics on any input; mention spans are byte offsets on char boundaries of the input;
//! linear in the message length. A number is only read as a time or a day with evidence (am/pm,
//! a colon, a trigger word such as "at"/"between"/"after", an ordinal suffix, a month name),
//! and never when a noun follows it ("about 2 hours", "2 kids") — so unrelated numbers give
//! nothing.
//!
//! Readings the doc leaves open, and the booking-desk choice made here:
//! - A part of the day or a clock time with no day said is a `timerange`/`time` ("in the
//!   afternoon" → `timerange:12:00..17:00`); "this afternoon"/"this morning" are today.
//! - "H:MM" without am/pm follows the business-hours rule like a bare hour ("at 2:30" →
//!   14:30); a leading zero or an hour over 12 is a 24-hour reading ("09:30", "15:00").
//! - A bare range the business-hours rule would put out of order is read the other side of
//!   noon at its bare end: "between 7 and 9" → 19:00..21:00, "8pm-10" → 20:00..22:00.
//! - "after T" ends at 21:00, or 23:59 when T is 21:00 or later; "before T" starts at 08:00,
//!   or 00:00 when T is 08:00 or earlier. "after lunch" = 14:00..21:00, "before lunch" =
//!   08:00..12:00, "after work" = 17:00..21:00, "from 3" / "3pm onwards" = "after 3".
//!   "until 4" = "before 4"; "by 3" = "at 3".
//! - "early"/"late" narrow a part of the day: morning 08–10 / 10–12, afternoon 12–15 / 15–17,
//!   evening 17–19 / 19–21. "night" (tomorrow night, at night) = evening. "Thursday am/pm" =
//!   Thursday morning/afternoon. "ten to five" (words) = 16:50; "10 to 5" (digits) = a range.
//! - "later this week" when today is Sunday: tomorrow..next Sunday (the first Sunday after
//!   tomorrow). "mid next week" = Tue..Thu, "late/end of next week" = Thu..Fri, "the week
//!   after next" = the Monday..Sunday after next week; "this month" = today..month end;
//!   "early/mid/late next month" = 1–10 / 11–20 / 21–end; "end of next month" = its last day.
//! - A month alone ("in December", "December 2026") is that month's days (from today when it
//!   is the current month); "early/mid/late March" = 1–10 / 11–20 / 21–end; "end of March" =
//!   its last day. "may" and "march" need a day, a year or "in".
//! - Numeric `d/m` needs one number over 12 (so ratings like "10/10" are not dates), unless a
//!   weekday settles it ("Thu 3/12" → 3 December when only that reading is a Thursday); "24/7"
//!   is not a date; `d/m/yy` means 20yy; `d-m-yyyy` and `d.m.yyyy` need the 4-digit year.
//! - A rule that yields a range of days keeps the `daterange` kind even when both ends are the
//!   same day ("this weekend" said on a Sunday → `daterange:2026-11-29..2026-11-29`).
//! - A weekday with an explicit date ("Thursday the 27th") takes the date.
//! - Past references ("yesterday", "last Thursday", "2 days ago") give nothing.
//! - "in 2 hours" is elapsed time (across a DST change the wall clock moves accordingly).
//! - [`resolve`] with several mentions: negated ones ("not Monday", "Monday doesn't work") are
//!   dropped when another remains; a correction ("actually Friday", "Friday instead") or a
//!   reschedule target ("from Tuesday to Thursday", "change it to Friday") wins; a lone day and a lone time said apart
//!   ("Thursday. Around 3?") are joined; otherwise the first mention is the value. "Monday to
//!   Wednesday" (not after "move"/"change"/…) is one `daterange`. A day range said with a time
//!   ("next week in the afternoon") keeps the day range.

mod atom;
mod calendar;
mod clock;
mod combine;
mod days;
mod lexer;
mod lexicon;
mod relative;
mod scan;
mod times;
mod zone;

#[cfg(test)]
mod tests;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

pub use zone::to_utc;

/// Resolution context: "now" as a wall-clock time in the tenant's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeContext {
    /// Local wall-clock "now" in `tz`.
    pub now: NaiveDateTime,
    /// The tenant's time zone.
    pub tz: chrono_tz::Tz,
}

impl TimeContext {
    /// The context at the instant `now`, seen from `tz`.
    pub fn from_utc(now: DateTime<Utc>, tz: chrono_tz::Tz) -> Self {
        TimeContext {
            now: zone::to_local(now, tz),
            tz,
        }
    }

    /// Today's date in the tenant's zone.
    pub fn today(&self) -> NaiveDate {
        self.now.date()
    }
}

/// A resolved value (local wall-clock values; see docs/understanding.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimeValue {
    /// One day: `date:2026-11-26`.
    Date {
        /// The day.
        date: NaiveDate,
    },
    /// A day and a time: `datetime:2026-11-26T15:00`.
    DateTime {
        /// The moment.
        at: NaiveDateTime,
    },
    /// Days, both ends inclusive: `daterange:2026-11-30..2026-12-06`.
    DateRange {
        /// First day.
        from: NaiveDate,
        /// Last day (inclusive).
        to: NaiveDate,
    },
    /// A stretch of time, end exclusive: `interval:2026-11-26T12:00..2026-11-26T17:00`.
    Interval {
        /// Start (inclusive).
        from: NaiveDateTime,
        /// End (exclusive).
        to: NaiveDateTime,
    },
    /// A time of day with no day said: `time:15:00`.
    Time {
        /// The time of day.
        at: NaiveTime,
    },
    /// A range of times with no day said: `timerange:14:00..16:00`.
    TimeRange {
        /// Start.
        from: NaiveTime,
        /// End (exclusive).
        to: NaiveTime,
    },
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn ymd_hm(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

fn hm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

impl TimeValue {
    /// The canonical form used by the evaluation files, e.g.
    /// `interval:2026-11-26T12:00..2026-11-26T17:00`.
    pub fn canonical(&self) -> String {
        match self {
            TimeValue::Date { date } => format!("date:{}", ymd(*date)),
            TimeValue::DateTime { at } => format!("datetime:{}", ymd_hm(*at)),
            TimeValue::DateRange { from, to } => format!("daterange:{}..{}", ymd(*from), ymd(*to)),
            TimeValue::Interval { from, to } => {
                format!("interval:{}..{}", ymd_hm(*from), ymd_hm(*to))
            }
            TimeValue::Time { at } => format!("time:{}", hm(*at)),
            TimeValue::TimeRange { from, to } => format!("timerange:{}..{}", hm(*from), hm(*to)),
        }
    }

    /// The first day the value covers (`None` for times without a day).
    pub fn first_date(&self) -> Option<NaiveDate> {
        match self {
            TimeValue::Date { date } => Some(*date),
            TimeValue::DateTime { at } => Some(at.date()),
            TimeValue::DateRange { from, .. } => Some(*from),
            TimeValue::Interval { from, .. } => Some(from.date()),
            TimeValue::Time { .. } | TimeValue::TimeRange { .. } => None,
        }
    }
}

/// The canonical form of an optional value: `none` when there is none.
pub fn canonical_or_none(value: Option<&TimeValue>) -> String {
    value.map_or_else(|| "none".to_string(), TimeValue::canonical)
}

/// One expression found in a text: byte span in the original text and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeMention {
    /// Byte offset where the expression starts.
    pub start: usize,
    /// Byte offset just after it ends.
    pub end: usize,
    /// The expression as written (`&text[start..end]`).
    pub text: String,
    /// What it means.
    pub value: TimeValue,
}

fn scan_and<R>(text: &str, ctx: &TimeContext, f: impl FnOnce(&scan::Scan<'_, '_>) -> R) -> R {
    let toks = lexer::tokenize(text);
    let s = scan::Scan {
        toks: &toks,
        now: ctx.now,
        today: ctx.today(),
        tz: ctx.tz,
    };
    f(&s)
}

/// All expressions in `text`, in order; adjacent parts (a day and a time / part of day /
/// range) are combined into one mention.
pub fn extract(text: &str, ctx: &TimeContext) -> Vec<TimeMention> {
    scan_and(text, ctx, |s| {
        combine::mentions(s)
            .into_iter()
            .filter_map(|f| {
                let start = s.toks.get(f.start)?.start;
                let end = s.toks.get(f.end.checked_sub(1)?)?.end;
                Some(TimeMention {
                    start,
                    end,
                    text: text.get(start..end)?.to_string(),
                    value: f.value,
                })
            })
            .collect()
    })
}

/// The utterance's single value (one utterance gives one value): the combined best mention,
/// or `None` when the text holds no date or time expression.
pub fn resolve(text: &str, ctx: &TimeContext) -> Option<TimeValue> {
    scan_and(text, ctx, |s| {
        let found = combine::mentions(s);
        combine::choose(s, &found)
    })
}
