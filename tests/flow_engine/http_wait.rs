//! `http` and `wait` states in the pure engine: a webhook call is an effect the step stops at
//! and is resumed from; a wait sets a timer whose token makes a late timeout harmless.

use serde_json::json;
use switchboard::agent::{
    Effect, FlowStatus, HttpMethod, HttpResult, StepError, TurnInput, WaitTimer,
};

use crate::common::{chat_of, texts};

const LOOKUP: &str = r#"
id: lookup
name: Lookup
start: ask_name
states:
  ask_name: {kind: ask, slot: name, text: "Your name?", next: lookup}
  lookup:
    kind: http
    text: "One moment, {{ slots.name }}."
    url: "https://api.example.test/slots?who={{ slots.name | urlencode }}"
    method: POST
    body:
      name: slots.name
      party: 1 + 1
    timeout_ms: 2500
    retries: 2
    map:
      start: /slots/0/start
      gone: /missing
    next: offer
    on_error: sorry
  offer: {kind: end, text: "First free slot: {{ slots.start }}."}
  sorry: {kind: end, text: "Our calendar is not answering."}
"#;

fn http_effect(out: &switchboard::agent::StepOutcome) -> switchboard::agent::HttpRequest {
    match &out.effect {
        Some(Effect::Http(request)) => request.clone(),
        other => panic!("expected an http effect, got {other:?}"),
    }
}

#[test]
fn an_http_state_stops_with_its_rendered_request_and_maps_the_reply() {
    let mut chat = chat_of(LOOKUP);
    chat.send("hi");
    chat.state.slots.insert("gone".into(), json!("stale"));
    let out = chat.send("Ada Lovelace");
    assert_eq!(texts(&out), ["One moment, Ada Lovelace."]);
    assert_eq!(
        out.state.state, "lookup",
        "the state is saved at the http state"
    );
    let request = http_effect(&out);
    assert_eq!(request.state, "lookup");
    assert_eq!(request.method, HttpMethod::Post);
    assert_eq!(
        request.url,
        "https://api.example.test/slots?who=Ada%20Lovelace"
    );
    assert_eq!(
        request.body,
        Some(json!({"name": "Ada Lovelace", "party": 2}))
    );
    assert_eq!((request.timeout_ms, request.retries), (2500, 2));

    let reply = json!({"slots": [{"start": "2026-03-04T09:00"}]});
    let out = chat.input(TurnInput::Http(HttpResult::Ok(reply)));
    assert_eq!(texts(&out), ["First free slot: 2026-03-04T09:00."]);
    assert_eq!(out.effect, None);
    assert_eq!(chat.slot("start"), Some("2026-03-04T09:00"));
    assert!(
        !chat.state.slots.contains_key("gone"),
        "a pointer that matches nothing unsets its slot"
    );
    assert_eq!(chat.state.status, FlowStatus::Ended);
}

#[test]
fn a_failed_call_goes_to_on_error() {
    let mut chat = chat_of(LOOKUP);
    chat.send("hi");
    chat.send("Ada");
    let out = chat.input(TurnInput::Http(HttpResult::Failed("timed out".into())));
    assert_eq!(texts(&out), ["Our calendar is not answering."]);
    assert_eq!(out.handoff, None);
}

#[test]
fn without_on_error_a_failed_call_hands_off_naming_the_failure() {
    let mut chat = chat_of(&LOOKUP.replace("    on_error: sorry\n", ""));
    chat.send("hi");
    chat.send("Ada");
    let out = chat.input(TurnInput::Http(HttpResult::Failed("status 503".into())));
    assert_eq!(out.state.status, FlowStatus::Handoff);
    assert_eq!(
        out.handoff.as_deref(),
        Some("webhook at \"lookup\" failed: status 503")
    );
}

#[test]
fn a_url_that_cannot_be_rendered_fails_like_a_call() {
    let yaml = LOOKUP
        .replace("{{ slots.name | urlencode }}", "{{ slots.nope.deeper }}")
        .replace("    on_error: sorry\n", "");
    let mut chat = chat_of(&yaml);
    chat.send("hi");
    let out = chat.send("Ada");
    assert_eq!(out.effect, None);
    let reason = out.handoff.unwrap_or_default();
    assert!(reason.contains("URL could not be rendered"), "{reason}");
}

#[test]
fn text_at_a_pending_http_state_makes_the_call_again() {
    let mut chat = chat_of(LOOKUP);
    chat.send("hi");
    chat.send("Ada");
    let out = chat.send("hello?");
    assert_eq!(http_effect(&out).state, "lookup");
}

#[test]
fn an_http_result_where_none_was_asked_for_is_an_error() {
    let mut chat = chat_of(LOOKUP);
    chat.send("hi");
    let err = chat
        .try_input(&TurnInput::Http(HttpResult::Ok(json!({}))))
        .unwrap_err();
    assert!(matches!(err, StepError::NotWaiting { ref state, kind: "ask" } if state == "ask_name"));
}

#[test]
fn get_requests_carry_no_body() {
    let yaml = LOOKUP.replace("method: POST", "method: GET");
    let mut chat = chat_of(&yaml);
    chat.send("hi");
    let out = chat.send("Ada");
    assert_eq!(http_effect(&out).body, None);
}

const WAIT: &str = r#"
id: waiting
name: Waiting
start: hello
states:
  hello: {kind: message, text: "Hello!", next: pause}
  pause:
    kind: wait
    text: "Send us the photo when you have it."
    slot: photo
    timeout_secs: 60
    on_timeout: nudge
    next: thanks
  nudge: {kind: end, text: "We did not hear back; write any time."}
  thanks: {kind: end, text: "Thanks, got {{ slots.photo }}."}
"#;

#[test]
fn a_wait_state_says_its_prompt_and_sets_a_timer_with_its_entry_token() {
    let mut chat = chat_of(WAIT);
    let out = chat.send("hi");
    assert_eq!(
        texts(&out),
        ["Hello!", "Send us the photo when you have it."]
    );
    assert_eq!(
        out.timer,
        Some(WaitTimer {
            state: "pause".into(),
            token: chat.state.entries,
            after_secs: 60,
        })
    );
    assert_eq!(chat.state.entries, 2, "hello and pause were entered");
}

#[test]
fn a_reply_is_stored_and_makes_the_timer_stale() {
    let mut chat = chat_of(WAIT);
    let token = chat.send("hi").timer.unwrap().token;
    let out = chat.send("  photo-1.jpg ");
    assert_eq!(texts(&out), ["Thanks, got photo-1.jpg."]);
    assert_eq!(out.timer, None);
    let before = chat.state.clone();
    let late = chat.input(TurnInput::Timeout { token });
    assert!(late.replies.is_empty());
    assert_eq!(late.state, before, "a stale timer changes nothing");
}

#[test]
fn a_current_timer_goes_to_on_timeout() {
    let mut chat = chat_of(WAIT);
    let token = chat.send("hi").timer.unwrap().token;
    let out = chat.input(TurnInput::Timeout { token });
    assert_eq!(texts(&out), ["We did not hear back; write any time."]);
    assert_eq!(out.state.status, FlowStatus::Ended);
}

#[test]
fn a_restart_does_not_revive_an_old_timer() {
    let mut chat = chat_of(WAIT);
    let old = chat.send("hi").timer.unwrap().token;
    chat.input(TurnInput::Timeout { token: old });
    let fresh = chat.send("hi again").timer.unwrap().token;
    assert!(fresh > old, "entries go on across restarts");
    let out = chat.input(TurnInput::Timeout { token: old });
    assert!(out.replies.is_empty());
    assert_eq!(chat.state.state, "pause");
}

#[test]
fn repair_commands_still_work_at_a_wait() {
    let mut chat = chat_of(WAIT);
    let token = chat.send("hi").timer.unwrap().token;
    let out = chat.send("talk to a person");
    assert_eq!(out.state.status, FlowStatus::Handoff);
    let late = chat.input(TurnInput::Timeout { token });
    assert!(late.replies.is_empty(), "no timeout while a person owns it");
}
