//! The flow model's effect and control states: `http` (call a business webhook), `wait` (a reply
//! or a timeout), `subflow` (call another flow and return) and `llm` (a reply written by the
//! tenant's LLM within an allow-list of tools).
//!
//! Owns these kinds' YAML shapes and their defaults and limits. Invariants: like every state,
//! unknown fields are rejected at parse time; mappings keep their YAML order (so `http.body`,
//! `http.map`, `llm.slots` and `llm.exits` evaluate and report deterministically); every limit
//! here is enforced by `validate`, never by panicking at run time.

use serde::{Deserialize, Serialize};

use super::flow::{de_pairs, ser_pairs};
use super::slots::SlotType;

/// Per-attempt webhook timeout when `timeout_ms` is unset.
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 3_000;
/// Largest `timeout_ms` allowed.
pub const MAX_HTTP_TIMEOUT_MS: u64 = 10_000;
/// Retries after the first attempt when `retries` is unset.
pub const DEFAULT_HTTP_RETRIES: u32 = 1;
/// Largest `retries` allowed.
pub const MAX_HTTP_RETRIES: u32 = 3;
/// Longest `timeout_secs` of a `wait` state (30 days).
pub const MAX_WAIT_SECS: u64 = 30 * 24 * 3600;
/// LLM replies at one `llm` state when `max_turns` is unset.
pub const DEFAULT_LLM_TURNS: u32 = 5;
/// Largest `max_turns` allowed.
pub const MAX_LLM_TURNS: u32 = 20;

/// The HTTP method of a webhook call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpMethod {
    /// No body; the values of `body` are not sent.
    #[default]
    #[serde(rename = "GET", alias = "get")]
    Get,
    /// `body` sent as a JSON object.
    #[serde(rename = "POST", alias = "post")]
    Post,
}

impl HttpMethod {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// `kind: http`: calls a business webhook, maps its JSON reply into slots, moves on.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpState {
    /// Optional prompt sent on entry, before the call (e.g. "One moment…").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Inline prompt sent on entry, before the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The webhook URL, a minijinja template; its scheme and host must be literal.
    pub url: String,
    /// `GET` (default) or `POST`.
    #[serde(default)]
    pub method: HttpMethod,
    /// Field name → minijinja expression; the object is sent as the JSON body of a `POST`.
    #[serde(
        default,
        deserialize_with = "de_pairs",
        serialize_with = "ser_pairs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub body: Vec<(String, String)>,
    /// Limit of one attempt in milliseconds (default 3000, at most 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Attempts after the first one on a network error, timeout, 429 or 5xx (default 1, at most 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Slot name → JSON pointer into the reply (`/slots/0/start`); a pointer that matches
    /// nothing leaves the slot unset.
    #[serde(
        default,
        deserialize_with = "de_pairs",
        serialize_with = "ser_pairs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub map: Vec<(String, String)>,
    /// State entered after a successful call.
    pub next: String,
    /// State entered when the call fails; without it, a handoff that names the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<String>,
}

impl HttpState {
    /// The per-attempt timeout in force, in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms.unwrap_or(DEFAULT_HTTP_TIMEOUT_MS)
    }

    /// The retries in force.
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(DEFAULT_HTTP_RETRIES)
    }
}

/// `kind: wait`: says its prompt, then waits for any reply or for the timeout.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WaitState {
    /// Optional prompt sent on entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Inline prompt sent on entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Slot the reply (trimmed text) is stored under, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// Seconds to wait for a reply (1 to 30 days' worth).
    pub timeout_secs: u64,
    /// State entered when no reply came in time.
    pub on_timeout: String,
    /// State entered on a reply.
    pub next: String,
}

/// `kind: subflow`: runs another flow, then continues at `next` once it reaches an `end`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubflowState {
    /// Key of the called flow: the tenant's published flow of that key, else the built-in one.
    pub flow: String,
    /// State entered when the called flow ends.
    pub next: String,
}

/// A tool an `llm` state may offer the model (a fixed, server-side catalogue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmTool {
    /// Store a value in one of the state's `slots`, validated by the slot type's normaliser.
    SetSlot,
    /// Leave through one of the state's `exits`.
    Goto,
    /// Hand the conversation to a person.
    Handoff,
}

impl LlmTool {
    /// The tool's name as the model sees it.
    pub fn name(self) -> &'static str {
        match self {
            LlmTool::SetSlot => "set_slot",
            LlmTool::Goto => "goto",
            LlmTool::Handoff => "handoff",
        }
    }
}

/// `kind: llm`: waits for the customer; each message is answered by the tenant's LLM under the
/// state's prompt, and the model may act only through the state's tools.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LlmState {
    /// System prompt: a template name; use it or `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Inline system prompt (a minijinja template); use it or `prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Tools offered to the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<LlmTool>,
    /// Slot name → type, the slots `set_slot` may fill.
    #[serde(
        default,
        deserialize_with = "de_pairs",
        serialize_with = "ser_pairs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub slots: Vec<(String, SlotType)>,
    /// Exit id → state, the places `goto` may lead.
    #[serde(
        default,
        deserialize_with = "de_pairs",
        serialize_with = "ser_pairs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exits: Vec<(String, String)>,
    /// Customer messages the LLM answers here before `on_fail` (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// State entered when the turns run out; without it, a handoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_fail: Option<String>,
    /// State entered when the LLM cannot answer: none configured, breaker open, quota used up,
    /// a failed call or a refused tool call.
    pub fallback: String,
}

impl LlmState {
    /// The turn limit in force.
    pub fn turn_limit(&self) -> u32 {
        self.max_turns.unwrap_or(DEFAULT_LLM_TURNS)
    }

    /// Whether the state offers `tool`.
    pub fn offers(&self, tool: LlmTool) -> bool {
        self.tools.contains(&tool)
    }

    /// The type of a slot `set_slot` may fill.
    pub fn slot_type(&self, slot: &str) -> Option<SlotType> {
        self.slots.iter().find(|(n, _)| n == slot).map(|(_, t)| *t)
    }

    /// The state an exit leads to.
    pub fn exit(&self, id: &str) -> Option<&str> {
        self.exits
            .iter()
            .find(|(n, _)| n == id)
            .map(|(_, s)| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_defaults_and_methods() {
        let s: HttpState =
            serde_yaml::from_str("url: https://x.test/a\nnext: b\nmap: {a: /x, b: /y}\n").unwrap();
        assert_eq!(
            (s.method, s.timeout_ms(), s.retries()),
            (HttpMethod::Get, 3000, 1)
        );
        assert_eq!(s.map[1], ("b".to_string(), "/y".to_string()));
        let p: HttpState = serde_yaml::from_str("url: u\nmethod: post\nnext: b\n").unwrap();
        assert_eq!(p.method.as_str(), "POST");
        assert!(serde_yaml::from_str::<HttpState>("url: u\nmethod: PUT\nnext: b\n").is_err());
    }

    #[test]
    fn llm_lookups() {
        let s: LlmState = serde_yaml::from_str(
            "text: hi\ntools: [set_slot, goto]\nslots: {email: email}\nexits: {done: end}\nfallback: f\n",
        )
        .unwrap();
        assert!(s.offers(LlmTool::Goto) && !s.offers(LlmTool::Handoff));
        assert_eq!(s.slot_type("email"), Some(SlotType::Email));
        assert_eq!(s.exit("done"), Some("end"));
        assert_eq!(s.exit("nope"), None);
        assert_eq!(s.turn_limit(), DEFAULT_LLM_TURNS);
    }
}
