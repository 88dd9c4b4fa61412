//! Time-of-day matchers: clock times with their trigger words, ranges of times, "after"/
//! "before" bounds and parts of the day.
//!
//! Owns `time_atom`. Invariants: a bare number becomes a time only after a trigger word ("at",
//! "around", "between", "from", "after", …) and only when what follows it is not a noun
//! ("about 2 hours", "between 2 and 4 kids" are not times); ranges without a trigger or am/pm
//! ("2-4") are weak and need a day beside them; greetings ("good morning") are not parts of
//! the day. Parts of the day: morning 08–12, lunchtime 12–14, afternoon 12–17, evening and
//! night 17–21, first thing 08–10; "early"/"late" take the first/second part of one.

use super::atom::{first_best, Atom, TimeSpec};
use super::clock::{clock, range_start, Clock, Mer};
use super::lexicon;
use super::scan::Scan;

/// The longest time-of-day expression starting at token `i`.
pub(super) fn time_atom(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    first_best(
        [point(s, i), range(s, i), bound(s, i), part(s, i)],
        |(end, atom)| (*end, !atom.weak),
    )
}

/// Words that introduce a single time: "at 3", "around 4", "by 5".
const POINT_TRIGGERS: &str = "at|@|around|about|by";

/// "at 3", "around 4ish", "3pm", "at half past two"; UK "half 3" without a trigger is weak
/// (it needs a day beside it).
fn point(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let j = s.skip(i, POINT_TRIGGERS, 3);
    let (c, end, strong) = clock(s, j)?;
    let triggered = j > i && s.clock_follower_ok(end);
    let atom = Atom::time(TimeSpec::Point(c));
    if strong || triggered {
        Some((end, atom))
    } else if s.is(j, "half") && s.clock_follower_ok(end) {
        Some((end, atom.weak(true)))
    } else {
        None
    }
}

/// "between 2 and 4", "from 9 to 11am", "2-4pm", "2 to 4 pm", "14:00-16:00".
fn range(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let (opener, j) = match s.word(i) {
        "between" => ("between", i + 1),
        "from" => ("from", i + 1),
        _ => ("", i),
    };
    let (a, ja, a_strong) = range_start(s, j)?;
    let joins = match opener {
        "between" => "and|-|to|&",
        _ => "to|until|-|through",
    };
    if !s.is(ja, joins) {
        return None;
    }
    let (b, end, b_strong) = clock(s, ja + 1)?;
    if !s.clock_follower_ok(end) {
        return None;
    }
    let strong =
        !opener.is_empty() || a.has_meridiem() || b.has_meridiem() || (a_strong && b_strong);
    Some((end, Atom::time(TimeSpec::Range(a, b)).weak(!strong)))
}

/// "after 3pm", "before 11", "from 3 onwards", "until 4", "not before 10", "3pm onwards",
/// "after lunch", "before lunch", "after work".
fn bound(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let i = s.skip(i, "anytime|any", 1);
    let i = if s.is(i, "time") && s.is(i.wrapping_sub(1), "any") {
        i + 1
    } else {
        i
    };
    let (after, j) = if let Some(j) = s.seq(i, &["not|no", "before"]) {
        (true, j)
    } else if let Some(j) = s.seq(i, &["no", "earlier", "than"]) {
        (true, j)
    } else if let Some(j) = s.seq(i, &["no", "later", "than"]) {
        (false, j)
    } else if let Some(j) = s.seq(i, &["up", "to|until"]) {
        (false, j)
    } else {
        match s.word(i) {
            "after" | "from" => (true, i + 1),
            "before" | "until" => (false, i + 1),
            _ => return open_ended(s, i),
        }
    };
    if let Some(found) = meal_bound(s, j, after) {
        return Some(found);
    }
    let (c, end, strong) = clock(s, j)?;
    let end = if s.is(end, "onwards") { end + 1 } else { end };
    if !strong && !s.clock_follower_ok(end) {
        return None;
    }
    Some((end, Atom::time(bounded(c, after))))
}

fn bounded(c: Clock, after: bool) -> TimeSpec {
    if after {
        TimeSpec::After(c)
    } else {
        TimeSpec::Before(c)
    }
}

/// "after lunch" (14:00–21:00), "before lunch" (08:00–12:00), "after work" (17:00–21:00).
fn meal_bound(s: &Scan<'_, '_>, j: usize, after: bool) -> Option<(usize, Atom)> {
    let spec = match (s.word(j), after) {
        ("lunch" | "lunchtime", true) => TimeSpec::span(14, 0, 21, 0, Mer::Pm),
        ("lunch" | "lunchtime", false) => TimeSpec::span(8, 0, 12, 0, Mer::Am),
        ("work", true) => TimeSpec::span(17, 0, 21, 0, Mer::Pm),
        _ => return None,
    };
    Some((j + 1, Atom::time(spec)))
}

/// "3pm onwards", "3pm or later", "11am or earlier".
fn open_ended(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let (c, end, strong) = clock(s, i)?;
    if !strong {
        return None;
    }
    if s.is(end, "onwards") {
        return Some((end + 1, Atom::time(TimeSpec::After(c))));
    }
    if let Some(e) = s.seq(end, &["or|and", "later|after"]) {
        return Some((e, Atom::time(TimeSpec::After(c))));
    }
    let e = s.seq(end, &["or", "earlier|before"])?;
    Some((e, Atom::time(TimeSpec::Before(c))))
}

/// How "early"/"late" narrow a part of the day.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Narrow {
    Whole,
    Early,
    Late,
}

/// Parts of the day: "in the afternoon", "this evening" (today), "late morning", "at night",
/// "first thing", "lunchtime", "Thursday am".
fn part(s: &Scan<'_, '_>, i: usize) -> Option<(usize, Atom)> {
    let (today, mut j) = if s.is(i, "this") {
        (true, i + 1)
    } else {
        let j = s.skip(i, "in|during|for|by|over|at|around|about|every|on", 1);
        (false, s.skip(j, "the", 1))
    };
    let prefixed = j > i;
    let narrow = match s.word(j) {
        "early" => Narrow::Early,
        "late" | "later" => Narrow::Late,
        "mid" | "middle" => Narrow::Whole,
        _ => Narrow::Whole,
    };
    let modified = s.is(j, "early|late|later|mid|middle");
    if modified {
        j += 1;
        if s.is(j, "-") {
            j += 1;
        }
    }
    if let Some(end) = s.seq(j, &["first", "thing"]) {
        let end = s.seq(end, &["in", "the", "morning"]).unwrap_or(end);
        return Some((
            end,
            with_today(s, today, TimeSpec::span(8, 0, 10, 0, Mer::Am)),
        ));
    }
    let w = s.word(j);
    let spec = named_part(w, narrow)?;
    let needs_day = matches!(w, "am" | "pm");
    if needs_day && (prefixed || !after_day_word(s, i)) {
        return None;
    }
    if !prefixed && !modified && greeting(s, i) {
        return None;
    }
    let weak = matches!(w, "night" | "lunch") && !prefixed && !today;
    Some((j + 1, with_today(s, today, spec).weak(weak)))
}

fn named_part(w: &str, narrow: Narrow) -> Option<TimeSpec> {
    use Narrow::*;
    Some(match (w, narrow) {
        ("morning" | "am", Whole) => TimeSpec::span(8, 0, 12, 0, Mer::Am),
        ("morning" | "am", Early) => TimeSpec::span(8, 0, 10, 0, Mer::Am),
        ("morning" | "am", Late) => TimeSpec::span(10, 0, 12, 0, Mer::Am),
        ("lunchtime" | "lunch", _) => TimeSpec::span(12, 0, 14, 0, Mer::Pm),
        ("afternoon" | "pm", Whole) => TimeSpec::span(12, 0, 17, 0, Mer::Pm),
        ("afternoon" | "pm", Early) => TimeSpec::span(12, 0, 15, 0, Mer::Pm),
        ("afternoon" | "pm", Late) => TimeSpec::span(15, 0, 17, 0, Mer::Pm),
        ("evening" | "night", Whole) => TimeSpec::span(17, 0, 21, 0, Mer::Pm),
        ("evening" | "night", Early) => TimeSpec::span(17, 0, 19, 0, Mer::Pm),
        ("evening" | "night", Late) => TimeSpec::span(19, 0, 21, 0, Mer::Pm),
        _ => return None,
    })
}

fn with_today(s: &Scan<'_, '_>, today: bool, spec: TimeSpec) -> Atom {
    let atom = Atom::time(spec);
    if today {
        Atom {
            day: Atom::on(s.today).day,
            ..atom
        }
    } else {
        atom
    }
}

/// Whether the word before `i` names a day ("Thursday am", "tomorrow pm").
fn after_day_word(s: &Scan<'_, '_>, i: usize) -> bool {
    let w = s.prev_word(i);
    lexicon::weekday_index(w).is_some() || matches!(w, "today" | "tomorrow")
}

/// "Good morning", "Morning all", "Morning! …": a greeting, not a part of the day.
fn greeting(s: &Scan<'_, '_>, i: usize) -> bool {
    s.prev_word(i) == "good"
        || s.is(i + 1, "all|everyone|there|team|folks")
        || (i == 0 && s.is(i + 1, "!|,") && i + 2 < s.len())
}

#[cfg(test)]
mod tests {
    use super::super::atom::Resolved;
    use super::super::lexer::tokenize;
    use super::*;
    use chrono::NaiveDate;

    /// The time atom at token 0 as "HH:MM" or "HH:MM..HH:MM", with "!" when weak and "+today"
    /// when it carries today.
    fn read(text: &str) -> Option<String> {
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
        let (end, atom) = time_atom(&s, 0)?;
        let mut out = match atom.time?.resolve()? {
            Resolved::At(t) => t.format("%H:%M").to_string(),
            Resolved::Between(a, b) => format!("{}..{}", a.format("%H:%M"), b.format("%H:%M")),
        };
        if atom.weak {
            out.push('!');
        }
        if atom.day.is_some() {
            out.push_str("+today");
        }
        if end != toks.len() {
            out.push_str(&format!("/{end}"));
        }
        Some(out)
    }

    fn r(text: &str) -> String {
        read(text).unwrap_or_else(|| "none".into())
    }

    #[test]
    fn triggered_points() {
        assert_eq!(r("at 3"), "15:00");
        assert_eq!(r("around 4"), "16:00");
        assert_eq!(r("at 15"), "15:00");
        assert_eq!(r("at 9"), "09:00");
        assert_eq!(r("at 12"), "12:00");
        assert_eq!(r("at about 10.30"), "10:30");
        assert_eq!(r("@ 5pm"), "17:00");
        assert_eq!(r("at half two"), "14:30");
        assert_eq!(r("3pm"), "15:00");
    }

    #[test]
    fn numbers_that_are_not_times() {
        assert_eq!(r("3"), "none");
        assert_eq!(r("about 2 hours"), "none");
        assert_eq!(r("around 4 people"), "none");
        assert_eq!(r("at 555 1234"), "none");
        assert_eq!(r("3.50"), "none");
        assert_eq!(r("between 2 and 4 kids"), "none");
        assert_eq!(r("after 2 weeks"), "none");
        assert_eq!(r("2-3 days"), "none");
    }

    #[test]
    fn ranges() {
        assert_eq!(r("between 2 and 4"), "14:00..16:00");
        assert_eq!(r("from 9 to 11am"), "09:00..11:00");
        assert_eq!(r("2-4pm"), "14:00..16:00");
        assert_eq!(r("2 to 4 pm"), "14:00..16:00");
        assert_eq!(r("2pm - 4pm"), "14:00..16:00");
        assert_eq!(r("14:00-16:00"), "14:00..16:00");
        assert_eq!(r("2-4"), "14:00..16:00!");
        assert_eq!(r("from 10 till 12"), "10:00..12:00");
        assert_eq!(r("between 11 and 1"), "11:00..13:00");
        assert_eq!(r("from ten to two"), "10:00..14:00");
        assert_eq!(r("ten to two"), "13:50");
    }

    #[test]
    fn bounds() {
        assert_eq!(r("after 3pm"), "15:00..21:00");
        assert_eq!(r("after 3"), "15:00..21:00");
        assert_eq!(r("before 11"), "08:00..11:00");
        assert_eq!(r("anytime after 2"), "14:00..21:00");
        assert_eq!(r("from 3pm onwards"), "15:00..21:00");
        assert_eq!(r("3pm onwards"), "15:00..21:00");
        assert_eq!(r("not before 10"), "10:00..21:00");
        assert_eq!(r("until 4"), "08:00..16:00");
        assert_eq!(r("after lunch"), "14:00..21:00");
        assert_eq!(r("before lunch"), "08:00..12:00");
    }

    #[test]
    fn parts_of_the_day() {
        assert_eq!(r("morning"), "08:00..12:00");
        assert_eq!(r("in the afternoon"), "12:00..17:00");
        assert_eq!(r("evening"), "17:00..21:00");
        assert_eq!(r("lunchtime"), "12:00..14:00");
        assert_eq!(r("at lunch"), "12:00..14:00");
        assert_eq!(r("lunch"), "12:00..14:00!");
        assert_eq!(r("first thing"), "08:00..10:00");
        assert_eq!(r("first thing in the morning"), "08:00..10:00");
        assert_eq!(r("this afternoon"), "12:00..17:00+today");
        assert_eq!(r("late afternoon"), "15:00..17:00");
        assert_eq!(r("early morning"), "08:00..10:00");
        assert_eq!(r("at night"), "17:00..21:00");
        assert_eq!(r("night"), "17:00..21:00!");
    }

    #[test]
    fn greetings_are_not_parts_of_the_day() {
        assert_eq!(r("morning all"), "none");
        assert_eq!(r("morning! can I book"), "none");
    }
}
