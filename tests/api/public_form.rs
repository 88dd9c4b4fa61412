//! The public form endpoint: a "contact us" post (JSON or an HTML form) becomes a contact, a
//! conversation and a message the bot answers; honeypot, idempotency, redirects, CORS and bad
//! input.

use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{spawn_app, TestApp};

/// A `form` channel of the demo tenant; returns its public key.
async fn form_channel(app: &TestApp, settings: Value) -> String {
    let resp = app
        .post(
            "/api/v1/channels",
            &app.api_key,
            &json!({"kind": "form", "name": "Contact us", "settings": settings}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let channel: Value = resp.json().await.expect("json");
    let key = channel["public_key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("fm_"), "{key}");
    key
}

fn form_url(app: &TestApp, key: &str) -> String {
    app.url(&format!("/api/v1/public/forms/{key}"))
}

async fn post_json(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(form_url(app, key))
        .json(body)
        .send()
        .await
        .expect("post")
}

/// Inbound messages stored on form channels.
async fn stored_messages(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM messages m JOIN channels c ON c.id = m.channel_id \
         WHERE c.kind = 'form' AND m.direction = 'inbound'",
    )
    .fetch_one(&app.db.system)
    .await
    .expect("count")
}

async fn error_of(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON error body");
    let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
    (status, code, body["error"]["details"].clone())
}

fn ada() -> Value {
    json!({"name": "Ada Lovelace", "email": "Ada@Example.com", "phone": "+44 20 7946 0958",
           "subject": "Opening hours", "message": "Hello, are you open on Saturdays?"})
}

#[sqlx::test]
async fn a_form_post_becomes_a_conversation_the_bot_answers(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = form_channel(&app, json!({})).await;
    let resp = post_json(&app, &key, &ada()).await;
    assert_eq!(resp.status(), 201);
    let accepted: Value = resp.json().await.expect("json");
    assert_eq!(accepted["duplicate"], false);
    let conv = accepted["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    app.settle().await;

    let conversation: Value = app
        .get(&format!("/api/v1/conversations/{conv}"), &app.api_key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(conversation["contact_name"], "Ada Lovelace");
    let messages: Value = app
        .get(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.api_key,
        )
        .await
        .json()
        .await
        .expect("json");
    let messages = messages["data"].as_array().expect("messages");
    assert_eq!(messages[0]["id"], accepted["message_id"]);
    assert_eq!(messages[0]["direction"], "inbound");
    assert_eq!(messages[0]["body"], "Hello, are you open on Saturdays?");
    assert_eq!(messages[0]["content"]["form"]["subject"], "Opening hours");
    assert_eq!(messages[0]["content"]["form"]["email"], "ada@example.com");
    let bot: Vec<&Value> = messages
        .iter()
        .filter(|m| m["author_kind"] == "bot")
        .collect();
    assert!(
        !bot.is_empty(),
        "the agent_turn job ran and the bot replied: {messages:?}"
    );
    assert_eq!(bot[0]["direction"], "outbound");

    let (email, phone, address): (Option<String>, Option<String>, String) = sqlx::query_as(
        "SELECT ct.email, ct.phone, ci.address FROM conversations c \
         JOIN contacts ct ON ct.id = c.contact_id JOIN contact_identities ci ON ci.contact_id = ct.id \
         WHERE c.id = $1::uuid",
    )
    .bind(&conv)
    .fetch_one(&app.db.system)
    .await
    .expect("contact");
    assert_eq!(email.as_deref(), Some("ada@example.com"));
    assert_eq!(phone.as_deref(), Some("+44 20 7946 0958"));
    assert_eq!(address, "ada@example.com", "the email is the identity");

    // A second post from the same address joins the same open conversation.
    let mut again = ada();
    again["message"] = json!("Also: do you take new patients?");
    let second: Value = post_json(&app, &key, &again)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(second["conversation_id"], json!(conv));
    assert_ne!(second["message_id"], accepted["message_id"]);
}

#[sqlx::test]
async fn an_html_form_posts_urlencoded_fields(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = form_channel(&app, json!({})).await;
    let resp = app
        .http
        .post(form_url(&app, &key))
        .header("content-type", "application/x-www-form-urlencoded; charset=UTF-8")
        .body("name=Grace+Hopper&email=grace%40navy.example&message=Caf%C3%A9+booking%3F&website=&submit=Send")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 201);
    let accepted: Value = resp.json().await.expect("json");
    let messages: Value = app
        .get(
            &format!(
                "/api/v1/conversations/{}/messages",
                accepted["conversation_id"].as_str().unwrap_or("")
            ),
            &app.api_key,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(messages["data"][0]["body"], "Café booking?");
    assert_eq!(
        messages["data"][0]["content"]["form"]["name"],
        "Grace Hopper"
    );
}

#[sqlx::test]
async fn a_filled_honeypot_is_accepted_and_nothing_is_stored(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = form_channel(&app, json!({})).await;
    let mut bot = ada();
    bot["website"] = json!("http://cheap-pills.example");
    let resp = post_json(&app, &key, &bot).await;
    assert_eq!(resp.status(), 202);
    // Even an otherwise invalid bot post gets the same polite answer.
    let resp = post_json(&app, &key, &json!({"website": "x", "email": "nope"})).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(stored_messages(&app).await, 0);
    let contacts: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&app.db.system)
        .await
        .expect("count");
    assert_eq!(contacts, 0);
}

#[sqlx::test]
async fn the_same_client_id_is_stored_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = form_channel(&app, json!({})).await;
    let mut body = ada();
    body["client_id"] = json!("submit-7f3a");
    let first: Value = post_json(&app, &key, &body)
        .await
        .json()
        .await
        .expect("json");
    let resp = post_json(&app, &key, &body).await;
    assert_eq!(resp.status(), 201);
    let second: Value = resp.json().await.expect("json");
    assert_eq!(second["message_id"], first["message_id"]);
    assert_eq!(second["conversation_id"], first["conversation_id"]);
    assert_eq!(
        (first["duplicate"].as_bool(), second["duplicate"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(stored_messages(&app).await, 1);

    // The same key from another sender is another message.
    let mut other = body.clone();
    other["email"] = json!("someone.else@example.com");
    let third: Value = post_json(&app, &key, &other)
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(third["message_id"], first["message_id"]);
    assert_eq!(third["duplicate"], false);
}

#[sqlx::test]
async fn bad_form_posts_get_clear_errors(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = form_channel(&app, json!({})).await;

    let (status, code, _) = error_of(post_json(&app, "fm_nosuchkey", &ada()).await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let webchat_key = app.webchat_key.clone();
    let (status, _, _) = error_of(post_json(&app, &webchat_key, &ada()).await).await;
    assert_eq!(status, 404, "a web-chat key is not a form");

    let mut bad_email = ada();
    bad_email["email"] = json!("ada-at-example");
    let (status, code, details) = error_of(post_json(&app, &key, &bad_email).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_email"));
    assert_eq!(details[0]["field"], "email");

    let (status, code, details) =
        error_of(post_json(&app, &key, &json!({"name": "x"})).await).await;
    assert_eq!((status, code.as_str()), (422, "missing_field"));
    let fields: Vec<&str> = details
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["email", "message"], "every problem is listed");

    let mut long = ada();
    long["message"] = json!("x".repeat(4001));
    let (status, code, _) = error_of(post_json(&app, &key, &long).await).await;
    assert_eq!((status, code.as_str()), (422, "too_long"));

    let send = |content_type: &'static str, body: Vec<u8>| {
        app.http
            .post(form_url(&app, &key))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, code, _) =
        error_of(send("text/plain", b"hello".to_vec()).await.expect("post")).await;
    assert_eq!((status, code.as_str()), (415, "unsupported_media_type"));
    let (status, _, _) = error_of(
        send("multipart/form-data; boundary=x", b"--x--".to_vec())
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, 415);
    let (status, code, _) = error_of(
        send("application/json", b"{\"email\": ".to_vec())
            .await
            .expect("post"),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_json"));
    let (status, code, _) = error_of(
        send("application/json", b"{\"email\": 5}".to_vec())
            .await
            .expect("post"),
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "invalid_body"));
    let huge = format!("email=a%40b.co&message={}", "x".repeat(70 * 1024)).into_bytes();
    let (status, code, _) = error_of(
        send("application/x-www-form-urlencoded", huge)
            .await
            .expect("post"),
    )
    .await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));

    assert_eq!(stored_messages(&app).await, 0, "nothing invalid was stored");
}

#[sqlx::test]
async fn browsers_may_post_from_the_business_site(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = form_channel(&app, json!({})).await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, form_url(&app, &key))
        .header("origin", "https://clinic.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap_or("");
    assert!(methods.contains("POST"), "{methods}");

    let resp = app
        .http
        .post(form_url(&app, &key))
        .header("origin", "https://clinic.example")
        .json(&ada())
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
}

#[sqlx::test]
async fn redirect_to_an_allowed_origin_answers_303(pool: PgPool) {
    let app = spawn_app(pool).await;
    let key = form_channel(
        &app,
        json!({"redirect_origins": ["https://clinic.example"]}),
    )
    .await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let post = |redirect: &str| {
        no_follow
            .post(form_url(&app, &key))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "email=ada%40example.com&message=Hi&redirect_to={}",
                redirect.replace(':', "%3A").replace('/', "%2F")
            ))
            .send()
    };
    let resp = post("https://clinic.example/thanks").await.expect("post");
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "https://clinic.example/thanks");
    assert_eq!(stored_messages(&app).await, 1);

    let (status, code, _) = error_of(post("https://evil.example/phish").await.expect("post")).await;
    assert_eq!((status, code.as_str()), (422, "redirect_not_allowed"));
    assert_eq!(
        stored_messages(&app).await,
        1,
        "a refused redirect stores nothing"
    );
}
