//! Publish-time rendering check: every prompt a flow can send is rendered once, before any
//! customer sees it, with exactly the slots that are certain to be filled when that prompt is
//! sent, so a template that uses `slots.email` before the email question fails at publish time.
//!
//! Owns `dry_run` and the "definitely filled" analysis. Invariants: pure; the analysis is a
//! forward must-analysis over the flow's transitions (a slot counts only when every path from
//! `start` fills it; `is defined` guards in templates keep optional slots working); every
//! failure is reported with the path of the field whose template failed.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::flow::{Flow, PromptRef, State};
use super::prompts::{digression_key, inline_key, Prompts};
use super::slots::SlotType;
use super::validate::{FlowProblem, Severity};

/// Renders every prompt of `flow` with a sample context; one problem per failing template.
pub fn dry_run(flow: &Flow, prompts: &Prompts) -> Vec<FlowProblem> {
    let filled = definitely_filled(flow);
    let mut problems = Vec::new();
    for (i, (name, state)) in flow.states.iter().enumerate() {
        let slots = sample_slots(flow, &filled[i]);
        let ctx = context(name, state, slots.clone(), false);
        if let Some(prompt) = state.prompt() {
            let (field, key) = match prompt {
                PromptRef::Template(t) => ("say", t.to_string()),
                PromptRef::Inline(_) => ("text", inline_key(&flow.id, name)),
            };
            check(
                prompts,
                &key,
                &ctx,
                format!("states.{name}.{field}"),
                &mut problems,
            );
        }
        let retry = match state {
            State::Choice(c) => Some(c.retry_template()),
            State::Ask(a) => Some(a.retry_template()),
            _ => None,
        };
        if let Some(retry) = retry {
            let ctx = context(name, state, slots, true);
            check(
                prompts,
                retry,
                &ctx,
                format!("states.{name}.retry"),
                &mut problems,
            );
        }
    }
    for (i, d) in flow.digressions.iter().enumerate() {
        let key = match (&d.say, &d.text) {
            (Some(t), _) => t.clone(),
            (None, Some(_)) => digression_key(&flow.id, &d.intent),
            _ => continue,
        };
        let field = if d.say.is_some() { "say" } else { "text" };
        let ctx = json!({
            "business": {"name": "Sample Business", "timezone": "UTC"},
            "slots": {}, "state": "", "options": [], "error": "", "attempt": 0,
        });
        check(
            prompts,
            &key,
            &ctx,
            format!("digressions[{i}].{field}"),
            &mut problems,
        );
    }
    problems
}

fn check(prompts: &Prompts, key: &str, ctx: &Value, path: String, out: &mut Vec<FlowProblem>) {
    if !prompts.has(key) {
        return; // missing templates are reported by validation
    }
    if let Err(e) = prompts.render(key, ctx.clone()) {
        out.push(FlowProblem {
            path,
            message: format!("renders with an error when sent: {e}"),
            severity: Severity::Error,
        });
    }
}

/// Template variables as the machine builds them, with sample business variables.
fn context(name: &str, state: &State, slots: Map<String, Value>, retry: bool) -> Value {
    let options: Vec<Value> = match state {
        State::Choice(c) => c
            .options
            .iter()
            .enumerate()
            .map(|(i, o)| json!({"id": o.id, "label": o.label, "number": i + 1}))
            .collect(),
        _ => Vec::new(),
    };
    json!({
        "business": {"name": "Sample Business", "timezone": "UTC"},
        "slots": slots,
        "state": name,
        "options": options,
        "error": if retry { "That doesn't look right." } else { "" },
        "attempt": u32::from(retry),
    })
}

/// A sample value for each slot in `names`, by the type of the question that fills it.
fn sample_slots(flow: &Flow, names: &BTreeSet<String>) -> Map<String, Value> {
    names
        .iter()
        .map(|slot| (slot.clone(), sample_value(flow, slot)))
        .collect()
}

fn sample_value(flow: &Flow, slot: &str) -> Value {
    for (name, state) in &flow.states {
        match state {
            State::Ask(a) if a.slot == slot => {
                return match a.slot_type {
                    SlotType::Text => json!("Sample"),
                    SlotType::Number => json!(1),
                    SlotType::Email => json!("sample@example.com"),
                    SlotType::Phone => json!("+15550100"),
                    SlotType::Date => json!("2026-01-01"),
                    SlotType::When => json!({
                        "kind": "date", "date": "2026-01-01", "canonical": "date:2026-01-01"
                    }),
                };
            }
            State::Choice(c) if name == slot => {
                return json!(c.options.first().map(|o| o.id.clone()).unwrap_or_default());
            }
            _ => {}
        }
    }
    json!("sample")
}

/// Slots a state has certainly written when it leaves through transition `field` (`all`: every
/// slot of the flow, used after a subflow, whose callee is not known here). An `llm` state's
/// exits count as writing its declared slots: a flow reaching an exit is expected to have them.
fn writes(name: &str, state: &State, field: &str, all: &BTreeSet<String>) -> Vec<String> {
    let on_next = field == "next";
    match state {
        State::Ask(a) if on_next => vec![a.slot.clone()],
        State::Choice(_) if field.starts_with("options[") => vec![name.to_string()],
        State::Set(s) => s.values.iter().map(|(k, _)| k.clone()).collect(),
        State::Http(h) if on_next => h.map.iter().map(|(k, _)| k.clone()).collect(),
        State::Wait(w) if on_next => w.slot.iter().cloned().collect(),
        State::Llm(l) if field.starts_with("exits.") => {
            l.slots.iter().map(|(k, _)| k.clone()).collect()
        }
        State::Subflow(_) => all.iter().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Every slot any state of the flow writes.
fn all_slots(flow: &Flow) -> BTreeSet<String> {
    let none = BTreeSet::new();
    flow.states
        .iter()
        .flat_map(|(name, s)| {
            s.transitions()
                .into_iter()
                .flat_map(|(field, _)| writes(name, s, &field, &none))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// For each state (by position), the slots filled on every path from `start` when it is entered.
fn definitely_filled(flow: &Flow) -> Vec<BTreeSet<String>> {
    let n = flow.states.len();
    let all = all_slots(flow);
    // Unvisited states start at "everything" (the top of the lattice) and only shrink.
    let mut filled: Vec<Option<BTreeSet<String>>> = vec![None; n];
    let Some(start) = flow.position(&flow.start) else {
        return vec![BTreeSet::new(); n];
    };
    filled[start] = Some(flow.inputs.iter().cloned().collect());
    let mut work = vec![start];
    while let Some(i) = work.pop() {
        let Some((name, state)) = flow.states.get(i) else {
            continue;
        };
        let entered = filled[i].clone().unwrap_or_default();
        for (field, target) in state.transitions() {
            let Some(j) = flow.position(target) else {
                continue;
            };
            let mut out = entered.clone();
            out.extend(writes(name, state, &field, &all));
            let next = match &filled[j] {
                None => out.clone(),
                Some(known) => known.intersection(&out).cloned().collect(),
            };
            if filled[j].as_ref() != Some(&next) {
                filled[j] = Some(next);
                work.push(j);
            }
        }
    }
    filled
        .into_iter()
        .map(|f| f.unwrap_or_else(|| all.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::flow::parse_flow;

    fn prompts(flow: &Flow) -> Prompts {
        Prompts::new()
            .with_override("ask_retry", "Try again: {{ error }}")
            .unwrap()
            .with_flow_texts(flow)
            .unwrap()
    }

    #[test]
    fn a_slot_used_before_its_question_fails_at_publish() {
        let flow = parse_flow(
            "id: f\nname: F\nstart: hi\nstates:\n  hi:\n    kind: message\n    text: Hi {{ slots.email }}\n    next: email\n  \
             email:\n    kind: ask\n    slot: email\n    type: email\n    text: Email?\n    next: bye\n  \
             bye:\n    kind: end\n    text: \"Bye {{ slots.email }}{% if slots.name is defined %} {{ slots.name }}{% endif %}\"\n",
        )
        .unwrap();
        let problems = dry_run(&flow, &prompts(&flow));
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["states.hi.text"], "{problems:?}");
    }

    #[test]
    fn a_slot_filled_on_only_one_branch_is_not_certain() {
        let flow = parse_flow(
            "id: f\nname: F\nstart: c\nstates:\n  c:\n    kind: choice\n    text: Pick\n    retry: ask_retry\n    options:\n      \
             - {id: a, label: A, next: n}\n      - {id: b, label: B, next: done}\n  \
             n:\n    kind: ask\n    slot: name\n    text: Name?\n    next: done\n  \
             done:\n    kind: end\n    text: \"{{ slots.c }} {{ slots.name }}\"\n",
        )
        .unwrap();
        let problems = dry_run(&flow, &prompts(&flow));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "states.done.text");
    }
}
