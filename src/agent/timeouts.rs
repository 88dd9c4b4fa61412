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

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::machine::{FlowState, FlowStatus, StepContext, StepOutcome, TurnInput};
use super::registry::{CompiledFlow, RegistryError};
use super::turn_writes::{bot_replies, persist, status_of, TurnResult};
use super::turns::{business_zone, AgentTurns, TenantInfo};
use crate::bus::{publish_logged, Event};
use crate::db::set_tenant;
use crate::ids::{ChannelId, ConversationId, TenantId};
use crate::jobs::{ClaimedJob, JobError, JobKind, TxJobHandler};

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

#[derive(sqlx::FromRow)]
struct Locked {
    id: ConversationId,
    channel_id: ChannelId,
    status: String,
    owner_kind: String,
    flow_key: Option<String>,
    flow_version: Option<i32>,
    flow_state: Option<Value>,
    version: i64,
    last_seq: i64,
}

/// A timer job's payload.
struct Timer {
    job: i64,
    conversation: ConversationId,
    token: u64,
}

#[async_trait::async_trait]
impl TxJobHandler for FlowTimeouts {
    fn kind(&self) -> &'static str {
        JobKind::FlowTimeout.as_str()
    }

    async fn run_in_tx(
        &self,
        conn: &mut PgConnection,
        jobs: &[ClaimedJob],
    ) -> Result<(Vec<(i64, JobError)>, Vec<Event>), sqlx::Error> {
        let mut failures = Vec::new();
        let mut events = Vec::new();
        for (tenant, jobs) in crate::jobs::in_tx::by_tenant(jobs) {
            set_tenant(conn, tenant).await?;
            let (f, e) = self.run_tenant(conn, tenant, &jobs).await?;
            failures.extend(f);
            events.extend(e);
        }
        Ok((failures, events))
    }

    async fn after_commit(&self, events: Vec<Event>) {
        publish_logged(&self.turns.bus, events).await;
    }
}

impl FlowTimeouts {
    async fn run_tenant(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        jobs: &[&ClaimedJob],
    ) -> Result<(Vec<(i64, JobError)>, Vec<Event>), sqlx::Error> {
        let mut failures = Vec::new();
        let mut done = Vec::new();
        let mut timers = Vec::new();
        for job in jobs {
            match parse_payload(job) {
                Some(timer) => timers.push(timer),
                None => failures.push((
                    job.id,
                    JobError::Permanent("malformed flow_timeout payload".into()),
                )),
            }
        }
        let ids: Vec<ConversationId> = timers.iter().map(|t| t.conversation).collect();
        let rows: Vec<Locked> = sqlx::query_as(
            "SELECT id, channel_id, status, owner_kind, flow_key, flow_version, flow_state, version, last_seq \
             FROM conversations WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let rows: HashMap<ConversationId, Locked> = rows.into_iter().map(|r| (r.id, r)).collect();
        let info = self.turns.tenant_info(conn, tenant).await?;
        let mut results = Vec::new();
        for timer in timers {
            let Some(conv) = rows.get(&timer.conversation) else {
                done.push(timer.job);
                continue;
            };
            match self.fire(conn, tenant, conv, timer.token, &info).await {
                Ok(result) => {
                    results.extend(result);
                    done.push(timer.job);
                }
                Err(error) => {
                    tracing::warn!(%tenant, conversation = %conv.id, job = timer.job, %error, "wait timeout failed");
                    failures.push((timer.job, error));
                }
            }
        }
        let events = persist(conn, tenant, results).await?;
        crate::jobs::in_tx::delete(conn, &done).await?;
        metrics::counter!("flow_timeouts_total").increment(done.len() as u64);
        Ok((failures, events))
    }

    /// Runs one timer; None when it is stale or the bot does not own the conversation.
    async fn fire(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        conv: &Locked,
        token: u64,
        info: &TenantInfo,
    ) -> Result<Option<TurnResult>, JobError> {
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
            .turns
            .flows
            .version(conn, tenant, key, version)
            .await
            .map_err(registry_error)?;
        let callees = self.turns.callees(conn, tenant, &flow, &state).await?;
        let now = Utc::now();
        let ctx = StepContext::new(now, &flow.prompts, &info.vars)
            .in_zone(business_zone(&info.vars))
            .calling(&callees);
        let outcome = self
            .turns
            .performer(conn, tenant, conv.id, info)
            .run(&flow.flow, &state, &TurnInput::Timeout { token }, &ctx)
            .await?;
        if outcome.state == state && outcome.replies.is_empty() {
            return Ok(None);
        }
        Ok(Some(result_of(conv, &flow, outcome, now)))
    }
}

fn registry_error(e: RegistryError) -> JobError {
    match e {
        RegistryError::Database(db) => JobError::Retryable(db.to_string()),
        other => JobError::Permanent(other.to_string()),
    }
}

fn parse_payload(job: &ClaimedJob) -> Option<Timer> {
    Some(Timer {
        job: job.id,
        conversation: job.payload.get("conversation_id")?.as_str()?.parse().ok()?,
        token: job.payload.get("token")?.as_u64()?,
    })
}

/// The writes a fired timer makes: the new state and the bot's replies.
fn result_of(
    conv: &Locked,
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
