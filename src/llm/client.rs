//! [`LlmClient`]: chat completions against any OpenAI-compatible endpoint, with per-attempt
//! timeouts, our own retry policy, an overall budget and a circuit breaker.
//!
//! Invariants:
//! - The breaker is consulted before every attempt; while it is open a call returns
//!   [`LlmError::CircuitOpen`] without any I/O or waiting.
//! - Every admitted attempt reports exactly one outcome to the breaker (success, failure, or
//!   "abandoned" when the caller drops the future/stream), via the `Permit` drop guard.
//! - async-openai's internal retry layer is not installed (see the `transport` module), so the
//!   loop in `LlmClient::run` is the only retry policy.
//! - Streams retry only while connecting; once text has been handed out, an error ends the
//!   stream (we cannot take back what the customer may already have seen).

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::CreateChatCompletionRequest;
use async_openai::types::stream::StreamResponse;
use async_openai::Client;
use futures::{Stream, StreamExt};
use secrecy::{ExposeSecret, SecretString};

use super::breaker::{
    Admission, BreakerSettings, BreakerState, CircuitBreaker, Clock, SystemClock,
};
use super::error::{Health, LlmError};
use super::retry::BackoffSettings;
use super::transport::{map_error, StatusTransport};
use super::types::{ChatRequest, ChatResult, StreamEvent};
use super::wire::{self, StreamAssembler, TokenLimitParam, WireResponse};

/// Everything needed to talk to one provider.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// API base including the version path, e.g. `https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` (Ollama), `http://vllm:8000/v1`.
    pub base_url: String,
    /// Bearer token (may be empty for local servers).
    pub api_key: SecretString,
    /// Model name sent to the provider.
    pub model: String,
    /// Limit for one HTTP attempt (for streams: until headers, then between chunks).
    pub timeout: Duration,
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// Circuit-breaker tuning.
    pub breaker: BreakerSettings,
    /// Back-off tuning and overall time budget.
    pub backoff: BackoffSettings,
    /// Request field for `ChatRequest::max_tokens` (`max_tokens` unless the model needs
    /// `max_completion_tokens`).
    pub token_limit_param: TokenLimitParam,
    /// The addresses the client may connect to, for endpoints someone else chose (a tenant's):
    /// when set, a literal address in `base_url` must pass, a name resolving to any address that
    /// does not is refused when connecting, redirects are not followed and proxies from the
    /// environment are not used. None: any address (the operator's own endpoint).
    pub address_filter: Option<fn(IpAddr) -> bool>,
}

impl LlmSettings {
    /// Settings with the defaults: 20 s per attempt, 2 retries, default breaker and back-off.
    pub fn new(
        base_url: impl Into<String>,
        api_key: SecretString,
        model: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            model: model.into(),
            timeout: Duration::from_secs(20),
            max_retries: 2,
            breaker: BreakerSettings::default(),
            backoff: BackoffSettings::default(),
            token_limit_param: TokenLimitParam::default(),
            address_filter: None,
        }
    }

    /// Check the settings; returns the base URL without a trailing slash.
    fn validate(&self) -> Result<String, LlmError> {
        let base = self.base_url.trim().trim_end_matches('/');
        let scheme_ok = base.starts_with("http://") || base.starts_with("https://");
        if !scheme_ok || base.contains(char::is_whitespace) {
            return Err(LlmError::Config("base_url must be an http(s) URL".into()));
        }
        // async-openai builds the Authorization header with `parse().unwrap()`, so a key with
        // control characters would panic deep inside it: refuse it here instead.
        let key_ok = self
            .api_key
            .expose_secret()
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b));
        if !key_ok {
            return Err(LlmError::Config(
                "api_key may only contain printable ASCII".into(),
            ));
        }
        if self.model.trim().is_empty() {
            return Err(LlmError::Config("model must not be empty".into()));
        }
        if self.timeout.is_zero() {
            return Err(LlmError::Config("timeout must be positive".into()));
        }
        self.breaker.validate().map_err(LlmError::Config)?;
        self.backoff.validate().map_err(LlmError::Config)?;
        if let Some(allowed) = self.address_filter {
            match literal_host(base) {
                Err(()) => return Err(LlmError::Config("base_url is not a valid URL".into())),
                Ok(Some(ip)) if !allowed(ip) => {
                    return Err(LlmError::Config(format!(
                        "base_url: {ip} is not an allowed address"
                    )))
                }
                Ok(_) => {}
            }
        }
        Ok(base.to_owned())
    }
}

/// The address in `url` when its host is a literal IP, as the HTTP stack will read it (so
/// `http://2130706433/` and `http://127.1/` are 127.0.0.1, like `http://[::1]/` is ::1).
fn literal_host(url: &str) -> Result<Option<IpAddr>, ()> {
    let parsed = reqwest::Url::parse(url).map_err(|_| ())?;
    let host = parsed.host_str().ok_or(())?;
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok())
}

/// The breaker plus its clock, shared by all clones of a client and by open streams.
#[derive(Debug)]
struct BreakerCell {
    breaker: Mutex<CircuitBreaker>,
    clock: Arc<dyn Clock>,
}

impl BreakerCell {
    fn with<T>(&self, f: impl FnOnce(&mut CircuitBreaker, Instant) -> T) -> T {
        let now = self.clock.now();
        let mut guard = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard, now)
    }
}

/// The right to make one attempt; reports its outcome to the breaker exactly once.
struct Permit {
    cell: Arc<BreakerCell>,
    admission: Admission,
    settled: bool,
}

impl Permit {
    fn settle(mut self, health: Health) {
        self.settled = true;
        let admission = self.admission;
        self.cell.with(|b, now| match health {
            Health::Alive => b.on_success(admission),
            Health::Failing => b.on_failure(admission, now),
        });
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled {
            let admission = self.admission;
            self.cell.with(|b, _| b.on_abandon(admission));
        }
    }
}

struct Shared {
    client: Client<OpenAIConfig>,
    model: String,
    timeout: Duration,
    max_retries: u32,
    backoff: BackoffSettings,
    token_limit_param: TokenLimitParam,
    base_url: String,
    breaker: Arc<BreakerCell>,
}

/// Chat-completion client. Cheap to clone; clones share the connection pool and the breaker.
#[derive(Clone)]
pub struct LlmClient {
    shared: Arc<Shared>,
}

impl fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmClient")
            .field("base_url", &self.shared.base_url)
            .field("model", &self.shared.model)
            .field("breaker", &self.breaker_state())
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// A client on the system clock.
    pub fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    /// A client whose breaker reads time from `clock` (tests use a manual clock).
    pub fn with_clock(settings: LlmSettings, clock: Arc<dyn Clock>) -> Result<Self, LlmError> {
        let base_url = settings.validate()?;
        let config = OpenAIConfig::new()
            .with_api_base(base_url.clone())
            .with_api_key(settings.api_key.expose_secret())
            // `OpenAIConfig::new` reads OPENAI_* variables; the settings are the only source.
            .with_org_id("")
            .with_project_id("");
        let transport = StatusTransport::new(settings.address_filter)?;
        let client = Client::with_config(config).with_http_service(transport);
        let breaker = Arc::new(BreakerCell {
            breaker: Mutex::new(CircuitBreaker::new(settings.breaker)),
            clock,
        });
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                model: settings.model,
                timeout: settings.timeout,
                max_retries: settings.max_retries,
                backoff: settings.backoff,
                token_limit_param: settings.token_limit_param,
                base_url,
                breaker,
            }),
        })
    }

    /// The configured model name.
    pub fn model(&self) -> &str {
        &self.shared.model
    }

    /// The breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        self.shared.breaker.with(|b, now| b.state(now))
    }

    /// One chat completion, with retries; fails fast with `CircuitOpen` while the breaker is open.
    pub async fn chat(&self, req: &ChatRequest) -> Result<ChatResult, LlmError> {
        self.refuse_if_open()?;
        let body = &self.build(req, false)?;
        let (mut result, permit, attempts) = self
            .run(move || async move {
                let response: WireResponse = self
                    .shared
                    .client
                    .chat()
                    .create_byot(body)
                    .await
                    .map_err(map_error)?;
                wire::parse_response(response, &self.shared.model)
            })
            .await?;
        permit.settle(Health::Alive);
        result.attempts = attempts;
        Ok(result)
    }

    /// Streaming chat completion: yields text deltas as they arrive, then one
    /// [`StreamEvent::Done`] with the full text and the tool calls assembled from the chunks.
    /// Connecting is retried like [`LlmClient::chat`]; errors after that end the stream.
    pub async fn chat_stream(
        &self,
        req: &ChatRequest,
    ) -> Result<impl Stream<Item = Result<StreamEvent, LlmError>> + Send + 'static, LlmError> {
        self.refuse_if_open()?;
        let body = &self.build(req, true)?;
        let (source, permit, attempts) = self
            .run(move || async move {
                self.shared
                    .client
                    .chat()
                    .create_stream_byot::<_, WireResponse>(body)
                    .await
                    .map_err(map_error)
            })
            .await?;
        Ok(event_stream(StreamState {
            source,
            assembler: StreamAssembler::new(),
            permit: Some(permit),
            idle_timeout: self.shared.timeout,
            model: self.shared.model.clone(),
            attempts,
        }))
    }

    /// Cheap early exit before any request is built: the fail-fast path while open.
    fn refuse_if_open(&self) -> Result<(), LlmError> {
        match self.breaker_state() {
            BreakerState::Open => Err(LlmError::CircuitOpen),
            BreakerState::Closed | BreakerState::HalfOpen => Ok(()),
        }
    }

    fn build(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<CreateChatCompletionRequest, LlmError> {
        wire::build_request(
            &self.shared.model,
            req,
            stream,
            self.shared.token_limit_param,
        )
    }

    fn admit(&self) -> Result<Permit, LlmError> {
        let admission = self.shared.breaker.with(|b, now| b.try_acquire(now));
        match admission {
            Some(admission) => Ok(Permit {
                cell: Arc::clone(&self.shared.breaker),
                admission,
                settled: false,
            }),
            None => Err(LlmError::CircuitOpen),
        }
    }

    /// The retry loop. On success the permit is handed back unsettled so the caller can
    /// settle it when the work is really done (end of stream).
    async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<(T, Permit, u32), LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LlmError>>,
    {
        let started = Instant::now();
        let budget = self.shared.backoff.budget;
        let mut retry: u32 = 0;
        loop {
            let permit = self.admit()?;
            let limit = self
                .shared
                .timeout
                .min(budget.saturating_sub(started.elapsed()));
            let outcome = tokio::time::timeout(limit, attempt())
                .await
                .unwrap_or(Err(LlmError::Timeout));
            let error = match outcome {
                Ok(value) => return Ok((value, permit, retry + 1)),
                Err(error) => error,
            };
            permit.settle(error.health());
            if !error.is_retryable() || retry >= self.shared.max_retries {
                return Err(error);
            }
            let delay = {
                let mut rng = rand::thread_rng();
                self.shared.backoff.delay_for(retry, &error, &mut rng)
            };
            if started.elapsed() + delay >= budget {
                tracing::warn!(%error, "LLM call out of time budget; not retrying");
                return Err(error);
            }
            tracing::warn!(%error, attempt = retry + 1, delay_ms = delay.as_millis() as u64, "LLM attempt failed; retrying");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }
}

struct StreamState {
    source: StreamResponse<WireResponse>,
    assembler: StreamAssembler,
    permit: Option<Permit>,
    idle_timeout: Duration,
    model: String,
    attempts: u32,
}

impl StreamState {
    /// Settle the breaker and end the stream after this item.
    fn finish(&mut self, health: Health) {
        if let Some(permit) = self.permit.take() {
            permit.settle(health);
        }
    }

    async fn next_event(&mut self) -> Option<Result<StreamEvent, LlmError>> {
        self.permit.as_ref()?;
        loop {
            let next = tokio::time::timeout(self.idle_timeout, self.source.next()).await;
            let chunk = match next {
                Err(_) => Err(LlmError::Timeout),
                Ok(None) => {
                    self.finish(Health::Alive);
                    let assembler = std::mem::take(&mut self.assembler);
                    return Some(Ok(StreamEvent::Done(
                        assembler.finish(&self.model, self.attempts),
                    )));
                }
                Ok(Some(chunk)) => chunk.map_err(map_error),
            };
            match chunk.and_then(|c| self.assembler.push(c)) {
                Ok(Some(delta)) => return Some(Ok(StreamEvent::Delta(delta))),
                Ok(None) => continue,
                Err(error) => {
                    self.finish(error.health());
                    return Some(Err(error));
                }
            }
        }
    }
}

fn event_stream(
    state: StreamState,
) -> impl Stream<Item = Result<StreamEvent, LlmError>> + Send + 'static {
    futures::stream::unfold(state, |mut state| async move {
        let event = state.next_event().await?;
        Some((event, state))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(base: &str, key: &str) -> LlmSettings {
        LlmSettings::new(base, SecretString::from(key.to_owned()), "gpt-4o-mini")
    }

    #[test]
    fn validates_settings() {
        assert!(LlmClient::new(settings("http://127.0.0.1:1/v1/", "sk-1")).is_ok());
        assert!(matches!(
            LlmClient::new(settings("ftp://x", "k")),
            Err(LlmError::Config(_))
        ));
        assert!(matches!(
            LlmClient::new(settings("http://x/v1", "bad\nkey")),
            Err(LlmError::Config(_))
        ));
        let mut s = settings("http://x/v1", "");
        s.model = " ".into();
        assert!(matches!(LlmClient::new(s), Err(LlmError::Config(_))));
        let mut s = settings("http://x/v1", "");
        s.timeout = Duration::ZERO;
        assert!(matches!(LlmClient::new(s), Err(LlmError::Config(_))));
    }

    #[test]
    fn an_address_filter_refuses_literal_addresses_it_does_not_allow() {
        fn public_only(ip: IpAddr) -> bool {
            !ip.is_loopback() && !ip.is_unspecified()
        }
        for refused in [
            "http://127.0.0.1:8000/v1",
            "http://[::1]:11434/v1",
            "http://u@127.0.0.1/v1",
            "http://2130706433/v1",
            "http://127.1/v1",
        ] {
            let mut s = settings(refused, "");
            s.address_filter = Some(public_only);
            assert!(
                matches!(LlmClient::new(s), Err(LlmError::Config(_))),
                "{refused}"
            );
        }
        for allowed in ["https://api.openai.com/v1", "http://93.184.216.34:8000/v1"] {
            let mut s = settings(allowed, "");
            s.address_filter = Some(public_only);
            assert!(LlmClient::new(s).is_ok(), "{allowed}");
        }
        assert!(LlmClient::new(settings("http://127.0.0.1:8000/v1", "")).is_ok());
    }

    #[test]
    fn debug_output_hides_the_key() {
        let s = settings("http://x/v1", "sk-very-secret");
        assert!(!format!("{s:?}").contains("sk-very-secret"));
        let client = LlmClient::new(s).unwrap();
        assert!(!format!("{client:?}").contains("sk-very-secret"));
    }

    #[tokio::test]
    async fn an_address_filter_refuses_names_resolving_to_addresses_it_does_not_allow() {
        fn public_only(ip: IpAddr) -> bool {
            !ip.is_loopback()
        }
        // The kernel accepts connections into the backlog, so a connection shows as pending.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut s = settings(&format!("http://localhost:{port}/v1"), "");
        s.max_retries = 0;
        s.timeout = Duration::from_millis(300);
        s.address_filter = Some(public_only);
        let err = LlmClient::new(s.clone())
            .unwrap()
            .chat(&ChatRequest::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LlmError::Transport(m) if m.contains("not an allowed address")),
            "{err:?}"
        );
        assert!(listener.accept().is_err(), "no connection was made");
        s.address_filter = None;
        let _ = LlmClient::new(s)
            .unwrap()
            .chat(&ChatRequest::default())
            .await;
        assert!(listener.accept().is_ok(), "without the filter it connects");
    }

    #[tokio::test]
    async fn connection_refused_is_retried_then_reported() {
        // Port 9 on loopback: nothing listens there, so the connection is refused.
        let mut s = settings("http://127.0.0.1:9/v1", "");
        s.max_retries = 1;
        s.backoff.base = Duration::from_millis(1);
        let client = LlmClient::new(s).unwrap();
        let err = client.chat(&ChatRequest::default()).await.unwrap_err();
        assert!(matches!(err, LlmError::Transport(_)), "{err:?}");
    }
}
