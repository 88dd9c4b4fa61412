//! Red team: replays every prompt-injection case of tests/data/redteam.yaml through the fake
//! OpenAI server as the (compromised) model's answer and checks that the guard refuses every
//! disallowed action and that the customer's text only ever travels in user-role messages.

use std::time::Duration;

use crate::fake_openai::{FakeOpenAi, Reply};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::Value;
use switchboard::llm::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/redteam.yaml");

fn load() -> Value {
    let text = std::fs::read_to_string(DATA).unwrap();
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    serde_json::to_value(yaml).unwrap()
}

fn tools(data: &Value) -> Vec<ToolSpec> {
    serde_json::from_value(data["allowed_tools"].clone()).unwrap()
}

/// The reply the compromised model sends for a case.
fn reply(case: &Value) -> Reply {
    if let Some(text) = case["text"].as_str() {
        return Reply::text(text);
    }
    let calls = case["calls"].as_array().unwrap();
    if calls.iter().any(|c| c.get("raw_arguments").is_some()) {
        let raw = calls
            .iter()
            .map(|c| {
                let args = match c.get("raw_arguments") {
                    Some(r) => r.as_str().unwrap().to_owned(),
                    None => c["arguments"].to_string(),
                };
                (c["name"].as_str().unwrap().to_owned(), args)
            })
            .collect();
        return Reply::RawToolCalls(raw);
    }
    Reply::ToolCalls(
        calls
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["arguments"].clone(),
                )
            })
            .collect(),
    )
}

fn verdict(outcome: Option<&GuardError>) -> &'static str {
    match outcome {
        None => "allowed",
        Some(GuardError::UnknownTool { .. }) => "unknown_tool",
        Some(GuardError::SchemaViolation { .. }) => "schema",
        Some(GuardError::MalformedArguments { .. }) => "malformed",
        Some(GuardError::TooManyCalls { .. }) => "too_many",
        Some(GuardError::InvalidSchema { .. }) => "invalid_schema",
    }
}

/// Customer text must appear in exactly one message, a user-role one, and never in system text.
fn assert_user_only(body: &Value, attack: &str, system_prompt: &str, id: &str) {
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system", "{id}");
    assert_eq!(
        messages[0]["content"], system_prompt,
        "{id}: system prompt untouched"
    );
    let carrying: Vec<&Value> = messages
        .iter()
        .filter(|m| m["content"].as_str().is_some_and(|c| c.contains(attack)))
        .collect();
    assert_eq!(carrying.len(), 1, "{id}: attack text sent exactly once");
    assert_eq!(carrying[0]["role"], "user", "{id}");
    assert_eq!(carrying[0]["content"], attack, "{id}: never concatenated");
    for m in messages.iter().filter(|m| m["role"] != "user") {
        let content = m["content"].as_str().unwrap_or("");
        assert!(
            !content.contains(attack),
            "{id}: attack leaked into a {} message",
            m["role"]
        );
    }
}

/// Check one model turn; returns (disallowed calls, of which rejected).
fn check_case(case: &Value, result: &ChatResult, guard: &ToolGuard, mode: &str) -> (usize, usize) {
    let id = case["id"].as_str().unwrap();
    if case.get("text").is_some() {
        assert!(
            result.tool_calls.is_empty(),
            "{id}/{mode}: text became a tool call"
        );
        assert_eq!(result.text.as_deref(), case["text"].as_str(), "{id}/{mode}");
        return (1, 1);
    }
    let expected = case["calls"].as_array().unwrap();
    assert_eq!(result.tool_calls.len(), expected.len(), "{id}/{mode}");
    let report = guard.check_all(&result.tool_calls);
    let (mut disallowed, mut rejected) = (0, 0);
    for (call, want) in result.tool_calls.iter().zip(expected) {
        let outcome = report
            .rejected
            .iter()
            .find(|(c, _)| c.id == call.id)
            .map(|(_, e)| e);
        let want = want["expect"].as_str().unwrap();
        assert_eq!(
            verdict(outcome),
            want,
            "{id}/{mode}: call {} ({outcome:?})",
            call.name
        );
        if want != "allowed" {
            disallowed += 1;
            rejected += usize::from(outcome.is_some());
        }
    }
    (disallowed, rejected)
}

fn settings(base_url: &str) -> LlmSettings {
    let mut s = LlmSettings::new(
        base_url,
        SecretString::from("sk-redteam".to_owned()),
        "gpt-4o-mini",
    );
    s.timeout = Duration::from_secs(2);
    s.max_retries = 0;
    s
}

#[tokio::test]
async fn every_injection_is_contained() {
    let data = load();
    let system_prompt = data["system_prompt"].as_str().unwrap().to_owned();
    let context: Vec<String> = serde_json::from_value(data["context"].clone()).unwrap();
    let tools = tools(&data);
    let guard = ToolGuard::new(&tools).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "only {} cases", cases.len());

    let fake = FakeOpenAi::start().await;
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let (mut disallowed, mut rejected) = (0, 0);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let attack = case["attack"].as_str().unwrap();
        let req = ChatRequest {
            system: system_prompt.clone(),
            context: context.clone(),
            history: vec![
                ChatTurn::user("Hi"),
                ChatTurn::assistant("Hello! What is your name?"),
            ],
            user: attack.to_owned(),
            tools: tools.clone(),
            ..ChatRequest::default()
        };

        fake.push(reply(case));
        let result = client
            .chat(&req)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let (d, r) = check_case(case, &result, &guard, "chat");
        disallowed += d;
        rejected += r;

        fake.push(reply(case));
        let events: Vec<_> = client.chat_stream(&req).await.unwrap().collect().await;
        let Some(Ok(StreamEvent::Done(streamed))) = events.last() else {
            panic!("{id}: stream ended with {events:?}")
        };
        check_case(case, streamed, &guard, "stream");
        assert_eq!(
            streamed.tool_calls, result.tool_calls,
            "{id}: stream and JSON agree"
        );
    }
    for body in fake.requests() {
        let attack = body["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_user_only(&body, &attack, &system_prompt, &attack);
    }
    assert_eq!(fake.request_count(), cases.len() * 2);
    assert_eq!(rejected, disallowed);
    eprintln!(
        "red team: {} cases, {} disallowed actions, {} rejected by the guard, customer text user-role only in all {} requests",
        cases.len(),
        disallowed,
        rejected,
        fake.request_count()
    );
}

#[test]
fn red_team_file_is_well_formed() {
    let data = load();
    let ids: Vec<&str> = data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "duplicate case ids");
    // The homoglyph case really uses a non-ASCII letter, and the oversize case really is long.
    let case = |id: &str| {
        data["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    assert!(!case("homoglyph-tool-name")["calls"][0]["name"]
        .as_str()
        .unwrap()
        .is_ascii());
    assert!(
        case("oversize-value")["calls"][0]["arguments"]["value"]
            .as_str()
            .unwrap()
            .len()
            > 200
    );
}
