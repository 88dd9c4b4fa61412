//! Group-committed ingest against real PostgreSQL: batches mixing known senders, new senders,
//! closed conversations and repeated deliveries, two ingest "nodes" racing the same retries and
//! the same new senders, conversations opened with the id their first message asked for, and how
//! a batch that would overlap another one in flight waits to fill.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use sqlx::PgPool;
use switchboard::bus::{Bus, Hub, InProcessBus};
use switchboard::config::IngestSettings;
use switchboard::db::Db;
use switchboard::ids::{ChannelId, ConversationId, TenantId};
use switchboard::inbox::{Accepted, Inbound, Ingestor, SenderIdentity};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::common::db_for;

struct Setup {
    db: Db,
    tenant: TenantId,
    channel: ChannelId,
    stop: CancellationToken,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn setup(pool: &PgPool) -> Setup {
    let db = db_for(pool).await;
    let seed = switchboard::demo::seed(&db).await.expect("seed");
    let channel: ChannelId = sqlx::query_scalar(
        "SELECT id FROM channels WHERE tenant_id = $1 AND kind = 'webchat' LIMIT 1",
    )
    .bind(seed.tenant_id)
    .fetch_one(&db.system)
    .await
    .expect("web-chat channel");
    Setup {
        db,
        tenant: seed.tenant_id,
        channel,
        stop: CancellationToken::new(),
    }
}

fn ingestor(s: &Setup, max_inflight_batches: usize) -> Ingestor {
    ingestor_with(
        s,
        IngestSettings {
            max_batch: 512,
            max_inflight_batches,
            overlap_min_batch: 64,
            overlap_linger_us: 3000,
        },
    )
}

fn ingestor_with(s: &Setup, settings: IngestSettings) -> Ingestor {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(Hub::new()));
    Ingestor::start(
        s.db.clone(),
        bus,
        Arc::new(Notify::new()),
        settings,
        s.stop.clone(),
    )
    .0
}

fn inbound(s: &Setup, sender: &str, external_id: &str) -> Inbound {
    Inbound {
        tenant_id: s.tenant,
        channel_id: s.channel,
        sender: SenderIdentity {
            address: sender.into(),
            display_name: None,
        },
        external_id: external_id.into(),
        body: format!("{sender} says {external_id}"),
        content: json!({}),
        received_at: Utc::now(),
        open_as: None,
    }
}

/// Every stored message of a conversation, as (seq, external id), in seq order.
async fn stored(db: &Db, conversation: ConversationId) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT seq, external_id FROM messages WHERE conversation_id = $1 ORDER BY seq")
        .bind(conversation)
        .fetch_all(&db.system)
        .await
        .expect("messages")
}

#[sqlx::test]
async fn a_mixed_batch_stores_each_delivery_once_in_arrival_order(pool: PgPool) {
    let s = setup(&pool).await;
    let ingest = ingestor(&s, 1);
    let k0 = ingest.ingest(inbound(&s, "known", "k0")).await.expect("k0");
    let c0 = ingest
        .ingest(inbound(&s, "closing", "c0"))
        .await
        .expect("c0");
    sqlx::query("UPDATE conversations SET status = 'closed' WHERE id = $1")
        .bind(c0.conversation_id)
        .execute(&s.db.system)
        .await
        .expect("close");

    // One batch (the batcher runs one transaction at a time, and all of these are queued while
    // the first is committing): known sender, new sender, a closed conversation, a retry of a
    // stored message and a retry within the batch.
    let deliveries = [
        ("known", "k1"),
        ("new", "n1"),
        ("known", "k2"),
        ("known", "k0"),
        ("closing", "c1"),
        ("new", "n2"),
        ("known", "k2"),
        ("known", "k3"),
    ];
    let results: Vec<Accepted> = futures::future::try_join_all(
        deliveries
            .iter()
            .map(|(sender, ext)| ingest.ingest(inbound(&s, sender, ext))),
    )
    .await
    .expect("ingest");
    let by: HashMap<&str, Vec<Accepted>> =
        deliveries
            .iter()
            .zip(&results)
            .fold(HashMap::new(), |mut m, ((_, ext), a)| {
                m.entry(*ext).or_default().push(*a);
                m
            });

    // All of it committed as one batch (a failed batch is retried one message at a time).
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM messages WHERE external_id <> ALL($1)",
    )
    .bind(["k0", "c0"])
    .fetch_one(&s.db.system)
    .await
    .expect("transactions");
    assert_eq!(transactions, 1, "the batch was split");

    // Retries answer with the original, flagged.
    assert_eq!(by["k0"][0].message_id, k0.message_id);
    assert!(by["k0"][0].duplicate);
    assert_eq!(by["k2"][1].message_id, by["k2"][0].message_id);
    assert!(!by["k2"][0].duplicate && by["k2"][1].duplicate);

    // The known sender's conversation continues, numbered in arrival order.
    assert_eq!(by["k1"][0].conversation_id, k0.conversation_id);
    assert_eq!(
        stored(&s.db, k0.conversation_id).await,
        [(1, "k0"), (2, "k1"), (3, "k2"), (4, "k3")].map(|(q, e)| (q, e.to_string()))
    );
    // A new sender gets a conversation of their own; a closed one is not reopened.
    assert_eq!(by["n1"][0].conversation_id, by["n2"][0].conversation_id);
    assert_eq!(
        stored(&s.db, by["n1"][0].conversation_id).await,
        [(1, "n1"), (2, "n2")].map(|(q, e)| (q, e.to_string()))
    );
    assert_ne!(by["c1"][0].conversation_id, c0.conversation_id);
    assert_eq!(by["c1"][0].seq, 1);

    // One open agent_turn job per conversation, at its first message: the messages after it
    // wait behind it instead of queuing a job each (nothing answered them yet).
    let jobs: Vec<(ConversationId, i64, bool)> = sqlx::query_as(
        "SELECT m.conversation_id, m.seq, (j.payload->>'open')::bool FROM jobs j \
         JOIN messages m ON m.id = (j.payload->>'message_id')::uuid \
         WHERE j.kind = 'agent_turn' ORDER BY j.id",
    )
    .fetch_all(&s.db.system)
    .await
    .expect("jobs");
    let mut conversations: Vec<ConversationId> = vec![
        k0.conversation_id,
        c0.conversation_id,
        by["n1"][0].conversation_id,
        by["c1"][0].conversation_id,
    ];
    conversations.sort();
    let mut queued: Vec<ConversationId> = jobs.iter().map(|j| j.0).collect();
    queued.sort();
    assert_eq!(queued, conversations, "{jobs:?}");
    assert!(
        jobs.iter().all(|&(_, seq, open)| seq == 1 && open),
        "{jobs:?}"
    );
}

#[sqlx::test]
async fn two_nodes_racing_retries_store_each_message_once_in_order(pool: PgPool) {
    let s = setup(&pool).await;
    let nodes = [ingestor(&s, 4), ingestor(&s, 4)];
    const SENDERS: usize = 12;
    const MESSAGES: usize = 8;
    // Each sender sends its messages one after another, every one delivered three times at once
    // (twice to one node, once to the other), as a provider retrying a slow acknowledgement would.
    let senders = (0..SENDERS).map(|n| {
        let nodes = &nodes;
        let s = &s;
        async move {
            let sender = format!("sender-{n}");
            let mut seqs = Vec::new();
            for m in 0..MESSAGES {
                let ext = format!("{sender}-m{m}");
                let tries = [
                    nodes[0].ingest(inbound(s, &sender, &ext)),
                    nodes[1].ingest(inbound(s, &sender, &ext)),
                    nodes[n % 2].ingest(inbound(s, &sender, &ext)),
                ];
                let acks = futures::future::try_join_all(tries).await.expect("ingest");
                assert!(acks.iter().all(|a| a.message_id == acks[0].message_id));
                assert_eq!(acks.iter().filter(|a| !a.duplicate).count(), 1, "{acks:?}");
                seqs.push((acks[0].conversation_id, acks[0].seq));
            }
            seqs
        }
    });
    let all = futures::future::join_all(senders).await;

    for seqs in &all {
        // One conversation per sender, each message after the previous one.
        assert!(seqs.iter().all(|(c, _)| *c == seqs[0].0));
        assert!(seqs.windows(2).all(|w| w[0].1 < w[1].1), "{seqs:?}");
    }
    let (messages, jobs): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages), \
                (SELECT count(*) FROM jobs WHERE kind = 'agent_turn')",
    )
    .fetch_one(&s.db.system)
    .await
    .expect("counts");
    assert_eq!(messages, (SENDERS * MESSAGES) as i64);
    // Nothing ran the turns: each conversation's first turn answers all of its messages.
    assert_eq!(jobs, SENDERS as i64);
}

#[sqlx::test]
async fn new_senders_first_messages_racing_on_two_nodes_share_one_contact_and_conversation(
    pool: PgPool,
) {
    let s = setup(&pool).await;
    let nodes = [ingestor(&s, 4), ingestor(&s, 4)];
    const SENDERS: usize = 16;
    // Two different first messages from each new sender, one to each node at once: both nodes
    // try to create the same identity, contact and conversation; each must find the other's.
    let firsts = (0..SENDERS).map(|n| {
        let (nodes, s) = (&nodes, &s);
        async move {
            let sender = format!("new-{n}");
            let a = nodes[0].ingest(inbound(s, &sender, &format!("{sender}-a")));
            let b = nodes[1].ingest(inbound(s, &sender, &format!("{sender}-b")));
            let (a, b) = futures::future::try_join(a, b).await.expect("ingest");
            assert_eq!(a.conversation_id, b.conversation_id, "{sender}");
            let mut seqs = [a.seq, b.seq];
            seqs.sort_unstable();
            assert_eq!(seqs, [1, 2], "{sender}");
        }
    });
    futures::future::join_all(firsts).await;
    let (contacts, identities, conversations, messages): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM contact_identities), \
                (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)",
    )
    .fetch_one(&s.db.system)
    .await
    .expect("counts");
    let n = SENDERS as i64;
    assert_eq!(
        (contacts, identities, conversations, messages),
        (n, n, n, 2 * n)
    );
    let last_seqs: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT last_seq FROM conversations")
        .fetch_all(&s.db.system)
        .await
        .expect("last_seq");
    assert_eq!(last_seqs, [2]);
}

#[sqlx::test]
async fn a_message_opening_a_conversation_opens_it_with_the_id_it_asked_for(pool: PgPool) {
    let s = setup(&pool).await;
    let ingest = ingestor(&s, 1);
    let asked = ConversationId::new();
    let first = Inbound {
        open_as: Some(asked),
        ..inbound(&s, "visitor", "m1")
    };
    let m1 = ingest.ingest(first).await.expect("m1");
    assert_eq!((m1.conversation_id, m1.seq), (asked, 1));

    // An open conversation continues whatever id a later message asks for.
    let other = Inbound {
        open_as: Some(ConversationId::new()),
        ..inbound(&s, "visitor", "m2")
    };
    let m2 = ingest.ingest(other).await.expect("m2");
    assert_eq!((m2.conversation_id, m2.seq), (asked, 2));

    // Once it is closed, the next message opens the one it asks for; without asking, a fresh one.
    sqlx::query("UPDATE conversations SET status = 'closed' WHERE id = $1")
        .bind(asked)
        .execute(&s.db.system)
        .await
        .expect("close");
    let again = ConversationId::new();
    let m3 = Inbound {
        open_as: Some(again),
        ..inbound(&s, "visitor", "m3")
    };
    let m3 = ingest.ingest(m3).await.expect("m3");
    assert_eq!((m3.conversation_id, m3.seq), (again, 1));
    let m4 = ingest
        .ingest(inbound(&s, "stranger", "m4"))
        .await
        .expect("m4");
    assert!(![asked, again].contains(&m4.conversation_id));
}

#[sqlx::test]
async fn deleting_a_tenant_removes_its_messages_and_queued_jobs(pool: PgPool) {
    let s = setup(&pool).await;
    let ingest = ingestor(&s, 1);
    ingest.ingest(inbound(&s, "a", "m1")).await.expect("m1");
    ingest.ingest(inbound(&s, "b", "m2")).await.expect("m2");
    let count = |sql: &'static str| {
        let system = s.db.system.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&system)
                .await
                .expect("count")
        }
    };
    assert_eq!(count("SELECT count(*) FROM jobs").await, 2);
    sqlx::query("DELETE FROM tenants WHERE id = $1")
        .bind(s.tenant)
        .execute(&s.db.system)
        .await
        .expect("delete tenant");
    // Neither table has a row-level foreign key to its tenant; statement triggers clean up.
    assert_eq!(count("SELECT count(*) FROM jobs").await, 0);
    assert_eq!(count("SELECT count(*) FROM messages").await, 0);
}

fn overlap_settings(overlap_min_batch: usize, linger: Duration) -> IngestSettings {
    IngestSettings {
        max_batch: 512,
        max_inflight_batches: 2,
        overlap_min_batch,
        overlap_linger_us: linger.as_micros() as u64,
    }
}

/// Holds the conversation of sender "blocker" locked so that the ingest batch carrying its next
/// message stays in flight until [`Blocked::release`]; returns once that batch is waiting.
struct Blocked {
    lock: sqlx::Transaction<'static, sqlx::Postgres>,
    pending: tokio::task::JoinHandle<Accepted>,
}

impl Blocked {
    async fn start(s: &Setup, ingest: &Ingestor) -> Self {
        let first = ingest
            .ingest(inbound(s, "blocker", "b0"))
            .await
            .expect("b0");
        let mut lock = s.db.system.begin().await.expect("begin");
        sqlx::query("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE")
            .bind(first.conversation_id)
            .execute(&mut *lock)
            .await
            .expect("lock");
        let pending = {
            let (ingest, message) = (ingest.clone(), inbound(s, "blocker", "b1"));
            tokio::spawn(async move { ingest.ingest(message).await.expect("b1") })
        };
        let waiting = async {
            loop {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .fetch_one(&s.db.system)
                .await
                .expect("activity");
                if n > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the blocked batch never reached the lock");
        Self { lock, pending }
    }

    async fn release(self) {
        self.lock.rollback().await.expect("release");
        let b1 = tokio::time::timeout(Duration::from_secs(10), self.pending)
            .await
            .expect("the blocked message was never acknowledged")
            .expect("task");
        assert_eq!(b1.seq, 2);
    }
}

/// Send one message from each sender, one after another with a pause between, without waiting
/// for acknowledgements; then wait (bounded) for all of them.
async fn trickle(s: &Setup, ingest: &Ingestor, senders: &[&str]) -> Vec<Accepted> {
    let mut pending = Vec::new();
    for sender in senders {
        let (ingest, message) = (ingest.clone(), inbound(s, sender, &format!("{sender}-1")));
        pending.push(tokio::spawn(async move { ingest.ingest(message).await }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = futures::future::try_join_all(pending);
    tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .expect("messages were never acknowledged")
        .expect("task")
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("ingest")
}

async fn transactions_of(s: &Setup, senders: &[&str]) -> i64 {
    let externals: Vec<String> = senders.iter().map(|x| format!("{x}-1")).collect();
    sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM messages WHERE external_id = ANY($1)",
    )
    .bind(&externals)
    .fetch_one(&s.db.system)
    .await
    .expect("transactions")
}

#[sqlx::test]
async fn a_batch_that_would_overlap_another_waits_until_it_is_full(pool: PgPool) {
    let s = setup(&pool).await;
    let ingest = ingestor_with(&s, overlap_settings(5, Duration::from_secs(60)));
    let blocked = Blocked::start(&s, &ingest).await;
    // Arriving one by one while another batch is in flight, these five wait for each other:
    // without the wait the first would commit alone and the other four in a third batch.
    let senders = ["s1", "s2", "s3", "s4", "s5"];
    let acks = trickle(&s, &ingest, &senders).await;
    assert!(acks.iter().all(|a| a.seq == 1 && !a.duplicate));
    assert_eq!(transactions_of(&s, &senders).await, 1);
    blocked.release().await;
}

#[sqlx::test]
async fn an_overlapping_batch_commits_part_full_when_its_wait_runs_out(pool: PgPool) {
    let s = setup(&pool).await;
    let ingest = ingestor_with(&s, overlap_settings(100, Duration::from_millis(300)));
    let blocked = Blocked::start(&s, &ingest).await;
    // Far fewer than 100 arrive and the other batch stays blocked: the wait's limit ends it.
    let senders = ["t1", "t2", "t3"];
    trickle(&s, &ingest, &senders).await;
    assert_eq!(transactions_of(&s, &senders).await, 1);
    blocked.release().await;
}

#[sqlx::test]
async fn a_batch_with_nothing_else_in_flight_never_waits_to_fill(pool: PgPool) {
    let s = setup(&pool).await;
    // A wait of a minute for 100 messages would time the single message out below.
    let ingest = ingestor_with(&s, overlap_settings(100, Duration::from_secs(60)));
    let ack = tokio::time::timeout(
        Duration::from_secs(10),
        ingest.ingest(inbound(&s, "alone", "alone-1")),
    )
    .await
    .expect("a lone message waited for company")
    .expect("ingest");
    assert_eq!(ack.seq, 1);
}
