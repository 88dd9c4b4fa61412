//! What a step does with values and questions the customer gives out of turn: prefilling later
//! questions from entities ("tomorrow at 3, my email is ann@x.io"), choosing an option by intent,
//! digressions (a question in the middle of a form is answered, then the form resumes where it
//! was) and corrections ("actually my email is …").
//!
//! Invariants: nothing here runs while a person owns the conversation; a prefilled slot is only
//! ever an empty one, and its question is skipped at most once; a correction needs a correction
//! cue and a slot that is already filled, and is validated exactly like an answer at that
//! slot's own question; after a digression or correction the current question is asked again
//! and its attempt count is unchanged.

use serde_json::{json, Value};

use super::flow::{AskState, ChoiceOption, ChoiceState, Digression, PromptRef, State};
use super::machine::{Extra, Run, StepError};
use super::matching::normalize;
use super::prompts::digression_key;
use super::slots::{normalize_slot, normalize_text, SlotType};

/// Template thanking the customer for a correction (`slot`, `value` are set).
pub const CORRECTED_TEMPLATE: &str = "corrected";
/// Text used when that template is missing.
pub const CORRECTED_FALLBACK: &str = "Thanks, I've updated that.";

/// Words that mark a message as correcting an earlier answer.
const CUES: &[&str] = &[
    "actually",
    "sorry",
    "i meant",
    "i mean",
    "correction",
    "change my",
    "update my",
    "wrong",
    "oops",
    "no wait",
    "should be",
    "not",
    "typo",
];

/// A corrected earlier answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Correction {
    slot: String,
    value: Value,
}

impl<'f> Run<'f> {
    /// Fills empty `ask` slots of the flow from this turn's entities (not `current`'s own slot,
    /// which the answer itself fills).
    pub(super) fn prefill(&mut self, current: Option<&str>) {
        let Some(u) = self.ctx.understanding else {
            return;
        };
        if !self.flow.prefill || u.entities.is_empty() {
            return;
        }
        let flow = self.flow;
        for (name, state) in &flow.states {
            let State::Ask(a) = state else { continue };
            let kind = entity_kind(a.slot_type);
            if Some(name.as_str()) == current
                || kind.is_none()
                || self.state.slots.contains_key(&a.slot)
            {
                continue;
            }
            let Some(entity) = kind.and_then(|k| u.entity(k)) else {
                continue;
            };
            if let Ok(value) = normalize_slot(a.slot_type, &entity.text, &self.slot_rules(a)) {
                self.state.slots.insert(a.slot.clone(), value);
                self.state.prefilled.push(a.slot.clone());
            }
        }
    }

    /// Whether `slot` was prefilled (and still is); consumes the mark.
    pub(super) fn take_prefilled(&mut self, slot: &str) -> bool {
        let Some(i) = self.state.prefilled.iter().position(|s| s == slot) else {
            return false;
        };
        self.state.prefilled.remove(i);
        self.state.slots.contains_key(slot)
    }

    /// The option whose `intent` is this turn's understood intent.
    pub(super) fn option_by_intent(&self, c: &'f ChoiceState) -> Option<&'f ChoiceOption> {
        let intent = self.ctx.understanding?.intent_name()?;
        c.options
            .iter()
            .find(|o| o.intent.as_deref() == Some(intent))
    }

    /// The digression this turn's understood intent triggers, if any.
    pub(super) fn digression(&self) -> Option<&'f Digression> {
        let intent = self.ctx.understanding?.intent_name()?;
        self.flow.digressions.iter().find(|d| d.intent == intent)
    }

    /// Answers a digression and asks the current question again (or leaves for `to`).
    pub(super) fn digress(&mut self, name: &str, d: &'f Digression) -> Result<(), StepError> {
        if let Some(target) = &d.to {
            return self.enter(target);
        }
        let key = digression_key(&self.flow.id, &d.intent);
        let prompt = match (&d.say, &d.text) {
            (Some(template), _) => PromptRef::Template(template),
            (None, Some(_)) => PromptRef::Template(&key),
            (None, None) => return self.reprompt(name),
        };
        let text = self.render(name, prompt, &Extra::default())?;
        self.push(text, &[]);
        self.reprompt(name)
    }

    /// Says the current waiting state's prompt again, with its options.
    pub(super) fn reprompt(&mut self, name: &str) -> Result<(), StepError> {
        let (_, state) = self.lookup(name)?;
        let extra = match state {
            State::Choice(c) => Extra {
                options: &c.options,
                ..Extra::default()
            },
            _ => Extra::default(),
        };
        self.say(name, state, &extra)
    }

    /// A correction of an earlier answer in `text`, if it is one.
    pub(super) fn correction(&self, text: &str) -> Option<Correction> {
        if !self.flow.repair.enabled || !self.flow.repair.correct {
            return None;
        }
        let norm = normalize(text);
        let padded = format!(" {norm} ");
        if !CUES.iter().any(|cue| padded.contains(&format!(" {cue} "))) {
            return None;
        }
        let current_slot = match self.flow.state(&self.state.state) {
            Some(State::Ask(a)) => Some(a.slot.as_str()),
            _ => None,
        };
        self.flow
            .states
            .iter()
            .filter_map(|(_, s)| match s {
                State::Ask(a) => Some(a),
                _ => None,
            })
            .filter(|a| Some(a.slot.as_str()) != current_slot)
            .filter(|a| self.state.slots.contains_key(&a.slot))
            .find_map(|a| self.corrected_value(a, text, &padded))
    }

    fn corrected_value(&self, a: &'f AskState, text: &str, padded: &str) -> Option<Correction> {
        let names = aliases(a);
        let named = names
            .iter()
            .find(|alias| padded.contains(&format!(" {alias} ")));
        let entity = entity_kind(a.slot_type)
            .and_then(|kind| self.ctx.understanding.and_then(|u| u.entity(kind)));
        let value = match (entity, named) {
            (Some(e), _) => normalize_slot(a.slot_type, &e.text, &self.slot_rules(a)).ok()?,
            (None, Some(alias)) => {
                let tail = tail_after(text, alias)?;
                match a.slot_type {
                    SlotType::Text => Value::String(normalize_text(&tail).ok()?),
                    other => normalize_slot(other, &tail, &self.slot_rules(a)).ok()?,
                }
            }
            (None, None) => return None,
        };
        Some(Correction {
            slot: a.slot.clone(),
            value,
        })
    }

    /// Stores a correction, confirms it and asks the current question again.
    pub(super) fn correct(&mut self, c: Correction) -> Result<(), StepError> {
        let current = self.state.state.clone();
        self.state.slots.insert(c.slot.clone(), c.value.clone());
        self.state.prefilled.retain(|s| *s != c.slot);
        let text = if self.prompts.has(CORRECTED_TEMPLATE) {
            let extra = Extra {
                more: Some(json!({"slot": c.slot, "value": c.value})),
                ..Extra::default()
            };
            self.render(&current, PromptRef::Template(CORRECTED_TEMPLATE), &extra)?
        } else {
            CORRECTED_FALLBACK.to_string()
        };
        self.push(text, &[]);
        self.reprompt(&current)
    }
}

/// The entity kind that can fill a slot of type `ty` unprompted.
pub(super) fn entity_kind(ty: SlotType) -> Option<&'static str> {
    match ty {
        SlotType::Email => Some("email"),
        SlotType::Phone => Some("phone"),
        SlotType::Date | SlotType::When => Some("when"),
        SlotType::Text | SlotType::Number => None,
    }
}

/// Words a customer uses for a slot: its name (underscores as spaces) plus its type's words.
fn aliases(a: &AskState) -> Vec<String> {
    let mut out = vec![a.slot.replace('_', " ")];
    let extra: &[&str] = match a.slot_type {
        SlotType::Email => &["email", "e mail", "mail", "email address"],
        SlotType::Phone => &["phone", "number", "phone number", "mobile", "cell"],
        SlotType::Date | SlotType::When => &["date", "day", "time", "appointment"],
        SlotType::Text | SlotType::Number => &[],
    };
    out.extend(extra.iter().map(|s| s.to_string()));
    out
}

/// The words after `alias` and a linking word ("is", "to", "should be", ":"), from the original
/// text (case kept).
fn tail_after(text: &str, alias: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let at = lower.find(alias)? + alias.len();
    let rest = lower.get(at..)?;
    let original = text.get(at..)?;
    let skip = ["is", "should be", "to", "was", "=", ":", "-"]
        .iter()
        .find_map(|link| {
            let trimmed = rest.trim_start();
            trimmed
                .strip_prefix(link)
                .filter(|r| r.is_empty() || !r.starts_with(char::is_alphanumeric))
                .map(|r| rest.len() - r.len())
        })?;
    let value = original.get(skip..)?.trim().trim_end_matches(['.', '!']);
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_after_linking_words() {
        assert_eq!(
            tail_after("Actually my name is Ann Lee.", "name").as_deref(),
            Some("Ann Lee")
        );
        assert_eq!(
            tail_after("change my name to Bob", "name").as_deref(),
            Some("Bob")
        );
        assert_eq!(tail_after("my name isn't right", "name"), None);
        assert_eq!(tail_after("my name", "name"), None);
    }
}
