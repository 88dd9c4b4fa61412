//! The tenant's AI settings and usage over REST: `GET /api/v1/usage/llm?month=YYYY-MM` (requests,
//! tokens and cost of a calendar month, with the quota in force) and `PUT /api/v1/tenant/llm`
//! (switch the LLM on or off for the tenant, set its monthly quota).
//!
//! Invariants: everything runs in the caller's tenant transaction (row-level security); settings
//! live under `tenants.settings.llm` and take effect within the agent's tenant cache time (10 s).

use axum::{extract::State, routing::get, Json, Router};
use chrono::{NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::llm_usage::{month_bounds, month_totals, MonthTotals};
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, ApiQuery, TenantAuth};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/usage/llm", get(llm_usage))
        .route("/api/v1/tenant/llm", axum::routing::put(put_llm_settings))
}

/// Query of `GET /api/v1/usage/llm`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// `YYYY-MM` (UTC); the current month when omitted.
    pub month: Option<String>,
}

/// A month of LLM usage.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// The tenant's monthly quota of AI-handled requests (0 = unlimited; `null` = the server's).
    pub monthly_quota: Option<u64>,
    /// Whether the tenant lets the agent use the LLM.
    pub enabled: bool,
    /// Totals.
    #[serde(flatten)]
    pub totals: MonthTotals,
}

/// Body of `PUT /api/v1/tenant/llm`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmSettingsBody {
    /// Use the server's LLM for this tenant (default true).
    pub enabled: bool,
    /// AI-handled requests per month; 0 = unlimited; omitted = the server's default.
    pub monthly_quota: Option<u32>,
}

/// A month's LLM usage.
#[utoipa::path(get, path = "/api/v1/usage/llm", tag = "usage", params(UsageQuery),
    responses((status = 200, body = UsageReport), (status = 400)), security(("api_key" = [])))]
pub async fn llm_usage(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let at = match &query.month {
        Some(month) => NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .map(|d| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN)))
            .map_err(|_| ApiError::bad_request("invalid_month", "month must be YYYY-MM"))?,
        None => Utc::now(),
    };
    let (from, to) = month_bounds(at);
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let totals = month_totals(&mut tx, from, to).await?;
    let settings: Option<Value> =
        sqlx::query_scalar("SELECT settings->'llm' FROM tenants WHERE id = sb_tenant()")
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    let settings = settings.unwrap_or(Value::Null);
    Ok(Json(UsageReport {
        month: from.format("%Y-%m").to_string(),
        monthly_quota: settings.get("monthly_quota").and_then(Value::as_u64),
        enabled: settings
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        totals,
    }))
}

/// Switch the LLM on or off for the tenant and set its monthly quota.
#[utoipa::path(put, path = "/api/v1/tenant/llm", tag = "usage", request_body = LlmSettingsBody,
    responses((status = 200, body = LlmSettingsBody), (status = 422)), security(("api_key" = [])))]
pub async fn put_llm_settings(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<LlmSettingsBody>,
) -> Result<Json<LlmSettingsBody>, ApiError> {
    let mut llm = json!({ "enabled": body.enabled });
    if let Some(q) = body.monthly_quota {
        llm["monthly_quota"] = json!(q);
    }
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    sqlx::query(
        "UPDATE tenants SET settings = jsonb_set(settings, '{llm}', $1) WHERE id = sb_tenant()",
    )
    .bind(&llm)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(body))
}
