//! The flow simulator: a scripted conversation run through [`step`] with no channel, no database
//! and no clock of its own.
//!
//! Owns `simulate` and the per-turn record it returns (flows are checked and compiled first by
//! [`super::preflight`]). Invariants: pure (time and template variables come from the caller); starts from
//! [`initial_state`] and feeds each turn the state the previous one produced, exactly as the
//! gateway would; a step failure stops the run and names the 0-based turn that failed; a flow
//! with an error-severity problem is never run.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::flow::Flow;
use super::machine::{initial_state, step, FlowStatus, Reply, StepContext, StepError, TurnInput};
use super::prompts::Prompts;
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
    /// What the embedded understanding read in the turn (intent, alternatives, entities).
    #[schema(value_type = Object)]
    pub understanding: Understanding,
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
}

/// Why a simulation stopped.
#[derive(Debug, thiserror::Error)]
#[error("turn {turn} failed: {source}")]
pub struct SimulateError {
    /// 0-based index of the failing turn.
    pub turn: usize,
    /// What went wrong.
    #[source]
    pub source: StepError,
}

/// Runs `turns` through the flow from its initial state, in the time zone named by
/// `vars.business.timezone` (UTC when unset or unknown).
pub fn simulate(
    run: Runnable<'_>,
    vars: &Value,
    now: DateTime<Utc>,
    turns: &[String],
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
            .understood(&understanding);
        let outcome = step(run.flow, &state, &TurnInput::Text(input.clone()), &ctx)
            .map_err(|source| SimulateError { turn, source })?;
        state = outcome.state;
        out.push(SimulatedTurn {
            input: input.clone(),
            replies: outcome.replies,
            state: state.state.clone(),
            status: state.status,
            slots: state.slots.clone(),
            understanding,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::flow::parse_flow;
    use serde_json::json;

    #[test]
    fn runs_turns_in_order_and_carries_state() {
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
        let nlu = NluModel::default();
        let run = Runnable {
            flow: &flow,
            prompts: &prompts,
            nlu: &nlu,
        };
        let out = simulate(run, &vars, Utc::now(), &turns).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].replies[0].text, "Hello Acme");
        assert_eq!(out[0].state, "name");
        assert_eq!(out[0].status, FlowStatus::Active);
        assert_eq!(out[1].replies[0].text, "Bye Ada");
        assert_eq!(out[1].status, FlowStatus::Ended);
        assert_eq!(out[1].slots["name"], "Ada");
    }

    #[test]
    fn a_failing_turn_is_named() {
        let flow = parse_flow(
            "id: f\nname: F\nstart: a\nstates:\n  a:\n    kind: end\n    text: \"{{ nope }}\"\n",
        )
        .unwrap();
        let prompts = Prompts::new().with_flow_texts(&flow).unwrap();
        let nlu = NluModel::default();
        let run = Runnable {
            flow: &flow,
            prompts: &prompts,
            nlu: &nlu,
        };
        let err = simulate(run, &json!({}), Utc::now(), &["x".into()]).unwrap_err();
        assert_eq!(err.turn, 0);
    }
}
