//! `route` and `set` states: choosing the next state from the understanding of the customer's
//! latest message and the conversation's slots, and assigning slots from expressions.
//!
//! Invariants: rules are tried in YAML order and the first whose conditions all hold wins, else
//! `default`; a rule with no conditions always holds; an intent condition needs the understood
//! intent (in scope) with at least `min_confidence`; conditions and values see the same
//! variables as templates plus `intent`, `confidence`, `entities` and `language` (the ISO
//! 639-1 code of the customer's message, `null` when it could not be told or was not read).

use serde_json::{Map, Value};

use super::expr;
use super::flow::{Route, RouteState, SetState};
use super::machine::{Extra, Run, StepError};

impl<'f> Run<'f> {
    /// The state a `route` state sends the conversation to.
    pub(super) fn route(&self, name: &str, r: &'f RouteState) -> Result<&'f str, StepError> {
        // Built once, and only when a rule has a condition to evaluate.
        let mut vars: Option<Value> = None;
        for rule in &r.routes {
            if self.rule_holds(name, rule, &mut vars)? {
                return Ok(&rule.to);
            }
        }
        Ok(&r.default)
    }

    fn rule_holds(
        &self,
        name: &str,
        rule: &Route,
        vars: &mut Option<Value>,
    ) -> Result<bool, StepError> {
        let understanding = self.ctx.understanding;
        if let Some(wanted) = &rule.intent {
            let Some(intent) = understanding.and_then(|u| u.intent.as_ref()) else {
                return Ok(false);
            };
            if intent.name != *wanted || intent.confidence < rule.min_confidence.unwrap_or(0.0) {
                return Ok(false);
            }
        }
        if let Some(kind) = &rule.entity {
            if understanding.and_then(|u| u.entity(kind)).is_none() {
                return Ok(false);
            }
        }
        match &rule.when {
            Some(source) => {
                let vars = vars.get_or_insert_with(|| self.expr_vars(name));
                Ok(expr::truthy(source, vars)?)
            }
            None => Ok(true),
        }
    }

    /// Runs a `set` state's assignments in order.
    pub(super) fn set_values(&mut self, name: &str, s: &SetState) -> Result<(), StepError> {
        for (slot, source) in &s.values {
            match expr::value(source, &self.expr_vars(name))? {
                Value::Null => {
                    self.state.slots.remove(slot);
                }
                value => {
                    self.state.slots.insert(slot.clone(), value);
                }
            }
        }
        Ok(())
    }

    /// Template variables plus what was understood in this turn.
    pub(super) fn expr_vars(&self, name: &str) -> Value {
        let mut vars = match self.template_vars(name, &Extra::default()) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let u = self.ctx.understanding;
        let intent = u.and_then(|u| u.intent_name()).map(str::to_string);
        vars.insert("intent".into(), intent.map_or(Value::Null, Value::String));
        vars.insert(
            "confidence".into(),
            Value::from(u.map_or(0.0, |u| f64::from(u.confidence()))),
        );
        let entities: Map<String, Value> = u
            .map(|u| {
                u.entities
                    .iter()
                    .rev()
                    .map(|e| (e.kind.clone(), e.value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        vars.insert("entities".into(), Value::Object(entities));
        let language = u.and_then(|u| u.language.clone());
        vars.insert(
            "language".into(),
            language.map_or(Value::Null, Value::String),
        );
        Value::Object(vars)
    }
}
