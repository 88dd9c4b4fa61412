//! The embedded intent classifier: trained at flow-compile time from a handful of example
//! utterances per intent, queried on every customer message (tens of microseconds).
//!
//! - [`features`]: normalisation, word 1–2-grams and character 2–5-grams inside word
//!   boundaries, 64-bit hashing, vocabulary, log-count × IDF weights, L2 normalisation;
//! - [`model`]: softmax (multinomial logistic) regression with L2, trained by deterministic SGD;
//! - [`background`]: a built-in corpus of generic off-topic messages, trained as one extra
//!   "background" class so that texts unlike every intent get a flat distribution;
//! - [`calibrate`]: temperature and out-of-scope threshold from cross-validation;
//! - `dataset`: validation and the vectorised training set; `par`: the fold models in parallel.
//!
//! How confidence is calibrated: the examples (and background sentences) are split into
//! `cv_folds` stratified folds; a model trained without each fold scores that fold. The softmax
//! temperature T minimises the negative log-likelihood of those held-out predictions over all
//! classes (intents and background). At run time the probabilities are softmax(z / T) with the
//! background's share spread evenly over the intents, so they sum to 1 over the intents and a
//! top probability near 1/N means "looks like nothing the flow knows". The out-of-scope
//! threshold is the one that best separates, on the same held-out predictions, the intents that
//! were predicted right from the background sentences (maximising accepted-right share −
//! `oos_cost` × accepted-background share), never below 1/N + 0.02.
//!
//! Invariants: deterministic (identical examples and options → identical model and outputs,
//! whatever the order of the examples or the number of threads); `intents()` is sorted;
//! probabilities are in that order and sum to 1 (a single intent gets its in-scope probability
//! instead, see [`IntentModel::probabilities`]); no input panics; inputs are read up to
//! [`features::MAX_CHARS`] characters.

pub mod background;
pub mod calibrate;
mod dataset;
pub mod features;
pub mod model;
mod par;

pub use calibrate::Calibration;
use dataset::{BackgroundOptions, TrainSet};
use features::{FeatureConfig, Vocabulary};
use model::{Linear, SgdParams};

/// Most training examples accepted.
pub const MAX_EXAMPLES: usize = 20_000;
/// Number of alternatives in [`Classification::ranked`].
pub const RANKED: usize = 5;

/// Why a model could not be trained.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// No examples were given.
    #[error("no training examples")]
    NoExamples,
    /// More than [`MAX_EXAMPLES`] examples.
    #[error("{count} training examples (at most {max})")]
    TooManyExamples {
        /// Examples given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An example has an empty intent name.
    #[error("example {index} has an empty intent name")]
    EmptyIntent {
        /// 0-based position in the input.
        index: usize,
    },
    /// An example's text is empty or has no words.
    #[error("example {index} of intent {intent:?} has no words")]
    EmptyText {
        /// 0-based position in the input.
        index: usize,
        /// Its intent.
        intent: String,
    },
}

/// Training options; `Default` is tuned on few-shot data (5–15 examples per intent).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// L2 regularisation strength λ on the weights.
    pub l2: f32,
    /// SGD passes over the examples.
    pub epochs: usize,
    /// Initial SGD step.
    pub step: f32,
    /// Longest word n-gram (1 = unigrams, 2 = plus bigrams).
    pub word_ngrams: usize,
    /// Character n-gram lengths (inclusive, counting the `<` `>` word boundaries).
    pub char_ngrams: (usize, usize),
    /// Share of the feature vector's weight given to character n-grams (0..=1).
    pub char_share: f32,
    /// Cross-validation folds for calibration (0 or 1: no calibration, temperature 1).
    pub cv_folds: usize,
    /// Train against the built-in background corpus (generic off-topic messages).
    pub background: bool,
    /// Total weight of the background class, in average intents (1 = as much as one intent).
    pub background_weight: f32,
    /// Background sentences at least this similar (word TF-IDF cosine) to an example are dropped.
    pub background_similarity: f32,
    /// Threads used for training (0 = one per core); results do not depend on it.
    pub threads: usize,
    /// Fixed out-of-scope threshold; `None` picks one from cross-validation.
    pub threshold: Option<f32>,
    /// Cost of accepting an off-topic text relative to rejecting a right answer, when the
    /// threshold is picked (higher → more rejections).
    pub oos_cost: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            l2: 1e-4,
            epochs: 20,
            step: 0.5,
            word_ngrams: 2,
            char_ngrams: (2, 5),
            char_share: 0.5,
            cv_folds: 5,
            background: true,
            background_weight: 1.5,
            background_similarity: 0.5,
            threads: 0,
            threshold: None,
            oos_cost: 1.5,
        }
    }
}

impl TrainOptions {
    /// Feature settings, with out-of-range values brought into range.
    fn features(&self) -> FeatureConfig {
        let char_min = self.char_ngrams.0.clamp(1, 8);
        FeatureConfig {
            word_max: self.word_ngrams.clamp(1, 4),
            char_min,
            char_max: self.char_ngrams.1.clamp(char_min, 8),
            char_share: finite_or(self.char_share, 0.5).clamp(0.0, 1.0),
        }
    }

    /// SGD settings, with out-of-range values brought into range.
    fn sgd(&self) -> SgdParams {
        let step = finite_or(self.step, 0.5);
        SgdParams {
            l2: finite_or(self.l2, 0.0).max(0.0),
            epochs: self.epochs.clamp(1, 1000),
            step: if step > 0.0 { step } else { 0.5 },
            seed: 0x5eed_1e55,
            thin: 2,
        }
    }

    fn background(&self) -> BackgroundOptions {
        BackgroundOptions {
            enabled: self.background,
            weight: self.background_weight,
            max_similarity: finite_or(self.background_similarity, 0.5),
        }
    }
}

fn finite_or(v: f32, default: f32) -> f32 {
    if v.is_finite() {
        v
    } else {
        default
    }
}

/// A trained intent classifier.
#[derive(Clone)]
pub struct IntentModel {
    intents: Vec<String>,
    vocab: Vocabulary,
    linear: Linear,
    calibration: Calibration,
}

/// One intent with its score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scored {
    /// Intent name.
    pub intent: String,
    /// Its probability.
    pub score: f32,
}

/// The reading of one text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Classification {
    /// The top intent, `None` when out of scope.
    pub intent: Option<String>,
    /// Probability of the top intent.
    pub confidence: f32,
    /// True when the top probability is below the threshold.
    pub out_of_scope: bool,
    /// The best intents (at most [`RANKED`]), best first.
    pub ranked: Vec<Scored>,
}

impl Classification {
    /// Builds a classification from probabilities over `intents` (used to fuse with another
    /// model's probabilities). Extra or missing entries on either side are ignored; ties go
    /// to the intent listed first; non-finite probabilities count as 0.
    pub fn from_probabilities(intents: &[String], probs: &[f32], threshold: f32) -> Self {
        let mut ranked: Vec<Scored> = intents
            .iter()
            .zip(probs)
            .map(|(intent, &p)| Scored {
                intent: intent.clone(),
                score: if p.is_finite() { p } else { 0.0 },
            })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranked.truncate(RANKED);
        let confidence = ranked.first().map_or(0.0, |s| s.score);
        let out_of_scope = ranked.is_empty() || confidence < threshold;
        Self {
            intent: if out_of_scope {
                None
            } else {
                ranked.first().map(|s| s.intent.clone())
            },
            confidence,
            out_of_scope,
            ranked,
        }
    }
}

/// Fuses two probability vectors: `(1 - weight_b)·a + weight_b·b`, renormalised to sum to 1.
/// The weight is clamped to [0, 1]; the result has the length of the shorter input; a
/// non-finite entry counts as 0; an all-zero result stays all zero. For a single intent the
/// value is an in-scope probability, not a distribution, and is averaged without renormalising.
pub fn fuse(a: &[f32], b: &[f32], weight_b: f32) -> Vec<f32> {
    let w = if weight_b.is_finite() {
        weight_b.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let clean = |v: f32| if v.is_finite() { v.max(0.0) } else { 0.0 };
    let mut out: Vec<f32> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (1.0 - w) * clean(x) + w * clean(y))
        .collect();
    let sum: f32 = out.iter().sum();
    if out.len() > 1 && sum > 0.0 {
        out.iter_mut().for_each(|v| *v /= sum);
    }
    out
}

impl IntentModel {
    /// Trains on (intent, example) pairs. Errors: no examples, an empty intent name, an example
    /// without words, more than [`MAX_EXAMPLES`] examples. One intent is allowed (then only the
    /// out-of-scope threshold separates).
    pub fn train(examples: &[(String, String)], opts: &TrainOptions) -> Result<Self, TrainError> {
        let dataset::Prepared { pairs, intents } = dataset::prepare(examples)?;
        let set = TrainSet::build(&pairs, &intents, &opts.features(), opts.background());
        let folds = if opts.cv_folds >= 2 {
            opts.cv_folds.min(20)
        } else {
            0
        };
        let fold_of = calibrate::folds(&set.ys, set.classes, folds);
        let (fold_models, linear) = set.train_all(&fold_of, folds, &opts.sgd(), opts.threads);
        let oof = calibrate::out_of_fold_logits(set.data(), &fold_of, set.classes, &fold_models);
        let calibration = calibrate::calibrate(
            &oof,
            &set.ys,
            &set.ws,
            intents.len(),
            opts.threshold,
            finite_or(opts.oos_cost, 1.0),
        );
        Ok(Self {
            intents,
            vocab: set.vocab,
            linear,
            calibration,
        })
    }

    /// The intents, sorted (the order of every probability vector).
    pub fn intents(&self) -> &[String] {
        &self.intents
    }

    /// Calibrated probabilities in `intents()` order; they sum to 1. With a single intent the
    /// one value is instead the probability that the text is that intent at all (against the
    /// background; always 1 when the background is disabled).
    pub fn probabilities(&self, text: &str) -> Vec<f32> {
        let z = self.linear.logits(&self.vocab.vectorize(text));
        calibrate::distribution(&z, self.calibration.temperature, self.intents.len())
    }

    /// The top intents of `text`, out of scope when the top probability is below
    /// [`threshold`](Self::threshold).
    pub fn classify(&self, text: &str) -> Classification {
        Classification::from_probabilities(
            &self.intents,
            &self.probabilities(text),
            self.threshold(),
        )
    }

    /// Out-of-scope threshold in force (probability of the top intent below which the text is
    /// out of scope).
    pub fn threshold(&self) -> f32 {
        self.calibration.threshold
    }

    /// What calibration found (temperature, threshold, held-out accuracy), e.g. to warn a flow
    /// author whose intents overlap.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }
}

impl std::fmt::Debug for IntentModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentModel")
            .field("intents", &self.intents)
            .field("vocab", &self.vocab)
            .field("linear", &self.linear)
            .field("calibration", &self.calibration)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    const DENTAL: &[(&str, &[&str])] = &[
        (
            "book",
            &[
                "I'd like to book an appointment",
                "Can I make an appointment for a check-up?",
                "I need to see a dentist",
                "Do you have any free slots next week?",
                "Book me in for a cleaning please",
                "I want to schedule a visit",
                "Can I come in tomorrow for a checkup",
                "I have a toothache and need an appointment",
                "new patient, looking to register and book",
                "is there availability on Friday morning",
            ],
        ),
        (
            "cancel",
            &[
                "I want to cancel my appointment",
                "Please cancel my booking",
                "I won't be able to come, cancel it",
                "Cancel my visit tomorrow",
                "I no longer need the appointment",
                "how do I cancel?",
                "Delete my appointment please",
                "I'd like to call off my check-up",
                "Can you remove my booking for Monday",
                "I'm not coming anymore, please cancel",
            ],
        ),
        (
            "hours",
            &[
                "What are your opening hours?",
                "When are you open?",
                "Are you open on Saturdays?",
                "What time do you close today?",
                "What time do you open in the morning",
                "Are you open on Sunday",
                "Until when are you open tonight",
                "Are you closed on public holidays?",
                "What are your hours this week",
                "Do you open early on weekdays",
            ],
        ),
        (
            "human",
            &[
                "I want to talk to a person",
                "Can I speak to someone?",
                "Let me talk to a human",
                "Connect me with the receptionist",
                "I need to speak with a real person",
                "Can someone call me back",
                "agent please",
                "Transfer me to staff",
                "I'd rather talk to somebody on the phone",
                "this bot is useless, give me a human",
            ],
        ),
        (
            "insurance",
            &[
                "Do you accept my insurance?",
                "Which insurance plans do you take?",
                "Is this covered by my dental plan",
                "Do you work with Delta Dental",
                "Can I pay with my health insurance",
                "Will my insurer cover the cleaning",
                "Are you in network with Cigna",
                "do you take medicaid",
                "Do I need to pay upfront or do you bill insurance",
                "does my policy cover x-rays",
            ],
        ),
        (
            "location",
            &[
                "Where are you located?",
                "What's your address?",
                "How do I get to the clinic?",
                "Is there parking near you?",
                "Which street is the practice on",
                "Are you close to the train station",
                "Can you send me directions",
                "Where is the dental office",
                "Is the clinic accessible by bus",
                "what part of town are you in",
            ],
        ),
        (
            "prices",
            &[
                "How much does a cleaning cost?",
                "What are your prices?",
                "How much is a filling",
                "What's the cost of teeth whitening",
                "Do you have a price list?",
                "How expensive is a root canal",
                "How much do you charge for a check-up",
                "what are the fees for a new patient exam",
                "price of a crown",
                "Is it expensive to get braces",
            ],
        ),
        (
            "reschedule",
            &[
                "I need to reschedule my appointment",
                "Can I move my appointment to another day?",
                "I can't make it on Tuesday, can we change the time",
                "Please change my booking to next week",
                "Could I push my appointment back an hour",
                "I want a different time for my visit",
                "Can we postpone my check-up",
                "Is it possible to switch my appointment to Thursday",
                "move my cleaning to a later date",
                "something came up, can we find another slot for my appointment",
            ],
        ),
    ];

    fn pairs(set: &[(&str, &[&str])]) -> Vec<(String, String)> {
        set.iter()
            .flat_map(|(i, ts)| ts.iter().map(move |t| (i.to_string(), t.to_string())))
            .collect()
    }

    fn dental() -> &'static IntentModel {
        static MODEL: OnceLock<IntentModel> = OnceLock::new();
        MODEL.get_or_init(|| IntentModel::train(&pairs(DENTAL), &TrainOptions::default()).unwrap())
    }

    fn assert_distribution(p: &[f32], n: usize) {
        assert_eq!(p.len(), n);
        assert!(p.iter().all(|v| v.is_finite() && *v >= 0.0), "{p:?}");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{p:?}");
    }

    #[test]
    fn training_errors_are_reported() {
        let opts = TrainOptions::default();
        assert_eq!(
            IntentModel::train(&[], &opts).unwrap_err(),
            TrainError::NoExamples
        );
        let bad = vec![("book".to_string(), "!!!".to_string())];
        assert!(matches!(
            IntentModel::train(&bad, &opts),
            Err(TrainError::EmptyText { index: 0, .. })
        ));
        let bad = vec![(String::new(), "hello".to_string())];
        assert_eq!(
            IntentModel::train(&bad, &opts).unwrap_err(),
            TrainError::EmptyIntent { index: 0 }
        );
    }

    #[test]
    fn intents_are_sorted_and_probabilities_sum_to_one() {
        let m = dental();
        let names: Vec<&str> = DENTAL.iter().map(|d| d.0).collect();
        assert_eq!(m.intents(), names.as_slice());
        assert_distribution(&m.probabilities("can I book a cleaning"), 8);
    }

    #[test]
    fn held_out_phrasings_are_understood() {
        let m = dental();
        let cases = [
            ("Hi, can I get an appointment this week?", "book"),
            ("I have to cancel, sorry", "cancel"),
            ("what time are you open until", "hours"),
            ("How much for a cleaning?", "prices"),
            ("where is your clinic", "location"),
            ("Do you take Aetna insurance?", "insurance"),
            ("speak to a person please", "human"),
            ("Can I change my appointment time?", "reschedule"),
            ("pls reschedule my apointment", "reschedule"),
        ];
        for (text, want) in cases {
            let c = m.classify(text);
            assert_eq!(c.intent.as_deref(), Some(want), "{text}: {c:?}");
            assert!(!c.out_of_scope && c.confidence >= m.threshold());
            assert_eq!(c.ranked[0].intent, want);
        }
    }

    #[test]
    fn off_topic_texts_fall_below_the_threshold() {
        let m = dental();
        let off = [
            "what's the weather",
            "asdf",
            "I like turtles",
            "tell me a joke",
            "who won the football game",
            "",
            "🙂",
        ];
        for text in off {
            let c = m.classify(text);
            assert!(c.out_of_scope, "{text}: {c:?}");
            assert_eq!(c.intent, None);
        }
    }

    #[test]
    fn calibration_is_sane() {
        let c = dental().calibration();
        assert!(c.temperature >= calibrate::MIN_T && c.temperature <= calibrate::MAX_T);
        assert!(c.threshold > 1.0 / 8.0 && c.threshold < 0.9, "{c:?}");
        assert_eq!(c.held_out, 80);
        assert!(
            c.held_out_accuracy > 0.5 && c.background_rejected > 0.7,
            "{c:?}"
        );
    }

    #[test]
    fn training_is_deterministic_and_order_and_thread_independent() {
        let mut examples = pairs(&DENTAL[..4]);
        let one = TrainOptions {
            threads: 1,
            ..TrainOptions::default()
        };
        let a = IntentModel::train(&examples, &one).unwrap();
        examples.reverse();
        let b = IntentModel::train(&examples, &TrainOptions { threads: 3, ..one }).unwrap();
        for text in [
            "cancel it",
            "when do you open",
            "zzz",
            "talk to a human now",
        ] {
            assert_eq!(a.probabilities(text), b.probabilities(text), "{text}");
        }
        assert_eq!(a.calibration(), b.calibration());
    }

    #[test]
    fn odd_inputs_never_panic() {
        let m = dental();
        let long = "what are your prices ".repeat(500);
        let word = "a".repeat(10_000);
        let odd = [
            "",
            "   \t\n",
            "🙂🙂🙂👍🏽",
            long.as_str(),
            word.as_str(),
            "\0\u{202e}\u{200d}",
            "Ｃａｎｃｅｌ",
            "إلغاء الموعد",
            "キャンセル",
            "ÀÉÎÕÜ ß İ",
        ];
        for text in odd {
            assert_distribution(&m.probabilities(text), 8);
            let c = m.classify(text);
            assert!(c.ranked.len() == RANKED && c.confidence.is_finite());
        }
        assert_eq!(m.classify(&long).intent.as_deref(), Some("prices"));
    }

    #[test]
    fn one_intent_gives_an_in_scope_probability() {
        let m = IntentModel::train(&pairs(&DENTAL[..1]), &TrainOptions::default()).unwrap();
        assert_eq!(m.intents(), ["book"]);
        let yes = m.probabilities("can I book an appointment for Friday");
        let no = m.probabilities("who wrote the odyssey");
        assert_eq!((yes.len(), no.len()), (1, 1));
        assert!(
            yes[0] > m.threshold() && no[0] < m.threshold(),
            "{yes:?} {no:?}"
        );
        assert!(m.classify("who wrote the odyssey").out_of_scope);
    }

    #[test]
    fn options_out_of_range_are_tamed() {
        let opts = TrainOptions {
            char_ngrams: (12, 3),
            word_ngrams: 0,
            step: f32::NAN,
            l2: -1.0,
            epochs: 0,
            cv_folds: 1,
            background_weight: f32::INFINITY,
            threshold: Some(7.0),
            ..TrainOptions::default()
        };
        let m = IntentModel::train(&pairs(&DENTAL[..2]), &opts).unwrap();
        assert_eq!(m.threshold(), 1.0);
        assert_eq!(m.calibration().temperature, 1.0);
        assert_distribution(&m.probabilities("cancel"), 2);
    }

    #[test]
    fn classification_from_probabilities_ranks_and_thresholds() {
        let names: Vec<String> = ["a", "b", "c", "d", "e", "f"].map(String::from).to_vec();
        let c =
            Classification::from_probabilities(&names, &[0.1, 0.4, 0.05, 0.3, f32::NAN, 0.15], 0.3);
        assert_eq!(c.intent.as_deref(), Some("b"));
        assert_eq!(c.confidence, 0.4);
        let order: Vec<&str> = c.ranked.iter().map(|s| s.intent.as_str()).collect();
        assert_eq!(order, ["b", "d", "f", "a", "c"]);
        let low = Classification::from_probabilities(&names, &[0.2; 6], 0.3);
        assert!(low.out_of_scope && low.intent.is_none());
        assert_eq!(low.ranked[0].intent, "a");
        let empty = Classification::from_probabilities(&[], &[], 0.0);
        assert!(empty.out_of_scope && empty.ranked.is_empty());
    }

    #[test]
    fn fuse_averages_and_renormalises() {
        let f = fuse(&[0.8, 0.2], &[0.2, 0.8], 0.25);
        assert!((f[0] - 0.65).abs() < 1e-6 && (f[1] - 0.35).abs() < 1e-6);
        let f = fuse(&[0.5, 0.3, 0.2], &[1.0, 1.0, 1.0], 0.5);
        assert!((f.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(f[0] > f[1] && f[1] > f[2]);
        assert_eq!(fuse(&[0.7], &[0.3], 0.5), vec![0.5]);
        assert_eq!(fuse(&[0.6, 0.4], &[0.0, 1.0], f32::NAN), vec![0.6, 0.4]);
        assert_eq!(fuse(&[0.6, 0.4, 0.1], &[1.0], 2.0), vec![1.0]);
        assert_eq!(fuse(&[0.0, 0.0], &[0.0, 0.0], 0.5), vec![0.0, 0.0]);
    }

    #[test]
    fn model_is_shareable_and_debug_is_short() {
        fn shareable<T: Clone + std::fmt::Debug + Send + Sync>(_: &T) {}
        let m = dental();
        shareable(m);
        let debug = format!("{m:?}");
        assert!(
            debug.contains("IntentModel") && debug.len() < 1000,
            "{debug}"
        );
    }
}
