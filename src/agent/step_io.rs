//! What `step` reads and returns: the persisted `FlowState`, the `TurnInput` that moves it on,
//! the `StepContext` it runs in, and the `StepOutcome` (replies, handoff, an effect to perform,
//! a timer to schedule) or `StepError`.
//!
//! Invariants: plain data with no I/O; `FlowState` stays readable across versions (every field
//! added since the first has a serde default); an outcome with an `effect` is resumed with the
//! matching input before anything else reaches the conversation.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::effect::{Effect, HttpResult, LlmResult, WaitTimer};
use super::flow::Flow;
use super::prompts::{PromptError, Prompts};
use super::subflow::Callees;
use crate::nlu::Understanding;

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatus {
    /// Run by the flow; the current state waits for the customer.
    #[default]
    Active,
    /// A person owns the conversation; `step` changes nothing.
    Handoff,
    /// An `end` state was reached; the next turn starts the flow again.
    Ended,
}

/// Per-conversation state, persisted by the gateway between turns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FlowState {
    /// Name of the current state (a waiting state while `Active`), in the flow being run: the
    /// innermost called flow while `calls` is not empty.
    pub state: String,
    /// Answers collected so far, keyed by slot name (a choice's key is its state name).
    pub slots: Map<String, Value>,
    /// Failed answers at the current state; reset to 0 on every state entry.
    pub attempts: u32,
    /// Where the conversation stands.
    pub status: FlowStatus,
    /// Whether the flow has been entered; the first turn's text only starts it.
    pub started: bool,
    /// Waiting states entered so far, oldest first ("go back" returns to the one before last).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<String>,
    /// Slots filled from values the customer gave unprompted; their questions are skipped once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefilled: Vec<String>,
    /// States entered over the whole conversation (kept across restarts); a `wait` state's
    /// timer carries the value at its entry, so a timer that fires after the conversation moved
    /// on does nothing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub entries: u64,
    /// Subflow calls in progress, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<Call>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One subflow call in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Key of the called flow.
    pub flow: String,
    /// Its version (0 = built-in), kept until the call returns.
    pub version: i32,
    /// The caller's `subflow` state; the caller resumes at its `next`.
    pub from: String,
    /// The caller's "go back" history, restored on return.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<String>,
}

/// What moves a conversation on: a customer turn, or the result of an effect a step asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnInput {
    /// Free text; a button press arrives as its label or option id.
    Text(String),
    /// The result of the webhook call the current `http` state asked for.
    Http(HttpResult),
    /// The LLM's reply (tool calls already checked by the guard) at the current `llm` state.
    Llm(LlmResult),
    /// A `wait` state's timer fired; `token` is the `entries` value it was set with.
    Timeout {
        /// `FlowState::entries` when the wait state was entered.
        token: u64,
    },
}

/// Everything `step` needs besides the flow and the state.
#[derive(Debug, Clone, Copy)]
pub struct StepContext<'a> {
    /// Current time; relative dates resolve against the local date in `tz`.
    pub now: chrono::DateTime<chrono::Utc>,
    /// The business's time zone.
    pub tz: chrono_tz::Tz,
    /// Compiled templates used to render replies.
    pub prompts: &'a Prompts,
    /// Extra template variables, e.g. `{"business": {"name": "..."}}`.
    pub vars: &'a Value,
    /// What the understanding layer read in this turn's text, if it ran.
    pub understanding: Option<&'a Understanding>,
    /// The flows `subflow` states may call, resolved by the caller.
    pub callees: Option<&'a Callees>,
}

impl<'a> StepContext<'a> {
    /// A context in UTC with no understanding.
    pub fn new(now: chrono::DateTime<chrono::Utc>, prompts: &'a Prompts, vars: &'a Value) -> Self {
        Self {
            now,
            tz: chrono_tz::UTC,
            prompts,
            vars,
            understanding: None,
            callees: None,
        }
    }

    /// The same context in time zone `tz`.
    pub fn in_zone(self, tz: chrono_tz::Tz) -> Self {
        Self { tz, ..self }
    }

    /// The same context with this turn's understanding.
    pub fn understood(self, understanding: &'a Understanding) -> Self {
        Self {
            understanding: Some(understanding),
            ..self
        }
    }

    /// The same context with the flows subflows may call.
    pub fn calling(self, callees: &'a Callees) -> Self {
        Self {
            callees: Some(callees),
            ..self
        }
    }

    /// The business's local "now" and time zone, as date/time expressions resolve against.
    pub fn time(&self) -> crate::nlu::datetime::TimeContext {
        crate::nlu::datetime::TimeContext::from_utc(self.now, self.tz)
    }
}

/// A button offered with a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyOption {
    /// The choice option's id.
    pub id: String,
    /// Button text.
    pub label: String,
}

/// One outgoing message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Rendered, trimmed message text; may be empty when options are sent.
    pub text: String,
    /// Buttons offered with the message, in order; empty for plain text.
    pub options: Vec<ReplyOption>,
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The conversation state to persist after this step.
    pub state: FlowState,
    /// Messages to send, in order.
    pub replies: Vec<Reply>,
    /// Set when this step handed the conversation to a person.
    pub handoff: Option<String>,
    /// Whether this step reached an `end` state.
    pub ended: bool,
    /// Work to do before the conversation can go on (a webhook call, an LLM reply): the state is
    /// left at the state that asked, and the gateway resumes it with the matching `TurnInput`.
    pub effect: Option<Effect>,
    /// The timer of the `wait` state this step stopped at.
    pub timer: Option<WaitTimer>,
}

impl StepOutcome {
    /// Nothing happened: `state` stays as it is and nothing is said.
    pub fn unchanged(state: &FlowState) -> StepOutcome {
        StepOutcome {
            state: state.clone(),
            replies: Vec::new(),
            handoff: None,
            ended: false,
            effect: None,
            timer: None,
        }
    }

    /// This outcome followed by `next`, the outcome of resuming its effect: replies in order,
    /// the later state, effect and timer, and a handoff or end from either.
    pub fn then(mut self, next: StepOutcome) -> StepOutcome {
        self.replies.extend(next.replies);
        StepOutcome {
            state: next.state,
            replies: self.replies,
            handoff: next.handoff.or(self.handoff),
            ended: next.ended,
            effect: next.effect,
            timer: next.timer,
        }
    }
}

/// Why a step could not complete.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The flow has no state of that name (the start, a target or the current state).
    #[error("flow \"{flow}\" has no state \"{state}\"")]
    UnknownState {
        /// Id of the flow.
        flow: String,
        /// The missing state's name.
        state: String,
    },
    /// Input arrived while the current state cannot take it (text at a state that does not
    /// wait, an effect's result at a state that did not ask for it).
    #[error("state \"{state}\" is a {kind} state and cannot take this input")]
    NotWaiting {
        /// Name of the current state.
        state: String,
        /// Its YAML `kind`.
        kind: &'static str,
    },
    /// More than `MAX_ENTRIES_PER_STEP` state entries in one step.
    #[error("more than {limit} state entries in one step (last: \"{state}\"); the flow loops")]
    Runaway {
        /// The entry limit that was exceeded.
        limit: usize,
        /// The state whose entry exceeded it.
        state: String,
    },
    /// A prompt could not be rendered.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// A `route` condition, `set` value or `http` body could not be evaluated.
    #[error(transparent)]
    Expr(#[from] super::expr::ExprError),
}

/// The state of a conversation that has not started yet.
pub fn initial_state(flow: &Flow) -> FlowState {
    FlowState {
        state: flow.start.clone(),
        ..FlowState::default()
    }
}
