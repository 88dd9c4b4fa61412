//! Bad input gets a clear error and never a panic, and nothing already accepted is lost.

use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{spawn_app, Visitor};

async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON error body");
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[sqlx::test]
async fn api_errors_are_json_with_codes(pool: PgPool) {
    let app = spawn_app(pool).await;
    let no_key = app
        .http
        .get(app.url("/api/v1/conversations"))
        .send()
        .await
        .expect("req");
    assert_eq!(error_code(no_key).await, (401, "unauthorized".into()));
    let wrong_key = app
        .get(
            "/api/v1/conversations",
            "sb_0000000000000000000000000000000000000000",
        )
        .await;
    assert_eq!(error_code(wrong_key).await, (401, "unauthorized".into()));
    let unknown = app.get("/api/v1/nope", &app.api_key).await;
    assert_eq!(error_code(unknown).await, (404, "not_found".into()));

    let post = |body: Vec<u8>| {
        app.http
            .post(app.url("/api/v1/channels"))
            .bearer_auth(&app.api_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        error_code(post(b"{not json".to_vec()).await.expect("req")).await,
        (400, "invalid_json".into())
    );
    assert_eq!(
        error_code(post(vec![b'"', 0xff, 0xfe, b'"']).await.expect("req"))
            .await
            .0,
        400
    );
    let unknown_kind = post(json!({"kind": "fax", "name": "x"}).to_string().into_bytes())
        .await
        .expect("req");
    assert_eq!(error_code(unknown_kind).await, (422, "invalid_body".into()));
    let huge = post(vec![b' '; 2 * 1024 * 1024]).await.expect("req");
    assert_eq!(error_code(huge).await, (413, "payload_too_large".into()));
    let bad_id = app
        .get("/api/v1/conversations/not-a-uuid", &app.api_key)
        .await;
    assert_eq!(error_code(bad_id).await, (400, "invalid_path".into()));
    let bad_cursor = app
        .get("/api/v1/conversations?cursor=zzz", &app.api_key)
        .await;
    assert_eq!(error_code(bad_cursor).await, (400, "invalid_cursor".into()));
}

#[sqlx::test]
async fn bad_websocket_frames_get_error_frames_and_the_session_survives(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.send_raw("{oops").await;
    assert_eq!(v.next_of("error").await["code"], "bad_frame");
    v.send_raw(r#"{"type":"shout","text":"x"}"#).await;
    assert_eq!(v.next_of("error").await["code"], "bad_frame");
    v.send_raw(&json!({"type": "hello", "channel_key": app.webchat_key}).to_string())
        .await;
    assert_eq!(v.next_of("error").await["code"], "already_ready");
    v.say("bad id!", "hi").await;
    assert_eq!(v.next_of("error").await["code"], "invalid_client_id");
    v.say("long", &"x".repeat(4001)).await;
    assert_eq!(v.next_of("error").await["code"], "too_long");
    v.say("empty", "   ").await;
    assert_eq!(v.next_of("error").await["code"], "too_long");
    // Still alive: a good message goes through.
    v.say("ok-1", "hello").await;
    assert_eq!(v.next_of("ack").await["client_id"], "ok-1");
}

#[sqlx::test]
async fn unknown_channels_and_early_sends_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&app.ws_url)
        .await
        .expect("connect");
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::Text(
        json!({"type":"send","client_id":"a","text":"hi"}).to_string(),
    ))
    .await
    .expect("send");
    let frame = ws.next().await.expect("frame").expect("ok");
    let v: Value = serde_json::from_str(frame.to_text().expect("text")).expect("json");
    assert_eq!(v["code"], "not_ready");
    ws.send(Message::Text(
        json!({"type":"hello","channel_key":"wc_doesnotexist"}).to_string(),
    ))
    .await
    .expect("send");
    let frame = ws.next().await.expect("frame").expect("ok");
    let v: Value = serde_json::from_str(frame.to_text().expect("text")).expect("json");
    assert_eq!(v["code"], "unknown_channel");
}
