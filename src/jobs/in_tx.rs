//! Jobs claimed, run and completed in one transaction, for short jobs whose effects are database
//! writes (the agent's turns).
//!
//! The claim is `SELECT … FOR UPDATE SKIP LOCKED` without any update: the row lock is the lease.
//! The handler applies its effects and deletes its successful jobs in the same transaction, and
//! failures are recorded in it too, so one commit settles the whole batch. If the worker dies,
//! PostgreSQL aborts the transaction, the locks go with it and the jobs are immediately claimable
//! by another worker; nothing half-done survives. Compared with leasing (claim, commit, run,
//! commit) this saves a statement, a commit and an update of every job row per batch.
//!
//! The claim runs as the owner role (it spans tenants); the handler's work then runs under
//! `SET LOCAL ROLE <runtime role>`, so row-level security applies to it as to every tenant query.

use sqlx::{PgConnection, PgPool};

use super::{settle_failure, ClaimedJob, FailedAttempt, JobError};
use crate::bus::Event;
use crate::config::JobSettings;
use crate::db::quote_ident;

/// A handler for jobs run inside the claiming transaction.
#[async_trait::async_trait]
pub trait TxJobHandler: Send + Sync + 'static {
    /// The kind name it handles.
    fn kind(&self) -> &'static str;

    /// Apply the jobs' effects on `conn` (running as the runtime role) and delete the successful
    /// jobs with [`delete`]. Returns the failed jobs and the events to publish after commit.
    /// An `Err` rolls the whole batch back.
    async fn run_in_tx(
        &self,
        conn: &mut PgConnection,
        jobs: &[ClaimedJob],
    ) -> Result<(Vec<(i64, JobError)>, Vec<Event>), sqlx::Error>;

    /// Called after the batch committed, with the events `run_in_tx` returned.
    async fn after_commit(&self, events: Vec<Event>);
}

/// A claimed batch grouped by tenant (tenant order), so each group runs under one
/// `app.tenant_id`.
pub fn by_tenant(
    jobs: &[ClaimedJob],
) -> std::collections::BTreeMap<crate::ids::TenantId, Vec<&ClaimedJob>> {
    let mut groups: std::collections::BTreeMap<_, Vec<&ClaimedJob>> = Default::default();
    for job in jobs {
        groups.entry(job.tenant_id).or_default().push(job);
    }
    groups
}

/// Delete completed jobs (inside the claiming transaction, which holds their row locks).
pub async fn delete(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM jobs WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Claim, run and settle one batch. Returns how many jobs were claimed.
pub async fn run_batch(
    system: &PgPool,
    handler: &dyn TxJobHandler,
    settings: &JobSettings,
    runtime_role: &str,
) -> Result<usize, sqlx::Error> {
    let mut tx = system.begin().await?;
    let jobs = claim_locked(&mut tx, handler.kind().to_owned(), settings.batch_size).await?;
    if jobs.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let set_role = format!("SET LOCAL ROLE {}", quote_ident(runtime_role));
    sqlx::query(&set_role).execute(&mut *tx).await?;
    match handler.run_in_tx(&mut tx, &jobs).await {
        Ok((failures, events)) => {
            sqlx::query("RESET ROLE").execute(&mut *tx).await?;
            record_failures(&mut tx, &jobs, failures, settings).await?;
            tx.commit().await?;
            handler.after_commit(events).await;
        }
        Err(error) => {
            tx.rollback().await?;
            tracing::warn!(%error, jobs = jobs.len(), kind = handler.kind(), "job batch rolled back");
            let failures = jobs
                .iter()
                .map(|j| (j.id, JobError::Retryable(error.to_string())))
                .collect();
            let mut conn = system.acquire().await?;
            record_failures(&mut conn, &jobs, failures, settings).await?;
        }
    }
    Ok(jobs.len())
}

/// Lock up to `limit` runnable jobs of `kind`: queued, due, and first in line for their ordering
/// key. `attempts` in the result counts this attempt.
async fn claim_locked(
    conn: &mut PgConnection,
    kind: String,
    limit: i64,
) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    sqlx::query_as(
        "SELECT j.id, j.tenant_id, j.kind, j.payload, j.attempts + 1 AS attempts, j.max_attempts, \
                j.ordering_key \
         FROM jobs j \
         WHERE j.kind = $1 AND j.status = 'queued' AND j.run_at <= now() \
           AND (j.ordering_key IS NULL OR NOT EXISTS ( \
                SELECT 1 FROM jobs e \
                WHERE e.ordering_key = j.ordering_key AND e.id < j.id \
                  AND e.status IN ('queued', 'running') \
                  AND NOT (e.status = 'queued' AND e.attempts = 0 AND e.run_at > now()))) \
         ORDER BY j.id LIMIT $2 FOR UPDATE OF j SKIP LOCKED",
    )
    .bind(kind)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Settle each failed job of the batch (the caller holds their row locks).
async fn record_failures(
    conn: &mut PgConnection,
    jobs: &[ClaimedJob],
    failures: Vec<(i64, JobError)>,
    settings: &JobSettings,
) -> Result<(), sqlx::Error> {
    for (id, error) in failures {
        let attempt = jobs
            .iter()
            .find(|j| j.id == id)
            .map(|j| j.attempts)
            .unwrap_or(1);
        let failed = FailedAttempt {
            id,
            attempt,
            counted: false,
            held_by: None,
        };
        settle_failure(conn, failed, &error, settings).await?;
    }
    Ok(())
}
