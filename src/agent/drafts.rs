//! Reply drafts: an `llm` state's reply shown to a web-chat visitor while the LLM streams it.
//!
//! Invariants: a draft is published on the bus (never stored) as its whole text so far, at most
//! every [`DRAFT_EVERY`] (the first fragment at once), cut to the longest reply the state may
//! say; a draft whose reply is not said (refused, failed) is published once more as discarded;
//! a draft that was published and kept is listed in the stored reply's `content.drafts`, so
//! clients replace it with the message. Publishing failures are logged, never fatal: the stored
//! message is the truth.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::llm_state::MAX_LLM_REPLY_CHARS;
use crate::bus::{publish_logged, Bus, Event, EventKind};
use crate::ids::{ConversationId, TenantId};

/// Least time between two updates of a draft.
pub const DRAFT_EVERY: Duration = Duration::from_millis(40);

/// One reply being written.
pub struct Draft {
    bus: Arc<dyn Bus>,
    tenant: TenantId,
    conversation: ConversationId,
    id: Uuid,
    text: String,
    last: Option<Instant>,
    sent: String,
}

impl Draft {
    /// A draft for `conversation`, not yet published.
    pub fn new(bus: Arc<dyn Bus>, tenant: TenantId, conversation: ConversationId) -> Self {
        Self {
            bus,
            tenant,
            conversation,
            id: Uuid::now_v7(),
            text: String::new(),
            last: None,
            sent: String::new(),
        }
    }

    /// Its id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Whether anything was published.
    pub fn published(&self) -> bool {
        self.last.is_some()
    }

    /// Adds a fragment; publishes when the last update is old enough.
    pub async fn push(&mut self, fragment: &str) {
        if self.text.chars().count() >= MAX_LLM_REPLY_CHARS {
            return;
        }
        self.text.push_str(fragment);
        if let Some((cut, _)) = self.text.char_indices().nth(MAX_LLM_REPLY_CHARS) {
            self.text.truncate(cut);
        }
        if self.last.map_or(true, |at| at.elapsed() >= DRAFT_EVERY) {
            self.flush().await;
        }
    }

    /// Publishes the text so far if it changed since the last update.
    pub async fn flush(&mut self) {
        if self.text.trim().is_empty() || self.text == self.sent {
            return;
        }
        self.sent.clone_from(&self.text);
        self.publish(false).await;
    }

    /// Tells clients the draft will not become a message (only if they saw it).
    pub async fn discard(&mut self) {
        if self.published() {
            self.publish(true).await;
        }
    }

    async fn publish(&mut self, discarded: bool) {
        self.last = Some(Instant::now());
        let event = Event {
            tenant_id: self.tenant,
            conversation_id: self.conversation,
            kind: EventKind::ReplyDraft {
                draft_id: self.id,
                text: if discarded {
                    String::new()
                } else {
                    self.text.clone()
                },
                discarded,
            },
        };
        publish_logged(&self.bus, vec![event]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Hub, InProcessBus};

    fn draft() -> (Draft, Hub) {
        let hub = Hub::new();
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(hub.clone()));
        let ids = (TenantId(Uuid::now_v7()), ConversationId(Uuid::now_v7()));
        (Draft::new(bus, ids.0, ids.1), hub)
    }

    #[tokio::test]
    async fn fragments_accumulate_and_are_cut_to_the_longest_reply() {
        let (mut d, _hub) = draft();
        d.push("Hello").await;
        assert!(d.published(), "the first fragment is shown at once");
        d.push(", there").await;
        assert_eq!(d.text, "Hello, there");
        let long = "x".repeat(MAX_LLM_REPLY_CHARS + 50);
        d.push(&long).await;
        assert_eq!(d.text.chars().count(), MAX_LLM_REPLY_CHARS);
        d.push("more").await;
        assert_eq!(d.text.chars().count(), MAX_LLM_REPLY_CHARS);
    }

    #[tokio::test]
    async fn a_draft_nobody_saw_is_not_discarded_publicly() {
        let (mut d, _hub) = draft();
        d.push("   ").await;
        assert!(!d.published(), "blank text is not shown");
        d.discard().await;
        assert!(!d.published());
    }
}
