use serde_json::Value;
use sqlx::PgPool;

use crate::common::{spawn_app, TestApp, Visitor};

#[sqlx::test]
async fn health_ready_and_metrics_answer(pool: PgPool) {
    let app = spawn_app(pool).await;
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let text = metrics(&app).await;
    assert!(text.contains("http_request_duration_seconds"), "{text}");
    assert!(text.contains("jobs{status=\"queued\"}"), "{text}");
}

/// The Prometheus text at `/metrics` (answered with 200).
async fn metrics(app: &TestApp) -> String {
    let response = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    response.text().await.expect("body")
}

#[sqlx::test]
async fn the_ingest_batch_size_histogram_counts_messages_not_seconds(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut visitor = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    visitor.say("c-1", "hello").await;
    visitor.next_of("ack").await;
    let text = metrics(&app).await;
    // Size buckets (a batch of 1 to 512 messages), not the latency buckets in seconds.
    for le in ["1", "64", "512"] {
        let bucket = format!("ingest_batch_size_bucket{{le=\"{le}\"}}");
        assert!(text.contains(&bucket), "{bucket} missing:\n{text}");
    }
    assert!(
        !text.contains("ingest_batch_size_bucket{le=\"0.0005\"}"),
        "{text}"
    );
}

#[sqlx::test]
async fn openapi_document_is_served_and_matches_the_checked_in_copy(pool: PgPool) {
    let app = spawn_app(pool).await;
    let served: Value = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert!(served["paths"]["/api/v1/conversations"].is_object());
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).expect(
            "docs/openapi.json exists (regenerate: cargo run -- openapi > docs/openapi.json)",
        );
    let checked_in: Value = serde_json::from_str(&checked_in).expect("valid json");
    assert_eq!(
        served, checked_in,
        "docs/openapi.json is stale: run `cargo run -- openapi > docs/openapi.json`"
    );
}
