//! The error type of the LLM client and how each error feeds the retry policy and the breaker.
//!
//! Invariants: messages never contain the API key; provider messages are truncated to
//! [`MAX_MESSAGE_CHARS`] so a hostile or broken provider cannot flood logs.

use std::time::Duration;

/// Longest provider message kept in an error.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Why a call to the LLM did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The circuit breaker is open: the provider is considered down; fall back now.
    #[error("LLM circuit breaker is open")]
    CircuitOpen,
    /// An attempt took longer than the per-attempt timeout (or the stream went idle).
    #[error("LLM request timed out")]
    Timeout,
    /// The provider answered 429.
    #[error("LLM provider rate limited the request (retry after {retry_after:?})")]
    RateLimited {
        /// The provider's Retry-After, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The provider answered with an HTTP error status.
    #[error("LLM provider error {status}: {message}")]
    Provider {
        /// HTTP status code.
        status: u16,
        /// Provider message (truncated).
        message: String,
    },
    /// The connection failed or broke (refused, reset, TLS, body read).
    #[error("LLM transport error: {0}")]
    Transport(String),
    /// The provider's answer could not be understood.
    #[error("malformed LLM response: {0}")]
    Malformed(String),
    /// The settings or the request are invalid; nothing was sent.
    #[error("LLM configuration error: {0}")]
    Config(String),
}

/// What an outcome means for the provider's health, as seen by the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The provider answered sensibly (even if it rejected our request).
    Alive,
    /// The provider failed (timeout, 5xx, 429, broken transport, garbage).
    Failing,
}

impl LlmError {
    /// Whether another attempt may succeed: 429, 408, 5xx, timeouts and transport errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Timeout | LlmError::RateLimited { .. } | LlmError::Transport(_) => true,
            LlmError::Provider { status, .. } => *status == 408 || *status >= 500,
            LlmError::CircuitOpen | LlmError::Malformed(_) | LlmError::Config(_) => false,
        }
    }

    /// How this error counts for the circuit breaker. Client errors (4xx other than 408/429)
    /// mean the provider is up and rejected *this* request, so they do not trip the breaker.
    pub fn health(&self) -> Health {
        match self {
            LlmError::Provider { status, .. } if *status < 500 && *status != 408 => Health::Alive,
            LlmError::Config(_) | LlmError::CircuitOpen => Health::Alive,
            _ => Health::Failing,
        }
    }
}

/// Cut `text` to at most [`MAX_MESSAGE_CHARS`] characters, marking the cut.
pub fn truncate_message(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX_MESSAGE_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        assert!(LlmError::Timeout.is_retryable());
        assert!(LlmError::RateLimited { retry_after: None }.is_retryable());
        assert!(LlmError::Transport("reset".into()).is_retryable());
        let p = |status| LlmError::Provider {
            status,
            message: String::new(),
        };
        assert!(p(500).is_retryable());
        assert!(p(503).is_retryable());
        assert!(p(408).is_retryable());
        assert!(!p(400).is_retryable());
        assert!(!p(401).is_retryable());
        assert!(!p(404).is_retryable());
        assert!(!LlmError::CircuitOpen.is_retryable());
        assert!(!LlmError::Malformed("x".into()).is_retryable());
    }

    #[test]
    fn health_classification() {
        let p = |status| LlmError::Provider {
            status,
            message: String::new(),
        };
        assert_eq!(p(400).health(), Health::Alive);
        assert_eq!(p(500).health(), Health::Failing);
        assert_eq!(p(408).health(), Health::Failing);
        assert_eq!(LlmError::Timeout.health(), Health::Failing);
        assert_eq!(
            LlmError::RateLimited { retry_after: None }.health(),
            Health::Failing
        );
    }

    #[test]
    fn truncation_marks_cut() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let cut = truncate_message(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate_message("short"), "short");
    }
}
