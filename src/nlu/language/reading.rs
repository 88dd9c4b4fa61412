//! Reading one message with trained profiles: the naive Bayes scores, a calibrated confidence,
//! and the rules that answer "don't know" rather than guess.
//!
//! Owns the decision and its constants. A message is rejected (no language) when it has too
//! few letters, is mostly in a script no profile covers, has no feature any language knows,
//! when the best language's confidence is under the floor (higher for a single word), or when
//! it reads as two languages mixed (a second language has a large share of the per-word
//! evidence; Indonesian and Malay are not counted as a mix of each other, their closeness is
//! what the confidence is for). Every constant was chosen by 5-fold cross-validation on the
//! training corpora, never on the held-out evaluation file.

use super::profile::Profiles;
use super::text::{features_of, words};

/// Fewer Latin letters than this and nothing is said ("ok", "k", "no").
pub const MIN_LETTERS: usize = 3;
/// Scale of the mean evidence per √feature in the softmax (fitted by log-loss).
pub const TEMPERATURE: f32 = 1.12;
/// Least confidence for an answer.
pub const MIN_CONFIDENCE: f32 = 0.7;
/// Least confidence for an answer read from a single word ("hotel", "Maria" are not enough).
pub const MIN_CONFIDENCE_ONE_WORD: f32 = 0.9;
/// Least confidence for a language with a sibling (Indonesian, Malay): their confusions are
/// the model's commonest, and each is over-confident against the other.
pub const MIN_CONFIDENCE_SIBLINGS: f32 = 0.85;
/// Share of the evidence against the best language, carried by words that prefer one other
/// language, above which the message is a mix of two.
pub const MIXED_SHARE: f32 = 0.3;
/// Least evidence (nats) for the second language of a mix.
pub const MIXED_EVIDENCE: f32 = 10.0;
/// Pairs too close to call a mix of each other.
const SIBLINGS: &[(&str, &str)] = &[("id", "ms")];

/// An identified language.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Language {
    /// ISO 639-1 code.
    pub code: &'static str,
    /// Calibrated probability in `[0, 1]`.
    pub confidence: f32,
}

/// Why a message got no language.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rejection {
    /// Fewer than [`MIN_LETTERS`] letters (numbers, emoji, addresses, "ok").
    TooShort,
    /// Mostly letters of a script no profile covers.
    OtherScript,
    /// No feature of the text is known to any language.
    Unknown,
    /// The best language is under the confidence floor.
    Unsure {
        /// The best language.
        best: &'static str,
        /// Its confidence.
        confidence: f32,
    },
    /// Two languages mixed.
    Mixed {
        /// The language with most evidence.
        first: &'static str,
        /// The other one.
        second: &'static str,
    },
}

/// The outcome of reading a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// One language, confidently.
    Identified(Language),
    /// No answer, and why.
    Rejected(Rejection),
}

impl Verdict {
    /// The language, when identified.
    pub fn language(&self) -> Option<Language> {
        match self {
            Verdict::Identified(l) => Some(*l),
            Verdict::Rejected(_) => None,
        }
    }
}

impl Profiles {
    /// Reads `text`: the language, or why there is none.
    pub fn read(&self, text: &str) -> Verdict {
        let w = words(text);
        if w.other_letters > w.latin_letters {
            return Verdict::Rejected(Rejection::OtherScript);
        }
        if w.latin_letters < MIN_LETTERS {
            return Verdict::Rejected(Rejection::TooShort);
        }
        let n = self.codes().len();
        let mut per_word = vec![0.0f32; w.len() * n];
        let mut known = 0usize;
        for (word, scores) in w.iter().zip(per_word.chunks_mut(n)) {
            features_of(word, |_, key| {
                if let Some(row) = self.row(key) {
                    known += 1;
                    scores.iter_mut().zip(row).for_each(|(s, l)| *s += l);
                }
            });
        }
        if known == 0 {
            return Verdict::Rejected(Rejection::Unknown);
        }
        let mut total = vec![0.0f32; n];
        for scores in per_word.chunks(n) {
            total.iter_mut().zip(scores).for_each(|(t, s)| *t += s);
        }
        let (best, confidence) = top(&posterior(&total, known));
        let code = self.codes()[best];
        let floor = if w.len() == 1 {
            MIN_CONFIDENCE_ONE_WORD
        } else if self.sibling_of(best).is_some() {
            MIN_CONFIDENCE_SIBLINGS
        } else {
            MIN_CONFIDENCE
        };
        if confidence < floor {
            return Verdict::Rejected(Rejection::Unsure {
                best: code,
                confidence,
            });
        }
        if let Some(second) = self.second_language(&per_word, best) {
            return Verdict::Rejected(Rejection::Mixed {
                first: code,
                second: self.codes()[second],
            });
        }
        Verdict::Identified(Language { code, confidence })
    }

    /// The language other than `best` that words of the message prefer strongly enough to
    /// make it a mix, if any.
    fn second_language(&self, per_word: &[f32], best: usize) -> Option<usize> {
        let codes = self.codes();
        let n = codes.len();
        let mut strongest: Option<(usize, f32, f32)> = None;
        for other in (0..n).filter(|&o| o != best && !siblings(codes[best], codes[o])) {
            let (mut against, mut for_best) = (0.0f32, 0.0f32);
            for scores in per_word.chunks(n) {
                let d = scores[other] - scores[best];
                if d > 0.0 {
                    against += d;
                } else {
                    for_best -= d;
                }
            }
            if strongest.map_or(true, |(_, a, _)| against > a) {
                strongest = Some((other, against, for_best));
            }
        }
        let (other, against, for_best) = strongest?;
        let share = against / (against + for_best).max(f32::MIN_POSITIVE);
        (against > MIXED_EVIDENCE && share > MIXED_SHARE).then_some(other)
    }
}

impl Profiles {
    /// The index of the language too close to tell from `language`, if any.
    fn sibling_of(&self, language: usize) -> Option<usize> {
        let codes = self.codes();
        (0..codes.len()).find(|&o| o != language && siblings(codes[language], codes[o]))
    }
}

fn siblings(a: &str, b: &str) -> bool {
    SIBLINGS
        .iter()
        .any(|&(x, y)| (a, b) == (x, y) || (a, b) == (y, x))
}

/// Softmax of the log-likelihoods scaled by `TEMPERATURE / √features`: the evidence grows
/// with length, but not as fast as naive Bayes' independence assumption claims.
fn posterior(scores: &[f32], features: usize) -> Vec<f32> {
    let scale = TEMPERATURE / (features as f32).sqrt();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = scores.iter().map(|s| ((s - max) * scale).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

fn top(probs: &[f32]) -> (usize, f32) {
    probs.iter().copied().enumerate().fold(
        (0, f32::NEG_INFINITY),
        |a, (i, p)| if p > a.1 { (i, p) } else { a },
    )
}
