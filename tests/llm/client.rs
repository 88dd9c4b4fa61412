//! Integration tests of the LLM client against the fake OpenAI server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fake_openai::{FakeOpenAi, Reply};
use futures::StreamExt;
use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::llm::*;

fn settings(base_url: &str) -> LlmSettings {
    let mut s = LlmSettings::new(
        base_url,
        SecretString::from("sk-test".to_owned()),
        "gpt-4o-mini",
    );
    s.timeout = Duration::from_secs(2);
    s.max_retries = 2;
    s.breaker = BreakerSettings {
        failure_threshold: 3,
        cool_down: Duration::from_millis(300),
    };
    s.backoff = BackoffSettings {
        base: Duration::from_millis(20),
        max: Duration::from_millis(200),
        retry_after_cap: Duration::from_secs(1),
        budget: Duration::from_secs(10),
    };
    s
}

fn slot_tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "set_slot".into(),
        description: "Store an answer".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": ["name", "email", "date"]},
                "value": {"type": "string", "maxLength": 200}
            },
            "required": ["name", "value"],
            "additionalProperties": false
        }),
    }]
}

fn request(user: &str) -> ChatRequest {
    ChatRequest {
        system: "You are the booking assistant.".into(),
        context: vec!["Open 9-17".into()],
        history: vec![
            ChatTurn::user("hello"),
            ChatTurn::assistant("Hi! Your name?"),
        ],
        user: user.into(),
        tools: slot_tools(),
        ..ChatRequest::default()
    }
}

fn roles(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn plain_text_round_trip() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::text("Hello there, how can I help?"));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let r = client
        .chat(&request("I need an appointment"))
        .await
        .unwrap();
    assert_eq!(r.text.as_deref(), Some("Hello there, how can I help?"));
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.attempts, 1);
    assert_eq!(r.model, "gpt-4o-mini");
    assert!(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);

    let body = &fake.requests()[0];
    assert_eq!(
        roles(body),
        ["system", "system", "user", "assistant", "user"]
    );
    assert_eq!(
        body["messages"][0]["content"],
        "You are the booking assistant."
    );
    assert_eq!(body["messages"][4]["content"], "I need an appointment");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["tools"][0]["function"]["name"], "set_slot");
}

#[tokio::test]
async fn tool_calls_are_parsed_and_pass_the_guard() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::ToolCalls(vec![
        (
            "set_slot".into(),
            json!({"name": "email", "value": "ann@example.test"}),
        ),
        (
            "set_slot".into(),
            json!({"name": "date", "value": "next monday"}),
        ),
    ]));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let mut req = request("ann@example.test, next monday");
    req.require_tool = true;
    let r = client.chat(&req).await.unwrap();
    assert_eq!(fake.requests()[0]["tool_choice"], "required");
    assert_eq!(r.text, None);
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(r.tool_calls[0].id, "call_0");
    let guard = ToolGuard::new(&req.tools).unwrap();
    let report = guard.check_all(&r.tool_calls);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.accepted[0].arguments["value"], "ann@example.test");
    assert_eq!(report.accepted[1].arguments["name"], "date");
}

#[tokio::test]
async fn streaming_yields_deltas_as_they_arrive() {
    let fake = FakeOpenAi::start().await;
    fake.set_chunk_delay(Duration::from_millis(30));
    fake.push(Reply::text("one two three"));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let started = Instant::now();
    let mut stream = Box::pin(client.chat_stream(&request("hi")).await.unwrap());
    let mut deltas = Vec::new();
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::Delta(d) => deltas.push((d, started.elapsed())),
            StreamEvent::Done(r) => done = Some(r),
        }
    }
    let texts: Vec<&str> = deltas.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(texts, ["one ", "two ", "three"]);
    // Each delta arrived on its own, roughly one chunk delay after the previous one.
    let gaps: Vec<Duration> = deltas.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(20)),
        "{gaps:?}"
    );
    let done = done.expect("Done event");
    assert_eq!(done.text.as_deref(), Some("one two three"));
    assert!(done.usage.completion_tokens > 0, "usage chunk read");
    assert_eq!(done.attempts, 1);
    let body = &fake.requests()[0];
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    eprintln!(
        "streaming delta arrival times: {:?}",
        deltas.iter().map(|d| d.1).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn streaming_assembles_tool_calls_from_fragments() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::ToolCalls(vec![
        (
            "set_slot".into(),
            json!({"name": "name", "value": "Zoë Müller-Lüdenscheidt"}),
        ),
        (
            "set_slot".into(),
            json!({"name": "email", "value": "zoe@example.test"}),
        ),
    ]));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let events: Vec<_> = client
        .chat_stream(&request("x"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(events.len(), 1, "no text deltas, one Done");
    let Ok(StreamEvent::Done(r)) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(
        r.tool_calls[0].arguments,
        json!({"name": "name", "value": "Zoë Müller-Lüdenscheidt"})
    );
    assert_eq!(r.tool_calls[1].id, "call_1");
    assert_eq!(r.tool_calls[1].arguments["value"], "zoe@example.test");
}

#[tokio::test]
async fn rate_limit_then_success_is_retried_honouring_retry_after() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Status(429, Some(Duration::from_millis(150))));
    fake.push(Reply::text("ok"));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let started = Instant::now();
    let r = client.chat(&request("hi")).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(r.text.as_deref(), Some("ok"));
    assert_eq!(r.attempts, 2);
    let arrivals = fake.arrivals();
    let gap = arrivals[1] - arrivals[0];
    assert!(gap >= Duration::from_millis(150), "retry waited {gap:?}");
    assert!(gap < Duration::from_millis(400), "retry waited {gap:?}");
    eprintln!("429(retry-after 150ms) then 200: total {elapsed:?}, gap between attempts {gap:?}");
}

#[tokio::test]
async fn rate_limit_without_retry_after_uses_jittered_backoff() {
    let fake = FakeOpenAi::start().await;
    fake.push_all([
        Reply::Status(429, None),
        Reply::Status(429, None),
        Reply::text("ok"),
    ]);
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let started = Instant::now();
    let r = client.chat(&request("hi")).await.unwrap();
    assert_eq!(r.attempts, 3);
    // Ceilings 20 ms then 40 ms: the two waits together stay below 60 ms plus request time.
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    eprintln!(
        "429, 429, 200 with full jitter: total {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn rate_limit_exhausted_reports_retry_after() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(|_| Reply::Status(429, Some(Duration::from_millis(10))));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let err = client.chat(&request("hi")).await.unwrap_err();
    assert_eq!(
        err,
        LlmError::RateLimited {
            retry_after: Some(Duration::from_millis(10))
        }
    );
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let fake = FakeOpenAi::start().await;
    fake.push_all([
        Reply::Status(500, None),
        Reply::Status(502, None),
        Reply::Status(503, None),
    ]);
    let mut s = settings(&fake.base_url);
    s.breaker.failure_threshold = 10;
    let client = LlmClient::new(s).unwrap();
    let started = Instant::now();
    let err = client.chat(&request("hi")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, LlmError::Provider { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(fake.request_count(), 3, "1 attempt + max_retries 2");
    assert_eq!(fake.pending(), 0);
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    eprintln!("500 x3 (max_retries 2, base 20ms): error after {elapsed:?}");
}

#[tokio::test]
async fn client_errors_are_not_retried_and_do_not_trip_the_breaker() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(|_| Reply::Status(400, None));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    for _ in 0..5 {
        let err = client.chat(&request("hi")).await.unwrap_err();
        assert!(
            matches!(err, LlmError::Provider { status: 400, ref message } if message == "fake status 400"),
            "{err:?}"
        );
    }
    assert_eq!(fake.request_count(), 5);
    assert_eq!(client.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn slow_response_times_out() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::delayed(Duration::from_secs(3), Reply::text("late")));
    let mut s = settings(&fake.base_url);
    s.timeout = Duration::from_millis(200);
    s.max_retries = 0;
    let client = LlmClient::new(s).unwrap();
    let started = Instant::now();
    let err = client.chat(&request("hi")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err, LlmError::Timeout);
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(400),
        "{elapsed:?}"
    );
    eprintln!("timeout 200ms: Timeout after {elapsed:?}");
}

#[tokio::test]
async fn timeout_then_success_is_retried() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::delayed(Duration::from_secs(3), Reply::text("late")));
    fake.push(Reply::text("fast"));
    let mut s = settings(&fake.base_url);
    s.timeout = Duration::from_millis(200);
    let client = LlmClient::new(s).unwrap();
    let r = client.chat(&request("hi")).await.unwrap();
    assert_eq!(r.text.as_deref(), Some("fast"));
    assert_eq!(r.attempts, 2);
}

#[tokio::test]
async fn overall_budget_bounds_the_wait_on_a_hanging_provider() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(|_| Reply::delayed(Duration::from_secs(10), Reply::text("never")));
    let mut s = settings(&fake.base_url);
    s.timeout = Duration::from_millis(300);
    s.max_retries = 5;
    s.backoff.budget = Duration::from_millis(700);
    let client = LlmClient::new(s).unwrap();
    let started = Instant::now();
    let err = client.chat(&request("hi")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err, LlmError::Timeout);
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
    eprintln!("hanging provider, budget 700ms, timeout 300ms, 5 retries allowed: gave up after {elapsed:?} and {} attempts", fake.request_count());
}

#[tokio::test]
async fn malformed_responses_are_errors() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Raw(200, "this is not json".into()));
    fake.push(Reply::Raw(200, r#"{"choices": []}"#.into()));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    assert!(matches!(
        client.chat(&request("a")).await,
        Err(LlmError::Malformed(_))
    ));
    assert!(matches!(
        client.chat(&request("b")).await,
        Err(LlmError::Malformed(_))
    ));
    assert_eq!(fake.request_count(), 2, "malformed answers are not retried");
}

#[tokio::test]
async fn breaker_opens_fails_fast_and_recovers_via_half_open() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(|_| Reply::Status(500, None));
    let mut s = settings(&fake.base_url);
    s.max_retries = 0;
    let client = LlmClient::new(s).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            client.chat(&request("x")).await,
            Err(LlmError::Provider { status: 500, .. })
        ));
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    assert_eq!(fake.request_count(), 3);

    // Fail fast: no I/O, well under a millisecond per call. The machine is shared, so the
    // assertion is on the 99th percentile; the maximum is reported.
    let req = request("x");
    let n = 2000;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let err = client.chat(&req).await.unwrap_err();
        times.push(t.elapsed());
        assert_eq!(err, LlmError::CircuitOpen);
    }
    times.sort_unstable();
    let (p50, p99, max) = (times[n / 2], times[n * 99 / 100], times[n - 1]);
    assert!(p99 < Duration::from_millis(1), "p99 fail-fast {p99:?}");
    assert_eq!(fake.request_count(), 3, "no request reached the provider");
    let t = Instant::now();
    let stream_err = client.chat_stream(&req).await.err();
    let stream_elapsed = t.elapsed();
    assert_eq!(stream_err, Some(LlmError::CircuitOpen));
    eprintln!("breaker open: chat fail-fast p50 {p50:?}, p99 {p99:?}, max {max:?} over {n} calls; chat_stream {stream_elapsed:?}");

    // After the cool-down one probe goes through; success closes the breaker.
    tokio::time::sleep(Duration::from_millis(320)).await;
    assert_eq!(client.breaker_state(), BreakerState::HalfOpen);
    fake.push(Reply::text("back"));
    let r = client.chat(&req).await.unwrap();
    assert_eq!(r.text.as_deref(), Some("back"));
    assert_eq!(client.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn half_open_lets_exactly_one_probe_through() {
    let fake = FakeOpenAi::start().await;
    let clock = Arc::new(ManualClock::new());
    let mut s = settings(&fake.base_url);
    s.max_retries = 0;
    s.breaker.failure_threshold = 1;
    let client = LlmClient::with_clock(s, clock.clone()).unwrap();
    fake.push(Reply::Status(503, None));
    assert!(client.chat(&request("x")).await.is_err());
    assert_eq!(client.breaker_state(), BreakerState::Open);
    clock.advance(Duration::from_millis(300));

    // Ten concurrent callers: one probe (slow), nine refused at once.
    fake.push(Reply::delayed(
        Duration::from_millis(200),
        Reply::text("probe ok"),
    ));
    let calls = (0..10).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.chat(&request("x")).await })
    });
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(LlmError::CircuitOpen))))
        .count();
    assert_eq!((ok, refused), (1, 9));
    assert_eq!(fake.request_count(), 2);
    assert_eq!(client.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn failed_probe_reopens_the_breaker() {
    let fake = FakeOpenAi::start().await;
    let clock = Arc::new(ManualClock::new());
    let mut s = settings(&fake.base_url);
    s.max_retries = 3;
    s.breaker.failure_threshold = 2;
    let client = LlmClient::with_clock(s, clock.clone()).unwrap();
    fake.set_default(|_| Reply::Status(500, None));
    // Two failing attempts inside one call's retries open the breaker; the third attempt is
    // refused without I/O.
    assert_eq!(client.chat(&request("x")).await, Err(LlmError::CircuitOpen));
    assert_eq!(fake.request_count(), 2);
    clock.advance(Duration::from_millis(300));
    assert_eq!(client.chat(&request("x")).await, Err(LlmError::CircuitOpen));
    assert_eq!(
        fake.request_count(),
        3,
        "exactly one probe, no retries on a failed probe"
    );
    assert_eq!(client.breaker_state(), BreakerState::Open);
}

#[tokio::test]
async fn stream_goes_idle_times_out() {
    let fake = FakeOpenAi::start().await;
    fake.set_chunk_delay(Duration::from_millis(400));
    fake.push(Reply::text("a b c"));
    let mut s = settings(&fake.base_url);
    s.timeout = Duration::from_millis(150);
    let client = LlmClient::new(s).unwrap();
    let events: Vec<_> = client
        .chat_stream(&request("x"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(events, vec![Err(LlmError::Timeout)]);
}

#[tokio::test]
async fn stream_connect_is_retried() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Status(500, None));
    fake.push(Reply::text("hello world"));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let events: Vec<_> = client
        .chat_stream(&request("x"))
        .await
        .unwrap()
        .collect()
        .await;
    let Some(Ok(StreamEvent::Done(r))) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(r.text.as_deref(), Some("hello world"));
    assert_eq!(r.attempts, 2);
}

#[tokio::test]
async fn guard_rejects_malformed_arguments_from_the_wire() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::RawToolCalls(vec![(
        "set_slot".into(),
        r#"{"name": "email", "value": "#.into(),
    )]));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let req = request("x");
    let r = client.chat(&req).await.unwrap();
    let guard = ToolGuard::new(&req.tools).unwrap();
    let err = guard.check(&r.tool_calls[0]).unwrap_err();
    assert!(
        matches!(&err, GuardError::MalformedArguments { tool, reason } if tool == "set_slot" && reason.contains("not valid JSON")),
        "{err}"
    );
}

#[tokio::test]
async fn guard_rejects_a_tool_that_is_not_on_the_allow_list() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::tool("refund", json!({"amount": 500})));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let req = request("x");
    let r = client.chat(&req).await.unwrap();
    let report = ToolGuard::new(&req.tools).unwrap().check_all(&r.tool_calls);
    assert!(report.accepted.is_empty());
    assert_eq!(
        report.rejected[0].1,
        GuardError::UnknownTool {
            name: "refund".into()
        }
    );
}

#[tokio::test]
async fn cost_of_a_real_call() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::text("fine"));
    let client = LlmClient::new(settings(&fake.base_url)).unwrap();
    let r = client.chat(&request("x")).await.unwrap();
    let table = PriceTable::default();
    let est = estimate_cost(&r.model, &r.usage, &table);
    assert!(est.priced);
    let expected = (u64::from(r.usage.prompt_tokens) * 150_000).div_ceil(1_000_000)
        + (u64::from(r.usage.completion_tokens) * 600_000).div_ceil(1_000_000);
    assert_eq!(est.micros, expected);
}
