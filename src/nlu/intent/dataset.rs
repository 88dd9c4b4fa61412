//! The training set of one model: validated, sorted examples plus the background sentences,
//! vectorised with a vocabulary learnt from them.
//!
//! Owns input validation ([`prepare`]) and [`TrainSet`]. Invariants: examples are sorted by
//! (intent, text) so the model does not depend on their order; intents are sorted and unique;
//! labels are indices into them, the background class (when present) is the last class, and
//! its examples together weigh `background_weight` average intents.

use super::background;
use super::calibrate;
use super::features::{self, FeatureConfig, SparseVec, Vocabulary};
use super::model::{self, Data, Linear, SgdParams};
use super::par;
use super::{TrainError, MAX_EXAMPLES};

/// Validated examples.
#[derive(Debug)]
pub struct Prepared<'a> {
    /// (intent, text), sorted.
    pub pairs: Vec<(&'a str, &'a str)>,
    /// The intents, sorted and unique.
    pub intents: Vec<String>,
}

/// Checks the examples and returns them sorted, with their sorted unique intents.
pub fn prepare(examples: &[(String, String)]) -> Result<Prepared<'_>, TrainError> {
    if examples.is_empty() {
        return Err(TrainError::NoExamples);
    }
    if examples.len() > MAX_EXAMPLES {
        return Err(TrainError::TooManyExamples {
            count: examples.len(),
            max: MAX_EXAMPLES,
        });
    }
    for (index, (intent, text)) in examples.iter().enumerate() {
        if intent.trim().is_empty() {
            return Err(TrainError::EmptyIntent { index });
        }
        if features::tokenize(text).is_empty() {
            return Err(TrainError::EmptyText {
                index,
                intent: intent.clone(),
            });
        }
    }
    let mut pairs: Vec<(&str, &str)> = examples
        .iter()
        .map(|(i, t)| (i.as_str(), t.as_str()))
        .collect();
    pairs.sort_unstable();
    let mut intents: Vec<String> = pairs.iter().map(|p| p.0.to_string()).collect();
    intents.dedup();
    Ok(Prepared { pairs, intents })
}

/// How the background class is added.
#[derive(Debug, Clone, Copy)]
pub struct BackgroundOptions {
    /// Whether to add it at all.
    pub enabled: bool,
    /// Total weight, in average intents.
    pub weight: f32,
    /// Sentences at least this similar to an example are left out.
    pub max_similarity: f32,
}

/// Vectorised training set: the flow's examples, then background sentences.
pub struct TrainSet {
    /// The learnt vocabulary.
    pub vocab: Vocabulary,
    /// One vector per example.
    pub xs: Vec<SparseVec>,
    /// Class of each example (intents, then background).
    pub ys: Vec<usize>,
    /// Weight of each example.
    pub ws: Vec<f32>,
    /// Number of classes: the intents, plus one when background sentences were added.
    pub classes: usize,
}

impl TrainSet {
    /// Builds the set from sorted `pairs` whose intents are `intents`.
    pub fn build(
        pairs: &[(&str, &str)],
        intents: &[String],
        cfg: &FeatureConfig,
        bg: BackgroundOptions,
    ) -> Self {
        let mut texts: Vec<&str> = pairs.iter().map(|p| p.1).collect();
        let mut ys: Vec<usize> = pairs
            .iter()
            .map(|p| {
                intents
                    .binary_search_by(|i| i.as_str().cmp(p.0))
                    .unwrap_or(0)
            })
            .collect();
        let mut ws = vec![1.0f32; texts.len()];
        let k = intents.len();
        let background = if bg.enabled {
            background::select(&texts, bg.max_similarity)
        } else {
            Vec::new()
        };
        let weight = if bg.weight.is_finite() {
            bg.weight.max(0.0)
        } else {
            0.0
        };
        let added = !background.is_empty() && weight > 0.0;
        if added {
            let per_intent = texts.len() as f32 / k.max(1) as f32;
            let w = weight * per_intent / background.len() as f32;
            for (s, _) in &background {
                texts.push(s);
                ys.push(k);
                ws.push(w);
            }
        }
        let grams: Vec<_> = texts.iter().map(|t| features::grams(t, cfg)).collect();
        let vocab = Vocabulary::from_grams(&grams, cfg);
        let xs = grams.iter().map(|g| vocab.vectorize_grams(g)).collect();
        Self {
            vocab,
            xs,
            ys,
            ws,
            classes: if added { k + 1 } else { k },
        }
    }

    /// Borrowed view for training.
    pub fn data(&self) -> Data<'_> {
        Data {
            xs: &self.xs,
            ys: &self.ys,
            ws: &self.ws,
        }
    }

    /// Trains the fold models (job `f < folds` leaves out the examples of fold `f`, as given by
    /// `fold_of`) and the final model on everything (the last job), on up to `threads` threads.
    /// Returns (fold models, final model).
    pub fn train_all(
        &self,
        fold_of: &[usize],
        folds: usize,
        sgd: &SgdParams,
        threads: usize,
    ) -> (Vec<Option<Linear>>, Linear) {
        let d = self.vocab.len();
        let mut models = par::map(folds + 1, threads, |job| {
            if job == folds {
                model::train(self.data(), d, self.classes, sgd)
            } else {
                let part = calibrate::fold_training_set(self.data(), fold_of, job);
                model::train(part.data(), d, self.classes, sgd)
            }
        });
        let last = match models.pop().flatten() {
            Some(m) => m,
            None => model::train(self.data(), d, self.classes, sgd),
        };
        (models, last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(i, t)| (i.to_string(), t.to_string()))
            .collect()
    }

    fn cfg() -> FeatureConfig {
        FeatureConfig {
            word_max: 2,
            char_min: 2,
            char_max: 4,
            char_share: 0.5,
        }
    }

    #[test]
    fn prepare_validates() {
        assert_eq!(prepare(&[]).unwrap_err(), TrainError::NoExamples);
        assert_eq!(
            prepare(&ex(&[("a", "hi"), (" ", "x")])).unwrap_err(),
            TrainError::EmptyIntent { index: 1 }
        );
        assert_eq!(
            prepare(&ex(&[("a", "hi"), ("b", " ?! ")])).unwrap_err(),
            TrainError::EmptyText {
                index: 1,
                intent: "b".into()
            }
        );
        let many = vec![("a".to_string(), "x".to_string()); MAX_EXAMPLES + 1];
        assert!(matches!(
            prepare(&many),
            Err(TrainError::TooManyExamples { count, .. }) if count == MAX_EXAMPLES + 1
        ));
    }

    #[test]
    fn prepare_sorts_pairs_and_intents() {
        let examples = ex(&[("b", "y"), ("a", "z"), ("b", "x")]);
        let p = prepare(&examples).unwrap();
        assert_eq!(p.pairs, vec![("a", "z"), ("b", "x"), ("b", "y")]);
        assert_eq!(p.intents, vec!["a", "b"]);
    }

    #[test]
    fn background_is_the_last_class_and_weighs_as_asked() {
        let examples = ex(&[("a", "cancel my booking"), ("b", "what are your prices")]);
        let Prepared { pairs, intents } = prepare(&examples).unwrap();
        let bg = BackgroundOptions {
            enabled: true,
            weight: 2.0,
            max_similarity: 0.5,
        };
        let set = TrainSet::build(&pairs, &intents, &cfg(), bg);
        assert_eq!(set.classes, 3);
        assert_eq!(&set.ys[..2], &[0, 1]);
        assert!(set.ys[2..].iter().all(|&y| y == 2));
        let total: f32 = set.ws[2..].iter().sum();
        assert!((total - 2.0).abs() < 1e-3, "{total}");
        let off = TrainSet::build(
            &pairs,
            &intents,
            &cfg(),
            BackgroundOptions {
                enabled: false,
                ..bg
            },
        );
        assert_eq!((off.classes, off.xs.len()), (2, 2));
    }
}
