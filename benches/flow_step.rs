//! Benchmarks of the pure conversation step on the shipped dental demo flow.
//!
//! Loads `flows/dental_demo.yaml` and `prompts/` once (outside the timed
//! loops) and measures `step` for a first turn, a choice matched by spelling,
//! and a whole booking conversation.

use std::hint::black_box;
use std::path::Path;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use switchboard::agent::{
    initial_state, parse_flow, step, Flow, FlowState, Prompts, StepContext, TurnInput,
};

/// The booking conversation after the opening "hello".
const BOOKING: [&str; 4] = ["1", "Ann Smith", "ann@example.com", "tomorrow"];

struct Fixture {
    flow: Flow,
    prompts: Prompts,
    vars: Value,
    now: chrono::DateTime<Utc>,
}

impl Fixture {
    fn load() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let yaml = std::fs::read_to_string(root.join("flows/dental_demo.yaml"))
            .expect("read flows/dental_demo.yaml");
        let flow = parse_flow(&yaml).expect("parse flows/dental_demo.yaml");
        let prompts = Prompts::from_dir(root.join("prompts"))
            .and_then(|p| p.with_flow_texts(&flow))
            .expect("compile prompts/ and the flow's inline texts");
        let now = Utc
            .with_ymd_and_hms(2026, 3, 10, 9, 0, 0)
            .single()
            .expect("valid fixed date");
        Fixture {
            flow,
            prompts,
            vars: json!({"business": {"name": "Smile Dental"}}),
            now,
        }
    }

    fn ctx(&self) -> StepContext<'_> {
        StepContext::new(self.now, &self.prompts, &self.vars)
    }

    fn turn(&self, state: &FlowState, text: &str) -> FlowState {
        let input = TurnInput::Text(text.to_string());
        step(&self.flow, state, &input, &self.ctx())
            .unwrap_or_else(|e| panic!("step failed on {text:?}: {e}"))
            .state
    }
}

fn benches(c: &mut Criterion) {
    let fx = Fixture::load();
    let ctx = fx.ctx();
    let start = initial_state(&fx.flow);
    let hello = TurnInput::Text("hello".to_string());
    let after_hello = fx.turn(&start, "hello");
    assert_eq!(
        after_hello.state, "main_menu",
        "first turn should wait at main_menu"
    );

    // Sanity checks so the benchmarks measure the intended paths.
    let typo = TurnInput::Text("apointment".to_string());
    let picked = step(&fx.flow, &after_hello, &typo, &ctx).expect("step on typo");
    assert_eq!(
        picked.state.state, "ask_name",
        "\"apointment\" should pick booking"
    );
    let done = BOOKING
        .iter()
        .fold(after_hello.clone(), |s, t| fx.turn(&s, t));
    assert_eq!(done.state, "done", "booking should reach the end state");

    c.bench_function("first_turn", |b| {
        b.iter(|| {
            step(
                black_box(&fx.flow),
                black_box(&start),
                black_box(&hello),
                &ctx,
            )
        })
    });

    c.bench_function("choice_by_typo", |b| {
        b.iter(|| {
            step(
                black_box(&fx.flow),
                black_box(&after_hello),
                black_box(&typo),
                &ctx,
            )
        })
    });

    let inputs: Vec<TurnInput> = std::iter::once("hello")
        .chain(BOOKING)
        .map(|t| TurnInput::Text(t.to_string()))
        .collect();
    c.bench_function("full_booking", |b| {
        b.iter(|| {
            let mut state = initial_state(black_box(&fx.flow));
            for input in &inputs {
                let outcome = step(&fx.flow, &state, black_box(input), &ctx).expect("booking step");
                state = outcome.state;
            }
            black_box(state)
        })
    });
}

criterion_group!(flow_step, benches);
criterion_main!(flow_step);
