//! Persisting a batch of agent turns: new flow states (version-checked), the bot's replies, and
//! the events to publish once the transaction commits. Runs inside the claiming transaction.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::effect::WaitTimer;
use super::machine::{FlowState, FlowStatus, StepOutcome};
use crate::bus::{Event, EventKind};
use crate::ids::{ChannelId, ConversationId, MessageId, TenantId};
use crate::inbox::MessageView;
use crate::routing::{route_conversation, RouteRequest, RouteTarget, RoutingError};

/// What one turn decided.
pub(super) struct TurnResult {
    pub(super) conversation: ConversationId,
    pub(super) old_version: i64,
    pub(super) state: FlowState,
    pub(super) flow_key: String,
    pub(super) flow_version: i32,
    pub(super) status: &'static str,
    pub(super) owner_kind: &'static str,
    pub(super) replies: Vec<MessageView>,
    pub(super) channel_id: ChannelId,
    /// Where to route the conversation, when this turn handed it over.
    pub(super) route: Option<RouteRequest>,
    /// The timer of the `wait` state the turn stopped at.
    pub(super) timer: Option<WaitTimer>,
}

impl TurnResult {
    /// This turn followed by `next`, a later turn of the same conversation, as one write:
    /// `next`'s state and timer, both turns' replies, from this turn's version.
    pub(super) fn then(self, mut next: TurnResult) -> TurnResult {
        let mut replies = self.replies;
        replies.append(&mut next.replies);
        next.replies = replies;
        next.old_version = self.old_version;
        next.route = next.route.or(self.route);
        next
    }
}

/// Routes every handed-over conversation of the batch (after `write_results`, which bumps the
/// versions routing checks) in team-key order, so concurrent batches lock teams in one order.
/// Gives the decisions' events; a refused request is logged and leaves the conversation waiting
/// unassigned, as before routing existed.
pub(super) async fn route_results(
    conn: &mut PgConnection,
    tenant: TenantId,
    results: &[TurnResult],
) -> Result<Vec<Event>, sqlx::Error> {
    let mut routed: Vec<(&RouteRequest, ConversationId)> = results
        .iter()
        .filter_map(|r| r.route.as_ref().map(|req| (req, r.conversation)))
        .collect();
    routed.sort_by(|a, b| team_key(a.0).cmp(team_key(b.0)).then(a.1.cmp(&b.1)));
    let mut events = Vec::new();
    for (req, conversation) in routed {
        match route_conversation(conn, tenant, conversation, req).await {
            Ok(decision) => {
                tracing::info!(%tenant, %conversation, target = ?decision.target, team = ?decision.team, reason = %decision.reason, "routed");
                events.push(decision.event(tenant));
            }
            Err(RoutingError::Database(e)) => return Err(e),
            Err(error) => {
                tracing::warn!(%tenant, %conversation, %error, "routing refused; the conversation waits unassigned");
            }
        }
    }
    Ok(events)
}

fn team_key(req: &RouteRequest) -> &str {
    match &req.target {
        RouteTarget::Team(key) => key,
        RouteTarget::Triage => "triage",
        RouteTarget::Bot => "",
    }
}

/// Conversation `status` and `owner_kind` after a step that left the flow in `status`.
pub(super) fn status_of(status: FlowStatus) -> (&'static str, &'static str) {
    match status {
        FlowStatus::Handoff => ("handoff", "none"),
        _ => ("open", "bot"),
    }
}

/// The step's replies as outbound bot messages numbered after `last_seq`; each message's content
/// carries its options, the state and the fields of `extra` (a JSON object).
pub(super) fn bot_replies(
    conversation: ConversationId,
    last_seq: i64,
    outcome: &StepOutcome,
    extra: &Value,
    now: DateTime<Utc>,
) -> Vec<MessageView> {
    outcome
        .replies
        .iter()
        .enumerate()
        .map(|(i, reply)| {
            let mut content = json!({"options": reply.options, "state": outcome.state.state});
            if let (Value::Object(c), Value::Object(more)) = (&mut content, extra) {
                c.extend(more.clone());
            }
            MessageView {
                id: MessageId::new(),
                conversation_id: conversation,
                seq: last_seq + 1 + i as i64,
                direction: "outbound".into(),
                author_kind: "bot".into(),
                author_agent_id: None,
                body: reply.text.clone(),
                content,
                delivery_status: "sent".into(),
                created_at: now,
            }
        })
        .collect()
}

/// Everything a batch of turns writes (states, replies and the completion of the jobs `done`,
/// then timers and routing of handed-over conversations), giving the events to publish after
/// commit.
pub(super) async fn persist(
    conn: &mut PgConnection,
    tenant: TenantId,
    results: Vec<TurnResult>,
    done: &[i64],
) -> Result<Vec<Event>, sqlx::Error> {
    write_results(conn, tenant, &results, done).await?;
    let routed = route_results(conn, tenant, &results).await?;
    let mut events = events_of(tenant, results);
    events.extend(routed);
    Ok(events)
}

/// New states (version-checked) and replies, and the deletion of the completed jobs `done`, in
/// one statement; then the timers of results that stopped at a wait state.
pub(super) async fn write_results(
    conn: &mut PgConnection,
    tenant: TenantId,
    results: &[TurnResult],
    done: &[i64],
) -> Result<(), sqlx::Error> {
    if results.is_empty() {
        return crate::jobs::in_tx::delete(conn, done).await;
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
    let replies = Replies::of(results);
    let updated: i64 = sqlx::query_scalar(WRITE_RESULTS)
        .bind(&ids)
        .bind(&versions)
        .bind(&states)
        .bind(&keys)
        .bind(&flow_versions)
        .bind(&statuses)
        .bind(&owners)
        .bind(&last_seqs)
        .bind(tenant)
        .bind(&replies.ids)
        .bind(&replies.conversations)
        .bind(&replies.channels)
        .bind(&replies.seqs)
        .bind(&replies.bodies)
        .bind(&replies.contents)
        .bind(&replies.created)
        .bind(done)
        .fetch_one(&mut *conn)
        .await?;
    if updated != results.len() as i64 {
        // Rows are locked by this transaction, so a mismatch means a bug, not a race: abort.
        return Err(sqlx::Error::Protocol(
            "conversation version changed under lock".into(),
        ));
    }
    super::timeouts::schedule(conn, tenant, results).await
}

/// Conversations updated, replies inserted and jobs completed by one statement (data-modifying
/// CTEs share one snapshot and none reads another's rows).
const WRITE_RESULTS: &str = "WITH upd AS ( \
       UPDATE conversations c SET flow_state = t.state, flow_key = t.flow_key, \
          flow_version = t.flow_version, version = c.version + 1, status = t.status, \
          owner_kind = t.owner_kind, last_seq = greatest(c.last_seq, t.last_seq), \
          last_message_at = CASE WHEN t.last_seq > c.last_seq THEN now() ELSE c.last_message_at END, \
          updated_at = now() \
       FROM unnest($1::uuid[], $2::int8[], $3::jsonb[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::int8[]) \
            AS t(id, version, state, flow_key, flow_version, status, owner_kind, last_seq) \
       WHERE c.id = t.id AND c.version = t.version RETURNING c.id), \
     ins AS ( \
       INSERT INTO messages (id, tenant_id, conversation_id, channel_id, seq, direction, author_kind, \
                             body, content, delivery_status, created_at) \
       SELECT id, $9, conversation_id, channel_id, seq, 'outbound', 'bot', body, content, 'sent', created_at \
       FROM unnest($10::uuid[], $11::uuid[], $12::uuid[], $13::int8[], $14::text[], $15::jsonb[], $16::timestamptz[]) \
            AS t(id, conversation_id, channel_id, seq, body, content, created_at) \
       RETURNING 1), \
     del AS (DELETE FROM jobs WHERE id = ANY($17) RETURNING 1) \
   SELECT count(*) FROM upd";

/// The replies of a batch as columns.
struct Replies<'a> {
    ids: Vec<MessageId>,
    conversations: Vec<ConversationId>,
    channels: Vec<ChannelId>,
    seqs: Vec<i64>,
    bodies: Vec<&'a str>,
    contents: Vec<Value>,
    created: Vec<DateTime<Utc>>,
}

impl<'a> Replies<'a> {
    fn of(results: &'a [TurnResult]) -> Self {
        let all: Vec<(&MessageView, ChannelId)> = results
            .iter()
            .flat_map(|r| r.replies.iter().map(move |m| (m, r.channel_id)))
            .collect();
        Self {
            ids: all.iter().map(|(m, _)| m.id).collect(),
            conversations: all.iter().map(|(m, _)| m.conversation_id).collect(),
            channels: all.iter().map(|(_, c)| *c).collect(),
            seqs: all.iter().map(|(m, _)| m.seq).collect(),
            bodies: all.iter().map(|(m, _)| m.body.as_str()).collect(),
            contents: all.iter().map(|(m, _)| m.content.clone()).collect(),
            created: all.iter().map(|(m, _)| m.created_at).collect(),
        }
    }
}

pub(super) fn events_of(tenant: TenantId, results: Vec<TurnResult>) -> Vec<Event> {
    let mut events = Vec::new();
    for result in results {
        for message in result.replies {
            events.push(Event {
                tenant_id: tenant,
                conversation_id: result.conversation,
                kind: EventKind::MessageCreated { message },
            });
        }
        if result.status == "handoff" && result.route.is_none() {
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
