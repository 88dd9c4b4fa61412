//! Conditions and values written as minijinja expressions in flows (`route` rules' `when:` and
//! `set` states' `values:`).
//!
//! Owns one shared expression environment and three entry points: `check` (syntax, for
//! validation), `truthy` and `value`. Invariants: an undefined name or attribute is falsy (so
//! `slots.date is defined` and `slots.x.y` work before a slot is filled) rather than an error;
//! evaluation is pure and bounded (no loops in expressions, fuel-limited).

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expression {source_text:?}: {detail}")]
pub struct ExprError {
    /// The expression.
    pub source_text: String,
    /// What went wrong.
    pub detail: String,
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(10_000));
        env
    })
}

fn error(source: &str, e: &minijinja::Error) -> ExprError {
    ExprError {
        source_text: source.to_string(),
        detail: e.to_string(),
    }
}

/// Whether `source` compiles as an expression.
pub fn check(source: &str) -> Result<(), ExprError> {
    env()
        .compile_expression(source)
        .map(|_| ())
        .map_err(|e| error(source, &e))
}

/// Evaluates `source` against `ctx` as a condition (minijinja truthiness).
pub fn truthy(source: &str, ctx: &Value) -> Result<bool, ExprError> {
    let expr = env()
        .compile_expression(source)
        .map_err(|e| error(source, &e))?;
    expr.eval(ctx)
        .map(|v| v.is_true())
        .map_err(|e| error(source, &e))
}

/// Evaluates `source` against `ctx` to a JSON value (undefined becomes `null`).
pub fn value(source: &str, ctx: &Value) -> Result<Value, ExprError> {
    let expr = env()
        .compile_expression(source)
        .map_err(|e| error(source, &e))?;
    let out = expr.eval(ctx).map_err(|e| error(source, &e))?;
    if out.is_undefined() || out.is_none() {
        return Ok(Value::Null);
    }
    serde_json::to_value(&out).map_err(|e| ExprError {
        source_text: source.to_string(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_over_slots_and_intent() {
        let ctx = json!({"slots": {"date": "2026-11-26"}, "intent": "book", "confidence": 0.8});
        assert!(truthy("slots.date is defined", &ctx).unwrap());
        assert!(!truthy("slots.email is defined", &ctx).unwrap());
        assert!(!truthy("slots.email.domain", &ctx).unwrap());
        assert!(truthy("intent == 'book' and confidence > 0.5", &ctx).unwrap());
        assert!(!truthy("intent == 'cancel'", &ctx).unwrap());
    }

    #[test]
    fn values_and_errors() {
        let ctx = json!({"slots": {"n": 2, "name": "ada"}});
        assert_eq!(value("slots.n * 3", &ctx).unwrap(), json!(6));
        assert_eq!(value("slots.name | upper", &ctx).unwrap(), json!("ADA"));
        assert_eq!(value("slots.missing", &ctx).unwrap(), Value::Null);
        assert!(check("slots.n +").is_err());
        assert!(check("slots.n + 1").is_ok());
    }
}
