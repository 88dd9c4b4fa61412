//! `step` on small hand-written flows: inline text, loops, corrupt state,
//! template errors and default handoff without a `handoff` template.
//! Invariant: flows here are parsed but deliberately not always valid.

use crate::common;

use common::{texts, Chat};
use switchboard::agent::{parse_flow, FlowStatus, PromptError, Prompts, StepError};

const INLINE: &str = r#"
id: inline
name: Inline
start: hello
states:
  hello:
    kind: message
    text: "Hi from {{ business.name }}"
    next: pick
  pick:
    kind: choice
    text: "Yes or no?"
    options:
      - { id: "yes", label: "Yes", next: bye }
      - { id: "no", label: "No", next: bye }
    max_attempts: 1
  bye:
    kind: end
    text: "Bye {{ slots.pick }}"
"#;

#[test]
fn inline_text_renders_with_and_without_precompilation() {
    let flow = parse_flow(INLINE).unwrap();
    let plain = Prompts::new()
        .with_override("choice_retry", "again")
        .unwrap();
    let compiled = plain.clone().with_flow_texts(&flow).unwrap();
    assert!(compiled.has("inline#hello.text"));
    for prompts in [plain, compiled] {
        let mut chat = Chat::new(flow.clone(), prompts);
        let out = chat.send("start");
        assert_eq!(texts(&out), ["Hi from Smile Dental", "Yes or no?"]);
        let out = chat.send("YES!");
        assert_eq!(texts(&out), ["Bye yes"]);
        assert!(out.ended);
    }
}

#[test]
fn default_handoff_without_template_uses_fallback() {
    let flow = parse_flow(INLINE).unwrap();
    let prompts = Prompts::new()
        .with_override("choice_retry", "again")
        .unwrap();
    let mut chat = Chat::new(flow, prompts);
    chat.send("start");
    let out = chat.send("maybe");
    assert_eq!(out.state.status, FlowStatus::Handoff);
    assert_eq!(texts(&out), [switchboard::agent::machine::HANDOFF_FALLBACK]);
    assert!(out.handoff.unwrap_or_default().contains("\"pick\""));
}

#[test]
fn auto_transition_loop_is_a_step_error() {
    let yaml = r#"
id: loop
name: Loop
start: a
states:
  a: { kind: message, text: "a", next: b }
  b: { kind: message, text: "b", next: a }
"#;
    let mut chat = Chat::new(parse_flow(yaml).unwrap(), Prompts::new());
    let err = chat.try_send("hi").unwrap_err();
    assert!(matches!(err, StepError::Runaway { limit: 64, .. }), "{err}");
}

#[test]
fn unknown_persisted_state_is_an_error() {
    let mut chat = Chat::demo();
    chat.send("hi");
    chat.state.state = "gone".into();
    let err = chat.try_send("1").unwrap_err();
    assert!(matches!(&err, StepError::UnknownState { state, .. } if state == "gone"));
    assert!(err.to_string().contains("dental_demo"));
}

#[test]
fn input_at_non_waiting_state_is_an_error() {
    let mut chat = Chat::demo();
    chat.send("hi");
    chat.state.state = "confirm".into();
    let err = chat.try_send("1").unwrap_err();
    assert!(
        matches!(
            err,
            StepError::NotWaiting {
                kind: "message",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn missing_template_variable_is_a_prompt_error() {
    let mut chat = Chat::demo();
    chat.vars = serde_json::json!({});
    let err = chat.try_send("hi").unwrap_err();
    assert!(
        matches!(err, StepError::Prompt(PromptError::Render { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("greeting"), "{err}");
}

#[test]
fn templates_see_state_attempt_and_error() {
    let yaml = r#"
id: vars
name: Vars
start: n
states:
  n:
    kind: ask
    slot: count
    type: number
    text: "How many?"
    retry: retry
    next: done
  done: { kind: end, text: "{{ slots.count + 1 }}" }
"#;
    let prompts = Prompts::new()
        .with_override("retry", "{{ state }}/{{ attempt }}: {{ error }}")
        .unwrap();
    let mut chat = Chat::new(parse_flow(yaml).unwrap(), prompts);
    chat.send("go");
    let out = chat.send("lots");
    assert!(texts(&out)[0].starts_with("n/1: Please reply with a number"));
    let out = chat.send("twelve");
    assert_eq!(texts(&out), ["13"]);
}

#[test]
fn phone_slot_uses_state_country_code() {
    let yaml = r#"
id: phone
name: Phone
start: p
states:
  p: { kind: ask, slot: phone, type: phone, text: "Number?", country_code: "44", next: done }
  done: { kind: end }
"#;
    let prompts = Prompts::new()
        .with_override("ask_retry", "{{ error }}")
        .unwrap();
    let mut chat = Chat::new(parse_flow(yaml).unwrap(), prompts);
    chat.send("hi");
    let out = chat.send("020 7946 0018");
    assert!(out.replies.is_empty());
    assert!(out.ended);
    assert_eq!(chat.slot("phone"), Some("+442079460018"));
}
