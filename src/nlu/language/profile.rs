//! Language profiles: for every feature seen in any training text, its smoothed
//! log-probability in each language (multinomial naive Bayes, one distribution per feature
//! kind).
//!
//! Owns training from plain text and the lookup table. Invariants: a feature's row holds one
//! log-probability per language, in the order of the corpora given; a feature a language never
//! showed gets that language's additive-smoothing floor for its kind, so every row is finite
//! and negative; features seen in no training text have no row (they carry no evidence and are
//! ignored when reading).

use super::text::{features_of, words, KINDS, WORD_KIND};
use crate::nlu::intent::features::HashIndex;

/// Additive smoothing (chosen by cross-validation on the corpora: 0.1 beat 0.5 and 1.0).
pub const ALPHA: f64 = 0.1;

/// Weight of whole-word evidence against each character n-gram's.
pub const WORD_WEIGHT: f64 = 2.0;

/// Trained profiles of a set of languages.
#[derive(Debug, Clone)]
pub struct Profiles {
    codes: Vec<&'static str>,
    index: HashIndex,
    /// `row * languages + language` → log-probability.
    table: Vec<f32>,
}

/// Raw counts gathered from the corpora.
struct Counts {
    languages: usize,
    index: HashIndex,
    kinds: Vec<usize>,
    counts: Vec<u32>,
    /// Per language, per kind: features counted.
    totals: Vec<[f64; KINDS]>,
}

impl Counts {
    fn add(&mut self, language: usize, kind: usize, key: u64) {
        let next = self.kinds.len() as u32;
        let row = *self.index.entry(key).or_insert(next) as usize;
        if row == self.kinds.len() {
            self.kinds.push(kind);
            self.counts.resize(self.counts.len() + self.languages, 0);
        }
        self.counts[row * self.languages + language] += 1;
        self.totals[language][kind] += 1.0;
    }
}

impl Profiles {
    /// Trains on `(ISO 639-1 code, text)` pairs: one sentence or message per line.
    pub fn train(corpora: &[(&'static str, &str)]) -> Self {
        let languages = corpora.len();
        let mut c = Counts {
            languages,
            index: HashIndex::default(),
            kinds: Vec::new(),
            counts: Vec::new(),
            totals: vec![[0.0; KINDS]; languages],
        };
        for (language, (_, text)) in corpora.iter().enumerate() {
            for line in text.lines() {
                for word in words(line).iter() {
                    features_of(word, |kind, key| c.add(language, kind, key));
                }
            }
        }
        let mut distinct = [0.0f64; KINDS];
        for &kind in &c.kinds {
            distinct[kind] += 1.0;
        }
        let table = c
            .counts
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let (row, language) = (i / languages, i % languages);
                let kind = c.kinds[row];
                let total = c.totals[language][kind] + ALPHA * distinct[kind];
                let weight = if kind == WORD_KIND { WORD_WEIGHT } else { 1.0 };
                (weight * ((f64::from(n) + ALPHA) / total).ln()) as f32
            })
            .collect();
        Profiles {
            codes: corpora.iter().map(|(code, _)| *code).collect(),
            index: c.index,
            table,
        }
    }

    /// The languages' codes, in table order.
    pub fn codes(&self) -> &[&'static str] {
        &self.codes
    }

    /// Features known to at least one language.
    pub fn features(&self) -> usize {
        self.index.len()
    }

    /// A feature's log-probability per language, when any training text had it.
    pub fn row(&self, key: u64) -> Option<&[f32]> {
        let n = self.codes.len();
        self.index
            .get(&key)
            .map(|&row| &self.table[row as usize * n..(row as usize + 1) * n])
    }
}
