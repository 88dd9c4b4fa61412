//! Read-only view over the tokens the matchers share: word tests, word patterns, numbers
//! (digits, number words, ordinals) and the "what may follow a number" check.
//!
//! Invariants: every accessor takes any index and answers "no" past the end (never panics);
//! matchers built on it look ahead a bounded number of tokens, so scanning stays linear.

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use super::lexer::{Kind, Token};
use super::lexicon;

/// The tokens of one message and the reference "now".
pub(super) struct Scan<'t, 'a> {
    /// The message's tokens.
    pub toks: &'t [Token<'a>],
    /// Local wall-clock "now".
    pub now: NaiveDateTime,
    /// `now`'s date.
    pub today: NaiveDate,
    /// The tenant's time zone (for "in 2 hours" across a DST change).
    pub tz: Tz,
}

impl Scan<'_, '_> {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.toks.len()
    }

    /// The canonical word at `i`, or "" when it is not a word.
    pub fn word(&self, i: usize) -> &str {
        match self.toks.get(i) {
            Some(t) if t.kind == Kind::Word => &t.norm,
            _ => "",
        }
    }

    /// The word before `i`, or "".
    pub fn prev_word(&self, i: usize) -> &str {
        i.checked_sub(1).map_or("", |p| self.word(p))
    }

    /// Whether the token at `i` is `text` (a word or a punctuation character); `text` may list
    /// alternatives separated by `|`.
    pub fn is(&self, i: usize, text: &str) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| t.kind != Kind::Num && one_of(text, &t.norm))
    }

    /// Whether the token at `i` exists and is glued to the one before it.
    pub fn glued(&self, i: usize) -> bool {
        self.toks.get(i).is_some_and(|t| t.glued)
    }

    /// Whether the token at `i` is a weak reading.
    pub fn weak(&self, i: usize) -> bool {
        self.toks.get(i).is_some_and(|t| t.weak)
    }

    /// Value and digit count of a digit run at `i`.
    pub fn digits(&self, i: usize) -> Option<(u32, usize)> {
        match self.toks.get(i) {
            Some(t) if t.kind == Kind::Num => Some((t.value, t.digits)),
            _ => None,
        }
    }

    /// Whether the token at `i` is punctuation.
    pub fn is_punct(&self, i: usize) -> bool {
        self.toks.get(i).is_some_and(|t| t.kind == Kind::Punct)
    }

    /// Matches a pattern of items from `i`: each item lists alternatives with `|`, and an item
    /// ending in `?` is optional (taken greedily). Returns the index after the match.
    pub fn seq(&self, i: usize, pattern: &[&str]) -> Option<usize> {
        let mut j = i;
        for item in pattern {
            match item.strip_suffix('?') {
                Some(opt) => {
                    if self.is(j, opt) {
                        j += 1;
                    }
                }
                None if self.is(j, item) => j += 1,
                None => return None,
            }
        }
        Some(j)
    }

    /// Skips any of the words in `alts` (`|`-separated) from `i`, at most `max` of them.
    pub fn skip(&self, mut i: usize, alts: &str, max: usize) -> usize {
        for _ in 0..max {
            if !self.is(i, alts) {
                break;
            }
            i += 1;
        }
        i
    }

    /// A cardinal at `i`: a run of at most two digits, or number words up to 99 ("twenty
    /// five", "twenty-five").
    pub fn cardinal(&self, i: usize) -> Option<(u32, usize)> {
        if let Some((v, n)) = self.digits(i) {
            return (n <= 2).then_some((v, i + 1));
        }
        self.number_words(i)
    }

    /// Number words up to 99 at `i`.
    pub fn number_words(&self, i: usize) -> Option<(u32, usize)> {
        let w = self.word(i);
        if let Some(v) = lexicon::unit_number(w) {
            return Some((v, i + 1));
        }
        let tens = lexicon::tens_number(w)?;
        let j = if self.is(i + 1, "-") { i + 2 } else { i + 1 };
        match lexicon::unit_number(self.word(j)) {
            Some(u) if (1..=9).contains(&u) => Some((tens + u, j + 1)),
            _ => Some((tens, i + 1)),
        }
    }

    /// An ordinal at `i`: "3rd", "14th", "third", "twenty-first"; the flag says it was
    /// written with digits.
    pub fn ordinal(&self, i: usize) -> Option<(u32, usize, bool)> {
        if let Some((v, n)) = self.digits(i) {
            let suffix = self.glued(i + 1) && self.is(i + 1, "st|nd|rd|th");
            return (n <= 2 && suffix).then_some((v, i + 2, true));
        }
        let w = self.word(i);
        if let Some(v) = lexicon::ordinal_word(w) {
            return Some((v, i + 1, false));
        }
        let tens = lexicon::tens_number(w)?;
        let j = if self.is(i + 1, "-") { i + 2 } else { i + 1 };
        let unit = lexicon::ordinal_word(self.word(j)).filter(|u| (1..=9).contains(u))?;
        Some((tens + unit, j + 1, false))
    }

    /// Whether the token at `i` lets a preceding number stand as an hour or a day: the end,
    /// punctuation, a connecting word or a date/time word — not a noun such as "kids",
    /// "hours" or "floor", and not another number.
    pub fn follower_ok(&self, i: usize) -> bool {
        match self.toks.get(i) {
            None => true,
            Some(t) => match t.kind {
                Kind::Punct => !matches!(t.norm.as_ref(), "%" | "/" | "$" | "£" | "€"),
                Kind::Num => false,
                Kind::Word => lexicon::is_connector(&t.norm) || lexicon::is_temporal(&t.norm),
            },
        }
    }

    /// `follower_ok` for a clock reading: also not "of" ("at 3 of 5 sessions").
    pub fn clock_follower_ok(&self, i: usize) -> bool {
        self.follower_ok(i) && !self.is(i, "of")
    }

    /// Whether the token at `i` is the start of a clause boundary (sentence punctuation or
    /// "but").
    pub fn is_boundary(&self, i: usize) -> bool {
        self.is(i, ",|.|;|!|?|but|:|(|)")
    }
}

/// Whether `word` is one of the `|`-separated alternatives in `alts` (no allocation, no
/// splitting: this is the matchers' hottest test).
fn one_of(alts: &str, word: &str) -> bool {
    let (a, w) = (alts.as_bytes(), word.as_bytes());
    let mut p = 0;
    while let Some(rest) = a.get(p..) {
        if rest.starts_with(w) && matches!(rest.get(w.len()), None | Some(b'|')) {
            return true;
        }
        match rest.iter().position(|b| *b == b'|') {
            Some(q) => p += q + 1,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn with<R>(text: &str, f: impl FnOnce(&Scan<'_, '_>) -> R) -> R {
        let toks = tokenize(text);
        let now = NaiveDate::from_ymd_opt(2026, 11, 24)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .unwrap();
        f(&Scan {
            toks: &toks,
            now,
            today: now.date(),
            tz: chrono_tz::UTC,
        })
    }

    #[test]
    fn numbers_in_digits_and_words() {
        with("twenty-five 7 twenty first 14th", |s| {
            assert_eq!(s.cardinal(0), Some((25, 3)));
            assert_eq!(s.cardinal(3), Some((7, 4)));
            assert_eq!(s.ordinal(4), Some((21, 6, false)));
            assert_eq!(s.ordinal(6), Some((14, 8, true)));
            assert_eq!(s.ordinal(3), None);
        });
    }

    #[test]
    fn patterns_with_optional_items() {
        with("end of the week", |s| {
            assert_eq!(s.seq(0, &["end", "of", "the|this?", "week"]), Some(4));
            assert_eq!(s.seq(0, &["end", "of", "next", "week"]), None);
        });
        with("end of week", |s| {
            assert_eq!(s.seq(0, &["end", "of", "the|this?", "week"]), Some(3));
        });
    }

    #[test]
    fn alternatives() {
        assert!(one_of("a|bc|d", "bc"));
        assert!(one_of("a|bc|d", "d"));
        assert!(one_of("a", "a"));
        assert!(!one_of("a|bc|d", "b"));
        assert!(!one_of("a|bc|d", "bcd"));
        assert!(!one_of("abc", "ab"));
        assert!(one_of(",|-", ","));
        assert!(one_of("x|", ""));
    }

    #[test]
    fn followers() {
        with("3 kids 3 please 3 hours 3, 3 tomorrow 3 4", |s| {
            assert!(!s.follower_ok(1));
            assert!(s.follower_ok(3));
            assert!(!s.follower_ok(5));
            assert!(s.follower_ok(7));
            assert!(s.follower_ok(9));
            assert!(!s.follower_ok(11));
            assert!(s.follower_ok(99));
        });
    }
}
