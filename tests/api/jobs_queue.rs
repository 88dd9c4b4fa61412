//! The durable queue: per-key ordering across workers, retries, dead letters, and takeover after a
//! worker is killed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgPool;
use switchboard::db::Db;
use switchboard::ids::TenantId;
use switchboard::jobs::{complete, ClaimedJob, Handlers, JobError, JobHandler, WorkerPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::common::{spawn_app, spawn_app_with, test_settings, Visitor};

/// (ordering key, job number, "start" | "end") in the order they happened.
type ProbeLog = Arc<Mutex<Vec<(String, i64, &'static str)>>>;

/// Records each job's key and order, sleeps a little, and fails on request.
struct Probe {
    db: Db,
    log: ProbeLog,
    fail_always: bool,
}

#[async_trait::async_trait]
impl JobHandler for Probe {
    fn kind(&self) -> &'static str {
        "test_probe"
    }

    async fn run(&self, jobs: Vec<ClaimedJob>, worker: &str) -> Vec<(i64, JobError)> {
        let mut failures = Vec::new();
        for job in jobs {
            let key = job.payload["key"].as_str().unwrap_or("").to_owned();
            let n = job.payload["n"].as_i64().unwrap_or(-1);
            self.log
                .lock()
                .expect("log")
                .push((key.clone(), n, "start"));
            tokio::time::sleep(Duration::from_millis(rand_ms())).await;
            if self.fail_always {
                failures.push((job.id, JobError::Retryable("provider said 503".into())));
                continue;
            }
            let mut tx = self.db.tenant_tx(job.tenant_id).await.expect("tx");
            complete(&mut tx, &[job.id], worker)
                .await
                .expect("complete");
            // Logged before the commit: the commit is what lets the next job of this key run.
            self.log.lock().expect("log").push((key, n, "end"));
            tx.commit().await.expect("commit");
        }
        failures
    }
}

fn leased(probe: Arc<Probe>) -> Handlers {
    Handlers {
        leased: vec![probe],
        in_tx: Vec::new(),
        runtime_role: "switchboard_app".into(),
    }
}

fn rand_ms() -> u64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        % 3) as u64
}

async fn enqueue(pool: &PgPool, tenant: TenantId, key: uuid::Uuid, n: i64, max_attempts: i32) {
    sqlx::query("INSERT INTO jobs (tenant_id, kind, payload, ordering_key, max_attempts) VALUES ($1, 'test_probe', $2, $3, $4)")
        .bind(tenant)
        .bind(json!({"key": key.to_string(), "n": n}))
        .bind(key)
        .bind(max_attempts)
        .execute(pool)
        .await
        .expect("enqueue");
}

#[sqlx::test]
async fn jobs_with_one_key_run_in_order_and_never_overlap_across_workers(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let keys: Vec<uuid::Uuid> = (0..5).map(|_| uuid::Uuid::now_v7()).collect();
    for n in 0..30 {
        for key in &keys {
            enqueue(&pool, app.seed.tenant_id, *key, n, 5).await;
        }
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let stop = CancellationToken::new();
    let mut settings = test_settings().jobs;
    settings.workers = 4;
    settings.batch_size = 3;
    let probe = Arc::new(Probe {
        db: app.db.clone(),
        log: log.clone(),
        fail_always: false,
    });
    let handles = WorkerPool::start(
        app.db.system.clone(),
        leased(probe),
        settings,
        Arc::new(Notify::new()),
        stop.clone(),
    );
    for _ in 0..400 {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'test_probe'")
            .fetch_one(&pool)
            .await
            .expect("count");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.cancel();
    for h in handles {
        let _ = h.await;
    }
    let log = log.lock().expect("log").clone();
    for key in &keys {
        let events: Vec<(i64, &str)> = log
            .iter()
            .filter(|(k, _, _)| *k == key.to_string())
            .map(|(_, n, e)| (*n, *e))
            .collect();
        let expected: Vec<(i64, &str)> = (0..30).flat_map(|n| [(n, "start"), (n, "end")]).collect();
        assert_eq!(events, expected, "key {key} ran out of order or overlapped");
    }
}

#[sqlx::test]
async fn a_failing_job_backs_off_then_is_dead_lettered_and_can_be_retried(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    enqueue(&pool, app.seed.tenant_id, uuid::Uuid::now_v7(), 1, 3).await;
    let stop = CancellationToken::new();
    let probe = Arc::new(Probe {
        db: app.db.clone(),
        log: Arc::new(Mutex::new(Vec::new())),
        fail_always: true,
    });
    let handles = WorkerPool::start(
        app.db.system.clone(),
        leased(probe),
        test_settings().jobs,
        Arc::new(Notify::new()),
        stop.clone(),
    );
    let mut dead = Value::Null;
    for _ in 0..200 {
        dead = app
            .get("/api/v1/jobs?status=dead", &app.api_key)
            .await
            .json()
            .await
            .expect("json");
        if dead.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.cancel();
    for h in handles {
        let _ = h.await;
    }
    let job = &dead[0];
    assert_eq!(job["attempts"], 3);
    assert_eq!(job["last_error"], "provider said 503");
    let id = job["id"].as_i64().expect("id");
    let retried = app
        .post_empty(&format!("/api/v1/jobs/{id}/retry"), &app.api_key)
        .await;
    assert_eq!(retried.status(), 202);
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("row");
    assert_eq!((status.as_str(), attempts), ("queued", 0));
    let again = app
        .post_empty(&format!("/api/v1/jobs/{id}/retry"), &app.api_key)
        .await;
    assert_eq!(again.status(), 404, "only dead jobs can be retried");
}

/// Jobs queued without a limit of their own (every job the server queues) are dead-lettered after
/// the server's `jobs.max_attempts`; a job's own limit still wins.
#[sqlx::test]
async fn the_max_attempts_setting_governs_jobs_without_their_own_limit(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let tenant = app.seed.tenant_id;
    let insert = "INSERT INTO jobs (tenant_id, kind, payload, ordering_key, max_attempts) \
                  VALUES ($1, 'test_probe', '{\"key\": \"k\", \"n\": 0}', $2, $3) RETURNING id";
    let unset: i64 = sqlx::query_scalar(insert)
        .bind(tenant)
        .bind(uuid::Uuid::now_v7())
        .bind(None::<i32>)
        .fetch_one(&pool)
        .await
        .expect("enqueue");
    let own: i64 = sqlx::query_scalar(insert)
        .bind(tenant)
        .bind(uuid::Uuid::now_v7())
        .bind(Some(4))
        .fetch_one(&pool)
        .await
        .expect("enqueue");
    let stop = CancellationToken::new();
    let probe = Arc::new(Probe {
        db: app.db.clone(),
        log: Arc::new(Mutex::new(Vec::new())),
        fail_always: true,
    });
    let mut settings = test_settings().jobs;
    settings.max_attempts = 2;
    let handles = WorkerPool::start(
        app.db.system.clone(),
        leased(probe),
        settings,
        Arc::new(Notify::new()),
        stop.clone(),
    );
    let mut settled: Vec<(i64, String, i32)> = Vec::new();
    for _ in 0..200 {
        settled = sqlx::query_as(
            "SELECT id, status, attempts FROM jobs WHERE kind = 'test_probe' ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .expect("jobs");
        if settled.iter().all(|(_, status, _)| status == "dead") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.cancel();
    for h in handles {
        let _ = h.await;
    }
    assert_eq!(
        settled,
        [(unset, "dead".to_string(), 2), (own, "dead".to_string(), 4)]
    );
}

/// Kill -9 a worker process in the middle of a batch: its open transaction is aborted, the jobs
/// it had locked are taken over by another worker, and every message is answered exactly once.
#[sqlx::test]
async fn a_killed_worker_process_jobs_are_taken_over_and_complete_once(pool: PgPool) {
    // This node ingests only: jobs pile up for the worker process.
    let app = spawn_app_with(pool.clone(), |s| s.jobs.workers = 0).await;
    let visitors = 60;
    for i in 0..visitors {
        let mut v = Visitor::connect(&app.ws_url, &app.webchat_key, None, None).await;
        v.say(&format!("k{i}"), "hello").await;
        v.next_of("ack").await;
    }
    let database = pool
        .connect_options()
        .get_database()
        .unwrap_or("postgres")
        .to_owned();
    let url = format!("postgres://postgres@127.0.0.1:5432/{database}");
    let mut child = spawn_worker(&url, 1);
    // Wait until the worker is part-way through and holds jobs in an open transaction, then
    // kill it without warning.
    let mut in_flight_at_kill = 0i64;
    for _ in 0..2000 {
        let (done, in_flight): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM messages WHERE author_kind = 'bot'), \
                    (SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                     WHERE a.datname = current_database() AND a.application_name = 'switchboard-system' \
                       AND l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock')",
        )
        .fetch_one(&pool)
        .await
        .expect("progress");
        if done >= 10 && in_flight > 0 {
            child.kill().expect("kill worker");
            in_flight_at_kill = in_flight;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = child.wait();
    assert!(
        in_flight_at_kill > 0,
        "the worker was killed inside a transaction"
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(left > 0, "work remained after the kill");

    let mut rescuer = spawn_worker(&url, 4);
    for _ in 0..600 {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&pool)
            .await
            .expect("count");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = rescuer.kill();
    let _ = rescuer.wait();
    let per_conversation: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE author_kind = 'bot') FROM messages GROUP BY conversation_id",
    )
    .fetch_all(&pool)
    .await
    .expect("counts");
    assert_eq!(per_conversation.len(), visitors);
    assert!(
        per_conversation.iter().all(|&n| n == 2),
        "every greeting sent exactly once: {per_conversation:?}"
    );
}

/// A leased job whose worker stalls past its lease is taken over; the stalled worker's late
/// completion is refused, so the job's effect happens once.
#[sqlx::test]
async fn a_stalled_lease_is_taken_over_and_the_late_completion_is_refused(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    enqueue(&pool, app.seed.tenant_id, uuid::Uuid::now_v7(), 7, 5).await;
    let lease = Duration::from_millis(300);
    let first = switchboard::jobs::claim(&app.db.system, &["test_probe"], 10, lease, "stalled")
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    // Not claimable while leased.
    assert!(
        switchboard::jobs::claim(&app.db.system, &["test_probe"], 10, lease, "other")
            .await
            .expect("claim")
            .is_empty()
    );
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(
        switchboard::jobs::requeue_expired(&app.db.system)
            .await
            .expect("reap"),
        1
    );
    let second = switchboard::jobs::claim(&app.db.system, &["test_probe"], 10, lease, "rescuer")
        .await
        .expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    let mut tx = app.db.tenant_tx(app.seed.tenant_id).await.expect("tx");
    assert!(
        complete(&mut tx, &[first[0].id], "stalled")
            .await
            .expect("complete")
            .is_empty(),
        "late completion refused"
    );
    assert_eq!(
        complete(&mut tx, &[second[0].id], "rescuer")
            .await
            .expect("complete"),
        vec![second[0].id]
    );
    tx.commit().await.expect("commit");
}

fn spawn_worker(database_url: &str, batch: i64) -> std::process::Child {
    let root = env!("CARGO_MANIFEST_DIR");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("SWITCHBOARD_CONFIG_DIR", format!("{root}/config"))
        .env("SWITCHBOARD_ENV", "test")
        .env("SWITCHBOARD_SERVER__PORT", port.to_string())
        .env("SWITCHBOARD_DATABASE__CREATE_IF_MISSING", "false")
        .env("SWITCHBOARD_AGENT__FLOWS_DIR", format!("{root}/flows"))
        .env("SWITCHBOARD_AGENT__PROMPTS_DIR", format!("{root}/prompts"))
        .env("SWITCHBOARD_JOBS__BATCH_SIZE", batch.to_string())
        .env("SWITCHBOARD_JOBS__LEASE_SECS", "2")
        .env("SWITCHBOARD_JOBS__WORKERS", "1")
        .env_remove("REDIS_URL")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn worker process")
}
