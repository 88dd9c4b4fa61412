//! The embedded understanding engine of one flow: its trained intent model (n-gram, fused with
//! sentence embeddings when those are loaded) plus rule-based entities.
//!
//! Owns `NluModel`, trained once when a flow is compiled and then shared read-only. Invariants:
//! deterministic (same flow and text → same understanding); no I/O; a flow without intents still
//! extracts entities; the threshold is the flow's own when set, else the model's calibrated one.

use super::datetime::TimeContext;
use super::entities::extract_entities;
use super::intent::{fuse, Classification, IntentModel, TrainError, TrainOptions};
use super::understanding::{Intent, Ranked, Source, Understanding};

/// Weight of the embedding classifier's probabilities when fused with the n-gram model's.
pub const EMBEDDING_WEIGHT: f32 = 0.6;

/// Why a flow's intents could not be trained.
#[derive(Debug, thiserror::Error)]
#[error("understanding.intents: {0}")]
pub struct NluError(String);

/// A flow's trained understanding.
#[derive(Debug, Clone, Default)]
pub struct NluModel {
    intents: Option<IntentModel>,
    threshold: Option<f32>,
}

impl NluModel {
    /// Trains on `intent → examples`; `threshold` overrides the calibrated one.
    pub fn train(
        examples: &[(String, Vec<String>)],
        threshold: Option<f32>,
    ) -> Result<Self, NluError> {
        if examples.is_empty() {
            return Ok(Self {
                intents: None,
                threshold,
            });
        }
        let pairs: Vec<(String, String)> = examples
            .iter()
            .flat_map(|(intent, texts)| texts.iter().map(|t| (intent.clone(), t.clone())))
            .collect();
        let model = IntentModel::train(&pairs, &TrainOptions::default())
            .map_err(|e: TrainError| NluError(e.to_string()))?;
        Ok(Self {
            intents: Some(model),
            threshold,
        })
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
        let Some(model) = &self.intents else {
            return Understanding {
                entities,
                ..Understanding::default()
            };
        };
        let ngram = model.probabilities(text);
        let (probs, source) = match embedded {
            Some(e) if e.len() == ngram.len() => {
                (fuse(&ngram, e, EMBEDDING_WEIGHT), Source::NluEmbeddings)
            }
            _ => (ngram, Source::Nlu),
        };
        let c = Classification::from_probabilities(model.intents(), &probs, self.threshold());
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
            source,
        }
    }
}
