//! LLM layer: a resilient client for any OpenAI-compatible `/v1/chat/completions` endpoint
//! (OpenAI, Azure-style proxies, Ollama, vLLM, llama.cpp) plus the server-side guard that
//! validates whatever the model proposes.
//!
//! The model proposes; the server validates. Invariants of this module:
//! - The customer's text is only ever sent in `user`-role messages; operator instructions and
//!   trusted context travel in separate `system` messages (see [`wire`]).
//! - Retries, back-off and the circuit breaker are owned here; async-openai's own retry layer
//!   is replaced by a plain transport so there is exactly one retry policy ([`retry`]).
//! - While the breaker is open, calls fail immediately with [`LlmError::CircuitOpen`], so a dead
//!   provider never makes a customer wait ([`breaker`]).
//! - Every tool call must pass [`tools::ToolGuard`] before it may change any state.
//! - Self-contained: nothing here refers to other modules of the crate.

pub mod breaker;
pub mod client;
pub mod cost;
pub mod error;
pub mod retry;
pub mod tools;
mod transport;
pub mod types;
pub mod wire;

pub use breaker::{BreakerSettings, BreakerState, CircuitBreaker, Clock, ManualClock, SystemClock};
pub use client::{LlmClient, LlmSettings};
pub use cost::{cost_micros, estimate_cost, CostEstimate, ModelPrice, PriceTable};
pub use error::LlmError;
pub use retry::BackoffSettings;
pub use tools::{GuardError, GuardReport, ToolGuard, ValidatedCall};
pub use types::{
    ChatRequest, ChatResult, ChatTurn, StreamEvent, ToolCall, ToolSpec, TurnRole, Usage,
};
pub use wire::TokenLimitParam;
