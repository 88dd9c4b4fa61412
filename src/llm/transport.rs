//! The HTTP transport installed into async-openai: its plain reqwest service *without* the
//! library's built-in retry layer (our client owns the only retry policy), wrapped so that
//! non-2xx answers become a structured [`HttpFailure`] that keeps the status and Retry-After,
//! which async-openai's own error type drops. Also maps every `OpenAIError` to [`LlmError`].
//!
//! With an address filter (tenants' own endpoints), names are resolved by a resolver that refuses
//! any name with an address the filter rejects, so the address connected to is the address
//! checked; redirects are not followed and environment proxies are not used.
//!
//! Invariants: error bodies are read at most [`MAX_ERROR_BODY`] bytes; nothing here retries.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use tower::Service;

use super::error::{truncate_message, LlmError};
use super::retry::parse_retry_after;

/// Most bytes of an error body we read.
const MAX_ERROR_BODY: usize = 64 * 1024;

type Response = <ReqwestService as Service<HttpRequestFactory>>::Response;
type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, OpenAIError>> + Send>>;

/// A non-2xx HTTP answer from the provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status}: {message}")]
pub(crate) struct HttpFailure {
    /// Status code.
    pub status: u16,
    /// Parsed Retry-After / retry-after-ms, if present.
    pub retry_after: Option<Duration>,
    /// Provider message (truncated).
    pub message: String,
}

impl HttpFailure {
    fn into_llm_error(self) -> LlmError {
        if self.status == 429 {
            LlmError::RateLimited {
                retry_after: self.retry_after,
            }
        } else {
            LlmError::Provider {
                status: self.status,
                message: self.message,
            }
        }
    }
}

/// Tower service: reqwest transport, no retries, structured HTTP failures.
#[derive(Debug, Clone)]
pub(crate) struct StatusTransport {
    inner: ReqwestService,
}

impl StatusTransport {
    /// The default HTTP client, or one confined to the addresses `filter` allows.
    pub(crate) fn new(filter: Option<fn(IpAddr) -> bool>) -> Result<Self, LlmError> {
        let Some(allowed) = filter else {
            return Ok(Self {
                inner: ReqwestService::default(),
            });
        };
        let client = reqwest13::Client::builder()
            .redirect(reqwest13::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(FilteredResolver { allowed }))
            .build()
            .map_err(|e| LlmError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner: ReqwestService::new(client),
        })
    }
}

/// The system resolver, refusing names with any address the filter rejects.
struct FilteredResolver {
    allowed: fn(IpAddr) -> bool,
}

impl reqwest13::dns::Resolve for FilteredResolver {
    fn resolve(&self, name: reqwest13::dns::Name) -> reqwest13::dns::Resolving {
        let allowed = self.allowed;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !allowed(a.ip())) {
                let message = format!(
                    "refused: {host} resolves to {}, not an allowed address",
                    bad.ip()
                );
                return Err(message.into());
            }
            let addrs: reqwest13::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

impl Service<HttpRequestFactory> for StatusTransport {
    type Response = Response;
    type Error = OpenAIError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            if response.status().is_success() {
                return Ok(response);
            }
            Err(OpenAIError::Boxed(Box::new(read_failure(response).await)))
        })
    }
}

async fn read_failure(mut response: Response) -> HttpFailure {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = parse_retry_after(
        header("retry-after-ms").as_deref(),
        header("retry-after").as_deref(),
        chrono::Utc::now(),
    );
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    HttpFailure {
        status,
        retry_after,
        message: error_message(&String::from_utf8_lossy(&body)),
    }
}

/// The human message of an error body: `error.message`, `error` (string), `message`, or the
/// raw text; always truncated.
pub(crate) fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("message"))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
    });
    truncate_message(from_json.as_deref().unwrap_or(body).trim())
}

/// An error with its causes ("error sending request …: refused: x resolves to 10.0.0.1, …"), so
/// a failed connection says why.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Map an async-openai error to ours.
pub(crate) fn map_error(error: OpenAIError) -> LlmError {
    match error {
        OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpFailure>() {
            Ok(failure) => failure.into_llm_error(),
            Err(other) => LlmError::Transport(truncate_message(&other.to_string())),
        },
        OpenAIError::Reqwest(e) if e.is_timeout() => LlmError::Timeout,
        OpenAIError::Reqwest(e) => LlmError::Transport(truncate_message(&with_causes(&e))),
        OpenAIError::ApiError(api) => HttpFailure {
            status: api.status_code.as_u16(),
            retry_after: None,
            message: truncate_message(&api.api_error.message),
        }
        .into_llm_error(),
        OpenAIError::JSONDeserialize(e, _) => LlmError::Malformed(truncate_message(&e.to_string())),
        OpenAIError::StreamError(e) => LlmError::Transport(truncate_message(&e.to_string())),
        OpenAIError::InvalidArgument(m) => LlmError::Config(truncate_message(&m)),
        other => LlmError::Transport(truncate_message(&other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_error_messages() {
        assert_eq!(
            error_message(r#"{"error":{"message":"slow down","type":"rate_limit"}}"#),
            "slow down"
        );
        assert_eq!(
            error_message(r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(error_message(r#"{"message":"bad gateway"}"#), "bad gateway");
        assert_eq!(error_message("  upstream exploded \n"), "upstream exploded");
    }

    #[test]
    fn maps_boxed_http_failures() {
        let rate = OpenAIError::Boxed(Box::new(HttpFailure {
            status: 429,
            retry_after: Some(Duration::from_millis(300)),
            message: "x".into(),
        }));
        assert_eq!(
            map_error(rate),
            LlmError::RateLimited {
                retry_after: Some(Duration::from_millis(300))
            }
        );
        let server = OpenAIError::Boxed(Box::new(HttpFailure {
            status: 503,
            retry_after: None,
            message: "down".into(),
        }));
        assert_eq!(
            map_error(server),
            LlmError::Provider {
                status: 503,
                message: "down".into()
            }
        );
        assert_eq!(
            map_error(OpenAIError::InvalidArgument("nope".into())),
            LlmError::Config("nope".into())
        );
    }
}
