//! Database access: the two connection pools, tenant-scoped transactions and migrations.
//!
//! * `app` runs as the runtime role (`SET ROLE switchboard_app` on connect): every tenant query goes
//!   through it, inside a transaction begun by [`Db::tenant_tx`] that sets `app.tenant_id`, so
//!   row-level security confines it to one tenant.
//! * `system` runs as the connecting (owner) role and is used only where no tenant is known yet or
//!   work spans tenants: API-key and channel-key lookup, claiming jobs, admin tenant operations.
//!   Its callers live in `db::system` style functions named as such; keep them few.

mod connect;

pub use connect::{connect, pools_from_options, quote_ident, ConnectError};

use sqlx::{postgres::PgConnection, PgPool, Postgres, Transaction};

use crate::ids::TenantId;

/// The embedded migrations (`migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Both pools.
#[derive(Clone, Debug)]
pub struct Db {
    /// Runtime-role pool, subject to row-level security.
    pub app: PgPool,
    /// Owner pool for cross-tenant system work.
    pub system: PgPool,
}

/// A transaction confined to one tenant.
pub type TenantTx = Transaction<'static, Postgres>;

impl Db {
    /// Begin a transaction on the runtime pool scoped to `tenant`.
    ///
    /// `BEGIN` and the tenant setting travel in one round trip: a simple query carrying both
    /// statements. The tenant id is a parsed uuid, so formatting it into the text is safe.
    pub async fn tenant_tx(&self, tenant: TenantId) -> Result<TenantTx, sqlx::Error> {
        self.app.begin_with(begin_for(tenant)).await
    }
}

/// `BEGIN` followed by setting the transaction's tenant, as one simple-query text.
pub fn begin_for(tenant: TenantId) -> String {
    // `Uuid`'s Display is 36 characters of hex digits and dashes: nothing to escape.
    format!(
        "BEGIN; SELECT set_config('app.tenant_id', '{}', true)",
        tenant.0.hyphenated()
    )
}

/// Point the current transaction at `tenant` (`SET LOCAL`, undone at commit or rollback).
pub async fn set_tenant(conn: &mut PgConnection, tenant: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant.0.to_string())
        .execute(conn)
        .await?;
    Ok(())
}
