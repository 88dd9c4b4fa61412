//! The `http`, `wait`, `subflow` and `llm` flow states end to end: a published flow on the demo
//! web-chat channel, a real visitor socket, a local webhook server on loopback that checks the
//! signature, wait timeouts run by the job queue, and the fake OpenAI-compatible server.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::any;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;

use crate::common::{spawn_app, spawn_app_with, TestApp, Visitor};
use crate::fake_openai::{FakeOpenAi, Reply};

/// One request the webhook server received.
#[derive(Debug, Clone)]
struct Received {
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A scripted reply: status, body, delay.
type Scripted = (u16, String, Duration);

#[derive(Default)]
struct HookState {
    received: Mutex<Vec<Received>>,
    replies: Mutex<VecDeque<Scripted>>,
}

/// A webhook server on loopback; replies come from a queue, else `{"ok": true}`.
struct Hook {
    url: String,
    state: Arc<HookState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hook {
    async fn start() -> Self {
        let state = Arc::new(HookState::default());
        let app = axum::Router::new()
            .route("/{*path}", any(answer))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    fn reply(&self, status: u16, body: &str, delay: Duration) {
        let mut replies = self.state.replies.lock().unwrap();
        replies.push_back((status, body.to_string(), delay));
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn answer(
    State(state): State<Arc<HookState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    state.received.lock().unwrap().push(Received {
        uri: uri.to_string(),
        headers,
        body,
    });
    let scripted = state.replies.lock().unwrap().pop_front();
    let (status, body, delay) =
        scripted.unwrap_or((200, r#"{"ok": true}"#.to_string(), Duration::ZERO));
    tokio::time::sleep(delay).await;
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
}

/// Saves `source` as a new flow and publishes it.
async fn publish(app: &TestApp, source: &str) {
    let created = app
        .post("/api/v1/flows", &app.api_key, &json!({ "source": source }))
        .await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let key = source
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .trim();
    let path = format!("/api/v1/flows/{key}/versions/1/publish");
    let published = app.post_empty(&path, &app.api_key).await;
    assert_eq!(
        published.status(),
        200,
        "{}",
        published.text().await.unwrap()
    );
}

/// The texts of the next `n` bot messages.
async fn said(v: &mut Visitor, n: usize) -> Vec<String> {
    v.outbound(n)
        .await
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn conversation_id(app: &TestApp) -> String {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM conversations LIMIT 1")
        .fetch_one(&app.db.system)
        .await
        .unwrap();
    id.to_string()
}

fn lookup_flow(hook: &Hook, extra: &str) -> String {
    format!(
        r#"id: dental_demo
name: Lookup
start: ask_name
states:
  ask_name: {{kind: ask, slot: name, text: "Your name?", next: lookup}}
  lookup:
    kind: http
    url: "{url}/slots?who={{{{ slots.name | urlencode }}}}"
    method: POST
    body:
      name: slots.name
{extra}    map:
      first: /slots/0/start
    next: offer
    on_error: sorry
  offer: {{kind: end, text: "First free slot for {{{{ slots.name }}}}: {{{{ slots.first }}}}."}}
  sorry: {{kind: end, text: "Our calendar is not answering."}}
"#,
        url = hook.url
    )
}

fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut parts = header.split(',');
    let t = parts.next().and_then(|p| p.strip_prefix("t=")).unwrap();
    let v1 = parts.next().and_then(|p| p.strip_prefix("v1=")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex::decode(v1).unwrap()).is_ok()
}

#[sqlx::test]
async fn a_signed_webhook_call_maps_its_reply_into_the_conversation(pool: PgPool) {
    let app = spawn_app(pool).await;
    let hook = Hook::start().await;
    hook.reply(200, r#"{"slots": [{"start": "Tue 9:00"}]}"#, Duration::ZERO);
    publish(&app, &lookup_flow(&hook, "")).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    assert_eq!(said(&mut v, 1).await, ["Your name?"]);
    v.say("m2", "Ada Lovelace").await;
    assert_eq!(
        said(&mut v, 1).await,
        ["First free slot for Ada Lovelace: Tue 9:00."]
    );

    let received = hook.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.uri, "/slots?who=Ada%20Lovelace");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, json!({"name": "Ada Lovelace"}));
    assert_eq!(
        request.headers["x-switchboard-conversation"],
        conversation_id(&app).await.as_str()
    );
    let secret: Value = app
        .get("/api/v1/tenant/webhook-secret", &app.api_key)
        .await
        .json()
        .await
        .unwrap();
    let secret = secret["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let signature = request.headers["x-switchboard-signature"].to_str().unwrap();
    assert!(verify(secret, signature, &request.body), "{signature}");
    assert!(!verify("whsec_other", signature, &request.body));
    let again: Value = app
        .get("/api/v1/tenant/webhook-secret", &app.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["secret"], secret, "one secret per tenant");
}

#[sqlx::test]
async fn a_failing_webhook_is_retried(pool: PgPool) {
    let app = spawn_app(pool).await;
    let hook = Hook::start().await;
    hook.reply(503, "{}", Duration::ZERO);
    hook.reply(
        200,
        r#"{"slots": [{"start": "Wed 10:00"}]}"#,
        Duration::ZERO,
    );
    publish(&app, &lookup_flow(&hook, "    retries: 1\n")).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    said(&mut v, 1).await;
    v.say("m2", "Ada").await;
    assert_eq!(
        said(&mut v, 1).await,
        ["First free slot for Ada: Wed 10:00."]
    );
    assert_eq!(hook.received().len(), 2, "one failure, one retry");
}

#[sqlx::test]
async fn a_slow_webhook_times_out_into_on_error(pool: PgPool) {
    let app = spawn_app(pool).await;
    let hook = Hook::start().await;
    hook.reply(200, r#"{"slots": []}"#, Duration::from_secs(5));
    publish(
        &app,
        &lookup_flow(&hook, "    timeout_ms: 300\n    retries: 0\n"),
    )
    .await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    said(&mut v, 1).await;
    let started = Instant::now();
    v.say("m2", "Ada").await;
    assert_eq!(said(&mut v, 1).await, ["Our calendar is not answering."]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the turn waited {:?}",
        started.elapsed()
    );
}

#[sqlx::test]
async fn replies_that_are_not_json_or_too_large_go_to_on_error(pool: PgPool) {
    let app = spawn_app(pool).await;
    let hook = Hook::start().await;
    hook.reply(200, "<html>not json</html>", Duration::ZERO);
    let huge = format!(r#"{{"pad": "{}"}}"#, "x".repeat(300 * 1024));
    hook.reply(200, &huge, Duration::ZERO);
    publish(&app, &lookup_flow(&hook, "    retries: 0\n")).await;
    for visitor in ["a", "b"] {
        let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
        v.say(&format!("{visitor}1"), "hi").await;
        said(&mut v, 1).await;
        v.say(&format!("{visitor}2"), "Ada").await;
        assert_eq!(said(&mut v, 1).await, ["Our calendar is not answering."]);
    }
}

#[sqlx::test]
async fn loopback_webhooks_are_refused_unless_private_addresses_are_allowed(pool: PgPool) {
    let app = spawn_app_with(pool, |s| s.agent.http_allow_private = false).await;
    let hook = Hook::start().await;
    publish(&app, &lookup_flow(&hook, "")).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    said(&mut v, 1).await;
    v.say("m2", "Ada").await;
    assert_eq!(said(&mut v, 1).await, ["Our calendar is not answering."]);
    assert!(hook.received().is_empty(), "no request left the gateway");
}

const WAITING: &str = r#"id: dental_demo
name: Waiting
start: pause
states:
  pause:
    kind: wait
    text: "Send us the photo when you are ready."
    slot: photo
    timeout_secs: 1
    on_timeout: nudge
    next: thanks
  nudge: {kind: end, text: "Still there? Write any time and we will pick it up."}
  thanks: {kind: end, text: "Got it: {{ slots.photo }}."}
"#;

async fn outbound_texts(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT body FROM messages WHERE direction = 'outbound' ORDER BY seq")
        .fetch_all(&app.db.system)
        .await
        .unwrap()
}

async fn pending_timeouts(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'flow_timeout'")
        .fetch_one(&app.db.system)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_wait_times_out_and_the_timeout_message_arrives_on_the_socket(pool: PgPool) {
    let app = spawn_app(pool).await;
    publish(&app, WAITING).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    let started = Instant::now();
    v.say("m1", "hi").await;
    assert_eq!(
        said(&mut v, 1).await,
        ["Send us the photo when you are ready."]
    );
    assert_eq!(
        said(&mut v, 1).await,
        ["Still there? Write any time and we will pick it up."]
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the timeout"
    );
    assert_eq!(pending_timeouts(&app).await, 0);
}

#[sqlx::test]
async fn a_reply_before_the_timeout_cancels_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    publish(&app, WAITING).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    said(&mut v, 1).await;
    assert_eq!(pending_timeouts(&app).await, 1, "the timer is scheduled");
    v.say("m2", "photo-1.jpg").await;
    assert_eq!(said(&mut v, 1).await, ["Got it: photo-1.jpg."]);
    // Long enough for the 1 s timer to come due and run.
    for _ in 0..100 {
        if pending_timeouts(&app).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending_timeouts(&app).await, 0, "the stale timer ran");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        outbound_texts(&app).await,
        [
            "Send us the photo when you are ready.",
            "Got it: photo-1.jpg."
        ],
        "the stale timer said nothing"
    );
}

const FAQ: &str = r#"id: faq
name: FAQ
start: topic
inputs: [name]
states:
  topic: {kind: ask, slot: topic, text: "What is your question, {{ slots.name }}?", next: done}
  done: {kind: end, text: "Thanks for asking about {{ slots.topic }}."}
"#;

const CALLER: &str = r#"id: dental_demo
name: Caller
start: ask_name
states:
  ask_name: {kind: ask, slot: name, text: "Your name?", next: questions}
  questions: {kind: subflow, flow: faq, next: after}
  after: {kind: end, text: "Back to you, {{ slots.name }}."}
"#;

#[sqlx::test]
async fn a_subflow_is_called_and_returns_to_the_caller(pool: PgPool) {
    let app = spawn_app(pool).await;
    publish(&app, FAQ).await;
    publish(&app, CALLER).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    said(&mut v, 1).await;
    v.say("m2", "Ada").await;
    assert_eq!(said(&mut v, 1).await, ["What is your question, Ada?"]);
    let state: Value = sqlx::query_scalar("SELECT flow_state FROM conversations")
        .fetch_one(&app.db.system)
        .await
        .unwrap();
    assert_eq!(state["calls"][0]["flow"], "faq");
    assert_eq!(state["calls"][0]["version"], 1);
    v.say("m3", "parking").await;
    assert_eq!(
        said(&mut v, 2).await,
        ["Thanks for asking about parking.", "Back to you, Ada."]
    );
}

#[sqlx::test]
async fn a_flow_calling_an_unknown_or_looping_flow_is_not_published(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = app
        .post("/api/v1/flows", &app.api_key, &json!({ "source": CALLER }))
        .await;
    assert_eq!(created.status(), 201);
    let path = "/api/v1/flows/dental_demo/versions/1/publish";
    let refused = app.post_empty(path, &app.api_key).await;
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["path"], "states.questions.flow");
    // faq calling back into dental_demo would loop.
    let looping = FAQ.replace(
        "next: done}",
        "next: back}\n  back: {kind: subflow, flow: dental_demo, next: done}",
    );
    publish(&app, &looping).await;
    let checked: Value = app
        .post(
            "/api/v1/flows/dental_demo/validate",
            &app.api_key,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(checked["valid"], false);
    assert_eq!(
        checked["problems"][0]["message"],
        "calls loop: dental_demo -> faq -> dental_demo"
    );
}

const ASSISTANT: &str = r#"id: dental_demo
name: Assistant
start: greet
states:
  greet: {kind: message, text: "Hi! How can I help?", next: helper}
  helper:
    kind: llm
    text: "You are the booking assistant of {{ business.name }}."
    tools: [set_slot, goto]
    slots: {email: email}
    exits: {done: booked}
    fallback: away
  booked: {kind: end, text: "Booked for {{ slots.email }}."}
  away: {kind: end, text: "Sorry, the assistant is away."}
"#;

async fn with_llm(pool: PgPool, fake: &FakeOpenAi) -> TestApp {
    let base_url = fake.base_url.clone();
    spawn_app_with(pool, move |s| {
        s.llm.base_url = base_url;
        s.llm.model = "fake-model".into();
        s.llm.max_retries = 0;
        s.llm.timeout_ms = 2000;
    })
    .await
}

async fn usage_outcomes(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT purpose, outcome FROM llm_usage ORDER BY id")
        .fetch_all(&app.db.system)
        .await
        .unwrap()
}

#[sqlx::test]
async fn an_llm_state_sets_a_slot_and_leaves_through_its_tool_calls(pool: PgPool) {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::ToolCalls(vec![
        (
            "set_slot".into(),
            json!({"slot": "email", "value": "Ada@Example.COM"}),
        ),
        ("goto".into(), json!({"exit": "done"})),
    ]));
    let app = with_llm(pool, &fake).await;
    publish(&app, ASSISTANT).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    assert_eq!(said(&mut v, 1).await, ["Hi! How can I help?"]);
    let message = "Book me in please, I'm Ada@Example.COM";
    v.say("m2", message).await;
    assert_eq!(said(&mut v, 1).await, ["Booked for Ada@example.com."]);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let messages = requests[0]["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(
        messages[0]["content"],
        "You are the booking assistant of Smile Dental."
    );
    let last = messages.last().unwrap();
    assert_eq!(
        (last["role"].as_str(), last["content"].as_str()),
        (Some("user"), Some(message))
    );
    let tools: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(tools, ["set_slot", "goto"]);
    assert_eq!(
        usage_outcomes(&app).await,
        [("flow_llm".to_string(), "ok".to_string())]
    );
}

#[sqlx::test]
async fn when_the_llm_fails_or_proposes_a_refused_call_the_fallback_runs(pool: PgPool) {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Status(500, None));
    fake.push(Reply::tool(
        "set_slot",
        json!({"slot": "is_admin", "value": "yes"}),
    ));
    let app = with_llm(pool, &fake).await;
    publish(&app, ASSISTANT).await;
    for visitor in ["a", "b"] {
        let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
        v.say(&format!("{visitor}1"), "hi").await;
        said(&mut v, 1).await;
        v.say(&format!("{visitor}2"), "make me an admin").await;
        assert_eq!(said(&mut v, 1).await, ["Sorry, the assistant is away."]);
    }
    assert_eq!(fake.request_count(), 2);
    let outcomes: Vec<String> = usage_outcomes(&app)
        .await
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    assert_eq!(outcomes, ["failed", "failed"]);
}

/// Frames up to and including the next outbound message.
async fn frames_until_reply(v: &mut Visitor) -> (Vec<Value>, Value) {
    let mut drafts = Vec::new();
    loop {
        let frame = v.next().await;
        match frame["type"].as_str() {
            Some("draft") => drafts.push(frame),
            Some("message") if frame["message"]["direction"] == "outbound" => {
                return (drafts, frame["message"].clone())
            }
            _ => {}
        }
    }
}

#[sqlx::test]
async fn an_llm_reply_is_streamed_to_web_chat_as_a_draft(pool: PgPool) {
    let fake = FakeOpenAi::start().await;
    fake.set_chunk_delay(Duration::from_millis(60));
    let answer = "We have openings on Tuesday and Thursday mornings, which suits you?";
    fake.push(Reply::text(answer));
    let app = with_llm(pool, &fake).await;
    publish(&app, ASSISTANT).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    said(&mut v, 1).await;
    v.say("m2", "when can I come in?").await;
    let (drafts, reply) = frames_until_reply(&mut v).await;

    assert_eq!(fake.requests()[0]["stream"], true, "asked for a stream");
    assert!(
        drafts.len() >= 3,
        "the reply grew in several drafts: {drafts:?}"
    );
    let texts: Vec<&str> = drafts.iter().filter_map(|d| d["text"].as_str()).collect();
    assert!(
        texts
            .windows(2)
            .all(|w| w[1].starts_with(w[0]) && w[1].len() > w[0].len()),
        "each draft extends the previous one: {texts:?}"
    );
    assert_eq!(texts.last().copied(), Some(answer));
    let id = &drafts[0]["draft_id"];
    assert!(drafts
        .iter()
        .all(|d| &d["draft_id"] == id && d["discarded"] == false));
    assert_eq!(
        reply["text"], answer,
        "the stored reply is the streamed text"
    );
    assert_eq!(reply["drafts"], json!([id]), "and replaces the draft");
}

#[sqlx::test]
async fn a_streamed_reply_that_is_refused_is_withdrawn(pool: PgPool) {
    let fake = FakeOpenAi::start().await;
    fake.set_chunk_delay(Duration::from_millis(30));
    fake.push(Reply::TextAndTools(
        "Sure, you are an admin now.".into(),
        vec![(
            "set_slot".into(),
            json!({"slot": "is_admin", "value": "yes"}),
        )],
    ));
    let app = with_llm(pool, &fake).await;
    publish(&app, ASSISTANT).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    said(&mut v, 1).await;
    v.say("m2", "make me an admin").await;
    let (drafts, reply) = frames_until_reply(&mut v).await;

    assert!(!drafts.is_empty(), "the text was shown while written");
    let last = drafts.last().expect("a draft");
    assert_eq!(last["discarded"], true, "then withdrawn: {drafts:?}");
    assert_eq!(last["draft_id"], drafts[0]["draft_id"]);
    assert_eq!(reply["text"], "Sorry, the assistant is away.");
    assert!(reply.get("drafts").is_none(), "{reply}");
}

#[sqlx::test]
async fn without_an_llm_the_fallback_runs(pool: PgPool) {
    let app = spawn_app(pool).await;
    publish(&app, ASSISTANT).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hi").await;
    said(&mut v, 1).await;
    v.say("m2", "hello").await;
    assert_eq!(said(&mut v, 1).await, ["Sorry, the assistant is away."]);
}

#[sqlx::test]
async fn the_simulator_calls_webhooks_for_real_and_never_the_llm(pool: PgPool) {
    let app = spawn_app(pool).await;
    let hook = Hook::start().await;
    hook.reply(200, r#"{"slots": [{"start": "Fri 8:00"}]}"#, Duration::ZERO);
    let source = lookup_flow(&hook, "");
    let body = json!({"source": source, "turns": ["hi", "Ada"]});
    let response = app
        .post("/api/v1/flows/dental_demo/simulate", &app.api_key, &body)
        .await;
    assert_eq!(response.status(), 200);
    let sim: Value = response.json().await.unwrap();
    let turn = &sim["turns"][1];
    assert_eq!(
        turn["replies"][0]["text"],
        "First free slot for Ada: Fri 8:00."
    );
    let effect = turn["effects"][0].as_str().unwrap();
    assert!(effect.starts_with("POST http://127.0.0.1:"), "{effect}");
    assert!(effect.ends_with("-> ok"), "{effect}");
    assert_eq!(
        hook.received()[0].headers["x-switchboard-conversation"],
        "simulation"
    );

    let body = json!({"source": ASSISTANT, "turns": ["hi", "book me"]});
    let sim: Value = app
        .post("/api/v1/flows/dental_demo/simulate", &app.api_key, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        sim["turns"][1]["replies"][0]["text"],
        "Sorry, the assistant is away."
    );
}
