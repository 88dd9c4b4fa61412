//! Frames exchanged with the widget (JSON text frames), and their validation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ConversationId, MessageId};
use crate::inbox::MessageView;

/// What the widget sends.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// First frame: which channel, which visitor, and the last sequence number already seen.
    Hello {
        /// The channel's public key.
        channel_key: String,
        /// Token from a previous session, if any.
        #[serde(default)]
        visitor_token: Option<String>,
        /// Replay only messages after this sequence number.
        #[serde(default)]
        after_seq: Option<i64>,
    },
    /// A visitor message. `client_id` makes resending after a network drop safe.
    Send {
        /// Client-generated id (UUID).
        client_id: String,
        /// Message text.
        text: String,
    },
}

/// What the server sends.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The session is ready.
    Ready {
        /// Token to keep for the next session.
        visitor_token: String,
        /// The visitor's conversation, once there is one.
        conversation_id: Option<ConversationId>,
    },
    /// A stored message (history or live).
    Message {
        /// The message.
        message: WidgetMessage,
    },
    /// A bot reply being written: show `text` in place of the draft's previous text; drop it
    /// when `discarded`, or when a message lists `draft_id` in `content.drafts`.
    Draft {
        /// Identifies the draft across its updates.
        draft_id: uuid::Uuid,
        /// The whole text so far.
        text: String,
        /// The draft will not become a message.
        discarded: bool,
    },
    /// A visitor message is durably stored.
    Ack {
        /// The client's id for it.
        client_id: String,
        /// Stored id.
        message_id: MessageId,
        /// Its sequence number.
        seq: i64,
        /// True when it had been stored before (a resend).
        duplicate: bool,
    },
    /// Something was wrong with a frame.
    Error {
        /// Stable code.
        code: String,
        /// Explanation.
        message: String,
    },
}

impl ServerFrame {
    /// An error frame.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A message as the widget sees it: no internal ids or delivery details.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WidgetMessage {
    /// Id.
    pub id: MessageId,
    /// Order within the conversation.
    pub seq: i64,
    /// inbound | outbound
    pub direction: String,
    /// contact | bot | agent | system
    pub author: String,
    /// Text.
    pub text: String,
    /// Quick replies offered with it.
    pub options: Value,
    /// The widget's id for a visitor message.
    pub client_id: Option<String>,
    /// Drafts this message replaces (see [`ServerFrame::Draft`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drafts: Vec<uuid::Uuid>,
    /// Stored at.
    pub created_at: DateTime<Utc>,
}

impl From<&MessageView> for WidgetMessage {
    fn from(m: &MessageView) -> Self {
        Self {
            id: m.id,
            seq: m.seq,
            direction: m.direction.clone(),
            author: m.author_kind.clone(),
            text: m.body.clone(),
            options: m
                .content
                .get("options")
                .cloned()
                .unwrap_or_else(|| Value::Array(vec![])),
            client_id: m
                .content
                .get("client_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            drafts: m
                .content
                .get("drafts")
                .and_then(|d| serde_json::from_value(d.clone()).ok())
                .unwrap_or_default(),
            created_at: m.created_at,
        }
    }
}

/// Client ids are UUIDs (any version), or short opaque tokens of safe characters.
pub fn valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_unknown_fields_are_refused() {
        let hello: ClientFrame =
            serde_json::from_str(r#"{"type":"hello","channel_key":"wc_x"}"#).expect("hello");
        assert_eq!(
            hello,
            ClientFrame::Hello {
                channel_key: "wc_x".into(),
                visitor_token: None,
                after_seq: None
            }
        );
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"send","text":"x"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"nope"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(
            r#"{"type":"send","client_id":"a","text":"x","admin":true}"#
        )
        .is_err());
    }

    #[test]
    fn client_ids_are_checked() {
        assert!(valid_client_id("0b8f4f1e-8c1a-4c1e-9d55-2f7d6c0b9a11"));
        assert!(!valid_client_id(""));
        assert!(!valid_client_id("a b"));
        assert!(!valid_client_id(&"a".repeat(65)));
    }
}
