//! The pure conversation step.
//!
//! Owns `step` and the entry and answer logic of the core kinds (its inputs and outputs are in
//! `step_io`; `http`, `wait`, `llm` and `subflow` states have their own modules). Invariants:
//! - `step` is pure: no I/O, no clock reads (time comes from `StepContext`),
//!   and the input state is never mutated; the new state is returned.
//! - After `step` returns `Ok`, an `Active` state names a waiting state (`choice`, `ask`,
//!   `wait` or `llm`) of the flow being run, or the `http`/`llm` state whose effect the
//!   outcome carries.
//! - `attempts` counts failed answers at the current state and is reset to 0
//!   on every state entry.
//! - One step enters at most `MAX_ENTRIES_PER_STEP` states; more is reported
//!   as `StepError::Runaway` instead of looping.
//! - While `Handoff`, a person owns the conversation: `step` changes nothing
//!   and replies nothing.

use serde_json::Value;

use super::effect::{Effect, WaitTimer};
use super::flow::{AskState, ChoiceOption, ChoiceState, Flow, PromptRef, State};
use super::matching::match_option;
use super::prompts::Prompts;
use super::slots::{normalize_slot, SlotError, SlotRules};
pub use super::step_io::{
    Call, FlowState, FlowStatus, Reply, ReplyOption, StepContext, StepError, StepOutcome, TurnInput,
};

/// Most state entries a single step may make.
pub const MAX_ENTRIES_PER_STEP: usize = 64;
/// Template used when attempts run out and the state has no `on_fail`.
pub const HANDOFF_TEMPLATE: &str = "handoff";
/// Text used for that case when no `handoff` template exists.
pub const HANDOFF_FALLBACK: &str = "Let me connect you with a member of our team.";

/// The state of a conversation that has not started yet.
pub fn initial_state(flow: &Flow) -> FlowState {
    FlowState {
        state: flow.start.clone(),
        ..FlowState::default()
    }
}

/// Advances a conversation by one input: a customer turn, an effect's result or a timer.
pub fn step(
    flow: &Flow,
    state: &FlowState,
    input: &TurnInput,
    ctx: &StepContext<'_>,
) -> Result<StepOutcome, StepError> {
    if state.status == FlowStatus::Handoff {
        return Ok(StepOutcome::unchanged(state));
    }
    let mut run = Run::new(flow, ctx, state.clone());
    match input {
        TurnInput::Text(text) => run.text_turn(text)?,
        TurnInput::Http(result) => run.resume_http(result)?,
        TurnInput::Llm(result) => run.resume_llm(result)?,
        TurnInput::Timeout { token } => {
            if !run.timer_is_current(*token) {
                return Ok(StepOutcome::unchanged(state));
            }
            run.time_out()?;
        }
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
pub(super) struct Run<'f> {
    /// The conversation's own flow.
    pub(super) root: &'f Flow,
    /// The flow being run: `root`, or the innermost called flow.
    pub(super) flow: &'f Flow,
    /// `flow`'s templates.
    pub(super) prompts: &'f Prompts,
    pub(super) ctx: &'f StepContext<'f>,
    pub(super) state: FlowState,
    pub(super) replies: Vec<Reply>,
    pub(super) handoff: Option<String>,
    /// States entered in this step (the runaway guard).
    pub(super) entries: usize,
    pub(super) effect: Option<Effect>,
    pub(super) timer: Option<WaitTimer>,
}

impl<'f> Run<'f> {
    fn new(root: &'f Flow, ctx: &'f StepContext<'f>, state: FlowState) -> Self {
        let mut run = Run {
            root,
            flow: root,
            prompts: ctx.prompts,
            ctx,
            state,
            replies: Vec::new(),
            handoff: None,
            entries: 0,
            effect: None,
            timer: None,
        };
        run.select_active_flow();
        run
    }

    fn finish(self) -> StepOutcome {
        let ended = self.state.status == FlowStatus::Ended;
        StepOutcome {
            state: self.state,
            replies: self.replies,
            handoff: self.handoff,
            ended,
            effect: self.effect,
            timer: self.timer,
        }
    }

    /// A customer's text: starts the flow, or is a repair command, a correction, or an answer.
    fn text_turn(&mut self, text: &str) -> Result<(), StepError> {
        if !self.state.started || self.state.status == FlowStatus::Ended {
            // A new run keeps what the customer told us before (their name, say) but not the
            // route; the entry counter goes on, so old timers stay stale.
            self.state = FlowState {
                started: true,
                slots: std::mem::take(&mut self.state.slots),
                entries: self.state.entries,
                ..initial_state(self.root)
            };
            self.select_active_flow();
            self.prefill(None);
            return self.enter(&self.root.start);
        }
        if let Some(command) = self.flow.repair.detect(text) {
            return self.repair(command);
        }
        // Any reply is the answer at a `wait`, and the LLM reads it at an `llm` state.
        if matches!(
            self.flow.state(&self.state.state),
            Some(State::Wait(_) | State::Llm(_) | State::Http(_))
        ) {
            return self.answer(text);
        }
        if let Some(correction) = self.correction(text) {
            return self.correct(correction);
        }
        // A digression's words ("are you open on Saturdays?") are not answers to later questions.
        if self.digression().is_none() {
            let current = self.state.state.clone();
            self.prefill(Some(&current));
        }
        self.answer(text)
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
            self.state.entries = self.state.entries.saturating_add(1);
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
            State::Subflow(s) => return self.call(name, s),
            State::End(_) if !self.state.calls.is_empty() => {
                self.say(name, state, &Extra::default())?;
                return self.return_from_call();
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
            State::Http(h) => self.request_http(name, h)?,
            State::Route(_) | State::Set(_) | State::Subflow(_) => {}
            State::Choice(_) | State::Ask(_) | State::Wait(_) | State::Llm(_) => {
                if self.state.history.last().map(String::as_str) != Some(name) {
                    self.state.history.push(name.to_string());
                }
                if let State::Wait(w) = state {
                    self.start_timer(name, w);
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
            State::Wait(w) => self.answer_wait(w, text),
            State::Llm(l) => self.ask_llm(name, l, text),
            // A webhook call that never completed (the gateway stopped mid-turn): make it again.
            State::Http(_) => self.enter(name),
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
            time: self.ctx.time(),
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
