//! Shared helpers for the integration tests: load the real demo flow and
//! prompts from the crate root and drive conversations turn by turn.
//! Invariant: the clock is fixed (Tuesday 2026-03-03 10:00 UTC), so
//! relative dates are deterministic.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use switchboard::agent::{
    initial_state, parse_flow, step, Callees, Flow, FlowState, Prompts, StepContext, StepOutcome,
    TurnInput,
};
use switchboard::nlu::datetime::TimeContext;
use switchboard::nlu::{NluModel, Understanding};

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

/// A conversation over one flow with fixed prompts, vars and clock, reading each message with
/// the flow's trained embedded understanding (as the gateway does).
pub struct Chat {
    pub flow: Flow,
    pub prompts: Prompts,
    pub vars: Value,
    pub state: FlowState,
    pub nlu: NluModel,
    pub now: DateTime<Utc>,
    pub tz: chrono_tz::Tz,
    /// The understanding of the last message sent.
    pub understood: Understanding,
    /// Flows `subflow` states may call.
    pub callees: Callees,
}

impl Chat {
    pub fn demo() -> Self {
        Self::new(demo_flow(), demo_prompts())
    }

    pub fn new(flow: Flow, prompts: Prompts) -> Self {
        let state = initial_state(&flow);
        let nlu =
            NluModel::train(&flow.understanding.intents, flow.understanding.threshold).unwrap();
        Chat {
            flow,
            prompts,
            vars: vars(),
            state,
            nlu,
            now: now(),
            tz: chrono_tz::UTC,
            understood: Understanding::default(),
            callees: Callees::new(),
        }
    }

    /// Sends one message, keeps the new state and returns the outcome.
    pub fn send(&mut self, text: &str) -> StepOutcome {
        let out = self.try_send(text).unwrap();
        self.state = out.state.clone();
        out
    }

    pub fn understand(&self, text: &str) -> Understanding {
        let time = TimeContext::from_utc(self.now, self.tz);
        self.nlu
            .understand(text, &time, self.flow.country_code(), None)
    }

    pub fn try_send(&mut self, text: &str) -> Result<StepOutcome, switchboard::agent::StepError> {
        self.understood = self.understand(text);
        self.try_input(&TurnInput::Text(text.into()))
    }

    /// Feeds any input (an effect's result, a timer) with the last message's understanding.
    pub fn try_input(
        &mut self,
        input: &TurnInput,
    ) -> Result<StepOutcome, switchboard::agent::StepError> {
        let ctx = StepContext::new(self.now, &self.prompts, &self.vars)
            .in_zone(self.tz)
            .understood(&self.understood)
            .calling(&self.callees);
        step(&self.flow, &self.state, input, &ctx)
    }

    /// Feeds `input`, keeps the new state and returns the outcome.
    pub fn input(&mut self, input: TurnInput) -> StepOutcome {
        let out = self.try_input(&input).unwrap();
        self.state = out.state.clone();
        out
    }

    pub fn slot(&self, name: &str) -> Option<&str> {
        self.state.slots.get(name).and_then(Value::as_str)
    }
}

/// A chat over the flow in `yaml`, with the demo templates plus the flow's inline texts.
pub fn chat_of(yaml: &str) -> Chat {
    let flow = parse_flow(yaml).unwrap();
    let prompts = demo_prompts().with_flow_texts(&flow).unwrap();
    Chat::new(flow, prompts)
}

/// All reply texts of an outcome, in order.
pub fn texts(out: &StepOutcome) -> Vec<&str> {
    out.replies.iter().map(|r| r.text.as_str()).collect()
}
