//! The tenant's LLM settings over REST: `GET /api/v1/tenant/llm` (the settings in force: whether
//! the LLM is on, the quota, and which endpoint and model read its conversations) and
//! `PUT /api/v1/tenant/llm` (switch it on or off, set the quota, bring its own endpoint).
//!
//! Invariants: everything runs in the caller's tenant transaction (row-level security);
//! `enabled` and `monthly_quota` live under `tenants.settings.llm` and are replaced by every PUT,
//! as they always were; the endpoint fields are optional (omitted: unchanged, `null`: cleared,
//! see [`super::llm_endpoint`]); the API key is write-only — sealed before it is stored, never in
//! a response, a log line or an error; changes take effect within the agent's tenant cache time
//! (`agent.tenant_cache_ms`).

use axum::{extract::State, routing::get, Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::llm_endpoint::{self, EndpointChange, EndpointError, Patch, StoredEndpoint};
use crate::app::AppState;
use crate::config::LlmConfig;
use crate::http::{ApiError, ApiJson, TenantAuth};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/tenant/llm",
        get(get_llm_settings).put(put_llm_settings),
    )
}

/// Body of `PUT /api/v1/tenant/llm`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmSettingsBody {
    /// Let the agent use an LLM for this tenant: its own endpoint when it has one, else the
    /// server's.
    pub enabled: bool,
    /// AI-handled requests per month; 0 = unlimited; omitted = the server's default.
    pub monthly_quota: Option<u32>,
    /// The tenant's own OpenAI-compatible API base, including the version path (e.g.
    /// `https://api.openai.com/v1`, `http://ollama:11434/v1`). Omitted: unchanged; `null`:
    /// remove the tenant's endpoint and use the server's LLM again.
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable, example = "https://api.openai.com/v1")]
    pub base_url: Patch<String>,
    /// Model name at that endpoint (required with a new `base_url`; at most 200 characters).
    /// Omitted: unchanged.
    #[serde(default)]
    #[schema(value_type = String, required = false, example = "gpt-4o-mini")]
    pub model: Patch<String>,
    /// Bearer token for that endpoint; write-only (never returned). Omitted: unchanged (but a
    /// different `base_url` needs it again); `null` or `""`: none (local servers).
    #[serde(default)]
    #[schema(value_type = Option<String>, nullable, write_only)]
    pub api_key: Patch<SecretString>,
    /// Milliseconds per attempt at that endpoint (100 to 120000). Omitted: unchanged; `null`:
    /// the server's.
    #[serde(default)]
    #[schema(value_type = Option<u32>, nullable)]
    pub timeout_ms: Patch<u32>,
}

/// Where a tenant's LLM comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LlmSource {
    /// The tenant's own endpoint.
    Tenant,
    /// The server's `[llm]`.
    Server,
    /// Neither: the embedded understanding answers.
    None,
}

/// The tenant's LLM settings in force (never the API key).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LlmSettingsView {
    /// Whether the tenant lets the agent use an LLM.
    pub enabled: bool,
    /// Whether an LLM reads the tenant's conversations: enabled, and an endpoint exists.
    pub active: bool,
    /// The tenant's own monthly quota (0 = unlimited; `null` = the server's default).
    pub monthly_quota: Option<u32>,
    /// The quota in force (0 = unlimited).
    pub effective_monthly_quota: u32,
    /// Whose endpoint is used.
    pub source: LlmSource,
    /// The endpoint's API base (`null` when there is none).
    pub base_url: Option<String>,
    /// The model (`null` when there is none).
    pub model: Option<String>,
    /// Whether an API key is stored for the endpoint (the key itself is never shown).
    pub has_api_key: bool,
    /// Milliseconds per attempt (`null` when there is no endpoint).
    pub timeout_ms: Option<u64>,
}

/// The LLM settings in force.
#[utoipa::path(get, path = "/api/v1/tenant/llm", tag = "usage",
    responses((status = 200, body = LlmSettingsView)), security(("api_key" = [])))]
pub async fn get_llm_settings(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<LlmSettingsView>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let settings = tenant_settings(&mut tx).await?;
    let own = llm_endpoint::load(&mut tx, false).await?;
    tx.commit().await?;
    Ok(Json(view(&settings, own.as_ref(), &state.settings.llm)))
}

/// Switch the LLM on or off, set the monthly quota, and set, change or remove the tenant's own
/// endpoint (base URL, model, API key, timeout).
#[utoipa::path(put, path = "/api/v1/tenant/llm", tag = "usage", request_body = LlmSettingsBody,
    responses((status = 200, body = LlmSettingsView), (status = 400), (status = 422)),
    security(("api_key" = [])))]
pub async fn put_llm_settings(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<LlmSettingsBody>,
) -> Result<Json<LlmSettingsView>, ApiError> {
    let mut settings = json!({ "enabled": body.enabled });
    if let Some(q) = body.monthly_quota {
        settings["monthly_quota"] = json!(q);
    }
    let change = EndpointChange {
        base_url: body.base_url,
        model: body.model,
        api_key: body.api_key,
        timeout_ms: body.timeout_ms,
    };
    let allow_private = state.settings.agent.http_allow_private;
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let current = llm_endpoint::load(&mut tx, true).await?;
    let outcome = llm_endpoint::merge(current.as_ref(), change, allow_private, &state.secrets)
        .map_err(refused)?;
    llm_endpoint::write(&mut tx, auth.tenant_id, &outcome).await?;
    sqlx::query(
        "UPDATE tenants SET settings = jsonb_set(settings, '{llm}', $1) WHERE id = sb_tenant()",
    )
    .bind(&settings)
    .execute(&mut *tx)
    .await?;
    let own = match outcome {
        llm_endpoint::Outcome::Unchanged => current,
        llm_endpoint::Outcome::Remove => None,
        llm_endpoint::Outcome::Store(stored) => Some(stored),
    };
    tx.commit().await?;
    Ok(Json(view(&settings, own.as_ref(), &state.settings.llm)))
}

fn refused(error: EndpointError) -> ApiError {
    ApiError::bad_request(error.code(), error.to_string())
}

/// `tenants.settings.llm` (null when never set).
async fn tenant_settings(conn: &mut sqlx::PgConnection) -> Result<Value, sqlx::Error> {
    let settings: Option<Value> =
        sqlx::query_scalar("SELECT settings->'llm' FROM tenants WHERE id = sb_tenant()")
            .fetch_one(conn)
            .await?;
    Ok(settings.unwrap_or(Value::Null))
}

/// What the tenant sees: `settings` (`tenants.settings.llm`), its endpoint, or the server's.
fn view(settings: &Value, own: Option<&StoredEndpoint>, server: &LlmConfig) -> LlmSettingsView {
    let enabled = settings
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let monthly_quota = settings
        .get("monthly_quota")
        .and_then(Value::as_u64)
        .map(|q| u32::try_from(q).unwrap_or(u32::MAX));
    let (source, base_url, model, has_api_key, timeout_ms) = match own {
        Some(own) => (
            LlmSource::Tenant,
            Some(own.base_url.clone()),
            Some(own.model.clone()),
            own.api_key.is_some(),
            Some(
                own.timeout_ms
                    .and_then(|ms| u64::try_from(ms).ok())
                    .unwrap_or(server.timeout_ms),
            ),
        ),
        None if server.enabled() => (
            LlmSource::Server,
            Some(server.base_url.trim().trim_end_matches('/').to_owned()),
            Some(server.model.clone()),
            !server.api_key.expose_secret().trim().is_empty(),
            Some(server.timeout_ms),
        ),
        None => (LlmSource::None, None, None, false, None),
    };
    LlmSettingsView {
        enabled,
        active: enabled && source != LlmSource::None,
        monthly_quota,
        effective_monthly_quota: monthly_quota.unwrap_or(server.monthly_quota),
        source,
        base_url,
        model,
        has_api_key,
        timeout_ms,
    }
}
