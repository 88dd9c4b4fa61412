//! Turns that call another service are finished outside the batch transaction: a slow LLM does
//! not hold up other conversations (even with one worker), messages that arrive during the call
//! are numbered before the late replies, and a conversation that changed during the call is
//! read again before anything is written.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::fake_openai::{FakeOpenAi, Reply};
use crate::common::{spawn_app_with, TestApp, Visitor};

fn user_text(body: &Value) -> String {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn booking() -> Reply {
    Reply::tool(
        "understand",
        json!({"intent": "book_appointment", "confidence": 0.92}),
    )
}

/// A fake LLM that reads every message as a booking request, taking `delay` over messages
/// containing "slowly".
async fn fake_llm(delay: Duration) -> FakeOpenAi {
    let fake = FakeOpenAi::start().await;
    fake.set_default(move |body| {
        if user_text(body).contains("slowly") {
            Reply::delayed(delay, booking())
        } else {
            booking()
        }
    });
    fake
}

async fn app_with_llm(pool: PgPool, fake: &FakeOpenAi) -> TestApp {
    let base_url = fake.base_url.clone();
    spawn_app_with(pool, move |s| {
        s.llm.base_url = base_url;
        s.llm.model = "gpt-4o-mini".into();
        s.llm.api_key = "sk-test".to_string().into();
        s.llm.timeout_ms = 8000;
        s.llm.max_retries = 0;
        // One worker: a turn that held it while waiting would stall every other conversation.
        s.jobs.workers = 1;
        // A failed attempt would be retried only after the test gave up: each test shows its
        // path works the first time, not after a retry.
        s.jobs.backoff_base_ms = 60_000;
        s.jobs.backoff_max_ms = 60_000;
    })
    .await
}

async fn wait_for_requests(fake: &FakeOpenAi, n: usize) {
    for _ in 0..400 {
        if fake.request_count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the LLM got {} requests, not {n}", fake.request_count());
}

/// The conversation of a message frame's message.
async fn conversation_of(app: &TestApp, frame: &Value) -> String {
    let id: uuid::Uuid = frame["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("message id");
    let conversation: uuid::Uuid =
        sqlx::query_scalar("SELECT conversation_id FROM messages WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db.system)
            .await
            .expect("message stored");
    conversation.to_string()
}

async fn messages(app: &TestApp, conversation: &str) -> Vec<Value> {
    let page: Value = app
        .get(
            &format!("/api/v1/conversations/{conversation}/messages?limit=100"),
            &app.api_key,
        )
        .await
        .json()
        .await
        .expect("json");
    page["data"].as_array().cloned().unwrap_or_default()
}

#[sqlx::test]
async fn a_slow_llm_call_does_not_hold_up_other_conversations(pool: PgPool) {
    let fake = fake_llm(Duration::from_millis(2500)).await;
    let app = app_with_llm(pool, &fake).await;
    let mut slow = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    let mut quick = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    slow.say("s1", "please book me in, slowly").await;
    wait_for_requests(&fake, 1).await;

    let started = Instant::now();
    quick.say("q1", "I need an appointment").await;
    let quick_reply = quick.outbound(1).await;
    let quick_after = started.elapsed();
    let slow_reply = slow.outbound(1).await;
    let slow_after = started.elapsed();

    assert_eq!(fake.request_count(), 2);
    assert!(
        quick_after < Duration::from_millis(1500),
        "the quick conversation waited {quick_after:?} behind the slow call: {quick_reply:?}"
    );
    assert!(
        slow_after > quick_after,
        "{slow_after:?} {quick_after:?} {slow_reply:?}"
    );
}

#[sqlx::test]
async fn messages_sent_during_a_call_keep_their_order(pool: PgPool) {
    let fake = fake_llm(Duration::from_millis(1000)).await;
    let app = app_with_llm(pool, &fake).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "I'd like to book, slowly please").await;
    wait_for_requests(&fake, 1).await;
    // The name arrives while the first message is still being read.
    v.say("m2", "Grace Hopper").await;
    let replies = v.outbound(3).await;
    app.settle().await;

    let conversation = conversation_of(&app, &replies[0]).await;
    let all = messages(&app, &conversation).await;
    let seqs: Vec<i64> = all.iter().filter_map(|m| m["seq"].as_i64()).collect();
    let expected: Vec<i64> = (1..=all.len() as i64).collect();
    assert_eq!(seqs, expected, "one gap-free numbering: {all:?}");
    let directions: Vec<&str> = all.iter().filter_map(|m| m["direction"].as_str()).collect();
    assert_eq!(
        &directions[..2],
        ["inbound", "inbound"],
        "the replies to the first message were written after the second arrived: {all:?}"
    );
    // The second message was answered after the first, as the answer to the name question.
    let last = all.last().expect("a reply");
    assert_eq!(last["direction"], "outbound");
    assert!(
        last["body"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("email"),
        "{all:?}"
    );
}

#[sqlx::test]
async fn a_conversation_changed_during_the_call_is_read_again(pool: PgPool) {
    let system = pool.clone();
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::delayed(Duration::from_millis(800), booking()));
    fake.set_default(|_| booking());
    let app = app_with_llm(pool, &fake).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "can I come in on Friday?").await;
    wait_for_requests(&fake, 1).await;
    sqlx::query("UPDATE conversations SET version = version + 1")
        .execute(&system)
        .await
        .expect("bump version");
    let first = v.outbound(1).await;
    app.settle().await;

    assert_eq!(
        fake.request_count(),
        2,
        "the turn started over after the change"
    );
    let conversation = conversation_of(&app, &first[0]).await;
    let all = messages(&app, &conversation).await;
    let outbound = all.iter().filter(|m| m["direction"] == "outbound").count();
    let mut single = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    single.say("x1", "can I come in on Friday?").await;
    let expected = single.outbound(1).await;
    app.settle().await;
    let reference = messages(&app, &conversation_of(&app, &expected[0]).await).await;
    let reference_out = reference
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .count();
    assert_eq!(outbound, reference_out, "replies written once: {all:?}");
    let usage: Value = app
        .get("/api/v1/usage/llm", &app.api_key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(usage["requests"], 3, "every call is recorded: {usage}");
}

#[sqlx::test]
async fn a_queued_burst_whose_first_message_needs_the_llm_is_split_and_answered_in_order(
    pool: PgPool,
) {
    use crate::queued_turns::{send_burst, transcript, turns_of};
    // Queued while no worker runs: one open turn for the three messages.
    let ingest = spawn_app_with(pool.clone(), |s| s.jobs.workers = 0).await;
    let texts = [
        "I'd like to book, slowly please",
        "Grace Hopper",
        "grace@example.com",
    ];
    let (_visitor, conversation) = send_burst(&ingest, &texts).await;

    // The first message needs the (slow) LLM: while it is read, its job is that message's own,
    // leased, and an open turn for the other two waits behind it.
    let fake = fake_llm(Duration::from_millis(600)).await;
    let worker = app_with_llm(pool.clone(), &fake).await;
    wait_for_requests(&fake, 1).await;
    assert_eq!(
        turns_of(&worker, conversation).await,
        [
            ("running".to_owned(), false, 1),
            ("queued".to_owned(), true, 2)
        ]
    );
    worker.settle().await;

    // Every message answered once, in order; only the first needed the LLM.
    assert_eq!(fake.request_count(), 1);
    let log = transcript(&worker, conversation).await;
    let seqs: Vec<i64> = log.iter().map(|m| m.0).collect();
    assert_eq!(
        seqs,
        (1..=log.len() as i64).collect::<Vec<i64>>(),
        "{log:?}"
    );
    let bot: Vec<String> = log
        .iter()
        .filter(|m| m.1 == "bot")
        .map(|m| m.2.to_lowercase())
        .collect();
    let asks_name = bot.iter().position(|b| b.contains("name"));
    let asks_email = bot.iter().position(|b| b.contains("email"));
    assert!(
        matches!((asks_name, asks_email), (Some(n), Some(e)) if n < e),
        "{log:?}"
    );
    let slots: Value =
        sqlx::query_scalar("SELECT flow_state->'slots' FROM conversations WHERE id = $1")
            .bind(conversation)
            .fetch_one(&worker.db.system)
            .await
            .expect("state");
    assert_eq!(slots["email"], "grace@example.com", "{slots}");
}
