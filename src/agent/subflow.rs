//! `subflow` states: one flow calling another and returning when the called flow ends.
//!
//! Owns [`Callees`] (the compiled flows a step may call, resolved by the caller so `step` stays
//! pure), calling and returning inside a step, and [`check_calls`], the checks that need the
//! called flows (unknown keys, cycles, nesting). Invariants:
//! - `FlowState::calls` is the call stack, outermost first; the state named by
//!   `FlowState::state` belongs to the innermost called flow (the conversation's own flow when
//!   the stack is empty);
//! - at most [`MAX_CALL_DEPTH`] calls are in progress; a flow never calls itself, directly or
//!   through others (rejected when checked, handed over if it happens at run time);
//! - slots are shared: a called flow sees the caller's slots and the caller sees what it
//!   collected; "go back" history is per call (saved on call, restored on return);
//! - a called flow's `end` says its message and returns to the caller's `next`; only an `end`
//!   of the conversation's own flow ends the conversation.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::flow::{Flow, State, SubflowState};
use super::machine::{Call, FlowState, Run, StepError};
use super::registry::CompiledFlow;
use super::validate::{FlowProblem, Severity};

/// Most subflow calls in progress at once.
pub const MAX_CALL_DEPTH: usize = 4;

/// The compiled flows `subflow` states may call, by key.
#[derive(Debug, Clone, Default)]
pub struct Callees {
    flows: BTreeMap<String, Arc<CompiledFlow>>,
}

impl Callees {
    /// No callable flows.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the flow stored under its key.
    pub fn insert(&mut self, compiled: Arc<CompiledFlow>) {
        self.flows.insert(compiled.key.clone(), compiled);
    }

    /// The same set with `compiled` added.
    pub fn with(mut self, compiled: Arc<CompiledFlow>) -> Self {
        self.insert(compiled);
        self
    }

    /// The flow stored under `key`.
    pub fn get(&self, key: &str) -> Option<&CompiledFlow> {
        self.flows.get(key).map(Arc::as_ref)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.flows.contains_key(key)
    }

    /// Whether no flow is present.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The compiled flow `state` is running: the innermost call's, else `root`.
    pub fn active<'a>(&'a self, root: &'a CompiledFlow, state: &FlowState) -> &'a CompiledFlow {
        state
            .calls
            .last()
            .and_then(|call| self.get(&call.flow))
            .unwrap_or(root)
    }
}

/// Keys of the flows `flow`'s `subflow` states call, in YAML order, without repeats.
pub fn called_keys(flow: &Flow) -> Vec<&str> {
    let mut keys: Vec<&str> = Vec::new();
    for (_, state) in &flow.states {
        if let State::Subflow(s) = state {
            if !keys.contains(&s.flow.as_str()) {
                keys.push(&s.flow);
            }
        }
    }
    keys
}

impl<'f> Run<'f> {
    /// Points the run at the flow `state.calls` says is running (the root when none, or when
    /// the called flow is not available).
    pub(super) fn select_active_flow(&mut self) {
        let callee = self
            .state
            .calls
            .last()
            .and_then(|call| self.ctx.callees?.get(&call.flow));
        match callee {
            Some(c) => {
                self.flow = &c.flow;
                self.prompts = &c.prompts;
            }
            None => {
                self.flow = self.root;
                self.prompts = self.ctx.prompts;
            }
        }
    }

    /// Enters a `subflow` state: pushes the call and gives the called flow's start state.
    pub(super) fn call(
        &mut self,
        name: &'f str,
        s: &'f SubflowState,
    ) -> Result<Option<(&'f str, &'f State)>, StepError> {
        let recursive =
            s.flow == self.root.id || self.state.calls.iter().any(|call| call.flow == s.flow);
        let refusal = if self.state.calls.len() >= MAX_CALL_DEPTH {
            Some(format!(
                "subflow calls nest deeper than {MAX_CALL_DEPTH} at \"{name}\""
            ))
        } else if recursive {
            Some(format!("flow \"{}\" is already running", s.flow))
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.handoff_now(name, reason)?;
            return Ok(None);
        }
        let Some(callee) = self.ctx.callees.and_then(|c| c.get(&s.flow)) else {
            let reason = format!("flow \"{}\" called at \"{name}\" is not available", s.flow);
            self.handoff_now(name, reason)?;
            return Ok(None);
        };
        let history = std::mem::take(&mut self.state.history);
        self.state.calls.push(Call {
            flow: s.flow.clone(),
            version: callee.version,
            from: name.to_string(),
            history,
        });
        self.flow = &callee.flow;
        self.prompts = &callee.prompts;
        self.lookup(&callee.flow.start).map(Some)
    }

    /// Leaves the innermost called flow (its `end` was entered): back to the caller's `next`.
    pub(super) fn return_from_call(&mut self) -> Result<Option<(&'f str, &'f State)>, StepError> {
        let Some(call) = self.state.calls.pop() else {
            return Ok(None);
        };
        self.state.history = call.history;
        self.select_active_flow();
        match self.lookup(&call.from)? {
            (_, State::Subflow(s)) => self.lookup(&s.next).map(Some),
            (_, other) => Err(StepError::NotWaiting {
                state: call.from.clone(),
                kind: other.kind_name(),
            }),
        }
    }
}

/// Problems of `flow`'s calls that need the called flows: unknown keys, cycles and nesting
/// deeper than [`MAX_CALL_DEPTH`]. `resolve(key)` gives the flow a key runs (the tenant's
/// published one, else the built-in); `flow` itself is used for its own key.
pub fn check_calls(flow: &Flow, resolve: &dyn Fn(&str) -> Option<Flow>) -> Vec<FlowProblem> {
    let mut problems = Vec::new();
    for (name, state) in &flow.states {
        let State::Subflow(s) = state else { continue };
        let path = format!("states.{name}.flow");
        if s.flow == flow.id {
            let message = "a flow cannot call itself".to_string();
            problems.push(error(path, message));
            continue;
        }
        let Some(callee) = resolve(&s.flow) else {
            let message = format!("unknown flow \"{}\" (not published, not built in)", s.flow);
            problems.push(error(path, message));
            continue;
        };
        let mut chain = vec![flow.id.clone(), s.flow.clone()];
        if let Some(message) = walk(&callee, &mut chain, flow, resolve) {
            problems.push(error(path, message));
        }
    }
    problems
}

/// Depth-first over `callee`'s calls; `chain` is the path of keys so far (root first).
fn walk(
    callee: &Flow,
    chain: &mut Vec<String>,
    root: &Flow,
    resolve: &dyn Fn(&str) -> Option<Flow>,
) -> Option<String> {
    for key in called_keys(callee) {
        if chain.iter().any(|k| k == key) {
            return Some(format!("calls loop: {} -> {key}", chain.join(" -> ")));
        }
        if chain.len() > MAX_CALL_DEPTH {
            return Some(format!(
                "calls nest deeper than {MAX_CALL_DEPTH}: {} -> {key}",
                chain.join(" -> ")
            ));
        }
        let next = if key == root.id {
            Some(root.clone())
        } else {
            resolve(key)
        };
        let Some(next) = next else {
            return Some(format!(
                "{} calls unknown flow \"{key}\"",
                chain.last().map_or("", String::as_str)
            ));
        };
        chain.push(key.to_string());
        let found = walk(&next, chain, root, resolve);
        chain.pop();
        if found.is_some() {
            return found;
        }
    }
    None
}

fn error(path: String, message: String) -> FlowProblem {
    FlowProblem {
        path,
        message,
        severity: Severity::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::flow::parse_flow;

    fn flow(id: &str, calls: &[&str]) -> Flow {
        let mut yaml = format!("id: {id}\nname: N\nstart: s0\nstates:\n");
        for (i, key) in calls.iter().enumerate() {
            yaml.push_str(&format!(
                "  s{i}: {{kind: subflow, flow: {key}, next: s{}}}\n",
                i + 1
            ));
        }
        yaml.push_str(&format!("  s{}: {{kind: end}}\n", calls.len()));
        parse_flow(&yaml).unwrap()
    }

    #[test]
    fn unknown_self_and_looping_calls_are_reported_at_the_state() {
        let a = flow("a", &["a", "b", "nope", "c"]);
        let b = flow("b", &["a"]);
        let c = flow("c", &[]);
        let resolve = |key: &str| match key {
            "b" => Some(b.clone()),
            "c" => Some(c.clone()),
            _ => None,
        };
        let problems = check_calls(&a, &resolve);
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("states.s0.flow", "a flow cannot call itself"),
                ("states.s1.flow", "calls loop: a -> b -> a"),
                (
                    "states.s2.flow",
                    "unknown flow \"nope\" (not published, not built in)"
                ),
            ]
        );
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_an_error() {
        let chain: Vec<Flow> = (0..6)
            .map(|i| {
                let next = format!("f{}", i + 1);
                if i < 5 {
                    flow(&format!("f{i}"), &[next.as_str()])
                } else {
                    flow(&format!("f{i}"), &[])
                }
            })
            .collect();
        let resolve = |key: &str| chain.iter().find(|f| f.id == key).cloned();
        assert!(
            check_calls(&chain[2], &resolve).is_empty(),
            "f2..f5: 3 deep"
        );
        let problems = check_calls(&chain[0], &resolve);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("calls nest deeper than 4"));
    }
}
