//! SQL for the `flows` table: a tenant's versioned flow sources (draft, published, archived),
//! and the row shapes the API returns.
//!
//! Every function runs on a connection inside a tenant transaction, so row-level security
//! confines it to that tenant. Version numbers are `max + 1` per key, race-free because writers of
//! a key first take its transaction-scoped advisory lock ([`lock_key`]).
//! Published and archived sources are immutable (a trigger in the database enforces it).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::validate::FlowProblem;
use crate::ids::TenantId;

/// One stored version, with its source.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct VersionRow {
    /// Flow key (the YAML `id`).
    pub key: String,
    /// Version number, from 1.
    pub version: i32,
    /// draft | published | archived.
    pub status: String,
    /// The YAML.
    pub source: String,
    /// When this version was saved.
    pub created_at: DateTime<Utc>,
    /// When it was published, if ever.
    pub published_at: Option<DateTime<Utc>>,
}

impl VersionRow {
    /// The API view of this version, with its validation problems.
    pub fn with_problems(self, problems: Vec<FlowProblem>) -> FlowVersion {
        FlowVersion {
            row: self,
            problems,
        }
    }
}

/// One version as the API shows it: the stored version plus its validation problems.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlowVersion {
    /// The stored version.
    #[serde(flatten)]
    pub row: VersionRow,
    /// Validation problems: `{path, message, severity}`, severity `error` or `warning`.
    #[schema(value_type = Vec<Object>)]
    pub problems: Vec<FlowProblem>,
}

/// One stored version without its source.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct VersionSummary {
    /// Flow key (the YAML `id`).
    pub key: String,
    /// Version number, from 1.
    pub version: i32,
    /// draft | published | archived.
    pub status: String,
    /// When this version was saved.
    pub created_at: DateTime<Utc>,
    /// When it was published, if ever.
    pub published_at: Option<DateTime<Utc>>,
}

/// One flow key of the tenant.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FlowSummary {
    /// Flow key (the YAML `id`).
    pub key: String,
    /// Highest version number.
    pub latest_version: i32,
    /// The version new conversations start on, if any is published.
    pub published_version: Option<i32>,
    /// Last save or publish.
    pub updated_at: DateTime<Utc>,
}

/// What is stored under a key.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyState {
    /// Whether the key has a draft or published version (it is not deleted).
    pub live: bool,
    /// Highest published version.
    pub max_published: Option<i32>,
}

const COLUMNS: &str = "flow_key AS key, version, status, source, created_at, published_at";
const SUMMARY_COLUMNS: &str = "flow_key AS key, version, status, created_at, published_at";

/// Whether `key` is live and its highest published version.
pub async fn key_state(conn: &mut PgConnection, key: &str) -> Result<KeyState, sqlx::Error> {
    let row: (Option<bool>, Option<i32>) = sqlx::query_as(
        "SELECT bool_or(status <> 'archived'), max(version) FILTER (WHERE status = 'published') \
         FROM flows WHERE flow_key = $1",
    )
    .bind(key)
    .fetch_one(conn)
    .await?;
    Ok(KeyState {
        live: row.0.unwrap_or(false),
        max_published: row.1,
    })
}

/// Insert the next version of `key` (`max + 1`, or 1); call [`lock_key`] first.
pub async fn insert_next(
    conn: &mut PgConnection,
    tenant: TenantId,
    key: &str,
    source: &str,
    published: bool,
) -> Result<VersionRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO flows (id, tenant_id, flow_key, version, status, source, published_at) \
         SELECT $1, $2, $3, coalesce(max(version), 0) + 1, \
                CASE WHEN $5 THEN 'published' ELSE 'draft' END, $4, CASE WHEN $5 THEN now() END \
         FROM flows WHERE flow_key = $3 \
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(key)
    .bind(source)
    .bind(published)
    .fetch_one(conn)
    .await
}

/// One version with its source.
pub async fn get(
    conn: &mut PgConnection,
    key: &str,
    version: i32,
) -> Result<Option<VersionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM flows WHERE flow_key = $1 AND version = $2"
    ))
    .bind(key)
    .bind(version)
    .fetch_optional(conn)
    .await
}

/// The highest version that is not archived.
pub async fn latest_live(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Option<VersionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM flows WHERE flow_key = $1 AND status <> 'archived' \
         ORDER BY version DESC LIMIT 1"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// Every version of `key`, newest first.
pub async fn versions(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Vec<VersionSummary>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM flows WHERE flow_key = $1 ORDER BY version DESC"
    ))
    .bind(key)
    .fetch_all(conn)
    .await
}

/// One entry per live key, by key.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<FlowSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT flow_key AS key, max(version) AS latest_version, \
                max(version) FILTER (WHERE status = 'published') AS published_version, \
                max(greatest(created_at, coalesce(published_at, created_at))) AS updated_at \
         FROM flows GROUP BY flow_key HAVING bool_or(status <> 'archived') ORDER BY flow_key",
    )
    .fetch_all(conn)
    .await
}

/// Mark a draft published; `None` when no draft of that version exists.
pub async fn publish(
    conn: &mut PgConnection,
    key: &str,
    version: i32,
) -> Result<Option<VersionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE flows SET status = 'published', published_at = now() \
         WHERE flow_key = $1 AND version = $2 AND status = 'draft' RETURNING {COLUMNS}"
    ))
    .bind(key)
    .bind(version)
    .fetch_optional(conn)
    .await
}

/// Archive every version of `key`; the number of rows changed.
pub async fn archive_all(conn: &mut PgConnection, key: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE flows SET status = 'archived' WHERE flow_key = $1 AND status <> 'archived'",
    )
    .bind(key)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Serialise writers of one key for the rest of the transaction, so `max + 1` is race-free.
pub async fn lock_key(conn: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(sb_tenant()::text || '/' || $1, 0))",
    )
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}
