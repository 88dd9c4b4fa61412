//! Notice rows and the notification webhook setting. Every function runs in the caller's tenant
//! transaction; row-level security confines it to that tenant, and the `sb_tenant()` filters
//! are there for the index, not for safety.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::ids::NoticeId;

/// A notice as the API and the webhook show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Notice {
    /// Id (receivers deduplicate deliveries on it).
    pub id: NoticeId,
    /// What it is about, e.g. `llm_quota_exceeded`.
    pub kind: String,
    /// The occurrence, e.g. the month `2026-11`: one notice per kind and period.
    pub period: String,
    /// One line.
    pub title: String,
    /// What happened and what it means.
    pub body: String,
    /// The facts behind the text (for a quota: `quota`, `month`, `resets_at`).
    #[schema(value_type = Object)]
    pub detail: Value,
    /// Raised at.
    pub created_at: DateTime<Utc>,
    /// First acknowledged at; null until then.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// When the notification webhook accepted it; null without a webhook or until then.
    pub delivered_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, kind, period, title, body, detail, created_at, acknowledged_at, delivered_at";

/// Notices newest first, after the `(created_at, id)` of the previous page's last one, only the
/// unacknowledged ones when asked.
pub async fn list(
    conn: &mut PgConnection,
    unacknowledged: bool,
    before: Option<(DateTime<Utc>, NoticeId)>,
    limit: i64,
) -> Result<Vec<Notice>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenant_notices \
         WHERE tenant_id = sb_tenant() AND (NOT $1 OR acknowledged_at IS NULL) \
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(unacknowledged)
    .bind(before.map(|b| b.0))
    .bind(before.map(|b| b.1))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// One notice.
pub async fn get(conn: &mut PgConnection, id: NoticeId) -> Result<Option<Notice>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenant_notices WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Acknowledge a notice (the first acknowledgement's time is kept). None when no such notice.
pub async fn acknowledge(
    conn: &mut PgConnection,
    id: NoticeId,
) -> Result<Option<Notice>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE tenant_notices SET acknowledged_at = coalesce(acknowledged_at, now()) \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Record that the notification webhook accepted the notice.
pub async fn mark_delivered(conn: &mut PgConnection, id: NoticeId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenant_notices SET delivered_at = now() WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The tenant's notification webhook URL, if any.
pub async fn webhook_url(conn: &mut PgConnection) -> Result<Option<String>, sqlx::Error> {
    let url: Option<Option<String>> = sqlx::query_scalar(
        "SELECT settings #>> '{notifications,webhook_url}' FROM tenants WHERE id = sb_tenant()",
    )
    .fetch_optional(conn)
    .await?;
    Ok(url.flatten())
}

/// Set (or with None clear) the tenant's notification webhook URL. False when the tenant is gone.
pub async fn set_webhook_url(
    conn: &mut PgConnection,
    url: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE tenants SET settings = jsonb_set(settings, '{notifications}', \
             coalesce(settings->'notifications', '{}'::jsonb) || $1) \
         WHERE id = sb_tenant()",
    )
    .bind(json!({ "webhook_url": url }))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
