//! The `agent_turn` job handler: the executor around the pure [`step`](super::machine::step).
//!
//! A claimed batch runs in one transaction: lock the jobs still leased to this worker, lock their
//! conversations (id order, so batches cannot deadlock), step each conversation's flow with its
//! message, then write new flow states (version-checked), the bot's replies, and delete the jobs,
//! and commit once. Replies are published to the bus after the commit. A conversation owned by a
//! human or waiting in the queue gets no bot reply: ownership is checked under the row lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::machine::{initial_state, step, FlowState, FlowStatus, StepContext, TurnInput};
use super::registry::{CompiledFlow, FlowRegistry};
use crate::bus::{publish_logged, Bus, Event, EventKind};
use crate::db::set_tenant;
use crate::ids::{ChannelId, ConversationId, MessageId, TenantId};
use crate::inbox::MessageView;
use crate::jobs::{ClaimedJob, JobError, TxJobHandler};

/// Runs agent turns.
pub struct AgentTurns {
    bus: Arc<dyn Bus>,
    flows: Arc<FlowRegistry>,
    default_flow: String,
}

impl AgentTurns {
    /// A handler over the given registry.
    pub fn new(bus: Arc<dyn Bus>, flows: Arc<FlowRegistry>, default_flow: String) -> Self {
        Self {
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
}

/// What one turn decided.
struct TurnResult {
    conversation: ConversationId,
    old_version: i64,
    state: FlowState,
    flow_key: String,
    flow_version: i32,
    status: &'static str,
    owner_kind: &'static str,
    replies: Vec<MessageView>,
    channel_id: ChannelId,
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
        let texts = load_texts(conn, &inputs).await?;
        let vars = business_vars(conn).await?;
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

async fn lock_conversations(
    conn: &mut PgConnection,
    inputs: &[(i64, ConversationId, MessageId)],
) -> Result<HashMap<ConversationId, ConversationRow>, sqlx::Error> {
    let ids: Vec<ConversationId> = inputs.iter().map(|i| i.1).collect();
    let rows: Vec<ConversationRow> = sqlx::query_as(
        "SELECT c.id, c.channel_id, c.status, c.owner_kind, c.flow_key, c.flow_version, c.flow_state, \
                c.version, c.last_seq, ch.settings->>'flow' AS channel_flow \
         FROM conversations c JOIN channels ch ON ch.id = c.channel_id \
         WHERE c.id = ANY($1) ORDER BY c.id FOR UPDATE OF c",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

async fn load_texts(
    conn: &mut PgConnection,
    inputs: &[(i64, ConversationId, MessageId)],
) -> Result<HashMap<MessageId, String>, sqlx::Error> {
    let ids: Vec<MessageId> = inputs.iter().map(|i| i.2).collect();
    let rows: Vec<(MessageId, String)> =
        sqlx::query_as("SELECT id, body FROM messages WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

async fn business_vars(conn: &mut PgConnection) -> Result<Value, sqlx::Error> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT name, timezone FROM tenants WHERE id = sb_tenant()")
            .fetch_optional(conn)
            .await?;
    let (name, timezone) = row.unwrap_or_default();
    Ok(json!({ "business": { "name": name, "timezone": timezone } }))
}

async fn write_results(
    conn: &mut PgConnection,
    tenant: TenantId,
    results: &[TurnResult],
) -> Result<(), sqlx::Error> {
    if results.is_empty() {
        return Ok(());
    }
    let ids: Vec<ConversationId> = results.iter().map(|r| r.conversation).collect();
    let versions: Vec<i64> = results.iter().map(|r| r.old_version).collect();
    let states: Vec<Value> = results.iter().map(|r| json!(r.state)).collect();
    let keys: Vec<&str> = results.iter().map(|r| r.flow_key.as_str()).collect();
    let flow_versions: Vec<i32> = results.iter().map(|r| r.flow_version).collect();
    let statuses: Vec<&str> = results.iter().map(|r| r.status).collect();
    let owners: Vec<&str> = results.iter().map(|r| r.owner_kind).collect();
    let last_seqs: Vec<i64> = results
        .iter()
        .map(|r| r.replies.last().map(|m| m.seq).unwrap_or(0))
        .collect();
    let updated: u64 = sqlx::query(
        "UPDATE conversations c SET flow_state = t.state, flow_key = t.flow_key, \
            flow_version = t.flow_version, version = c.version + 1, status = t.status, \
            owner_kind = t.owner_kind, last_seq = greatest(c.last_seq, t.last_seq), \
            last_message_at = CASE WHEN t.last_seq > c.last_seq THEN now() ELSE c.last_message_at END, \
            updated_at = now() \
         FROM unnest($1::uuid[], $2::int8[], $3::jsonb[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::int8[]) \
              AS t(id, version, state, flow_key, flow_version, status, owner_kind, last_seq) \
         WHERE c.id = t.id AND c.version = t.version",
    )
    .bind(&ids)
    .bind(&versions)
    .bind(&states)
    .bind(&keys)
    .bind(&flow_versions)
    .bind(&statuses)
    .bind(&owners)
    .bind(&last_seqs)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated != results.len() as u64 {
        // Rows are locked by this transaction, so a mismatch means a bug, not a race: abort.
        return Err(sqlx::Error::Protocol(
            "conversation version changed under lock".into(),
        ));
    }
    insert_replies(conn, tenant, results).await
}

async fn insert_replies(
    conn: &mut PgConnection,
    tenant: TenantId,
    results: &[TurnResult],
) -> Result<(), sqlx::Error> {
    let replies: Vec<(&MessageView, ChannelId)> = results
        .iter()
        .flat_map(|r| r.replies.iter().map(move |m| (m, r.channel_id)))
        .collect();
    if replies.is_empty() {
        return Ok(());
    }
    let ids: Vec<MessageId> = replies.iter().map(|(m, _)| m.id).collect();
    let convs: Vec<ConversationId> = replies.iter().map(|(m, _)| m.conversation_id).collect();
    let channels: Vec<ChannelId> = replies.iter().map(|(_, c)| *c).collect();
    let seqs: Vec<i64> = replies.iter().map(|(m, _)| m.seq).collect();
    let bodies: Vec<&str> = replies.iter().map(|(m, _)| m.body.as_str()).collect();
    let contents: Vec<Value> = replies.iter().map(|(m, _)| m.content.clone()).collect();
    let created: Vec<DateTime<Utc>> = replies.iter().map(|(m, _)| m.created_at).collect();
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, channel_id, seq, direction, author_kind, \
                               body, content, delivery_status, created_at) \
         SELECT id, $1, conversation_id, channel_id, seq, 'outbound', 'bot', body, content, 'sent', created_at \
         FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::int8[], $6::text[], $7::jsonb[], $8::timestamptz[]) \
              AS t(id, conversation_id, channel_id, seq, body, content, created_at)",
    )
    .bind(tenant)
    .bind(&ids)
    .bind(&convs)
    .bind(&channels)
    .bind(&seqs)
    .bind(&bodies)
    .bind(&contents)
    .bind(&created)
    .execute(conn)
    .await?;
    Ok(())
}

fn events_of(tenant: TenantId, results: Vec<TurnResult>) -> Vec<Event> {
    let mut events = Vec::new();
    for result in results {
        for message in result.replies {
            events.push(Event {
                tenant_id: tenant,
                conversation_id: result.conversation,
                kind: EventKind::MessageCreated { message },
            });
        }
        if result.status == "handoff" {
            events.push(Event {
                tenant_id: tenant,
                conversation_id: result.conversation,
                kind: EventKind::ConversationUpdated {
                    status: result.status.into(),
                    owner_kind: result.owner_kind.into(),
                    owner_agent_id: None,
                },
            });
        }
    }
    events
}
