//! Test harness: start the real server on port 0 against the fresh database `#[sqlx::test]`
//! created, seeded with the demo business, plus a real WebSocket client for the widget protocol.
#![allow(dead_code)]

pub mod fake_openai;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sqlx::PgPool;
use switchboard::app::{App, AppState};
use switchboard::config::Settings;
use switchboard::db::{pools_from_options, Db};
use switchboard::demo::DemoSeed;
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// A running server.
pub struct TestApp {
    pub base_url: String,
    pub ws_url: String,
    pub port: u16,
    pub db: Db,
    pub seed: DemoSeed,
    pub webchat_key: String,
    pub api_key: String,
    pub admin_key: String,
    pub state: AppState,
    pub stop: CancellationToken,
    pub handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub http: reqwest::Client,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Settings for tests: port 0, files from the repository, fast polling, no Redis.
pub fn test_settings() -> Settings {
    let mut s = Settings::defaults().expect("default settings");
    let root = env!("CARGO_MANIFEST_DIR");
    s.server.port = 0;
    s.agent.flows_dir = format!("{root}/flows").into();
    s.agent.prompts_dir = format!("{root}/prompts").into();
    s.agent.http_allow_private = true;
    s.jobs.poll_interval_ms = 50;
    s.jobs.lease_secs = 5;
    s.jobs.backoff_base_ms = 20;
    s.jobs.backoff_max_ms = 200;
    s.server.shutdown_grace_secs = 5;
    s
}

pub async fn db_for(pool: &PgPool) -> Db {
    let options = pool.connect_options().as_ref().clone();
    pools_from_options(options, 8, "switchboard_app")
        .await
        .expect("pools")
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |_| {}).await
}

pub async fn spawn_app_with(pool: PgPool, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    init_tracing();
    let mut settings = test_settings();
    tweak(&mut settings);
    let db = db_for(&pool).await;
    let seed = switchboard::demo::seed(&db).await.expect("seed demo");
    let app = App::build_with_db(settings, db.clone())
        .await
        .expect("build app");
    let port = app.port();
    let state = app.state().clone();
    let stop = state.stop.clone();
    let handle = tokio::spawn(app.run_until_stopped(false));
    TestApp {
        base_url: format!("http://127.0.0.1:{port}"),
        ws_url: format!("ws://127.0.0.1:{port}/webchat/v1/ws"),
        port,
        db,
        webchat_key: seed.webchat_key.clone(),
        api_key: seed.api_key.clone(),
        admin_key: seed.admin_key.clone(),
        seed,
        state,
        stop,
        handle: Some(handle),
        http: reqwest::Client::new(),
    }
}

fn init_tracing() {
    if std::env::var("RUST_LOG").is_ok() {
        let mut log = Settings::defaults().expect("defaults").log;
        log.filter = std::env::var("RUST_LOG").unwrap_or_default();
        switchboard::telemetry::init_tracing(&log);
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path, key, None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path, key, Some(body))
            .await
    }

    pub async fn post_empty(&self, path: &str, key: &str) -> reqwest::Response {
        self.request(reqwest::Method::POST, path, key, None).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::PATCH, path, key, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, key: &str) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path, key, None).await
    }

    /// Any request with an API key and an optional JSON body.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    /// Stop the server and wait for it to drain.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
        }
    }

    /// Wait until no agent_turn job is pending.
    pub async fn settle(&self) {
        for _ in 0..400 {
            let pending: i64 =
                sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status <> 'dead'")
                    .fetch_one(&self.db.system)
                    .await
                    .expect("count jobs");
            if pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("jobs did not settle");
    }
}

/// A widget-protocol client over a real WebSocket.
pub struct Visitor {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub token: String,
    pub conversation_id: Option<String>,
    /// Frames read while looking for another kind, kept for later calls.
    pub pending: std::collections::VecDeque<Value>,
}

impl Visitor {
    pub async fn connect(
        ws_url: &str,
        channel_key: &str,
        token: Option<&str>,
        after_seq: Option<i64>,
    ) -> Self {
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(ws_url, None, true)
            .await
            .expect("ws connect");
        let hello = json!({"type": "hello", "channel_key": channel_key, "visitor_token": token, "after_seq": after_seq});
        ws.send(Message::Text(hello.to_string()))
            .await
            .expect("send hello");
        let mut visitor = Self {
            ws,
            token: String::new(),
            conversation_id: None,
            pending: Default::default(),
        };
        let ready = visitor.next_of("ready").await;
        visitor.token = ready["visitor_token"].as_str().expect("token").to_owned();
        visitor.conversation_id = ready["conversation_id"].as_str().map(str::to_owned);
        visitor
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_owned()))
            .await
            .expect("send");
    }

    pub async fn say(&mut self, client_id: &str, text: &str) {
        let frame = json!({"type": "send", "client_id": client_id, "text": text});
        self.send_raw(&frame.to_string()).await;
    }

    /// The next JSON frame (panics after 10 s).
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("frame within 10s")
                .expect("socket open")
                .expect("frame ok");
            if let Message::Text(text) = msg {
                return serde_json::from_str(&text).expect("json frame");
            }
        }
    }

    /// The next frame of `kind`; frames of other kinds are kept for later calls.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|f| f["type"] == kind) {
            if let Some(frame) = self.pending.remove(i) {
                return frame;
            }
        }
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// Collect message frames until `count` outbound messages arrived.
    pub async fn outbound(&mut self, count: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < count {
            let frame = self.next_of("message").await;
            if frame["message"]["direction"] == "outbound" {
                out.push(frame["message"].clone());
            }
        }
        out
    }
}
