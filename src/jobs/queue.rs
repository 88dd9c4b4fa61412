//! Queue SQL: claim, complete, fail, and the dead-letter views.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::ids::{ConversationId, TenantId};

/// A job leased to a worker.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    /// Job id.
    pub id: i64,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Kind name.
    pub kind: String,
    /// Kind-specific data.
    pub payload: Value,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Serialisation key.
    pub ordering_key: Option<ConversationId>,
}

/// Claim up to `limit` runnable jobs of the given kinds (system pool: spans tenants). A job is
/// runnable when queued and due, and no earlier job with its ordering key is pending. The scan
/// walks the `jobs_ready` index in id order and stops at `limit`; expired leases are put back in
/// the queue separately by [`requeue_expired`], which keeps this query free of an `OR` that would
/// force a scan of every queued job.
pub async fn claim(
    system: &PgPool,
    kinds: &[&str],
    limit: i64,
    lease: Duration,
    worker: &str,
) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    sqlx::query_as(
        "WITH ready AS ( \
           SELECT j.id FROM jobs j \
           WHERE j.kind = ANY($1) \
             AND j.status = 'queued' AND j.run_at <= now() \
             AND (j.ordering_key IS NULL OR NOT EXISTS ( \
                  SELECT 1 FROM jobs e \
                  WHERE e.ordering_key = j.ordering_key AND e.id < j.id \
                    AND e.status IN ('queued', 'running'))) \
           ORDER BY j.id LIMIT $2 FOR UPDATE SKIP LOCKED) \
         UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1, \
                locked_until = now() + make_interval(secs => $3), locked_by = $4, updated_at = now() \
         FROM ready WHERE jobs.id = ready.id \
         RETURNING jobs.id, jobs.tenant_id, jobs.kind, jobs.payload, jobs.attempts, \
                   jobs.max_attempts, jobs.ordering_key",
    )
    .bind(kinds)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .bind(worker)
    .fetch_all(system)
    .await
    .map(|mut jobs: Vec<ClaimedJob>| {
        jobs.sort_by_key(|j| j.id);
        jobs
    })
}

/// Put jobs whose lease expired (their worker died or stalled) back in the queue. Returns how
/// many were requeued. Cheap: it reads the `jobs_expired_leases` partial index.
pub async fn requeue_expired(system: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'queued', locked_by = NULL, locked_until = NULL, \
                last_error = coalesce(last_error, 'lease expired'), updated_at = now() \
         WHERE status = 'running' AND locked_until < now()",
    )
    .execute(system)
    .await?;
    Ok(done.rows_affected())
}

/// Complete jobs by deleting them, inside the transaction that applied their effects. Returns the
/// ids this worker still held: effects must be applied only for those (a job whose lease was
/// taken over by another worker is not returned).
pub async fn complete(
    conn: &mut PgConnection,
    ids: &[i64],
    worker: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM jobs WHERE id = ANY($1) AND status = 'running' AND locked_by = $2 RETURNING id",
    )
    .bind(ids)
    .bind(worker)
    .fetch_all(conn)
    .await
}

/// Record a failed attempt: back to the queue after `delay`, or dead when attempts are used up.
/// Returns true when the job was dead-lettered.
pub async fn fail(
    system: &PgPool,
    id: i64,
    worker: &str,
    error: &str,
    delay: Duration,
) -> Result<bool, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar(
        "UPDATE jobs SET \
            status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
            run_at = now() + make_interval(secs => $3), last_error = $4, \
            locked_until = NULL, locked_by = NULL, updated_at = now() \
         WHERE id = $1 AND locked_by = $2 RETURNING status",
    )
    .bind(id)
    .bind(worker)
    .bind(delay.as_secs_f64())
    .bind(error.chars().take(2000).collect::<String>())
    .fetch_optional(system)
    .await?;
    Ok(status.as_deref() == Some("dead"))
}

/// A dead-lettered job as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadJob {
    /// Job id.
    pub id: i64,
    /// Kind name.
    pub kind: String,
    /// Kind-specific data.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Attempts made.
    pub attempts: i32,
    /// The last failure.
    pub last_error: Option<String>,
    /// Enqueued at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Dead letters of the current tenant, newest first, before `before` when given.
pub async fn list_dead(
    conn: &mut PgConnection,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeadJob>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, payload, attempts, last_error, created_at, updated_at FROM jobs \
         WHERE status = 'dead' AND ($1::int8 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Put a dead job back in the queue with a fresh attempt budget. False when no such dead job.
pub async fn retry_dead(conn: &mut PgConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = 0, run_at = now(), updated_at = now() \
         WHERE id = $1 AND status = 'dead'",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
