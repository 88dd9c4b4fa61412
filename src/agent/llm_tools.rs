//! The fixed, server-side tool catalogue of `llm` states: the tool definitions a request offers
//! (built from the state's allow-list, slot names and exit ids) and the translation of calls the
//! guard accepted into [`LlmAction`]s.
//!
//! Invariants: a request offers only the tools its state lists, and each schema's enums list
//! only that state's slot names and exit ids, so [`crate::llm::ToolGuard`] refuses anything
//! else before it reaches `step` (which checks again and runs the slot normalisers); string
//! arguments are bounded; translation is pure and never panics on odd arguments.

use serde_json::{json, Map, Value};

use super::effect::{LlmAction, LlmRequest};
use super::flow::LlmTool;
use crate::llm::{ToolSpec, ValidatedCall};

/// Longest value `set_slot` may propose, in characters.
pub const MAX_VALUE_CHARS: u64 = 500;
/// Longest handoff reason, in characters.
pub const MAX_REASON_CHARS: u64 = 200;

/// The tool definitions `request` offers, in the order of the state's `tools`.
pub fn tool_specs(request: &LlmRequest) -> Vec<ToolSpec> {
    request
        .tools
        .iter()
        .map(|tool| match tool {
            LlmTool::SetSlot => ToolSpec {
                name: tool.name().into(),
                description: "Record a detail the customer gave.".into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "slot": {"type": "string", "enum": names(request.slots.iter().map(|(n, _)| n))},
                        "value": {"type": "string", "minLength": 1, "maxLength": MAX_VALUE_CHARS}
                    },
                    "required": ["slot", "value"],
                    "additionalProperties": false
                }),
            },
            LlmTool::Goto => ToolSpec {
                name: tool.name().into(),
                description: "Move the conversation on to one of the allowed next steps.".into(),
                parameters: json!({
                    "type": "object",
                    "properties": {"exit": {"type": "string", "enum": names(request.exits.iter())}},
                    "required": ["exit"],
                    "additionalProperties": false
                }),
            },
            LlmTool::Handoff => ToolSpec {
                name: tool.name().into(),
                description: "Hand the conversation to a member of staff.".into(),
                parameters: json!({
                    "type": "object",
                    "properties": {"reason": {"type": "string", "maxLength": MAX_REASON_CHARS}},
                    "additionalProperties": false
                }),
            },
        })
        .collect()
}

fn names<'a>(items: impl Iterator<Item = &'a String>) -> Vec<Value> {
    items.map(|n| Value::String(n.clone())).collect()
}

/// The actions accepted calls ask for, in order; an error names a call that fits no tool.
pub fn actions(calls: &[ValidatedCall]) -> Result<Vec<LlmAction>, String> {
    calls.iter().map(action).collect()
}

fn action(call: &ValidatedCall) -> Result<LlmAction, String> {
    let text = |args: &Map<String, Value>, key: &str| {
        args.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("{} without `{key}`", call.name))
    };
    match call.name.as_str() {
        "set_slot" => Ok(LlmAction::SetSlot {
            slot: text(&call.arguments, "slot")?,
            value: text(&call.arguments, "value")?,
        }),
        "goto" => Ok(LlmAction::Goto {
            exit: text(&call.arguments, "exit")?,
        }),
        "handoff" => Ok(LlmAction::Handoff {
            reason: text(&call.arguments, "reason").unwrap_or_default(),
        }),
        other => Err(format!("unknown tool {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::slots::SlotType;
    use crate::llm::{ToolCall, ToolGuard};

    fn request(tools: Vec<LlmTool>) -> LlmRequest {
        LlmRequest {
            state: "helper".into(),
            system: "s".into(),
            user: "u".into(),
            tools,
            slots: vec![("email".into(), SlotType::Email)],
            exits: vec!["book".into()],
        }
    }

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            arguments,
        }
    }

    #[test]
    fn the_guard_built_from_the_specs_allows_only_the_states_slots_and_exits() {
        let specs = tool_specs(&request(vec![LlmTool::SetSlot, LlmTool::Goto]));
        let guard = ToolGuard::new(&specs).unwrap();
        let report = guard.check_all(&[
            call("set_slot", json!({"slot": "email", "value": "a@b.co"})),
            call("set_slot", json!({"slot": "is_admin", "value": "yes"})),
            call("goto", json!({"exit": "free_stuff"})),
            call("handoff", json!({})),
        ]);
        assert_eq!(report.accepted.len(), 1);
        assert_eq!(report.rejected.len(), 3);
        assert_eq!(
            actions(&report.accepted).unwrap(),
            [LlmAction::SetSlot {
                slot: "email".into(),
                value: "a@b.co".into()
            }]
        );
    }

    #[test]
    fn a_handoff_without_a_reason_is_still_a_handoff() {
        let specs = tool_specs(&request(vec![LlmTool::Handoff]));
        let guard = ToolGuard::new(&specs).unwrap();
        let report = guard.check_all(&[call("handoff", json!({}))]);
        assert_eq!(
            actions(&report.accepted).unwrap(),
            [LlmAction::Handoff {
                reason: String::new()
            }]
        );
    }
}
