//! Queue SQL: claim, complete, fail, and the dead-letter views.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::{backoff, JobError};
use crate::config::JobSettings;
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
    /// Attempts allowed for this job; None: the server's `jobs.max_attempts`.
    pub max_attempts: Option<i32>,
    /// Serialisation key.
    pub ordering_key: Option<ConversationId>,
}

/// Claim up to `limit` runnable jobs of the given kinds (system pool: spans tenants). A job is
/// runnable when queued and due, and no earlier job with its ordering key is pending. The scan
/// walks the `jobs_ready_leased` index in id order and stops at `limit`: agent turns are only
/// ever claimed by their transactional handler (which leases the turns it defers itself), and
/// that index leaves queued turns out, so a backlog of turns costs this claim nothing. Expired leases are put back in
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
           WHERE j.kind = ANY($1) AND j.kind <> 'agent_turn' \
             AND j.status = 'queued' AND j.run_at <= now() \
             AND (j.ordering_key IS NULL OR NOT EXISTS ( \
                  SELECT 1 FROM jobs e \
                  WHERE e.ordering_key = j.ordering_key AND e.id < j.id \
                    AND e.status IN ('queued', 'running') \
                  AND NOT (e.status = 'queued' AND e.attempts = 0 AND e.run_at > now()))) \
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

/// A failed attempt to settle.
#[derive(Debug, Clone, Copy)]
pub struct FailedAttempt<'a> {
    /// Job id.
    pub id: i64,
    /// The attempt that failed, from 1.
    pub attempt: i32,
    /// Whether the claim already counted this attempt in `attempts` (leased claims do; claims
    /// inside the running transaction do not).
    pub counted: bool,
    /// The worker that must still hold the lease (leased jobs); None when the caller holds the
    /// row lock itself.
    pub held_by: Option<&'a str>,
}

/// Settle a failed attempt: back to the queue after a jittered backoff, or dead-lettered when
/// its attempts are used up (at once for a permanent error). Logs and counts the outcome.
pub async fn settle_failure(
    conn: &mut PgConnection,
    failed: FailedAttempt<'_>,
    error: &JobError,
    settings: &JobSettings,
) -> Result<(), sqlx::Error> {
    let (delay, permanent) = match error {
        JobError::Retryable(_) => (
            backoff(
                failed.attempt,
                Duration::from_millis(settings.backoff_base_ms),
                Duration::from_millis(settings.backoff_max_ms),
            ),
            false,
        ),
        JobError::Permanent(_) => (Duration::ZERO, true),
    };
    let message: String = error.to_string().chars().take(2000).collect();
    let status: Option<String> = sqlx::query_scalar(
        "UPDATE jobs SET attempts = attempts + $5, \
            status = CASE WHEN $2 OR attempts + $5 >= coalesce(max_attempts, $7) \
                          THEN 'dead' ELSE 'queued' END, \
            run_at = now() + make_interval(secs => $3), last_error = $4, \
            locked_until = NULL, locked_by = NULL, updated_at = now() \
         WHERE id = $1 AND ($6::text IS NULL OR locked_by = $6) RETURNING status",
    )
    .bind(failed.id)
    .bind(permanent)
    .bind(delay.as_secs_f64())
    .bind(&message)
    .bind(if failed.counted { 0i32 } else { 1 })
    .bind(failed.held_by)
    .bind(settings.max_attempts.max(1))
    .fetch_optional(conn)
    .await?;
    let id = failed.id;
    match status.as_deref() {
        Some("dead") => {
            metrics::counter!("jobs_dead_total").increment(1);
            tracing::error!(job = id, error = %message, "job dead-lettered");
        }
        Some(_) => {
            metrics::counter!("jobs_failed_total").increment(1);
            tracing::warn!(job = id, error = %message, ?delay, "job failed; will retry");
        }
        // The lease was taken over meanwhile: the new holder settles it.
        None => tracing::warn!(job = id, "failed job no longer held by this worker"),
    }
    Ok(())
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
///
/// An agent turn that died *open* (see `agent::turn_queue`; only a batch rolled back as a whole
/// every attempt can leave one) comes back answering the message it starts at, and no longer
/// the ones that had queued behind it: turns queued after it died have answered the later
/// messages since, and the open turn could not tell those from its own, so it would answer them
/// twice. A turn answers a message at most once.
pub async fn retry_dead(conn: &mut PgConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = 0, run_at = now(), updated_at = now(), \
                payload = payload - 'open' \
         WHERE id = $1 AND status = 'dead'",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
