//! The flow simulator: a scripted conversation run through [`step`] with no channel, no database
//! and no clock of its own.
//!
//! Owns `simulate`, the per-turn record it returns (flows are checked and compiled first by
//! [`super::preflight`]) and [`SimPerformer`], its effects. Invariants: deterministic except for
//! the webhooks it calls (time and template variables come from the caller); starts from
//! [`initial_state`] and feeds each turn the state the previous one produced, exactly as the
//! gateway would; `http` states call their webhooks for real (signed, with the same address
//! policy as the gateway); `llm` states always take their `fallback` (the simulator never calls
//! an LLM); `wait` states never time out (the next turn is the reply); a failure stops the run
//! and names the 0-based turn that failed; a flow with an error-severity problem is never run.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::effect::{HttpRequest, HttpResult, LlmRequest, LlmResult};
use super::effects::{run_step, EffectError, Performer};
use super::flow::Flow;
use super::machine::{initial_state, FlowStatus, Reply, StepContext, TurnInput};
use super::prompts::Prompts;
use super::subflow::Callees;
use super::webhook::WebhookClient;
use crate::nlu::datetime::TimeContext;
use crate::nlu::{NluModel, Understanding};

/// Most turns one simulation may run.
pub const MAX_TURNS: usize = 200;
/// Longest single turn, in characters.
pub const MAX_TURN_CHARS: usize = 4000;

/// What one customer turn produced.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SimulatedTurn {
    /// The customer's text.
    pub input: String,
    /// The bot's replies, in order.
    #[schema(value_type = Vec<Object>)]
    pub replies: Vec<Reply>,
    /// The state the conversation is in afterwards.
    pub state: String,
    /// active | handoff | ended
    #[schema(value_type = String)]
    pub status: FlowStatus,
    /// Slots collected so far.
    #[schema(value_type = Object)]
    pub slots: Map<String, Value>,
    /// What the embedded understanding read in the turn (intent, entities, language, …).
    #[schema(value_type = Object)]
    pub understanding: Understanding,
    /// Webhook calls made and LLM replies asked for in the turn, with their outcomes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<String>,
}

/// A compiled flow to run: the flow, its templates and its trained understanding.
#[derive(Debug, Clone, Copy)]
pub struct Runnable<'a> {
    /// The flow.
    pub flow: &'a Flow,
    /// Its templates.
    pub prompts: &'a Prompts,
    /// Its understanding.
    pub nlu: &'a NluModel,
    /// The flows its subflows may call.
    pub callees: &'a Callees,
}

/// The simulator's effects: real webhook calls, never an LLM.
#[derive(Debug)]
pub struct SimPerformer {
    webhooks: Option<WebhookClient>,
    secret: String,
    log: Vec<String>,
}

impl SimPerformer {
    /// Calls webhooks with `webhooks`, signing with `secret`.
    pub fn new(webhooks: WebhookClient, secret: String) -> Self {
        Self {
            webhooks: Some(webhooks),
            secret,
            log: Vec::new(),
        }
    }

    /// Makes no call at all: every webhook fails (for runs that must not leave the process).
    pub fn offline() -> Self {
        Self {
            webhooks: None,
            secret: String::new(),
            log: Vec::new(),
        }
    }
}

#[async_trait::async_trait]
impl Performer for SimPerformer {
    async fn http(&mut self, request: &HttpRequest) -> Result<HttpResult, sqlx::Error> {
        let result = match &self.webhooks {
            Some(client) => client.call(request, &self.secret, "simulation").await,
            None => HttpResult::Failed("this simulation makes no webhook calls".into()),
        };
        let outcome = match &result {
            HttpResult::Ok(_) => "ok".to_string(),
            HttpResult::Failed(reason) => format!("failed: {reason}"),
        };
        let method = request.method.as_str();
        self.log
            .push(format!("{method} {} -> {outcome}", request.url));
        Ok(result)
    }

    async fn llm(&mut self, request: &LlmRequest) -> Result<LlmResult, sqlx::Error> {
        self.log.push(format!(
            "llm at \"{}\" -> fallback (no LLM in simulations)",
            request.state
        ));
        Ok(LlmResult::Unavailable("no LLM in simulations".into()))
    }
}

/// Why a simulation stopped.
#[derive(Debug, thiserror::Error)]
#[error("turn {turn} failed: {source}")]
pub struct SimulateError {
    /// 0-based index of the failing turn.
    pub turn: usize,
    /// What went wrong.
    #[source]
    pub source: EffectError,
}

/// Runs `turns` through the flow from its initial state, in the time zone named by
/// `vars.business.timezone` (UTC when unset or unknown), performing effects with `performer`.
pub async fn simulate(
    run: Runnable<'_>,
    vars: &Value,
    now: DateTime<Utc>,
    turns: &[String],
    performer: &mut SimPerformer,
) -> Result<Vec<SimulatedTurn>, SimulateError> {
    let tz: chrono_tz::Tz = vars
        .pointer("/business/timezone")
        .and_then(Value::as_str)
        .and_then(|name| name.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let time = TimeContext::from_utc(now, tz);
    let mut state = initial_state(run.flow);
    let mut out = Vec::with_capacity(turns.len());
    for (turn, input) in turns.iter().enumerate() {
        let understanding = run
            .nlu
            .understand(input, &time, run.flow.country_code(), None);
        let ctx = StepContext::new(now, run.prompts, vars)
            .in_zone(tz)
            .understood(&understanding)
            .calling(run.callees);
        let text = TurnInput::Text(input.clone());
        let outcome = run_step(run.flow, &state, &text, &ctx, performer)
            .await
            .map_err(|source| SimulateError { turn, source })?;
        state = outcome.state;
        out.push(SimulatedTurn {
            input: input.clone(),
            replies: outcome.replies,
            state: state.state.clone(),
            status: state.status,
            slots: state.slots.clone(),
            understanding,
            effects: std::mem::take(&mut performer.log),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::flow::parse_flow;
    use serde_json::json;

    /// Runs `turns` through `flow` offline (no LLM, no webhooks), with no intents or subflows.
    async fn run_offline(
        flow: &Flow,
        prompts: &Prompts,
        vars: &Value,
        turns: &[String],
    ) -> Result<Vec<SimulatedTurn>, SimulateError> {
        let nlu = NluModel::default();
        let callees = Callees::new();
        let run = Runnable {
            flow,
            prompts,
            nlu: &nlu,
            callees: &callees,
        };
        simulate(run, vars, Utc::now(), turns, &mut SimPerformer::offline()).await
    }

    #[tokio::test]
    async fn runs_turns_in_order_and_carries_state() {
        let flow = parse_flow(
            "id: f\nname: F\nstart: hi\nstates:\n  hi:\n    kind: message\n    text: Hello {{ business.name }}\n    next: name\n  \
             name:\n    kind: ask\n    slot: name\n    text: Your name?\n    retry: r\n    next: bye\n  \
             bye:\n    kind: end\n    text: Bye {{ slots.name }}\n",
        )
        .unwrap();
        let prompts = Prompts::new()
            .with_override("r", "again")
            .unwrap()
            .with_flow_texts(&flow)
            .unwrap();
        let vars = json!({"business": {"name": "Acme"}});
        let turns = vec!["hey".to_string(), "Ada".to_string()];
        let out = run_offline(&flow, &prompts, &vars, &turns).await.unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].replies[0].text, "Hello Acme");
        assert_eq!(out[0].state, "name");
        assert_eq!(out[0].status, FlowStatus::Active);
        assert_eq!(out[1].replies[0].text, "Bye Ada");
        assert_eq!(out[1].status, FlowStatus::Ended);
        assert_eq!(out[1].slots["name"], "Ada");
    }

    #[tokio::test]
    async fn llm_states_take_their_fallback_and_offline_webhooks_fail() {
        let flow = parse_flow(
            "id: f\nname: F\nstart: hi\nstates:\n  hi: {kind: message, text: Hi, next: helper}\n  \
             helper: {kind: llm, text: Help, fallback: hook}\n  \
             hook: {kind: http, url: \"https://x.test/a\", next: ok, on_error: away}\n  \
             ok: {kind: end, text: OK}\n  away: {kind: end, text: Away}\n",
        )
        .unwrap();
        let prompts = Prompts::new().with_flow_texts(&flow).unwrap();
        let turns = vec!["hello".to_string(), "book me".to_string()];
        let out = run_offline(&flow, &prompts, &json!({}), &turns)
            .await
            .unwrap();
        assert_eq!(out[1].replies[0].text, "Away");
        assert_eq!(
            out[1].effects,
            [
                "llm at \"helper\" -> fallback (no LLM in simulations)",
                "GET https://x.test/a -> failed: this simulation makes no webhook calls",
            ]
        );
        assert!(out[0].effects.is_empty());
    }

    #[tokio::test]
    async fn a_failing_turn_is_named() {
        let flow = parse_flow(
            "id: f\nname: F\nstart: a\nstates:\n  a:\n    kind: end\n    text: \"{{ nope }}\"\n",
        )
        .unwrap();
        let prompts = Prompts::new().with_flow_texts(&flow).unwrap();
        let err = run_offline(&flow, &prompts, &json!({}), &["x".into()])
            .await
            .unwrap_err();
        assert_eq!(err.turn, 0);
    }
}
