//! `wait` state timeouts: scheduling a `flow_timeout` job when a turn stops at a wait state, and
//! the job's handler, which runs the flow with [`TurnInput::Timeout`] and persists the outcome
//! exactly like an agent turn (through `turn_writes`).
//!
//! Invariants: a timer is a job with `run_at` = now + the wait's `timeout_secs`, its ordering
//! key the conversation (so it runs strictly between that conversation's agent turns, never
//! beside one) and an idempotency key per (conversation, token), so it is scheduled once; the
//! handler runs inside the claiming transaction with the conversation row locked; a timer whose
//! token no longer matches (the customer replied, went back, restarted, or a person took over)
//! completes without writing or saying anything; a scheduled timer that has not run yet does
//! not hold back the conversation's later jobs (see `jobs::queue::claim`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::machine::{FlowState, FlowStatus, StepContext, StepOutcome, TurnInput};
use super::registry::{CompiledFlow, RegistryError};
use super::turn_writes::{bot_replies, persist, status_of, TurnResult};
use super::turns::{
    business_zone, load_conversations, AgentTurns, ConversationRow, Prepared, TenantInfo, Turn,
    DEFERRED_LEASE,
};
use crate::bus::{publish_logged, Event};
use crate::db::Db;
use crate::ids::{ConversationId, MessageId, TenantId};
use crate::jobs::{ClaimedJob, JobError, JobKind, TxJobHandler, TxOutcome};

/// Schedules the timer of every result that stopped at a wait state (in the turn's transaction).
pub(super) async fn schedule(
    conn: &mut PgConnection,
    tenant: TenantId,
    results: &[TurnResult],
) -> Result<(), sqlx::Error> {
    let timers: Vec<(&TurnResult, &super::effect::WaitTimer)> = results
        .iter()
        .filter_map(|r| r.timer.as_ref().map(|t| (r, t)))
        .collect();
    if timers.is_empty() {
        return Ok(());
    }
    let convs: Vec<ConversationId> = timers.iter().map(|(r, _)| r.conversation).collect();
    let payloads: Vec<Value> = timers
        .iter()
        .map(
            |(r, t)| json!({"conversation_id": r.conversation, "state": t.state, "token": t.token}),
        )
        .collect();
    let delays: Vec<f64> = timers.iter().map(|(_, t)| t.after_secs as f64).collect();
    let keys: Vec<String> = timers
        .iter()
        .map(|(r, t)| format!("{}:{}", r.conversation, t.token))
        .collect();
    sqlx::query(
        "INSERT INTO jobs (tenant_id, kind, payload, ordering_key, run_at, idempotency_key) \
         SELECT $1, $2, t.payload, t.conversation_id, now() + make_interval(secs => t.delay), t.key \
         FROM unnest($3::uuid[], $4::jsonb[], $5::float8[], $6::text[]) \
              AS t(conversation_id, payload, delay, key) \
         ON CONFLICT (tenant_id, kind, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
    )
    .bind(tenant)
    .bind(JobKind::FlowTimeout.as_str())
    .bind(&convs)
    .bind(&payloads)
    .bind(&delays)
    .bind(&keys)
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs `flow_timeout` jobs.
pub struct FlowTimeouts {
    turns: Arc<AgentTurns>,
}

impl FlowTimeouts {
    /// A handler sharing the agent's flows, LLM and webhook client.
    pub fn new(turns: Arc<AgentTurns>) -> Self {
        Self { turns }
    }
}

/// A timer job's payload.
pub(super) struct Timer {
    pub(super) job: i64,
    pub(super) conversation: ConversationId,
    pub(super) token: u64,
}

#[async_trait::async_trait]
impl TxJobHandler for FlowTimeouts {
    fn kind(&self) -> &'static str {
        JobKind::FlowTimeout.as_str()
    }

    async fn run_in_tx(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        jobs: &[&ClaimedJob],
    ) -> Result<TxOutcome, sqlx::Error> {
        self.run_tenant(conn, tenant, jobs).await
    }

    async fn after_commit(&self, events: Vec<Event>, leased: Vec<ClaimedJob>) {
        self.turns.hand_over(leased);
        publish_logged(&self.turns.bus, events).await;
    }

    /// Timers are due seconds after they are set: a tenth of a second late is fine, and saves
    /// an empty claim after every batch of agent turns.
    fn min_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(100)
    }
}

impl FlowTimeouts {
    async fn run_tenant(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        jobs: &[&ClaimedJob],
    ) -> Result<TxOutcome, sqlx::Error> {
        let mut out = TxOutcome::default();
        let mut done = Vec::new();
        let mut timers = Vec::new();
        for job in jobs {
            match parse_payload(job) {
                Some(timer) => timers.push(timer),
                None => out.failures.push((
                    job.id,
                    JobError::Permanent("malformed flow_timeout payload".into()),
                )),
            }
        }
        let keys: Vec<(ConversationId, Option<MessageId>)> =
            timers.iter().map(|t| (t.conversation, None)).collect();
        let rows = load_conversations(conn, &keys, true).await?;
        let info = self.turns.tenant_info(conn, tenant).await?;
        let now = Utc::now();
        let mut results = Vec::new();
        for timer in timers {
            let Some(conv) = rows.get(&timer.conversation) else {
                done.push(timer.job);
                continue;
            };
            match self
                .turns
                .timeout_turn(conn, tenant, conv, timer.token, &info, now, None)
                .await
            {
                Ok(Turn::Done(result)) => {
                    results.push(*result);
                    done.push(timer.job);
                }
                Ok(Turn::Skipped) => done.push(timer.job),
                Ok(Turn::Deferred) => out.leased.push(timer.job),
                Err(error) => {
                    tracing::warn!(%tenant, conversation = %conv.id, job = timer.job, %error, "wait timeout failed");
                    out.failures.push((timer.job, error));
                }
            }
        }
        out.events = persist(conn, tenant, results, &done).await?;
        crate::jobs::in_tx::lease(conn, &out.leased, &self.turns.node, DEFERRED_LEASE).await?;
        metrics::counter!("flow_timeouts_total").increment(done.len() as u64);
        Ok(out)
    }
}

impl AgentTurns {
    /// Runs one timer (see [`AgentTurns::message_turn`] for `calls`); skipped when it is stale
    /// or the bot does not own the conversation.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn timeout_turn(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        conv: &ConversationRow,
        token: u64,
        info: &TenantInfo,
        now: DateTime<Utc>,
        calls: Option<&Db>,
    ) -> Result<Turn, JobError> {
        match self.prepare_timeout(conn, tenant, conv, token).await? {
            Some(prepared) => {
                self.decide_timeout(tenant, conv, token, &prepared, info, now, calls)
                    .await
            }
            None => Ok(Turn::Skipped),
        }
    }

    /// The flow and state a timer fires in; None when the timer is stale (the customer
    /// replied, went back, restarted) or the bot does not own the conversation.
    pub(super) async fn prepare_timeout(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        conv: &ConversationRow,
        token: u64,
    ) -> Result<Option<Prepared>, JobError> {
        let (Some(key), Some(version), Some(stored)) =
            (&conv.flow_key, conv.flow_version, &conv.flow_state)
        else {
            return Ok(None);
        };
        if conv.owner_kind != "bot" || conv.status == "closed" {
            return Ok(None);
        }
        let state: FlowState = serde_json::from_value(stored.clone())
            .map_err(|e| JobError::Permanent(format!("stored flow state unreadable: {e}")))?;
        if state.entries != token || state.status != FlowStatus::Active {
            return Ok(None);
        }
        let flow = self
            .flows
            .version(conn, tenant, key, version)
            .await
            .map_err(registry_error)?;
        let callees = self.callees(conn, tenant, &flow, &state).await?;
        Ok(Some(Prepared {
            flow,
            state,
            callees,
        }))
    }

    /// Steps the flow with the timeout (see [`AgentTurns::message_turn`] for `calls`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn decide_timeout(
        &self,
        tenant: TenantId,
        conv: &ConversationRow,
        token: u64,
        prepared: &Prepared,
        info: &TenantInfo,
        now: DateTime<Utc>,
        calls: Option<&Db>,
    ) -> Result<Turn, JobError> {
        let Prepared {
            flow,
            state,
            callees,
        } = prepared;
        let overridden = self.overridden_prompts(tenant, info, flow);
        let prompts = overridden.as_deref().unwrap_or(&flow.prompts);
        let ctx = StepContext::new(now, prompts, &info.vars)
            .in_zone(business_zone(&info.vars))
            .calling(callees);
        let input = TurnInput::Timeout { token };
        let Some((outcome, _drafts)) = self
            .run_input(tenant, conv, info, (flow, state), &input, &ctx, calls)
            .await?
        else {
            return Ok(Turn::Deferred);
        };
        if outcome.state == *state && outcome.replies.is_empty() {
            return Ok(Turn::Skipped);
        }
        Ok(Turn::Done(Box::new(result_of(conv, flow, outcome, now))))
    }
}

fn registry_error(e: RegistryError) -> JobError {
    match e {
        RegistryError::Database(db) => JobError::Retryable(db.to_string()),
        other => JobError::Permanent(other.to_string()),
    }
}

pub(super) fn parse_payload(job: &ClaimedJob) -> Option<Timer> {
    Some(Timer {
        job: job.id,
        conversation: job.payload.get("conversation_id")?.as_str()?.parse().ok()?,
        token: job.payload.get("token")?.as_u64()?,
    })
}

/// The writes a fired timer makes: the new state and the bot's replies.
fn result_of(
    conv: &ConversationRow,
    flow: &CompiledFlow,
    outcome: StepOutcome,
    now: DateTime<Utc>,
) -> TurnResult {
    let (status, owner_kind) = status_of(outcome.state.status);
    let replies = bot_replies(
        conv.id,
        conv.last_seq,
        &outcome,
        &json!({"timeout": true}),
        now,
    );
    TurnResult {
        conversation: conv.id,
        old_version: conv.version,
        flow_key: flow.key.clone(),
        flow_version: flow.version,
        status,
        owner_kind,
        replies,
        channel_id: conv.channel_id,
        timer: outcome.timer,
        route: outcome.handoff.as_deref().map(|reason| {
            super::turns::route_request(&flow.flow, &outcome.state, reason, &Default::default())
        }),
        state: outcome.state,
    }
}
