use serde_json::Value;
use sqlx::PgPool;

use crate::common::{spawn_app, spawn_app_with, Visitor};

#[sqlx::test]
async fn a_visitor_is_greeted_and_offered_choices_live(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut visitor = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    assert!(visitor.token.starts_with("vt_"));
    visitor.say("c-1", "hello").await;
    let ack = visitor.next_of("ack").await;
    assert_eq!(ack["client_id"], "c-1");
    assert_eq!(ack["duplicate"], false);
    let replies = visitor.outbound(2).await;
    let all: String = replies
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("").to_lowercase())
        .collect();
    assert!(
        all.contains("smile dental"),
        "greets with the business name: {all}"
    );
    let options = replies[1]["options"].as_array().expect("options");
    let labels: Vec<&str> = options.iter().filter_map(|o| o["label"].as_str()).collect();
    assert_eq!(
        labels,
        ["Book an appointment", "Ask a question", "Talk to a person"]
    );
}

#[sqlx::test]
async fn the_demo_flow_books_through_choices_and_slots(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    v.outbound(2).await;
    v.say("m2", "apointment").await; // misspelled choice
    let ask_name = v.outbound(1).await;
    assert!(ask_name[0]["text"]
        .as_str()
        .unwrap_or("")
        .to_lowercase()
        .contains("name"));
    v.say("m3", "Ada Lovelace").await;
    v.outbound(1).await;
    v.say("m4", "not-an-email").await;
    let retry = v.outbound(1).await;
    assert!(
        retry[0]["text"].as_str().unwrap_or("").contains('@')
            || retry[0]["text"]
                .as_str()
                .unwrap_or("")
                .to_lowercase()
                .contains("email")
    );
    v.say("m5", "ada@example.com").await;
    v.outbound(1).await;
    v.say("m6", "tomorrow").await;
    let done = v.outbound(1).await;
    assert!(
        done[0]["text"].as_str().unwrap_or("").contains("Ada"),
        "confirmation names the visitor: {done:?}"
    );

    app.settle().await;
    let conv = v.conversation_id.clone();
    let list: Value = app
        .get("/api/v1/conversations", &app.api_key)
        .await
        .json()
        .await
        .expect("json");
    let first = &list["data"][0];
    if let Some(conv) = conv {
        assert_eq!(first["id"], conv);
    }
    assert_eq!(first["flow_state"]["slots"]["email"], "ada@example.com");
    assert_eq!(first["flow_state"]["slots"]["name"], "Ada Lovelace");
}

#[sqlx::test]
async fn history_is_replayed_after_reconnect_without_duplicates(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut first = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    first.say("a1", "hello").await;
    first.outbound(2).await;
    let token = first.token.clone();
    drop(first);

    // A reload: same token, nothing seen yet → the whole history, in order.
    let mut reload = Visitor::connect(&app.ws_url, &app.webchat_key, Some(&token), None).await;
    assert!(reload.conversation_id.is_some());
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let m = reload.next_of("message").await;
        seqs.push(m["message"]["seq"].as_i64().expect("seq"));
    }
    assert_eq!(seqs, [1, 2, 3]);

    // A network drop after seeing seq 2: only seq 3 comes back, then live traffic.
    let mut resumed = Visitor::connect(&app.ws_url, &app.webchat_key, Some(&token), Some(2)).await;
    let m = resumed.next_of("message").await;
    assert_eq!(m["message"]["seq"], 3);
    resumed.say("a2", "3").await; // "talk to a person" by number
    let frames = resumed.outbound(1).await;
    assert!(frames[0]["seq"].as_i64().expect("seq") > 4);
}

#[sqlx::test]
async fn a_replay_longer_than_one_page_reads_every_page(pool: PgPool) {
    // Pages of two: the greeting exchange alone (seq 1-3) takes two pages.
    let app = spawn_app_with(pool, |s| s.webchat.history_limit = 2).await;
    let mut first = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    first.say("p1", "hello").await;
    first.outbound(2).await;
    first.say("p2", "2").await; // "ask a question"
    first.outbound(1).await;
    let token = first.token.clone();
    drop(first);
    app.settle().await;
    let stored = stored_seqs(&app, &token).await;
    assert!(stored.len() >= 5, "at least three pages: {stored:?}");

    let mut reload = Visitor::connect(&app.ws_url, &app.webchat_key, Some(&token), None).await;
    assert_eq!(replayed(&mut reload, stored.len()).await, stored);

    let mut resumed = Visitor::connect(&app.ws_url, &app.webchat_key, Some(&token), Some(1)).await;
    assert_eq!(replayed(&mut resumed, stored.len() - 1).await, stored[1..]);
}

/// Sequence numbers of the visitor's conversation as the API lists them.
async fn stored_seqs(app: &crate::common::TestApp, token: &str) -> Vec<i64> {
    let probe = Visitor::connect(&app.ws_url, &app.webchat_key, Some(token), Some(i64::MAX)).await;
    let conversation = probe.conversation_id.clone().expect("conversation");
    let messages: Value = app
        .get(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &app.api_key,
        )
        .await
        .json()
        .await
        .expect("json");
    let mut seqs: Vec<i64> = messages["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["seq"].as_i64())
        .collect();
    seqs.sort_unstable();
    seqs
}

async fn replayed(visitor: &mut Visitor, count: usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    for _ in 0..count {
        let m = visitor.next_of("message").await;
        seqs.push(m["message"]["seq"].as_i64().expect("seq"));
    }
    seqs
}

#[sqlx::test]
async fn the_same_message_delivered_three_times_is_stored_once_and_answered_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    // Three deliveries of one message: twice on this socket, once on a second socket (a retry
    // after a reconnect).
    v.say("same-id", "hello").await;
    v.say("same-id", "hello").await;
    let mut other =
        Visitor::connect(&app.ws_url, &app.webchat_key, Some(&v.token.clone()), None).await;
    other.say("same-id", "hello").await;
    let a1 = v.next_of("ack").await;
    let a2 = v.next_of("ack").await;
    let a3 = other.next_of("ack").await;
    assert_eq!(a1["message_id"], a2["message_id"]);
    assert_eq!(a1["message_id"], a3["message_id"]);
    let dup: Vec<bool> = [&a1, &a2, &a3]
        .iter()
        .map(|a| a["duplicate"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(
        dup.iter().filter(|d| !**d).count(),
        1,
        "exactly one delivery is new: {dup:?}"
    );

    app.settle().await;
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT direction, count(*) FROM messages GROUP BY direction ORDER BY direction",
    )
    .fetch_all(&app.db.system)
    .await
    .expect("counts");
    assert_eq!(
        counts,
        [("inbound".to_string(), 1), ("outbound".to_string(), 2)]
    );
}

#[sqlx::test]
async fn concurrent_visitors_each_get_their_own_conversation(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (url, key) = (app.ws_url.clone(), app.webchat_key.clone());
        tasks.push(tokio::spawn(async move {
            let mut v = Visitor::connect(&url, &key, None, None).await;
            v.say(&format!("v{i}"), "hello").await;
            v.outbound(2).await;
        }));
    }
    for t in tasks {
        t.await.expect("visitor task");
    }
    app.settle().await;
    let (conversations, outbound): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages WHERE direction = 'outbound')",
    )
    .fetch_one(&app.db.system)
    .await
    .expect("counts");
    assert_eq!((conversations, outbound), (20, 40));
}

#[sqlx::test]
async fn a_handed_off_conversation_gets_no_more_bot_replies(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("h1", "hello").await;
    v.outbound(2).await;
    v.say("h2", "talk to a person").await;
    v.outbound(1).await;
    app.settle().await;
    v.say("h3", "are you there?").await;
    v.next_of("ack").await;
    app.settle().await;
    let (status, owner, bot_messages): (String, String, i64) = sqlx::query_as(
        "SELECT c.status, c.owner_kind, (SELECT count(*) FROM messages WHERE author_kind = 'bot') FROM conversations c",
    )
    .fetch_one(&app.db.system)
    .await
    .expect("row");
    assert_eq!(
        (status.as_str(), owner.as_str(), bot_messages),
        ("handoff", "none", 3)
    );
}

#[sqlx::test]
async fn shutdown_closes_sockets_and_finishes_in_flight_work(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("s1", "hello").await;
    v.next_of("ack").await;
    let db = app.db.clone();
    let port = app.port;
    let started = std::time::Instant::now();
    app.shutdown().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "drained within the grace period"
    );
    // The socket was closed by the server.
    use futures::StreamExt;
    let mut closed = false;
    while let Ok(Some(frame)) =
        tokio::time::timeout(std::time::Duration::from_secs(5), v.ws.next()).await
    {
        match frame {
            Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed, "server closed the socket");
    // New connections are refused.
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
    // The accepted message was answered before the workers stopped, or is still queued: never lost.
    let (inbound, pending, replies): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages WHERE direction = 'inbound'), \
                (SELECT count(*) FROM jobs), \
                (SELECT count(*) FROM messages WHERE author_kind = 'bot')",
    )
    .fetch_one(&db.system)
    .await
    .expect("counts");
    assert_eq!(inbound, 1);
    assert!(
        replies == 2 || pending == 1,
        "replies {replies}, pending jobs {pending}"
    );
}

#[sqlx::test]
async fn another_tab_sees_the_visitors_message_while_the_sender_gets_only_the_ack(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut first = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    first.say("t1", "hello").await;
    first.outbound(2).await;
    let token = first.token.clone();
    let mut second = Visitor::connect(&app.ws_url, &app.webchat_key, Some(&token), Some(3)).await;
    first.say("t2", "Talk to a person").await;
    let echo = second.next_of("message").await;
    assert_eq!(echo["message"]["direction"], "inbound");
    assert_eq!(echo["message"]["client_id"], "t2");
    first.next_of("ack").await;
    // Every message frame the sender gets until the bot's reply: none may be its own message.
    let mut sender_echoes = 0;
    loop {
        let frame = first.next_of("message").await;
        if frame["message"]["direction"] == "outbound" {
            break;
        }
        sender_echoes += 1;
    }
    assert_eq!(
        sender_echoes, 0,
        "the sender is not sent its own message back"
    );
    second.outbound(1).await;
}
