//! Reading a customer's message with the tenant's LLM: one chat completion that must call the
//! `understand` tool, whose proposal is validated server-side before it becomes the turn's
//! [`Understanding`].
//!
//! Owns the tool's schema (built from the flow's intents), the request (system prompt from the
//! `llm_understand` template, the customer's text only as the user message) and the checks on
//! the reply. Invariants — the LLM never has the last word:
//! - the proposed intent must be one of the flow's (the guard enforces the enum); "none" or a
//!   confidence under the flow's threshold means out of scope;
//! - an email or phone is kept only when it passes the same normaliser an `ask` answer does;
//! - a day/time is kept only when the quoted words occur in the customer's own message and the
//!   embedded date/time reader resolves them; the LLM never supplies a date value itself;
//! - the embedded entities are always kept; the LLM can only add to them;
//! - the message's language is the embedded identifier's; the LLM is not asked for it;
//! - any failure (breaker open, timeout, a rejected call) is an error for the caller, which then
//!   uses the embedded understanding.

use serde_json::{json, Value};

use super::registry::CompiledFlow;
use super::slots::{normalize_email, normalize_phone};
use crate::llm::{ChatRequest, LlmClient, LlmError, ToolGuard, ToolSpec, Usage};
use crate::nlu::datetime::{resolve, TimeContext};
use crate::nlu::entities::time_value_json;
use crate::nlu::{Entity, Intent, Source, Understanding};

/// Name of the single tool the model must call.
pub const TOOL: &str = "understand";
/// Template with the system instructions.
pub const TEMPLATE: &str = "llm_understand";

/// What one LLM reading produced.
#[derive(Debug, Clone)]
pub struct LlmReading {
    /// The validated understanding.
    pub understanding: Understanding,
    /// Tokens used.
    pub usage: Usage,
    /// The model that answered.
    pub model: String,
}

/// The `understand` tool for a flow's intents.
pub fn tool_spec(flow: &CompiledFlow) -> ToolSpec {
    let mut intents: Vec<Value> = flow
        .flow
        .understanding
        .intents
        .iter()
        .map(|(name, _)| Value::String(name.clone()))
        .collect();
    intents.push(Value::String("none".into()));
    ToolSpec {
        name: TOOL.into(),
        description: "Report what the customer's latest message asks for and any details it gives."
            .into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "intent": {"type": "string", "enum": intents},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "email": {"type": "string", "maxLength": 254},
                "phone": {"type": "string", "maxLength": 40},
                "when": {"type": "string", "maxLength": 120,
                         "description": "the customer's own words for a day or time, copied exactly"}
            },
            "required": ["intent"],
            "additionalProperties": false
        }),
    }
}

/// Reads `text` with the LLM; `embedded` is the embedded engine's reading of the same text.
pub async fn read(
    client: &LlmClient,
    flow: &CompiledFlow,
    vars: &Value,
    question: &str,
    text: &str,
    embedded: &Understanding,
    time: &TimeContext,
) -> Result<LlmReading, LlmError> {
    let spec = tool_spec(flow);
    let guard = ToolGuard::new(std::slice::from_ref(&spec))
        .map_err(|e| LlmError::Config(e.to_string()))?
        .with_max_calls(1);
    let mut ctx = vars.clone();
    if let Value::Object(map) = &mut ctx {
        map.insert("question".into(), Value::String(question.into()));
        map.insert(
            "intents".into(),
            json!(flow
                .flow
                .understanding
                .intents
                .iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()),
        );
    }
    let system = flow
        .prompts
        .render(TEMPLATE, ctx)
        .map_err(|e| LlmError::Config(e.to_string()))?;
    let request = ChatRequest {
        system,
        user: text.to_string(),
        tools: vec![spec],
        require_tool: true,
        max_tokens: 200,
        temperature: 0.0,
        ..ChatRequest::default()
    };
    let result = client.chat(&request).await?;
    let report = guard.check_all(&result.tool_calls);
    if let Some((call, why)) = report.rejected.first() {
        return Err(LlmError::Malformed(format!(
            "tool call {:?} refused: {why}",
            call.name
        )));
    }
    let Some(call) = report.accepted.first() else {
        return Err(LlmError::Malformed(
            "the model did not call `understand`".into(),
        ));
    };
    let args = Value::Object(call.arguments.clone());
    let understanding = validated(flow, &args, text, embedded, time);
    Ok(LlmReading {
        understanding,
        usage: result.usage,
        model: result.model,
    })
}

/// The understanding the server accepts from validated tool arguments.
fn validated(
    flow: &CompiledFlow,
    args: &Value,
    text: &str,
    embedded: &Understanding,
    time: &TimeContext,
) -> Understanding {
    let confidence = args
        .get("confidence")
        .and_then(Value::as_f64)
        .unwrap_or(1.0) as f32;
    let intent = args
        .get("intent")
        .and_then(Value::as_str)
        .filter(|name| flow.flow.understanding.has_intent(name))
        .filter(|_| confidence >= flow.nlu.threshold().min(0.5))
        .map(|name| Intent {
            name: name.to_string(),
            confidence,
        });
    let mut entities = embedded.entities.clone();
    let country = flow.flow.country_code();
    let mut add = |kind: &str, words: &str, value: Value| {
        if entities.iter().any(|e| e.kind == kind) {
            return;
        }
        let (start, end) = span_of(text, words).unwrap_or((0, 0));
        entities.push(Entity {
            kind: kind.into(),
            text: words.to_string(),
            start,
            end,
            value,
        });
    };
    if let Some(email) = arg(args, "email").and_then(|e| normalize_email(e).ok()) {
        add(
            "email",
            arg(args, "email").unwrap_or_default(),
            Value::String(email),
        );
    }
    if let Some(phone) = arg(args, "phone").and_then(|p| normalize_phone(p, country).ok()) {
        add(
            "phone",
            arg(args, "phone").unwrap_or_default(),
            Value::String(phone),
        );
    }
    if let Some(words) = arg(args, "when").filter(|w| span_of(text, w).is_some()) {
        if let Some(value) = resolve(words, time) {
            add("when", words, time_value_json(&value));
        }
    }
    entities.sort_by_key(|e| e.start);
    Understanding {
        intent,
        ranked: embedded.ranked.clone(),
        entities,
        language: embedded.language.clone(),
        source: Source::Llm,
    }
}

fn arg<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Byte span of `words` in `text`, ignoring ASCII case.
fn span_of(text: &str, words: &str) -> Option<(usize, usize)> {
    let hay = text.to_ascii_lowercase();
    let needle = words.to_ascii_lowercase();
    hay.find(&needle).map(|i| (i, i + needle.len()))
}
