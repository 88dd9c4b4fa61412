//! Tenant notices end to end: the monthly AI quota (through the fake OpenAI-compatible server)
//! raising one notice per month, the notices API with its isolation between tenants, and the
//! notification webhook (a receiver on loopback that checks the signature, fails on purpose,
//! and sees retries and dead letters of the real job queue).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;
use switchboard::tenants::notices::llm_quota_exceeded;

use crate::common::{spawn_app, spawn_app_with, TestApp, Visitor};
use crate::fake_openai::{FakeOpenAi, Reply};

/// A notification receiver on loopback: answers with the scripted statuses, then 200.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type ReceiverState = (
    Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    Arc<Mutex<VecDeque<u16>>>,
);

impl Receiver {
    async fn start(statuses: impl IntoIterator<Item = u16>) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(statuses.into_iter().collect()));
        let app = axum::Router::new()
            .route("/notices", post(receive))
            .with_state((received.clone(), statuses.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notices", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            received,
            statuses,
            task,
        }
    }

    /// Answer every later request with `status`.
    fn always(&self, status: u16) {
        *self.statuses.lock().unwrap() = std::iter::repeat(status).take(1000).collect();
    }

    fn received(&self) -> Vec<(HeaderMap, Bytes)> {
        self.received.lock().unwrap().clone()
    }

    /// Wait until `n` requests arrived (10 s at most).
    async fn wait_for(&self, n: usize) -> Vec<(HeaderMap, Bytes)> {
        for _ in 0..400 {
            if self.received().len() >= n {
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} requests, got {}", self.received().len());
    }
}

async fn receive(
    State((received, statuses)): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    received.lock().unwrap().push((headers, body));
    let status = statuses.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

fn with_llm(fake: &FakeOpenAi) -> impl FnOnce(&mut switchboard::config::Settings) + '_ {
    move |s| {
        s.llm.base_url = fake.base_url.clone();
        s.llm.model = "gpt-4o-mini".into();
        s.llm.timeout_ms = 2000;
        s.llm.max_retries = 0;
    }
}

async fn set_quota(app: &TestApp, quota: u32) {
    let body = json!({"enabled": true, "monthly_quota": quota});
    let set = app
        .request(
            reqwest::Method::PUT,
            "/api/v1/tenant/llm",
            &app.api_key,
            Some(&body),
        )
        .await;
    assert_eq!(set.status(), 200);
}

async fn set_webhook(app: &TestApp, url: Option<&str>) -> reqwest::Response {
    let body = json!({ "webhook_url": url });
    app.request(
        reqwest::Method::PUT,
        "/api/v1/tenant/notifications",
        &app.api_key,
        Some(&body),
    )
    .await
}

async fn notices(app: &TestApp, key: &str, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/notices{query}"), key).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Raises the quota notice for the month of `(year, month)` as the demo tenant.
async fn raise_quota_notice(app: &TestApp, year: i32, month: u32) -> bool {
    let at = Utc.with_ymd_and_hms(year, month, 15, 12, 0, 0).unwrap();
    let tenant = app.seed.tenant_id;
    let mut tx = app.db.tenant_tx(tenant).await.unwrap();
    let raised = llm_quota_exceeded(&mut tx, tenant, 10, at).await.unwrap();
    tx.commit().await.unwrap();
    raised
}

/// `n` visitors each send one message the LLM is asked to read.
async fn visitors_write(app: &TestApp, n: usize) {
    for i in 0..n {
        let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
        v.say(&format!("q{i}"), "hello there").await;
        v.outbound(2).await;
    }
    app.settle().await;
}

fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header.split_once(",v1=") else {
        return false;
    };
    let t = t.trim_start_matches("t=");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex::decode(v1).unwrap()).is_ok()
}

#[sqlx::test]
async fn exceeding_the_quota_raises_one_notice_however_many_messages_follow(pool: PgPool) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(|_| Reply::tool("understand", json!({"intent": "none", "confidence": 0.9})));
    let app = spawn_app_with(pool, with_llm(&fake)).await;
    set_quota(&app, 1).await;

    visitors_write(&app, 4).await;

    assert_eq!(fake.request_count(), 1);
    let list = notices(&app, &app.api_key, "").await;
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    let notice = &data[0];
    let month = Utc::now().format("%Y-%m").to_string();
    assert_eq!(notice["kind"], "llm_quota_exceeded");
    assert_eq!(notice["period"], month.as_str());
    assert_eq!(notice["detail"]["quota"], 1);
    let body = notice["body"].as_str().unwrap();
    assert!(
        body.starts_with("Your monthly AI quota of 1 request is used up"),
        "{body}"
    );
    assert!(notice["acknowledged_at"].is_null());
    assert!(notice["delivered_at"].is_null(), "no webhook configured");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'notice_webhook'")
        .fetch_one(&app.db.system)
        .await
        .unwrap();
    assert_eq!(jobs, 0, "nothing to deliver without a webhook");

    // Another month is another notice; the same month again is not.
    assert!(raise_quota_notice(&app, 2031, 2).await);
    assert!(!raise_quota_notice(&app, 2031, 2).await);
}

const ASSISTANT: &str = r#"id: dental_demo
name: Assistant
start: greet
states:
  greet: {kind: message, text: "Hi! How can I help?", next: helper}
  helper:
    kind: llm
    text: "You are the booking assistant of {{ business.name }}."
    tools: [goto]
    exits: {done: done}
    fallback: away
  done: {kind: end, text: "Done."}
  away: {kind: end, text: "Sorry, the assistant is away."}
"#;

#[sqlx::test]
async fn an_llm_state_over_quota_raises_the_notice_too(pool: PgPool) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(|_| Reply::tool("goto", json!({"exit": "done"})));
    let app = spawn_app_with(pool, with_llm(&fake)).await;
    let created = app
        .post(
            "/api/v1/flows",
            &app.api_key,
            &json!({ "source": ASSISTANT }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let published = app
        .post_empty("/api/v1/flows/dental_demo/versions/1/publish", &app.api_key)
        .await;
    assert_eq!(published.status(), 200);
    set_quota(&app, 1).await;
    for (i, expected) in ["Done.", "Sorry, the assistant is away."]
        .iter()
        .enumerate()
    {
        let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
        v.say(&format!("a{i}"), "hi").await;
        v.outbound(1).await;
        v.say(&format!("b{i}"), "book me in").await;
        let reply = v.outbound(1).await;
        assert_eq!(reply[0]["text"], *expected);
    }
    app.settle().await;
    let skipped: Vec<String> =
        sqlx::query_scalar("SELECT purpose FROM llm_usage WHERE outcome = 'quota_exceeded'")
            .fetch_all(&app.db.system)
            .await
            .unwrap();
    assert_eq!(skipped, ["flow_llm"]);
    let list = notices(&app, &app.api_key, "").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["data"][0]["kind"], "llm_quota_exceeded");
}

#[sqlx::test]
async fn notices_are_listed_newest_first_and_acknowledged_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    assert!(raise_quota_notice(&app, 2030, 1).await);
    assert!(raise_quota_notice(&app, 2030, 2).await);

    let first = notices(&app, &app.api_key, "?limit=1").await;
    assert_eq!(first["data"][0]["period"], "2030-02");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = notices(&app, &app.api_key, &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(second["data"][0]["period"], "2030-01");
    let older = second["data"][0]["id"].as_str().unwrap().to_string();

    let path = format!("/api/v1/notices/{older}/acknowledge");
    let acked = app.post_empty(&path, &app.api_key).await;
    assert_eq!(acked.status(), 200);
    let acked: Value = acked.json().await.unwrap();
    let at = acked["acknowledged_at"].as_str().unwrap().to_string();
    let again: Value = app
        .post_empty(&path, &app.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["acknowledged_at"],
        at.as_str(),
        "the first time is kept"
    );

    let open = notices(&app, &app.api_key, "?unacknowledged=true").await;
    let periods: Vec<&str> = open["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["period"].as_str())
        .collect();
    assert_eq!(periods, ["2030-02"]);
    assert_eq!(
        notices(&app, &app.api_key, "").await["data"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let unknown = format!("/api/v1/notices/{}/acknowledge", uuid::Uuid::now_v7());
    assert_eq!(app.post_empty(&unknown, &app.api_key).await.status(), 404);
    let bad = app
        .post_empty("/api/v1/notices/not-an-id/acknowledge", &app.api_key)
        .await;
    assert_eq!(bad.status(), 400);
    let typo = app
        .get("/api/v1/notices?unacknowleged=true", &app.api_key)
        .await;
    assert_eq!(typo.status(), 400);
    let cursor = app.get("/api/v1/notices?cursor=zzz", &app.api_key).await;
    assert_eq!(cursor.status(), 400);
}

#[sqlx::test]
async fn tenant_b_cannot_see_or_acknowledge_tenant_a_notices(pool: PgPool) {
    let app = spawn_app(pool).await;
    assert!(raise_quota_notice(&app, 2030, 3).await);
    let a_notice = notices(&app, &app.api_key, "").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created: Value = app
        .post(
            "/api/v1/tenants",
            &app.admin_key,
            &json!({"slug": "other-clinic", "name": "Other Clinic"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let b_key = created["api_key"].as_str().unwrap();
    let b: switchboard::ids::TenantId = created["tenant"]["id"].as_str().unwrap().parse().unwrap();

    assert_eq!(notices(&app, b_key, "").await["data"], json!([]));
    let path = format!("/api/v1/notices/{a_notice}/acknowledge");
    assert_eq!(app.post_empty(&path, b_key).await.status(), 404);
    let still = notices(&app, &app.api_key, "").await;
    assert!(still["data"][0]["acknowledged_at"].is_null());

    // As the runtime role in B's transaction, even without a WHERE, A's rows do not exist.
    let mut tx = app.db.tenant_tx(b).await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_notices")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    let touched = sqlx::query("UPDATE tenant_notices SET acknowledged_at = now()")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(touched.rows_affected(), 0);
}

#[sqlx::test]
async fn a_configured_webhook_receives_one_signed_post_per_notice(pool: PgPool) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(|_| Reply::tool("understand", json!({"intent": "none", "confidence": 0.9})));
    let receiver = Receiver::start([]).await;
    let app = spawn_app_with(pool, with_llm(&fake)).await;
    assert_eq!(set_webhook(&app, Some(&receiver.url)).await.status(), 200);
    set_quota(&app, 1).await;

    visitors_write(&app, 3).await;

    let received = receiver.wait_for(1).await;
    let (headers, body) = &received[0];
    let secret: Value = app
        .get("/api/v1/tenant/webhook-secret", &app.api_key)
        .await
        .json()
        .await
        .unwrap();
    let signature = headers["x-switchboard-signature"].to_str().unwrap();
    assert!(verify(secret["secret"].as_str().unwrap(), signature, body));
    assert!(!verify("whsec_wrong", signature, body));
    assert_eq!(headers["content-type"], "application/json");
    let sent: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(sent["type"], "notice");
    assert_eq!(sent["tenant_id"], app.seed.tenant_id.to_string());
    assert_eq!(sent["notice"]["kind"], "llm_quota_exceeded");
    assert_eq!(
        headers["x-switchboard-notice"],
        sent["notice"]["id"].as_str().unwrap()
    );

    // More messages over quota: still the one notice, the one POST.
    visitors_write(&app, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
    let list = notices(&app, &app.api_key, "").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["data"][0]["id"], sent["notice"]["id"]);
    assert!(list["data"][0]["delivered_at"].is_string(), "{list}");
}

#[sqlx::test]
async fn a_failing_receiver_is_retried_until_it_accepts(pool: PgPool) {
    let app = spawn_app(pool).await;
    let receiver = Receiver::start([500, 503]).await;
    assert_eq!(set_webhook(&app, Some(&receiver.url)).await.status(), 200);
    assert!(raise_quota_notice(&app, 2030, 4).await);

    let received = receiver.wait_for(3).await;
    app.settle().await;
    let ids: Vec<&str> = received
        .iter()
        .map(|(h, _)| h["x-switchboard-notice"].to_str().unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let list = notices(&app, &app.api_key, "").await;
    assert!(list["data"][0]["delivered_at"].is_string(), "{list}");
    let dead = app.get("/api/v1/jobs?status=dead", &app.api_key).await;
    assert_eq!(dead.json::<Value>().await.unwrap(), json!([]));
}

#[sqlx::test]
async fn a_receiver_that_keeps_failing_is_dead_lettered(pool: PgPool) {
    let app = spawn_app(pool).await;
    let receiver = Receiver::start([]).await;
    receiver.always(500);
    assert_eq!(set_webhook(&app, Some(&receiver.url)).await.status(), 200);
    assert!(raise_quota_notice(&app, 2030, 5).await);

    let mut dead = Value::Null;
    for _ in 0..400 {
        dead = app
            .get("/api/v1/jobs?status=dead", &app.api_key)
            .await
            .json()
            .await
            .unwrap();
        if dead.as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(dead[0]["kind"], "notice_webhook", "{dead}");
    assert_eq!(dead[0]["last_error"], "notification webhook: status 500");
    let attempts = dead[0]["attempts"].as_i64().unwrap();
    assert_eq!(receiver.received().len() as i64, attempts);
    let list = notices(&app, &app.api_key, "").await;
    assert!(list["data"][0]["delivered_at"].is_null());
}

#[sqlx::test]
async fn the_notification_webhook_is_validated_and_can_be_cleared(pool: PgPool) {
    let app = spawn_app_with(pool, |s| s.agent.http_allow_private = false).await;
    for bad in [
        json!({"webhook_url": "ftp://example.com/x"}),
        json!({"webhook_url": "http://127.0.0.1:9/x"}),
        json!({"webhook_url": "https://user:pw@example.com/x"}),
        json!({"webhook_url": 42}),
        json!({"url": "https://example.com/x"}),
    ] {
        let response = app
            .request(
                reqwest::Method::PUT,
                "/api/v1/tenant/notifications",
                &app.api_key,
                Some(&bad),
            )
            .await;
        assert_eq!(response.status(), 422, "{bad}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["code"].is_string(), "{error}");
    }
    let set = set_webhook(&app, Some("https://hooks.example.com/sb")).await;
    assert_eq!(set.status(), 200);
    let current: Value = app
        .get("/api/v1/tenant/notifications", &app.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        current,
        json!({"webhook_url": "https://hooks.example.com/sb"})
    );
    assert_eq!(set_webhook(&app, None).await.status(), 200);
    let current: Value = app
        .get("/api/v1/tenant/notifications", &app.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current, json!({"webhook_url": null}));

    // With the webhook cleared, raising queues nothing to deliver.
    assert!(raise_quota_notice(&app, 2030, 6).await);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'notice_webhook'")
        .fetch_one(&app.db.system)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
}
