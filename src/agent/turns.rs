//! The `agent_turn` job handler: the executor around the pure [`step`](super::machine::step).
//!
//! A claimed batch runs in one transaction: lock the jobs still leased to this worker, lock their
//! conversations (id order, so batches cannot deadlock), step each conversation's flow with its
//! message, then write new flow states (version-checked), the bot's replies, and delete the jobs,
//! and commit once. Replies are published to the bus after the commit. A conversation owned by a
//! human or waiting in the queue gets no bot reply: ownership is checked under the row lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long cached business variables are used.
const VARS_TTL: Duration = Duration::from_secs(10);

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::machine::{initial_state, step, FlowState, FlowStatus, StepContext, TurnInput};
use super::registry::{CompiledFlow, FlowRegistry};
use super::turn_writes::{events_of, write_results, TurnResult};
use crate::bus::{publish_logged, Bus, Event, EventKind};
use crate::db::set_tenant;
use crate::ids::{ChannelId, ConversationId, MessageId, TenantId};
use crate::inbox::MessageView;
use crate::jobs::{ClaimedJob, JobError, TxJobHandler};

/// Runs agent turns.
pub struct AgentTurns {
    vars: Mutex<HashMap<TenantId, (Instant, Value)>>,
    bus: Arc<dyn Bus>,
    flows: Arc<FlowRegistry>,
    default_flow: String,
}

impl AgentTurns {
    /// A handler over the given registry.
    pub fn new(bus: Arc<dyn Bus>, flows: Arc<FlowRegistry>, default_flow: String) -> Self {
        Self {
            vars: Mutex::new(HashMap::new()),
            bus,
            flows,
            default_flow,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    id: ConversationId,
    channel_id: ChannelId,
    status: String,
    owner_kind: String,
    flow_key: Option<String>,
    flow_version: Option<i32>,
    flow_state: Option<Value>,
    version: i64,
    last_seq: i64,
    channel_flow: Option<String>,
    message_id: Option<MessageId>,
    message_body: Option<String>,
}

#[async_trait::async_trait]
impl TxJobHandler for AgentTurns {
    fn kind(&self) -> &'static str {
        "agent_turn"
    }

    async fn run_in_tx(
        &self,
        conn: &mut PgConnection,
        jobs: &[ClaimedJob],
    ) -> Result<(Vec<(i64, JobError)>, Vec<Event>), sqlx::Error> {
        let mut by_tenant: BTreeMap<TenantId, Vec<&ClaimedJob>> = BTreeMap::new();
        for job in jobs {
            by_tenant.entry(job.tenant_id).or_default().push(job);
        }
        let mut failures = Vec::new();
        let mut events = Vec::new();
        for (tenant, jobs) in by_tenant {
            set_tenant(conn, tenant).await?;
            let (f, e) = self.run_tenant(conn, tenant, &jobs).await?;
            failures.extend(f);
            events.extend(e);
        }
        Ok((failures, events))
    }

    async fn after_commit(&self, events: Vec<Event>) {
        let replies = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::MessageCreated { .. }))
            .count();
        metrics::counter!("messages_out_total").increment(replies as u64);
        publish_logged(&self.bus, events).await;
    }
}

impl AgentTurns {
    /// Template variables describing the business; cached briefly (a rename shows within
    /// [`VARS_TTL`]) so a batch does not pay a query for them.
    async fn business_vars(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
    ) -> Result<Value, sqlx::Error> {
        if let Some(vars) = self.vars.lock().ok().and_then(|cache| {
            cache
                .get(&tenant)
                .filter(|(at, _)| at.elapsed() < VARS_TTL)
                .map(|(_, v)| v.clone())
        }) {
            return Ok(vars);
        }
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT name, timezone FROM tenants WHERE id = sb_tenant()")
                .fetch_optional(conn)
                .await?;
        let (name, timezone) = row.unwrap_or_default();
        let vars = json!({ "business": { "name": name, "timezone": timezone } });
        if let Ok(mut cache) = self.vars.lock() {
            cache.insert(tenant, (Instant::now(), vars.clone()));
        }
        Ok(vars)
    }

    async fn run_tenant(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        jobs: &[&ClaimedJob],
    ) -> Result<(Vec<(i64, JobError)>, Vec<Event>), sqlx::Error> {
        let mut failures = Vec::new();
        let mut inputs: Vec<(i64, ConversationId, MessageId)> = Vec::new();
        for job in jobs {
            match parse_payload(&job.payload) {
                Some((conv, msg)) => inputs.push((job.id, conv, msg)),
                None => failures.push((
                    job.id,
                    JobError::Permanent("malformed agent_turn payload".into()),
                )),
            }
        }
        let conversations = lock_conversations(conn, &inputs).await?;
        let texts: HashMap<MessageId, String> = conversations
            .values()
            .filter_map(|c| Some((c.message_id?, c.message_body.clone()?)))
            .collect();
        let vars = self.business_vars(conn, tenant).await?;
        let now = Utc::now();
        let mut done: Vec<i64> = Vec::new();
        let mut results: Vec<TurnResult> = Vec::new();
        for (job_id, conv_id, msg_id) in inputs {
            let (Some(conv), Some(text)) = (conversations.get(&conv_id), texts.get(&msg_id)) else {
                // Conversation or message deleted since: nothing to answer.
                done.push(job_id);
                continue;
            };
            match self.turn(conn, tenant, conv, text, &vars, now).await {
                Ok(Some(result)) => {
                    tracing::debug!(
                        %tenant, conversation = %conv_id, job = job_id, state = %result.state.state,
                        replies = result.replies.len(), "agent turn"
                    );
                    results.push(result);
                    done.push(job_id);
                }
                Ok(None) => {
                    tracing::debug!(%tenant, conversation = %conv_id, owner = %conv.owner_kind, "no bot turn: not owned by the bot");
                    done.push(job_id);
                }
                Err(error) => {
                    tracing::warn!(%tenant, conversation = %conv_id, job = job_id, %error, "agent turn failed");
                    failures.push((job_id, error));
                }
            }
        }
        write_results(conn, tenant, &results).await?;
        crate::jobs::in_tx::delete(conn, &done).await?;
        metrics::counter!("agent_turns_total").increment(done.len() as u64);
        Ok((failures, events_of(tenant, results)))
    }

    async fn turn(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        conv: &ConversationRow,
        text: &str,
        vars: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<TurnResult>, JobError> {
        if conv.owner_kind != "bot" || conv.status == "closed" {
            return Ok(None);
        }
        let flow = self.flow_for(conn, tenant, conv).await?;
        let state: FlowState = match (&conv.flow_state, conv.flow_key.as_deref()) {
            (Some(value), Some(key)) if key == flow.key => serde_json::from_value(value.clone())
                .map_err(|e| JobError::Permanent(format!("stored flow state unreadable: {e}")))?,
            _ => initial_state(&flow.flow),
        };
        let ctx = StepContext {
            now,
            prompts: &flow.prompts,
            vars,
        };
        let outcome = step(&flow.flow, &state, &TurnInput::Text(text.to_owned()), &ctx)
            .map_err(|e| JobError::Permanent(format!("flow {} failed: {e}", flow.key)))?;
        let (status, owner_kind) = match outcome.state.status {
            FlowStatus::Handoff => ("handoff", "none"),
            _ => ("open", "bot"),
        };
        let replies = outcome
            .replies
            .iter()
            .enumerate()
            .map(|(i, reply)| MessageView {
                id: MessageId::new(),
                conversation_id: conv.id,
                seq: conv.last_seq + 1 + i as i64,
                direction: "outbound".into(),
                author_kind: "bot".into(),
                author_agent_id: None,
                body: reply.text.clone(),
                content: json!({ "options": reply.options, "state": outcome.state.state }),
                delivery_status: "sent".into(),
                created_at: now,
            })
            .collect();
        Ok(Some(TurnResult {
            conversation: conv.id,
            old_version: conv.version,
            state: outcome.state,
            flow_key: flow.key.clone(),
            flow_version: flow.version,
            status,
            owner_kind,
            replies,
            channel_id: conv.channel_id,
        }))
    }

    async fn flow_for(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        conv: &ConversationRow,
    ) -> Result<Arc<CompiledFlow>, JobError> {
        let found = match (&conv.flow_key, conv.flow_version) {
            (Some(key), Some(version)) => self.flows.version(conn, tenant, key, version).await,
            _ => {
                let key = conv.channel_flow.as_deref().unwrap_or(&self.default_flow);
                self.flows.current(conn, tenant, key).await
            }
        };
        found.map_err(|e| match e {
            super::registry::RegistryError::Database(db) => JobError::Retryable(db.to_string()),
            other => JobError::Permanent(other.to_string()),
        })
    }
}

fn parse_payload(payload: &Value) -> Option<(ConversationId, MessageId)> {
    let conv = payload.get("conversation_id")?.as_str()?.parse().ok()?;
    let msg = payload.get("message_id")?.as_str()?.parse().ok()?;
    Some((conv, msg))
}

/// Lock the batch's conversations in id order (so batches cannot deadlock) and read each job's
/// message with it, in one statement.
async fn lock_conversations(
    conn: &mut PgConnection,
    inputs: &[(i64, ConversationId, MessageId)],
) -> Result<HashMap<ConversationId, ConversationRow>, sqlx::Error> {
    let conversations: Vec<ConversationId> = inputs.iter().map(|i| i.1).collect();
    let messages: Vec<MessageId> = inputs.iter().map(|i| i.2).collect();
    let rows: Vec<ConversationRow> = sqlx::query_as(
        "SELECT c.id, c.channel_id, c.status, c.owner_kind, c.flow_key, c.flow_version, c.flow_state, \
                c.version, c.last_seq, ch.settings->>'flow' AS channel_flow, \
                m.id AS message_id, m.body AS message_body \
         FROM unnest($1::uuid[], $2::uuid[]) AS k(conversation_id, message_id) \
         JOIN conversations c ON c.id = k.conversation_id \
         JOIN channels ch ON ch.id = c.channel_id \
         LEFT JOIN messages m ON m.id = k.message_id \
         ORDER BY c.id FOR UPDATE OF c",
    )
    .bind(&conversations)
    .bind(&messages)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}
