//! Group-committed ingest. Callers hand an [`Inbound`] to [`Ingestor::ingest`] and wait; one
//! batcher task gathers whatever is queued (up to `max_batch`), writes it all in one transaction
//! and answers every caller after the commit. While a batch commits the next one gathers, so under
//! load each commit (one disk sync) carries hundreds of messages. A batch that would run beside
//! others already in flight first waits, briefly and boundedly, to fill: small overlapping
//! transactions cost PostgreSQL far more per message than fewer, fuller ones, while a batch with
//! nothing else in flight never waits. A batch that fails as a whole is retried one message per
//! transaction, so one bad message cannot fail its neighbours.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::ingest_sql::{ingest_tenant_group, Stored};
use super::model::{Accepted, Inbound, MAX_BODY_BYTES};
use crate::bus::{publish_logged, Bus, Event, EventKind};
use crate::config::IngestSettings;
use crate::db::{set_tenant, Db};
use crate::ids::TenantId;

/// Why a message was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is too long or empty.
    #[error("{0}")]
    Invalid(String),
    /// The server is shutting down; the sender should retry.
    #[error("server is shutting down")]
    ShuttingDown,
    /// The database failed; nothing was stored.
    #[error("storing the message failed: {0}")]
    Database(#[from] sqlx::Error),
    /// The batch this message was in failed; nothing was stored.
    #[error("storing the message failed: {0}")]
    BatchFailed(String),
}

type Reply = oneshot::Sender<Result<Accepted, IngestError>>;

struct Pending {
    inbound: Inbound,
    reply: Reply,
}

/// Handle to the batcher. Cheap to clone.
#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Pending>,
}

struct Sinks {
    db: Db,
    bus: Arc<dyn Bus>,
    wake_jobs: Arc<Notify>,
}

impl Ingestor {
    /// Start the batcher. It drains and stops when `stop` fires.
    pub fn start(
        db: Db,
        bus: Arc<dyn Bus>,
        wake_jobs: Arc<Notify>,
        settings: IngestSettings,
        stop: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(settings.max_batch.max(1) * 8);
        let sinks = Arc::new(Sinks { db, bus, wake_jobs });
        let handle = tokio::spawn(run_batcher(rx, sinks, settings, stop));
        (Self { tx }, handle)
    }

    /// Store one message; returns once it is committed.
    pub async fn ingest(&self, inbound: Inbound) -> Result<Accepted, IngestError> {
        validate(&inbound)?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { inbound, reply })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        answer.await.map_err(|_| IngestError::ShuttingDown)?
    }
}

fn validate(inbound: &Inbound) -> Result<(), IngestError> {
    if inbound.body.len() > MAX_BODY_BYTES {
        return Err(IngestError::Invalid(format!(
            "message body is {} bytes; the limit is {MAX_BODY_BYTES}",
            inbound.body.len()
        )));
    }
    if inbound.external_id.is_empty() || inbound.external_id.len() > 256 {
        return Err(IngestError::Invalid(
            "external id must be 1 to 256 bytes".into(),
        ));
    }
    Ok(())
}

async fn run_batcher(
    mut rx: mpsc::Receiver<Pending>,
    sinks: Arc<Sinks>,
    settings: IngestSettings,
    stop: CancellationToken,
) {
    let slots = Slots::new(settings.max_inflight_batches);
    loop {
        let first = tokio::select! {
            item = rx.recv() => item,
            _ = stop.cancelled() => { rx.close(); rx.recv().await }
        };
        let Some(first) = first else { break };
        let received = Instant::now();
        let Ok(permit) = slots.permits.clone().acquire_owned().await else {
            break;
        };
        let mut batch = vec![first];
        take_queued(&mut rx, &mut batch, settings.max_batch);
        if slots.others_in_flight() > 0 {
            let deadline = received + Duration::from_micros(settings.overlap_linger_us);
            let want = settings.overlap_min_batch.min(settings.max_batch);
            let fill = Fill {
                want,
                max: settings.max_batch,
                deadline,
            };
            fill_overlapping(&mut rx, &mut batch, fill, &slots, &stop).await;
        }
        let sinks = sinks.clone();
        let finished = slots.finished.clone();
        tokio::spawn(async move {
            commit_batch(&sinks, batch).await;
            drop(permit);
            finished.notify_waiters();
        });
    }
    // Wait for the batches still committing.
    let _ = slots.permits.acquire_many(slots.total as u32).await;
}

/// The batcher's transactions in flight: one permit each, and a signal when one finishes.
struct Slots {
    permits: Arc<Semaphore>,
    finished: Arc<Notify>,
    total: usize,
}

impl Slots {
    fn new(total: usize) -> Self {
        let total = total.max(1);
        Self {
            permits: Arc::new(Semaphore::new(total)),
            finished: Arc::new(Notify::new()),
            total,
        }
    }

    /// Transactions in flight besides the one holding the permit just taken.
    fn others_in_flight(&self) -> usize {
        (self.total - self.permits.available_permits()).saturating_sub(1)
    }
}

/// Move whatever is already queued into `batch`, up to `max` messages.
fn take_queued(rx: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>, max: usize) {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
}

/// How long an overlapping batch waits and for how much.
struct Fill {
    want: usize,
    max: usize,
    deadline: Instant,
}

/// A batch about to overlap others waits to carry `fill.want` messages, but never past
/// `fill.deadline` and never once it would be the only transaction in flight.
async fn fill_overlapping(
    rx: &mut mpsc::Receiver<Pending>,
    batch: &mut Vec<Pending>,
    fill: Fill,
    slots: &Slots,
    stop: &CancellationToken,
) {
    loop {
        let finished = slots.finished.notified();
        tokio::pin!(finished);
        // Registered before the check, so a batch finishing in between still wakes us.
        finished.as_mut().enable();
        if batch.len() >= fill.want || slots.others_in_flight() == 0 {
            return;
        }
        tokio::select! {
            item = rx.recv() => match item {
                Some(item) => {
                    batch.push(item);
                    take_queued(rx, batch, fill.max);
                }
                None => return,
            },
            _ = tokio::time::sleep_until(fill.deadline.into()) => return,
            _ = &mut finished => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn commit_batch(sinks: &Sinks, batch: Vec<Pending>) {
    let started = Instant::now();
    let size = batch.len();
    let (inbounds, replies): (Vec<Inbound>, Vec<Reply>) =
        batch.into_iter().map(|p| (p.inbound, p.reply)).unzip();
    match write(&sinks.db, &inbounds).await {
        Ok(stored) => {
            metrics::histogram!("ingest_batch_size").record(size as f64);
            metrics::histogram!("ingest_commit_seconds").record(started.elapsed().as_secs_f64());
            let accepted = after_commit(sinks, &inbounds, stored).await;
            for (reply, accepted) in replies.into_iter().zip(accepted) {
                let _ = reply.send(Ok(accepted));
            }
        }
        Err(error) if size > 1 => {
            tracing::warn!(%error, size, "ingest batch failed; retrying one message at a time");
            for (inbound, reply) in inbounds.into_iter().zip(replies) {
                let result = write(&sinks.db, std::slice::from_ref(&inbound)).await;
                let result = match result {
                    Ok(stored) => after_commit(sinks, std::slice::from_ref(&inbound), stored)
                        .await
                        .first()
                        .copied()
                        .ok_or_else(|| IngestError::BatchFailed("message lost in batch".into())),
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            tracing::error!(%error, "ingest failed");
            for reply in replies {
                let _ = reply.send(Err(IngestError::BatchFailed(error.to_string())));
            }
        }
    }
}

/// Write all messages in one transaction; results follow the input order.
async fn write(db: &Db, inbounds: &[Inbound]) -> Result<Vec<Stored>, IngestError> {
    let mut groups: BTreeMap<TenantId, Vec<usize>> = BTreeMap::new();
    for (i, inbound) in inbounds.iter().enumerate() {
        groups.entry(inbound.tenant_id).or_default().push(i);
    }
    let mut results: Vec<Option<Stored>> = vec![None; inbounds.len()];
    let Some(&first) = groups.keys().next() else {
        return Ok(Vec::new());
    };
    // The first tenant is set with BEGIN, in the same round trip.
    let mut tx = db.tenant_tx(first).await?;
    for (tenant, indexes) in groups {
        if tenant != first {
            set_tenant(&mut tx, tenant).await?;
        }
        let group: Vec<&Inbound> = indexes.iter().map(|&i| &inbounds[i]).collect();
        let stored = ingest_tenant_group(&mut tx, tenant, &group).await?;
        for (i, s) in indexes.into_iter().zip(stored) {
            results[i] = Some(s);
        }
    }
    tx.commit().await?;
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| IngestError::Invalid("message lost in batch".into())))
        .collect()
}

/// Wake the workers and publish the new messages; returns each message's ids in input order.
/// The stored views move into the events: nothing is copied on this path.
async fn after_commit(sinks: &Sinks, inbounds: &[Inbound], stored: Vec<Stored>) -> Vec<Accepted> {
    let accepted: Vec<Accepted> = stored.iter().map(|s| s.accepted).collect();
    let events: Vec<Event> = inbounds
        .iter()
        .zip(stored)
        .filter_map(|(inbound, s)| {
            Some(Event {
                tenant_id: inbound.tenant_id,
                conversation_id: s.accepted.conversation_id,
                kind: EventKind::MessageCreated { message: s.view? },
            })
        })
        .collect();
    metrics::counter!("messages_in_total").increment(events.len() as u64);
    if !events.is_empty() {
        sinks.wake_jobs.notify_one();
        publish_logged(&sinks.bus, events).await;
    }
    accepted
}
