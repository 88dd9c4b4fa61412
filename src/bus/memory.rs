//! The single-node bus: publishing hands events straight to the local hub.

use super::{Bus, BusError, Event, Hub};

/// In-process bus for deployments without Redis.
pub struct InProcessBus {
    hub: Hub,
}

impl InProcessBus {
    /// A bus delivering to `hub`.
    pub fn new(hub: Hub) -> Self {
        Self { hub }
    }
}

#[async_trait::async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, events: Vec<Event>) -> Result<(), BusError> {
        for event in events {
            self.hub.dispatch(event);
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "in-process"
    }
}
