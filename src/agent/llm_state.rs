//! `llm` states inside a step: a customer message becomes an [`Effect::Llm`] request (system
//! prompt rendered here, the message only as the user text), and the gateway's result is
//! checked and applied when the step is resumed.
//!
//! Invariants — the model proposes, the step decides:
//! - a reply is applied whole or not at all: one refused action (a tool the state does not
//!   offer, a slot it does not list, a value its type's normaliser rejects, an exit it does not
//!   name, two exits, an exit and a handoff) sends the conversation to `fallback`, as does an
//!   unavailable LLM or a reply with nothing to say and nowhere to go;
//! - `attempts` counts the LLM's replies at this entry of the state; once `max_turns` replies
//!   did not leave it, the next message goes to `on_fail` (else a handoff) without a call;
//! - the model's text is said as it is, cut to [`MAX_LLM_REPLY_CHARS`].

use serde_json::Value;

use super::effect::{Effect, LlmAction, LlmReply, LlmRequest, LlmResult};
use super::flow::{LlmState, LlmTool, State};
use super::machine::{Extra, FlowStatus, Run, StepError};
use super::slots::{normalize_slot, SlotRules};

/// Longest LLM reply said to the customer, in characters.
pub const MAX_LLM_REPLY_CHARS: usize = 2000;

/// A reply whose every action is allowed.
#[derive(Default)]
struct Checked {
    slots: Vec<(String, Value)>,
    goto: Option<String>,
    handoff: Option<String>,
}

impl<'f> Run<'f> {
    /// A customer message at an `llm` state: ask the LLM (or give up after `max_turns`).
    pub(super) fn ask_llm(
        &mut self,
        name: &str,
        l: &'f LlmState,
        text: &str,
    ) -> Result<(), StepError> {
        if self.state.attempts >= l.turn_limit() {
            return match &l.on_fail {
                Some(target) => self.enter(target),
                None => {
                    let reason = format!("the LLM at \"{name}\" used its {} turns", l.turn_limit());
                    self.handoff_now(name, reason)
                }
            };
        }
        let vars = self.template_vars(name, &Extra::default());
        let system = match (&l.prompt, &l.text) {
            (Some(template), _) => self.prompts.render(template, vars)?,
            (None, Some(source)) => self.prompts.render_inline(source, vars)?,
            (None, None) => String::new(),
        };
        let slots = if l.offers(LlmTool::SetSlot) {
            l.slots.clone()
        } else {
            Vec::new()
        };
        let exits = if l.offers(LlmTool::Goto) {
            l.exits.iter().map(|(id, _)| id.clone()).collect()
        } else {
            Vec::new()
        };
        self.effect = Some(Effect::Llm(LlmRequest {
            state: name.to_string(),
            system,
            user: text.to_string(),
            tools: l.tools.clone(),
            slots,
            exits,
        }));
        Ok(())
    }

    /// Applies the LLM's result at the current `llm` state.
    pub(super) fn resume_llm(&mut self, result: &LlmResult) -> Result<(), StepError> {
        let (name, state) = self.lookup(&self.state.state)?;
        let l = match state {
            State::Llm(l) if self.state.status == FlowStatus::Active && self.state.started => l,
            other => {
                return Err(StepError::NotWaiting {
                    state: name.to_string(),
                    kind: other.kind_name(),
                })
            }
        };
        let LlmResult::Replied(reply) = result else {
            return self.enter(&l.fallback);
        };
        let text = said_text(reply);
        let Some(checked) = self.check_actions(l, &reply.actions) else {
            return self.enter(&l.fallback);
        };
        if text.is_none() && checked.goto.is_none() && checked.handoff.is_none() {
            return self.enter(&l.fallback);
        }
        self.state.attempts = self.state.attempts.saturating_add(1);
        self.state.slots.extend(checked.slots);
        if let Some(text) = &text {
            self.push(text.clone(), &[]);
        }
        if let Some(reason) = checked.handoff {
            let reason = format!("the LLM at \"{name}\" handed over: {reason}");
            if text.is_some() {
                self.handoff = Some(reason);
                self.state.status = FlowStatus::Handoff;
                return Ok(());
            }
            return self.handoff_now(name, reason);
        }
        match checked.goto.as_deref().and_then(|exit| l.exit(exit)) {
            Some(target) => self.enter(target),
            None => Ok(()),
        }
    }

    /// Every action checked against the state; None when any is refused.
    fn check_actions(&self, l: &LlmState, actions: &[LlmAction]) -> Option<Checked> {
        let mut checked = Checked::default();
        for action in actions {
            match action {
                LlmAction::SetSlot { slot, value } if l.offers(LlmTool::SetSlot) => {
                    let ty = l.slot_type(slot)?;
                    let value = normalize_slot(ty, value, &self.llm_slot_rules()).ok()?;
                    checked.slots.push((slot.clone(), value));
                }
                LlmAction::Goto { exit } if l.offers(LlmTool::Goto) => {
                    if checked.goto.is_some() || l.exit(exit).is_none() {
                        return None;
                    }
                    checked.goto = Some(exit.clone());
                }
                LlmAction::Handoff { reason } if l.offers(LlmTool::Handoff) => {
                    checked.handoff = Some(reason.clone());
                }
                _ => return None,
            }
        }
        if checked.goto.is_some() && checked.handoff.is_some() {
            return None;
        }
        Some(checked)
    }

    fn llm_slot_rules(&self) -> SlotRules<'f> {
        SlotRules {
            time: self.ctx.time(),
            country_code: self.flow.country_code(),
        }
    }
}

/// The reply's text, trimmed and cut to [`MAX_LLM_REPLY_CHARS`]; None when empty.
fn said_text(reply: &LlmReply) -> Option<String> {
    let text = reply.text.as_deref().map(str::trim).unwrap_or_default();
    (!text.is_empty()).then(|| text.chars().take(MAX_LLM_REPLY_CHARS).collect())
}
