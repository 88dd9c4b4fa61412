//! The pieces the matchers produce before combining: a day part, a time part, or a complete
//! moment ("in 2 hours").
//!
//! Owns `Atom`, `DaySpec` and `TimeSpec` (with how a time part resolves to times of day).
//! Invariants: an atom holds already-resolved dates (the matchers apply the day rules); time
//! parts stay symbolic until combining, so a part of the day said next to a clock reading can
//! still decide am/pm ("at 7 in the morning").

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::clock::{minus_twelve, plus_twelve, Clock, Mer};

/// A day or a run of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DaySpec {
    /// One day.
    On(NaiveDate),
    /// Days `from..=to`.
    Span(NaiveDate, NaiveDate),
}

/// A time of day, a range of times or a named part of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimeSpec {
    /// "at 3pm".
    Point(Clock),
    /// "between 2 and 4".
    Range(Clock, Clock),
    /// "after 3pm": until the end of the evening.
    After(Clock),
    /// "before 11": from the start of the morning.
    Before(Clock),
    /// A fixed stretch ("afternoon", "first thing", "after lunch"), with the am/pm it implies
    /// for a bare hour said with it.
    Span {
        /// Start (inclusive).
        from: NaiveTime,
        /// End (exclusive).
        to: NaiveTime,
        /// am/pm for bare hours said with it.
        hint: Option<Mer>,
    },
}

/// A resolved time part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resolved {
    /// One time of day.
    At(NaiveTime),
    /// Times `from..to`, `from < to`.
    Between(NaiveTime, NaiveTime),
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

/// End of the evening: where "after 3pm" stops.
fn evening_end() -> NaiveTime {
    hm(21, 0)
}

/// Start of the morning: where "before 11" starts.
fn morning_start() -> NaiveTime {
    hm(8, 0)
}

impl TimeSpec {
    /// A fixed stretch from `h1:m1` to `h2:m2`.
    pub fn span(h1: u32, m1: u32, h2: u32, m2: u32, hint: Mer) -> Self {
        TimeSpec::Span {
            from: hm(h1, m1),
            to: hm(h2, m2),
            hint: Some(hint),
        }
    }

    /// Whether this is a fixed stretch (a part of the day).
    pub fn is_span(&self) -> bool {
        matches!(self, TimeSpec::Span { .. })
    }

    /// This part with am/pm of its bare hours taken from a part of the day.
    pub fn hinted(self, hint: Option<Mer>) -> Self {
        match self {
            TimeSpec::Point(c) => TimeSpec::Point(c.hinted(hint)),
            TimeSpec::Range(a, b) => TimeSpec::Range(a.hinted(hint), b.hinted(hint)),
            TimeSpec::After(c) => TimeSpec::After(c.hinted(hint)),
            TimeSpec::Before(c) => TimeSpec::Before(c.hinted(hint)),
            span @ TimeSpec::Span { .. } => span,
        }
    }

    /// The am/pm a part of the day implies.
    pub fn hint(&self) -> Option<Mer> {
        match self {
            TimeSpec::Span { hint, .. } => *hint,
            _ => None,
        }
    }

    /// The times this part names, or `None` when it cannot be read in order.
    pub fn resolve(&self) -> Option<Resolved> {
        match *self {
            TimeSpec::Point(c) => c.time().map(Resolved::At),
            TimeSpec::Range(a, b) => range(a, b),
            TimeSpec::After(c) => {
                let from = c.time()?;
                let to = if from < evening_end() {
                    evening_end()
                } else {
                    hm(23, 59)
                };
                (from < to).then_some(Resolved::Between(from, to))
            }
            TimeSpec::Before(c) => {
                let to = c.time()?;
                let from = if to > morning_start() {
                    morning_start()
                } else {
                    NaiveTime::MIN
                };
                (from < to).then_some(Resolved::Between(from, to))
            }
            TimeSpec::Span { from, to, .. } => Some(Resolved::Between(from, to)),
        }
    }
}

/// A range's times: a trailing am/pm also applies to a bare start when that keeps the range
/// in order; a bare end (or start) read the other side of noon when the business-hours reading
/// would put the range out of order ("between 7 and 9" → 19:00..21:00).
fn range(a: Clock, b: Clock) -> Option<Resolved> {
    let mut a = a;
    if a.mer == Mer::Bare && b.has_meridiem() && !a.to {
        let shared = Clock { mer: b.mer, ..a };
        if let (Some(x), Some(y)) = (shared.time(), b.time()) {
            if x < y {
                a = shared;
            }
        }
    }
    let (ta, tb) = (a.time()?, b.time()?);
    if ta < tb {
        return Some(Resolved::Between(ta, tb));
    }
    if b.mer == Mer::Bare {
        if let Some(later) = plus_twelve(tb).filter(|t| ta < *t) {
            return Some(Resolved::Between(ta, later));
        }
    }
    if a.mer == Mer::Bare {
        if let Some(earlier) = minus_twelve(ta).filter(|t| *t < tb) {
            return Some(Resolved::Between(earlier, tb));
        }
    }
    None
}

/// The first present candidate with the greatest key: ties go to the earliest, so matcher
/// order breaks ties between equally long readings.
pub(super) fn first_best<T, K: Ord>(
    items: impl IntoIterator<Item = Option<T>>,
    key: impl Fn(&T) -> K,
) -> Option<T> {
    items
        .into_iter()
        .flatten()
        .fold(None, |best, item| match best {
            Some(b) if key(&item) <= key(&b) => Some(b),
            _ => Some(item),
        })
}

/// What one matcher found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Atom {
    /// The day said, if any.
    pub day: Option<DaySpec>,
    /// The time of day said, if any.
    pub time: Option<TimeSpec>,
    /// A complete moment ("in 2 hours"), never combined with anything.
    pub moment: Option<NaiveDateTime>,
    /// Too weak to stand alone ("sat", "2-4", "night"): kept only when combined with another
    /// atom or when it is all the message says.
    pub weak: bool,
}

impl Atom {
    /// An atom naming one day.
    pub fn on(d: NaiveDate) -> Self {
        Atom {
            day: Some(DaySpec::On(d)),
            ..Atom::default()
        }
    }

    /// An atom naming days `from..=to` (a range even when both ends are the same day, so
    /// "this weekend" said on a Sunday keeps its kind).
    pub fn span(from: NaiveDate, to: NaiveDate) -> Option<Self> {
        (from <= to).then(|| Atom {
            day: Some(DaySpec::Span(from, to)),
            ..Atom::default()
        })
    }

    /// An atom naming a time part.
    pub fn time(t: TimeSpec) -> Self {
        Atom {
            time: Some(t),
            ..Atom::default()
        }
    }

    /// This atom marked weak or not.
    pub fn weak(self, weak: bool) -> Self {
        Atom { weak, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(h: u32, mer: Mer) -> Clock {
        Clock {
            h,
            m: 0,
            to: false,
            mer,
        }
    }

    fn between(spec: TimeSpec) -> Option<(String, String)> {
        match spec.resolve()? {
            Resolved::Between(a, b) => {
                Some((a.format("%H:%M").to_string(), b.format("%H:%M").to_string()))
            }
            Resolved::At(_) => None,
        }
    }

    fn pair(a: &str, b: &str) -> Option<(String, String)> {
        Some((a.into(), b.into()))
    }

    #[test]
    fn ranges_use_business_hours_and_trailing_meridiem() {
        use Mer::*;
        assert_eq!(
            between(TimeSpec::Range(c(2, Bare), c(4, Bare))),
            pair("14:00", "16:00")
        );
        assert_eq!(
            between(TimeSpec::Range(c(9, Bare), c(11, Am))),
            pair("09:00", "11:00")
        );
        assert_eq!(
            between(TimeSpec::Range(c(2, Bare), c(4, Pm))),
            pair("14:00", "16:00")
        );
        assert_eq!(
            between(TimeSpec::Range(c(11, Bare), c(1, Pm))),
            pair("11:00", "13:00")
        );
        assert_eq!(
            between(TimeSpec::Range(c(8, Bare), c(9, Pm))),
            pair("20:00", "21:00")
        );
        assert_eq!(
            between(TimeSpec::Range(c(10, Bare), c(2, Bare))),
            pair("10:00", "14:00")
        );
        assert_eq!(
            between(TimeSpec::Range(c(9, Bare), c(5, Bare))),
            pair("09:00", "17:00")
        );
    }

    #[test]
    fn out_of_order_bare_ranges_are_repaired() {
        use Mer::*;
        assert_eq!(
            between(TimeSpec::Range(c(7, Bare), c(9, Bare))),
            pair("19:00", "21:00")
        );
        assert_eq!(
            between(TimeSpec::Range(c(8, Pm), c(10, Bare))),
            pair("20:00", "22:00")
        );
        assert_eq!(between(TimeSpec::Range(c(4, Pm), c(2, Pm))), None);
    }

    #[test]
    fn after_and_before() {
        use Mer::*;
        assert_eq!(between(TimeSpec::After(c(3, Pm))), pair("15:00", "21:00"));
        assert_eq!(between(TimeSpec::After(c(3, Bare))), pair("15:00", "21:00"));
        assert_eq!(between(TimeSpec::After(c(9, Pm))), pair("21:00", "23:59"));
        assert_eq!(
            between(TimeSpec::Before(c(11, Bare))),
            pair("08:00", "11:00")
        );
        assert_eq!(between(TimeSpec::Before(c(7, Am))), pair("00:00", "07:00"));
    }

    #[test]
    fn spans_are_fixed() {
        let afternoon = TimeSpec::span(12, 0, 17, 0, Mer::Pm);
        assert_eq!(between(afternoon), pair("12:00", "17:00"));
        assert!(afternoon.is_span());
        assert_eq!(afternoon.hint(), Some(Mer::Pm));
        let d = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let e = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(
            Atom::span(d, d).and_then(|a| a.day),
            Some(DaySpec::Span(d, d))
        );
        assert_eq!(
            Atom::span(d, e).and_then(|a| a.day),
            Some(DaySpec::Span(d, e))
        );
        assert_eq!(Atom::span(e, d), None);
    }
}
