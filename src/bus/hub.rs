//! The node-local router from events to subscribed sockets. Subscriptions are per conversation
//! (web chat) or per tenant (console). Each subscriber has a bounded queue; a subscriber too slow to
//! keep up loses events (and is told so by `RecvError::Lagged`) rather than slowing everyone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::Event;
use crate::ids::{ConversationId, TenantId};

const SUBSCRIBER_QUEUE: usize = 256;

/// Routes events to local subscribers.
#[derive(Default, Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Default)]
struct HubInner {
    conversations: Mutex<HashMap<ConversationId, broadcast::Sender<Arc<Event>>>>,
    tenants: Mutex<HashMap<TenantId, broadcast::Sender<Arc<Event>>>>,
}

/// A live subscription; dropping it unsubscribes.
pub type Subscription = broadcast::Receiver<Arc<Event>>;

impl Hub {
    /// A hub with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Receive every event of one conversation.
    pub fn subscribe_conversation(&self, id: ConversationId) -> Subscription {
        subscribe(&self.inner.conversations, id)
    }

    /// Receive every event of one tenant.
    pub fn subscribe_tenant(&self, id: TenantId) -> Subscription {
        subscribe(&self.inner.tenants, id)
    }

    /// Deliver one event to its subscribers.
    pub fn dispatch(&self, event: Event) {
        let event = Arc::new(event);
        send(&self.inner.conversations, event.conversation_id, &event);
        send(&self.inner.tenants, event.tenant_id, &event);
    }

    /// Number of conversations with at least one local subscriber.
    pub fn conversation_topics(&self) -> usize {
        self.inner
            .conversations
            .lock()
            .map(|m| m.len())
            .unwrap_or(0)
    }
}

fn subscribe<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, broadcast::Sender<Arc<Event>>>>,
    key: K,
) -> Subscription {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(key)
        .or_insert_with(|| broadcast::channel(SUBSCRIBER_QUEUE).0)
        .subscribe()
}

fn send<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, broadcast::Sender<Arc<Event>>>>,
    key: K,
    event: &Arc<Event>,
) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let remove = match map.get(&key) {
        Some(sender) => sender.send(event.clone()).is_err(),
        None => false,
    };
    if remove {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::EventKind;

    fn updated(tenant: TenantId, conversation: ConversationId) -> Event {
        Event {
            tenant_id: tenant,
            conversation_id: conversation,
            kind: EventKind::ConversationUpdated {
                status: "open".into(),
                owner_kind: "bot".into(),
                owner_agent_id: None,
            },
        }
    }

    #[tokio::test]
    async fn events_reach_conversation_and_tenant_subscribers_only() {
        let hub = Hub::new();
        let (tenant, conv, other) = (
            TenantId::new(),
            ConversationId::new(),
            ConversationId::new(),
        );
        let mut by_conv = hub.subscribe_conversation(conv);
        let mut by_other = hub.subscribe_conversation(other);
        let mut by_tenant = hub.subscribe_tenant(tenant);
        hub.dispatch(updated(tenant, conv));
        assert_eq!(by_conv.recv().await.expect("event").conversation_id, conv);
        assert_eq!(by_tenant.recv().await.expect("event").conversation_id, conv);
        assert!(by_other.try_recv().is_err());
    }

    #[tokio::test]
    async fn topics_without_subscribers_are_removed() {
        let hub = Hub::new();
        let (tenant, conv) = (TenantId::new(), ConversationId::new());
        drop(hub.subscribe_conversation(conv));
        assert_eq!(hub.conversation_topics(), 1);
        hub.dispatch(updated(tenant, conv));
        assert_eq!(hub.conversation_topics(), 0);
    }
}
