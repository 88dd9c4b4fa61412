//! Conversation repair: commands a customer can give at any waiting state of any flow, whatever
//! the state expects: cancel ("stop", "never mind"), ask for a human ("talk to a person"), and go
//! back to the previous question. On by default; a flow turns them off, all or one by one, with
//! a `repair:` section.
//!
//! Only a whole message counts as a command (politeness words aside): "cancel" cancels, but
//! "I need to cancel my appointment" is an answer for the flow to understand. Detection is pure
//! and deterministic, and it runs before the state's own matching.

use serde::{Deserialize, Serialize};

use super::machine::{FlowStatus, Run, StepError};
use super::matching::normalize;

/// Template said when the customer cancels (a built-in sentence when it is missing).
pub const CANCELLED_TEMPLATE: &str = "repair_cancelled";
/// Said on cancel when no `repair_cancelled` template exists.
pub const CANCELLED_FALLBACK: &str =
    "No problem, I have stopped that. Send a message whenever you want to start again.";
/// Handoff reason recorded when the customer asks for a person.
pub const HUMAN_REASON: &str = "customer asked for a person";

/// A flow's repair settings (`repair:` in YAML); everything is on unless switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Repair {
    /// Master switch.
    pub enabled: bool,
    /// "cancel", "stop", "never mind", ...
    pub cancel: bool,
    /// "talk to a person", "human", "agent", ...
    pub human: bool,
    /// "go back", "back", "previous question", ...
    pub back: bool,
    /// Correcting an earlier answer ("actually my email is …").
    pub correct: bool,
}

impl Default for Repair {
    fn default() -> Self {
        Self {
            enabled: true,
            cancel: true,
            human: true,
            back: true,
            correct: true,
        }
    }
}

impl Repair {
    /// Whether these are the defaults (then the YAML need not mention them).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The command `text` gives, if it is one and the flow allows it.
    pub fn detect(&self, text: &str) -> Option<Command> {
        if !self.enabled {
            return None;
        }
        let command = command_of(text)?;
        let allowed = match command {
            Command::Cancel => self.cancel,
            Command::Human => self.human,
            Command::Back => self.back,
        };
        allowed.then_some(command)
    }
}

/// A repair command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Stop the current flow and forget its answers.
    Cancel,
    /// Hand the conversation to a person.
    Human,
    /// Return to the previous question.
    Back,
}

const CANCEL: &[&str] = &[
    "cancel",
    "cancel that",
    "cancel it",
    "stop",
    "stop it",
    "start over",
    "restart",
    "never mind",
    "nevermind",
    "forget it",
    "quit",
    "abort",
    "exit",
];

const HUMAN: &[&str] = &[
    "human",
    "a human",
    "agent",
    "an agent",
    "person",
    "a person",
    "a real person",
    "real person",
    "someone",
    "representative",
    "operator",
    "customer service",
    "talk to a human",
    "speak to a human",
    "talk to a person",
    "speak to a person",
    "talk to someone",
    "speak to someone",
    "talk to an agent",
    "speak to an agent",
    "talk to a real person",
    "speak to a real person",
    "i want to talk to a human",
    "i want to talk to a person",
    "i want to speak to a human",
    "i want to speak to a person",
    "can i talk to a human",
    "can i talk to a person",
    "can i speak to a human",
    "can i speak to a person",
];

const BACK: &[&str] = &[
    "back",
    "go back",
    "previous",
    "previous question",
    "undo",
    "back up",
];

/// Words that do not change what a command means.
const POLITE: &[&str] = &[
    "please", "pls", "ok", "okay", "just", "actually", "now", "thanks",
];

/// The command a whole message gives, ignoring case, punctuation and politeness words.
pub fn command_of(text: &str) -> Option<Command> {
    let normalized = normalize(text);
    let core: Vec<&str> = normalized
        .split_whitespace()
        .filter(|w| !POLITE.contains(w))
        .collect();
    let core = core.join(" ");
    if core.is_empty() {
        return None;
    }
    [
        (CANCEL, Command::Cancel),
        (HUMAN, Command::Human),
        (BACK, Command::Back),
    ]
    .into_iter()
    .find(|(phrases, _)| phrases.contains(&core.as_str()))
    .map(|(_, command)| command)
}

impl Run<'_> {
    /// Carry out a repair command at the current waiting state.
    pub(super) fn repair(&mut self, command: Command) -> Result<(), StepError> {
        let current = self.state.state.clone();
        match command {
            Command::Cancel => {
                let text = self.render_or(&current, CANCELLED_TEMPLATE, CANCELLED_FALLBACK)?;
                self.push(text, &[]);
                self.state.slots.clear();
                self.state.history.clear();
                self.state.calls.clear();
                self.state.attempts = 0;
                self.state.status = FlowStatus::Ended;
                Ok(())
            }
            Command::Human => self.handoff_now(&current, HUMAN_REASON.to_string()),
            Command::Back => {
                // Drop the current question; the one before it (or, at the first question,
                // this one again) is asked anew and re-recorded when entered.
                if self.state.history.last() == Some(&current) {
                    self.state.history.pop();
                }
                let previous = self.state.history.pop().unwrap_or(current);
                self.enter(&previous)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_messages_are_commands() {
        assert_eq!(command_of("Cancel"), Some(Command::Cancel));
        assert_eq!(command_of("stop!"), Some(Command::Cancel));
        assert_eq!(command_of("Never mind."), Some(Command::Cancel));
        assert_eq!(command_of("please talk to a human"), Some(Command::Human));
        assert_eq!(command_of("Can I speak to a person?"), Some(Command::Human));
        assert_eq!(command_of("go back please"), Some(Command::Back));
        assert_eq!(command_of("BACK"), Some(Command::Back));
    }

    #[test]
    fn sentences_that_merely_contain_a_command_word_are_answers() {
        assert_eq!(command_of("I need to cancel my appointment"), None);
        assert_eq!(command_of("the person who referred me"), None);
        assert_eq!(command_of("my back hurts"), None);
        assert_eq!(command_of("Stopford"), None);
        assert_eq!(command_of(""), None);
        assert_eq!(command_of("please"), None);
    }

    #[test]
    fn flows_can_switch_commands_off() {
        let all = Repair::default();
        assert_eq!(all.detect("cancel"), Some(Command::Cancel));
        let no_cancel = Repair {
            cancel: false,
            ..Repair::default()
        };
        assert_eq!(no_cancel.detect("cancel"), None);
        assert_eq!(no_cancel.detect("human"), Some(Command::Human));
        let off = Repair {
            enabled: false,
            ..Repair::default()
        };
        assert_eq!(off.detect("human"), None);
    }
}
