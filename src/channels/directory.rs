//! Routing public channel keys to tenants, with a short-lived cache so the widget and webhooks do
//! not cost a query per message. A disabled or deleted channel stops routing within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::ChannelKind;
use crate::ids::{ChannelId, TenantId};

const TTL: Duration = Duration::from_secs(15);

/// Where a public key leads.
#[derive(Debug, Clone)]
pub struct ChannelRoute {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The channel.
    pub channel_id: ChannelId,
    /// Its kind.
    pub kind: ChannelKind,
}

/// Cached key → route lookups.
#[derive(Default)]
pub struct ChannelDirectory {
    cache: Mutex<HashMap<String, (Instant, Option<ChannelRoute>)>>,
}

impl ChannelDirectory {
    /// Resolve an enabled channel by public key (system pool: the tenant is what we look up).
    pub async fn resolve(
        &self,
        system: &PgPool,
        key: &str,
    ) -> Result<Option<ChannelRoute>, sqlx::Error> {
        if key.is_empty() || key.len() > 64 {
            return Ok(None);
        }
        if let Some(hit) = self.cached(key) {
            return Ok(hit);
        }
        let row: Option<(TenantId, ChannelId, String)> = sqlx::query_as(
            "SELECT tenant_id, id, kind FROM channels WHERE public_key = $1 AND enabled",
        )
        .bind(key)
        .fetch_optional(system)
        .await?;
        let route = row.and_then(|(tenant_id, channel_id, kind)| {
            Some(ChannelRoute {
                tenant_id,
                channel_id,
                kind: ChannelKind::parse(&kind)?,
            })
        });
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(key.to_owned(), (Instant::now(), route.clone()));
        }
        Ok(route)
    }

    fn cached(&self, key: &str) -> Option<Option<ChannelRoute>> {
        let cache = self.cache.lock().ok()?;
        let (at, route) = cache.get(key)?;
        (at.elapsed() < TTL).then(|| route.clone())
    }

    /// Forget a key (after the channel changed on this node).
    pub fn invalidate(&self, key: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(key);
        }
    }
}
