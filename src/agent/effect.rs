//! Effects: the work a pure `step` asks the gateway to do before a conversation can go on, and
//! the results the gateway feeds back.
//!
//! Owns the request and result types of `http` and `llm` states and the timer of `wait` states.
//! Invariants: plain data, no I/O; a request is fully rendered by `step` (URL, JSON body, system
//! prompt), so the executor never sees templates or flow internals; a result names no state —
//! `step` applies it to the state that asked, and re-checks everything an LLM proposes.

use serde_json::Value;

use super::flow_kinds::{HttpMethod, LlmTool};
use super::slots::SlotType;

/// Work to do before the conversation can go on.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Call a business webhook; resume with `TurnInput::Http`.
    Http(HttpRequest),
    /// Ask the tenant's LLM for a reply; resume with `TurnInput::Llm`.
    Llm(LlmRequest),
}

/// A webhook call, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// The `http` state that asked.
    pub state: String,
    /// `GET` or `POST`.
    pub method: HttpMethod,
    /// The rendered URL.
    pub url: String,
    /// The JSON body (`POST` only).
    pub body: Option<Value>,
    /// Limit of one attempt, in milliseconds.
    pub timeout_ms: u64,
    /// Attempts after the first on a network error, timeout, 429 or 5xx.
    pub retries: u32,
}

/// How a webhook call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpResult {
    /// A 2xx reply whose body is this JSON document.
    Ok(Value),
    /// Anything else, with the reason (refused URL, network error, timeout, status, oversized or
    /// non-JSON body).
    Failed(String),
}

/// A reply to write with the LLM, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    /// The `llm` state that asked.
    pub state: String,
    /// The rendered system prompt (operator text only).
    pub system: String,
    /// The customer's message, sent only as the user message.
    pub user: String,
    /// Tools offered.
    pub tools: Vec<LlmTool>,
    /// Slots `set_slot` may fill, with their types.
    pub slots: Vec<(String, SlotType)>,
    /// Exit ids `goto` may take.
    pub exits: Vec<String>,
}

/// How an LLM request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmResult {
    /// The model replied and every tool call passed the guard.
    Replied(LlmReply),
    /// No usable reply: no LLM, breaker open, quota used up, a failed call or a refused tool
    /// call (the reason is logged, never shown to the customer).
    Unavailable(String),
}

/// The model's reply, as actions the server allows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmReply {
    /// Text for the customer, if any.
    pub text: Option<String>,
    /// Tool calls, in the order the model made them.
    pub actions: Vec<LlmAction>,
}

/// One tool call the guard accepted (still re-checked by `step`).
#[derive(Debug, Clone, PartialEq)]
pub enum LlmAction {
    /// Store `value` (normalised by the slot's type) in `slot`.
    SetSlot {
        /// Slot name.
        slot: String,
        /// The raw value the model proposed.
        value: String,
    },
    /// Leave through exit `exit`.
    Goto {
        /// Exit id.
        exit: String,
    },
    /// Hand the conversation to a person.
    Handoff {
        /// Why, in the model's words (recorded, not shown).
        reason: String,
    },
}

/// A timer a `wait` state needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimer {
    /// The `wait` state.
    pub state: String,
    /// `FlowState::entries` at its entry; the timer is stale once they differ.
    pub token: u64,
    /// Seconds from now.
    pub after_secs: u64,
}
