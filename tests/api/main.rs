//! Integration tests: the real server on port 0, real PostgreSQL (a fresh database per test),
//! real Redis where named, real WebSocket clients.

#[path = "../common/mod.rs"]
mod common;
use common::fake_openai;

mod bad_input;
mod cli;
mod deferred_turns;
mod flows_api;
mod health;
mod ingest;
mod isolation;
mod janitor;
mod jobs_queue;
mod multi_node;
mod notices;
mod prompts_api;
mod public_form;
mod queued_turns;
mod routing;
mod state_kinds;
mod tenant_llm;
mod tenants_api;
mod understanding;
mod webchat;
