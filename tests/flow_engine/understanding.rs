//! The demo flow reading free text with the embedded understanding: routing the first message
//! by intent, prefilling later questions from entities, options chosen by intent, digressions
//! (answered, then the question resumes), corrections of earlier answers, and the `route` and
//! `set` state kinds. The clock is Tuesday 2026-03-03 10:00 UTC.

use serde_json::json;
use switchboard::agent::{parse_flow, FlowStatus, Prompts};

use crate::common::{texts, Chat};

fn book_to_email(chat: &mut Chat) {
    chat.send("hi");
    chat.send("1");
    chat.send("Ann Smith");
    assert_eq!(chat.state.state, "ask_email");
}

#[test]
fn a_free_text_first_message_books_with_the_day_already_noted() {
    let mut chat = Chat::demo();
    let out = chat.send("I'd like to come in next Thursday afternoon");
    assert_eq!(
        chat.understood.intent_name(),
        Some("book_appointment"),
        "{:?}",
        chat.understood
    );
    let when = chat.understood.entity("when").expect("a time expression");
    assert_eq!(
        when.value["canonical"],
        "interval:2026-03-05T12:00..2026-03-05T17:00"
    );
    assert_eq!(chat.state.state, "ask_name", "{:?}", texts(&out));
    assert!(texts(&out)[0].contains("Smile Dental"), "greeting first");
    assert_eq!(
        chat.state.slots["date"]["canonical"],
        "interval:2026-03-05T12:00..2026-03-05T17:00"
    );
    chat.send("Ann Smith");
    let out = chat.send("ann@example.com");
    assert_eq!(
        chat.state.status,
        FlowStatus::Ended,
        "the date question is skipped"
    );
    let all = texts(&out).join("\n");
    assert!(all.contains("Thursday 5 March, 12:00–17:00"), "{all}");
}

#[test]
fn a_greeting_gets_the_menu() {
    let mut chat = Chat::demo();
    let out = chat.send("hello there");
    assert_eq!(chat.state.state, "main_menu");
    assert_eq!(out.replies.last().map(|r| r.options.len()), Some(3));
}

#[test]
fn a_menu_option_is_chosen_by_intent() {
    let mut chat = Chat::demo();
    chat.send("hi");
    chat.send("I need to see the dentist for a check-up");
    assert_eq!(chat.state.state, "ask_name");
    assert_eq!(chat.state.slots["main_menu"], "book");
}

#[test]
fn entities_in_one_message_fill_several_questions() {
    let mut chat = Chat::demo();
    chat.send("hi");
    chat.send("1");
    let out = chat.send("Ann Smith");
    assert_eq!(chat.state.state, "ask_email", "{:?}", texts(&out));
    let out = chat.send("ann@example.com, and tomorrow at 3pm would be great");
    assert_eq!(chat.state.status, FlowStatus::Ended, "{:?}", texts(&out));
    assert_eq!(chat.state.slots["email"], "ann@example.com");
    assert_eq!(
        chat.state.slots["date"]["canonical"],
        "datetime:2026-03-04T15:00"
    );
}

#[test]
fn a_question_mid_form_is_answered_then_the_form_resumes() {
    let mut chat = Chat::demo();
    book_to_email(&mut chat);
    let out = chat.send("what time do you open on saturdays?");
    let t = texts(&out);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t[0].contains("Saturday 9:00"), "{t:?}");
    assert!(t[1].to_lowercase().contains("email"), "{t:?}");
    assert_eq!(chat.state.state, "ask_email");
    assert_eq!(
        chat.state.attempts, 0,
        "a digression is not a failed answer"
    );
    chat.send("ann@example.com");
    assert_eq!(chat.state.state, "ask_date");
}

#[test]
fn a_question_at_the_menu_is_answered_and_the_menu_offered_again() {
    let mut chat = Chat::demo();
    chat.send("hi");
    let out = chat.send("how much does a filling cost?");
    let t = texts(&out);
    assert!(t[0].contains("£90"), "{t:?}");
    assert_eq!(out.replies.last().map(|r| r.options.len()), Some(3));
    assert_eq!(chat.state.state, "main_menu");
}

#[test]
fn an_emergency_leaves_the_form_for_a_person() {
    let mut chat = Chat::demo();
    book_to_email(&mut chat);
    let out = chat.send("my tooth is killing me and my face is swollen");
    assert_eq!(chat.state.status, FlowStatus::Handoff, "{:?}", texts(&out));
    assert_eq!(out.handoff.as_deref(), Some("dental emergency"));
}

#[test]
fn an_earlier_answer_can_be_corrected() {
    let mut chat = Chat::demo();
    book_to_email(&mut chat);
    chat.send("ann@example.com");
    assert_eq!(chat.state.state, "ask_date");
    let out = chat.send("actually my email is ann.smith@example.org");
    let t = texts(&out);
    assert!(t[0].contains("ann.smith@example.org"), "{t:?}");
    assert_eq!(chat.state.slots["email"], "ann.smith@example.org");
    assert_eq!(
        chat.state.state, "ask_date",
        "the current question is asked again"
    );
    let out = chat.send("sorry, my name is Ann Lee");
    assert!(texts(&out)[0].contains("Ann Lee"), "{:?}", texts(&out));
    assert_eq!(chat.state.slots["name"], "Ann Lee");
    chat.send("Friday morning");
    assert_eq!(chat.state.status, FlowStatus::Ended);
    assert_eq!(
        chat.state.slots["date"]["canonical"],
        "interval:2026-03-06T08:00..2026-03-06T12:00"
    );
}

#[test]
fn a_plain_answer_is_not_a_correction() {
    let mut chat = Chat::demo();
    book_to_email(&mut chat);
    chat.send("ann@example.com");
    chat.send("tomorrow, sorry for the wait");
    assert_eq!(chat.state.status, FlowStatus::Ended);
    assert_eq!(chat.state.slots["email"], "ann@example.com");
}

#[test]
fn corrections_can_be_switched_off() {
    let yaml = std::fs::read_to_string(format!("{}/flows/dental_demo.yaml", crate::common::root()))
        .unwrap()
        .replace(
            "start: greet\n",
            "start: greet\nrepair:\n  correct: false\n",
        );
    let flow = parse_flow(&yaml).unwrap();
    let mut chat = Chat::new(flow, crate::common::demo_prompts());
    book_to_email(&mut chat);
    chat.send("ann@example.com");
    chat.send("actually my email is ann.smith@example.org");
    assert_eq!(chat.state.slots["email"], "ann@example.com");
}

const ROUTING: &str = r#"
id: routing
name: Routing
start: first
understanding:
  intents:
    order: [I want to order a pizza, can I order food, I'd like to place an order, order please]
    track: [where is my order, track my delivery, has my food left yet, how long until my pizza arrives]
states:
  first:
    kind: route
    routes:
      - intent: order
        entity: when
        to: scheduled
      - when: "intent == 'order'"
        to: now_order
      - intent: track
        min_confidence: 0.2
        to: tracking
    default: menu
  scheduled:
    kind: set
    values:
      kind: "'scheduled'"
      day: "entities.when.canonical"
    next: done
  now_order:
    kind: set
    values:
      kind: "'asap'"
    next: done
  tracking:
    kind: end
    text: Tracking.
  menu:
    kind: ask
    slot: anything
    text: What would you like?
    next: done
  done:
    kind: end
    text: "{{ slots.kind }}{% if slots.day is defined %} {{ slots.day }}{% endif %}"
"#;

fn routing_chat() -> Chat {
    let flow = parse_flow(ROUTING).unwrap();
    let prompts = Prompts::new()
        .with_override("ask_retry", "again")
        .unwrap()
        .with_flow_texts(&flow)
        .unwrap();
    Chat::new(flow, prompts)
}

#[test]
fn route_rules_use_intent_entities_and_conditions_in_order() {
    let mut chat = routing_chat();
    let out = chat.send("I'd like to order a pizza for tomorrow at 7pm");
    assert_eq!(texts(&out), ["scheduled datetime:2026-03-04T19:00"]);
    let mut chat = routing_chat();
    let out = chat.send("can I order a pizza please");
    assert_eq!(texts(&out), ["asap"]);
    let mut chat = routing_chat();
    let out = chat.send("where's my delivery?");
    assert_eq!(texts(&out), ["Tracking."]);
    let mut chat = routing_chat();
    chat.send("the weather is lovely");
    assert_eq!(chat.state.state, "menu");
}

#[test]
fn set_values_are_expressions_over_slots() {
    let flow = parse_flow(
        "id: s\nname: S\nstart: n\nstates:\n  n:\n    kind: ask\n    slot: n\n    type: number\n    text: How many?\n    next: calc\n  \
         calc:\n    kind: set\n    values:\n      double: slots.n * 2\n      label: \"'x' ~ (slots.n * 2)\"\n      n: none\n    next: e\n  \
         e:\n    kind: end\n    text: \"{{ slots.double }} {{ slots.label }} {{ 'yes' if slots.n is defined else 'no' }}\"\n",
    )
    .unwrap();
    let prompts = Prompts::new()
        .with_override("ask_retry", "again")
        .unwrap()
        .with_flow_texts(&flow)
        .unwrap();
    let mut chat = Chat::new(flow, prompts);
    chat.send("hi");
    let out = chat.send("21");
    assert_eq!(texts(&out), ["42 x42 no"]);
    assert_eq!(chat.state.slots.get("n"), None);
    assert_eq!(chat.state.slots["double"], json!(42));
}
