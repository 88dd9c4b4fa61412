//! The embedded understanding engine of one flow: its trained intent model (n-gram, fused with
//! sentence embeddings when those are loaded) plus rule-based entities and the message's
//! language.
//!
//! Owns `NluModel`, trained once when a flow is compiled and then shared read-only. Invariants:
//! deterministic (same flow and text → same understanding); no I/O; a flow without intents still
//! extracts entities and identifies the language; the threshold is the flow's own when set,
//! else the model's calibrated one.

use super::datetime::TimeContext;
use super::entities::extract_entities;
use super::intent::{fuse, Classification, IntentModel, TrainError, TrainOptions};
use super::language;
use super::understanding::{Intent, Ranked, Source, Understanding};

/// Weight of the embedding classifier's probabilities when fused with the n-gram model's.
pub const EMBEDDING_WEIGHT: f32 = 0.9;
/// Fused probability at which a message counts as in scope even when the n-gram model (whose
/// background class makes its out-of-scope cut the calibrated one) rejects it.
pub const FUSED_ACCEPT: f32 = 0.4;

/// Fuses n-gram and embedding probabilities: the intent is the fused top one; the message is out
/// of scope only when the n-gram model rejects it (below `threshold`) and the fused top
/// probability is under `accept`.
pub fn fused_classification(
    intents: &[String],
    ngram: &[f32],
    embedded: &[f32],
    threshold: f32,
    weight: f32,
    accept: f32,
) -> Classification {
    let probs = fuse(ngram, embedded, weight);
    let mut c = Classification::from_probabilities(intents, &probs, 0.0);
    let ngram_top = ngram.iter().copied().fold(0.0, f32::max);
    let out = ngram_top < threshold && c.confidence < accept;
    c.out_of_scope = out;
    if out {
        c.intent = None;
    }
    c
}

/// Why a flow's intents could not be trained.
#[derive(Debug, thiserror::Error)]
#[error("understanding.intents: {0}")]
pub struct NluError(String);

/// A flow's trained understanding.
#[derive(Debug, Clone, Default)]
pub struct NluModel {
    intents: Option<IntentModel>,
    threshold: Option<f32>,
    #[cfg(feature = "embeddings")]
    embedding: Option<std::sync::Arc<super::embed::EmbeddingClassifier>>,
}

impl NluModel {
    /// Trains on `intent → examples`; `threshold` overrides the calibrated one.
    pub fn train(
        examples: &[(String, Vec<String>)],
        threshold: Option<f32>,
    ) -> Result<Self, NluError> {
        // Language profiles are shared by every flow; train them with the first, not on the
        // first customer message.
        language::warm_up();
        if examples.is_empty() {
            return Ok(Self::with_threshold(threshold));
        }
        let pairs: Vec<(String, String)> = examples
            .iter()
            .flat_map(|(intent, texts)| texts.iter().map(|t| (intent.clone(), t.clone())))
            .collect();
        let model = IntentModel::train(&pairs, &TrainOptions::default())
            .map_err(|e: TrainError| NluError(e.to_string()))?;
        Ok(Self {
            intents: Some(model),
            ..Self::with_threshold(threshold)
        })
    }

    fn with_threshold(threshold: Option<f32>) -> Self {
        Self {
            threshold,
            ..Self::default()
        }
    }

    /// Whether an embedding classifier was trained for this flow (build feature `embeddings`
    /// and a configured model).
    pub fn uses_embeddings(&self) -> bool {
        #[cfg(feature = "embeddings")]
        {
            self.embedding.is_some()
        }
        #[cfg(not(feature = "embeddings"))]
        {
            false
        }
    }

    /// The same model with an embedding classifier trained on `examples` (the flow's), embedded
    /// with `embedder`.
    #[cfg(feature = "embeddings")]
    pub fn with_embeddings(
        mut self,
        examples: &[(String, Vec<String>)],
        embedder: &super::embed::Embedder,
    ) -> Result<Self, NluError> {
        let intents = self.intents().to_vec();
        if intents.len() < 2 {
            return Ok(self);
        }
        let mut labelled = Vec::new();
        for (intent, texts) in examples {
            let Some(index) = intents.iter().position(|i| i == intent) else {
                continue;
            };
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            for vector in embedder.embed(&refs).map_err(|e| NluError(e.to_string()))? {
                labelled.push((index, vector));
            }
        }
        let classifier = super::embed::EmbeddingClassifier::train(&intents, &labelled)
            .map_err(|e| NluError(e.to_string()))?;
        self.embedding = Some(std::sync::Arc::new(classifier));
        Ok(self)
    }

    /// The embedding classifier's probabilities (in `intents()` order) for a message's embedding.
    #[cfg(feature = "embeddings")]
    pub fn embedding_probabilities(&self, embedding: &[f32]) -> Option<Vec<f32>> {
        self.embedding.as_ref().map(|c| c.probabilities(embedding))
    }

    /// The intents the model knows, sorted (the order of every probability vector).
    pub fn intents(&self) -> &[String] {
        self.intents.as_ref().map_or(&[], |m| m.intents())
    }

    /// The out-of-scope threshold in force.
    pub fn threshold(&self) -> f32 {
        match (self.threshold, &self.intents) {
            (Some(t), _) => t,
            (None, Some(m)) => m.threshold(),
            (None, None) => 1.0,
        }
    }

    /// Reads `text` with the n-gram model and, when given, the embedding classifier's
    /// probabilities (in `intents()` order).
    pub fn understand(
        &self,
        text: &str,
        time: &TimeContext,
        country_code: &str,
        embedded: Option<&[f32]>,
    ) -> Understanding {
        let entities = extract_entities(text, time, country_code);
        let language = language::identify(text).map(|l| l.code.to_string());
        let Some(model) = &self.intents else {
            return Understanding {
                entities,
                language,
                ..Understanding::default()
            };
        };
        let ngram = model.probabilities(text);
        let (c, source) = match embedded {
            Some(e) if e.len() == ngram.len() && ngram.len() > 1 => (
                fused_classification(
                    model.intents(),
                    &ngram,
                    e,
                    self.threshold(),
                    EMBEDDING_WEIGHT,
                    FUSED_ACCEPT,
                ),
                Source::NluEmbeddings,
            ),
            _ => (
                Classification::from_probabilities(model.intents(), &ngram, self.threshold()),
                Source::Nlu,
            ),
        };
        Understanding {
            intent: c.intent.clone().map(|name| Intent {
                name,
                confidence: c.confidence,
            }),
            ranked: c
                .ranked
                .into_iter()
                .map(|s| Ranked {
                    intent: s.intent,
                    score: s.score,
                })
                .collect(),
            entities,
            language,
            source,
        }
    }
}

#[cfg(all(test, feature = "embeddings"))]
mod embedding_tests {
    use super::*;

    /// Needs the real model: `SWITCHBOARD_MINILM_DIR` (scripts/fetch-minilm.sh); skipped without.
    #[test]
    fn embeddings_are_fused_into_the_flows_intents() {
        let Ok(dir) = std::env::var("SWITCHBOARD_MINILM_DIR") else {
            eprintln!("skipping: SWITCHBOARD_MINILM_DIR is not set");
            return;
        };
        let embedder = crate::nlu::embed::Embedder::load(std::path::Path::new(&dir)).unwrap();
        let examples: Vec<(String, Vec<String>)> = [
            (
                "book",
                &[
                    "I'd like to book an appointment",
                    "can I come in for a check-up",
                    "schedule a cleaning please",
                    "I need to see a dentist",
                ][..],
            ),
            (
                "hours",
                &[
                    "when are you open",
                    "what are your opening hours",
                    "are you open on saturday",
                    "what time do you close",
                ][..],
            ),
            (
                "cancel",
                &[
                    "cancel my appointment",
                    "I can't make it, please cancel",
                    "I won't be coming in",
                    "delete my booking",
                ][..],
            ),
        ]
        .iter()
        .map(|(i, t)| (i.to_string(), t.iter().map(|s| s.to_string()).collect()))
        .collect();
        let model = NluModel::train(&examples, None)
            .unwrap()
            .with_embeddings(&examples, &embedder)
            .unwrap();
        assert!(model.uses_embeddings());
        let text = "my molar hurts, could a dentist take a look at it soon?";
        let vector = embedder.embed(&[text]).unwrap().remove(0);
        let probs = model.embedding_probabilities(&vector).unwrap();
        let time = TimeContext::from_utc(chrono::Utc::now(), chrono_tz::UTC);
        let u = model.understand(text, &time, "1", Some(&probs));
        assert_eq!(u.source, Source::NluEmbeddings);
        assert_eq!(u.ranked[0].intent, "book", "{u:?}");
    }
}
