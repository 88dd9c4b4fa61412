//! Tenant isolation: through the API, and directly as the runtime role under row-level security.

use serde_json::json;
use sqlx::PgPool;
use switchboard::ids::TenantId;

use crate::common::{spawn_app, Visitor};

async fn second_tenant(app: &crate::common::TestApp) -> (TenantId, String, String) {
    let created: serde_json::Value = app
        .post(
            "/api/v1/tenants",
            &app.admin_key,
            &json!({"slug": "other-clinic", "name": "Other Clinic"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let key = created["api_key"].as_str().expect("key").to_owned();
    let id: TenantId = created["tenant"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let channel: serde_json::Value = app
        .post(
            "/api/v1/channels",
            &key,
            &json!({"kind": "webchat", "name": "Other site"}),
        )
        .await
        .json()
        .await
        .expect("json");
    (
        id,
        key,
        channel["public_key"].as_str().expect("pk").to_owned(),
    )
}

#[sqlx::test]
async fn tenant_b_cannot_see_tenant_a_through_the_api(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_b, b_key, _) = second_tenant(&app).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("x1", "hello").await;
    let ack = v.next_of("ack").await;
    app.settle().await;
    let a_conv = v.conversation_id.clone().unwrap_or_default();
    let a_conv = if a_conv.is_empty() {
        let list: serde_json::Value = app
            .get("/api/v1/conversations", &app.api_key)
            .await
            .json()
            .await
            .expect("json");
        list["data"][0]["id"].as_str().expect("id").to_owned()
    } else {
        a_conv
    };
    assert!(ack["message_id"].is_string());

    let list: serde_json::Value = app
        .get("/api/v1/conversations", &b_key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        app.get(&format!("/api/v1/conversations/{a_conv}"), &b_key)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/conversations/{a_conv}/messages"), &b_key)
            .await
            .status(),
        404
    );
    let channels: serde_json::Value = app
        .get("/api/v1/channels", &b_key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        channels.as_array().map(Vec::len),
        Some(1),
        "only B's own channel"
    );
    // A still sees its own.
    assert_eq!(
        app.get(&format!("/api/v1/conversations/{a_conv}"), &app.api_key)
            .await
            .status(),
        200
    );
}

#[sqlx::test]
async fn the_runtime_role_is_confined_to_its_tenant_even_without_where_clauses(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (b, _b_key, b_channel) = second_tenant(&app).await;
    let a = app.seed.tenant_id;
    for (key, id) in [(app.webchat_key.clone(), "ia"), (b_channel.clone(), "ib")] {
        let mut v = Visitor::connect(&app.ws_url, &key, None, None).await;
        v.say(id, "hello").await;
        v.next_of("ack").await;
    }
    app.settle().await;

    // The runtime role is neither superuser nor exempt from RLS.
    let mut conn = app.db.app.acquire().await.expect("conn");
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut *conn)
            .await
            .expect("role");
    assert!(!superuser && !bypass);
    // No tenant set: nothing is visible.
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&mut *conn)
        .await
        .expect("count");
    assert_eq!(visible, 0);
    drop(conn);

    let mut tx = app.db.tenant_tx(a).await.expect("tx");
    let tenants: Vec<TenantId> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM messages")
        .fetch_all(&mut *tx)
        .await
        .expect("select");
    assert_eq!(tenants, vec![a]);
    let seen_tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(seen_tenants, 1);
    // Updates and deletes cannot reach B's rows.
    let touched = sqlx::query("UPDATE conversations SET status = 'closed' WHERE tenant_id = $1")
        .bind(b)
        .execute(&mut *tx)
        .await
        .expect("update")
        .rows_affected();
    assert_eq!(touched, 0);
    let deleted = sqlx::query("DELETE FROM messages WHERE tenant_id = $1")
        .bind(b)
        .execute(&mut *tx)
        .await
        .expect("delete")
        .rows_affected();
    assert_eq!(deleted, 0);
    tx.rollback().await.expect("rollback");

    // Writing a row for B while acting as A is refused by the policy.
    let mut tx = app.db.tenant_tx(a).await.expect("tx");
    let insert = sqlx::query("INSERT INTO contacts (id, tenant_id) VALUES (gen_random_uuid(), $1)")
        .bind(b)
        .execute(&mut *tx)
        .await;
    let err = insert.expect_err("RLS refuses a foreign tenant_id");
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.expect("rollback");

    // B's rows are intact.
    let b_messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE tenant_id = $1")
        .bind(b)
        .fetch_one(&app.db.system)
        .await
        .expect("count");
    assert!(b_messages >= 1);
}
