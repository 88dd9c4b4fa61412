//! Error type shared by every part of the embedding module.
//!
//! Invariant: every failure on an input or I/O path (missing or corrupt model files, tokenizer
//! failures, tensor errors, a stopped service, bad training data) is reported as an
//! [`EmbedError`] value carrying enough context (file path, tensor name, reason) to act on;
//! nothing in this module panics on bad input.

use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong while loading the model, embedding text or classifying.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model file could not be read (usually: it does not exist).
    #[error("cannot read model file {path}: {source}")]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON configuration file exists but is not what the module expects.
    #[error("invalid model configuration in {path}: {message}")]
    Config {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// `tokenizer.json` could not be parsed or configured, or encoding failed.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    /// The weights could not be loaded (corrupt safetensors, missing tensor, wrong shape) or
    /// the forward pass failed.
    #[error("model error while {context}: {source}")]
    Model {
        /// What the module was doing (e.g. "loading model.safetensors").
        context: String,
        /// The underlying tensor-library error.
        #[source]
        source: candle_core::Error,
    },
    /// A batched request failed; every caller in the batch receives the same shared error.
    #[error("batched embedding failed: {0}")]
    Batch(Arc<EmbedError>),
    /// The background batching worker is gone (its runtime shut down or the task failed).
    #[error("embedding service unavailable: {0}")]
    Service(String),
    /// Training data for the classifier is unusable.
    #[error("invalid classifier training data: {0}")]
    Training(String),
}

impl EmbedError {
    /// Wraps a candle error with a short description of what was being done.
    pub(crate) fn model(context: impl Into<String>, source: candle_core::Error) -> Self {
        Self::Model {
            context: context.into(),
            source,
        }
    }
}

/// Adds context to candle results in one call: `tensor_op().ctx("doing x")?`.
pub(crate) trait ModelContext<T> {
    /// Converts a candle error into [`EmbedError::Model`] with the given context.
    fn ctx(self, context: &str) -> Result<T, EmbedError>;
}

impl<T> ModelContext<T> for Result<T, candle_core::Error> {
    fn ctx(self, context: &str) -> Result<T, EmbedError> {
        self.map_err(|e| EmbedError::model(context, e))
    }
}
