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
//! The claim runs as the owner role (it spans tenants); the batch is then split by tenant and each
//! group is handed to the handler under the runtime role with `app.tenant_id` set (both set in one
//! statement for the first group), so row-level security applies to it as to every tenant query;
//! each group's failures are settled in its own scope.
//!
//! A job that turns out to need slow work (a call to another service) must not hold the batch's
//! locks while it waits: the handler [`lease`]s it in the same transaction (status `running`,
//! held by a named holder until a deadline) and gets it back in
//! [`TxJobHandler::after_commit`], to finish outside the transaction and complete it with
//! [`complete_leased`]. The queue's ordering rule keeps the conversation's later jobs waiting
//! meanwhile, and an expired lease puts the job back in the queue as for any dead worker.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use super::{settle_failure, ClaimedJob, FailedAttempt, JobError, JobKind};
use crate::bus::Event;
use crate::config::JobSettings;

/// A handler for jobs run inside the claiming transaction.
#[async_trait::async_trait]
pub trait TxJobHandler: Send + Sync + 'static {
    /// The kind name it handles.
    fn kind(&self) -> &'static str;

    /// Apply the effects of one tenant's jobs on `conn` (running as the runtime role, confined to
    /// `tenant`), delete the successful jobs (e.g. with [`delete`]) and [`lease`] the ones to
    /// finish outside the transaction. An `Err` rolls the whole batch back.
    async fn run_in_tx(
        &self,
        conn: &mut PgConnection,
        tenant: crate::ids::TenantId,
        jobs: &[&ClaimedJob],
    ) -> Result<TxOutcome, sqlx::Error>;

    /// Called after the batch committed, with the events to publish and the jobs leased for
    /// work outside the transaction.
    async fn after_commit(&self, events: Vec<Event>, leased: Vec<ClaimedJob>);

    /// Least time between two empty claims of this kind by one worker (zero: look whenever the
    /// worker wakes). Kinds whose jobs are scheduled for later need not be claimed after every
    /// batch of another kind.
    fn min_interval(&self) -> Duration {
        Duration::ZERO
    }
}

/// What a batch decided.
#[derive(Debug, Default)]
pub struct TxOutcome {
    /// Failed jobs, settled in the same transaction.
    pub failures: Vec<(i64, JobError)>,
    /// Events to publish after commit.
    pub events: Vec<Event>,
    /// Ids of the jobs leased (with [`lease`]) to finish outside the transaction.
    pub leased: Vec<i64>,
    /// New payloads the handler wrote for leased jobs, for the copies handed back to it.
    pub payloads: Vec<(i64, serde_json::Value)>,
}

impl TxOutcome {
    /// Adds another outcome's parts to this one.
    pub fn extend(&mut self, other: TxOutcome) {
        self.failures.extend(other.failures);
        self.events.extend(other.events);
        self.leased.extend(other.leased);
        self.payloads.extend(other.payloads);
    }
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

/// Lease jobs held by this transaction to `holder` until `lease` from now, counting the attempt,
/// so they can be finished after the transaction commits (see the module documentation).
pub async fn lease(
    conn: &mut PgConnection,
    ids: &[i64],
    holder: &str,
    lease: Duration,
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, \
                locked_until = now() + make_interval(secs => $3), locked_by = $2, updated_at = now() \
         WHERE id = ANY($1)",
    )
    .bind(ids)
    .bind(holder)
    .bind(lease.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// Complete a leased job inside the transaction that applies its effects. False when `holder`
/// no longer holds it (its lease expired and the job went back to the queue): the caller must
/// then roll back, since another attempt will apply the effects.
pub async fn complete_leased(
    conn: &mut PgConnection,
    id: i64,
    holder: &str,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM jobs WHERE id = $1 AND status = 'running' AND locked_by = $2")
            .bind(id)
            .bind(holder)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
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
    match run_groups(&mut tx, handler, &jobs, settings, runtime_role).await {
        Ok(outcome) => {
            tx.commit().await?;
            let leased = jobs
                .iter()
                .filter(|j| outcome.leased.contains(&j.id))
                .map(|j| with_payload(j, &outcome.payloads))
                .collect();
            handler.after_commit(outcome.events, leased).await;
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

/// A copy of `job` with the payload its handler rewrote, if it did.
fn with_payload(job: &ClaimedJob, payloads: &[(i64, serde_json::Value)]) -> ClaimedJob {
    let mut job = job.clone();
    if let Some((_, payload)) = payloads.iter().find(|(id, _)| *id == job.id) {
        job.payload = payload.clone();
    }
    job
}

/// Runs each tenant's jobs in its scope and settles its failures there.
async fn run_groups(
    conn: &mut PgConnection,
    handler: &dyn TxJobHandler,
    jobs: &[ClaimedJob],
    settings: &JobSettings,
    runtime_role: &str,
) -> Result<TxOutcome, sqlx::Error> {
    let mut outcome = TxOutcome::default();
    for (i, (tenant, group)) in by_tenant(jobs).into_iter().enumerate() {
        if i == 0 {
            sqlx::query(
                "SELECT set_config('role', $1, true), set_config('app.tenant_id', $2, true)",
            )
            .bind(runtime_role)
            .bind(tenant.0.to_string())
            .execute(&mut *conn)
            .await?;
        } else {
            crate::db::set_tenant(conn, tenant).await?;
        }
        let mut done = handler.run_in_tx(conn, tenant, &group).await?;
        record_failures(conn, jobs, std::mem::take(&mut done.failures), settings).await?;
        outcome.extend(done);
    }
    Ok(outcome)
}

/// Lock up to `limit` runnable jobs of `kind`: queued, due, and first in line for their ordering
/// key. `attempts` in the result counts this attempt.
async fn claim_locked(
    conn: &mut PgConnection,
    kind: String,
    limit: i64,
) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    // Agent turns walk `jobs_ready`; any other kind walks `jobs_ready_leased`, which queued
    // agent turns never enter (the literal predicate lets the planner use it).
    let sql = if kind == JobKind::AgentTurn.as_str() {
        CLAIM_TURNS
    } else {
        CLAIM_OTHERS
    };
    sqlx::query_as(sql)
        .bind(kind)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// The claim of one kind's runnable jobs; `$extra` narrows the scan to a partial index.
macro_rules! claim_sql {
    ($extra:literal) => {
        concat!(
            "SELECT j.id, j.tenant_id, j.kind, j.payload, j.attempts + 1 AS attempts, \
                    j.max_attempts, j.ordering_key \
             FROM jobs j \
             WHERE j.kind = $1 ",
            $extra,
            " AND j.status = 'queued' AND j.run_at <= now() \
               AND (j.ordering_key IS NULL OR NOT EXISTS ( \
                    SELECT 1 FROM jobs e \
                    WHERE e.ordering_key = j.ordering_key AND e.id < j.id \
                      AND e.status IN ('queued', 'running') \
                      AND NOT (e.status = 'queued' AND e.attempts = 0 AND e.run_at > now()))) \
             ORDER BY j.id LIMIT $2 FOR UPDATE OF j SKIP LOCKED"
        )
    };
}

const CLAIM_TURNS: &str = claim_sql!("");
const CLAIM_OTHERS: &str = claim_sql!("AND j.kind <> 'agent_turn'");

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
