//! Shared helpers for the integration tests: load the real demo flow and
//! prompts from the crate root and drive conversations turn by turn.
//! Invariant: the clock is fixed (Tuesday 2026-03-03 10:00 UTC), so
//! relative dates are deterministic.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use switchboard::agent::{
    initial_state, parse_flow, step, Flow, FlowState, Prompts, StepContext, StepOutcome, TurnInput,
};

pub fn root() -> &'static str {
    env!("CARGO_MANIFEST_DIR")
}

pub fn demo_flow() -> Flow {
    let path = format!("{}/flows/dental_demo.yaml", root());
    let yaml = std::fs::read_to_string(path).unwrap();
    parse_flow(&yaml).unwrap()
}

pub fn demo_prompts() -> Prompts {
    Prompts::from_dir(format!("{}/prompts", root())).unwrap()
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, 10, 0, 0).unwrap()
}

pub fn vars() -> Value {
    json!({"business": {"name": "Smile Dental"}})
}

/// A conversation over one flow with fixed prompts, vars and clock.
pub struct Chat {
    pub flow: Flow,
    pub prompts: Prompts,
    pub vars: Value,
    pub state: FlowState,
}

impl Chat {
    pub fn demo() -> Self {
        Self::new(demo_flow(), demo_prompts())
    }

    pub fn new(flow: Flow, prompts: Prompts) -> Self {
        let state = initial_state(&flow);
        Chat {
            flow,
            prompts,
            vars: vars(),
            state,
        }
    }

    /// Sends one message, keeps the new state and returns the outcome.
    pub fn send(&mut self, text: &str) -> StepOutcome {
        let out = self.try_send(text).unwrap();
        self.state = out.state.clone();
        out
    }

    pub fn try_send(&self, text: &str) -> Result<StepOutcome, switchboard::agent::StepError> {
        let ctx = StepContext {
            now: now(),
            prompts: &self.prompts,
            vars: &self.vars,
        };
        step(&self.flow, &self.state, &TurnInput::Text(text.into()), &ctx)
    }

    pub fn slot(&self, name: &str) -> Option<&str> {
        self.state.slots.get(name).and_then(Value::as_str)
    }
}

/// All reply texts of an outcome, in order.
pub fn texts(out: &StepOutcome) -> Vec<&str> {
    out.replies.iter().map(|r| r.text.as_str()).collect()
}
