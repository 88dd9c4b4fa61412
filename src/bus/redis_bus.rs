//! The multi-node bus: events are published to one Redis pub/sub channel; every node runs one
//! subscriber task that feeds its hub (its own events included, so delivery is uniform).
//! The subscriber reconnects with backoff when Redis goes away.

use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use super::{Bus, BusError, Event, Hub};

/// Redis channel all events travel on.
pub const CHANNEL: &str = "switchboard:events";

/// Redis pub/sub bus.
pub struct RedisBus {
    publisher: redis::aio::MultiplexedConnection,
}

impl RedisBus {
    /// Connect, and start the subscriber task feeding `hub` until `stop` fires.
    pub async fn connect(url: &str, hub: Hub, stop: CancellationToken) -> Result<Self, BusError> {
        let client = redis::Client::open(url)?;
        let publisher = client.get_multiplexed_tokio_connection().await?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(subscribe_loop(client, hub, stop, Some(ready_tx)));
        // Wait until the first subscription is active so no event published after connect is missed.
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        Ok(Self { publisher })
    }
}

#[async_trait::async_trait]
impl Bus for RedisBus {
    async fn publish(&self, events: Vec<Event>) -> Result<(), BusError> {
        let mut conn = self.publisher.clone();
        if events.len() == 1 {
            let payload = serde_json::to_string(&events[0])?;
            let _: i64 = conn.publish(CHANNEL, payload).await?;
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for event in &events {
            pipe.publish(CHANNEL, serde_json::to_string(event)?)
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

async fn subscribe_loop(
    client: redis::Client,
    hub: Hub,
    stop: CancellationToken,
    mut ready: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if let Err(error) = pubsub.subscribe(CHANNEL).await {
                    tracing::warn!(%error, "redis subscribe failed");
                } else {
                    backoff = Duration::from_millis(100);
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    pump(pubsub, &hub, &stop).await;
                }
            }
            Err(error) => tracing::warn!(%error, "redis subscriber cannot connect"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn pump(pubsub: redis::aio::PubSub, hub: &Hub, stop: &CancellationToken) {
    let mut stream = pubsub.into_on_message();
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            msg = stream.next() => msg,
        };
        let Some(msg) = msg else {
            tracing::warn!("redis subscription ended; reconnecting");
            return;
        };
        match msg
            .get_payload::<String>()
            .map_err(|e| e.to_string())
            .and_then(|p| serde_json::from_str::<Event>(&p).map_err(|e| e.to_string()))
        {
            Ok(event) => hub.dispatch(event),
            Err(error) => tracing::warn!(%error, "ignoring undecodable bus event"),
        }
    }
}
