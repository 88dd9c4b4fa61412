//! # Switchboard
//!
//! A self-hostable conversational messaging gateway and AI agent. Customer messages from every
//! channel become one normalized inbound event, are stored durably (acknowledged only after
//! commit, exactly once per provider message, in order per conversation), and are answered by a
//! state-machine agent running the business's flows, or by a human.
//!
//! ## Layout
//! - [`app`]: shared state, router assembly, background tasks, graceful shutdown.
//! - [`config`], [`telemetry`]: layered settings; tracing and Prometheus.
//! - [`db`]: the runtime-role pool under row-level security, the system pool, migrations.
//! - [`http`]: the JSON error type, extractors, health/metrics, OpenAPI, pagination.
//! - [`auth`]: API keys, agent passwords.
//! - [`tenants`]: businesses, secrets at rest, notices to a business (listed, acknowledged,
//!   posted to its notification webhook).
//! - [`channels`]: channel records, public key routing, the web-chat widget and socket, public
//!   forms.
//! - [`inbox`]: contacts, conversations, messages, group-committed ingest.
//! - [`jobs`]: the durable PostgreSQL job queue and its workers.
//! - [`agent`]: flows (model, validation, pure step), prompts, the turn executor and its effects
//!   (signed webhook calls, LLM replies, wait timeouts).
//! - [`routing`]: teams, agent availability, routing decisions and queues.
//! - [`bus`]: event fan-out across nodes (Redis) or within one (in-process).
//! - [`demo`]: the seeded demo business.
//! - [`cli`]: the command line.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod app;
pub mod auth;
pub mod bus;
pub mod channels;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod http;
pub mod ids;
pub mod inbox;
pub mod jobs;
pub mod llm;
pub mod nlu;
pub mod routing;
pub mod telemetry;
pub mod tenants;
