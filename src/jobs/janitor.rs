//! The janitor: vacuums the hot, constantly rewritten tables (the job queue and conversations)
//! every few seconds when they have accumulated dead rows.
//!
//! Each job is inserted, updated and deleted within milliseconds, and every message rewrites its
//! conversation row. Autovacuum wakes at most once per `autovacuum_naptime` (a minute by default),
//! so during a burst dead rows pile up by the tens of thousands and every claim and lookup slows
//! down with them. `VACUUM (SKIP_LOCKED)` lets several nodes run a janitor without queueing
//! behind each other.

use std::time::Duration;

use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Tables the janitor keeps clean.
const TABLES: [&str; 2] = ["jobs", "conversations"];
/// Dead rows in a table before it is worth vacuuming.
const DEAD_ROWS_THRESHOLD: i64 = 2000;

/// Start the janitor; `interval` zero disables it.
pub fn start(
    system: PgPool,
    interval: Duration,
    stop: CancellationToken,
) -> Option<JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if let Err(error) = sweep(&system).await {
                tracing::warn!(%error, "vacuuming hot tables failed");
            }
        }
    }))
}

/// Vacuum each table whose dead rows passed the threshold.
pub async fn sweep(system: &PgPool) -> Result<(), sqlx::Error> {
    let dirty: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables \
         WHERE relname = ANY($1) AND n_dead_tup > $2",
    )
    .bind(&TABLES[..])
    .bind(DEAD_ROWS_THRESHOLD)
    .fetch_all(system)
    .await?;
    for table in dirty {
        // The name comes from the fixed list above, never from input.
        if TABLES.contains(&table.as_str()) {
            sqlx::raw_sql(&format!("VACUUM (SKIP_LOCKED) {table}"))
                .execute(system)
                .await?;
            metrics::counter!("janitor_vacuums_total", "table" => table).increment(1);
        }
    }
    Ok(())
}
