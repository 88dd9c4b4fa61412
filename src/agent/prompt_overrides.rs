//! A tenant's prompt overrides: its own wording for the default templates, for all its flows or
//! for one flow, stored in `prompt_overrides`, served over REST, checked before they are saved
//! and applied by the agent.
//!
//! Owns the table's queries, `apply` (the layering: defaults < tenant-wide < flow-specific <
//! the flow's inline texts) and the API. Invariants: an override names an existing default
//! template; it is refused (422, with every problem and its path) when its syntax is wrong or when
//! any of the tenant's affected flows would fail to render it for a customer (the publish-time
//! dry run of [`super::dry_run`]); all queries run in the caller's tenant transaction.

use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;

use super::dry_run::dry_run;
use super::flow::parse_flow;
use super::flows_db;
use super::prompts::{check_syntax, Prompts};
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, TenantAuth};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/prompts", get(list_prompts))
        .route(
            "/api/v1/prompts/{name}",
            put(put_prompt).delete(delete_prompt),
        )
}

/// One stored override.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PromptOverride {
    /// Template name (a default template in prompts/).
    pub name: String,
    /// The flow key it applies to; empty for every flow of the tenant.
    pub flow_key: String,
    /// minijinja source.
    pub source: String,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Every override of the tenant, tenant-wide ones first.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<PromptOverride>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, flow_key, source, updated_at FROM prompt_overrides \
         WHERE tenant_id = sb_tenant() ORDER BY flow_key, name",
    )
    .fetch_all(conn)
    .await
}

/// `prompts` with the overrides that apply to `flow_key` (tenant-wide, then the flow's) and the
/// flow's own inline texts re-applied on top.
pub fn apply(
    prompts: &Prompts,
    overrides: &[PromptOverride],
    flow: &super::flow::Flow,
    flow_key: &str,
) -> Result<Prompts, super::prompts::PromptError> {
    let layered = overrides
        .iter()
        .filter(|o| o.flow_key.is_empty())
        .chain(overrides.iter().filter(|o| o.flow_key == flow_key))
        .try_fold(prompts.clone(), |p, o| p.with_override(&o.name, &o.source))?;
    layered.with_flow_texts(flow)
}

/// The prompts list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PromptList {
    /// Names of the default templates that can be overridden.
    pub defaults: Vec<String>,
    /// The tenant's overrides.
    pub overrides: Vec<PromptOverride>,
}

/// Body of `PUT /api/v1/prompts/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPrompt {
    /// minijinja source (strict undefined: every variable must be provided).
    pub source: String,
    /// Apply to this flow key only (default: every flow of the tenant).
    pub flow: Option<String>,
}

/// Query of `DELETE /api/v1/prompts/{name}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FlowQuery {
    /// The flow key of a flow-specific override.
    pub flow: Option<String>,
}

/// Default templates and the tenant's overrides.
#[utoipa::path(get, path = "/api/v1/prompts", tag = "prompts",
    responses((status = 200, body = PromptList)), security(("api_key" = [])))]
pub async fn list_prompts(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<PromptList>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let overrides = all(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(PromptList {
        defaults: state.flows.base_prompts().names(),
        overrides,
    }))
}

/// Create or replace an override, after checking it renders in every flow it affects.
#[utoipa::path(put, path = "/api/v1/prompts/{name}", tag = "prompts", request_body = PutPrompt,
    params(("name" = String, Path, description = "default template name")),
    responses((status = 200, body = PromptOverride), (status = 422)), security(("api_key" = [])))]
pub async fn put_prompt(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PutPrompt>,
) -> Result<Json<PromptOverride>, ApiError> {
    let base = state.flows.base_prompts();
    if !base.has(&name) {
        return Err(ApiError::unprocessable(
            "unknown_template",
            format!("there is no default template named {name:?} (see GET /api/v1/prompts)"),
        ));
    }
    if body.source.len() > 20_000 {
        return Err(ApiError::PayloadTooLarge(
            "a template is at most 20,000 bytes".into(),
        ));
    }
    if let Err((line, detail)) = check_syntax(&body.source) {
        let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
        return Err(ApiError::unprocessable(
            "template_syntax",
            format!("template syntax error{at}: {detail}"),
        ));
    }
    let flow_key = body.flow.clone().unwrap_or_default();
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let mut overrides: Vec<PromptOverride> = all(&mut tx)
        .await?
        .into_iter()
        .filter(|o| !(o.name == name && o.flow_key == flow_key))
        .collect();
    overrides.push(PromptOverride {
        name: name.clone(),
        flow_key: flow_key.clone(),
        source: body.source.clone(),
        updated_at: Utc::now(),
    });
    check_affected_flows(&state, &mut tx, auth.tenant_id, &overrides, &flow_key).await?;
    let saved: PromptOverride = sqlx::query_as(
        "INSERT INTO prompt_overrides (tenant_id, flow_key, name, source) \
         VALUES (sb_tenant(), $1, $2, $3) \
         ON CONFLICT (tenant_id, flow_key, name) DO UPDATE SET source = EXCLUDED.source, updated_at = now() \
         RETURNING name, flow_key, source, updated_at",
    )
    .bind(&flow_key)
    .bind(&name)
    .bind(&body.source)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(saved))
}

/// Dry-runs every flow the change affects (the tenant's live flows and the built-ins, or only
/// `flow_key`'s) with the overrides applied.
async fn check_affected_flows(
    state: &AppState,
    conn: &mut PgConnection,
    tenant: crate::ids::TenantId,
    overrides: &[PromptOverride],
    flow_key: &str,
) -> Result<(), ApiError> {
    let base = state.flows.base_prompts();
    let mut flows = Vec::new();
    let mut keys: Vec<String> = state.flows.builtin_keys();
    for summary in flows_db::list(conn).await? {
        keys.push(summary.key);
    }
    keys.sort();
    keys.dedup();
    for key in keys {
        if !flow_key.is_empty() && key != flow_key {
            continue;
        }
        match flows_db::latest_live(conn, &key).await? {
            Some(row) => {
                if let Ok(flow) = parse_flow(&row.source) {
                    flows.push(flow);
                }
            }
            None => {
                if let Ok(builtin) = state.flows.version(conn, tenant, &key, 0).await {
                    flows.push(builtin.flow.clone());
                }
            }
        }
    }
    let mut problems = Vec::new();
    for flow in flows {
        let prompts = apply(base, overrides, &flow, &flow.id)
            .map_err(|e| ApiError::unprocessable("template_syntax", e.to_string()))?;
        for p in dry_run(&flow, &prompts) {
            problems.push(json!({"flow": flow.id, "path": p.path, "message": p.message}));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Unprocessable {
            code: "template_render",
            message: "the template would fail for customers in these flows".into(),
            details: Some(json!(problems)),
        })
    }
}

/// Remove an override (the default wording applies again).
#[utoipa::path(delete, path = "/api/v1/prompts/{name}", tag = "prompts", params(FlowQuery,
    ("name" = String, Path, description = "template name")),
    responses((status = 204), (status = 404)), security(("api_key" = [])))]
pub async fn delete_prompt(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<FlowQuery>,
) -> Result<axum::http::StatusCode, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let deleted = sqlx::query(
        "DELETE FROM prompt_overrides WHERE tenant_id = sb_tenant() AND flow_key = $1 AND name = $2",
    )
    .bind(query.flow.unwrap_or_default())
    .bind(&name)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if deleted == 0 {
        return Err(ApiError::NotFound("prompt override"));
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}
