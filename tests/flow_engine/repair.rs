//! Global repair commands over the real demo flow: cancel, ask for a person, go back; and a flow
//! that switches them off.

use crate::common;

use common::{texts, Chat};
use switchboard::agent::{parse_flow, FlowStatus};

/// Into the booking form, at the email question.
fn at_email() -> Chat {
    let mut chat = Chat::demo();
    chat.send("hi");
    chat.send("1");
    chat.send("Ada Lovelace");
    assert_eq!(chat.state.state, "ask_email");
    chat
}

#[test]
fn cancel_mid_form_stops_and_forgets_and_the_next_message_starts_over() {
    let mut chat = at_email();
    let out = chat.send("never mind");
    assert_eq!(out.state.status, FlowStatus::Ended);
    assert!(out.state.slots.is_empty());
    assert!(
        texts(&out).join(" ").contains("stopped"),
        "{:?}",
        texts(&out)
    );
    let again = chat.send("hello");
    assert_eq!(again.state.state, "main_menu");
    assert_eq!(again.state.status, FlowStatus::Active);
}

#[test]
fn asking_for_a_person_hands_off_from_any_question() {
    let mut chat = at_email();
    let out = chat.send("Can I talk to a person?");
    assert_eq!(out.state.status, FlowStatus::Handoff);
    assert_eq!(out.handoff.as_deref(), Some("customer asked for a person"));
    assert!(
        texts(&out).join(" ").contains("Smile Dental team"),
        "{:?}",
        texts(&out)
    );
    assert!(
        chat.send("hello?").replies.is_empty(),
        "a person owns it now"
    );
}

#[test]
fn going_back_asks_the_previous_question_again_and_the_new_answer_wins() {
    let mut chat = at_email();
    let out = chat.send("go back");
    assert_eq!(out.state.state, "ask_name");
    assert!(
        texts(&out).join(" ").to_lowercase().contains("name"),
        "{:?}",
        texts(&out)
    );
    chat.send("Ada King");
    assert_eq!(chat.slot("name"), Some("Ada King"));
    assert_eq!(chat.state.state, "ask_email");
    // Back twice from the email question reaches the menu.
    chat.send("back");
    let out = chat.send("back");
    assert_eq!(out.state.state, "main_menu");
    assert_eq!(out.replies.last().map(|r| r.options.len()), Some(3));
}

#[test]
fn going_back_at_the_first_question_repeats_it() {
    let mut chat = Chat::demo();
    chat.send("hi");
    let out = chat.send("back");
    assert_eq!(out.state.state, "main_menu");
    assert_eq!(out.replies.len(), 1);
}

#[test]
fn a_sentence_that_mentions_cancel_is_an_answer_not_a_command() {
    let mut chat = Chat::demo();
    chat.send("hi");
    chat.send("1");
    let out = chat.send("I want to cancel my appointment");
    // The name question takes free text: it is stored as the answer, not treated as "cancel".
    assert_eq!(out.state.status, FlowStatus::Active);
    assert_eq!(out.state.state, "ask_email");
}

#[test]
fn a_flow_can_switch_repair_off() {
    let yaml = r#"
id: strict
name: Strict
start: ask
repair:
  cancel: false
states:
  ask:
    kind: ask
    slot: word
    type: text
    text: "Say a word"
    next: done
  done:
    kind: end
    text: "You said {{ slots.word }}"
"#;
    let flow = parse_flow(yaml).expect("valid");
    let prompts = common::demo_prompts()
        .with_flow_texts(&flow)
        .expect("texts");
    let mut chat = Chat::new(flow, prompts);
    chat.send("hi");
    let out = chat.send("cancel");
    assert_eq!(out.state.status, FlowStatus::Ended);
    assert_eq!(texts(&out), ["You said cancel"]);
    // Still on: asking for a person.
    chat.send("hi");
    assert_eq!(chat.send("human").state.status, FlowStatus::Handoff);
}
