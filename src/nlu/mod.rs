//! The embedded understanding layer: reads a customer's free text offline and deterministically.
//!
//! - [`understanding`]: the one result shape both engines (this one and the LLM) produce;
//! - [`intent`]: the n-gram intent classifier trained from a flow's examples;
//! - [`datetime`]: date and time expressions resolved in the business's time zone;
//! - [`entities`]: emails, phone numbers, numbers and time expressions found in a message;
//! - [`language`]: which language a message is written in (character n-gram naive Bayes);
//! - [`engine`]: a flow's trained model, combining the above;
//! - `embed` (feature `embeddings`): in-process sentence embeddings (MiniLM on candle);
//! - [`eval`]: the accuracy evaluation behind `switchboard nlu eval`;
//! - `tune` (feature `embeddings`): cross-validation on training examples that chose the
//!   embedding classifier's and the fusion's constants (`nlu eval --cv-folds K`).
//!
//! Invariants: no network and no clock reads here (time comes from a `TimeContext`); the same
//! input always gives the same output.

pub mod datetime;
#[cfg(feature = "embeddings")]
pub mod embed;
pub mod engine;
pub mod entities;
pub mod eval;
pub mod intent;
pub mod language;
#[cfg(feature = "embeddings")]
pub mod tune;
pub mod understanding;

pub use engine::{NluError, NluModel};
pub use understanding::{Entity, Intent, Ranked, Source, Understanding};
