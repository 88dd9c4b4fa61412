//! Messages queued behind one turn: a burst to a conversation whose turn has not run yet queues
//! one open `agent_turn` job, which answers every message in order exactly as if each had been
//! answered on its own.

use serde_json::Value;
use sqlx::PgPool;

use crate::common::{spawn_app_with, TestApp, Visitor};

/// The conversation a message frame's ack (or message) belongs to.
pub async fn conversation_of_ack(app: &TestApp, ack: &Value) -> uuid::Uuid {
    let id: uuid::Uuid = ack["message_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("message id");
    sqlx::query_scalar("SELECT conversation_id FROM messages WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.system)
        .await
        .expect("message stored")
}

/// (seq, author kind, body) of every message of a conversation, in order.
pub async fn transcript(app: &TestApp, conversation: uuid::Uuid) -> Vec<(i64, String, String)> {
    sqlx::query_as(
        "SELECT seq, author_kind, body FROM messages WHERE conversation_id = $1 ORDER BY seq",
    )
    .bind(conversation)
    .fetch_all(&app.db.system)
    .await
    .expect("transcript")
}

/// The agent_turn jobs of a conversation: (status, open, seq of the message they start at).
pub async fn turns_of(app: &TestApp, conversation: uuid::Uuid) -> Vec<(String, bool, i64)> {
    sqlx::query_as(
        "SELECT j.status, coalesce((j.payload->>'open')::bool, false), m.seq FROM jobs j \
         JOIN messages m ON m.id = (j.payload->>'message_id')::uuid \
         WHERE j.kind = 'agent_turn' AND j.ordering_key = $1 ORDER BY j.id",
    )
    .bind(conversation)
    .fetch_all(&app.db.system)
    .await
    .expect("jobs")
}

/// A visitor on `app` sends `texts` one after another, each acknowledged before the next; gives
/// the visitor and their conversation.
pub async fn send_burst(app: &TestApp, texts: &[&str]) -> (Visitor, uuid::Uuid) {
    let mut visitor = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    let mut conversation = None;
    for (i, text) in texts.iter().enumerate() {
        visitor.say(&format!("m{i}"), text).await;
        let ack = visitor.next_of("ack").await;
        conversation.get_or_insert(conversation_of_ack(app, &ack).await);
    }
    (visitor, conversation.expect("a conversation"))
}

const BOOKING: [&str; 4] = ["hi", "apointment", "Ada Lovelace", "ada@example.com"];

#[sqlx::test]
async fn a_burst_queued_behind_one_turn_is_answered_as_if_one_message_at_a_time(pool: PgPool) {
    // This node only ingests: the burst waits for a worker.
    let ingest = spawn_app_with(pool.clone(), |s| s.jobs.workers = 0).await;
    let (_burst, conversation) = send_burst(&ingest, &BOOKING).await;
    assert_eq!(
        turns_of(&ingest, conversation).await,
        [("queued".to_owned(), true, 1)],
        "one open turn for the whole burst"
    );

    // A node with workers answers the burst, and a second visitor there the same messages one
    // at a time, each after the bot's reply to the one before.
    let worker = spawn_app_with(pool.clone(), |_| {}).await;
    worker.settle().await;
    let mut control = Visitor::connect(&worker.ws_url, &worker.webchat_key, None, None).await;
    let mut control_conversation = None;
    for (i, text) in BOOKING.iter().enumerate() {
        control.say(&format!("c{i}"), text).await;
        let ack = control.next_of("ack").await;
        control_conversation.get_or_insert(conversation_of_ack(&worker, &ack).await);
        control.outbound(if i == 0 { 2 } else { 1 }).await;
    }
    worker.settle().await;

    let burst_log = transcript(&worker, conversation).await;
    let control_log = transcript(&worker, control_conversation.expect("control")).await;
    let bot = |log: &[(i64, String, String)]| -> Vec<String> {
        log.iter()
            .filter(|m| m.1 == "bot")
            .map(|m| m.2.clone())
            .collect()
    };
    assert_eq!(bot(&burst_log).len(), 5, "{burst_log:?}");
    assert_eq!(bot(&burst_log), bot(&control_log));
    // The burst's messages first, then every reply, numbered without gaps.
    let authors: Vec<&str> = burst_log.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(&authors[..4], ["contact"; 4]);
    let seqs: Vec<i64> = burst_log.iter().map(|m| m.0).collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<i64>>());
    let email: Option<String> =
        sqlx::query_scalar("SELECT flow_state->'slots'->>'email' FROM conversations WHERE id = $1")
            .bind(conversation)
            .fetch_one(&worker.db.system)
            .await
            .expect("state");
    assert_eq!(email.as_deref(), Some("ada@example.com"));
}

#[sqlx::test]
async fn a_dead_open_turn_retried_answers_the_message_it_starts_at_once(pool: PgPool) {
    let ingest = spawn_app_with(pool.clone(), |s| s.jobs.workers = 0).await;
    let mut v = Visitor::connect(&ingest.ws_url, &ingest.webchat_key, None, None).await;
    v.say("d0", "hi").await;
    let ack = v.next_of("ack").await;
    let conversation = conversation_of_ack(&ingest, &ack).await;
    v.say("d1", "apointment").await;
    v.next_of("ack").await;
    // Its batch rolled back on every attempt: the open turn is dead. A later message queues a
    // turn of its own, which a worker answers.
    let id: i64 = sqlx::query_scalar(
        "UPDATE jobs SET status = 'dead', last_error = 'batch rolled back' \
         WHERE ordering_key = $1 RETURNING id",
    )
    .bind(conversation)
    .fetch_one(&ingest.db.system)
    .await
    .expect("dead");
    v.say("d2", "Ada Lovelace").await;
    v.next_of("ack").await;
    assert_eq!(
        turns_of(&ingest, conversation).await,
        [("dead".to_owned(), true, 1), ("queued".to_owned(), true, 3)]
    );
    let worker = spawn_app_with(pool.clone(), |_| {}).await;
    for _ in 0..400 {
        if turns_of(&worker, conversation).await.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let answered = |log: &[(i64, String, String)]| log.iter().filter(|m| m.1 == "bot").count();
    let before = answered(&transcript(&worker, conversation).await);
    assert!(before > 0);

    // Retried, it answers its own first message only (one reply: "hi" is not an option at the
    // choice the third message's turn left), not the second or the third again.
    let retried = worker
        .post_empty(&format!("/api/v1/jobs/{id}/retry"), &worker.api_key)
        .await;
    assert_eq!(retried.status(), 202);
    worker.settle().await;
    let log = transcript(&worker, conversation).await;
    assert_eq!(answered(&log) - before, 1, "{log:?}");
    let greetings = log
        .iter()
        .filter(|m| m.2.starts_with("Hello and welcome"))
        .count();
    assert_eq!(greetings, 1, "{log:?}");
}
