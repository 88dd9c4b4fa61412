//! Connecting: creating the database when asked, applying migrations, and building both pools.
//! Failures become a [`ConnectError`] whose message tells the operator what to do.

use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::ExposeSecret;
use sqlx::{
    pool::PoolConnectionMetadata,
    postgres::{PgConnectOptions, PgPoolOptions},
    ConnectOptions, Connection, Executor, PgConnection,
};

use super::{Db, MIGRATOR};
use crate::config::DatabaseSettings;

/// Why the database could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    BadUrl(sqlx::Error),
    /// Nothing answers at the address.
    #[error(
        "cannot reach PostgreSQL at {host}:{port} ({source}).\n\
         Start one, for example:\n  docker compose up -d postgres\n\
         or on Debian/Ubuntu:  sudo pg_ctlcluster 15 main start\n\
         then set DATABASE_URL=postgres://USER@HOST:PORT/DBNAME (currently database '{database}')."
    )]
    Unreachable {
        /// Host tried.
        host: String,
        /// Port tried.
        port: u16,
        /// Database name.
        database: String,
        /// Underlying error.
        source: sqlx::Error,
    },
    /// The server answered but refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("applying migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Create the database if configured to, migrate it, and open both pools.
pub async fn connect(settings: &DatabaseSettings) -> Result<Db, ConnectError> {
    let options = PgConnectOptions::from_str(settings.url.expose_secret())
        .map_err(ConnectError::BadUrl)?
        .log_statements(tracing::log::LevelFilter::Trace);
    if settings.create_if_missing {
        create_database_if_missing(&options).await?;
    }
    let db = pools_from_options(options, settings.max_connections, &settings.runtime_role).await?;
    MIGRATOR.run(&db.system).await?;
    Ok(db)
}

/// Build both pools from connect options (tests pass the options of their fresh database).
pub async fn pools_from_options(
    options: PgConnectOptions,
    max_connections: u32,
    runtime_role: &str,
) -> Result<Db, ConnectError> {
    let system = PgPoolOptions::new()
        // Job batches run in system transactions and the janitor may hold one for seconds.
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(ping_if_idle)
        .connect_with(options.clone().application_name("switchboard-system"))
        .await
        .map_err(|e| unreachable_or(e, &options))?;
    let set_role = format!("SET ROLE {}", quote_ident(runtime_role));
    let app = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(ping_if_idle)
        .after_connect(move |conn, _meta| {
            let set_role = set_role.clone();
            Box::pin(async move {
                conn.execute(set_role.as_str()).await?;
                Ok(())
            })
        })
        .connect_lazy_with(options.application_name("switchboard"));
    Ok(Db { app, system })
}

/// A pooled connection idle at least this long is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// Checks a connection that has sat idle (the server may have closed it meanwhile) before it is
/// used; one in constant use is handed out as it is. sqlx already tests every connection as it
/// goes back to the pool (off the caller's path) and drops a broken one; its default of pinging
/// again before every acquire cost a round trip per transaction, 0.2–0.3 ms of a ~10 ms ingest
/// batch under load. A connection that breaks while in use fails its transaction, which callers
/// already handle (nothing is acknowledged before its commit).
fn ping_if_idle(
    conn: &mut PgConnection,
    meta: PoolConnectionMetadata,
) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        if meta.idle_for >= PING_WHEN_IDLE_FOR {
            conn.ping().await?;
        }
        Ok(true)
    })
}

async fn create_database_if_missing(options: &PgConnectOptions) -> Result<(), ConnectError> {
    let database = options.get_database().unwrap_or("postgres").to_owned();
    let maintenance = options.clone().database("postgres");
    let mut conn = PgConnection::connect_with(&maintenance)
        .await
        .map_err(|e| unreachable_or(e, options))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let create = format!("CREATE DATABASE {}", quote_ident(&database));
        match conn.execute(create.as_str()).await {
            Ok(_) => tracing::info!(%database, "created database"),
            // Another process created it between our check and our create.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    conn.close().await?;
    Ok(())
}

fn unreachable_or(error: sqlx::Error, options: &PgConnectOptions) -> ConnectError {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => ConnectError::Unreachable {
            host: options.get_host().to_owned(),
            port: options.get_port(),
            database: options.get_database().unwrap_or("postgres").to_owned(),
            source: error,
        },
        other => ConnectError::Database(other),
    }
}

/// Quote an SQL identifier (role and database names come from configuration).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn identifiers_are_quoted_safely() {
        assert_eq!(quote_ident("switchboard_app"), "\"switchboard_app\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
