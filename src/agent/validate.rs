//! Static checks of a parsed flow.
//!
//! Owns `validate`/`check` and `FlowProblem`. Invariants:
//! - Every problem is reported, never just the first, in a deterministic
//!   order (flow fields, then states in YAML order, then loops, then
//!   reachability).
//! - A problem's `path` points at the offending field in YAML terms, e.g.
//!   `states.main_menu.options[2].next`.
//! - Template existence is decided by the caller's callback, so validation
//!   needs no file system; inline `text:` is syntax-checked here.

use std::collections::{BTreeSet, VecDeque};

use serde::Serialize;

use super::expr;
use super::flow::{AskState, ChoiceState, Flow, RouteState, SetState, State};
use super::matching::normalize;
use super::prompts::check_syntax;
use super::slots::SlotType;

/// Entity kinds a `route` rule may require.
pub const ENTITY_KINDS: [&str; 4] = ["when", "email", "phone", "number"];

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The flow cannot run correctly.
    Error,
    /// The flow runs but something is probably a mistake.
    Warning,
}

/// One thing wrong with a flow, displayed as `path: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {message}{}", if *.severity == Severity::Warning { " (warning)" } else { "" })]
pub struct FlowProblem {
    /// The offending field as a YAML path, e.g. `states.main_menu.options[2].next`.
    pub path: String,
    /// What is wrong, in plain words.
    pub message: String,
    /// Whether the flow can still run.
    pub severity: Severity,
}

/// `Ok` when `check` finds nothing at all, else every problem (warnings
/// included; filter on `severity` to tolerate them).
pub fn validate(flow: &Flow, templates: &dyn Fn(&str) -> bool) -> Result<(), Vec<FlowProblem>> {
    let problems = check(flow, templates);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Every problem of `flow`; `templates(name)` says whether a template exists.
pub fn check(flow: &Flow, templates: &dyn Fn(&str) -> bool) -> Vec<FlowProblem> {
    let mut c = Checker {
        flow,
        templates,
        problems: Vec::new(),
    };
    c.check_header();
    c.check_understanding();
    c.check_digressions();
    for (i, (name, state)) in flow.states.iter().enumerate() {
        c.check_name(i, name);
        c.check_state(name, state);
    }
    c.check_loops();
    c.check_reachability();
    c.problems
}

/// Whether `s` matches `[a-z0-9_]+`.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A check in progress (the newer kinds' checks are in `validate_kinds.rs`).
pub(super) struct Checker<'a> {
    pub(super) flow: &'a Flow,
    templates: &'a dyn Fn(&str) -> bool,
    problems: Vec<FlowProblem>,
}

impl Checker<'_> {
    fn push(&mut self, severity: Severity, path: String, message: String) {
        self.problems.push(FlowProblem {
            path,
            message,
            severity,
        });
    }

    pub(super) fn error(&mut self, path: String, message: String) {
        self.push(Severity::Error, path, message);
    }

    pub(super) fn warn(&mut self, path: String, message: String) {
        self.push(Severity::Warning, path, message);
    }

    fn check_header(&mut self) {
        let flow = self.flow;
        if !is_identifier(&flow.id) {
            let msg = format!("flow id \"{}\" must use only a-z, 0-9 and _", flow.id);
            self.error("id".into(), msg);
        }
        if flow.name.trim().is_empty() {
            self.error("name".into(), "flow name must not be empty".into());
        }
        if flow.states.is_empty() {
            self.error("states".into(), "flow has no states".into());
        }
        if flow.state(&flow.start).is_none() {
            self.error("start".into(), format!("unknown state \"{}\"", flow.start));
        }
    }

    fn check_name(&mut self, index: usize, name: &str) {
        let path = format!("states.{name}");
        if self.flow.position(name) != Some(index) {
            self.error(path, format!("duplicate state name \"{name}\""));
        } else if !is_identifier(name) {
            let msg = format!("state name \"{name}\" should use only a-z, 0-9 and _");
            self.warn(path, msg);
        }
    }

    fn check_state(&mut self, name: &str, state: &State) {
        let base = format!("states.{name}");
        self.check_prompt(&base, state);
        for (field, target) in state.transitions() {
            self.check_target(&format!("{base}.{field}"), target);
        }
        match state {
            State::Choice(c) => self.check_choice(&base, c),
            State::Ask(a) => self.check_ask(&base, a),
            State::Route(r) => self.check_route(&base, r),
            State::Set(s) => self.check_set(&base, s),
            State::Http(h) => self.check_http(&base, h),
            State::Wait(w) => self.check_wait(&base, w),
            State::Subflow(s) => self.check_subflow(&base, s),
            State::Llm(l) => self.check_llm(&base, l),
            State::Message(_) | State::Handoff(_) | State::End(_) => {}
        }
    }

    fn check_understanding(&mut self) {
        let u = &self.flow.understanding;
        for (name, examples) in &u.intents {
            let path = format!("understanding.intents.{name}");
            if !is_identifier(name) {
                let msg = format!("intent name \"{name}\" must use only a-z, 0-9 and _");
                self.error(path.clone(), msg);
            }
            if examples.iter().any(|e| e.trim().is_empty()) {
                self.error(path.clone(), "examples must not be empty".into());
            }
            if examples.len() < 3 {
                let msg = format!(
                    "only {} example(s); give at least 3 (5-10 understand far better)",
                    examples.len()
                );
                self.warn(path, msg);
            }
        }
        if let Some(t) = u.threshold {
            if !(0.0..=1.0).contains(&t) {
                let msg = format!("threshold {t} must be between 0 and 1");
                self.error("understanding.threshold".into(), msg);
            }
        }
    }

    fn check_intent(&mut self, path: String, intent: &str) {
        if !self.flow.understanding.has_intent(intent) {
            let msg = format!("unknown intent \"{intent}\" (not in understanding.intents)");
            self.error(path, msg);
        }
    }

    pub(super) fn check_expression(&mut self, path: String, source: &str) {
        if let Err(e) = expr::check(source) {
            self.error(path, format!("invalid expression: {}", e.detail));
        }
    }

    fn check_digressions(&mut self) {
        for (i, d) in self.flow.digressions.iter().enumerate() {
            let path = format!("digressions[{i}]");
            self.check_intent(format!("{path}.intent"), &d.intent);
            match (&d.say, &d.text, &d.to) {
                (Some(_), Some(_), _) => {
                    let msg = "set either `say` (template name) or `text` (inline), not both";
                    self.error(path.clone(), msg.into());
                }
                (None, None, None) => {
                    let msg = "a digression needs `say`, `text` or `to`";
                    self.error(path.clone(), msg.into());
                }
                _ => {}
            }
            if let Some(name) = &d.say {
                self.check_template(&format!("{path}.say"), name);
            }
            if let Some(source) = &d.text {
                if let Err((line, detail)) = check_syntax(source) {
                    let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
                    self.error(
                        format!("{path}.text"),
                        format!("template syntax error{at}: {detail}"),
                    );
                }
            }
            if let Some(target) = &d.to {
                self.check_target(&format!("{path}.to"), target);
            }
        }
    }

    fn check_route(&mut self, base: &str, r: &RouteState) {
        for (i, rule) in r.routes.iter().enumerate() {
            let path = format!("{base}.routes[{i}]");
            if let Some(intent) = &rule.intent {
                self.check_intent(format!("{path}.intent"), intent);
            }
            if let Some(c) = rule.min_confidence {
                if !(0.0..=1.0).contains(&c) {
                    let msg = format!("min_confidence {c} must be between 0 and 1");
                    self.error(format!("{path}.min_confidence"), msg);
                }
            }
            if let Some(kind) = &rule.entity {
                if !ENTITY_KINDS.contains(&kind.as_str()) {
                    let msg = format!(
                        "unknown entity \"{kind}\" (one of {})",
                        ENTITY_KINDS.join(", ")
                    );
                    self.error(format!("{path}.entity"), msg);
                }
            }
            if let Some(source) = &rule.when {
                self.check_expression(format!("{path}.when"), source);
            }
            let unconditional =
                rule.intent.is_none() && rule.entity.is_none() && rule.when.is_none();
            if unconditional && i + 1 < r.routes.len() {
                let msg = "has no condition, so the rules after it never run".to_string();
                self.warn(path, msg);
            }
        }
    }

    fn check_set(&mut self, base: &str, s: &SetState) {
        if s.values.is_empty() {
            self.error(format!("{base}.values"), "nothing to set".into());
        }
        for (slot, source) in &s.values {
            let path = format!("{base}.values.{slot}");
            if !is_identifier(slot) {
                let msg = format!("slot name \"{slot}\" must use only a-z, 0-9 and _");
                self.error(path.clone(), msg);
            }
            self.check_expression(path, source);
        }
    }

    fn check_target(&mut self, path: &str, target: &str) {
        if self.flow.state(target).is_none() {
            self.error(path.to_string(), format!("unknown state \"{target}\""));
        }
    }

    fn check_prompt(&mut self, base: &str, state: &State) {
        match state.prompt_fields() {
            (Some(_), Some(_)) => {
                let msg = "set either `say` (template name) or `text` (inline), not both";
                self.error(base.to_string(), msg.into());
            }
            (None, None) if state.needs_prompt() => {
                let kind = state.kind_name();
                let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                let msg = format!(
                    "{article} {kind} state needs `say` (template name) or `text` (inline)"
                );
                self.error(base.to_string(), msg);
            }
            _ => {}
        }
        let (say, text) = state.prompt_fields();
        if let Some(name) = say {
            self.check_template(&format!("{base}.say"), name);
        }
        if let Some(source) = text {
            if let Err((line, detail)) = check_syntax(source) {
                let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
                let msg = format!("template syntax error{at}: {detail}");
                self.error(format!("{base}.text"), msg);
            }
        }
    }

    pub(super) fn check_template(&mut self, path: &str, name: &str) {
        if !(self.templates)(name) {
            self.error(path.to_string(), format!("unknown template \"{name}\""));
        }
    }

    fn check_retry(&mut self, base: &str, explicit: Option<&str>, effective: &str) {
        if explicit.is_some() {
            self.check_template(&format!("{base}.retry"), effective);
        } else if !(self.templates)(effective) {
            let msg = format!(
                "default retry template \"{effective}\" does not exist; add it or set `retry`"
            );
            self.error(format!("{base}.retry"), msg);
        }
    }

    pub(super) fn check_attempts(&mut self, base: &str, max_attempts: Option<u32>) {
        if max_attempts == Some(0) {
            let msg = "must be at least 1".to_string();
            self.error(format!("{base}.max_attempts"), msg);
        }
    }

    fn check_choice(&mut self, base: &str, c: &ChoiceState) {
        if c.options.is_empty() {
            let msg = "a choice needs at least one option".to_string();
            self.error(format!("{base}.options"), msg);
        }
        let mut ids: Vec<&str> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        for (i, opt) in c.options.iter().enumerate() {
            let path = format!("{base}.options[{i}]");
            if opt.id.trim().is_empty() {
                self.error(format!("{path}.id"), "option id must not be empty".into());
            } else if let Some(first) = ids.iter().position(|id| *id == opt.id) {
                let msg = format!("duplicate option id \"{}\" (also options[{first}])", opt.id);
                self.error(format!("{path}.id"), msg);
            }
            ids.push(&opt.id);
            if let Some(intent) = &opt.intent {
                self.check_intent(format!("{path}.intent"), intent);
            }
            let label = normalize(&opt.label);
            if label.is_empty() {
                self.error(
                    format!("{path}.label"),
                    "option label must not be empty".into(),
                );
            } else if let Some(first) = labels.iter().position(|l| *l == label) {
                let msg = format!(
                    "label \"{}\" repeats options[{first}]; customers cannot tell them apart",
                    opt.label
                );
                self.warn(format!("{path}.label"), msg);
            }
            labels.push(label);
        }
        self.check_retry(base, c.retry.as_deref(), c.retry_template());
        self.check_attempts(base, c.max_attempts);
    }

    fn check_ask(&mut self, base: &str, a: &AskState) {
        if !is_identifier(&a.slot) {
            let msg = format!("slot name \"{}\" must use only a-z, 0-9 and _", a.slot);
            self.error(format!("{base}.slot"), msg);
        }
        self.check_retry(base, a.retry.as_deref(), a.retry_template());
        self.check_attempts(base, a.max_attempts);
        if let Some(cc) = &a.country_code {
            let digits = !cc.is_empty() && cc.len() <= 3 && cc.chars().all(|c| c.is_ascii_digit());
            if !digits || cc.starts_with('0') {
                let msg =
                    format!("country code \"{cc}\" must be 1-3 digits without + (e.g. \"44\")");
                self.error(format!("{base}.country_code"), msg);
            } else if a.slot_type != SlotType::Phone {
                let msg = "only used by `type: phone`".to_string();
                self.warn(format!("{base}.country_code"), msg);
            }
        }
    }

    /// Message states move on without waiting; a cycle made only of them
    /// would spin forever.
    fn check_loops(&mut self) {
        let flow = self.flow;
        let mut done: BTreeSet<usize> = BTreeSet::new();
        let mut reported: BTreeSet<usize> = BTreeSet::new();
        for start in 0..flow.states.len() {
            let mut walk: Vec<usize> = Vec::new();
            let mut at = Some(start);
            while let Some(i) = at {
                if done.contains(&i) {
                    break;
                }
                if let Some(pos) = walk.iter().position(|w| *w == i) {
                    self.report_loop(&walk[pos..], &mut reported);
                    break;
                }
                walk.push(i);
                at = self.message_next(i);
            }
            done.extend(walk);
        }
    }

    /// The state an auto-transitioning state moves on to (a route's `default`, an http
    /// state's `next`).
    fn message_next(&self, index: usize) -> Option<usize> {
        match self.flow.states.get(index) {
            Some((_, State::Message(m))) => self.flow.position(&m.next),
            Some((_, State::Set(s))) => self.flow.position(&s.next),
            Some((_, State::Route(r))) => self.flow.position(&r.default),
            Some((_, State::Http(h))) => self.flow.position(&h.next),
            _ => None,
        }
    }

    fn report_loop(&mut self, cycle: &[usize], reported: &mut BTreeSet<usize>) {
        let Some(first) = cycle.iter().copied().min() else {
            return;
        };
        if !reported.insert(first) {
            return;
        }
        let pos = cycle.iter().position(|i| *i == first).unwrap_or(0);
        let names: Vec<&str> = cycle[pos..]
            .iter()
            .chain(&cycle[..=pos])
            .filter_map(|i| self.flow.states.get(*i).map(|(n, _)| n.as_str()))
            .collect();
        let start = names.first().copied().unwrap_or_default();
        let msg = format!(
            "auto-transition loop {} never waits for the customer",
            names.join(" -> ")
        );
        self.error(format!("states.{start}.next"), msg);
    }

    fn check_reachability(&mut self) {
        let flow = self.flow;
        let Some(start) = flow.position(&flow.start) else {
            return;
        };
        let mut seen = vec![false; flow.states.len()];
        let mut queue = VecDeque::from([start]);
        while let Some(i) = queue.pop_front() {
            let Some((_, state)) = flow.states.get(i) else {
                continue;
            };
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            queue.extend(
                state
                    .transitions()
                    .iter()
                    .filter_map(|(_, t)| flow.position(t)),
            );
        }
        for ((name, _), reached) in flow.states.iter().zip(seen) {
            if !reached {
                let msg = format!("state is unreachable from start \"{}\"", flow.start);
                self.warn(format!("states.{name}"), msg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("dental_demo_2"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("Dental"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier("a b"));
    }

    #[test]
    fn warnings_are_marked_in_display() {
        let p = FlowProblem {
            path: "states.x".into(),
            message: "unused".into(),
            severity: Severity::Warning,
        };
        assert_eq!(p.to_string(), "states.x: unused (warning)");
    }
}
