//! End-to-end tests of `step` over the real demo flow and prompt files.
//! Invariant: every test starts from `initial_state` and a fixed clock.

use crate::common;

use common::{texts, Chat};
use switchboard::agent::{validate, FlowStatus};

#[test]
fn demo_flow_is_valid_with_real_prompts() {
    let prompts = common::demo_prompts();
    let flow = common::demo_flow();
    let has = |name: &str| prompts.has(name);
    assert_eq!(validate(&flow, &has), Ok(()));
    assert_eq!(flow.states.first().map(|(n, _)| n.as_str()), Some("greet"));
}

#[test]
fn first_message_greets_and_shows_menu() {
    let mut chat = Chat::demo();
    let out = chat.send("hi there");
    assert_eq!(out.replies.len(), 2);
    assert!(out.replies[0].text.contains("Smile Dental"));
    assert!(out.replies[0].options.is_empty());
    let menu = &out.replies[1];
    let ids: Vec<&str> = menu.options.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["book", "question", "human"]);
    assert!(
        menu.text.contains("1. Book an appointment"),
        "{}",
        menu.text
    );
    assert!(menu.text.contains("3. Talk to a person"), "{}", menu.text);
    assert_eq!(out.state.state, "main_menu");
    assert_eq!(out.state.status, FlowStatus::Active);
    assert!(out.state.started);
    assert!(!out.ended);
    assert_eq!(out.handoff, None);
}

#[test]
fn happy_booking_path() {
    let mut chat = Chat::demo();
    chat.send("hello");
    let out = chat.send("1");
    assert_eq!(out.state.state, "ask_name");
    assert!(texts(&out)[0].contains("full name"));
    let out = chat.send("  Ann Smith ");
    assert_eq!(out.state.state, "ask_email");
    assert!(texts(&out)[0].contains("Ann Smith"));
    let out = chat.send("Ann.Smith@Example.COM");
    assert_eq!(out.state.state, "ask_date");
    let out = chat.send("tomorrow");
    assert_eq!(out.replies.len(), 2, "{:?}", texts(&out));
    let confirm = texts(&out)[0];
    assert!(confirm.starts_with("Thanks Ann Smith!"), "{confirm}");
    assert!(confirm.contains("Ann.Smith@example.com"), "{confirm}");
    assert!(confirm.contains("Wednesday 4 March"), "{confirm}");
    assert!(texts(&out)[1].contains("Smile Dental"));
    assert!(out.ended);
    assert_eq!(out.state.status, FlowStatus::Ended);
    assert_eq!(out.state.state, "done");
    assert_eq!(chat.slot("main_menu"), Some("book"));
    assert_eq!(chat.slot("name"), Some("Ann Smith"));
    assert_eq!(chat.slot("email"), Some("Ann.Smith@example.com"));
    assert_eq!(chat.state.slots["date"]["canonical"], "date:2026-03-04");
}

#[test]
fn invalid_email_then_valid() {
    let mut chat = Chat::demo();
    for msg in ["hi", "book", "Bob"] {
        chat.send(msg);
    }
    let out = chat.send("bob at example dot com");
    assert_eq!(out.state.state, "ask_email");
    assert_eq!(out.state.attempts, 1);
    assert_eq!(out.replies.len(), 1);
    assert!(
        out.replies[0].text.contains("spaces"),
        "{}",
        out.replies[0].text
    );
    let out = chat.send("bob@example");
    assert_eq!(out.state.attempts, 2);
    assert!(out.replies[0].text.contains("example.com"));
    let out = chat.send("bob@example.com");
    assert_eq!(out.state.state, "ask_date");
    assert_eq!(out.state.attempts, 0);
    assert_eq!(chat.slot("email"), Some("bob@example.com"));
}

#[test]
fn invalid_date_explains_ambiguity() {
    let mut chat = Chat::demo();
    for msg in ["hi", "book", "Bob", "bob@example.com"] {
        chat.send(msg);
    }
    let out = chat.send("3/12/2026");
    assert_eq!(out.state.state, "ask_date");
    let text = &out.replies[0].text;
    assert!(
        text.contains("3 December 2026") && text.contains("12 March 2026"),
        "{text}"
    );
    let out = chat.send("next tuesday");
    assert!(out.ended);
    assert_eq!(chat.state.slots["date"]["canonical"], "date:2026-03-10");
}

#[test]
fn choice_by_number_label_and_typo() {
    let cases = [
        ("1", "ask_name"),
        ("2.", "ask_question"),
        ("#3", "to_human"),
        ("option 2", "ask_question"),
        ("the second one", "ask_question"),
        ("third", "to_human"),
        ("Book an appointment", "ask_name"),
        ("ask a question!", "ask_question"),
        ("book", "ask_name"),
        ("apointment", "ask_name"),
        ("tlak to a persn", "to_human"),
        ("I'd like to book an appointment please", "ask_name"),
        ("can I speak to someone", "to_human"),
        ("talk", "to_human"),
    ];
    for (input, expected) in cases {
        let mut chat = Chat::demo();
        chat.send("hi");
        let out = chat.send(input);
        assert_eq!(out.state.state, expected, "input {input:?}");
    }
}

#[test]
fn unmatched_choice_retries_with_options_then_hands_off() {
    let mut chat = Chat::demo();
    chat.send("hi");
    for attempt in 1..=2 {
        let out = chat.send("banana");
        assert_eq!(out.state.state, "main_menu");
        assert_eq!(out.state.attempts, attempt);
        assert_eq!(out.replies.len(), 1);
        assert!(out.replies[0].text.starts_with("Sorry"));
        assert!(out.replies[0].text.contains("2. Ask a question"));
        assert_eq!(out.replies[0].options.len(), 3);
        assert_eq!(out.handoff, None);
    }
    let out = chat.send("banana");
    assert_eq!(out.state.state, "to_human");
    assert_eq!(out.state.status, FlowStatus::Handoff);
    assert_eq!(out.handoff.as_deref(), Some("customer asked for a person"));
    assert!(texts(&out)[0].contains("connecting you"));
}

#[test]
fn no_replies_and_no_change_while_in_handoff() {
    let mut chat = Chat::demo();
    chat.send("hi");
    let out = chat.send("3");
    assert_eq!(out.state.status, FlowStatus::Handoff);
    let before = chat.state.clone();
    for msg in ["hello?", "1", "anyone there"] {
        let out = chat.send(msg);
        assert!(out.replies.is_empty());
        assert_eq!(out.handoff, None);
        assert!(!out.ended);
        assert_eq!(out.state, before);
    }
}

#[test]
fn restart_after_end_keeps_slots() {
    let mut chat = Chat::demo();
    for msg in ["hi", "1", "Ann", "ann@example.com", "2026-04-01"] {
        chat.send(msg);
    }
    assert_eq!(chat.state.status, FlowStatus::Ended);
    let out = chat.send("one more thing");
    assert_eq!(out.state.status, FlowStatus::Active);
    assert_eq!(out.state.state, "main_menu");
    assert_eq!(out.replies.len(), 2);
    assert!(!out.ended);
    assert_eq!(chat.slot("name"), Some("Ann"));
    assert_eq!(chat.state.slots["date"]["canonical"], "date:2026-04-01");
    let out = chat.send("2");
    assert_eq!(out.state.state, "ask_question");
}

#[test]
fn question_path_hands_off_with_reason() {
    let mut chat = Chat::demo();
    chat.send("hi");
    chat.send("I have a question");
    let out = chat.send("Do you take children?");
    assert_eq!(out.replies.len(), 1, "{:?}", texts(&out));
    assert!(texts(&out)[0].contains("team will read your question"));
    assert_eq!(out.handoff.as_deref(), Some("customer question"));
    assert_eq!(out.state.status, FlowStatus::Handoff);
    assert_eq!(out.state.state, "question_handoff");
    assert_eq!(chat.slot("question"), Some("Do you take children?"));
}

#[test]
fn ask_without_on_fail_hands_off_after_max_attempts() {
    let mut chat = Chat::demo();
    for msg in ["hi", "1"] {
        chat.send(msg);
    }
    for attempt in 1..=2 {
        let out = chat.send("   ");
        assert_eq!(out.state.attempts, attempt);
        assert!(texts(&out)[0].contains("didn't catch"));
    }
    let out = chat.send("");
    assert_eq!(out.state.status, FlowStatus::Handoff);
    let reason = out.handoff.unwrap_or_default();
    assert!(
        reason.contains("ask_name") && reason.contains('3'),
        "{reason}"
    );
    assert!(out.replies[0].text.contains("Smile Dental team"));
}

#[test]
fn step_does_not_mutate_its_input_and_is_deterministic() {
    let mut chat = Chat::demo();
    chat.send("hi");
    let before = chat.state.clone();
    let a = chat.try_send("2").unwrap();
    let b = chat.try_send("2").unwrap();
    assert_eq!(chat.state, before);
    assert_eq!(a, b);
}

#[test]
fn flow_state_round_trips_through_json() {
    let mut chat = Chat::demo();
    for msg in ["hi", "1", "Ann"] {
        chat.send(msg);
    }
    let json = serde_json::to_string(&chat.state).unwrap();
    assert!(json.contains("\"status\":\"active\""), "{json}");
    let back: switchboard::agent::FlowState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, chat.state);
}

#[test]
fn many_steps_are_fast() {
    let mut chat = Chat::demo();
    let started = std::time::Instant::now();
    for _ in 0..300 {
        for msg in ["hi", "1", "Ann", "ann@example.com", "friday"] {
            chat.send(msg);
        }
    }
    assert_eq!(chat.state.status, FlowStatus::Ended);
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}
