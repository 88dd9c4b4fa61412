//! Tenants bringing their own LLM endpoint through `PUT /api/v1/tenant/llm`: each tenant's
//! messages are read by its own endpoint (a loopback fake OpenAI server per tenant) with its own
//! key and model, usage is recorded with that model, the key never comes back, clearing the
//! endpoint falls back to the server's LLM (or to the embedded understanding when the server has
//! none), bad settings are refused with a code, and private addresses are refused unless allowed.
//! The agent's tenant cache is switched off (`agent.tenant_cache_ms = 0`) so changes apply at once.

use serde_json::{json, Value};
use sqlx::PgPool;
use switchboard::config::Settings;
use switchboard::ids::TenantId;

use crate::common::fake_openai::{FakeOpenAi, Reply};
use crate::common::{spawn_app_with, TestApp, Visitor};

const SETTINGS: &str = "/api/v1/tenant/llm";

/// A fake that reads every message as "no particular intent".
async fn fake_llm() -> FakeOpenAi {
    let fake = FakeOpenAi::start().await;
    fake.set_default(|_| Reply::tool("understand", json!({"intent": "none", "confidence": 0.9})));
    fake
}

/// A server whose agent re-reads tenant settings on every batch; `server_llm` is its `[llm]`.
async fn app(pool: PgPool, server_llm: Option<&FakeOpenAi>, tweak: fn(&mut Settings)) -> TestApp {
    let server_url = server_llm.map(|f| f.base_url.clone());
    spawn_app_with(pool, move |s| {
        s.agent.tenant_cache_ms = 0;
        s.llm.timeout_ms = 2000;
        s.llm.max_retries = 0;
        if let Some(url) = server_url {
            s.llm.base_url = url;
            s.llm.model = "server-model".into();
            s.llm.api_key = "sk-server".to_string().into();
        }
        tweak(s);
    })
    .await
}

/// A second tenant with a web-chat channel: its id, API key and channel key.
async fn second_tenant(app: &TestApp) -> (TenantId, String, String) {
    let created: Value = app
        .post(
            "/api/v1/tenants",
            &app.admin_key,
            &json!({"slug": "north-clinic", "name": "North Clinic"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let key = created["api_key"].as_str().expect("key").to_owned();
    let id = created["tenant"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let channel: Value = app
        .post(
            "/api/v1/channels",
            &key,
            &json!({"kind": "webchat", "name": "North site"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let public = channel["public_key"]
        .as_str()
        .expect("channel key")
        .to_owned();
    (id, key, public)
}

async fn put(app: &TestApp, key: &str, body: Value) -> (u16, Value) {
    let response = app
        .request(reqwest::Method::PUT, SETTINGS, key, Some(&body))
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn settings(app: &TestApp, key: &str) -> Value {
    let response = app.get(SETTINGS, key).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

/// One visitor says `text` on `channel` and gets the bot's two replies.
async fn converse(app: &TestApp, channel: &str, id: &str, text: &str) {
    let mut v = Visitor::connect(&app.ws_url, channel, None, None).await;
    v.say(id, text).await;
    v.outbound(2).await;
    app.settle().await;
}

/// `(tenant slug, model, outcome)` of every usage row, in order.
async fn usage_rows(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT t.slug, u.model, u.outcome FROM llm_usage u JOIN tenants t ON t.id = u.tenant_id \
         ORDER BY u.id",
    )
    .fetch_all(&app.db.system)
    .await
    .expect("usage rows")
}

fn row(slug: &str, model: &str, outcome: &str) -> (String, String, String) {
    (slug.into(), model.into(), outcome.into())
}

#[sqlx::test]
async fn each_tenant_is_read_by_its_own_endpoint_with_its_own_key_and_model(pool: PgPool) {
    let (fake_a, fake_b) = (fake_llm().await, fake_llm().await);
    let app = app(pool, None, |_| {}).await;
    let (_, b_key, b_channel) = second_tenant(&app).await;
    let a_body = json!({"enabled": true, "base_url": fake_a.base_url, "model": "model-a",
        "api_key": "sk-tenant-a", "timeout_ms": 1500});
    let (status, a_view) = put(&app, &app.api_key, a_body).await;
    assert_eq!(status, 200, "{a_view}");
    let b_body = json!({"enabled": true, "base_url": format!("{}/", fake_b.base_url),
        "model": "model-b", "api_key": "sk-tenant-b"});
    let (status, b_view) = put(&app, &b_key, b_body).await;
    assert_eq!(status, 200, "{b_view}");

    converse(&app, &app.webchat_key, "a1", "hello there").await;
    converse(&app, &b_channel, "b1", "hello there").await;

    assert_eq!(
        fake_a.authorizations(),
        [Some("Bearer sk-tenant-a".to_string())]
    );
    assert_eq!(
        fake_b.authorizations(),
        [Some("Bearer sk-tenant-b".to_string())]
    );
    assert_eq!(fake_a.requests()[0]["model"], "model-a");
    assert_eq!(fake_b.requests()[0]["model"], "model-b");
    assert_eq!(
        usage_rows(&app).await,
        [
            row("smile-dental", "model-a", "ok"),
            row("north-clinic", "model-b", "ok")
        ]
    );
    let a = settings(&app, &app.api_key).await;
    assert_eq!(
        (
            &a["source"],
            &a["base_url"],
            &a["model"],
            &a["has_api_key"],
            &a["timeout_ms"]
        ),
        (
            &json!("tenant"),
            &json!(fake_a.base_url),
            &json!("model-a"),
            &json!(true),
            &json!(1500)
        ),
        "{a}"
    );
    assert_eq!(a["active"], true);
    let b = settings(&app, &b_key).await;
    assert_eq!(b["base_url"], json!(fake_b.base_url), "normalized: {b}");
    for shown in [a, b, a_view, b_view] {
        let text = shown.to_string();
        assert!(
            !text.contains("sk-tenant") && shown.get("api_key").is_none(),
            "{text}"
        );
    }
}

#[sqlx::test]
async fn without_an_endpoint_on_a_server_without_llm_the_embedded_understanding_answers(
    pool: PgPool,
) {
    let app = app(pool, None, |_| {}).await;
    let view = settings(&app, &app.api_key).await;
    assert_eq!(
        (
            &view["source"],
            &view["active"],
            &view["base_url"],
            &view["enabled"]
        ),
        (&json!("none"), &json!(false), &Value::Null, &json!(true)),
        "{view}"
    );
    converse(&app, &app.webchat_key, "m1", "hello there").await;
    assert!(usage_rows(&app).await.is_empty());
}

#[sqlx::test]
async fn clearing_the_endpoint_falls_back_to_the_servers_llm(pool: PgPool) {
    let (server, own) = (fake_llm().await, fake_llm().await);
    let app = app(pool, Some(&server), |_| {}).await;
    let before = settings(&app, &app.api_key).await;
    assert_eq!(
        (&before["source"], &before["model"], &before["has_api_key"]),
        (&json!("server"), &json!("server-model"), &json!(true)),
        "{before}"
    );
    let body =
        json!({"enabled": true, "base_url": own.base_url, "model": "own-1", "api_key": "sk-own"});
    assert_eq!(put(&app, &app.api_key, body).await.0, 200);
    converse(&app, &app.webchat_key, "m1", "hello there").await;
    // A new model alone keeps the stored key; the agent is rebuilt for it.
    let (status, view) = put(
        &app,
        &app.api_key,
        json!({"enabled": true, "model": "own-2"}),
    )
    .await;
    assert_eq!(
        (status, &view["has_api_key"]),
        (200, &json!(true)),
        "{view}"
    );
    converse(&app, &app.webchat_key, "m2", "hello there").await;

    let (status, view) = put(
        &app,
        &app.api_key,
        json!({"enabled": true, "base_url": null}),
    )
    .await;
    assert_eq!((status, &view["source"]), (200, &json!("server")), "{view}");
    converse(&app, &app.webchat_key, "m3", "hello there").await;

    let own_keys = own.authorizations();
    assert_eq!(
        own_keys,
        [
            Some("Bearer sk-own".to_string()),
            Some("Bearer sk-own".to_string())
        ]
    );
    assert_eq!(
        server.authorizations(),
        [Some("Bearer sk-server".to_string())]
    );
    let models: Vec<String> = usage_rows(&app).await.into_iter().map(|r| r.1).collect();
    assert_eq!(models, ["own-1", "own-2", "server-model"]);
    // Switched off, no LLM reads the tenant's messages.
    let (_, off) = put(&app, &app.api_key, json!({"enabled": false})).await;
    assert_eq!(
        (&off["active"], &off["source"]),
        (&json!(false), &json!("server"))
    );
    converse(&app, &app.webchat_key, "m4", "hello there").await;
    assert_eq!(server.request_count(), 1);
}

#[sqlx::test]
async fn bad_endpoint_settings_are_refused_with_a_code(pool: PgPool) {
    let app = app(pool, None, |_| {}).await;
    let url = "https://llm.example/v1";
    let long_model = "m".repeat(201);
    let cases = [
        (
            json!({"enabled": true, "base_url": "ftp://llm.example/v1", "model": "m"}),
            400,
            "invalid_llm_base_url",
        ),
        (
            json!({"enabled": true, "base_url": "https://me:pw@llm.example/v1", "model": "m"}),
            400,
            "invalid_llm_base_url",
        ),
        (
            json!({"enabled": true, "base_url": "https://llm.example/v1?api-version=2", "model": "m"}),
            400,
            "invalid_llm_base_url",
        ),
        (
            json!({"enabled": true, "base_url": url}),
            400,
            "llm_model_required",
        ),
        (
            json!({"enabled": true, "model": "m"}),
            400,
            "llm_base_url_required",
        ),
        (
            json!({"enabled": true, "base_url": url, "model": " "}),
            400,
            "invalid_llm_model",
        ),
        (
            json!({"enabled": true, "base_url": url, "model": long_model}),
            400,
            "invalid_llm_model",
        ),
        (
            json!({"enabled": true, "base_url": url, "model": "m", "timeout_ms": 5}),
            400,
            "invalid_llm_timeout",
        ),
        (
            json!({"enabled": true, "base_url": url, "model": "m", "api_key": "sk-\u{7}secret"}),
            400,
            "invalid_llm_api_key",
        ),
        (
            json!({"enabled": true, "base_url": null, "model": "m"}),
            400,
            "invalid_llm_endpoint",
        ),
        (
            json!({"enabled": true, "base_url": url, "model": "m", "api_key": 42}),
            422,
            "invalid_body",
        ),
        (
            json!({"enabled": true, "apikey": "sk-x"}),
            422,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let (got, error) = put(&app, &app.api_key, body.clone()).await;
        assert_eq!(
            (got, &error["error"]["code"]),
            (status, &json!(code)),
            "{body} -> {error}"
        );
        assert!(!error.to_string().contains("secret"), "{error}");
    }
    let good = json!({"enabled": true, "base_url": url, "model": "m", "api_key": "sk-secret"});
    assert_eq!(put(&app, &app.api_key, good).await.0, 200);
    let moved = json!({"enabled": true, "base_url": "https://elsewhere.example/v1"});
    let (status, error) = put(&app, &app.api_key, moved).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (400, &json!("llm_api_key_required"))
    );
    let view = settings(&app, &app.api_key).await;
    assert_eq!(
        (&view["base_url"], &view["model"]),
        (&json!(url), &json!("m")),
        "unchanged: {view}"
    );
}

#[sqlx::test]
async fn private_addresses_are_refused_unless_allowed(pool: PgPool) {
    let fake = fake_llm().await;
    let app = app(pool, None, |s| s.agent.http_allow_private = false).await;
    let literal = json!({"enabled": true, "base_url": fake.base_url, "model": "m"});
    let (status, error) = put(&app, &app.api_key, literal).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (400, &json!("llm_base_url_not_public"))
    );
    // A name is checked where it is resolved: localhost is accepted here, never connected to.
    let by_name = fake.base_url.replace("127.0.0.1", "localhost");
    let named = json!({"enabled": true, "base_url": by_name, "model": "m"});
    assert_eq!(put(&app, &app.api_key, named).await.0, 200);
    converse(&app, &app.webchat_key, "m1", "hello there").await;
    assert_eq!(fake.request_count(), 0);
    let error: Option<String> = sqlx::query_scalar("SELECT error FROM llm_usage")
        .fetch_one(&app.db.system)
        .await
        .expect("one usage row");
    assert!(error.unwrap_or_default().contains("not an allowed address"));
}

#[sqlx::test]
async fn endpoints_are_sealed_and_confined_to_their_tenant_by_row_level_security(pool: PgPool) {
    let app = app(pool, None, |_| {}).await;
    let (b, b_key, _) = second_tenant(&app).await;
    let a = app.seed.tenant_id;
    for (key, secret) in [(&app.api_key, "sk-secret-a"), (&b_key, "sk-secret-b")] {
        let body = json!({"enabled": true, "base_url": "https://llm.example/v1", "model": "m",
            "api_key": secret});
        assert_eq!(put(&app, key, body).await.0, 200);
    }
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT api_key FROM tenant_llm_endpoints")
        .fetch_all(&app.db.system)
        .await
        .expect("keys");
    assert_eq!(sealed.len(), 2);
    for key in &sealed {
        let plain = String::from_utf8_lossy(key);
        assert!(!plain.contains("sk-secret"), "stored sealed");
    }

    let mut tx = app.db.tenant_tx(a).await.expect("tx");
    let seen: Vec<TenantId> = sqlx::query_scalar("SELECT tenant_id FROM tenant_llm_endpoints")
        .fetch_all(&mut *tx)
        .await
        .expect("select");
    assert_eq!(seen, [a]);
    let touched = sqlx::query("UPDATE tenant_llm_endpoints SET model = 'x' WHERE tenant_id = $1")
        .bind(b)
        .execute(&mut *tx)
        .await
        .expect("update")
        .rows_affected();
    assert_eq!(touched, 0);
    tx.rollback().await.expect("rollback");
    let mut tx = app.db.tenant_tx(a).await.expect("tx");
    let foreign = sqlx::query(
        "INSERT INTO tenant_llm_endpoints (tenant_id, base_url, model) VALUES ($1, 'https://x/v1', 'm') \
         ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(b)
    .execute(&mut *tx)
    .await;
    let err = foreign.expect_err("RLS refuses a foreign tenant_id");
    assert!(err.to_string().contains("row-level security"), "{err}");
}
