//! Per-tenant and per-flow prompt overrides over the REST API: checked before they are saved
//! (syntax, and a dry run of every affected flow so nothing fails in front of a customer),
//! applied to the tenant's conversations, isolated from other tenants, and removable.

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{spawn_app, Visitor};

#[sqlx::test]
async fn an_override_is_checked_applied_and_removed(pool: PgPool) {
    let app = spawn_app(pool).await;
    let put = |body: Value, name: &'static str| {
        let app = &app;
        async move {
            let r = app
                .request(
                    Method::PUT,
                    &format!("/api/v1/prompts/{name}"),
                    &app.api_key,
                    Some(&body),
                )
                .await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = put(json!({"source": "Hi {% if %}"}), "greeting").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (422, json!("template_syntax"))
    );
    let (status, body) = put(json!({"source": "Hi"}), "no_such_template").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (422, json!("unknown_template"))
    );
    // The greeting is sent before any email is known: this would fail for every customer.
    let (status, body) = put(json!({"source": "Hello {{ slots.email }}"}), "greeting").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "template_render");
    assert_eq!(body["error"]["details"][0]["path"], "states.greet.say");

    let (status, body) = put(
        json!({"source": "Ahoy from {{ business.name }}! How can we help?"}),
        "greeting",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let list: Value = app
        .get("/api/v1/prompts", &app.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert!(list["defaults"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "greeting"));
    assert_eq!(list["overrides"][0]["name"], "greeting");

    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("m1", "hello").await;
    let replies = v.outbound(2).await;
    assert_eq!(
        replies[0]["text"],
        "Ahoy from Smile Dental! How can we help?"
    );

    let gone = app
        .request(
            Method::DELETE,
            "/api/v1/prompts/greeting",
            &app.api_key,
            None,
        )
        .await;
    assert_eq!(gone.status(), 204);
    let again = app
        .request(
            Method::DELETE,
            "/api/v1/prompts/greeting",
            &app.api_key,
            None,
        )
        .await;
    assert_eq!(again.status(), 404);
}
