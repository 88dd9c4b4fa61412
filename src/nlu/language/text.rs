//! Text → the words language identification reads, and their features.
//!
//! Owns normalisation for language identification (which differs from the intent classifier's:
//! accents and letters such as `ñ`, `ß`, `ı`, `ł` are exactly the evidence, so nothing is
//! folded) and feature hashing (character 1–4-grams of each word padded with a space on both
//! sides, plus the whole word). Invariants: pure and deterministic (fixed hash seeds); never
//! panics; at most [`MAX_CHARS`] characters are read; whitespace-separated tokens that are
//! e-mail addresses, links or contain digits (prices, times, order codes, phone numbers) are
//! not words of any language and are skipped; letters of non-Latin scripts are counted but not
//! read (no profile covers them).

/// Characters of a message that are read; the rest is ignored (bounds the cost).
pub const MAX_CHARS: usize = 1000;
/// Longest character n-gram.
pub const MAX_GRAM: usize = 4;
/// Feature kinds: character n-grams of length 1..=4 are kinds 0..=3, whole words kind 4.
pub const KINDS: usize = MAX_GRAM + 1;
/// The kind of whole-word features.
pub const WORD_KIND: usize = MAX_GRAM;

const SEED_CHAR: u64 = 0x6a09_e667_f3bc_c908;
const SEED_WORD: u64 = 0xbb67_ae85_84ca_a73b;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Word boundary padding.
const PAD: char = ' ';

/// The words of a message, lower-cased, in one character buffer.
#[derive(Debug, Default)]
pub struct Words {
    chars: Vec<char>,
    spans: Vec<(usize, usize)>,
    /// Latin-script letters in the words read.
    pub latin_letters: usize,
    /// Letters of other scripts (Cyrillic, Arabic, CJK, Devanagari, …), never read.
    pub other_letters: usize,
}

impl Words {
    /// The words, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[char]> + '_ {
        self.spans.iter().map(|&(a, b)| &self.chars[a..b])
    }

    /// How many words were read.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether no word was read.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn end_word(&mut self, start: usize) {
        while self.chars.len() > start && self.chars.last() == Some(&'\'') {
            self.chars.pop();
        }
        if self.chars.len() > start {
            self.spans.push((start, self.chars.len()));
        }
    }
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02bc}' | '`' | '\u{00b4}')
}

/// Combining diacritical marks: dropped (precomposed letters carry the accents).
fn is_combining(c: char) -> bool {
    ('\u{0300}'..='\u{036f}').contains(&c)
}

/// Letters of the Latin script: ASCII, Latin-1 Supplement, Extended-A/B, Extended Additional.
fn is_latin_letter(c: char) -> bool {
    c.is_alphabetic()
        && (c.is_ascii_alphabetic()
            || ('\u{00c0}'..='\u{024f}').contains(&c)
            || ('\u{1e00}'..='\u{1eff}').contains(&c))
}

/// Tokens that are not words of any language: addresses, links, anything with a digit.
fn is_skipped(token: &str) -> bool {
    token.contains('@')
        || token.contains("://")
        || token
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("www."))
        || token.chars().any(char::is_numeric)
}

/// The words of `text` (its first [`MAX_CHARS`] characters).
pub fn words(text: &str) -> Words {
    let cut = text
        .char_indices()
        .nth(MAX_CHARS)
        .map_or(text.len(), |(i, _)| i);
    let mut out = Words::default();
    for token in text[..cut].split_whitespace() {
        if is_skipped(token) {
            continue;
        }
        read_token(token, &mut out);
    }
    out
}

fn read_token(token: &str, out: &mut Words) {
    let mut start = out.chars.len();
    for c in token.chars() {
        if is_latin_letter(c) {
            out.latin_letters += 1;
            if c == '\u{0130}' {
                // Turkish dotted capital I: lower-cases to `i` plus a combining dot otherwise.
                out.chars.push('i');
            } else {
                out.chars
                    .extend(c.to_lowercase().filter(|l| !is_combining(*l)));
            }
        } else if is_apostrophe(c) {
            if out.chars.len() > start {
                out.chars.push('\'');
            }
        } else if is_combining(c) {
            continue;
        } else {
            if c.is_alphabetic() {
                out.other_letters += 1;
            }
            out.end_word(start);
            start = out.chars.len();
        }
    }
    out.end_word(start);
}

fn fnv(h: u64, c: char) -> u64 {
    (h ^ u64::from(u32::from(c))).wrapping_mul(FNV_PRIME)
}

/// The splitmix64 finaliser, so nearby FNV states spread over the whole key space.
fn finish(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Calls `f(kind, key)` for every feature of one word: its padded character n-grams (a lone
/// padding space is not one) and the word itself.
pub fn features_of(word: &[char], mut f: impl FnMut(usize, u64)) {
    let len = word.len() + 2;
    let at = |i: usize| {
        if i == 0 || i == len - 1 {
            PAD
        } else {
            word[i - 1]
        }
    };
    for start in 0..len {
        let mut h = SEED_CHAR;
        for n in 1..=MAX_GRAM.min(len - start) {
            let c = at(start + n - 1);
            h = fnv(h, c);
            if n == 1 && c == PAD {
                continue;
            }
            f(n - 1, finish(h));
        }
    }
    f(
        WORD_KIND,
        finish(word.iter().fold(SEED_WORD, |h, &c| fnv(h, c))),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(text: &str) -> Vec<String> {
        words(text).iter().map(|w| w.iter().collect()).collect()
    }

    #[test]
    fn words_are_lower_cased_letters_with_inner_apostrophes() {
        assert_eq!(
            strings("J’ai RÉSERVÉ l'hôtel!! 'Danke' İzmir'e"),
            ["j'ai", "réservé", "l'hôtel", "danke", "izmir'e"]
        );
    }

    #[test]
    fn addresses_links_numbers_and_emoji_are_not_words() {
        let text = "ann@example.com https://x.io www.shop.com 15:30 20h A7X9 👍🙏 ok";
        let w = words(text);
        assert_eq!(strings(text), ["ok"]);
        assert_eq!(w.latin_letters, 2);
        assert_eq!(w.other_letters, 0);
    }

    #[test]
    fn other_scripts_are_counted_not_read() {
        let w = words("Спасибо, thanks");
        assert_eq!(w.other_letters, 7);
        assert_eq!(w.latin_letters, 6);
        assert_eq!(strings("Спасибо, thanks"), ["thanks"]);
    }

    #[test]
    fn a_word_has_its_padded_grams_and_itself() {
        let mut kinds = [0usize; KINDS];
        features_of(&['d', 'e'], |k, _| kinds[k] += 1);
        // " de ": 1-grams d e; 2-grams " d" "de" "e "; 3-grams " de" "de "; 4-gram " de ".
        assert_eq!(kinds, [2, 3, 2, 1, 1]);
    }

    #[test]
    fn input_is_cut_at_the_limit() {
        let long = "a ".repeat(MAX_CHARS * 2);
        assert_eq!(words(&long).len(), MAX_CHARS / 2);
    }
}
