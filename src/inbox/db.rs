//! Inbox queries for reading (API, sockets). All run in a tenant transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;

use super::MessageView;
use crate::ids::{AgentId, ChannelId, ContactId, ConversationId};

const MESSAGE_COLUMNS: &str = "id, conversation_id, seq, direction, author_kind, author_agent_id, \
                               body, content, delivery_status, created_at";

/// The most recent conversation of a channel identity (any status).
pub async fn latest_conversation_for_identity(
    conn: &mut PgConnection,
    channel: ChannelId,
    address: &str,
) -> Result<Option<ConversationId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT c.id FROM contact_identities ci \
         JOIN conversations c ON c.contact_id = ci.contact_id AND c.channel_id = ci.channel_id \
         WHERE ci.channel_id = $1 AND ci.address = $2 \
         ORDER BY (c.status <> 'closed') DESC, c.created_at DESC LIMIT 1",
    )
    .bind(channel)
    .bind(address)
    .fetch_optional(conn)
    .await
}

/// Messages of a conversation with `seq > after`, oldest first.
pub async fn messages_after(
    conn: &mut PgConnection,
    conversation: ConversationId,
    after: i64,
    limit: i64,
) -> Result<Vec<MessageView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages \
         WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(conversation)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A conversation as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ConversationView {
    /// Id.
    pub id: ConversationId,
    /// Channel.
    pub channel_id: ChannelId,
    /// Contact.
    pub contact_id: ContactId,
    /// Contact's display name, if known.
    pub contact_name: Option<String>,
    /// open | handoff | closed
    pub status: String,
    /// bot | human | none
    pub owner_kind: String,
    /// Human owner.
    pub owner_agent_id: Option<AgentId>,
    /// Flow key and version the bot runs.
    pub flow_key: Option<String>,
    /// Flow version.
    pub flow_version: Option<i32>,
    /// The flow's state (current state, slots).
    #[schema(value_type = Object)]
    pub flow_state: Option<Value>,
    /// Highest message sequence number.
    pub last_seq: i64,
    /// Time of the latest message.
    pub last_message_at: DateTime<Utc>,
    /// Opened at.
    pub created_at: DateTime<Utc>,
    /// The latest routing decision (target, team, agent, confidence, reason), if any.
    #[schema(value_type = Option<crate::routing::RoutingDecision>)]
    pub routing: Option<Value>,
}

const CONVERSATION_COLUMNS: &str = "c.id, c.channel_id, c.contact_id, ct.display_name AS contact_name, \
    c.status, c.owner_kind, c.owner_agent_id, c.flow_key, c.flow_version, c.flow_state, c.last_seq, \
    c.last_message_at, c.created_at, c.routing";

/// Conversations, most recent activity first, keyset-paginated by (last_message_at, id).
pub async fn list_conversations(
    conn: &mut PgConnection,
    status: Option<&str>,
    before: Option<(DateTime<Utc>, ConversationId)>,
    limit: i64,
) -> Result<Vec<ConversationView>, sqlx::Error> {
    let (before_at, before_id) = before
        .map(|(a, i)| (Some(a), Some(i)))
        .unwrap_or((None, None));
    sqlx::query_as(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id \
         WHERE ($1::text IS NULL OR c.status = $1) \
           AND ($2::timestamptz IS NULL OR (c.last_message_at, c.id) < ($2, $3)) \
         ORDER BY c.last_message_at DESC, c.id DESC LIMIT $4"
    ))
    .bind(status)
    .bind(before_at)
    .bind(before_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// One conversation.
pub async fn get_conversation(
    conn: &mut PgConnection,
    id: ConversationId,
) -> Result<Option<ConversationView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c JOIN contacts ct ON ct.id = c.contact_id \
         WHERE c.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}
