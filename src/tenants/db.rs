//! Tenant rows. Creating and listing tenants spans tenants, so those use the system pool and are
//! reachable only with an admin key or from the CLI.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};

use crate::ids::TenantId;

/// A tenant as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// URL-safe unique name.
    pub slug: String,
    /// Business name.
    pub name: String,
    /// IANA time zone.
    pub timezone: String,
    /// Free-form settings.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Created at.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, slug, name, timezone, settings, created_at";

/// Insert a tenant (system pool).
pub async fn create(
    system: impl PgExecutor<'_>,
    slug: &str,
    name: &str,
    timezone: &str,
) -> Result<Tenant, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO tenants (id, slug, name, timezone) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    ))
    .bind(TenantId::new())
    .bind(slug)
    .bind(name)
    .bind(timezone)
    .fetch_one(system)
    .await
}

/// All tenants (system pool).
pub async fn list(system: impl PgExecutor<'_>) -> Result<Vec<Tenant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants ORDER BY created_at, id"
    ))
    .fetch_all(system)
    .await
}

/// A tenant by slug (system pool).
pub async fn by_slug(
    system: impl PgExecutor<'_>,
    slug: &str,
) -> Result<Option<Tenant>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1"))
        .bind(slug)
        .fetch_optional(system)
        .await
}

/// The current tenant (tenant transaction; RLS shows exactly one row).
pub async fn current(conn: &mut PgConnection) -> Result<Option<Tenant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = sb_tenant()"
    ))
    .fetch_optional(conn)
    .await
}
