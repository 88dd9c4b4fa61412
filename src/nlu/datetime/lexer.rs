//! Tokenizer: splits a message into words, digit runs and punctuation, with byte spans.
//!
//! Owns `tokenize` and the `Token` shape. Invariants: every token's `start..end` lies on char
//! boundaries of the input, tokens are in order and never overlap; words are lowercased, a
//! trailing possessive "'s" is dropped and known vocabulary is replaced by its canonical
//! spelling (see `lexicon`); digit runs carry a saturating value; a handful of split spellings
//! are joined ("a.m." → "am", "2moro" → "tomorrow", "mid-day" → "midday", "o clock").
//! Runs in one pass over the text plus one pass over the tokens.

use std::borrow::Cow;

use super::lexicon;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A run of letters (apostrophes inside allowed).
    Word,
    /// A run of ASCII digits.
    Num,
    /// Any other single non-space character.
    Punct,
}

/// One token of the message.
#[derive(Debug, Clone)]
pub(super) struct Token<'a> {
    /// What the token is.
    pub kind: Kind,
    /// Byte offset of its first character in the message.
    pub start: usize,
    /// Byte offset just after its last character.
    pub end: usize,
    /// Canonical lowercase spelling (words), the digits (numbers) or the character (punctuation,
    /// dashes folded to "-").
    pub norm: Cow<'a, str>,
    /// Value of a digit run, saturating at `u32::MAX` (0 for other tokens).
    pub value: u32,
    /// Number of digits of a digit run (0 for other tokens).
    pub digits: usize,
    /// No whitespace between this token and the previous one.
    pub glued: bool,
    /// The word's reading is weak (an abbreviation that is also an everyday word).
    pub weak: bool,
    /// The lexicon knows the word (or it is a number): worth trying matchers here.
    pub known: bool,
}

/// Tokens of `text`, in order.
pub(super) fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut raw = Vec::with_capacity(text.len() / 4 + 1);
    let mut pos = 0;
    let mut glued = false;
    while let Some(c) = text.get(pos..).and_then(|rest| rest.chars().next()) {
        if c.is_whitespace() {
            glued = false;
            pos += c.len_utf8();
            continue;
        }
        let mut tok = if c.is_ascii_digit() {
            number(text, pos)
        } else if c.is_alphabetic() {
            word(text, pos)
        } else {
            punct(text, pos, c)
        };
        tok.glued = glued;
        pos = tok.end;
        raw.push(tok);
        glued = true;
    }
    join(raw)
}

fn blank(kind: Kind, start: usize, end: usize, norm: Cow<'_, str>) -> Token<'_> {
    Token {
        kind,
        start,
        end,
        norm,
        value: 0,
        digits: 0,
        glued: false,
        weak: false,
        known: false,
    }
}

fn number(text: &str, start: usize) -> Token<'_> {
    let bytes = text.as_bytes();
    let mut end = start;
    let mut value: u32 = 0;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        value = value
            .saturating_mul(10)
            .saturating_add(u32::from(bytes[end] - b'0'));
        end += 1;
    }
    let mut tok = blank(Kind::Num, start, end, Cow::Borrowed(&text[start..end]));
    tok.value = value;
    tok.digits = end - start;
    tok.known = true;
    tok
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

/// End of the word starting at `start`: letters, and apostrophes followed by a letter.
fn word_end(text: &str, start: usize) -> usize {
    let mut end = start;
    let mut chars = text[start..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_letter = chars.peek().is_some_and(|(_, n)| n.is_alphabetic());
        if c.is_alphabetic() || (is_apostrophe(c) && next_is_letter) {
            end = start + i + c.len_utf8();
        } else {
            break;
        }
    }
    end
}

fn word(text: &str, start: usize) -> Token<'_> {
    let end = word_end(text, start);
    let raw = &text[start..end];
    let lower: Cow<'_, str> = if raw.bytes().all(|b| b.is_ascii_lowercase() || b == b'\'') {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(raw.to_lowercase().replace('’', "'"))
    };
    let lower = strip_possessive(lower);
    let mut tok = blank(Kind::Word, start, end, lower);
    classify(&mut tok);
    tok
}

fn strip_possessive(word: Cow<'_, str>) -> Cow<'_, str> {
    match word {
        Cow::Borrowed(w) => {
            Cow::Borrowed(w.strip_suffix("'s").filter(|s| !s.is_empty()).unwrap_or(w))
        }
        Cow::Owned(w) => match w.strip_suffix("'s").filter(|s| !s.is_empty()) {
            Some(s) => Cow::Owned(s.to_string()),
            None => Cow::Owned(w),
        },
    }
}

/// Replaces a word's spelling by its canonical one when the lexicon knows it.
fn classify(tok: &mut Token<'_>) {
    if let Some((canon, weak)) = lexicon::canonical(&tok.norm) {
        tok.norm = Cow::Borrowed(canon);
        tok.weak = weak;
        tok.known = true;
    } else {
        tok.known = is_function_word(&tok.norm);
    }
}

/// Plain words that start or shape an expression.
fn is_function_word(w: &str) -> bool {
    matches!(
        w,
        "the"
            | "this"
            | "on"
            | "in"
            | "at"
            | "a"
            | "an"
            | "by"
            | "for"
            | "from"
            | "between"
            | "after"
            | "before"
            | "around"
            | "about"
            | "coming"
            | "every"
            | "following"
            | "early"
            | "late"
            | "later"
            | "mid"
            | "middle"
            | "end"
            | "beginning"
            | "start"
            | "during"
            | "over"
            | "first"
            | "half"
            | "quarter"
            | "couple"
            | "any"
            | "not"
            | "no"
            | "last"
            | "up"
    ) || lexicon::unit_number(w).is_some()
        || lexicon::tens_number(w).is_some()
        || lexicon::ordinal_word(w).is_some()
}

fn punct(text: &str, start: usize, c: char) -> Token<'_> {
    let end = start + c.len_utf8();
    let norm = match c {
        '–' | '—' | '‐' | '‑' => Cow::Borrowed("-"),
        '’' | '‘' => Cow::Borrowed("'"),
        _ => Cow::Borrowed(&text[start..end]),
    };
    let mut tok = blank(Kind::Punct, start, end, norm);
    tok.known = c == '@';
    tok
}

/// Joins split spellings; every other token passes through unchanged.
fn join(raw: Vec<Token<'_>>) -> Vec<Token<'_>> {
    let mut out: Vec<Token<'_>> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if let Some((tok, used)) = joined(&raw[i..]) {
            out.push(tok);
            i += used;
        } else {
            out.push(raw[i].clone());
            i += 1;
        }
    }
    out
}

/// A single token standing for the first few of `t`, and how many it replaces.
fn joined<'a>(t: &[Token<'a>]) -> Option<(Token<'a>, usize)> {
    let first = t.first()?;
    let second = t.get(1)?;
    let make = |canon: &'static str, used: usize| {
        let mut tok = blank(
            Kind::Word,
            first.start,
            t[used - 1].end,
            Cow::Borrowed(canon),
        );
        tok.glued = first.glued;
        tok.known = true;
        (tok, used)
    };
    // "2moro", "2day", "2nite": a glued 2 standing for "to".
    if first.kind == Kind::Num && first.norm == "2" && second.kind == Kind::Word && second.glued {
        let canon = match second.norm.as_ref() {
            "moro" | "morrow" | "morow" | "mrw" | "mro" | "mrow" | "morro" | "moz" => "tomorrow",
            "day" => "today",
            "nite" | "night" | "nyt" => "tonight",
            _ => return None,
        };
        return Some(make(canon, 2));
    }
    if first.kind != Kind::Word {
        return None;
    }
    // "a.m.", "p.m", "a. m."
    if matches!(first.norm.as_ref(), "a" | "p")
        && second.norm == "."
        && second.glued
        && t.get(2)
            .is_some_and(|m| m.norm == "m" && m.kind == Kind::Word)
    {
        let canon = if first.norm == "a" { "am" } else { "pm" };
        let dot = t.get(3).is_some_and(|d| d.norm == "." && d.glued);
        return Some(make(canon, if dot { 4 } else { 3 }));
    }
    // Spaced pairs: "lunch time", "mid day", "o clock".
    if second.kind == Kind::Word {
        let canon = match (first.norm.as_ref(), second.norm.as_ref()) {
            ("lunch", "time") => "lunchtime",
            ("mid", "day") => "midday",
            ("o", "clock") => "o'clock",
            _ => return None,
        };
        return Some(make(canon, 2));
    }
    // Hyphenated: "mid-day", "lunch-time", "week-end", "mid-morning".
    let third = t.get(2)?;
    if second.norm == "-" && second.glued && third.glued && third.kind == Kind::Word {
        let canon = match (first.norm.as_ref(), third.norm.as_ref()) {
            ("mid", "day") => "midday",
            ("lunch", "time") => "lunchtime",
            ("week", "end") => "weekend",
            _ => return None,
        };
        return Some(make(canon, 3));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norms(text: &str) -> Vec<String> {
        tokenize(text).iter().map(|t| t.norm.to_string()).collect()
    }

    #[test]
    fn splits_digits_letters_and_punctuation() {
        assert_eq!(norms("3pm"), ["3", "pm"]);
        assert_eq!(norms("15:00"), ["15", ":", "00"]);
        assert_eq!(norms("Thursday, 2–4"), ["thursday", ",", "2", "-", "4"]);
        assert_eq!(norms("I'd like Friday's"), ["i'd", "like", "friday"]);
    }

    #[test]
    fn glue_flags_follow_whitespace() {
        let toks = tokenize("3 pm 4pm");
        let glued: Vec<bool> = toks.iter().map(|t| t.glued).collect();
        assert_eq!(glued, [false, false, false, true]);
    }

    #[test]
    fn joins_split_spellings() {
        assert_eq!(norms("3 p.m. 2moro"), ["3", "pm", "tomorrow"]);
        assert_eq!(norms("at mid-day"), ["at", "midday"]);
        assert_eq!(norms("3 o clock"), ["3", "o'clock"]);
        assert_eq!(norms("lunch time"), ["lunchtime"]);
    }

    #[test]
    fn spans_are_char_boundaries() {
        let text = "Mañana 3pm 🙂 ÉTÉ İstanbul";
        for t in tokenize(text) {
            assert!(text.is_char_boundary(t.start) && text.is_char_boundary(t.end));
            assert!(t.start < t.end);
        }
    }

    #[test]
    fn huge_numbers_saturate() {
        let toks = tokenize("99999999999999999999");
        assert_eq!(toks[0].value, u32::MAX);
        assert_eq!(toks[0].digits, 20);
    }
}
