//! The janitor against real PostgreSQL: it analyzes a table that was never analyzed and one whose
//! size doubled, and leaves alone one whose rows were only rewritten.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use switchboard::jobs::janitor::Janitor;

use crate::common::db_for;

/// Runs `sql` on `conn` and waits until the statistics collector shows the table's live and
/// modified row counts at least at the given values.
async fn change_and_wait(conn: &mut PgConnection, sql: &str, live: i64, changed: i64) {
    sqlx::query(sql).execute(&mut *conn).await.expect("change");
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *conn)
        .await
        .expect("flush");
    for _ in 0..100 {
        let (l, c): (i64, i64) = sqlx::query_as(
            "SELECT n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables \
             WHERE relname = 'contacts' AND schemaname = current_schema()",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("stats");
        if l >= live && c >= changed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("statistics never showed {live} live and {changed} changed contacts");
}

fn analyzed(ran: &[(&str, &str)]) -> bool {
    ran.contains(&("ANALYZE", "contacts"))
}

#[sqlx::test]
async fn the_janitor_analyzes_growth_and_leaves_rewritten_rows_alone(pool: PgPool) {
    let db = db_for(&pool).await;
    let seed = switchboard::demo::seed(&db).await.expect("seed");
    let mut conn = db.system.acquire().await.expect("connection");
    let mut janitor = Janitor::default();
    let insert = |n: i64| {
        format!(
            "INSERT INTO contacts (id, tenant_id) SELECT gen_random_uuid(), '{}' \
             FROM generate_series(1, {n})",
            seed.tenant_id
        )
    };

    change_and_wait(&mut conn, &insert(1500), 1500, 1500).await;
    let ran = janitor.sweep(&db.system).await.expect("sweep");
    assert!(analyzed(&ran), "never analyzed: {ran:?}");

    // Every row rewritten twice: many changes, the same size.
    let rewrite = "UPDATE contacts SET display_name = coalesce(display_name, '') || 'x'";
    change_and_wait(&mut conn, rewrite, 1500, 1500).await;
    change_and_wait(&mut conn, rewrite, 1500, 3000).await;
    let ran = janitor.sweep(&db.system).await.expect("sweep");
    assert!(!analyzed(&ran), "rewrites alone: {ran:?}");

    // Doubled.
    change_and_wait(&mut conn, &insert(1600), 3100, 4600).await;
    let ran = janitor.sweep(&db.system).await.expect("sweep");
    assert!(analyzed(&ran), "doubled: {ran:?}");
}
