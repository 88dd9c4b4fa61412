//! What the understanding layer says about one customer message.
//!
//! Owns `Understanding` (intent, ranked alternatives, entities, the message's language, which
//! engine produced it) and `Entity`. Both engines (the embedded NLU and the LLM) produce this one shape; the flow engine
//! reads only this, so it never depends on which engine ran. Invariants: `intent` is `None` when
//! the message is out of scope (below the threshold); entity spans are byte offsets on char
//! boundaries of `text`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which engine produced an understanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The embedded n-gram model (plus rule-based entities).
    #[default]
    Nlu,
    /// The n-gram model fused with in-process sentence embeddings.
    NluEmbeddings,
    /// An OpenAI-compatible LLM (its proposals validated server-side).
    Llm,
}

/// The top intent, when in scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// Intent name, one of the flow's.
    pub name: String,
    /// Calibrated confidence in `[0, 1]`.
    pub confidence: f32,
}

/// An alternative intent with its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// Intent name.
    pub intent: String,
    /// Probability in `[0, 1]`.
    pub score: f32,
}

/// A value found in the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// `when` (a date/time expression), `email`, `phone` or `number`.
    pub kind: String,
    /// The words it was read from.
    pub text: String,
    /// Byte offset of `text` in the message.
    pub start: usize,
    /// Byte offset just past `text`.
    pub end: usize,
    /// The normalised value: a time value object for `when`, a string for `email`/`phone`, a
    /// number for `number`.
    pub value: Value,
}

/// Everything understood about one message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Understanding {
    /// The top intent, or `None` when out of scope or the flow has no intents.
    pub intent: Option<Intent>,
    /// Best intents first (at most five), whatever the threshold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranked: Vec<Ranked>,
    /// Entities in order of appearance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<Entity>,
    /// The message's language (ISO 639-1 code), when it could be told; `None` for short,
    /// ambiguous or mixed messages and for messages that were not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The engine that produced this.
    pub source: Source,
}

impl Understanding {
    /// The top intent's name, if any.
    pub fn intent_name(&self) -> Option<&str> {
        self.intent.as_ref().map(|i| i.name.as_str())
    }

    /// The top intent's confidence (0 when none).
    pub fn confidence(&self) -> f32 {
        self.intent.as_ref().map_or(0.0, |i| i.confidence)
    }

    /// The first entity of `kind`.
    pub fn entity(&self, kind: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.kind == kind)
    }
}
