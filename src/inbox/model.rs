//! Inbox value types shared by channels, the agent and the bus.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{AgentId, ChannelId, ConversationId, MessageId, TenantId};

/// Longest message body accepted from any channel, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Who sent an inbound message, as the channel identifies them.
#[derive(Debug, Clone, PartialEq)]
pub struct SenderIdentity {
    /// Channel-specific address: phone number, chat id, email, visitor hash.
    pub address: String,
    /// Name the channel reports, if any.
    pub display_name: Option<String>,
}

/// One customer message, normalized from any channel.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Tenant the channel belongs to.
    pub tenant_id: TenantId,
    /// Channel it arrived on.
    pub channel_id: ChannelId,
    /// Sender.
    pub sender: SenderIdentity,
    /// Provider's message id (dedupe key within the channel).
    pub external_id: String,
    /// Text.
    pub body: String,
    /// Channel extras (client id, attachments...).
    pub content: Value,
    /// When the provider says it was sent.
    pub received_at: DateTime<Utc>,
    /// The id to give the conversation if this message opens one (None: a fresh id). Web chat
    /// subscribes to it before sending, so it cannot miss an event published after the commit.
    pub open_as: Option<ConversationId>,
}

/// The outcome of ingesting one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Stored message id (the original one for a duplicate).
    pub message_id: MessageId,
    /// Conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Sequence number within the conversation.
    pub seq: i64,
    /// True when this delivery repeated one already stored.
    pub duplicate: bool,
}

/// A message as API clients, sockets and the bus see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, sqlx::FromRow, utoipa::ToSchema)]
pub struct MessageView {
    /// Message id.
    pub id: MessageId,
    /// Conversation id.
    pub conversation_id: ConversationId,
    /// Order within the conversation.
    pub seq: i64,
    /// inbound | outbound
    pub direction: String,
    /// contact | bot | agent | system
    pub author_kind: String,
    /// Human author, if any.
    pub author_agent_id: Option<AgentId>,
    /// Text.
    pub body: String,
    /// Structured extras such as quick-reply options.
    #[schema(value_type = Object)]
    pub content: Value,
    /// received | queued | sent | delivered | read | failed
    pub delivery_status: String,
    /// Stored at.
    pub created_at: DateTime<Utc>,
}
