//! A scripted fake of an OpenAI-compatible `POST /v1/chat/completions` for tests.
//!
//! It speaks the real wire format: non-streaming JSON, and with `"stream": true` server-sent
//! events (`data: {chunk}` lines, tool-call fragments, an optional usage chunk when
//! `stream_options.include_usage` is set, then `data: [DONE]`). Replies come from a FIFO queue
//! ([`FakeOpenAi::push`]); when it is empty, from the default responder if one is set, else a
//! 500 saying the script ran out. Every request body is recorded with its arrival time and its
//! `Authorization` header.
//!
//! Invariants: depends only on axum, tokio, serde_json and futures; binds 127.0.0.1:0 only;
//! the server task is aborted when the [`FakeOpenAi`] is dropped.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use serde_json::{json, Value};

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Assistant text.
    Text(String),
    /// Tool calls `(name, arguments)`; arguments are JSON-encoded onto the wire as the spec says.
    ToolCalls(Vec<(String, Value)>),
    /// Tool calls whose argument text is sent verbatim (for malformed-JSON tests).
    RawToolCalls(Vec<(String, String)>),
    /// Assistant text followed by tool calls in the same reply.
    TextAndTools(String, Vec<(String, Value)>),
    /// An HTTP error status with an OpenAI-style error body and optional Retry-After
    /// (sent as both `retry-after-ms` and whole-second `retry-after`).
    Status(u16, Option<Duration>),
    /// Wait, then answer with the inner reply.
    Delay(Duration, Box<Reply>),
    /// Any status and body, sent as `application/json` (for malformed-response tests).
    Raw(u16, String),
}

impl Reply {
    /// `Reply::Text` from anything string-like.
    pub fn text(s: impl Into<String>) -> Self {
        Reply::Text(s.into())
    }

    /// A single tool call.
    pub fn tool(name: impl Into<String>, arguments: Value) -> Self {
        Reply::ToolCalls(vec![(name.into(), arguments)])
    }

    /// `inner` after `delay`.
    pub fn delayed(delay: Duration, inner: Reply) -> Self {
        Reply::Delay(delay, Box::new(inner))
    }
}

type Responder = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<(Instant, Value)>>,
    authorizations: Mutex<Vec<Option<String>>>,
    default: Mutex<Option<Responder>>,
    chunk_delay: Mutex<Duration>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running fake server.
pub struct FakeOpenAi {
    /// Base URL to configure a client with, e.g. `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOpenAi {
    /// Start on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake OpenAI server");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            inner,
            task,
        }
    }

    /// Queue a reply.
    pub fn push(&self, reply: Reply) {
        lock(&self.inner.queue).push_back(reply);
    }

    /// Queue several replies in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.inner.queue).extend(replies);
    }

    /// Answer with `f(request_body)` whenever the queue is empty.
    pub fn set_default(&self, f: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
        *lock(&self.inner.default) = Some(Arc::new(f));
    }

    /// Pause between SSE chunks (default 0).
    pub fn set_chunk_delay(&self, delay: Duration) {
        *lock(&self.inner.chunk_delay) = delay;
    }

    /// Every request body received, in order.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.inner.requests)
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Arrival time of every request, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        lock(&self.inner.requests).iter().map(|(t, _)| *t).collect()
    }

    /// The `Authorization` header of every request, in order (None when absent).
    pub fn authorizations(&self) -> Vec<Option<String>> {
        lock(&self.inner.authorizations).clone()
    }

    /// Number of requests received.
    pub fn request_count(&self) -> usize {
        lock(&self.inner.requests).len()
    }

    /// Replies still queued.
    pub fn pending(&self) -> usize {
        lock(&self.inner.queue).len()
    }
}

async fn completions(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error_response(400, &format!("invalid JSON body: {e}"), None),
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    lock(&inner.authorizations).push(authorization);
    lock(&inner.requests).push((Instant::now(), request.clone()));
    let scripted = lock(&inner.queue).pop_front();
    let reply = match scripted {
        Some(reply) => reply,
        None => match lock(&inner.default).clone() {
            Some(responder) => responder(&request),
            None => Reply::Raw(
                500,
                r#"{"error":{"message":"fake_openai: no scripted reply"}}"#.into(),
            ),
        },
    };
    let chunk_delay = *lock(&inner.chunk_delay);
    render(reply, &request, chunk_delay).await
}

async fn render(mut reply: Reply, request: &Value, chunk_delay: Duration) -> Response {
    while let Reply::Delay(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    let (text, calls) = match reply {
        Reply::Status(status, retry_after) => {
            return error_response(status, &format!("fake status {status}"), retry_after)
        }
        Reply::Raw(status, body) => return json_response(status, body),
        Reply::Text(text) => (Some(text), Vec::new()),
        Reply::ToolCalls(calls) => (
            None,
            calls.into_iter().map(|(n, a)| (n, a.to_string())).collect(),
        ),
        Reply::RawToolCalls(calls) => (None, calls),
        Reply::TextAndTools(text, calls) => (
            Some(text),
            calls.into_iter().map(|(n, a)| (n, a.to_string())).collect(),
        ),
        Reply::Delay(..) => (None, Vec::new()),
    };
    let model = request["model"].as_str().unwrap_or("fake-model").to_owned();
    let usage = usage(request, text.as_deref(), &calls);
    if request["stream"] == json!(true) {
        let include_usage = request["stream_options"]["include_usage"] == json!(true);
        let chunks = stream_chunks(
            &model,
            text.as_deref(),
            &calls,
            include_usage.then_some(usage),
        );
        return sse_response(chunks, chunk_delay);
    }
    json_response(200, completion(&model, text, &calls, usage).to_string())
}

fn usage(request: &Value, text: Option<&str>, calls: &[(String, String)]) -> Value {
    let prompt_chars: usize = request["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["content"].as_str())
                .map(str::len)
                .sum()
        })
        .unwrap_or(0);
    let completion_chars =
        text.map_or(0, str::len) + calls.iter().map(|(n, a)| n.len() + a.len()).sum::<usize>();
    let prompt = prompt_chars / 4 + 1;
    let completion = completion_chars / 4 + 1;
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn tool_calls_json(calls: &[(String, String)]) -> Value {
    calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"id": format!("call_{i}"), "type": "function", "function": {"name": name, "arguments": args}})
        })
        .collect()
}

fn completion(
    model: &str,
    text: Option<String>,
    calls: &[(String, String)],
    usage: Value,
) -> Value {
    let mut message = json!({"role": "assistant", "content": text, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = tool_calls_json(calls);
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage
    })
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    })
}

/// Split `s` into up to `parts` pieces on character boundaries.
fn split_chars(s: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let size = chars.len().div_ceil(parts.max(1)).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn stream_chunks(
    model: &str,
    text: Option<&str>,
    calls: &[(String, String)],
    usage: Option<Value>,
) -> Vec<String> {
    let mut out = vec![chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    for piece in text.unwrap_or("").split_inclusive(' ') {
        out.push(chunk(model, json!({"content": piece}), None));
    }
    for (i, (name, args)) in calls.iter().enumerate() {
        let head = json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
            "function": {"name": name, "arguments": ""}}]});
        out.push(chunk(model, head, None));
        for piece in split_chars(args, 3) {
            let frag = json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]});
            out.push(chunk(model, frag, None));
        }
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    out.push(chunk(model, json!({}), Some(finish)));
    if let Some(usage) = usage {
        out.push(json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "choices": [], "usage": usage}));
    }
    let mut lines: Vec<String> = out.iter().map(|c| format!("data: {c}\n\n")).collect();
    lines.push("data: [DONE]\n\n".into());
    lines
}

fn sse_response(lines: Vec<String>, delay: Duration) -> Response {
    let stream = futures::stream::iter(lines).then(move |line| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, Infallible>(Bytes::from(line))
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (StatusCode::OK, headers, Body::from_stream(stream)).into_response()
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(status: u16, message: &str, retry_after: Option<Duration>) -> Response {
    let kind = match status {
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    let mut response = json_response(status, body.to_string());
    if let Some(after) = retry_after {
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&after.as_millis().to_string()) {
            headers.insert("retry-after-ms", v);
        }
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            headers.insert(header::RETRY_AFTER, v);
        }
    }
    response
}
