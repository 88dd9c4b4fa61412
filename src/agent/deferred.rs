//! Turns finished outside the batch transaction: agent turns and wait timeouts that must call
//! another service (read the message with the LLM, call a webhook, ask the LLM for a reply).
//!
//! The batch that met such a turn leased its job to this node (see `jobs::in_tx::lease`) and
//! handed it here after its commit. Each one is finished in three steps, none of which holds a
//! lock while waiting on the network:
//!
//! 1. read the conversation, its flow and the message in a short read-only transaction;
//! 2. run the turn with the calls (their usage and the webhook secret are written in short
//!    transactions of their own: a call that happened is recorded whatever becomes of the turn);
//! 3. in a short write transaction: lock the conversation, check that it has not changed since
//!    step 1 (else start again from step 1, at most [`MAX_RACES`] times), complete the leased job
//!    (if the lease was lost the job belongs to another attempt: roll back), write the outcome
//!    with its replies numbered after the conversation's latest message, commit, publish.
//!
//! Invariants: the conversation's later jobs wait behind the leased one (the queue's ordering
//! rule), so turns stay in order; a turn's effects commit exactly once, together with the job's
//! completion; a failure settles the job like any other (backoff, then dead letter); the whole
//! turn is bounded by [`DEADLINE`], shorter than the lease; at shutdown the turns not yet started
//! are released to the queue at once instead of waiting for their lease to expire.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::turn_writes::{persist, TurnResult};
use super::turns::{load_conversations, AgentTurns, ConversationRow, Turn, DEFERRED_LEASE};
use crate::bus::publish_logged;
use crate::config::JobSettings;
use crate::db::Db;
use crate::ids::{ConversationId, MessageId};
use crate::jobs::in_tx::complete_leased;
use crate::jobs::{settle_failure, ClaimedJob, FailedAttempt, JobError, JobKind};

/// Longest a deferred turn may take, all its calls included (shorter than its lease).
pub const DEADLINE: Duration = Duration::from_secs(DEFERRED_LEASE.as_secs() - 15);

/// How many times a turn starts over because its conversation changed during its calls.
pub const MAX_RACES: usize = 3;

/// Deferred turns run at once on one node.
const CONCURRENCY: usize = 256;

/// What a leased job asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// Answer an inbound message.
    Message(ConversationId, MessageId),
    /// Fire a wait state's timer.
    Timeout(ConversationId, u64),
}

impl Pending {
    fn of(job: &ClaimedJob) -> Option<Self> {
        match JobKind::parse(&job.kind)? {
            JobKind::AgentTurn => {
                let (conversation, message) = super::turns::parse_payload(&job.payload)?;
                Some(Self::Message(conversation, message))
            }
            JobKind::FlowTimeout => {
                let timer = super::timeouts::parse_payload(job)?;
                Some(Self::Timeout(timer.conversation, timer.token))
            }
            JobKind::NoticeWebhook => None,
        }
    }

    fn conversation(self) -> ConversationId {
        match self {
            Self::Message(c, _) | Self::Timeout(c, _) => c,
        }
    }

    fn message(self) -> Option<MessageId> {
        match self {
            Self::Message(_, m) => Some(m),
            Self::Timeout(..) => None,
        }
    }
}

/// How one attempt at finishing ended.
enum Finished {
    /// Written (or nothing to write).
    Done,
    /// The conversation changed during the calls: start over.
    Raced,
}

/// What the runner's tasks share.
struct Runner {
    turns: Arc<AgentTurns>,
    db: Db,
    settings: JobSettings,
    wake: Arc<Notify>,
    stop: CancellationToken,
    permits: Semaphore,
}

impl AgentTurns {
    /// Starts this node's runner of deferred turns; it stops when `stop` fires, after the turns
    /// in progress.
    pub fn start_deferred(
        self: &Arc<Self>,
        db: Db,
        settings: JobSettings,
        wake: Arc<Notify>,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        let (tx, rx) = mpsc::unbounded_channel();
        if self.deferred.set(tx).is_err() {
            tracing::error!("the deferred-turn runner was started twice; the second one idles");
        }
        let runner = Arc::new(Runner {
            turns: self.clone(),
            db,
            settings,
            wake,
            stop,
            permits: Semaphore::new(CONCURRENCY),
        });
        tokio::spawn(runner.run(rx))
    }

    /// Hands jobs leased by a committed batch to the runner.
    pub(super) fn hand_over(&self, leased: Vec<ClaimedJob>) {
        if leased.is_empty() {
            return;
        }
        metrics::counter!("agent_turns_deferred_total").increment(leased.len() as u64);
        let Some(runner) = self.deferred.get() else {
            tracing::error!(
                jobs = leased.len(),
                "no runner for deferred turns; they run again when their lease expires"
            );
            return;
        };
        for job in leased {
            if runner.send(job).is_err() {
                tracing::warn!(
                    "the deferred-turn runner stopped; the job runs again when its lease expires"
                );
            }
        }
    }
}

impl Runner {
    async fn run(self: Arc<Self>, mut jobs: mpsc::UnboundedReceiver<ClaimedJob>) {
        let tracker = TaskTracker::new();
        loop {
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => {
                        let runner = self.clone();
                        tracker.spawn(async move { runner.finish(job).await });
                    }
                    None => break,
                },
                _ = self.stop.cancelled() => break,
            }
        }
        jobs.close();
        while let Some(job) = jobs.recv().await {
            self.release(&job).await;
        }
        tracker.close();
        tracker.wait().await;
    }

    /// Finishes one leased job and settles it.
    async fn finish(&self, job: ClaimedJob) {
        let permit = tokio::select! {
            permit = self.permits.acquire() => permit,
            _ = self.stop.cancelled() => {
                self.release(&job).await;
                return;
            }
        };
        let Ok(_permit) = permit else { return };
        let outcome = match Pending::of(&job) {
            Some(pending) => tokio::time::timeout(DEADLINE, self.finish_turn(&job, pending))
                .await
                .unwrap_or_else(|_| {
                    Err(JobError::Retryable(format!(
                        "the turn's calls took longer than {} s",
                        DEADLINE.as_secs()
                    )))
                }),
            None => Err(JobError::Permanent(format!(
                "malformed {} payload",
                job.kind
            ))),
        };
        if let Err(error) = outcome {
            tracing::warn!(tenant = %job.tenant_id, job = job.id, %error, "deferred turn failed");
            self.settle(&job, &error).await;
        }
        // The conversation's next job may now be runnable.
        self.wake.notify_one();
    }

    async fn finish_turn(&self, job: &ClaimedJob, pending: Pending) -> Result<(), JobError> {
        for _ in 0..MAX_RACES {
            match self.try_finish(job, pending).await? {
                Finished::Done => return Ok(()),
                Finished::Raced => {
                    metrics::counter!("agent_turns_raced_total").increment(1);
                    tracing::debug!(
                        job = job.id,
                        "conversation changed during the turn's calls; starting over"
                    );
                }
            }
        }
        Err(JobError::Retryable(
            "the conversation kept changing during the turn's calls".into(),
        ))
    }

    /// Steps 1 to 3 of the module documentation, once.
    async fn try_finish(&self, job: &ClaimedJob, pending: Pending) -> Result<Finished, JobError> {
        let tenant = job.tenant_id;
        let turns = &self.turns;
        let now = Utc::now();
        let mut tx = self.db.tenant_tx(tenant).await.map_err(retryable)?;
        let keys = [(pending.conversation(), pending.message())];
        let mut rows = load_conversations(&mut tx, &keys, false)
            .await
            .map_err(retryable)?;
        let conv = rows.remove(&pending.conversation());
        let info = turns
            .tenant_info(&mut tx, tenant)
            .await
            .map_err(retryable)?;
        let prepared = match (&conv, pending) {
            (Some(conv), Pending::Message(..)) => turns.prepare(&mut tx, tenant, conv).await?,
            (Some(conv), Pending::Timeout(_, token)) => {
                turns.prepare_timeout(&mut tx, tenant, conv, token).await?
            }
            (None, _) => None,
        };
        tx.commit().await.map_err(retryable)?;
        let calls = Some(&self.db);
        let turn = match (&conv, prepared, pending) {
            (Some(conv), Some(prepared), Pending::Message(..)) => match &conv.message_body {
                Some(text) => {
                    turns
                        .decide(tenant, conv, text, &prepared, &info, now, calls)
                        .await?
                }
                None => Turn::Skipped,
            },
            (Some(conv), Some(prepared), Pending::Timeout(_, token)) => {
                turns
                    .decide_timeout(tenant, conv, token, &prepared, &info, now, calls)
                    .await?
            }
            _ => Turn::Skipped,
        };
        self.write(job, conv.as_ref(), turn).await
    }

    /// Step 3: the outcome and the job's completion, in one short transaction.
    async fn write(
        &self,
        job: &ClaimedJob,
        read: Option<&ConversationRow>,
        turn: Turn,
    ) -> Result<Finished, JobError> {
        let tenant = job.tenant_id;
        let mut tx = self.db.tenant_tx(tenant).await.map_err(retryable)?;
        let current: Option<(i64, i64)> = match read {
            Some(conv) => sqlx::query_as(
                "SELECT version, last_seq FROM conversations WHERE id = $1 FOR UPDATE",
            )
            .bind(conv.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(retryable)?,
            None => None,
        };
        if let (Some(conv), Some((version, _))) = (read, current) {
            if version != conv.version {
                return Ok(Finished::Raced);
            }
        }
        if !complete_leased(&mut tx, job.id, &self.turns.node)
            .await
            .map_err(retryable)?
        {
            tracing::warn!(%tenant, job = job.id, "deferred turn lost its lease; another attempt answers");
            return Ok(Finished::Done);
        }
        let results = match (turn, current) {
            (Turn::Done(mut result), Some((_, last_seq))) => {
                renumber(&mut result, last_seq);
                vec![*result]
            }
            (Turn::Deferred, _) => {
                return Err(JobError::Permanent(
                    "a turn finished outside its batch asked to be deferred again".into(),
                ))
            }
            _ => Vec::new(),
        };
        let events = persist(&mut tx, tenant, results, &[])
            .await
            .map_err(retryable)?;
        tx.commit().await.map_err(retryable)?;
        metrics::counter!("agent_turns_total").increment(1);
        let replies = events
            .iter()
            .filter(|e| matches!(e.kind, crate::bus::EventKind::MessageCreated { .. }))
            .count();
        metrics::counter!("messages_out_total").increment(replies as u64);
        publish_logged(&self.turns.bus, events).await;
        Ok(Finished::Done)
    }

    /// Records a failed attempt (backoff or dead letter), if the lease is still ours.
    async fn settle(&self, job: &ClaimedJob, error: &JobError) {
        let failed = FailedAttempt {
            id: job.id,
            attempt: job.attempts,
            counted: true,
            held_by: Some(&self.turns.node),
        };
        let settled = async {
            let mut tx = self.db.tenant_tx(job.tenant_id).await?;
            settle_failure(&mut tx, failed, error, &self.settings).await?;
            tx.commit().await
        };
        if let Err(db) = settled.await {
            tracing::error!(job = job.id, error = %db, "recording a deferred turn's failure failed; its lease will expire");
        }
    }

    /// Gives a job not started back to the queue (its attempt uncounted).
    async fn release(&self, job: &ClaimedJob) {
        let released = async {
            let mut tx = self.db.tenant_tx(job.tenant_id).await?;
            sqlx::query(
                "UPDATE jobs SET status = 'queued', attempts = greatest(attempts - 1, 0), \
                        locked_by = NULL, locked_until = NULL, updated_at = now() \
                 WHERE id = $1 AND status = 'running' AND locked_by = $2",
            )
            .bind(job.id)
            .bind(&self.turns.node)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        if let Err(error) = released.await {
            tracing::warn!(job = job.id, %error, "releasing a deferred turn failed; its lease will expire");
        }
    }
}

/// Numbers a result's replies after the conversation's latest message (messages may have
/// arrived during the calls).
fn renumber(result: &mut TurnResult, last_seq: i64) {
    for (i, reply) in result.replies.iter_mut().enumerate() {
        reply.seq = last_seq + 1 + i as i64;
    }
}

fn retryable(error: sqlx::Error) -> JobError {
    JobError::Retryable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(kind: &str, payload: serde_json::Value) -> ClaimedJob {
        ClaimedJob {
            id: 7,
            tenant_id: crate::ids::TenantId(uuid::Uuid::nil()),
            kind: kind.into(),
            payload,
            attempts: 1,
            max_attempts: Some(5),
            ordering_key: None,
        }
    }

    #[test]
    fn pending_work_is_read_from_both_job_kinds() {
        let conv = uuid::Uuid::now_v7();
        let msg = uuid::Uuid::now_v7();
        let turn = job(
            "agent_turn",
            serde_json::json!({"conversation_id": conv, "message_id": msg}),
        );
        assert_eq!(
            Pending::of(&turn),
            Some(Pending::Message(ConversationId(conv), MessageId(msg)))
        );
        let timer = job(
            "flow_timeout",
            serde_json::json!({"conversation_id": conv, "state": "w", "token": 4}),
        );
        assert_eq!(
            Pending::of(&timer),
            Some(Pending::Timeout(ConversationId(conv), 4))
        );
        assert_eq!(Pending::of(&job("agent_turn", serde_json::json!({}))), None);
        assert_eq!(Pending::of(&job("other", serde_json::json!({}))), None);
    }

    #[test]
    fn the_deadline_leaves_room_before_the_lease_expires() {
        assert!(DEADLINE + Duration::from_secs(10) <= DEFERRED_LEASE);
    }
}
