use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::spawn_app;

#[sqlx::test]
async fn an_admin_creates_a_tenant_whose_key_then_works(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created = app.post("/api/v1/tenants", &app.admin_key, &json!({"slug": "acme-plumbing", "name": "Acme Plumbing", "timezone": "America/New_York"})).await;
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.expect("json");
    let key = body["api_key"].as_str().expect("key").to_owned();
    let me: Value = app
        .get("/api/v1/tenant", &key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["slug"], "acme-plumbing");
    assert_eq!(me["timezone"], "America/New_York");

    let again = app
        .post(
            "/api/v1/tenants",
            &app.admin_key,
            &json!({"slug": "acme-plumbing", "name": "Other"}),
        )
        .await;
    assert_eq!(again.status(), 409);
    let err: Value = again.json().await.expect("json");
    assert_eq!(err["error"]["code"], "slug_taken");
}

#[sqlx::test]
async fn tenant_keys_cannot_administer_and_admin_keys_have_no_tenant(pool: PgPool) {
    let app = spawn_app(pool).await;
    let as_tenant = app
        .post(
            "/api/v1/tenants",
            &app.api_key,
            &json!({"slug": "sneaky", "name": "Sneaky"}),
        )
        .await;
    assert_eq!(as_tenant.status(), 403);
    let as_admin = app.get("/api/v1/conversations", &app.admin_key).await;
    assert_eq!(as_admin.status(), 403);
}

#[sqlx::test]
async fn channels_are_created_listed_updated_and_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    let created: Value = app.post("/api/v1/channels", &app.api_key, &json!({"kind": "webchat", "name": "Second site", "settings": {"flow": "dental_demo"}, "secrets": {"token": "s3cret"}})).await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(created["public_key"]
        .as_str()
        .expect("key")
        .starts_with("wc_"));
    assert!(
        created.get("secrets").is_none(),
        "secrets are never returned"
    );
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secrets FROM channels WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.db.system)
        .await
        .expect("row");
    assert!(
        !String::from_utf8_lossy(&stored).contains("s3cret"),
        "secrets are encrypted at rest"
    );

    let list: Value = app
        .get("/api/v1/channels", &app.api_key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let patched = app
        .patch(
            &format!("/api/v1/channels/{id}"),
            &app.api_key,
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let deleted = app
        .delete(&format!("/api/v1/channels/{id}"), &app.api_key)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.get(&format!("/api/v1/channels/{id}"), &app.api_key)
            .await
            .status(),
        404
    );
}

#[sqlx::test]
async fn deleting_a_channel_deletes_its_conversations_and_their_messages(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut v = crate::common::Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("d1", "hello").await;
    v.outbound(2).await;
    app.settle().await;
    let channels: Value = app
        .get("/api/v1/channels", &app.api_key)
        .await
        .json()
        .await
        .expect("json");
    let id = channels[0]["id"].as_str().expect("id").to_owned();
    let deleted = app
        .delete(&format!("/api/v1/channels/{id}"), &app.api_key)
        .await;
    assert_eq!(deleted.status(), 204);
    let (conversations, messages): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)",
    )
    .fetch_one(&app.db.system)
    .await
    .expect("counts");
    assert_eq!((conversations, messages), (0, 0));
}
