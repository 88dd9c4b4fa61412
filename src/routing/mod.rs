//! Intake routing: where a conversation goes when the bot hands it on, or when a flow classifies
//! it (category, priority, language, confidence).
//!
//! A decision sends the conversation to one human agent of a team (chosen by round-robin,
//! least-loaded or skill match among the members who are available and under capacity), to the
//! team's queue when nobody fits, to the tenant's triage queue (the team with key `triage`,
//! created on first use, whose conversations always wait for a person to pick them) when the
//! classifier's confidence is under the request's threshold or the team is unknown, or back to
//! the bot.
//!
//! - [`request`]: what a caller asks for; [`model`]: decisions, strategies, priorities, errors;
//! - [`assign`]: the pure choice of an agent;
//! - [`route`]: [`route_conversation`], run inside the caller's transaction;
//! - [`db`]: the SQL of a decision, the history and queues; [`teams_db`]: teams and agents;
//! - [`teams_api`] and [`api`]: `/api/v1/teams`, `/api/v1/agents`,
//!   `/api/v1/conversations/{id}/routing`.
//!
//! Invariants: every decision is stored on the conversation (`routing`, with its status, owner
//! and team) and appended to `routing_decisions` in the same transaction; only available members
//! under capacity are assigned; all tables are confined to their tenant by row-level security.

pub mod api;
pub mod assign;
pub mod db;
pub mod model;
pub mod request;
pub mod route;
pub mod teams_api;
pub mod teams_db;

pub use model::{DecisionTarget, Priority, RoutingDecision, RoutingError, Strategy, TeamId};
pub use request::{RouteRequest, RouteTarget};
pub use route::route_conversation;

use axum::Router;

use crate::app::AppState;

/// The routing API.
pub fn router() -> Router<AppState> {
    teams_api::router().merge(api::router())
}
