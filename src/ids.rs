//! Typed identifiers. Every id is a UUID (v7, so they sort by creation time) wrapped in its own
//! type, so a conversation id can never be passed where a tenant id is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A business using the deployment.
    TenantId
);
id_type!(
    /// A channel (web chat, WhatsApp number, ...).
    ChannelId
);
id_type!(
    /// A customer.
    ContactId
);
id_type!(
    /// A conversation between a contact and the business.
    ConversationId
);
id_type!(
    /// One message.
    MessageId
);
id_type!(
    /// A human agent.
    AgentId
);
id_type!(
    /// An API key.
    ApiKeyId
);
id_type!(
    /// A notice to a business about its account (e.g. its AI quota is used up).
    NoticeId
);
