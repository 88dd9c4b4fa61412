//! From tokens to mentions: finds atoms left to right, joins adjacent ones ("next Thursday" +
//! "afternoon", "tomorrow" + "between 2 and 4", "Monday" + "to" + "Wednesday"), turns each group
//! into a value, and picks the utterance's single value.
//!
//! Owns `mentions` and `choose`. Invariants: atoms never overlap and are found by longest match
//! at each position, so scanning is linear; two atoms join only across "glue" (commas, "at",
//! "on", "in the", …, at most `MAX_GLUE` tokens) and only when they fit (one day and one time;
//! a part of the day and a clock time); a weak atom survives only when joined or when the
//! message says nothing else. `choose` drops negated mentions ("not Monday", "Monday doesn't
//! work") when others remain, prefers a correction ("actually Friday") or a reschedule target
//! ("from Tuesday to Thursday"), joins a lone day and a lone time said apart ("Thursday. Around
//! 3?"), and otherwise takes the first.

use super::atom::{first_best, Atom, DaySpec, Resolved};
use super::days::day_atom;
use super::lexer::Kind;
use super::relative::relative_atom;
use super::scan::Scan;
use super::times::time_atom;
use super::TimeValue;

/// Most glue tokens allowed between two atoms that join.
const MAX_GLUE: usize = 4;

/// Tokens that may sit between two joined atoms.
const GLUE: &str = ",|at|@|on|in|the|of|around|about|-|say|maybe|preferably|ideally|sometime|some|time|anytime|any|for|by|ish|during|like|please|t";

/// Words after which a number is an identifier, not a time or a day.
const ID_WORDS: &str = "room|number|no|table|flat|apartment|apt|suite|unit|ext|floor|page|order|ref|reference|id|code|size|age|aged|level|gate|platform|bus|route|line|zone|version|step|item|ticket|invoice|account|policy|booking";

/// A group of joined atoms over tokens `start..end`, with its value.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// First token.
    pub start: usize,
    /// Token after the last.
    pub end: usize,
    /// The joined atom.
    pub atom: Atom,
    /// Its value.
    pub value: TimeValue,
}

/// A placed atom: tokens `start..end`.
struct Placed {
    start: usize,
    end: usize,
    atom: Atom,
    /// How many atoms were joined into this one.
    count: usize,
}

/// All mentions in the scanned message, in order.
pub(super) fn mentions(s: &Scan<'_, '_>) -> Vec<Found> {
    let groups = group(s, atoms(s));
    let lone = groups.len() == 1;
    groups
        .into_iter()
        .filter(|g| !g.atom.weak || g.count > 1 || (lone && says_nothing_else(s, g)))
        .filter_map(|g| {
            Some(Found {
                start: g.start,
                end: g.end,
                value: value(&g.atom)?,
                atom: g.atom,
            })
        })
        .collect()
}

/// Longest-match atoms, left to right.
fn atoms(s: &Scan<'_, '_>) -> Vec<Placed> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if !s.toks[i].known || identifier_number(s, i) {
            i += 1;
            continue;
        }
        let found = first_best(
            [day_atom(s, i), time_atom(s, i), relative_atom(s, i)],
            |(end, atom)| (*end, !atom.weak),
        );
        match found {
            Some((end, atom)) if end > i => {
                out.push(Placed {
                    start: i,
                    end,
                    atom,
                    count: 1,
                });
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// A number that is part of something else: "$40", "+44 …", "555 1234", "room 12", "A3".
fn identifier_number(s: &Scan<'_, '_>, i: usize) -> bool {
    if s.digits(i).is_none() || i == 0 {
        return false;
    }
    let prev = i - 1;
    let glued_to_prev = s.glued(i);
    // A clock reading right after a date is fine: "2026-12-05 14:00", "2026-12-05T14:00".
    let clock_next = (s.glued(i + 1) && s.is(i + 1, ":")) || s.is(i + 1, "am|pm");
    let prev_is_num = s.digits(prev).is_some() && !clock_next;
    let currency = glued_to_prev && s.is(prev, "$|£|€|#|+|.|/|:|-");
    let iso_t = s.is(prev, "t") && prev > 0 && s.digits(prev - 1).is_some();
    let glued_word =
        glued_to_prev && s.toks[prev].kind == Kind::Word && !s.is(prev, "at") && !iso_t;
    prev_is_num || currency || glued_word || s.is(prev, ID_WORDS)
}

/// Joins adjacent atoms that fit together.
fn group(s: &Scan<'_, '_>, atoms: Vec<Placed>) -> Vec<Placed> {
    let mut out: Vec<Placed> = Vec::with_capacity(atoms.len());
    for p in atoms {
        if let Some(last) = out.last_mut() {
            let joined = day_range(s, last, &p).or_else(|| {
                glue_only(s, last.end, p.start)
                    .then(|| merge(&last.atom, &p.atom))
                    .flatten()
            });
            if let Some(atom) = joined {
                last.atom = atom;
                last.end = p.end;
                last.count += p.count;
                continue;
            }
        }
        out.push(p);
    }
    out
}

fn glue_only(s: &Scan<'_, '_>, from: usize, to: usize) -> bool {
    to >= from && to - from <= MAX_GLUE && (from..to).all(|k| s.is(k, GLUE))
}

/// Words that mean the customer is moving a booking ("move Tuesday to Thursday").
const RESCHEDULE: &str = "move|moving|change|changing|reschedule|rescheduling|switch|push|shift|swap|bring|postpone|rebook";

/// "Monday to Wednesday", "from the 3rd until the 5th", "between Monday and Wednesday": one
/// run of days (not when the customer is moving a booking from one day to another).
fn day_range(s: &Scan<'_, '_>, a: &Placed, b: &Placed) -> Option<Atom> {
    let (Some(DaySpec::On(from)), Some(DaySpec::On(to))) = (a.atom.day, b.atom.day) else {
        return None;
    };
    if a.atom.time.is_some() || b.atom.time.is_some() || b.start != a.end + 1 {
        return None;
    }
    let between = s.is(a.start.wrapping_sub(1), "between");
    let joins = s.is(a.end, "to|until|through|-") || (between && s.is(a.end, "and"));
    if !joins || (0..a.start).any(|k| s.is(k, RESCHEDULE)) {
        return None;
    }
    // A weekday range wraps: "Friday to Monday" runs into the next week.
    let to = if to < from && from - to < chrono::TimeDelta::days(7) {
        to.checked_add_days(chrono::Days::new(7))?
    } else {
        to
    };
    Atom::span(from, to).filter(|_| from < to)
}

/// Two atoms as one, when they fit: one day and one time, or a part of the day and a clock
/// time (the part deciding am/pm).
pub(super) fn merge(a: &Atom, b: &Atom) -> Option<Atom> {
    if a.moment.is_some() || b.moment.is_some() {
        return None;
    }
    let day = match (a.day, b.day) {
        (Some(_), Some(_)) => return None,
        (x, y) => x.or(y),
    };
    let time = match (a.time, b.time) {
        (Some(x), Some(y)) if x.is_span() && !y.is_span() => Some(y.hinted(x.hint())),
        (Some(x), Some(y)) if y.is_span() && !x.is_span() => Some(x.hinted(y.hint())),
        (Some(_), Some(_)) => return None,
        (x, y) => x.or(y),
    };
    if matches!(day, Some(DaySpec::Span(..))) && time.is_some() {
        return None;
    }
    Some(Atom {
        day,
        time,
        moment: None,
        weak: false,
    })
}

/// Words that may surround a lone weak atom that is still the whole answer ("sat?", "on sun
/// please").
const FILLER: &str = "on|please|pls|ok|okay|how|about|what|maybe|then|yes|yeah|the|for|at|works|work|good|fine|thanks|thank|you|is|it|that|or|and|i|can|do|say|this|next";

fn says_nothing_else(s: &Scan<'_, '_>, g: &Placed) -> bool {
    (0..s.len())
        .filter(|k| !(g.start..g.end).contains(k))
        .all(|k| s.toks[k].kind == Kind::Punct || s.is(k, FILLER))
}

/// The value of a joined atom.
pub(super) fn value(atom: &Atom) -> Option<TimeValue> {
    if let Some(at) = atom.moment {
        return Some(TimeValue::DateTime { at });
    }
    let time = atom.time.and_then(|t| t.resolve());
    Some(match (atom.day, time) {
        (Some(DaySpec::Span(from, to)), _) => TimeValue::DateRange { from, to },
        (Some(DaySpec::On(d)), Some(Resolved::At(t))) => TimeValue::DateTime { at: d.and_time(t) },
        (Some(DaySpec::On(d)), Some(Resolved::Between(a, b))) => TimeValue::Interval {
            from: d.and_time(a),
            to: d.and_time(b),
        },
        (Some(DaySpec::On(date)), None) => TimeValue::Date { date },
        (None, Some(Resolved::At(at))) => TimeValue::Time { at },
        (None, Some(Resolved::Between(from, to))) => TimeValue::TimeRange { from, to },
        (None, None) => return None,
    })
}

/// Words that cancel the day or time next to them.
fn is_negation(w: &str) -> bool {
    matches!(
        w,
        "not"
            | "cannot"
            | "except"
            | "besides"
            | "than"
            | "unable"
            | "never"
            | "can't"
            | "cant"
            | "won't"
            | "wont"
            | "don't"
            | "dont"
            | "isn't"
            | "isnt"
            | "doesn't"
            | "doesnt"
            | "couldn't"
            | "couldnt"
            | "aren't"
            | "wouldn't"
            | "bad"
            | "busy"
            | "booked"
            | "impossible"
    )
}

/// Whether `f` is excluded outright ("any day except Monday", "other than Friday").
fn excluded(s: &Scan<'_, '_>, f: &Found) -> bool {
    (f.start.saturating_sub(3)..f.start)
        .rev()
        .take_while(|k| !s.is_boundary(*k))
        .any(|k| {
            s.is(k, "except|besides|excluding")
                || (s.is(k, "than") && s.is(k.wrapping_sub(1), "other"))
                || (s.is(k, "from") && s.is(k.wrapping_sub(1), "apart"))
        })
}

/// Whether a negation sits in the same clause just before or just after `f`.
fn negated(s: &Scan<'_, '_>, f: &Found) -> bool {
    let before = (f.start.saturating_sub(5)..f.start)
        .rev()
        .take_while(|k| !s.is_boundary(*k))
        .any(|k| is_negation(s.word(k)));
    let after = (f.end..(f.end + 4).min(s.len()))
        .take_while(|k| !s.is_boundary(*k))
        .any(|k| is_negation(s.word(k)) || (s.is(k, "no") && s.is(k + 1, "good")));
    before || after
}

/// Whether `f` is marked as the customer's correction ("actually Friday", "Friday instead").
fn corrected(s: &Scan<'_, '_>, f: &Found) -> bool {
    let before = (f.start.saturating_sub(4)..f.start)
        .any(|k| s.is(k, "actually|instead|rather|sorry|wait|prefer"))
        || s.seq(f.start.saturating_sub(2), &["make", "it"]) == Some(f.start);
    before || s.is(f.end, "instead")
}

/// The utterance's single value among its mentions.
pub(super) fn choose(s: &Scan<'_, '_>, found: &[Found]) -> Option<TimeValue> {
    let kept: Vec<&Found> = found.iter().filter(|f| !excluded(s, f)).collect();
    let live: Vec<&Found> = kept.iter().copied().filter(|f| !negated(s, f)).collect();
    let pool: Vec<&Found> = if live.is_empty() { kept } else { live };
    let first = pool.first()?;
    if pool.len() == 1 {
        return Some(first.value.clone());
    }
    if let Some(f) = pool.iter().skip(1).rev().find(|f| corrected(s, f)) {
        return Some(f.value.clone());
    }
    if let Some(f) = reschedule_target(s, &pool) {
        return Some(f.value.clone());
    }
    joined_apart(&pool).or_else(|| Some(first.value.clone()))
}

/// The new slot when the customer moves a booking: "from Tuesday to Thursday", "reschedule my
/// 3pm tomorrow to Friday", "change it to next week" — a later mention right after "to".
fn reschedule_target<'f>(s: &Scan<'_, '_>, pool: &[&'f Found]) -> Option<&'f Found> {
    let first = pool.first()?;
    let from_first = s.is(first.start.wrapping_sub(1), "from") || s.is(first.start, "from");
    pool.iter()
        .skip(1)
        .rev()
        .find(|f| {
            s.is(f.start.wrapping_sub(1), "to|until|for")
                && (from_first || (0..f.start).any(|k| s.is(k, RESCHEDULE)))
        })
        .copied()
}

/// A lone single day and a lone time said apart, joined ("Thursday works. Around 3?").
fn joined_apart(pool: &[&Found]) -> Option<TimeValue> {
    let [a, b] = pool else { return None };
    let day_only = |f: &Found| matches!(f.atom.day, Some(DaySpec::On(_))) && f.atom.time.is_none();
    let time_only =
        |f: &Found| f.atom.day.is_none() && f.atom.time.is_some() && f.atom.moment.is_none();
    let fits = (day_only(a) && time_only(b)) || (time_only(a) && day_only(b));
    fits.then(|| merge(&a.atom, &b.atom))
        .flatten()
        .and_then(|m| value(&m))
}
