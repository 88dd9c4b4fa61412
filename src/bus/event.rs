//! The events carried by the bus.

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ConversationId, TenantId};
use crate::inbox::MessageView;

/// One event about one conversation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Owning tenant (routes console subscribers).
    pub tenant_id: TenantId,
    /// The conversation concerned (routes web-chat subscribers).
    pub conversation_id: ConversationId,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A message was stored (either direction).
    MessageCreated {
        /// The message as clients see it.
        message: MessageView,
    },
    /// Status or owner changed.
    ConversationUpdated {
        /// open | handoff | closed
        status: String,
        /// bot | human | none
        owner_kind: String,
        /// The human owner, if any.
        owner_agent_id: Option<AgentId>,
    },
    /// A bot reply being written (an LLM streaming it): the text so far. Never stored; the
    /// stored message that follows lists the draft in its `content.drafts`. Web chat shows it
    /// live.
    ReplyDraft {
        /// Identifies the draft across its updates.
        draft_id: uuid::Uuid,
        /// The whole text so far (each update replaces the previous one).
        text: String,
        /// The draft will not become a message (the reply was refused or failed): drop it.
        discarded: bool,
    },
}
