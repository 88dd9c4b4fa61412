//! The pure conversation step.
//!
//! Owns `FlowState` (what the gateway persists per conversation), the step
//! inputs/outputs and `step` itself. Invariants:
//! - `step` is pure: no I/O, no clock reads (time comes from `StepContext`),
//!   and the input state is never mutated; the new state is returned.
//! - After `step` returns `Ok`, an `Active` state always names a waiting
//!   state (`choice` or `ask`) of the flow.
//! - `attempts` counts failed answers at the current state and is reset to 0
//!   on every state entry.
//! - One step enters at most `MAX_ENTRIES_PER_STEP` states; more is reported
//!   as `StepError::Runaway` instead of looping.
//! - While `Handoff`, a person owns the conversation: `step` changes nothing
//!   and replies nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::flow::{AskState, ChoiceOption, ChoiceState, Flow, PromptRef, State};
use super::matching::match_option;
use super::prompts::{PromptError, Prompts};
use super::slots::{normalize_slot, SlotError, SlotRules};
use crate::nlu::Understanding;

/// Most state entries a single step may make.
pub const MAX_ENTRIES_PER_STEP: usize = 64;
/// Template used when attempts run out and the state has no `on_fail`.
pub const HANDOFF_TEMPLATE: &str = "handoff";
/// Text used for that case when no `handoff` template exists.
pub const HANDOFF_FALLBACK: &str = "Let me connect you with a member of our team.";

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
    /// Name of the current state (a waiting state while `Active`).
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
}

/// One customer turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnInput {
    /// Free text; a button press arrives as its label or option id.
    Text(String),
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

    /// The business's local date and time now.
    pub fn local_now(&self) -> chrono::NaiveDateTime {
        self.now.with_timezone(&self.tz).naive_local()
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
    /// Input arrived while the current state is not a `choice` or `ask`.
    #[error("state \"{state}\" is a {kind} state and cannot take customer input")]
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
    /// A `route` condition or `set` value could not be evaluated.
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

/// Advances a conversation by one customer turn.
pub fn step(
    flow: &Flow,
    state: &FlowState,
    input: &TurnInput,
    ctx: &StepContext<'_>,
) -> Result<StepOutcome, StepError> {
    if state.status == FlowStatus::Handoff {
        return Ok(StepOutcome {
            state: state.clone(),
            replies: Vec::new(),
            handoff: None,
            ended: false,
        });
    }
    let mut run = Run {
        flow,
        ctx,
        state: state.clone(),
        replies: Vec::new(),
        handoff: None,
        entries: 0,
    };
    let TurnInput::Text(text) = input;
    if !state.started || state.status == FlowStatus::Ended {
        // A new run keeps what the customer told us before (their name, say) but not the route.
        run.state = FlowState {
            started: true,
            slots: std::mem::take(&mut run.state.slots),
            ..initial_state(flow)
        };
        run.prefill(None);
        run.enter(&flow.start)?;
    } else if let Some(command) = flow.repair.detect(text) {
        run.repair(command)?;
    } else if let Some(correction) = run.correction(text) {
        run.correct(correction)?;
    } else {
        // A digression's words ("are you open on Saturdays?") are not answers to later questions.
        if run.digression().is_none() {
            let current = run.state.state.clone();
            run.prefill(Some(&current));
        }
        run.answer(text)?;
    }
    Ok(run.finish())
}

/// What a retry or prompt template may need beyond slots and vars.
#[derive(Default)]
pub(super) struct Extra<'o> {
    pub(super) options: &'o [ChoiceOption],
    pub(super) error: String,
    /// More variables, merged in (e.g. `slot` and `value` for a correction).
    pub(super) more: Option<Value>,
}

/// A failed answer at a waiting state.
struct Failure<'o> {
    retry: &'o str,
    limit: u32,
    on_fail: Option<&'o str>,
    extra: Extra<'o>,
}

/// One step in progress (repair commands act on it too, see `repair.rs`).
pub(super) struct Run<'f, 'c> {
    pub(super) flow: &'f Flow,
    pub(super) ctx: &'c StepContext<'c>,
    pub(super) state: FlowState,
    pub(super) replies: Vec<Reply>,
    pub(super) handoff: Option<String>,
    pub(super) entries: usize,
}

impl<'f> Run<'f, '_> {
    fn finish(self) -> StepOutcome {
        let ended = self.state.status == FlowStatus::Ended;
        StepOutcome {
            state: self.state,
            replies: self.replies,
            handoff: self.handoff,
            ended,
        }
    }

    /// The flow-owned name and state (so both outlive `self` borrows).
    pub(super) fn lookup(&self, name: &str) -> Result<(&'f str, &'f State), StepError> {
        let flow = self.flow;
        flow.states
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, s)| (n.as_str(), s))
            .ok_or_else(|| StepError::UnknownState {
                flow: flow.id.clone(),
                state: name.to_string(),
            })
    }

    /// Enters `name` and follows `message` chains until a state waits,
    /// hands off or ends.
    pub(super) fn enter(&mut self, name: &str) -> Result<(), StepError> {
        let mut next = Some(self.lookup(name)?);
        while let Some((name, state)) = next {
            self.entries += 1;
            if self.entries > MAX_ENTRIES_PER_STEP {
                return Err(StepError::Runaway {
                    limit: MAX_ENTRIES_PER_STEP,
                    state: name.to_string(),
                });
            }
            next = self.enter_one(name, state)?;
        }
        Ok(())
    }

    /// Runs one state's entry; gives the state a `message` moves on to.
    fn enter_one(
        &mut self,
        name: &'f str,
        state: &'f State,
    ) -> Result<Option<(&'f str, &'f State)>, StepError> {
        self.state.state = name.to_string();
        self.state.attempts = 0;
        match state {
            State::Ask(a) if self.take_prefilled(&a.slot) => return self.lookup(&a.next).map(Some),
            State::Route(r) => {
                self.say(name, state, &Extra::default())?;
                let target = self.route(name, r)?;
                return self.lookup(target).map(Some);
            }
            State::Set(s) => {
                self.set_values(name, s)?;
                return self.lookup(&s.next).map(Some);
            }
            _ => {}
        }
        let extra = match state {
            State::Choice(c) => options_extra(c),
            _ => Extra::default(),
        };
        self.say(name, state, &extra)?;
        match state {
            State::Message(m) => return self.lookup(&m.next).map(Some),
            State::Handoff(h) => {
                self.state.status = FlowStatus::Handoff;
                self.handoff = Some(h.reason.clone().unwrap_or_else(|| name.to_string()));
            }
            State::End(_) => self.state.status = FlowStatus::Ended,
            State::Route(_) | State::Set(_) => {}
            State::Choice(_) | State::Ask(_) => {
                if self.state.history.last().map(String::as_str) != Some(name) {
                    self.state.history.push(name.to_string());
                }
            }
        }
        Ok(None)
    }

    /// Handles the customer's answer at the current (waiting) state.
    fn answer(&mut self, text: &str) -> Result<(), StepError> {
        let (name, state) = self.lookup(&self.state.state)?;
        match state {
            State::Choice(c) => self.answer_choice(name, c, text),
            State::Ask(a) => self.answer_ask(name, a, text),
            other => Err(StepError::NotWaiting {
                state: name.to_string(),
                kind: other.kind_name(),
            }),
        }
    }

    fn answer_choice(
        &mut self,
        name: &str,
        c: &'f ChoiceState,
        text: &str,
    ) -> Result<(), StepError> {
        let picked = match_option(text, &c.options).or_else(|| self.option_by_intent(c));
        if let Some(opt) = picked {
            self.state
                .slots
                .insert(name.to_string(), Value::String(opt.id.clone()));
            return self.enter(&opt.next);
        }
        if let Some(d) = self.digression() {
            return self.digress(name, d);
        }
        self.fail(
            name,
            Failure {
                retry: c.retry_template(),
                limit: c.attempt_limit(),
                on_fail: c.on_fail.as_deref(),
                extra: options_extra(c),
            },
        )
    }

    fn answer_ask(&mut self, name: &str, a: &'f AskState, text: &str) -> Result<(), StepError> {
        let digression = self.digression().filter(|_| a.digressions);
        // Free text would accept a question as the answer, so a digression goes first.
        if a.slot_type.is_free_text() {
            if let Some(d) = digression {
                return self.digress(name, d);
            }
        }
        match self.answer_value(a, text) {
            Ok(value) => {
                self.state.slots.insert(a.slot.clone(), value);
                self.enter(&a.next)
            }
            Err(e) => match digression {
                Some(d) => self.digress(name, d),
                None => self.fail(
                    name,
                    Failure {
                        retry: a.retry_template(),
                        limit: a.attempt_limit(),
                        on_fail: a.on_fail.as_deref(),
                        extra: Extra {
                            error: e.to_string(),
                            ..Extra::default()
                        },
                    },
                ),
            },
        }
    }

    /// The value `text` gives ask state `a`: the whole text, or else the single entity of the
    /// slot's kind found in it ("sure, it's ann@example.com and tomorrow works").
    fn answer_value(&self, a: &'f AskState, text: &str) -> Result<Value, SlotError> {
        let rules = self.slot_rules(a);
        let whole = normalize_slot(a.slot_type, text, &rules);
        if whole.is_ok() {
            return whole;
        }
        let entity = super::digress::entity_kind(a.slot_type)
            .and_then(|kind| self.ctx.understanding.and_then(|u| u.entity(kind)));
        match entity {
            Some(e) => normalize_slot(a.slot_type, &e.text, &rules).or(whole),
            None => whole,
        }
    }

    /// The rules slot answers are normalised with at ask state `a`.
    pub(super) fn slot_rules(&self, a: &'f AskState) -> SlotRules<'f> {
        SlotRules {
            today: self.ctx.local_now().date(),
            now: self.ctx.local_now(),
            tz: self.ctx.tz,
            country_code: a.calling_code(),
        }
    }

    /// Counts a failed answer: retry, or leave via `on_fail`/handoff.
    fn fail(&mut self, name: &str, f: Failure<'_>) -> Result<(), StepError> {
        self.state.attempts = self.state.attempts.saturating_add(1);
        if self.state.attempts < f.limit {
            let text = self.render(name, PromptRef::Template(f.retry), &f.extra)?;
            self.push(text, f.extra.options);
            return Ok(());
        }
        match f.on_fail {
            Some(target) => self.enter(target),
            None => self.default_handoff(name),
        }
    }

    fn default_handoff(&mut self, name: &str) -> Result<(), StepError> {
        let reason = format!(
            "no valid answer at \"{name}\" after {} attempts",
            self.state.attempts
        );
        self.handoff_now(name, reason)
    }

    /// Says the `handoff` template (or a built-in sentence) and hands the conversation over.
    pub(super) fn handoff_now(&mut self, name: &str, reason: String) -> Result<(), StepError> {
        let text = self.render_or(name, HANDOFF_TEMPLATE, HANDOFF_FALLBACK)?;
        self.push(text, &[]);
        self.handoff = Some(reason);
        self.state.status = FlowStatus::Handoff;
        Ok(())
    }
}

fn options_extra(c: &ChoiceState) -> Extra<'_> {
    Extra {
        options: &c.options,
        ..Extra::default()
    }
}
