//! Flow model and YAML parsing.
//!
//! Owns the data types a conversational flow is made of (`Flow`, `State` and
//! the per-kind state structs) and `parse_flow`, which turns YAML into a
//! `Flow`. Invariants:
//! - `Flow::states` keeps the YAML order, so every later report is
//!   deterministic; duplicate state names are rejected at parse time.
//! - Unknown fields are rejected (`deny_unknown_fields`) so typos surface as
//!   parse errors with a line and column instead of being silently ignored.
//! - Parsing checks shape only; cross-references are checked by `validate`.
//!
//! The `http`, `wait`, `subflow` and `llm` kinds live in `flow_kinds`; every kind is described
//! for flow authors in `docs/flows.md`.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::flow_kinds::{HttpMethod, HttpState, LlmState, LlmTool, SubflowState, WaitState};
use super::repair::Repair;
use super::slots::SlotType;

/// Attempts allowed at a `choice` or `ask` state when `max_attempts` is unset.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Retry template used by `choice` states without `retry`.
pub const DEFAULT_CHOICE_RETRY: &str = "choice_retry";
/// Retry template used by `ask` states without `retry`.
pub const DEFAULT_ASK_RETRY: &str = "ask_retry";
/// Calling code assumed for national phone numbers when `country_code` is unset.
pub const DEFAULT_COUNTRY_CODE: &str = "1";

/// A whole conversational flow, as loaded from one YAML file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Machine identifier, `[a-z0-9_]+`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Name of the state a new conversation enters.
    pub start: String,
    /// States in YAML order.
    #[serde(deserialize_with = "de_states", serialize_with = "ser_states")]
    pub states: Vec<(String, State)>,
    /// Global repair commands (cancel, ask for a person, go back, correct an answer); all on by
    /// default.
    #[serde(default, skip_serializing_if = "Repair::is_default")]
    pub repair: Repair,
    /// Example utterances per intent, for the embedded classifier (and the LLM's intent list).
    #[serde(default, skip_serializing_if = "Understanding::is_empty")]
    pub understanding: Understanding,
    /// Questions answered (or detours taken) at any waiting state, after which the flow resumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digressions: Vec<Digression>,
    /// Whether dates, emails and phone numbers a customer gives unprompted fill the flow's empty
    /// `ask` slots of that type (those questions are then skipped). On by default.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub prefill: bool,
    /// Slots a calling flow provides when this one runs as a subflow; its prompts may use them
    /// without an `is defined` guard (the publish-time rendering check assumes them filled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The flow's `understanding:` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Understanding {
    /// Intent name → example utterances (a handful each), in YAML order.
    #[serde(
        default,
        deserialize_with = "de_intents",
        serialize_with = "ser_intents",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub intents: Vec<(String, Vec<String>)>,
    /// Confidence under which an intent counts as not understood (out of scope); the model's
    /// calibrated threshold when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// Which engine reads free text: `auto` (the LLM when the tenant has one, else the embedded
    /// NLU), `nlu` (never the LLM) or `llm`.
    #[serde(default, skip_serializing_if = "Engine::is_auto")]
    pub engine: Engine,
}

impl Understanding {
    /// Whether nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.intents.is_empty() && self.threshold.is_none() && self.engine.is_auto()
    }

    /// Whether the flow names `intent`.
    pub fn has_intent(&self, intent: &str) -> bool {
        self.intents.iter().any(|(name, _)| name == intent)
    }
}

/// The engine a flow reads free text with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// The tenant's LLM when configured and healthy, else the embedded NLU.
    #[default]
    Auto,
    /// The embedded NLU only.
    Nlu,
    /// The LLM, falling back to the embedded NLU when it is unavailable.
    Llm,
}

impl Engine {
    fn is_auto(&self) -> bool {
        *self == Engine::Auto
    }
}

/// A question the customer may ask in the middle of anything (`digressions:`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Digression {
    /// The intent that triggers it.
    pub intent: String,
    /// Template answering it (then the current question is asked again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Inline answer template; use it or `say`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Leave the current state for this one instead of resuming (e.g. an emergency handoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl Flow {
    /// Looks a state up by name.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// Calling code for national phone numbers found in free text: the first phone question's.
    pub fn country_code(&self) -> &str {
        self.states
            .iter()
            .find_map(|(_, s)| match s {
                State::Ask(a) if a.slot_type == SlotType::Phone => Some(a.calling_code()),
                _ => None,
            })
            .unwrap_or(DEFAULT_COUNTRY_CODE)
    }

    /// Position of a state in YAML order.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|(n, _)| n == name)
    }
}

/// One state of a flow; the YAML `kind` field selects the variant.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum State {
    /// Says something and moves on at once.
    Message(MessageState),
    /// Offers options and waits for the customer to pick one.
    Choice(ChoiceState),
    /// Asks for one slot value and waits for a valid answer.
    Ask(AskState),
    /// Hands the conversation to a person.
    Handoff(HandoffState),
    /// Ends the conversation.
    End(EndState),
    /// Chooses the next state by intent, entity or condition, at once.
    Route(RouteState),
    /// Assigns variables (slots) from expressions and moves on.
    Set(SetState),
    /// Calls a business webhook and maps its JSON reply into slots.
    Http(HttpState),
    /// Waits for a reply or a timeout.
    Wait(WaitState),
    /// Calls another flow and returns when it ends.
    Subflow(SubflowState),
    /// Lets the tenant's LLM answer, acting only through allowed tools.
    Llm(LlmState),
}

/// Where a state's prompt text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptRef<'a> {
    /// A named template (`say:`).
    Template(&'a str),
    /// Inline template source (`text:`).
    Inline(&'a str),
}

impl State {
    /// The YAML `kind` of this state.
    pub fn kind_name(&self) -> &'static str {
        match self {
            State::Message(_) => "message",
            State::Choice(_) => "choice",
            State::Ask(_) => "ask",
            State::Handoff(_) => "handoff",
            State::End(_) => "end",
            State::Route(_) => "route",
            State::Set(_) => "set",
            State::Http(_) => "http",
            State::Wait(_) => "wait",
            State::Subflow(_) => "subflow",
            State::Llm(_) => "llm",
        }
    }

    /// The raw `(say, text)` pair.
    pub fn prompt_fields(&self) -> (Option<&str>, Option<&str>) {
        let (say, text) = match self {
            State::Message(s) => (&s.say, &s.text),
            State::Choice(s) => (&s.say, &s.text),
            State::Ask(s) => (&s.say, &s.text),
            State::Handoff(s) => (&s.say, &s.text),
            State::End(s) => (&s.say, &s.text),
            State::Route(s) => (&s.say, &s.text),
            State::Http(s) => (&s.say, &s.text),
            State::Wait(s) => (&s.say, &s.text),
            // An llm state's `text` is its system prompt, never said.
            State::Set(_) | State::Subflow(_) | State::Llm(_) => return (None, None),
        };
        (say.as_deref(), text.as_deref())
    }

    /// The prompt to show on entry; `say` wins when (invalidly) both are set.
    pub fn prompt(&self) -> Option<PromptRef<'_>> {
        match self.prompt_fields() {
            (Some(name), _) => Some(PromptRef::Template(name)),
            (None, Some(src)) => Some(PromptRef::Inline(src)),
            (None, None) => None,
        }
    }

    /// Whether this kind must have a prompt (`say` or `text`).
    pub fn needs_prompt(&self) -> bool {
        matches!(self, State::Message(_) | State::Choice(_) | State::Ask(_))
    }

    /// Whether the state stops and waits for customer input.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            State::Choice(_) | State::Ask(_) | State::Wait(_) | State::Llm(_)
        )
    }

    /// Every outgoing transition as `(field path, target state)`.
    pub fn transitions(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        match self {
            State::Message(s) => out.push(("next".to_string(), s.next.as_str())),
            State::Choice(s) => {
                for (i, opt) in s.options.iter().enumerate() {
                    out.push((format!("options[{i}].next"), opt.next.as_str()));
                }
                if let Some(t) = &s.on_fail {
                    out.push(("on_fail".to_string(), t.as_str()));
                }
            }
            State::Ask(s) => {
                out.push(("next".to_string(), s.next.as_str()));
                if let Some(t) = &s.on_fail {
                    out.push(("on_fail".to_string(), t.as_str()));
                }
            }
            State::Route(s) => {
                for (i, route) in s.routes.iter().enumerate() {
                    out.push((format!("routes[{i}].to"), route.to.as_str()));
                }
                out.push(("default".to_string(), s.default.as_str()));
            }
            State::Set(s) => out.push(("next".to_string(), s.next.as_str())),
            State::Http(s) => {
                out.push(("next".to_string(), s.next.as_str()));
                if let Some(t) = &s.on_error {
                    out.push(("on_error".to_string(), t.as_str()));
                }
            }
            State::Wait(s) => {
                out.push(("next".to_string(), s.next.as_str()));
                out.push(("on_timeout".to_string(), s.on_timeout.as_str()));
            }
            State::Subflow(s) => out.push(("next".to_string(), s.next.as_str())),
            State::Llm(s) => {
                for (id, target) in &s.exits {
                    out.push((format!("exits.{id}"), target.as_str()));
                }
                if let Some(t) = &s.on_fail {
                    out.push(("on_fail".to_string(), t.as_str()));
                }
                out.push(("fallback".to_string(), s.fallback.as_str()));
            }
            State::Handoff(_) | State::End(_) => {}
        }
        out
    }
}

/// `kind: message`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MessageState {
    /// Prompt template sent on entry (`say:`, a file in `prompts/` without `.j2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Inline template source sent on entry (`text:`); use it or `say`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// State entered right after the message is sent.
    pub next: String,
}

/// One selectable option of a `choice` state.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// Identifier stored as the choice's slot value; also matched as typed.
    pub id: String,
    /// Button text, also matched against the customer's reply.
    pub label: String,
    /// State entered when this option is picked.
    pub next: String,
    /// Extra phrases that also select this option.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub synonyms: Vec<String>,
    /// An intent (of the flow's `understanding:`) that selects this option when no label,
    /// number or synonym matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
}

/// `kind: choice`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceState {
    /// Prompt template sent on entry (`say:`, a file in `prompts/` without `.j2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Inline template source sent on entry (`text:`); use it or `say`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Options offered, in display order (numbered from 1).
    #[serde(default)]
    pub options: Vec<ChoiceOption>,
    /// Template sent after an unmatched reply; defaults to `choice_retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
    /// Failed replies after which the state gives up; defaults to 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// State entered when attempts run out; without it, a handoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_fail: Option<String>,
}

impl ChoiceState {
    /// The retry template name in force.
    pub fn retry_template(&self) -> &str {
        self.retry.as_deref().unwrap_or(DEFAULT_CHOICE_RETRY)
    }

    /// The attempt limit in force.
    pub fn attempt_limit(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }
}

/// `kind: ask`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AskState {
    /// Slot name the normalised answer is stored under.
    pub slot: String,
    /// Kind of value expected (YAML `type`); defaults to free text.
    #[serde(rename = "type", default)]
    pub slot_type: SlotType,
    /// Prompt template sent on entry (`say:`, a file in `prompts/` without `.j2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Inline template source sent on entry (`text:`); use it or `say`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Template sent after an invalid answer; defaults to `ask_retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
    /// Failed answers after which the state gives up; defaults to 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// State entered when attempts run out; without it, a handoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_fail: Option<String>,
    /// Calling code for national phone numbers (`type: phone` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// Whether the flow's digressions are answered at this question (on by default); off when
    /// any text, questions included, is the answer (e.g. "what would you like to ask us?").
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub digressions: bool,
    /// State entered after a valid answer.
    pub next: String,
}

impl AskState {
    /// The retry template name in force.
    pub fn retry_template(&self) -> &str {
        self.retry.as_deref().unwrap_or(DEFAULT_ASK_RETRY)
    }

    /// The attempt limit in force.
    pub fn attempt_limit(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }

    /// The calling code in force for phone slots.
    pub fn calling_code(&self) -> &str {
        self.country_code.as_deref().unwrap_or(DEFAULT_COUNTRY_CODE)
    }
}

/// `kind: handoff`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffState {
    /// Prompt template sent on entry (`say:`, a file in `prompts/` without `.j2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Inline template source sent on entry (`text:`); use it or `say`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Reason reported to the gateway; defaults to the state name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Team (key) the conversation is routed to; the tenant's triage queue when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// How the team's agent is chosen (the team's own strategy when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<crate::routing::Strategy>,
    /// Skills the agent must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<String>,
    /// Queue priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<crate::routing::Priority>,
    /// Understanding confidence under which the conversation goes to triage instead of `team`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f32>,
}

/// `kind: end`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndState {
    /// Prompt template sent on entry (`say:`, a file in `prompts/` without `.j2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Inline template source sent on entry (`text:`); use it or `say`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `kind: route`: the first rule whose conditions all hold wins, else `default`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteState {
    /// Optional prompt sent on entry before routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Inline prompt sent on entry before routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Rules in order.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// State entered when no rule holds.
    pub default: String,
}

/// One rule of a `route` state; every condition given must hold.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The understood intent of the customer's latest message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// Confidence the intent needs (default: the flow's threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f32>,
    /// An entity kind the latest message must contain: `when`, `email`, `phone` or `number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// A minijinja expression over `slots`, `intent`, `confidence`, `entities`, `language` and
    /// the business variables, e.g. `slots.date is defined and intent != "emergency"` or
    /// `language == "es"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// State entered when the rule holds.
    pub to: String,
}

/// `kind: set`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetState {
    /// Slot name → minijinja expression, evaluated in order (later ones see earlier results).
    #[serde(deserialize_with = "de_pairs", serialize_with = "ser_pairs")]
    pub values: Vec<(String, String)>,
    /// State entered afterwards.
    pub next: String,
}

/// Why a flow's YAML could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowParseError {
    /// The YAML is malformed or does not fit the model, at a known place.
    #[error("invalid flow YAML at line {line}, column {column}: {message}")]
    At {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong, prefixed with the offending path when known.
        message: String,
    },
    /// The YAML is malformed or does not fit the model.
    #[error("invalid flow YAML: {message}")]
    Whole {
        /// What is wrong, prefixed with the offending path when known.
        message: String,
    },
}

/// Parses a flow from YAML. Checks shape only; run `validate` afterwards.
pub fn parse_flow(yaml: &str) -> Result<Flow, FlowParseError> {
    serde_yaml::from_str(yaml).map_err(|e| parse_error(&e))
}

fn parse_error(e: &serde_yaml::Error) -> FlowParseError {
    let full = strip_location(&e.to_string());
    // A state error already carries its full path; drop serde_yaml's outer one.
    let message = match full.strip_prefix("states: ") {
        Some(rest) if rest.starts_with("states.") => rest.to_string(),
        _ => full,
    };
    match e.location() {
        Some(loc) => FlowParseError::At {
            line: loc.line(),
            column: loc.column(),
            message,
        },
        None => FlowParseError::Whole { message },
    }
}

/// `states.<name>: <problem>`, keeping a more precise inner path if any.
fn state_message(name: &str, inner: &str) -> String {
    let inner = strip_location(inner);
    let own = format!("states.{name}");
    if inner.starts_with(&own) {
        inner
    } else {
        format!("{own}: {inner}")
    }
}

/// Drops serde_yaml's own " at line N column M" so it is not said twice.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => {
            let rest = &message[i + " at line ".len()..];
            let tail = rest
                .find(|c: char| !(c.is_ascii_digit() || c == ' ' || c.is_ascii_alphabetic()))
                .map_or("", |j| &rest[j..]);
            format!("{}{}", &message[..i], tail)
        }
        None => message.to_string(),
    }
}

fn de_states<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, State)>, D::Error> {
    d.deserialize_map(StatesVisitor)
}

struct StatesVisitor;

impl<'de> Visitor<'de> for StatesVisitor {
    type Value = Vec<(String, State)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping from state names to states")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(String, State)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            if out.iter().any(|(n, _)| *n == name) {
                return Err(de::Error::custom(format!("duplicate state \"{name}\"")));
            }
            let state = map
                .next_value::<State>()
                .map_err(|e| de::Error::custom(state_message(&name, &e.to_string())))?;
            out.push((name, state));
        }
        Ok(out)
    }
}

fn de_intents<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, Vec<String>)>, D::Error> {
    d.deserialize_map(PairsVisitor::<Vec<String>>(std::marker::PhantomData))
}

/// An ordered mapping with unique keys, as `(key, value)` pairs in YAML order.
pub(super) fn de_pairs<'de, D, V>(d: D) -> Result<Vec<(String, V)>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    d.deserialize_map(PairsVisitor::<V>(std::marker::PhantomData))
}

fn ser_intents<S: Serializer>(pairs: &[(String, Vec<String>)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

/// Serialises `(key, value)` pairs as a mapping, in order.
pub(super) fn ser_pairs<S: Serializer, V: Serialize>(
    pairs: &[(String, V)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

/// An ordered mapping with unique keys.
struct PairsVisitor<V>(std::marker::PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<V> {
    type Value = Vec<(String, V)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping with unique keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(String, V)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key \"{key}\"")));
            }
            out.push((key, map.next_value::<V>()?));
        }
        Ok(out)
    }
}

fn ser_states<S: Serializer>(states: &[(String, State)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(states.iter().map(|(k, v)| (k, v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_suffix_is_removed_once() {
        assert_eq!(strip_location("bad thing at line 3 column 7"), "bad thing");
        assert_eq!(
            strip_location("bad at line 3 column 7, while parsing"),
            "bad, while parsing"
        );
        assert_eq!(strip_location("no location"), "no location");
    }

    #[test]
    fn state_message_keeps_precise_paths() {
        assert_eq!(
            state_message("a", "unknown field `x`"),
            "states.a: unknown field `x`"
        );
        assert_eq!(
            state_message("a", "states.a.kind: bad"),
            "states.a.kind: bad"
        );
    }

    #[test]
    fn transitions_and_prompts() {
        let flow = parse_flow(
            "id: f\nname: F\nstart: c\nstates:\n  c:\n    kind: choice\n    text: hi\n    \
             on_fail: e\n    options: [{id: a, label: A, next: e}]\n  e: {kind: end}\n",
        )
        .unwrap();
        let c = flow.state("c").unwrap();
        let targets: Vec<(String, &str)> = c.transitions();
        assert_eq!(
            targets,
            [("options[0].next".into(), "e"), ("on_fail".into(), "e")]
        );
        assert_eq!(c.prompt(), Some(PromptRef::Inline("hi")));
        assert!(c.is_waiting() && c.needs_prompt());
        let e = flow.state("e").unwrap();
        assert_eq!(e.prompt(), None);
        assert!(!e.needs_prompt() && e.transitions().is_empty());
        assert_eq!(flow.position("e"), Some(1));
    }
}
