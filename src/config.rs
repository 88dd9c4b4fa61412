//! Settings: layered configuration for the whole binary.
//!
//! Layers, lowest first: the built-in `config/default.toml` (embedded, so the binary runs anywhere),
//! `config/default.toml` and `config/<SWITCHBOARD_ENV>.toml` from the config directory when present,
//! then environment variables `SWITCHBOARD_<SECTION>__<KEY>` and the conventional `DATABASE_URL`,
//! `REDIS_URL`. Secrets are [`SecretString`]s so they never reach a log line.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const EMBEDDED_DEFAULTS: &str = include_str!("../config/default.toml");

/// Everything the binary can be configured with.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// HTTP listener.
    pub server: ServerSettings,
    /// PostgreSQL, the system of record.
    pub database: DatabaseSettings,
    /// Optional Redis for cross-node events.
    pub redis: RedisSettings,
    /// Durable job queue workers.
    pub jobs: JobSettings,
    /// Group-commit ingest.
    pub ingest: IngestSettings,
    /// Web-chat channel limits.
    pub webchat: WebchatSettings,
    /// Flows and prompts.
    pub agent: AgentSettings,
    /// Keys for secrets at rest.
    pub security: SecuritySettings,
    /// Logging.
    pub log: LogSettings,
    /// The OpenAI-compatible LLM (optional).
    pub llm: LlmConfig,
    /// The embedded understanding layer.
    pub nlu: NluSettings,
}

/// The OpenAI-compatible LLM the agent may use; off while `base_url` or `model` is empty.
#[derive(Debug, Clone, Deserialize)]
pub struct LlmConfig {
    /// API base including `/v1` (also `OPENAI_BASE_URL`).
    pub base_url: String,
    /// Bearer token (also `OPENAI_API_KEY`); may be empty for local servers.
    pub api_key: SecretString,
    /// Model name (also `OPENAI_MODEL`).
    pub model: String,
    /// Milliseconds allowed per attempt.
    pub timeout_ms: u64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// Seconds the breaker stays open before one probe is let through.
    pub breaker_cooldown_secs: u64,
    /// AI-handled requests per tenant per calendar month (UTC); 0 = unlimited. A tenant's
    /// `settings.llm.monthly_quota` overrides it.
    pub monthly_quota: u32,
}

impl LlmConfig {
    /// Whether an LLM is configured.
    pub fn enabled(&self) -> bool {
        !self.base_url.trim().is_empty() && !self.model.trim().is_empty()
    }
}

/// The embedded understanding layer.
#[derive(Debug, Clone, Deserialize)]
pub struct NluSettings {
    /// Directory holding all-MiniLM-L6-v2 (model.safetensors, tokenizer.json, config.json) for
    /// in-process sentence embeddings (build feature `embeddings`); empty: n-gram model only.
    pub embeddings_dir: String,
}

/// HTTP listener settings.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Interface to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Base URL printed in links.
    pub public_url: String,
    /// Request body limit in bytes.
    pub max_body_bytes: usize,
    /// Seconds allowed for draining on shutdown.
    pub shutdown_grace_secs: u64,
}

/// PostgreSQL settings.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Connection URL (may hold a password, hence secret).
    pub url: SecretString,
    /// Size of the tenant-scoped pool.
    pub max_connections: u32,
    /// Non-superuser role every tenant query runs as.
    pub runtime_role: String,
    /// Create the database on start when missing.
    pub create_if_missing: bool,
}

/// Redis settings.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// Empty for none.
    pub url: SecretString,
}

impl RedisSettings {
    /// The URL, when one is configured.
    pub fn url(&self) -> Option<&str> {
        let url = self.url.expose_secret().trim();
        (!url.is_empty()).then_some(url)
    }
}

/// Job queue settings.
#[derive(Debug, Clone, Deserialize)]
pub struct JobSettings {
    /// Worker loops per process.
    pub workers: usize,
    /// Jobs claimed per batch.
    pub batch_size: i64,
    /// Lease length in seconds.
    pub lease_secs: u64,
    /// Poll interval when idle, in milliseconds.
    pub poll_interval_ms: u64,
    /// Attempts before dead-lettering.
    pub max_attempts: i32,
    /// Backoff base in milliseconds.
    pub backoff_base_ms: u64,
    /// Backoff cap in milliseconds.
    pub backoff_max_ms: u64,
    /// Seconds between janitor sweeps of the hot tables; 0 disables.
    pub vacuum_interval_secs: u64,
}

/// Group-commit ingest settings.
#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    /// Messages per transaction at most.
    pub max_batch: usize,
    /// Transactions in flight at once.
    pub max_inflight_batches: usize,
    /// A transaction that would run beside others already in flight waits until it carries at
    /// least this many messages (or `overlap_linger_us` has passed): small overlapping commits
    /// cost the database far more per message than fewer, larger ones.
    pub overlap_min_batch: usize,
    /// Longest wait, in microseconds, for an overlapping transaction to fill.
    pub overlap_linger_us: u64,
}

/// Web-chat settings.
#[derive(Debug, Clone, Deserialize)]
pub struct WebchatSettings {
    /// Longest message text in characters.
    pub max_message_chars: usize,
    /// Page size of history replays (on connect, or after falling behind); a replay reads pages
    /// until caught up.
    pub history_limit: i64,
}

/// Flow and prompt locations.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentSettings {
    /// Directory of default flows.
    pub flows_dir: PathBuf,
    /// Directory of prompt templates.
    pub prompts_dir: PathBuf,
    /// Flow key used when a channel names none.
    pub default_flow: String,
    /// Whether `http` flow states, tenants' own LLM endpoints and notification webhooks may call
    /// loopback and private addresses (development and tests; off in production, where they must
    /// be public addresses).
    pub http_allow_private: bool,
    /// Milliseconds a tenant's settings (name, time zone, LLM, prompt overrides) are cached by the
    /// agent before being read again; changes take effect within this time.
    pub tenant_cache_ms: u64,
}

/// Key material.
#[derive(Debug, Clone, Deserialize)]
pub struct SecuritySettings {
    /// Base64 32-byte key for secrets at rest; empty derives a development key.
    pub secrets_key: SecretString,
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// "pretty" or "json".
    pub format: String,
    /// tracing filter directive.
    pub filter: String,
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A layer failed to parse or a value has the wrong type.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
}

impl Settings {
    /// Load the layers described in the module docs.
    pub fn load() -> Result<Self, SettingsError> {
        let dir = std::env::var("SWITCHBOARD_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let env_name = std::env::var("SWITCHBOARD_ENV").unwrap_or_else(|_| "development".into());
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(
                EMBEDDED_DEFAULTS,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::with_name(&format!("{dir}/default")).required(false))
            .add_source(config::File::with_name(&format!("{dir}/{env_name}")).required(false))
            .add_source(
                config::Environment::with_prefix("SWITCHBOARD")
                    .prefix_separator("_")
                    .separator("__"),
            );
        if let Ok(url) = std::env::var("DATABASE_URL") {
            builder = builder.set_override("database.url", url)?;
        }
        if let Ok(url) = std::env::var("REDIS_URL") {
            builder = builder.set_override("redis.url", url)?;
        }
        for (var, key) in [
            ("OPENAI_BASE_URL", "llm.base_url"),
            ("OPENAI_API_KEY", "llm.api_key"),
            ("OPENAI_MODEL", "llm.model"),
        ] {
            if let Ok(value) = std::env::var(var) {
                builder = builder.set_override(key, value)?;
            }
        }
        Ok(builder.build()?.try_deserialize()?)
    }

    /// Settings from the embedded defaults only, for tests that tweak fields directly.
    pub fn defaults() -> Result<Self, SettingsError> {
        let cfg = config::Config::builder()
            .add_source(config::File::from_str(
                EMBEDDED_DEFAULTS,
                config::FileFormat::Toml,
            ))
            .build()?;
        Ok(cfg.try_deserialize()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let settings = Settings::defaults().expect("defaults parse");
        assert_eq!(settings.server.port, 8080);
        assert!(settings.redis.url().is_none());
        assert_eq!(settings.database.runtime_role, "switchboard_app");
    }
}
