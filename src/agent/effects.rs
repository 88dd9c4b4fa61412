//! Running a step to the end of its effects: step, perform the effect the outcome asks for (a
//! webhook call, an LLM reply), resume the step with the result, and so on until no effect is
//! left. Shared by agent turns, wait timeouts and the simulator, which differ only in their
//! [`Performer`].
//!
//! Invariants: at most [`MAX_EFFECTS_PER_TURN`] effects per input (a flow that keeps calling
//! is reported as [`EffectError::TooMany`], like a runaway step); the outcomes are merged in
//! order, so the caller persists one state and sends every reply once; the step itself stays
//! pure — only the performer does I/O, and the only failure it reports is the database's
//! (a failed call or an unavailable LLM is a result the flow handles).

use super::effect::{Effect, HttpRequest, HttpResult, LlmRequest, LlmResult};
use super::flow::Flow;
use super::machine::{step, FlowState, StepContext, StepError, StepOutcome, TurnInput};

/// Most effects performed for one input.
pub const MAX_EFFECTS_PER_TURN: usize = 8;

/// Performs effects.
#[async_trait::async_trait]
pub trait Performer: Send {
    /// Calls the webhook `request` describes.
    async fn http(&mut self, request: &HttpRequest) -> Result<HttpResult, sqlx::Error>;
    /// Asks the LLM for the reply `request` describes.
    async fn llm(&mut self, request: &LlmRequest) -> Result<LlmResult, sqlx::Error>;
}

/// Why an input could not be run to the end of its effects.
#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    /// The step failed.
    #[error(transparent)]
    Step(#[from] StepError),
    /// The flow asked for more than [`MAX_EFFECTS_PER_TURN`] effects.
    #[error("more than {MAX_EFFECTS_PER_TURN} webhook or LLM calls for one message (last at \"{state}\"); the flow loops")]
    TooMany {
        /// The state asking for one more.
        state: String,
    },
    /// The performer's database work failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Steps `state` with `input`, then performs and resumes every effect; the merged outcome has
/// no effect left.
pub async fn run_step(
    flow: &Flow,
    state: &FlowState,
    input: &TurnInput,
    ctx: &StepContext<'_>,
    performer: &mut dyn Performer,
) -> Result<StepOutcome, EffectError> {
    let mut outcome = step(flow, state, input, ctx)?;
    let mut performed = 0;
    while let Some(effect) = outcome.effect.take() {
        if performed == MAX_EFFECTS_PER_TURN {
            return Err(EffectError::TooMany {
                state: outcome.state.state,
            });
        }
        performed += 1;
        let result = match &effect {
            Effect::Http(request) => TurnInput::Http(performer.http(request).await?),
            Effect::Llm(request) => TurnInput::Llm(performer.llm(request).await?),
        };
        let next = step(flow, &outcome.state, &result, ctx)?;
        outcome = outcome.then(next);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::flow::parse_flow;
    use crate::agent::machine::initial_state;
    use crate::agent::prompts::Prompts;
    use serde_json::json;

    /// Answers every call with the same reply and counts them.
    struct Canned(usize);

    #[async_trait::async_trait]
    impl Performer for Canned {
        async fn http(&mut self, _: &HttpRequest) -> Result<HttpResult, sqlx::Error> {
            self.0 += 1;
            Ok(HttpResult::Ok(json!({"n": self.0})))
        }
        async fn llm(&mut self, _: &LlmRequest) -> Result<LlmResult, sqlx::Error> {
            Ok(LlmResult::Unavailable("none".into()))
        }
    }

    const CHAIN: &str = "id: f\nname: F\nstart: a\nstates:\n  \
        a: {kind: http, url: \"https://x.test/1\", map: {one: /n}, next: b}\n  \
        b: {kind: http, url: \"https://x.test/2\", map: {two: /n}, next: c}\n  \
        c: {kind: end, text: \"{{ slots.one }} then {{ slots.two }}\"}\n";

    #[tokio::test]
    async fn effects_are_performed_in_order_and_outcomes_merged() {
        let flow = parse_flow(CHAIN).unwrap();
        let prompts = Prompts::new().with_flow_texts(&flow).unwrap();
        let vars = json!({});
        let ctx = StepContext::new(chrono::Utc::now(), &prompts, &vars);
        let mut canned = Canned(0);
        let start = TurnInput::Text("hi".into());
        let out = run_step(&flow, &initial_state(&flow), &start, &ctx, &mut canned)
            .await
            .unwrap();
        assert_eq!(canned.0, 2);
        assert_eq!(out.replies[0].text, "1 then 2");
        assert_eq!(out.effect, None);
        assert!(out.ended);
    }

    #[tokio::test]
    async fn a_flow_that_keeps_calling_is_stopped() {
        let looping = "id: f\nname: F\nstart: a\nstates:\n  \
            a: {kind: http, url: \"https://x.test/1\", next: b}\n  \
            b: {kind: route, routes: [{when: \"true\", to: a}], default: a}\n";
        let flow = parse_flow(looping).unwrap();
        let prompts = Prompts::new();
        let vars = json!({});
        let ctx = StepContext::new(chrono::Utc::now(), &prompts, &vars);
        let start = TurnInput::Text("hi".into());
        let err = run_step(&flow, &initial_state(&flow), &start, &ctx, &mut Canned(0))
            .await
            .unwrap_err();
        assert!(
            matches!(err, EffectError::TooMany { ref state } if state == "a"),
            "{err}"
        );
    }
}
