//! The guard: server-side validation of every tool call a model proposes, against the
//! allow-list of the current request and each tool's JSON-schema subset.
//!
//! Supported keywords: `type` (object, string, integer, number, boolean, array), `properties`,
//! `required`, `additionalProperties` (boolean), `enum`, `minimum`, `maximum`, `minLength`,
//! `maxLength`, `items`, `minItems`, `maxItems`; `description`, `title`, `default` and
//! `examples` are annotations and ignored.
//!
//! Invariants (deliberately stricter than JSON Schema, because this is a security boundary):
//! - Unknown tool names are rejected; so are more than `max_calls` calls in one turn.
//! - Every (sub)schema must declare `type` or `enum`; unsupported keywords make the *schema*
//!   invalid (checked in [`ToolGuard::new`]) instead of being silently ignored.
//! - `additionalProperties` defaults to `false`: unknown properties are rejected.
//! - Malformed JSON arguments are rejected with a reason, never a panic.
//! - Integers written as `2.0` are accepted and normalised to `2` in the [`ValidatedCall`].

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::error::truncate_message;
use super::types::{ToolCall, ToolSpec};
use super::wire::valid_tool_name;

/// Default limit of tool calls accepted from one model turn.
pub const DEFAULT_MAX_CALLS: usize = 4;

const TYPES: [&str; 6] = ["object", "string", "integer", "number", "boolean", "array"];
const KEYWORDS: [&str; 16] = [
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "items",
    "minItems",
    "maxItems",
    "description",
    "title",
    "default",
    "examples",
];

/// Why the guard refused a tool call (or a tool definition).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The tool is not on this request's allow-list.
    #[error("tool {name:?} is not allowed here")]
    UnknownTool {
        /// The requested name (truncated).
        name: String,
    },
    /// The arguments are not a JSON object (unparseable text, or another JSON type).
    #[error("arguments of {tool} are malformed: {reason}")]
    MalformedArguments {
        /// Tool name.
        tool: String,
        /// What is wrong.
        reason: String,
    },
    /// The arguments do not satisfy the tool's schema.
    #[error("arguments of {tool} are invalid at {path}: {reason}")]
    SchemaViolation {
        /// Tool name.
        tool: String,
        /// JSON pointer to the offending value (`/` = the arguments object).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The tool definition itself uses something the guard cannot enforce.
    #[error("tool {tool} has an unsupported schema: {reason}")]
    InvalidSchema {
        /// Tool name.
        tool: String,
        /// What is wrong.
        reason: String,
    },
    /// The model proposed more calls than allowed in one turn.
    #[error("call #{position} exceeds the limit of {max} tool calls per turn")]
    TooManyCalls {
        /// 1-based position of the refused call.
        position: usize,
        /// The limit.
        max: usize,
    },
}

/// A tool call that passed the guard; `arguments` are normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedCall {
    /// Provider call id.
    pub id: String,
    /// Tool name (on the allow-list).
    pub name: String,
    /// Arguments, valid against the tool's schema.
    pub arguments: Map<String, Value>,
}

/// Outcome of checking all calls of one model turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuardReport {
    /// Calls that may be acted upon.
    pub accepted: Vec<ValidatedCall>,
    /// Calls refused, each with its reason.
    pub rejected: Vec<(ToolCall, GuardError)>,
}

/// The allow-list for one request, with pre-checked schemas.
#[derive(Debug, Clone)]
pub struct ToolGuard {
    tools: HashMap<String, Value>,
    max_calls: usize,
}

impl ToolGuard {
    /// Build a guard for `tools`; fails when a name or schema cannot be enforced.
    pub fn new(tools: &[ToolSpec]) -> Result<Self, GuardError> {
        let mut map = HashMap::with_capacity(tools.len());
        for tool in tools {
            let invalid = |reason: String| GuardError::InvalidSchema {
                tool: truncate_message(&tool.name),
                reason,
            };
            if !valid_tool_name(&tool.name) {
                return Err(invalid("name must match [A-Za-z0-9_-]{1,64}".into()));
            }
            check_schema(&tool.parameters, "").map_err(invalid)?;
            if tool.parameters.get("type").and_then(Value::as_str) != Some("object") {
                return Err(invalid("parameters must be of type object".into()));
            }
            if map
                .insert(tool.name.clone(), tool.parameters.clone())
                .is_some()
            {
                return Err(invalid("duplicate tool name".into()));
            }
        }
        Ok(Self {
            tools: map,
            max_calls: DEFAULT_MAX_CALLS,
        })
    }

    /// Change the per-turn call limit.
    pub fn with_max_calls(mut self, max_calls: usize) -> Self {
        self.max_calls = max_calls;
        self
    }

    /// Validate one call.
    pub fn check(&self, call: &ToolCall) -> Result<ValidatedCall, GuardError> {
        let tool = truncate_message(&call.name);
        let schema = self
            .tools
            .get(&call.name)
            .ok_or_else(|| GuardError::UnknownTool { name: tool.clone() })?;
        let object = match &call.arguments {
            Value::Object(map) => map,
            Value::String(raw) => {
                let reason = match serde_json::from_str::<Value>(raw) {
                    Err(e) => format!("not valid JSON ({e})"),
                    Ok(_) => "a JSON-encoded string, not an object".into(),
                };
                return Err(GuardError::MalformedArguments { tool, reason });
            }
            other => {
                return Err(GuardError::MalformedArguments {
                    tool,
                    reason: format!("expected an object, got {}", kind(other)),
                })
            }
        };
        let normalised =
            validate_value(schema, &Value::Object(object.clone()), "").map_err(|v| {
                GuardError::SchemaViolation {
                    tool: tool.clone(),
                    path: if v.path.is_empty() {
                        "/".into()
                    } else {
                        v.path
                    },
                    reason: v.reason,
                }
            })?;
        let Value::Object(arguments) = normalised else {
            return Err(GuardError::MalformedArguments {
                tool,
                reason: "arguments did not normalise to an object".into(),
            });
        };
        Ok(ValidatedCall {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments,
        })
    }

    /// Validate all calls of one turn; calls beyond the limit are refused.
    pub fn check_all(&self, calls: &[ToolCall]) -> GuardReport {
        let mut report = GuardReport::default();
        for (i, call) in calls.iter().enumerate() {
            let outcome = if i >= self.max_calls {
                Err(GuardError::TooManyCalls {
                    position: i + 1,
                    max: self.max_calls,
                })
            } else {
                self.check(call)
            };
            match outcome {
                Ok(valid) => report.accepted.push(valid),
                Err(e) => {
                    tracing::warn!(tool = %truncate_message(&call.name), reason = %e, "tool call rejected by guard");
                    report.rejected.push((call.clone(), e));
                }
            }
        }
        report
    }
}

/// One-shot check of `call` against the allow-list `allowed`.
pub fn validate_call(allowed: &[ToolSpec], call: &ToolCall) -> Result<ValidatedCall, GuardError> {
    ToolGuard::new(allowed)?.check(call)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Check that `schema` only uses what the guard can enforce. `path` is for messages.
pub fn check_schema(schema: &Value, path: &str) -> Result<(), String> {
    let at = |what: &str| format!("{what} at {}", if path.is_empty() { "/" } else { path });
    let obj = schema
        .as_object()
        .ok_or_else(|| at("schema is not an object"))?;
    if let Some(unknown) = obj.keys().find(|k| !KEYWORDS.contains(&k.as_str())) {
        return Err(at(&format!("unsupported keyword {unknown:?}")));
    }
    let ty = match obj.get("type") {
        None => None,
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => Some(t.as_str()),
        Some(_) => {
            return Err(at(
                "type must be one of object/string/integer/number/boolean/array",
            ))
        }
    };
    match obj.get("enum") {
        None if ty.is_none() => return Err(at("every schema needs type or enum")),
        Some(Value::Array(values)) if values.is_empty() => return Err(at("enum is empty")),
        Some(Value::Array(_)) | None => {}
        Some(_) => return Err(at("enum must be an array")),
    }
    for key in ["minimum", "maximum"] {
        if obj.get(key).is_some_and(|v| !v.is_number()) {
            return Err(at(&format!("{key} must be a number")));
        }
    }
    for key in ["minLength", "maxLength", "minItems", "maxItems"] {
        if obj.get(key).is_some_and(|v| v.as_u64().is_none()) {
            return Err(at(&format!("{key} must be a non-negative integer")));
        }
    }
    if obj
        .get("additionalProperties")
        .is_some_and(|v| !v.is_boolean())
    {
        return Err(at("additionalProperties must be a boolean"));
    }
    let properties = match obj.get("properties") {
        None => None,
        Some(Value::Object(props)) => Some(props),
        Some(_) => return Err(at("properties must be an object")),
    };
    for (name, sub) in properties.into_iter().flatten() {
        check_schema(sub, &format!("{path}/properties/{name}"))?;
    }
    if let Some(required) = obj.get("required") {
        let names = required
            .as_array()
            .ok_or_else(|| at("required must be an array"))?;
        for name in names {
            let name = name
                .as_str()
                .ok_or_else(|| at("required entries must be strings"))?;
            if !properties.is_some_and(|p| p.contains_key(name)) {
                return Err(at(&format!(
                    "required property {name:?} is not in properties"
                )));
            }
        }
    }
    if let Some(items) = obj.get("items") {
        check_schema(items, &format!("{path}/items"))?;
    }
    Ok(())
}

/// Where and why a value broke its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer of the value.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

fn violation(path: &str, reason: impl Into<String>) -> Violation {
    Violation {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Validate `value` against a schema that passed [`check_schema`]; returns the normalised value.
pub fn validate_value(schema: &Value, value: &Value, path: &str) -> Result<Value, Violation> {
    let empty = Map::new();
    let obj = schema.as_object().unwrap_or(&empty);
    if let Some(Value::Array(allowed)) = obj.get("enum") {
        if !allowed.contains(value) {
            return Err(violation(path, "value is not one of the allowed values"));
        }
    }
    let normalised = match obj.get("type").and_then(Value::as_str) {
        None => value.clone(),
        Some("object") => validate_object(obj, value, path)?,
        Some("string") => validate_string(obj, value, path)?,
        Some("integer") => validate_integer(obj, value, path)?,
        Some("number") => validate_number(obj, value, path)?,
        Some("boolean") if value.is_boolean() => value.clone(),
        Some("array") => validate_array(obj, value, path)?,
        Some(ty) => {
            return Err(violation(
                path,
                format!("expected {ty}, got {}", kind(value)),
            ))
        }
    };
    Ok(normalised)
}

fn validate_object(
    schema: &Map<String, Value>,
    value: &Value,
    path: &str,
) -> Result<Value, Violation> {
    let map = value
        .as_object()
        .ok_or_else(|| violation(path, format!("expected object, got {}", kind(value))))?;
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let extra_ok = schema
        .get("additionalProperties")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = name.as_str().unwrap_or_default();
        if !map.contains_key(name) {
            return Err(violation(
                path,
                format!("missing required property {name:?}"),
            ));
        }
    }
    let mut out = Map::with_capacity(map.len());
    for (key, item) in map {
        let item_path = format!("{path}/{}", escape_pointer(key));
        let normalised = match props.get(key) {
            Some(sub) => validate_value(sub, item, &item_path)?,
            None if extra_ok => item.clone(),
            None => {
                return Err(violation(
                    path,
                    format!("unexpected property {:?}", truncate_message(key)),
                ))
            }
        };
        out.insert(key.clone(), normalised);
    }
    Ok(Value::Object(out))
}

fn escape_pointer(key: &str) -> String {
    truncate_message(&key.replace('~', "~0").replace('/', "~1"))
}

fn validate_string(
    schema: &Map<String, Value>,
    value: &Value,
    path: &str,
) -> Result<Value, Violation> {
    let s = value
        .as_str()
        .ok_or_else(|| violation(path, format!("expected string, got {}", kind(value))))?;
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if len > max {
            return Err(violation(
                path,
                format!("string has {len} characters, at most {max} allowed"),
            ));
        }
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if len < min {
            return Err(violation(
                path,
                format!("string has {len} characters, at least {min} required"),
            ));
        }
    }
    Ok(value.clone())
}

fn check_bounds(schema: &Map<String, Value>, n: f64, path: &str) -> Result<(), Violation> {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if n < min {
            return Err(violation(path, format!("{n} is below the minimum {min}")));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        if n > max {
            return Err(violation(path, format!("{n} is above the maximum {max}")));
        }
    }
    Ok(())
}

fn validate_integer(
    schema: &Map<String, Value>,
    value: &Value,
    path: &str,
) -> Result<Value, Violation> {
    let wrong = || violation(path, format!("expected integer, got {}", kind(value)));
    let Value::Number(n) = value else {
        return Err(wrong());
    };
    let normalised = if n.is_i64() || n.is_u64() {
        n.clone()
    } else {
        let f = n.as_f64().ok_or_else(wrong)?;
        let whole = f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15;
        if !whole {
            return Err(violation(path, format!("expected integer, got {f}")));
        }
        Number::from(f as i64)
    };
    check_bounds(schema, normalised.as_f64().unwrap_or(f64::NAN), path)?;
    Ok(Value::Number(normalised))
}

fn validate_number(
    schema: &Map<String, Value>,
    value: &Value,
    path: &str,
) -> Result<Value, Violation> {
    let n = value
        .as_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| violation(path, format!("expected number, got {}", kind(value))))?;
    check_bounds(schema, n, path)?;
    Ok(value.clone())
}

fn validate_array(
    schema: &Map<String, Value>,
    value: &Value,
    path: &str,
) -> Result<Value, Violation> {
    let items = value
        .as_array()
        .ok_or_else(|| violation(path, format!("expected array, got {}", kind(value))))?;
    let len = items.len() as u64;
    if schema
        .get("maxItems")
        .and_then(Value::as_u64)
        .is_some_and(|max| len > max)
    {
        return Err(violation(path, format!("array has {len} items, too many")));
    }
    if schema
        .get("minItems")
        .and_then(Value::as_u64)
        .is_some_and(|min| len < min)
    {
        return Err(violation(path, format!("array has {len} items, too few")));
    }
    let Some(item_schema) = schema.get("items") else {
        return Ok(value.clone());
    };
    let out = items
        .iter()
        .enumerate()
        .map(|(i, item)| validate_value(item_schema, item, &format!("{path}/{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn specs() -> Vec<ToolSpec> {
        vec![
            ToolSpec {
                name: "set_slot".into(),
                description: "Fill a slot".into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "enum": ["name", "email", "date"]},
                        "value": {"type": "string", "maxLength": 200}
                    },
                    "required": ["name", "value"],
                    "additionalProperties": false
                }),
            },
            ToolSpec {
                name: "book".into(),
                description: "Book seats".into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "seats": {"type": "integer", "minimum": 1, "maximum": 4},
                        "price": {"type": "number", "minimum": 0},
                        "vip": {"type": "boolean"},
                        "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 2}
                    },
                    "required": ["seats"]
                }),
            },
        ]
    }

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments,
        }
    }

    fn check(name: &str, arguments: Value) -> Result<ValidatedCall, GuardError> {
        ToolGuard::new(&specs())
            .unwrap()
            .check(&call(name, arguments))
    }

    #[test]
    fn accepts_valid_calls_and_normalises_integers() {
        let ok = check("set_slot", json!({"name": "email", "value": "a@b.c"})).unwrap();
        assert_eq!(ok.arguments["value"], "a@b.c");
        let ok = check(
            "book",
            json!({"seats": 2.0, "tags": ["a"], "vip": true, "price": 9.5}),
        )
        .unwrap();
        assert_eq!(ok.arguments["seats"], json!(2));
        assert!(ok.arguments["seats"].is_i64());
    }

    #[test]
    fn rejects_unknown_tools() {
        assert_eq!(
            check("refund", json!({})),
            Err(GuardError::UnknownTool {
                name: "refund".into()
            })
        );
    }

    #[test]
    fn rejects_schema_violations_with_paths() {
        let err = |name, args| match check(name, args) {
            Err(GuardError::SchemaViolation { path, reason, .. }) => (path, reason),
            other => panic!("expected a violation, got {other:?}"),
        };
        let (path, reason) = err("set_slot", json!({"name": "tenant", "value": "42"}));
        assert_eq!(path, "/name");
        assert!(reason.contains("allowed values"));
        let (path, reason) = err(
            "set_slot",
            json!({"name": "email", "value": "x", "tenant_id": 42}),
        );
        assert_eq!(path, "/");
        assert!(reason.contains("tenant_id"));
        let (_, reason) = err("set_slot", json!({"name": "email"}));
        assert!(reason.contains("missing required property \"value\""));
        let (path, reason) = err(
            "set_slot",
            json!({"name": "email", "value": "x".repeat(201)}),
        );
        assert_eq!(path, "/value");
        assert!(reason.contains("201"));
        let (path, _) = err("book", json!({"seats": 10}));
        assert_eq!(path, "/seats");
        let (_, reason) = err("book", json!({"seats": 1.5}));
        assert!(reason.contains("expected integer"));
        let (_, reason) = err("book", json!({"seats": "2"}));
        assert!(reason.contains("expected integer, got string"));
        let (path, _) = err("book", json!({"seats": 1, "tags": ["ok", "toolong"]}));
        assert_eq!(path, "/tags/1");
        let (_, reason) = err("book", json!({"seats": 1, "tags": ["a", "b", "c"]}));
        assert!(reason.contains("too many"));
        let (_, reason) = err("book", json!({"seats": 1, "vip": "yes"}));
        assert!(reason.contains("expected boolean"));
        let (_, reason) = err("book", json!({"seats": 1, "price": -1}));
        assert!(reason.contains("minimum"));
        // No additionalProperties in the schema: extras are still refused.
        let (path, reason) = err("book", json!({"seats": 1, "discount": 100}));
        assert_eq!(path, "/");
        assert!(reason.contains("unexpected property \"discount\""));
    }

    #[test]
    fn rejects_malformed_arguments() {
        assert!(matches!(
            check("set_slot", json!("{\"name\": \"email\", ")),
            Err(GuardError::MalformedArguments { reason, .. }) if reason.contains("not valid JSON")
        ));
        assert!(matches!(
            check("set_slot", json!("\"{}\"")),
            Err(GuardError::MalformedArguments { .. })
        ));
        assert!(matches!(
            check("set_slot", json!([1, 2])),
            Err(GuardError::MalformedArguments { reason, .. }) if reason.contains("array")
        ));
    }

    #[test]
    fn limits_calls_per_turn() {
        let guard = ToolGuard::new(&specs()).unwrap().with_max_calls(2);
        let calls: Vec<ToolCall> = (0..5)
            .map(|_| call("set_slot", json!({"name": "date", "value": "monday"})))
            .collect();
        let report = guard.check_all(&calls);
        assert_eq!(report.accepted.len(), 2);
        assert_eq!(report.rejected.len(), 3);
        assert_eq!(
            report.rejected[0].1,
            GuardError::TooManyCalls {
                position: 3,
                max: 2
            }
        );
    }

    #[test]
    fn refuses_schemas_it_cannot_enforce() {
        let bad = |parameters: Value| {
            ToolGuard::new(&[ToolSpec {
                name: "t".into(),
                description: String::new(),
                parameters,
            }])
        };
        assert!(bad(
            json!({"type": "object", "properties": {"x": {"type": "string", "pattern": "^a"}}})
        )
        .is_err());
        assert!(bad(json!({"type": "object", "properties": {"x": {}}})).is_err());
        assert!(bad(json!({"type": "string"})).is_err());
        assert!(bad(json!({"type": "object", "required": ["x"]})).is_err());
        assert!(
            bad(json!({"type": "object", "additionalProperties": {"type": "string"}})).is_err()
        );
        assert!(bad(json!({"type": ["object", "null"]})).is_err());
        assert!(bad(json!({"type": "object", "properties": {"x": {"enum": []}}})).is_err());
        assert!(bad(json!({"type": "object", "properties": {"x": {"enum": ["a"]}}})).is_ok());
        let dup = ToolGuard::new(&[specs()[0].clone(), specs()[0].clone()]);
        assert!(
            matches!(dup, Err(GuardError::InvalidSchema { reason, .. }) if reason.contains("duplicate"))
        );
    }

    #[test]
    fn extra_properties_allowed_only_when_declared() {
        let spec = ToolSpec {
            name: "note".into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": true}),
        };
        let ok = validate_call(&[spec], &call("note", json!({"anything": [1, 2]}))).unwrap();
        assert_eq!(ok.arguments["anything"], json!([1, 2]));
    }
}
