//! Routing routes besides teams (tenant key): agents' availability (`/api/v1/agents`) and a
//! conversation's routing history (`/api/v1/conversations/{id}/routing`).
//!
//! Invariants: every query runs in the caller's tenant transaction, so another tenant's agent or
//! conversation is simply not found.

use axum::{extract::State, routing::get, Json, Router};
use serde::Deserialize;

use super::db as routing_db;
use super::model::RoutingDecision;
use super::teams_db::{self as db, AgentView};
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, ApiPath, TenantAuth};
use crate::ids::{AgentId, ConversationId};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/agents", get(list_agents))
        .route("/api/v1/agents/{id}", axum::routing::patch(update_agent))
        .route("/api/v1/conversations/{id}/routing", get(routing_history))
}

/// Body of `PATCH /api/v1/agents/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    /// Whether routing may assign the agent new conversations.
    pub available: bool,
}

/// List agents with availability and load.
#[utoipa::path(get, path = "/api/v1/agents", tag = "routing",
    responses((status = 200, body = [AgentView])), security(("api_key" = [])))]
pub async fn list_agents(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<Vec<AgentView>>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let agents = db::list_agents(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(agents))
}

/// Set an agent's availability.
#[utoipa::path(patch, path = "/api/v1/agents/{id}", tag = "routing", request_body = UpdateAgent,
    params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = AgentView), (status = 404)), security(("api_key" = [])))]
pub async fn update_agent(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<AgentId>,
    ApiJson(body): ApiJson<UpdateAgent>,
) -> Result<Json<AgentView>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let agent = db::set_available(&mut tx, id, body.available)
        .await?
        .ok_or(ApiError::NotFound("agent"))?;
    tx.commit().await?;
    Ok(Json(agent))
}

/// Every routing decision about a conversation, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/routing", tag = "routing",
    params(("id" = String, Path, description = "conversation id")),
    responses((status = 200, body = [RoutingDecision]), (status = 404)), security(("api_key" = [])))]
pub async fn routing_history(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<ConversationId>,
) -> Result<Json<Vec<RoutingDecision>>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let exists: Option<ConversationId> =
        sqlx::query_scalar("SELECT id FROM conversations WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(ApiError::NotFound("conversation"));
    }
    let decisions = routing_db::history(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(decisions))
}
