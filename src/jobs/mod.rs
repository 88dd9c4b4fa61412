//! The durable job queue in PostgreSQL.
//!
//! * Enqueue inside the business transaction that makes the job necessary (ingest queues the
//!   `agent_turn` jobs in the statement that stores the messages, one open turn per conversation:
//!   see `agent::turn_queue`).
//! * Workers claim batches with `FOR UPDATE SKIP LOCKED`. Short database-only jobs (agent turns)
//!   run inside the claiming transaction, the row lock being their lease ([`in_tx`]); others are
//!   leased until `locked_until`, and a worker that dies loses its lease and the job is taken over.
//! * A handler completes a job by deleting it in the same transaction as its effects
//!   ([`complete`]), so effect and completion commit together: exactly once, even across crashes.
//! * Jobs sharing an `ordering_key` (a conversation) run strictly one after another in id order.
//!   A job scheduled for later that has never run (a `wait` state's timer) does not hold back the
//!   jobs behind it until it is due; a job waiting to be retried does, so retries keep the order.
//! * Failures back off exponentially with full jitter; after `max_attempts` a job is dead-lettered
//!   with its last error and can be retried through the API.
//! * A janitor vacuums the queue every few seconds, since autovacuum wakes too rarely for it.

pub mod api;
pub mod in_tx;
pub mod janitor;
mod queue;
mod retry;
mod worker;

pub use in_tx::{TxJobHandler, TxOutcome};
pub use queue::{
    claim, complete, list_dead, requeue_expired, retry_dead, settle_failure, ClaimedJob, DeadJob,
    FailedAttempt,
};
pub use retry::backoff;
pub use worker::{Handlers, JobError, JobHandler, WorkerPool};

/// The kinds of job the system runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Run the agent for one inbound message.
    AgentTurn,
    /// A flow's `wait` state timed out.
    FlowTimeout,
    /// Post a tenant notice to the tenant's notification webhook.
    NoticeWebhook,
}

impl JobKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentTurn => "agent_turn",
            Self::FlowTimeout => "flow_timeout",
            Self::NoticeWebhook => "notice_webhook",
        }
    }

    /// Parse a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "agent_turn" => Some(Self::AgentTurn),
            "flow_timeout" => Some(Self::FlowTimeout),
            "notice_webhook" => Some(Self::NoticeWebhook),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JobKind;

    #[test]
    fn job_kinds_round_trip_through_their_names() {
        for kind in [
            JobKind::AgentTurn,
            JobKind::FlowTimeout,
            JobKind::NoticeWebhook,
        ] {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(JobKind::parse("nope"), None);
    }
}
