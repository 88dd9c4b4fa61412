//! Channel rows (tenant transactions).

use chrono::{DateTime, Utc};
use rand::{distributions::Alphanumeric, Rng};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;

use super::ChannelKind;
use crate::ids::{ChannelId, TenantId};

/// A channel as the API shows it (secrets never leave the database).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Channel {
    /// Id.
    pub id: ChannelId,
    /// webchat | whatsapp_cloud | twilio | telegram | email | form
    pub kind: String,
    /// Display name.
    pub name: String,
    /// Routing key for the widget / webhooks.
    pub public_key: String,
    /// Kind-specific settings (e.g. `flow`).
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Whether it routes traffic.
    pub enabled: bool,
    /// Created at.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, kind, name, public_key, settings, enabled, created_at";

/// A fresh public key for a kind.
pub fn new_public_key(kind: ChannelKind) -> String {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{}{body}", kind.key_prefix())
}

/// Insert a channel.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    kind: ChannelKind,
    name: &str,
    settings: &Value,
    secrets: Option<Vec<u8>>,
) -> Result<Channel, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO channels (id, tenant_id, kind, name, public_key, settings, secrets) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(ChannelId::new())
    .bind(tenant)
    .bind(kind.as_str())
    .bind(name)
    .bind(new_public_key(kind))
    .bind(settings)
    .bind(secrets)
    .fetch_one(conn)
    .await
}

/// All channels of the current tenant.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Channel>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM channels ORDER BY created_at, id"
    ))
    .fetch_all(conn)
    .await
}

/// One channel of the current tenant.
pub async fn get(conn: &mut PgConnection, id: ChannelId) -> Result<Option<Channel>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM channels WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Change name / settings / enabled.
pub async fn update(
    conn: &mut PgConnection,
    id: ChannelId,
    name: Option<&str>,
    settings: Option<&Value>,
    enabled: Option<bool>,
) -> Result<Option<Channel>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE channels SET name = coalesce($2, name), settings = coalesce($3, settings), \
         enabled = coalesce($4, enabled), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(name)
    .bind(settings)
    .bind(enabled)
    .fetch_optional(conn)
    .await
}

/// Delete a channel (and, by cascade, its conversations); returns its public key when it existed.
pub async fn delete(conn: &mut PgConnection, id: ChannelId) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM channels WHERE id = $1 RETURNING public_key")
        .bind(id)
        .fetch_optional(conn)
        .await
}
