//! Flow routes under `/api/v1/flows` (tenant key): save drafts, list versions, validate, publish,
//! roll back, archive and simulate a tenant's versioned flows.
//!
//! Owns the HTTP shapes of flows. Invariants: every query runs in the caller's tenant
//! transaction; writers of one key are serialised (`flows_db::lock_key`) so version numbers are
//! `max + 1` without gaps or clashes; only a version without error-severity problems is ever
//! published; simulation writes nothing.

use axum::routing::{get, post, put};
use axum::{body::Bytes, extract::State, http::StatusCode, Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::flow::{parse_flow, Flow, FlowParseError};
use super::flows_db::{self as db, FlowSummary, FlowVersion, VersionRow, VersionSummary};
use super::preflight::{self, has_errors};
use super::prompts::Prompts;
use super::registry::RegistryError;
use super::simulate::{self, SimPerformer, SimulatedTurn, MAX_TURNS, MAX_TURN_CHARS};
use super::validate::{is_identifier, FlowProblem, Severity};
use super::webhook::WebhookClient;
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, ApiPath, TenantAuth};
use crate::nlu::NluModel;
use crate::tenants::webhook_secret::{get_or_create, WebhookSecretError};
use secrecy::ExposeSecret;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/flows", get(list_flows).post(create_flow))
        .route("/api/v1/flows/{key}", put(update_flow).delete(delete_flow))
        .route("/api/v1/flows/{key}/versions", get(list_versions))
        .route("/api/v1/flows/{key}/versions/{version}", get(get_version))
        .route(
            "/api/v1/flows/{key}/versions/{version}/publish",
            post(publish_version),
        )
        .route("/api/v1/flows/{key}/validate", post(validate_flow))
        .route("/api/v1/flows/{key}/rollback", post(rollback_flow))
        .route("/api/v1/flows/{key}/simulate", post(simulate_flow))
}

/// Body of `POST /api/v1/flows` and `PUT /api/v1/flows/{key}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowSource {
    /// The flow's YAML; its `id` is the flow key.
    pub source: String,
}

/// Body of `POST /api/v1/flows/{key}/validate` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// YAML to check; defaults to the latest version.
    pub source: Option<String>,
}

/// Body of `POST /api/v1/flows/{key}/rollback`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version whose source becomes a new published version.
    pub version: i32,
}

/// Body of `POST /api/v1/flows/{key}/simulate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// Customer turns, in order (at most 200, each at most 4,000 characters).
    pub turns: Vec<String>,
    /// A stored version; defaults to the latest (or the built-in flow of that key).
    pub version: Option<i32>,
    /// YAML to run instead of a stored version.
    pub source: Option<String>,
    /// The moment the conversation happens (RFC 3339); defaults to now. Relative dates
    /// ("tomorrow") resolve against it in the business's time zone.
    pub now: Option<chrono::DateTime<Utc>>,
}

/// Result of a validation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Validation {
    /// Whether no problem is an error.
    pub valid: bool,
    /// Every problem: `{path, message, severity}`, severity `error` or `warning`.
    #[schema(value_type = Vec<Object>)]
    pub problems: Vec<FlowProblem>,
}

/// Result of a simulation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Simulation {
    /// What each turn produced.
    pub turns: Vec<SimulatedTurn>,
}

fn parse(source: &str) -> Result<Flow, ApiError> {
    parse_flow(source).map_err(|e| {
        let details = match &e {
            FlowParseError::At { line, column, .. } => {
                Some(json!({"line": line, "column": column}))
            }
            FlowParseError::Whole { .. } => None,
        };
        ApiError::BadRequest {
            code: "invalid_flow",
            message: e.to_string(),
            details,
        }
    })
}

fn source_problems(state: &AppState, source: &str) -> Vec<FlowProblem> {
    preflight::check_source(source, state.flows.base_prompts()).problems
}

fn invalid(problems: &[FlowProblem]) -> ApiError {
    ApiError::Unprocessable {
        code: "invalid_flow",
        message: "the flow has errors (see details)".into(),
        details: Some(json!(problems)),
    }
}

fn key_mismatch(flow: &Flow, key: &str) -> Result<(), ApiError> {
    if flow.id == key {
        return Ok(());
    }
    let message = format!(
        "the YAML id \"{}\" differs from the flow key \"{key}\"",
        flow.id
    );
    Err(ApiError::unprocessable("key_mismatch", message))
}

fn view(state: &AppState, row: VersionRow) -> FlowVersion {
    let problems = source_problems(state, &row.source);
    row.with_problems(problems)
}

fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Invalid { message, .. } => ApiError::unprocessable("invalid_flow", message),
        RegistryError::Unknown(_) => ApiError::NotFound("flow"),
        RegistryError::Database(e) => ApiError::Database(e),
        other => ApiError::Internal(other.into()),
    }
}

/// Save a new flow as version 1, a draft.
#[utoipa::path(post, path = "/api/v1/flows", tag = "flows", request_body = FlowSource,
    responses((status = 201, body = FlowVersion), (status = 400), (status = 409)), security(("api_key" = [])))]
pub async fn create_flow(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<FlowSource>,
) -> Result<(StatusCode, Json<FlowVersion>), ApiError> {
    let flow = parse(&body.source)?;
    if !is_identifier(&flow.id) || flow.id.len() > 64 {
        return Err(ApiError::unprocessable(
            "invalid_key",
            "the flow id must be 1-64 characters of a-z, 0-9 and _",
        ));
    }
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    db::lock_key(&mut tx, &flow.id).await?;
    if db::key_state(&mut tx, &flow.id).await?.live {
        let message = format!("flow \"{}\" already exists; PUT a new version", flow.id);
        let code = "flow_exists";
        return Err(ApiError::Conflict { code, message });
    }
    // A deleted (archived) key starts again after its history.
    let row = db::insert_next(&mut tx, auth.tenant_id, &flow.id, &body.source, false).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(&state, row))))
}

/// Save a new draft version of a flow.
#[utoipa::path(put, path = "/api/v1/flows/{key}", tag = "flows", request_body = FlowSource,
    params(("key" = String, Path, description = "flow key")),
    responses((status = 201, body = FlowVersion), (status = 404), (status = 422)), security(("api_key" = [])))]
pub async fn update_flow(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<FlowSource>,
) -> Result<(StatusCode, Json<FlowVersion>), ApiError> {
    let flow = parse(&body.source)?;
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    db::lock_key(&mut tx, &key).await?;
    if !db::key_state(&mut tx, &key).await?.live {
        return Err(ApiError::NotFound("flow"));
    }
    key_mismatch(&flow, &key)?;
    let row = db::insert_next(&mut tx, auth.tenant_id, &key, &body.source, false).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(&state, row))))
}

/// List the tenant's flows (one entry per key).
#[utoipa::path(get, path = "/api/v1/flows", tag = "flows",
    responses((status = 200, body = [FlowSummary])), security(("api_key" = [])))]
pub async fn list_flows(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<Vec<FlowSummary>>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let flows = db::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(flows))
}

/// List a flow's versions, newest first (without sources).
#[utoipa::path(get, path = "/api/v1/flows/{key}/versions", tag = "flows",
    params(("key" = String, Path, description = "flow key")),
    responses((status = 200, body = [VersionSummary]), (status = 404)), security(("api_key" = [])))]
pub async fn list_versions(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Vec<VersionSummary>>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let versions = db::versions(&mut tx, &key).await?;
    tx.commit().await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound("flow"));
    }
    Ok(Json(versions))
}

/// Read one version with its source and problems.
#[utoipa::path(get, path = "/api/v1/flows/{key}/versions/{version}", tag = "flows",
    params(("key" = String, Path, description = "flow key"), ("version" = i32, Path, description = "version")),
    responses((status = 200, body = FlowVersion), (status = 404)), security(("api_key" = [])))]
pub async fn get_version(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath((key, version)): ApiPath<(String, i32)>,
) -> Result<Json<FlowVersion>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let row = db::get(&mut tx, &key, version)
        .await?
        .ok_or(ApiError::NotFound("flow version"))?;
    tx.commit().await?;
    Ok(Json(view(&state, row)))
}

/// Check a flow (the given YAML, else the latest version) and list every problem.
#[utoipa::path(post, path = "/api/v1/flows/{key}/validate", tag = "flows", request_body = ValidateRequest,
    params(("key" = String, Path, description = "flow key")),
    responses((status = 200, body = Validation), (status = 400), (status = 404)), security(("api_key" = [])))]
pub async fn validate_flow(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(key): ApiPath<String>,
    body: Bytes,
) -> Result<Json<Validation>, ApiError> {
    let request: ValidateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ValidateRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?
    };
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let source = match request.source {
        Some(source) => source,
        None => {
            db::latest_live(&mut tx, &key)
                .await?
                .ok_or(ApiError::NotFound("flow"))?
                .source
        }
    };
    let flow = parse(&source)?;
    let mut problems = source_problems(&state, &source);
    problems.extend(call_problems(&state, &mut tx, auth.tenant_id, &flow).await?);
    tx.commit().await?;
    if flow.id != key {
        let message = format!(
            "the YAML id \"{}\" differs from the flow key \"{key}\"",
            flow.id
        );
        problems.insert(
            0,
            FlowProblem {
                path: "id".into(),
                message,
                severity: Severity::Error,
            },
        );
    }
    Ok(Json(Validation {
        valid: !has_errors(&problems),
        problems,
    }))
}

/// Publish a version: new conversations start on it. Refused while it has errors.
#[utoipa::path(post, path = "/api/v1/flows/{key}/versions/{version}/publish", tag = "flows",
    params(("key" = String, Path, description = "flow key"), ("version" = i32, Path, description = "version")),
    responses((status = 200, body = FlowVersion), (status = 404), (status = 409), (status = 422)), security(("api_key" = [])))]
pub async fn publish_version(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath((key, version)): ApiPath<(String, i32)>,
) -> Result<Json<FlowVersion>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    db::lock_key(&mut tx, &key).await?;
    let row = db::get(&mut tx, &key, version)
        .await?
        .ok_or(ApiError::NotFound("flow version"))?;
    match row.status.as_str() {
        "published" => return Ok(Json(view(&state, row))),
        "archived" => return Err(ApiError::NotFound("flow version")),
        _ => {}
    }
    let (flow, _, _) = prepared(&state, &row.source)?;
    calls_valid(&state, &mut tx, auth.tenant_id, &flow).await?;
    if db::key_state(&mut tx, &key).await?.max_published > Some(version) {
        let message = format!("a later version is published; roll back to {version} instead");
        let code = "superseded";
        return Err(ApiError::Conflict { code, message });
    }
    let row = db::publish(&mut tx, &key, version)
        .await?
        .ok_or(ApiError::NotFound("flow version"))?;
    tx.commit().await?;
    Ok(Json(view(&state, row)))
}

/// Publish a new version whose source is an earlier version's.
#[utoipa::path(post, path = "/api/v1/flows/{key}/rollback", tag = "flows", request_body = RollbackRequest,
    params(("key" = String, Path, description = "flow key")),
    responses((status = 201, body = FlowVersion), (status = 404), (status = 422)), security(("api_key" = [])))]
pub async fn rollback_flow(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> Result<(StatusCode, Json<FlowVersion>), ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    db::lock_key(&mut tx, &key).await?;
    if !db::key_state(&mut tx, &key).await?.live {
        return Err(ApiError::NotFound("flow"));
    }
    let old = db::get(&mut tx, &key, body.version)
        .await?
        .ok_or(ApiError::NotFound("flow version"))?;
    let (flow, _, _) = prepared(&state, &old.source)?;
    calls_valid(&state, &mut tx, auth.tenant_id, &flow).await?;
    let row = db::insert_next(&mut tx, auth.tenant_id, &key, &old.source, true).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(&state, row))))
}

/// Archive every version; new conversations fall back to the built-in flow of that key.
#[utoipa::path(delete, path = "/api/v1/flows/{key}", tag = "flows",
    params(("key" = String, Path, description = "flow key")),
    responses((status = 204), (status = 404)), security(("api_key" = [])))]
pub async fn delete_flow(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    db::lock_key(&mut tx, &key).await?;
    if db::archive_all(&mut tx, &key).await? == 0 {
        return Err(ApiError::NotFound("flow"));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a scripted conversation through a flow; writes nothing.
#[utoipa::path(post, path = "/api/v1/flows/{key}/simulate", tag = "flows", request_body = SimulateRequest,
    params(("key" = String, Path, description = "flow key")),
    responses((status = 200, body = Simulation), (status = 400), (status = 404), (status = 422)), security(("api_key" = [])))]
pub async fn simulate_flow(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<SimulateRequest>,
) -> Result<Json<Simulation>, ApiError> {
    if body.turns.len() > MAX_TURNS {
        return Err(ApiError::bad_request(
            "too_many_turns",
            format!("at most {MAX_TURNS} turns"),
        ));
    }
    if body
        .turns
        .iter()
        .any(|t| t.chars().count() > MAX_TURN_CHARS)
    {
        let message = format!("a turn may have at most {MAX_TURN_CHARS} characters");
        return Err(ApiError::bad_request("turn_too_long", message));
    }
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let (flow, prompts, nlu) = match (&body.source, body.version) {
        (Some(source), _) => {
            key_mismatch(&parse(source)?, &key)?;
            prepared(&state, source)?
        }
        (None, Some(version)) => {
            let row = db::get(&mut tx, &key, version)
                .await?
                .ok_or(ApiError::NotFound("flow version"))?;
            prepared(&state, &row.source)?
        }
        (None, None) => match db::latest_live(&mut tx, &key).await? {
            Some(row) => prepared(&state, &row.source)?,
            None => {
                let builtin = state.flows.version(&mut tx, auth.tenant_id, &key, 0);
                let builtin = builtin.await.map_err(registry_error)?;
                (
                    builtin.flow.clone(),
                    builtin.prompts.clone(),
                    builtin.nlu.clone(),
                )
            }
        },
    };
    let tenant = crate::tenants::db::current(&mut tx)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    let callees = state
        .flows
        .callees(&mut tx, auth.tenant_id, &flow, &[])
        .await
        .map_err(registry_error)?;
    let mut performer = simulation_performer(&state, &mut tx, &flow).await?;
    tx.commit().await?;
    let vars = json!({"business": {"name": tenant.name, "timezone": tenant.timezone}});
    let run = simulate::Runnable {
        flow: &flow,
        prompts: &prompts,
        nlu: &nlu,
        callees: &callees,
    };
    let now = body.now.unwrap_or_else(Utc::now);
    let turns = simulate::simulate(run, &vars, now, &body.turns, &mut performer)
        .await
        .map_err(|e| ApiError::Unprocessable {
            code: "simulation_failed",
            message: e.to_string(),
            details: Some(json!({"turn": e.turn})),
        })?;
    Ok(Json(Simulation { turns }))
}

/// Problems of `flow`'s subflow calls against the tenant's flows.
async fn call_problems(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    tenant: crate::ids::TenantId,
    flow: &Flow,
) -> Result<Vec<FlowProblem>, ApiError> {
    state
        .flows
        .call_problems(tx, tenant, flow)
        .await
        .map_err(registry_error)
}

/// Refuses a flow whose subflow calls have problems (every one is reported).
async fn calls_valid(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    tenant: crate::ids::TenantId,
    flow: &Flow,
) -> Result<(), ApiError> {
    let problems = call_problems(state, tx, tenant, flow).await?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(invalid(&problems))
    }
}

/// The simulator's webhook caller: real calls, signed with the tenant's secret (created on
/// first use), under the gateway's address policy. Flows without `http` states skip the secret.
async fn simulation_performer(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    flow: &Flow,
) -> Result<SimPerformer, ApiError> {
    let calls_webhooks = flow
        .states
        .iter()
        .any(|(_, s)| matches!(s, super::flow::State::Http(_)));
    let secret = if calls_webhooks {
        let secret = get_or_create(tx, &state.secrets)
            .await
            .map_err(|e| match e {
                WebhookSecretError::Database(db) => ApiError::Database(db),
                other => ApiError::Internal(other.into()),
            })?;
        secret.expose_secret().to_string()
    } else {
        String::new()
    };
    let client = WebhookClient::new(state.settings.agent.http_allow_private)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(SimPerformer::new(client, secret))
}

/// Prepare `source` for a run, reporting every problem when it has errors.
fn prepared(state: &AppState, source: &str) -> Result<(Flow, Prompts, NluModel), ApiError> {
    preflight::prepare(source, state.flows.base_prompts())
        .map(|p| (p.flow, p.prompts, p.nlu))
        .map_err(|problems| invalid(&problems))
}
