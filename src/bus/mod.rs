//! Event bus: message and conversation events fanned out to every node's WebSocket subscribers.
//!
//! Producers (ingest, the agent, human replies) call [`Bus::publish`] after their transaction
//! commits. Each node owns one [`Hub`] that routes events to the local sockets subscribed to a
//! conversation or a tenant. With Redis configured events travel through Redis pub/sub, so a
//! socket on node B sees what node A committed; without it, publish hands events to the local hub.
//! Events are notifications: the database stays the source of truth, and clients resume from their
//! last seen sequence number, so a lost event is recovered on reconnect.

mod event;
mod hub;
mod memory;
mod redis_bus;

pub use event::{Event, EventKind};
pub use hub::{Hub, Subscription};
pub use memory::InProcessBus;
pub use redis_bus::RedisBus;

use std::sync::Arc;

/// Why an event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Serialisation failed.
    #[error("encoding event: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Publishes events to every node.
#[async_trait::async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publish events in order.
    async fn publish(&self, events: Vec<Event>) -> Result<(), BusError>;
    /// Short name for logs and metrics.
    fn name(&self) -> &'static str;
}

/// Publish, logging instead of failing: the events' data is already committed and clients recover
/// anything missed from the database.
pub async fn publish_logged(bus: &Arc<dyn Bus>, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let count = events.len();
    if let Err(error) = bus.publish(events).await {
        metrics::counter!("bus_publish_failures_total").increment(1);
        tracing::warn!(%error, count, bus = bus.name(), "publishing events failed");
    }
}
