//! The tenant's AI usage over REST: `GET /api/v1/usage/llm?month=YYYY-MM` (requests, tokens and
//! cost of a calendar month, with the tenant's quota). The settings themselves are served by
//! `llm_settings_api`.
//!
//! Invariants: everything runs in the caller's tenant transaction (row-level security).

use axum::{extract::State, routing::get, Json, Router};
use chrono::{NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::llm_usage::{month_bounds, month_totals, MonthTotals};
use crate::app::AppState;
use crate::http::{ApiError, ApiQuery, TenantAuth};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/usage/llm", get(llm_usage))
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
