//! Text → sparse feature vector for the intent classifier.
//!
//! Owns normalisation (lower-casing, accent folding, apostrophes joined, punctuation as
//! separators, emoji and other symbols as one-character tokens), n-gram extraction (word n-grams
//! and character n-grams inside `<word>` boundaries), feature hashing (64-bit, fixed seeds) and
//! the [`Vocabulary`] learnt from the training examples (document frequencies → IDF).
//!
//! Invariants: pure and deterministic (no random hash seeds anywhere); never panics; inputs are
//! cut to [`MAX_CHARS`] characters so cost is bounded. A vector's L2 norm counts the n-grams the
//! vocabulary has never seen (at the IDF of an unseen n-gram) even though they get no index: a
//! text made mostly of unknown n-grams therefore has a short in-vocabulary vector and weak
//! scores, which is what pushes out-of-scope texts towards a flat distribution. Each block
//! (words, characters) is normalised on its own, then weighted so a fully known text has norm 1.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Characters of a text that are read; the rest is ignored (bounds the cost of huge inputs).
pub const MAX_CHARS: usize = 1000;

/// Seeds keep the hash spaces of the feature kinds apart.
const SEED_WORD: u64 = 0x243f_6a88_85a3_08d3;
const SEED_CHAR: u64 = 0x1319_8a2e_0370_7344;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Separates the words of a word n-gram inside its hash.
const WORD_JOIN: char = ' ';

/// How texts are turned into features.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureConfig {
    /// Longest word n-gram (1 = unigrams only).
    pub word_max: usize,
    /// Shortest character n-gram (counted with the `<` `>` word boundaries).
    pub char_min: usize,
    /// Longest character n-gram.
    pub char_max: usize,
    /// Share of the vector's squared norm given to the character block (0..=1).
    pub char_share: f32,
}

/// A sparse vector: strictly increasing indices with their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVec {
    /// Feature indices, strictly increasing.
    pub idx: Vec<u32>,
    /// Values, same length as `idx`.
    pub val: Vec<f32>,
}

impl SparseVec {
    /// Squared L2 norm.
    pub fn norm_sq(&self) -> f32 {
        self.val.iter().map(|v| v * v).sum()
    }

    /// Dot product with another sparse vector.
    pub fn dot(&self, other: &SparseVec) -> f32 {
        let mut a = self.idx.iter().zip(&self.val);
        let mut b = other.idx.iter().zip(&other.val);
        let (mut x, mut y) = (a.next(), b.next());
        let mut acc = 0.0;
        while let (Some((i, v)), Some((j, w))) = (x, y) {
            match i.cmp(j) {
                std::cmp::Ordering::Less => x = a.next(),
                std::cmp::Ordering::Greater => y = b.next(),
                std::cmp::Ordering::Equal => {
                    acc += v * w;
                    x = a.next();
                    y = b.next();
                }
            }
        }
        acc
    }
}

/// A hasher for keys that are already 64-bit hashes: a fixed bit mixer, no random state.
#[derive(Default, Clone, Copy)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        mix(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(FNV_PRIME);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// A deterministic map keyed by feature hash.
pub type HashIndex = HashMap<u64, u32, BuildHasherDefault<MixHasher>>;

/// The splitmix64 finaliser: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes a run of characters onto `h` (FNV-1a over code points).
fn hash_chars(mut h: u64, chars: &[char]) -> u64 {
    for &c in chars {
        h = (h ^ u64::from(u32::from(c))).wrapping_mul(FNV_PRIME);
    }
    h
}

/// The tokens of a text: characters in one buffer plus each token's range.
#[derive(Debug, Default)]
pub struct Tokens {
    chars: Vec<char>,
    spans: Vec<(usize, usize)>,
}

impl Tokens {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the text had no tokens.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The characters of token `i` (empty when out of range).
    pub fn get(&self, i: usize) -> &[char] {
        self.spans
            .get(i)
            .and_then(|&(s, e)| self.chars.get(s..e))
            .unwrap_or(&[])
    }
}

/// What one input character becomes.
enum CharClass {
    /// Part of a word (the folded, lower-case character).
    Word(char),
    /// Ends the current word.
    Separator,
    /// A token of its own (emoji, symbols).
    Symbol(char),
    /// Dropped without ending the word (apostrophes, combining marks, emoji modifiers).
    Skip,
}

fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '\u{02bc}' | '`' | '\u{00b4}'
    )
}

fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036f}'   // combining diacritics
        | '\u{200b}'..='\u{200d}' // zero-width space / joiners
        | '\u{fe00}'..='\u{fe0f}' // variation selectors
        | '\u{1f3fb}'..='\u{1f3ff}' // skin tones
    )
}

fn is_punctuation(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii()
        || c.is_control()
        || matches!(c,
            '\u{00a0}'..='\u{00bf}'
            | '\u{00d7}' | '\u{00f7}'
            | '\u{2000}'..='\u{206f}'
            | '\u{3000}'..='\u{303f}'
            | '\u{fe10}'..='\u{fe6f}'
            | '\u{ff01}'..='\u{ff0f}'
        )
}

/// Folds common accented Latin letters (already lower-case) to their base letter.
fn fold(c: char) -> char {
    match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'æ' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'œ' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' | 'ŧ' => 't',
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

fn classify_char(c: char) -> CharClass {
    if c.is_alphanumeric() {
        CharClass::Word(c)
    } else if is_apostrophe(c) || is_ignorable(c) {
        CharClass::Skip
    } else if is_punctuation(c) {
        CharClass::Separator
    } else {
        CharClass::Symbol(c)
    }
}

/// Splits a text into normalised tokens (reads at most [`MAX_CHARS`] characters).
pub fn tokenize(text: &str) -> Tokens {
    let mut t = Tokens::default();
    let mut start = 0;
    let close = |t: &mut Tokens, start: &mut usize| {
        if t.chars.len() > *start {
            t.spans.push((*start, t.chars.len()));
        }
        *start = t.chars.len();
    };
    for c in text.chars().take(MAX_CHARS) {
        match classify_char(c) {
            CharClass::Word(c) => t
                .chars
                .extend(c.to_lowercase().filter(|c| !is_ignorable(*c)).map(fold)),
            CharClass::Skip => {}
            CharClass::Separator => close(&mut t, &mut start),
            CharClass::Symbol(c) => {
                close(&mut t, &mut start);
                t.chars.push(c);
                close(&mut t, &mut start);
            }
        }
    }
    close(&mut t, &mut start);
    t
}

/// The hashed n-grams of a text, each block sorted (so equal hashes are adjacent).
#[derive(Debug, Default)]
pub struct Grams {
    /// Word n-gram hashes.
    pub words: Vec<u64>,
    /// Character n-gram hashes.
    pub chars: Vec<u64>,
}

/// Extracts the word and character n-gram hashes of a text.
pub fn grams(text: &str, cfg: &FeatureConfig) -> Grams {
    let tokens = tokenize(text);
    let mut g = Grams::default();
    word_grams(&tokens, cfg.word_max, &mut g.words);
    let mut padded = Vec::with_capacity(32);
    for i in 0..tokens.len() {
        padded.clear();
        padded.push('<');
        padded.extend_from_slice(tokens.get(i));
        padded.push('>');
        char_grams(&padded, cfg.char_min, cfg.char_max, &mut g.chars);
    }
    g.words.sort_unstable();
    g.chars.sort_unstable();
    g
}

fn word_grams(tokens: &Tokens, max: usize, out: &mut Vec<u64>) {
    for start in 0..tokens.len() {
        let mut h = SEED_WORD;
        for n in 0..max.max(1) {
            let Some(i) = start.checked_add(n).filter(|&i| i < tokens.len()) else {
                break;
            };
            if n > 0 {
                h = hash_chars(h, &[WORD_JOIN]);
            }
            h = hash_chars(h, tokens.get(i));
            out.push(mix(h));
        }
    }
}

fn char_grams(padded: &[char], min: usize, max: usize, out: &mut Vec<u64>) {
    let min = min.max(1);
    for n in min..=max {
        if n > padded.len() {
            break;
        }
        for w in padded.windows(n) {
            out.push(mix(hash_chars(SEED_CHAR ^ n as u64, w)));
        }
    }
}

/// Runs of equal hashes in a sorted slice: (hash, count).
fn counts(sorted: &[u64]) -> impl Iterator<Item = (u64, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let h = *sorted.get(i)?;
        let run = sorted[i..].iter().take_while(|&&x| x == h).count();
        i += run;
        Some((h, run))
    })
}

/// Learnt n-gram index and IDF weights.
#[derive(Clone)]
pub struct Vocabulary {
    cfg: FeatureConfig,
    index: HashIndex,
    idf: Vec<f32>,
    /// IDF of an n-gram no training example contains.
    unseen_idf: f32,
}

impl Vocabulary {
    /// Builds the vocabulary from training texts, indexing n-grams in order of first appearance.
    pub fn build(texts: &[&str], cfg: &FeatureConfig) -> Self {
        let grams: Vec<Grams> = texts.iter().map(|t| grams(t, cfg)).collect();
        Self::from_grams(&grams, cfg)
    }

    /// Builds the vocabulary from the n-grams of training texts (see [`grams`]).
    pub fn from_grams(texts: &[Grams], cfg: &FeatureConfig) -> Self {
        let mut index = HashIndex::default();
        let mut df: Vec<u32> = Vec::new();
        for g in texts {
            for block in [&g.words, &g.chars] {
                for (h, _) in counts(block) {
                    let next = index.len() as u32;
                    let i = *index.entry(h).or_insert(next) as usize;
                    if i == df.len() {
                        df.push(0);
                    }
                    if let Some(d) = df.get_mut(i) {
                        *d += 1;
                    }
                }
            }
        }
        let n = texts.len() as f32;
        let idf = df
            .iter()
            .map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        Self {
            cfg: cfg.clone(),
            index,
            idf,
            unseen_idf: (1.0 + n).ln() + 1.0,
        }
    }

    /// Number of indexed n-grams (the dimension of every vector).
    pub fn len(&self) -> usize {
        self.idf.len()
    }

    /// True when no n-gram was indexed.
    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    /// The feature vector of a text (see the module doc for the weighting).
    pub fn vectorize(&self, text: &str) -> SparseVec {
        self.vectorize_grams(&grams(text, &self.cfg))
    }

    /// The feature vector of a text's n-grams (made with this vocabulary's configuration).
    pub fn vectorize_grams(&self, g: &Grams) -> SparseVec {
        let share = self.cfg.char_share.clamp(0.0, 1.0);
        let mut entries: Vec<(u32, f32)> = Vec::with_capacity(g.words.len() + g.chars.len());
        self.add_block(&g.words, (1.0 - share).sqrt(), &mut entries);
        self.add_block(&g.chars, share.sqrt(), &mut entries);
        entries.sort_by_key(|e| e.0);
        let mut v = SparseVec::default();
        for (i, x) in entries {
            match (v.idx.last(), v.val.last_mut()) {
                (Some(&last), Some(acc)) if last == i => *acc += x,
                _ => {
                    v.idx.push(i);
                    v.val.push(x);
                }
            }
        }
        v
    }

    /// Appends one block's known n-grams, normalised over all its n-grams and scaled by `scale`.
    fn add_block(&self, sorted: &[u64], scale: f32, out: &mut Vec<(u32, f32)>) {
        let from = out.len();
        let mut norm_sq = 0.0f32;
        for (h, count) in counts(sorted) {
            let tf = 1.0 + (count as f32).ln();
            match self.index.get(&h) {
                Some(&i) => {
                    let w = tf * self.idf.get(i as usize).copied().unwrap_or(self.unseen_idf);
                    norm_sq += w * w;
                    out.push((i, w));
                }
                None => norm_sq += (tf * self.unseen_idf).powi(2),
            }
        }
        if norm_sq > 0.0 {
            let k = scale / norm_sq.sqrt();
            for e in &mut out[from..] {
                e.1 *= k;
            }
        }
    }
}

impl std::fmt::Debug for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabulary")
            .field("cfg", &self.cfg)
            .field("features", &self.idf.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> FeatureConfig {
        FeatureConfig {
            word_max: 2,
            char_min: 2,
            char_max: 4,
            char_share: 0.5,
        }
    }

    fn words(text: &str) -> Vec<String> {
        let t = tokenize(text);
        (0..t.len()).map(|i| t.get(i).iter().collect()).collect()
    }

    #[test]
    fn tokenize_normalises() {
        assert_eq!(
            words("What's the PRICE, café?! Niño"),
            ["whats", "the", "price", "cafe", "nino"]
        );
        assert_eq!(words("ok👍🏻thanks"), ["ok", "👍", "thanks"]);
        assert_eq!(words("  ...  "), Vec::<String>::new());
        assert_eq!(words("l\u{2019}heure 10:30"), ["lheure", "10", "30"]);
    }

    #[test]
    fn tokenize_bounds_long_input() {
        let long = "a".repeat(10 * MAX_CHARS);
        let t = tokenize(&long);
        assert_eq!(t.get(0).len(), MAX_CHARS);
        assert!(t.get(5).is_empty());
    }

    #[test]
    fn grams_count_words_and_chars() {
        let g = grams("hi yo", &cfg());
        // unigrams hi, yo + bigram "hi yo"
        assert_eq!(g.words.len(), 3);
        // "<hi>": 3 bigrams + 2 trigrams + 1 four-gram, twice
        assert_eq!(g.chars.len(), 12);
    }

    #[test]
    fn vectors_are_unit_when_known_and_shorter_when_not() {
        let v = Vocabulary::build(&["book an appointment", "cancel my booking"], &cfg());
        let known = v.vectorize("cancel my booking");
        assert!((known.norm_sq() - 1.0).abs() < 1e-4);
        let partly = v.vectorize("cancel my zebra");
        assert!(partly.norm_sq() < 0.9 && partly.norm_sq() > 0.1);
        assert!(v.vectorize("xyzzy qwv").norm_sq() < 0.1);
        assert!(v.vectorize("").idx.is_empty());
        assert!(known.idx.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn vocabulary_is_deterministic() {
        let texts = ["one two three", "two three four"];
        let a = Vocabulary::build(&texts, &cfg());
        let b = Vocabulary::build(&texts, &cfg());
        assert_eq!(
            a.vectorize("three four five"),
            b.vectorize("three four five")
        );
        let x = a.vectorize("one two");
        assert!((x.dot(&x) - x.norm_sq()).abs() < 1e-6);
    }
}
