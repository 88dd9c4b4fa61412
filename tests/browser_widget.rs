//! End-to-end test of the embeddable web-chat widget (`static/widget.js`) in headless Chromium.
//!
//! Needs `/usr/bin/chromedriver` and `/usr/bin/chromium` (Debian: `apt-get install -y chromium
//! chromium-driver`); override with `SWITCHBOARD_CHROMEDRIVER` / `SWITCHBOARD_CHROMIUM`.
//! The test fails (never skips) when they are missing.
//!
//! The browser is driven through the W3C WebDriver wire protocol directly (JSON over HTTP with
//! `reqwest`): `fantoccini` built with `default-features = false` has no HTTP connector we could
//! construct without an extra `hyper-util` dev-dependency.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(15);

/// Owns the chromedriver process (and the Chromium profile dir). On drop — also when the test
/// panics — it ends the WebDriver session (which quits Chromium) and kills chromedriver.
struct ChromeDriver {
    child: Child,
    port: u16,
    profile_dir: PathBuf,
    session_id: Option<String>,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        let driver = std::env::var("SWITCHBOARD_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            Path::new(&driver).exists(),
            "chromedriver not found at {driver}: install it with \
             `apt-get install -y chromium chromium-driver` (this test does not skip)"
        );
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
            l.local_addr().unwrap().port()
        };
        let profile_dir = std::env::temp_dir().join(format!(
            "sbw-chromium-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&profile_dir).expect("create chromium profile dir");

        let mut cmd = Command::new(&driver);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {driver}: {e}"));
        let mut guard = ChromeDriver {
            child,
            port,
            profile_dir,
            session_id: None,
        };

        let http = http_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!("chromedriver exited early with {status}");
            }
            let ready = match http.get(format!("{}/status", guard.url())).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .map(|v| v["value"]["ready"].as_bool().unwrap_or(false))
                    .unwrap_or(false),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        guard
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        if let Some(id) = self.session_id.take() {
            // Blocking, best-effort `DELETE /session/{id}` so chromedriver quits Chromium cleanly.
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                let req = format!(
                    "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n",
                    self.port
                );
                if s.write_all(req.as_bytes()).is_ok() {
                    read_http_response(&mut s);
                }
            }
        }
        // Never shell out to `kill -KILL -<pgid>`: procps-ng 4.0.2's kill, run as root, signals
        // every process on the machine for that form. Ending the session quits Chromium; then
        // chromedriver itself is killed directly.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile_dir);
    }
}

/// Reads one HTTP/1.1 response (headers + Content-Length body); chromedriver answers only once
/// the browser has quit. It may keep the connection open, so do not wait for EOF.
fn read_http_response(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// A tiny W3C WebDriver client: just the commands this test needs.
struct Browser {
    http: reqwest::Client,
    session: String, // http://127.0.0.1:PORT/session/ID
}

impl Browser {
    async fn launch(driver: &mut ChromeDriver) -> Browser {
        let chromium =
            std::env::var("SWITCHBOARD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).exists(),
            "chromium not found at {chromium}: install it with \
             `apt-get install -y chromium chromium-driver` (this test does not skip)"
        );
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", driver.profile_dir.display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let http = http_client();
        let resp: Value = http
            .post(format!("{}/session", driver.url()))
            .json(&caps)
            .send()
            .await
            .expect("POST /session")
            .json()
            .await
            .expect("session response json");
        let id = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("could not start a Chromium session: {resp}"))
            .to_string();
        driver.session_id = Some(id.clone());
        Browser {
            http,
            session: format!("{}/session/{id}", driver.url()),
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value, String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .map_err(|e| format!("{method} {path}: bad json: {e}"))?;
        if !status.is_success() {
            let (err, msg) = (&v["value"]["error"], &v["value"]["message"]);
            return Err(format!("{method} {path}: {status}: {err}: {msg}"));
        }
        Ok(v["value"].clone())
    }

    async fn goto(&self, url: &str) -> Result<(), String> {
        self.cmd(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await
            .map(drop)
    }

    async fn refresh(&self) -> Result<(), String> {
        self.cmd(reqwest::Method::POST, "/refresh", json!({}))
            .await
            .map(drop)
    }

    async fn find_all(&self, css: &str) -> Result<Vec<String>, String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits (up to [`WAIT`]) for an element matching `css` to exist.
    async fn wait_for(&self, css: &str) -> Result<String, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.find_all(css).await?.into_iter().next() {
                return Ok(e);
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for `{css}`"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, el: &str) -> Result<(), String> {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            json!({}),
        )
        .await
        .map(drop)
    }

    async fn type_into(&self, el: &str, text: &str) -> Result<(), String> {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            json!({ "text": text }),
        )
        .await
        .map(drop)
    }

    async fn text(&self, el: &str) -> Result<String, String> {
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{el}/text"),
                Value::Null,
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    async fn exec(&self, script: &str) -> Result<Value, String> {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    async fn screenshot(&self, path: &Path) -> Result<(), String> {
        use base64::Engine as _;
        let v = self
            .cmd(reqwest::Method::GET, "/screenshot", Value::Null)
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot base64: {e}"))?;
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, png).map_err(|e| format!("write {}: {e}", path.display()))
    }

    async fn console_log(&self) -> String {
        match self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                json!({ "type": "browser" }),
            )
            .await
        {
            Ok(Value::Array(entries)) => entries
                .iter()
                .map(|e| format!("  [{}] {}", e["level"], e["message"]))
                .collect::<Vec<_>>()
                .join("\n"),
            Ok(other) => other.to_string(),
            Err(e) => format!("(no browser log: {e})"),
        }
    }

    /// The rendered message list as the visitor sees it.
    async fn messages(&self) -> Result<Vec<Msg>, String> {
        let v = self
            .exec(
                "return Array.from(document.querySelectorAll('#sbw-messages .sbw-msg')).map(function (e) {\
                   var t = e.querySelector('.sbw-text');\
                   return { out: e.classList.contains('sbw-out'), inb: e.classList.contains('sbw-in'),\
                            pending: e.classList.contains('sbw-pending'), seq: e.getAttribute('data-seq'),\
                            text: t ? t.textContent : null };\
                 });",
            )
            .await?;
        Ok(v.as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| Msg {
                outbound: m["out"].as_bool().unwrap_or(false),
                inbound: m["inb"].as_bool().unwrap_or(false),
                pending: m["pending"].as_bool().unwrap_or(false),
                seq: m["seq"].as_str().and_then(|s| s.parse().ok()),
                text: m["text"].as_str().unwrap_or_default().to_string(),
            })
            .collect())
    }

    /// Polls the message list until `pred` holds (up to [`WAIT`]).
    async fn wait_messages(
        &self,
        what: &str,
        pred: impl Fn(&[Msg]) -> bool,
    ) -> Result<Vec<Msg>, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let msgs = self.messages().await?;
            if pred(&msgs) {
                return Ok(msgs);
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}; messages: {msgs:#?}"));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Waits until every message is confirmed (has a seq, nothing pending) and the list has not
    /// changed for a second, so that late bot messages do not race the assertions.
    async fn wait_settled(&self) -> Result<Vec<Msg>, String> {
        let deadline = Instant::now() + WAIT;
        let mut last: Option<(Vec<Msg>, Instant)> = None;
        loop {
            let msgs = self.messages().await?;
            let confirmed = msgs.iter().all(|m| !m.pending && m.seq.is_some());
            match &last {
                Some((prev, since)) if confirmed && *prev == msgs => {
                    if since.elapsed() >= Duration::from_secs(1) {
                        return Ok(msgs);
                    }
                }
                _ => last = Some((msgs.clone(), Instant::now())),
            }
            if Instant::now() > deadline {
                return Err(format!("message list never settled: {msgs:#?}"));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Msg {
    outbound: bool,
    inbound: bool,
    pending: bool,
    seq: Option<i64>,
    text: String,
}

fn is_greeting(text: &str) -> bool {
    let t = text.to_lowercase();
    t.contains("welcome") || t.contains("hello") || t.contains("hi")
}

fn assert_unique_sorted(msgs: &[Msg]) -> Result<(), String> {
    let seqs: Vec<i64> = msgs.iter().filter_map(|m| m.seq).collect();
    if seqs.len() != msgs.len() {
        return Err(format!("some messages have no data-seq: {msgs:#?}"));
    }
    if seqs.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!(
            "messages duplicated or out of order (seqs {seqs:?}): {msgs:#?}"
        ));
    }
    Ok(())
}

async fn scenario(browser: &Browser, demo_url: &str) -> Result<(), String> {
    browser.goto(demo_url).await?;
    let title = browser.exec("return document.title;").await?;
    if !title.as_str().unwrap_or_default().contains("Smile Dental") {
        return Err(format!(
            "demo page not served at {demo_url} (title {title})"
        ));
    }

    // Open the widget and say hello.
    let launcher = browser.wait_for("#sbw-launcher").await?;
    browser.click(&launcher).await?;
    browser.wait_for("#sbw-panel:not([hidden])").await?;
    let input = browser.wait_for("#sbw-input").await?;
    browser.type_into(&input, "hello").await?;
    let send = browser.wait_for("#sbw-send").await?;
    browser.click(&send).await?;

    // The bot greets and offers choices.
    browser
        .wait_messages("the visitor's own message", |m| {
            m.iter().any(|m| m.inbound && m.text == "hello")
        })
        .await?;
    browser
        .wait_messages("a greeting from the bot", |m| {
            m.iter().any(|m| m.outbound && is_greeting(&m.text))
        })
        .await?;

    // Pick "Book an appointment" (retry: the option row may be re-rendered while we look at it).
    let deadline = Instant::now() + WAIT;
    loop {
        let mut clicked = false;
        for opt in browser.find_all(".sbw-option").await? {
            match browser.text(&opt).await {
                Ok(label) if label.contains("Book") => {
                    clicked = browser.click(&opt).await.is_ok();
                    break;
                }
                _ => {}
            }
        }
        if clicked {
            break;
        }
        if Instant::now() > deadline {
            let opts = browser
                .exec("return Array.from(document.querySelectorAll('.sbw-option')).map(function (b) { return b.textContent; });")
                .await?;
            return Err(format!(
                "no clickable `.sbw-option` containing \"Book\" (options: {opts}); messages: {:#?}",
                browser.messages().await?
            ));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // The bot asks for the visitor's name.
    browser
        .wait_messages("the visitor's choice to be echoed", |m| {
            m.iter().any(|m| m.inbound && m.text.contains("Book"))
        })
        .await?;
    browser
        .wait_messages("the bot to ask for the name", |m| {
            let choice = m.iter().position(|m| m.inbound && m.text.contains("Book"));
            choice.is_some_and(|i| {
                m[i + 1..]
                    .iter()
                    .any(|m| m.outbound && m.text.to_lowercase().contains("name"))
            })
        })
        .await?;
    let left = browser.find_all(".sbw-option").await?;
    if !left.is_empty() {
        return Err(format!(
            "{} option buttons still shown after answering",
            left.len()
        ));
    }
    let before = browser.wait_settled().await?;
    assert_unique_sorted(&before)?;

    // Reload: the visitor token survives in localStorage and the whole history is replayed.
    browser.refresh().await?;
    let launcher = browser.wait_for("#sbw-launcher").await?;
    browser.click(&launcher).await?;
    browser.wait_for("#sbw-panel:not([hidden])").await?;
    browser
        .wait_messages("the history to be replayed after reload", |m| {
            m.len() >= before.len()
        })
        .await?;
    let after = browser.wait_settled().await?;
    assert_unique_sorted(&after)?;
    let strip = |m: &[Msg]| -> Vec<(bool, Option<i64>, String)> {
        m.iter()
            .map(|m| (m.inbound, m.seq, m.text.clone()))
            .collect()
    };
    if strip(&after) != strip(&before) {
        return Err(format!(
            "history after reload differs.\nbefore: {before:#?}\nafter: {after:#?}"
        ));
    }
    let status = browser
        .exec("return document.getElementById('sbw-status').textContent;")
        .await?;
    if status.as_str() != Some("online") {
        return Err(format!("status line says {status}, expected \"online\""));
    }
    Ok(())
}

#[sqlx::test]
async fn visitor_chats_with_the_bot_in_a_real_browser(pool: sqlx::PgPool) {
    let app = common::spawn_app(pool).await;
    let mut driver = ChromeDriver::start().await;
    let browser = Browser::launch(&mut driver).await;

    let demo_url = format!("{}/demo/{}", app.base_url, app.webchat_key);
    let outcome = scenario(&browser, &demo_url).await;

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/widget-screenshot.png");
    match browser.screenshot(&shot).await {
        Ok(()) => eprintln!("widget screenshot saved to {}", shot.display()),
        Err(e) => eprintln!("could not save screenshot: {e}"),
    }
    if let Err(e) = outcome {
        let status = browser
            .exec("var s = document.getElementById('sbw-status'); return s && s.textContent;")
            .await;
        panic!(
            "web-chat widget scenario failed: {e}\nwidget status line: {status:?}\n\
             browser console:\n{}",
            browser.console_log().await
        );
    }
    drop(browser);
    drop(driver); // ends the session and kills chromedriver
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
    exits: {done: bye}
    fallback: away
  bye: {kind: end, text: "Goodbye."}
  away: {kind: end, text: "Sorry, the assistant is away."}
"#;

const STREAMED: &str =
    "We have openings on Tuesday and Thursday mornings, and on Friday after three.";

/// Publishes `source` as the tenant's flow.
async fn publish(app: &common::TestApp, source: &str) {
    let created = app
        .post("/api/v1/flows", &app.api_key, &json!({ "source": source }))
        .await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let path = "/api/v1/flows/dental_demo/versions/1/publish";
    let published = app.post_empty(path, &app.api_key).await;
    assert_eq!(published.status(), 200);
}

/// The visitor sees the LLM's reply grow in a draft bubble, which the stored message replaces.
async fn streaming_scenario(browser: &Browser, demo_url: &str) -> Result<(), String> {
    browser.goto(demo_url).await?;
    let launcher = browser.wait_for("#sbw-launcher").await?;
    browser.click(&launcher).await?;
    let input = browser.wait_for("#sbw-input").await?;
    let send = browser.wait_for("#sbw-send").await?;
    browser.type_into(&input, "hello").await?;
    browser.click(&send).await?;
    browser
        .wait_messages("the greeting", |m| {
            m.iter()
                .any(|m| m.outbound && m.text == "Hi! How can I help?")
        })
        .await?;
    browser.type_into(&input, "when are you free?").await?;
    browser.click(&send).await?;

    let mut drafts: Vec<String> = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = browser
            .exec(
                "var d = document.querySelector('#sbw-messages .sbw-draft .sbw-text');\
                 return d ? d.textContent : null;",
            )
            .await?;
        if let Some(text) = seen.as_str() {
            if drafts.last().map(String::as_str) != Some(text) {
                drafts.push(text.to_string());
            }
        }
        let msgs = browser.messages().await?;
        if msgs
            .iter()
            .any(|m| m.outbound && m.seq.is_some() && m.text == STREAMED)
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the streamed reply never arrived; drafts {drafts:?}, messages {msgs:#?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let partial = drafts
        .iter()
        .filter(|t| !t.is_empty() && STREAMED.starts_with(t.as_str()) && t.len() < STREAMED.len())
        .count();
    if partial < 2 {
        return Err(format!(
            "the reply was not seen being written: drafts {drafts:?}"
        ));
    }
    let settled = browser.wait_settled().await?;
    let left = browser.find_all(".sbw-draft").await?;
    if !left.is_empty() {
        return Err("the draft stayed after its message arrived".into());
    }
    let copies = settled.iter().filter(|m| m.text == STREAMED).count();
    if copies != 1 {
        return Err(format!("the reply is shown {copies} times: {settled:#?}"));
    }
    assert_unique_sorted(&settled)
}

#[sqlx::test]
async fn an_llm_reply_is_seen_being_written(pool: sqlx::PgPool) {
    let fake = common::fake_openai::FakeOpenAi::start().await;
    fake.set_chunk_delay(Duration::from_millis(120));
    fake.push(common::fake_openai::Reply::text(STREAMED));
    let base_url = fake.base_url.clone();
    let app = common::spawn_app_with(pool, move |s| {
        s.llm.base_url = base_url;
        s.llm.model = "fake-model".into();
        s.llm.max_retries = 0;
        s.llm.timeout_ms = 5000;
    })
    .await;
    publish(&app, ASSISTANT).await;
    let mut driver = ChromeDriver::start().await;
    let browser = Browser::launch(&mut driver).await;
    let demo_url = format!("{}/demo/{}", app.base_url, app.webchat_key);
    if let Err(e) = streaming_scenario(&browser, &demo_url).await {
        panic!(
            "streaming scenario failed: {e}\nbrowser console:\n{}",
            browser.console_log().await
        );
    }
    drop(browser);
    drop(driver);
}
