//! `wait` states inside a step: a timer on entry, any reply taken as it is, and the timeout.
//!
//! Invariants: pure; the timer's token is `FlowState::entries` at the wait's entry, and every
//! state entry changes `entries`, so a timer is current only while the conversation is still
//! at that very entry of the wait state (a reply, "go back", a restart or a handoff all make
//! it stale); a stale timer changes nothing and says nothing.

use serde_json::Value;

use super::effect::WaitTimer;
use super::flow::{State, WaitState};
use super::flow_kinds::MAX_WAIT_SECS;
use super::machine::{FlowStatus, Run, StepError};
use super::slots::MAX_TEXT_CHARS;

impl<'f> Run<'f> {
    /// Sets the timer of the wait state just entered.
    pub(super) fn start_timer(&mut self, name: &str, w: &WaitState) {
        self.timer = Some(WaitTimer {
            state: name.to_string(),
            token: self.state.entries,
            after_secs: w.timeout_secs.clamp(1, MAX_WAIT_SECS),
        });
    }

    /// Takes any reply at a wait state: stored (trimmed) in its slot, then `next`.
    pub(super) fn answer_wait(&mut self, w: &'f WaitState, text: &str) -> Result<(), StepError> {
        if let Some(slot) = &w.slot {
            let reply: String = text.trim().chars().take(MAX_TEXT_CHARS).collect();
            self.state.slots.insert(slot.clone(), Value::String(reply));
        }
        self.enter(&w.next)
    }

    /// Whether a timer with `token` still applies to the conversation.
    pub(super) fn timer_is_current(&self, token: u64) -> bool {
        self.state.started
            && self.state.status == FlowStatus::Active
            && self.state.entries == token
            && matches!(self.flow.state(&self.state.state), Some(State::Wait(_)))
    }

    /// The current wait state's timer fired: go to `on_timeout`.
    pub(super) fn time_out(&mut self) -> Result<(), StepError> {
        match self.lookup(&self.state.state)? {
            (_, State::Wait(w)) => self.enter(&w.on_timeout),
            _ => Ok(()),
        }
    }
}
