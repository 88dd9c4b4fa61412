//! Versioned per-tenant flows over the REST API: drafts, validation, publishing (which new
//! conversations pick up), rollback, archiving, immutability in the database, simulation, tenant
//! isolation, and `switchboard flow simulate`.

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{spawn_app, TestApp, Visitor};

/// Same key as the demo channel's flow, so publishing it changes what visitors see.
const CUSTOM: &str = r#"id: dental_demo
name: Custom front desk
start: greet
states:
  greet:
    kind: message
    text: "Custom hello from {{ business.name }}!"
    next: menu
  menu:
    kind: choice
    text: Pick one
    options:
      - {id: name, label: Tell my name, next: ask_name}
      - {id: bye, label: Leave, next: done}
  ask_name:
    kind: ask
    slot: name
    text: Your name?
    next: done
  done:
    kind: end
    text: "Goodbye{% if slots.name is defined %} {{ slots.name }}{% endif %}"
"#;

/// Two bad `next` targets (and an unreachable state, a warning).
const BROKEN: &str = "id: dental_demo\nname: Broken\nstart: greet\nstates:\n  greet: {kind: message, text: Hi, next: nowhere}\n  menu: {kind: ask, slot: x, text: Q, next: missing}\n";

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let resp = app.request(method, path, key, body.as_ref()).await;
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    send(app, Method::POST, path, &app.api_key, Some(body)).await
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    send(app, Method::GET, path, &app.api_key, None).await
}

async fn put(app: &TestApp, path: &str, source: &str) -> (u16, Value) {
    let body = json!({ "source": source });
    send(app, Method::PUT, path, &app.api_key, Some(body)).await
}

const V: &str = "/api/v1/flows/dental_demo";

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn paths(problems: &Value) -> Vec<String> {
    problems
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["path"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn first_reply(app: &TestApp) -> String {
    let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
    v.say("c1", "hi").await;
    let replies = v.outbound(1).await;
    app.settle().await;
    replies[0]["text"].as_str().unwrap_or_default().to_owned()
}

#[sqlx::test]
async fn a_flow_goes_from_draft_to_published_to_rolled_back_to_archived(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (status, v1) = post(&app, "/api/v1/flows", json!({ "source": CUSTOM })).await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(
        (&v1["key"], &v1["version"]),
        (&json!("dental_demo"), &json!(1))
    );
    assert_eq!(
        (&v1["status"], &v1["problems"]),
        (&json!("draft"), &json!([]))
    );
    let (status, again) = post(&app, "/api/v1/flows", json!({ "source": CUSTOM })).await;
    assert_eq!((status, code(&again)), (409, "flow_exists"));
    let (status, bad) = post(&app, "/api/v1/flows", json!({ "source": "id: [unclosed" })).await;
    assert_eq!((status, code(&bad)), (400, "invalid_flow"));
    let message = bad["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("line"), "{bad}");

    let (_, list) = get(&app, "/api/v1/flows").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["latest_version"], 1);
    assert_eq!(list[0]["published_version"], Value::Null);

    // A draft may be saved with problems; its id must match the key.
    let (status, v2) = put(&app, V, BROKEN).await;
    assert_eq!((status, &v2["version"]), (201, &json!(2)), "{v2}");
    assert!(paths(&v2["problems"]).contains(&"states.greet.next".to_owned()));
    let other = CUSTOM.replace("id: dental_demo", "id: other");
    let (status, err) = put(&app, V, &other).await;
    assert_eq!((status, code(&err)), (422, "key_mismatch"));
    assert_eq!(put(&app, "/api/v1/flows/nope", CUSTOM).await.0, 404);

    // Validation lists every problem with its exact path (default: the latest version).
    let validate = format!("{V}/validate");
    let (status, report) = send(&app, Method::POST, &validate, &app.api_key, None).await;
    assert_eq!((status, &report["valid"]), (200, &json!(false)), "{report}");
    let found = paths(&report["problems"]);
    assert!(found.contains(&"states.greet.next".to_owned()), "{found:?}");
    assert!(found.contains(&"states.menu.next".to_owned()), "{found:?}");
    let (_, report) = post(&app, &validate, json!({ "source": CUSTOM })).await;
    assert_eq!(
        (&report["valid"], &report["problems"]),
        (&json!(true), &json!([]))
    );

    // Publishing an invalid version is refused with the problems as details.
    let (status, err) = post(&app, &format!("{V}/versions/2/publish"), json!({})).await;
    assert_eq!((status, code(&err)), (422, "invalid_flow"));
    assert!(paths(&err["error"]["details"]).contains(&"states.menu.next".to_owned()));

    // Publishing a valid one switches new conversations over to it.
    assert!(first_reply(&app)
        .await
        .starts_with("Hello and welcome to Smile Dental"));
    let (status, published) = post(&app, &format!("{V}/versions/1/publish"), json!({})).await;
    assert_eq!(
        (status, &published["status"]),
        (200, &json!("published")),
        "{published}"
    );
    assert!(published["published_at"].is_string());
    let (status, _) = post(&app, &format!("{V}/versions/1/publish"), json!({})).await;
    assert_eq!(status, 200, "publishing twice is a no-op");
    assert_eq!(first_reply(&app).await, "Custom hello from Smile Dental!");
    let (_, list) = get(&app, "/api/v1/flows").await;
    assert_eq!(
        (&list[0]["latest_version"], &list[0]["published_version"]),
        (&json!(2), &json!(1))
    );

    // Rollback publishes a copy as a new version; history is kept.
    let (status, v3) = post(&app, &format!("{V}/rollback"), json!({ "version": 1 })).await;
    assert_eq!(
        (status, &v3["version"], &v3["status"]),
        (201, &json!(3), &json!("published"))
    );
    assert_eq!(v3["source"], CUSTOM);
    let (status, _) = post(&app, &format!("{V}/rollback"), json!({ "version": 99 })).await;
    assert_eq!(status, 404);
    let (_, versions) = get(&app, &format!("{V}/versions")).await;
    let numbers: Vec<i64> = versions
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    assert!(versions[0].get("source").is_none());
    assert_eq!(
        get(&app, &format!("{V}/versions/2")).await.1["source"],
        BROKEN
    );

    // Published history is immutable in the database itself.
    let update = sqlx::query("UPDATE flows SET source = 'x' WHERE status = 'published'")
        .execute(&app.db.system)
        .await;
    let error = update.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("immutable"), "the trigger refuses: {error}");
    let delete = sqlx::query("DELETE FROM flows WHERE status = 'published'")
        .execute(&app.db.system)
        .await;
    let error = delete.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        error.contains("cannot be deleted"),
        "the trigger refuses: {error}"
    );

    // Deleting archives every version; new conversations fall back to the built-in flow.
    let (status, _) = send(&app, Method::DELETE, V, &app.api_key, None).await;
    assert_eq!(status, 204);
    assert_eq!(get(&app, "/api/v1/flows").await.1, json!([]));
    let archived: i64 = sqlx::query_scalar("SELECT count(*) FROM flows WHERE status = 'archived'")
        .fetch_one(&app.db.system)
        .await
        .expect("count");
    assert_eq!(archived, 3);
    assert!(first_reply(&app)
        .await
        .starts_with("Hello and welcome to Smile Dental"));
}

#[sqlx::test]
async fn simulation_runs_turns_without_writing_and_checks_its_input(pool: PgPool) {
    let app = spawn_app(pool).await;
    let booking = CUSTOM.replace("id: dental_demo", "id: booking");
    let (status, _) = post(&app, "/api/v1/flows", json!({ "source": booking })).await;
    assert_eq!(status, 201);
    let sim = |key: &str, body: Value| {
        let path = format!("/api/v1/flows/{key}/simulate");
        let app = &app;
        async move { post(app, &path, body).await }
    };
    let count = || async {
        let sql = "SELECT (SELECT count(*) FROM conversations) + (SELECT count(*) FROM messages)";
        let rows: i64 = sqlx::query_scalar(sql)
            .fetch_one(&app.db.system)
            .await
            .expect("count");
        rows
    };
    let before = count().await;
    let (status, out) = sim("booking", json!({ "turns": ["hi", "1", "Ada"] })).await;
    assert_eq!(status, 200, "{out}");
    let turns = out["turns"].as_array().expect("turns");
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[0]["input"], "hi");
    let hello = &turns[0]["replies"][0]["text"];
    assert_eq!(hello, "Custom hello from Smile Dental!");
    assert_eq!(turns[0]["replies"][1]["options"][0]["id"], "name");
    let where_ = (&turns[0]["state"], &turns[0]["status"]);
    assert_eq!(where_, (&json!("menu"), &json!("active")));
    assert_eq!(turns[1]["state"], "ask_name");
    assert_eq!(turns[2]["replies"][0]["text"], "Goodbye Ada");
    assert_eq!(turns[2]["status"], "ended");
    assert_eq!(turns[2]["slots"], json!({"menu": "name", "name": "Ada"}));
    assert_eq!(
        count().await,
        before,
        "simulation writes no conversation or message"
    );

    // Inline source, an explicit version, and the built-in flow when the tenant has none.
    let edited = booking.replace("Custom hello", "Edited hello");
    let (_, out) = sim("booking", json!({ "turns": ["hi"], "source": edited })).await;
    let hello = &out["turns"][0]["replies"][0]["text"];
    assert_eq!(hello, "Edited hello from Smile Dental!");
    let (status, _) = sim("booking", json!({ "turns": ["hi"], "version": 1 })).await;
    assert_eq!(status, 200);
    let (_, out) = sim("dental_demo", json!({ "turns": ["hi", "2"] })).await;
    assert_eq!(out["turns"][1]["state"], "ask_question", "{out}");
    let broken = BROKEN.replace("dental_demo", "booking");
    let (status, err) = sim("booking", json!({ "turns": ["hi"], "source": broken })).await;
    assert_eq!((status, code(&err)), (422, "invalid_flow"));

    let many: Vec<String> = (0..201).map(|i| i.to_string()).collect();
    assert_eq!(sim("booking", json!({ "turns": many })).await.0, 400);
    let long = "x".repeat(4001);
    assert_eq!(sim("booking", json!({ "turns": [long] })).await.0, 400);
    assert_eq!(sim("nothing_here", json!({ "turns": ["hi"] })).await.0, 404);
}

#[sqlx::test]
async fn another_tenant_cannot_see_or_publish_a_flow(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (status, _) = post(&app, "/api/v1/flows", json!({"source": CUSTOM})).await;
    assert_eq!(status, 201);
    let (_, created) = send(
        &app,
        Method::POST,
        "/api/v1/tenants",
        &app.admin_key,
        Some(json!({"slug": "other-co", "name": "Other"})),
    )
    .await;
    let other = created["api_key"].as_str().expect("key").to_owned();
    let (_, list) = send(&app, Method::GET, "/api/v1/flows", &other, None).await;
    assert_eq!(list, json!([]));
    for (method, path) in [
        (Method::GET, "/api/v1/flows/dental_demo/versions"),
        (Method::GET, "/api/v1/flows/dental_demo/versions/1"),
        (Method::POST, "/api/v1/flows/dental_demo/versions/1/publish"),
        (Method::POST, "/api/v1/flows/dental_demo/validate"),
        (Method::DELETE, "/api/v1/flows/dental_demo"),
    ] {
        let (status, _) = send(&app, method, path, &other, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, body) = get(&app, &format!("{V}/versions/1")).await;
    assert_eq!((status, &body["status"]), (200, &json!("draft")));
}

#[test]
fn flow_simulate_prints_each_turn_and_fails_on_an_invalid_flow() {
    let run = |file: &std::path::Path, turns: &[&str]| {
        let mut cmd = crate::cli::switchboard();
        cmd.args(["flow", "simulate"]).arg(file);
        for turn in turns {
            cmd.args(["--turn", turn]);
        }
        cmd.output().expect("run switchboard")
    };
    let demo = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/flows/dental_demo.yaml"
    ));
    let out = run(demo, &["hi", "1", "Ada"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("#1 > hi"), "{stdout}");
    assert!(stdout.contains("1. Book an appointment [book]"), "{stdout}");
    assert!(stdout.contains("state: ask_email (active)"), "{stdout}");
    assert!(stdout.contains(r#""name":"Ada""#), "{stdout}");

    let dir = std::env::temp_dir().join(format!("sb-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, BROKEN).expect("write");
    let out = run(&broken, &["hi"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("states.greet.next"));
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn a_prompt_that_would_fail_for_a_customer_is_refused_at_publish(pool: PgPool) {
    let app = spawn_app(pool).await;
    // "Leave" reaches `done` without a name: the template would fail for that customer.
    let risky = CUSTOM.replace(
        "Goodbye{% if slots.name is defined %} {{ slots.name }}{% endif %}",
        "Goodbye {{ slots.name }}",
    );
    let (status, body) = post(&app, "/api/v1/flows", json!({ "source": risky })).await;
    assert_eq!(status, 201, "{body}");
    let problems = body["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems.iter().any(|p| p["path"] == "states.done.text"
            && p["message"]
                .as_str()
                .unwrap_or("")
                .contains("renders with an error")),
        "{body}"
    );
    let version = body["version"].as_i64().unwrap_or(1);
    let (status, body) = post(&app, &format!("{V}/versions/{version}/publish"), json!({})).await;
    assert_eq!(status, 422, "{body}");
}
