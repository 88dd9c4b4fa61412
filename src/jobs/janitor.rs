//! The janitor: vacuums the hot, constantly rewritten tables (the job queue and conversations)
//! every second or so when they have accumulated dead rows, and analyzes the growing tables when
//! their size has moved a lot since their statistics were taken.
//!
//! Each job is inserted, updated and deleted within milliseconds, and every message rewrites its
//! conversation row. Autovacuum wakes at most once per `autovacuum_naptime` (a minute by default),
//! so during a burst dead rows pile up by the tens of thousands and every claim and lookup slows
//! down with them. `VACUUM (SKIP_LOCKED)` lets several nodes run a janitor without queueing
//! behind each other.
//!
//! Statistics matter as much: a table analyzed while empty (or never, where autovacuum is off)
//! makes the planner choose sequential scans, and prepared statements keep that plan until the
//! next ANALYZE. Measured: the ingest dedupe lookup took 170 ms per batch on a never-analyzed
//! 100,000-row `messages` table instead of well under a millisecond. What goes stale that way is
//! the table's size, so the janitor analyzes a table that was never analyzed, or whose live rows
//! doubled or halved since it last did. Rows merely rewritten (every message updates its
//! conversation) leave the sizes as they were; analyzing on them ran ANALYZE on `conversations`
//! every second under load, and each ANALYZE took a core for long enough to show in the ingest
//! latency's tail. Such drift is autovacuum's to handle, where it runs.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Tables rewritten so often that they need vacuuming every few seconds under load.
const VACUUMED: [&str; 2] = ["jobs", "conversations"];
/// Tables whose statistics go stale as they grow.
const ANALYZED: [&str; 5] = [
    "messages",
    "conversations",
    "contact_identities",
    "contacts",
    "jobs",
];
/// Dead rows in a table before it is worth vacuuming.
const DEAD_ROWS_THRESHOLD: i64 = 2000;
/// Rows a table's size must have moved by, and changed rows since its last ANALYZE, before it
/// is analyzed again.
const CHANGED_ROWS_THRESHOLD: i64 = 1000;

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
        let mut janitor = Janitor::default();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if let Err(error) = janitor.sweep(&system).await {
                tracing::warn!(%error, "vacuuming hot tables failed");
            }
        }
    }))
}

/// One table's figures from `pg_stat_user_tables` and `pg_class`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableStats {
    /// Live rows now.
    pub live: i64,
    /// Dead rows now.
    pub dead: i64,
    /// Rows inserted, updated or deleted since the last ANALYZE.
    pub changed: i64,
    /// Rows the planner believes the table has (`reltuples`; -1 if never counted).
    pub counted: i64,
    /// No ANALYZE, manual or automatic, has ever run on it.
    pub never_analyzed: bool,
}

/// Whether a table's statistics are stale: enough of it changed since its last ANALYZE, and
/// either it never had one or its live rows doubled or halved since `baseline` (the live rows
/// when this janitor last analyzed it, else the planner's count).
pub fn statistics_stale(t: &TableStats, baseline: i64) -> bool {
    if t.changed <= CHANGED_ROWS_THRESHOLD {
        return false;
    }
    if t.never_analyzed {
        return true;
    }
    let baseline = baseline.max(0);
    let moved = (t.live - baseline).abs() > CHANGED_ROWS_THRESHOLD;
    moved && (t.live >= 2 * baseline || 2 * t.live <= baseline)
}

/// The sweeps of one node, with what it remembers between them: each table's live rows when it
/// last analyzed it.
#[derive(Debug, Default)]
pub struct Janitor {
    analyzed_at: HashMap<&'static str, i64>,
}

impl Janitor {
    /// Vacuum each table whose dead rows passed the threshold; analyze each whose statistics are
    /// stale (see [`statistics_stale`]). Gives the commands run, as (command, table).
    pub async fn sweep(
        &mut self,
        system: &PgPool,
    ) -> Result<Vec<(&'static str, &'static str)>, sqlx::Error> {
        let stats: Vec<(String, i64, i64, i64, i64, bool)> = sqlx::query_as(
            "SELECT s.relname::text, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, \
                    c.reltuples::int8, s.last_analyze IS NULL AND s.last_autoanalyze IS NULL \
             FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
             WHERE s.schemaname = current_schema() AND s.relname = ANY($1)",
        )
        .bind(&ANALYZED[..])
        .fetch_all(system)
        .await?;
        let mut ran = Vec::new();
        for (table, live, dead, changed, counted, never_analyzed) in stats {
            // Table names come from the fixed lists above, never from input.
            let Some(&table) = ANALYZED.iter().find(|t| **t == table) else {
                continue;
            };
            let t = TableStats {
                live,
                dead,
                changed,
                counted,
                never_analyzed,
            };
            if VACUUMED.contains(&table) && t.dead > DEAD_ROWS_THRESHOLD {
                run(system, "VACUUM (SKIP_LOCKED)", table).await?;
                ran.push(("VACUUM", table));
            }
            let baseline = self.analyzed_at.get(table).copied().unwrap_or(t.counted);
            if statistics_stale(&t, baseline) {
                run(system, "ANALYZE (SKIP_LOCKED)", table).await?;
                self.analyzed_at.insert(table, t.live);
                ran.push(("ANALYZE", table));
            }
        }
        Ok(ran)
    }
}

async fn run(
    system: &PgPool,
    command: &'static str,
    table: &'static str,
) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(&format!("{command} {table}"))
        .execute(system)
        .await?;
    metrics::counter!("janitor_runs_total", "command" => command, "table" => table).increment(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(live: i64, changed: i64, never_analyzed: bool) -> TableStats {
        TableStats {
            live,
            dead: 0,
            changed,
            counted: -1,
            never_analyzed,
        }
    }

    #[test]
    fn a_table_never_analyzed_is_analyzed_once_enough_of_it_changed() {
        assert!(!statistics_stale(&table(900, 900, true), -1));
        assert!(statistics_stale(&table(1500, 1500, true), -1));
    }

    #[test]
    fn a_table_is_analyzed_again_when_its_size_doubles_or_halves() {
        // Last analyzed at 10,000 rows.
        assert!(!statistics_stale(&table(19_000, 9_000, false), 10_000));
        assert!(statistics_stale(&table(20_000, 10_000, false), 10_000));
        assert!(!statistics_stale(&table(6_000, 4_000, false), 10_000));
        assert!(statistics_stale(&table(5_000, 5_000, false), 10_000));
    }

    #[test]
    fn rows_rewritten_in_place_do_not_make_statistics_stale() {
        // 400 conversations, each rewritten hundreds of times.
        assert!(!statistics_stale(&table(400, 120_000, false), 400));
    }

    #[test]
    fn a_table_analyzed_while_empty_is_analyzed_once_it_has_rows() {
        assert!(statistics_stale(&table(1_200, 1_200, false), 0));
        assert!(!statistics_stale(&table(800, 1_200, false), 0));
    }
}
