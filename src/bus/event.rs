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
}
