//! Which inbound messages an `agent_turn` job answers, and how a job that stops part-way hands
//! the rest on.
//!
//! Ingest queues an *open* turn for a conversation (`{"conversation_id", "message_id",
//! "open": true}`) only when the conversation has none queued: the open turn answers, in order,
//! its first message and every inbound message after it that is stored by the time it runs. A
//! burst of messages to one conversation therefore queues one job, not one per message. Any
//! other payload (`{"conversation_id", "message_id"}`) answers exactly that one message: that is
//! what a turn becomes once it is leased for slow work or has failed, so retries, leases and
//! dead letters keep meaning one message each.
//!
//! Why no message is missed or answered twice: ingest checks for a queued open turn while
//! holding the conversation's row lock, and the turn locks the same row before reading the
//! messages it answers (in a statement after the lock, so it sees every message committed before
//! it got the lock). Either the message committed first, and the turn reads it, or the turn
//! committed first, and its job is gone (or no longer open), so ingest queues a new one. A run
//! that stops at a message (it needs another service, or fails) answers the messages before it,
//! turns its job into that message's own, and queues an open turn for the messages after it,
//! which the ordering rule keeps behind the stopped one.

use std::collections::HashMap;

use serde_json::{json, Value};
use sqlx::PgConnection;

use super::turn_writes::TurnResult;
use super::turns::ConversationRow;
use crate::ids::{ConversationId, MessageId, TenantId};
use crate::jobs::JobKind;

/// One claimed `agent_turn` job, read from its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TurnJob {
    pub(super) id: i64,
    pub(super) conversation: ConversationId,
    /// The first (or only) message it answers.
    pub(super) first: MessageId,
    /// Whether it also answers every later inbound message.
    pub(super) open: bool,
}

impl TurnJob {
    /// The job behind `payload`; None when the payload is malformed.
    pub(super) fn parse(id: i64, payload: &Value) -> Option<Self> {
        let (conversation, first) = super::turns::parse_payload(payload)?;
        let open = payload.get("open").and_then(Value::as_bool) == Some(true);
        Some(Self {
            id,
            conversation,
            first,
            open,
        })
    }
}

/// A message to answer: its id and text (None when it was deleted since).
pub(super) type ToAnswer = (MessageId, Option<String>);

/// The inbound messages after each open job's first one, in order, for the conversations in
/// `conversations` (read and locked by the caller) that have any. One statement, none at all
/// when no open job's conversation has moved past its first message.
pub(super) async fn later_messages(
    conn: &mut PgConnection,
    jobs: &[TurnJob],
    conversations: &HashMap<ConversationId, ConversationRow>,
) -> Result<HashMap<ConversationId, Vec<ToAnswer>>, sqlx::Error> {
    let mut ids: Vec<ConversationId> = Vec::new();
    let mut after: Vec<i64> = Vec::new();
    for job in jobs.iter().filter(|j| j.open) {
        let Some(conv) = conversations.get(&job.conversation) else {
            continue;
        };
        match conv.message_seq {
            Some(seq) if conv.last_seq > seq => {
                ids.push(job.conversation);
                after.push(seq);
            }
            _ => {}
        }
    }
    let mut later: HashMap<ConversationId, Vec<ToAnswer>> = HashMap::new();
    if ids.is_empty() {
        return Ok(later);
    }
    let rows: Vec<(ConversationId, MessageId, String)> = sqlx::query_as(
        "SELECT m.conversation_id, m.id, m.body \
         FROM unnest($1::uuid[], $2::int8[]) AS k(conversation_id, after) \
         JOIN messages m ON m.conversation_id = k.conversation_id AND m.seq > k.after \
         WHERE m.direction = 'inbound' \
         ORDER BY m.conversation_id, m.seq",
    )
    .bind(&ids)
    .bind(&after)
    .fetch_all(conn)
    .await?;
    for (conversation, id, body) in rows {
        later
            .entry(conversation)
            .or_default()
            .push((id, Some(body)));
    }
    Ok(later)
}

/// The messages `job` answers, in order: its first, then (for an open job) the later ones.
pub(super) fn answered_by(
    job: &TurnJob,
    conv: &ConversationRow,
    later: &mut HashMap<ConversationId, Vec<ToAnswer>>,
) -> Vec<ToAnswer> {
    let mut messages = vec![(job.first, conv.message_body.clone())];
    if job.open {
        messages.extend(later.remove(&job.conversation).unwrap_or_default());
    }
    messages
}

/// The conversation as the next message's turn must see it, after `result`.
pub(super) fn after_turn(conv: &mut ConversationRow, result: &TurnResult) {
    conv.flow_state = Some(json!(result.state));
    conv.flow_key = Some(result.flow_key.clone());
    conv.flow_version = Some(result.flow_version);
    conv.status = result.status.to_owned();
    conv.owner_kind = result.owner_kind.to_owned();
    if let Some(last) = result.replies.last() {
        conv.last_seq = last.seq;
    }
}

/// A job that stopped at message `at`: it becomes that message's own job, and `rest` (the next
/// message, if any) starts a new open turn.
#[derive(Debug, Clone, Copy)]
pub(super) struct Split {
    pub(super) job: i64,
    pub(super) conversation: ConversationId,
    pub(super) at: MessageId,
    pub(super) rest: Option<MessageId>,
}

impl Split {
    /// The payload of the stopped job from now on: the one message it stopped at.
    pub(super) fn payload(&self) -> Value {
        json!({"conversation_id": self.conversation, "message_id": self.at})
    }
}

/// Applies `splits` (inside the claiming transaction, which holds the jobs' and conversations'
/// locks): rewrites each stopped job's payload, then queues the open turns for the rest, whose
/// ids come after the stopped jobs' and so run after them.
pub(super) async fn apply_splits(
    conn: &mut PgConnection,
    tenant: TenantId,
    splits: &[Split],
) -> Result<(), sqlx::Error> {
    if splits.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = splits.iter().map(|s| s.job).collect();
    let payloads: Vec<Value> = splits.iter().map(Split::payload).collect();
    sqlx::query(
        "UPDATE jobs j SET payload = t.payload, updated_at = now() \
         FROM unnest($1::int8[], $2::jsonb[]) AS t(id, payload) WHERE j.id = t.id",
    )
    .bind(&ids)
    .bind(&payloads)
    .execute(&mut *conn)
    .await?;
    let rest: Vec<(ConversationId, MessageId)> = splits
        .iter()
        .filter_map(|s| s.rest.map(|m| (s.conversation, m)))
        .collect();
    if rest.is_empty() {
        return Ok(());
    }
    let conversations: Vec<ConversationId> = rest.iter().map(|r| r.0).collect();
    let messages: Vec<MessageId> = rest.iter().map(|r| r.1).collect();
    sqlx::query(
        "INSERT INTO jobs (tenant_id, kind, payload, ordering_key) \
         SELECT $1, $2, jsonb_build_object('conversation_id', t.c, 'message_id', t.m, 'open', true), t.c \
         FROM unnest($3::uuid[], $4::uuid[]) AS t(c, m) ORDER BY t.c",
    )
    .bind(tenant)
    .bind(JobKind::AgentTurn.as_str())
    .bind(&conversations)
    .bind(&messages)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_payload_is_read_as_open_and_any_other_as_one_message() {
        let c = ConversationId::new();
        let m = MessageId::new();
        let open = json!({"conversation_id": c, "message_id": m, "open": true});
        let one = json!({"conversation_id": c, "message_id": m});
        assert_eq!(
            TurnJob::parse(7, &open),
            Some(TurnJob {
                id: 7,
                conversation: c,
                first: m,
                open: true
            })
        );
        assert_eq!(TurnJob::parse(7, &one).map(|j| j.open), Some(false));
        assert_eq!(TurnJob::parse(7, &json!({"conversation_id": c})), None);
    }

    #[test]
    fn a_split_job_keeps_only_the_message_it_stopped_at() {
        let split = Split {
            job: 3,
            conversation: ConversationId::new(),
            at: MessageId::new(),
            rest: Some(MessageId::new()),
        };
        let payload = split.payload();
        let job = TurnJob::parse(3, &payload).expect("parses");
        assert_eq!((job.first, job.open), (split.at, false));
    }
}
