//! Worker loops: claim a batch, hand each kind's jobs to its handler, record failures.
//! Leased handlers ([`JobHandler`]) claim and commit, then run; transactional handlers
//! ([`TxJobHandler`]) run inside the claiming transaction. A loop sleeps only when it found
//! nothing; ingest wakes it through a [`Notify`] so a new job starts within milliseconds, and a
//! poll interval catches jobs enqueued by other nodes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::in_tx::{self, TxJobHandler};
use super::{claim, requeue_expired, settle_failure, ClaimedJob, FailedAttempt};
use crate::config::JobSettings;

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying (database hiccup, provider 5xx...).
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help: dead-letter now.
    #[error("{0}")]
    Permanent(String),
}

/// Least time between two empty claims of the leased kinds by one worker.
const LEASED_INTERVAL: Duration = Duration::from_millis(100);

/// Runs the jobs of one kind.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The kind name it handles.
    fn kind(&self) -> &'static str;
    /// Run a batch. Successful jobs must be completed with `jobs::complete` inside the transaction
    /// that applies their effects. Returns the failed jobs.
    async fn run(&self, jobs: Vec<ClaimedJob>, worker: &str) -> Vec<(i64, JobError)>;
}

/// The worker loops of one process.
pub struct WorkerPool;

/// What the workers run.
#[derive(Clone, Default)]
pub struct Handlers {
    /// Handlers of leased jobs (claim, commit, run, complete).
    pub leased: Vec<Arc<dyn JobHandler>>,
    /// Handlers run inside the claiming transaction.
    pub in_tx: Vec<Arc<dyn TxJobHandler>>,
    /// Role transactional handlers run as (row-level security applies to it).
    pub runtime_role: String,
}

struct Loop {
    system: PgPool,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    in_tx: Vec<Arc<dyn TxJobHandler>>,
    runtime_role: String,
    settings: JobSettings,
    wake: Arc<Notify>,
    stop: CancellationToken,
    name: String,
}

impl WorkerPool {
    /// Start `settings.workers` loops. They finish their current batch and exit when `stop` fires.
    pub fn start(
        system: PgPool,
        handlers: Handlers,
        settings: JobSettings,
        wake: Arc<Notify>,
        stop: CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let Handlers {
            leased,
            in_tx,
            runtime_role,
        } = handlers;
        let handlers: HashMap<&'static str, Arc<dyn JobHandler>> =
            leased.into_iter().map(|h| (h.kind(), h)).collect();
        let node = format!(
            "{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().to_string()[..8]
        );
        (0..settings.workers)
            .map(|n| {
                let worker = Loop {
                    system: system.clone(),
                    handlers: handlers.clone(),
                    in_tx: in_tx.clone(),
                    runtime_role: runtime_role.clone(),
                    settings: settings.clone(),
                    wake: wake.clone(),
                    stop: stop.clone(),
                    name: format!("{node}-{n}"),
                };
                tokio::spawn(worker.run())
            })
            .collect()
    }
}

impl Loop {
    async fn run(self) {
        let kinds: Vec<&str> = self.handlers.keys().copied().collect();
        let lease = Duration::from_secs(self.settings.lease_secs.max(1));
        let poll = Duration::from_millis(self.settings.poll_interval_ms.max(10));
        // Every loop checks for expired leases at a quarter of the lease length, so a dead
        // worker's jobs are back in the queue at most 1.25 leases after it died.
        let reap_every = lease / 4;
        let mut last_reap = Instant::now();
        let mut next_due = vec![Instant::now(); self.in_tx.len()];
        // Leased kinds (notice deliveries) are not latency-critical: after an empty claim they
        // are looked for again only after LEASED_INTERVAL, not after every batch of turns.
        let mut leased_due = Instant::now();
        while !self.stop.is_cancelled() {
            if last_reap.elapsed() >= reap_every {
                last_reap = Instant::now();
                match requeue_expired(&self.system).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(jobs = n, "requeued jobs whose lease expired"),
                    Err(error) => tracing::warn!(%error, "requeueing expired leases failed"),
                }
            }
            let (mut claimed, mut full) = self.run_in_tx_handlers(&mut next_due).await;
            if !kinds.is_empty() && Instant::now() >= leased_due {
                leased_due = Instant::now() + LEASED_INTERVAL;
                match claim(
                    &self.system,
                    &kinds,
                    self.settings.batch_size,
                    lease,
                    &self.name,
                )
                .await
                {
                    Ok(jobs) if !jobs.is_empty() => {
                        leased_due = Instant::now();
                        full |= jobs.len() as i64 >= self.settings.batch_size;
                        claimed += jobs.len();
                        metrics::counter!("jobs_claimed_total").increment(jobs.len() as u64);
                        self.process(jobs).await;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "claiming jobs failed"),
                }
            }
            if claimed > 0 {
                // Finishing may have unblocked a conversation's next job: look again at once.
                // A full batch may have left more behind: let a sleeping sibling look too. (A
                // batch that was not full took everything claimable; new jobs wake a worker.)
                if full {
                    self.wake.notify_one();
                }
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = self.stop.cancelled() => break,
            }
        }
    }

    /// Runs one batch of each transactional handler that is due: a handler with a
    /// [`TxJobHandler::min_interval`] is asked again only after that long, unless its last batch
    /// found work. Returns the jobs claimed and whether any batch was full.
    async fn run_in_tx_handlers(&self, next_due: &mut [Instant]) -> (usize, bool) {
        let mut claimed = 0;
        let mut full = false;
        for (handler, due) in self.in_tx.iter().zip(next_due.iter_mut()) {
            let now = Instant::now();
            if now < *due {
                continue;
            }
            *due = now + handler.min_interval();
            match in_tx::run_batch(
                &self.system,
                handler.as_ref(),
                &self.settings,
                &self.runtime_role,
            )
            .await
            {
                Ok(n) => {
                    if n > 0 {
                        *due = now;
                    }
                    full |= n as i64 >= self.settings.batch_size;
                    claimed += n;
                    metrics::counter!("jobs_claimed_total").increment(n as u64);
                }
                Err(error) => tracing::warn!(%error, kind = handler.kind(), "running jobs failed"),
            }
        }
        (claimed, full)
    }

    async fn process(&self, jobs: Vec<ClaimedJob>) {
        let mut by_kind: HashMap<String, Vec<ClaimedJob>> = HashMap::new();
        for job in jobs {
            by_kind.entry(job.kind.clone()).or_default().push(job);
        }
        for (kind, jobs) in by_kind {
            let attempts: HashMap<i64, i32> = jobs.iter().map(|j| (j.id, j.attempts)).collect();
            let failures = match self.handlers.get(kind.as_str()) {
                Some(handler) => handler.run(jobs, &self.name).await,
                None => jobs
                    .iter()
                    .map(|j| {
                        (
                            j.id,
                            JobError::Permanent(format!("no handler for kind {kind}")),
                        )
                    })
                    .collect(),
            };
            for (id, error) in failures {
                self.record_failure(id, attempts.get(&id).copied().unwrap_or(1), error)
                    .await;
            }
        }
    }

    async fn record_failure(&self, id: i64, attempt: i32, error: JobError) {
        let failed = FailedAttempt {
            id,
            attempt,
            counted: true,
            held_by: Some(&self.name),
        };
        let settled = async {
            let mut conn = self.system.acquire().await?;
            settle_failure(&mut conn, failed, &error, &self.settings).await
        };
        if let Err(db) = settled.await {
            tracing::error!(job = id, error = %db, "recording job failure failed");
        }
    }
}
