//! `subflow` and `llm` states in the pure engine: calling another flow and returning when it
//! ends, and an LLM reply applied only when every action it proposes is allowed.

use std::sync::Arc;

use serde_json::json;
use switchboard::agent::{
    parse_flow, Callees, CompiledFlow, Effect, FlowStatus, LlmAction, LlmReply, LlmResult, LlmTool,
    SlotType, StepOutcome, TurnInput,
};
use switchboard::nlu::NluModel;

use crate::common::{chat_of, demo_prompts, texts, Chat};

const MAIN: &str = r#"
id: main
name: Main
start: greet
states:
  greet: {kind: message, text: "Welcome.", next: ask_name}
  ask_name: {kind: ask, slot: name, text: "Your name?", next: faq}
  faq: {kind: subflow, flow: faq, next: after}
  after: {kind: end, text: "Back in main, {{ slots.name }}: {{ slots.topic }}."}
"#;

const FAQ: &str = r#"
id: faq
name: FAQ
start: topic
states:
  topic: {kind: ask, slot: topic, text: "What is your question, {{ slots.name }}?", next: done}
  done: {kind: end, text: "Thanks for asking about {{ slots.topic }}."}
"#;

fn compiled(yaml: &str, version: i32) -> Arc<CompiledFlow> {
    let flow = parse_flow(yaml).unwrap();
    let prompts = demo_prompts().with_flow_texts(&flow).unwrap();
    Arc::new(CompiledFlow {
        key: flow.id.clone(),
        flow,
        prompts,
        version,
        nlu: NluModel::default(),
    })
}

fn main_chat() -> Chat {
    let mut chat = chat_of(MAIN);
    chat.callees = Callees::new().with(compiled(FAQ, 7));
    chat
}

#[test]
fn a_subflow_runs_with_shared_slots_and_returns_to_next_when_it_ends() {
    let mut chat = main_chat();
    chat.send("hi");
    let out = chat.send("Ada");
    assert_eq!(texts(&out), ["What is your question, Ada?"]);
    assert_eq!(chat.state.state, "topic");
    let call = &chat.state.calls[0];
    assert_eq!(
        (call.flow.as_str(), call.version, call.from.as_str()),
        ("faq", 7, "faq")
    );
    let out = chat.send("parking");
    assert_eq!(
        texts(&out),
        [
            "Thanks for asking about parking.",
            "Back in main, Ada: parking."
        ]
    );
    assert!(chat.state.calls.is_empty());
    assert_eq!(
        chat.state.status,
        FlowStatus::Ended,
        "only main's end ends it"
    );
}

#[test]
fn go_back_inside_a_subflow_stays_in_it_and_history_returns_with_the_caller() {
    let mut chat = main_chat();
    chat.send("hi");
    chat.send("Ada");
    assert!(chat.state.history.is_empty() || chat.state.history == ["topic"]);
    let out = chat.send("go back");
    assert_eq!(
        texts(&out),
        ["What is your question, Ada?"],
        "first question of faq"
    );
    assert_eq!(chat.state.calls[0].history, ["ask_name"]);
}

#[test]
fn cancel_inside_a_subflow_ends_the_conversation_and_the_next_message_restarts_main() {
    let mut chat = main_chat();
    chat.send("hi");
    chat.send("Ada");
    let out = chat.send("cancel");
    assert_eq!(out.state.status, FlowStatus::Ended);
    assert!(chat.state.calls.is_empty());
    let out = chat.send("hello");
    assert_eq!(texts(&out), ["Welcome.", "Your name?"]);
}

#[test]
fn a_missing_called_flow_hands_off_with_a_reason() {
    let mut chat = chat_of(MAIN);
    chat.send("hi");
    let out = chat.send("Ada");
    assert_eq!(out.state.status, FlowStatus::Handoff);
    assert_eq!(
        out.handoff.as_deref(),
        Some("flow \"faq\" called at \"faq\" is not available")
    );
}

#[test]
fn a_flow_that_calls_back_into_a_running_one_is_handed_off() {
    let looping = FAQ.replace(
        "next: done}",
        "next: again}\n  again: {kind: subflow, flow: main, next: done}",
    );
    let mut chat = chat_of(MAIN);
    chat.callees = Callees::new().with(compiled(&looping, 1));
    chat.send("hi");
    chat.send("Ada");
    let out = chat.send("parking");
    assert_eq!(
        out.handoff.as_deref(),
        Some("flow \"main\" is already running")
    );
}

const ASSISTANT: &str = r#"
id: assistant
name: Assistant
start: helper
states:
  helper:
    kind: llm
    text: "You help {{ business.name }} customers. Known name: {{ slots.name | default('none') }}."
    tools: [set_slot, goto, handoff]
    slots: {email: email, party: number}
    exits: {book: booked, leave: bye}
    max_turns: 2
    on_fail: tired
    fallback: menu
  booked: {kind: end, text: "Booked for {{ slots.email }}."}
  bye: {kind: end, text: "Bye."}
  tired: {kind: end, text: "Let's stop here."}
  menu: {kind: end, text: "The assistant is away; here is our menu."}
"#;

fn llm_effect(out: &StepOutcome) -> switchboard::agent::LlmRequest {
    match &out.effect {
        Some(Effect::Llm(request)) => request.clone(),
        other => panic!("expected an llm effect, got {other:?}"),
    }
}

fn replied(text: Option<&str>, actions: Vec<LlmAction>) -> TurnInput {
    TurnInput::Llm(LlmResult::Replied(LlmReply {
        text: text.map(str::to_string),
        actions,
    }))
}

fn set(slot: &str, value: &str) -> LlmAction {
    LlmAction::SetSlot {
        slot: slot.into(),
        value: value.into(),
    }
}

fn goto(exit: &str) -> LlmAction {
    LlmAction::Goto { exit: exit.into() }
}

fn assistant() -> Chat {
    let mut chat = chat_of(ASSISTANT);
    let out = chat.send("hi");
    assert!(
        out.replies.is_empty() && out.effect.is_none(),
        "the first message starts it"
    );
    chat
}

#[test]
fn a_message_at_an_llm_state_asks_the_llm_with_the_rendered_prompt_and_allowed_tools() {
    let mut chat = assistant();
    let out = chat.send("I want to book for two, ada@Example.COM");
    let request = llm_effect(&out);
    assert_eq!(
        request.system,
        "You help Smile Dental customers. Known name: none."
    );
    assert_eq!(request.user, "I want to book for two, ada@Example.COM");
    assert_eq!(
        request.tools,
        [LlmTool::SetSlot, LlmTool::Goto, LlmTool::Handoff]
    );
    assert_eq!(
        request.slots,
        [
            ("email".to_string(), SlotType::Email),
            ("party".to_string(), SlotType::Number)
        ]
    );
    assert_eq!(request.exits, ["book", "leave"]);
    assert_eq!(out.state.state, "helper");
}

#[test]
fn validated_slots_and_an_exit_are_applied_after_the_text() {
    let mut chat = assistant();
    chat.send("book me, ada@Example.COM, two of us");
    let out = chat.input(replied(
        Some("Done!"),
        vec![
            set("email", "ada@Example.COM"),
            set("party", "two"),
            goto("book"),
        ],
    ));
    assert_eq!(texts(&out), ["Done!", "Booked for ada@example.com."]);
    assert_eq!(chat.state.slots["party"], json!(2));
}

#[test]
fn one_refused_action_sends_the_whole_reply_to_the_fallback() {
    let refused = [
        vec![set("email", "not an email")],
        vec![set("admin", "yes")],
        vec![goto("free_booking")],
        vec![goto("book"), goto("leave")],
        vec![goto("book"), LlmAction::Handoff { reason: "x".into() }],
    ];
    for actions in refused {
        let mut chat = assistant();
        chat.send("hello");
        let out = chat.input(replied(Some("Sure!"), actions.clone()));
        assert_eq!(
            texts(&out),
            ["The assistant is away; here is our menu."],
            "{actions:?}"
        );
        assert!(!chat.state.slots.contains_key("email"));
    }
}

#[test]
fn a_tool_the_state_does_not_offer_is_refused() {
    let yaml = ASSISTANT.replace("[set_slot, goto, handoff]", "[set_slot, goto]");
    let mut chat = chat_of(&yaml);
    chat.send("hi");
    chat.send("get me a human");
    let handoff = LlmAction::Handoff {
        reason: "asked".into(),
    };
    let out = chat.input(replied(None, vec![handoff]));
    assert_eq!(texts(&out), ["The assistant is away; here is our menu."]);
    assert_eq!(out.handoff, None);
}

#[test]
fn an_unavailable_llm_or_an_empty_reply_goes_to_the_fallback() {
    for input in [
        TurnInput::Llm(LlmResult::Unavailable("breaker open".into())),
        replied(Some("   "), vec![]),
    ] {
        let mut chat = assistant();
        chat.send("hello");
        let out = chat.input(input);
        assert_eq!(texts(&out), ["The assistant is away; here is our menu."]);
    }
}

#[test]
fn after_max_turns_the_next_message_goes_to_on_fail_without_a_call() {
    let mut chat = assistant();
    for question in ["one", "two"] {
        chat.send(question);
        let out = chat.input(replied(Some("Answer."), vec![]));
        assert_eq!(texts(&out), ["Answer."]);
        assert_eq!(chat.state.state, "helper");
    }
    let out = chat.send("three");
    assert_eq!(out.effect, None);
    assert_eq!(texts(&out), ["Let's stop here."]);
}

#[test]
fn the_handoff_tool_hands_over_after_saying_the_llm_text() {
    let mut chat = assistant();
    chat.send("I am in pain");
    let handoff = LlmAction::Handoff {
        reason: "emergency".into(),
    };
    let out = chat.input(replied(
        Some("Getting a dentist for you now."),
        vec![handoff],
    ));
    assert_eq!(texts(&out), ["Getting a dentist for you now."]);
    assert_eq!(out.state.status, FlowStatus::Handoff);
    assert_eq!(
        out.handoff.as_deref(),
        Some("the LLM at \"helper\" handed over: emergency")
    );
}

#[test]
fn repair_commands_are_not_sent_to_the_llm() {
    let mut chat = assistant();
    let out = chat.send("cancel");
    assert_eq!(out.effect, None);
    assert_eq!(out.state.status, FlowStatus::Ended);
}
