//! Async front for the [`Embedder`]: micro-batching of concurrent requests, model runs on a
//! blocking thread, and a bounded exact-text LRU cache.
//!
//! Invariants:
//! - At most one forward pass runs at a time per service (candle already uses every core for
//!   one batch); requests arriving meanwhile queue up and form the next batch.
//! - A batch closes when it holds `max_batch` texts or `max_wait` has passed since its first
//!   request, whichever comes first. Duplicate texts in a batch are embedded once.
//! - Cache hits never touch the worker. Results are shared `Arc`s, identical for every caller.
//! - The worker task is spawned lazily on the first request, on the caller's tokio runtime
//!   (which must have its time driver enabled when `max_wait > 0`, as `#[tokio::main]` does).
//!   If that runtime goes away, the next request spawns a fresh worker on the current one.
//! - Calling outside a tokio runtime, or a failed model run, yields an [`EmbedError`]; nothing
//!   panics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::cache::{LruCache, SharedEmbedding};
use super::error::EmbedError;
use super::Embedder;

/// Tuning knobs for [`EmbeddingService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOptions {
    /// Most texts embedded in one forward pass (values below 1 count as 1).
    pub max_batch: usize,
    /// How long a batch waits for more requests after its first one. Zero means "take
    /// whatever is already queued" (no added latency; batching only under load).
    pub max_wait: Duration,
    /// Entries in the exact-text LRU cache; 0 disables caching.
    pub cache_capacity: usize,
    /// Requests that may wait for the worker before callers are back-pressured.
    pub queue_capacity: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            max_batch: 32,
            max_wait: Duration::from_millis(2),
            cache_capacity: 10_000,
            queue_capacity: 1024,
        }
    }
}

/// The outcome delivered to one waiting caller.
type Reply = Result<SharedEmbedding, Arc<EmbedError>>;

/// One queued request.
struct Job {
    text: String,
    reply: oneshot::Sender<Reply>,
}

/// State shared by all clones of a service.
struct Shared {
    embedder: Arc<Embedder>,
    opts: ServiceOptions,
    cache: Mutex<LruCache>,
    worker: Mutex<Option<mpsc::Sender<Job>>>,
}

/// Batching, caching async front for an [`Embedder`]. Cheap to clone; clones share the
/// worker and the cache.
#[derive(Clone)]
pub struct EmbeddingService {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbeddingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingService")
            .field("opts", &self.shared.opts)
            .field("cached", &self.cache_len())
            .finish_non_exhaustive()
    }
}

/// Locks a mutex, recovering the data if a previous holder panicked (the guarded values stay
/// consistent across every early exit, so this is safe).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EmbeddingService {
    /// Creates the service. No task is spawned until the first [`embed`](Self::embed) call,
    /// so this may be called outside a runtime.
    pub fn new(embedder: Arc<Embedder>, opts: ServiceOptions) -> Self {
        let opts = ServiceOptions {
            max_batch: opts.max_batch.max(1),
            queue_capacity: opts.queue_capacity.max(1),
            ..opts
        };
        Self {
            shared: Arc::new(Shared {
                embedder,
                cache: Mutex::new(LruCache::new(opts.cache_capacity)),
                worker: Mutex::new(None),
                opts,
            }),
        }
    }

    /// The embedding of `text` (L2-normalised, [`Embedder::dim`] floats), from the cache or
    /// from the next batch.
    pub async fn embed(&self, text: &str) -> Result<SharedEmbedding, EmbedError> {
        if let Some(hit) = lock(&self.shared.cache).get(text) {
            return Ok(hit);
        }
        let sender = self.sender()?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            text: text.to_string(),
            reply,
        };
        sender
            .send(job)
            .await
            .map_err(|_| EmbedError::Service("the batching worker has stopped".into()))?;
        match answer.await {
            Ok(Ok(embedding)) => Ok(embedding),
            Ok(Err(shared)) => Err(EmbedError::Batch(shared)),
            Err(_) => Err(EmbedError::Service(
                "the batching worker dropped the request".into(),
            )),
        }
    }

    /// Number of texts currently cached.
    pub fn cache_len(&self) -> usize {
        lock(&self.shared.cache).len()
    }

    /// The underlying embedder.
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.shared.embedder
    }

    /// The live worker's queue, spawning a worker on the current runtime if there is none.
    fn sender(&self) -> Result<mpsc::Sender<Job>, EmbedError> {
        let mut worker = lock(&self.shared.worker);
        if let Some(tx) = worker.as_ref().filter(|tx| !tx.is_closed()) {
            return Ok(tx.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            EmbedError::Service(format!("EmbeddingService needs a tokio runtime: {e}"))
        })?;
        let (tx, rx) = mpsc::channel(self.shared.opts.queue_capacity);
        runtime.spawn(run_worker(rx, Arc::downgrade(&self.shared)));
        *worker = Some(tx.clone());
        Ok(tx)
    }
}

/// Collects batches from the queue and embeds them until every service clone is gone.
async fn run_worker(mut queue: mpsc::Receiver<Job>, shared: std::sync::Weak<Shared>) {
    while let Some(first) = queue.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let jobs = collect_batch(first, &mut queue, &shared.opts).await;
        embed_jobs(jobs, &shared).await;
    }
}

/// Gathers up to `max_batch` jobs, waiting at most `max_wait` after the first.
async fn collect_batch(
    first: Job,
    queue: &mut mpsc::Receiver<Job>,
    opts: &ServiceOptions,
) -> Vec<Job> {
    let mut jobs = vec![first];
    if opts.max_wait.is_zero() {
        while jobs.len() < opts.max_batch {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        return jobs;
    }
    let deadline = Instant::now() + opts.max_wait;
    while jobs.len() < opts.max_batch {
        match tokio::time::timeout_at(deadline, queue.recv()).await {
            Ok(Some(job)) => jobs.push(job),
            Ok(None) | Err(_) => break,
        }
    }
    jobs
}

/// Callers waiting for one distinct text.
type Waiters = Vec<oneshot::Sender<Reply>>;

/// Groups jobs by text (first-seen order) and answers those whose text was cached after they
/// were queued (e.g. by the previous batch).
fn group_uncached(jobs: Vec<Job>, shared: &Shared) -> (Vec<String>, Vec<Waiters>) {
    let mut texts: Vec<String> = Vec::new();
    let mut waiters: Vec<Waiters> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut cache = lock(&shared.cache);
    for job in jobs {
        if let Some(&i) = index.get(&job.text) {
            waiters[i].push(job.reply);
        } else if let Some(hit) = cache.get(&job.text) {
            let _ = job.reply.send(Ok(hit));
        } else {
            index.insert(job.text.clone(), texts.len());
            texts.push(job.text);
            waiters.push(vec![job.reply]);
        }
    }
    (texts, waiters)
}

/// Embeds one batch on a blocking thread and answers every waiting caller.
async fn embed_jobs(jobs: Vec<Job>, shared: &Shared) {
    let batch_len = jobs.len();
    let (texts, waiters) = group_uncached(jobs, shared);
    if texts.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let embedder = shared.embedder.clone();
    let inputs = texts.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        embedder.embed(&refs)
    })
    .await;
    let vectors = match outcome {
        Ok(Ok(vectors)) if vectors.len() == texts.len() => vectors,
        Ok(Ok(vectors)) => {
            let msg = format!("{} embeddings for {} texts", vectors.len(), texts.len());
            return fail_all(waiters, EmbedError::Service(msg));
        }
        Ok(Err(e)) => return fail_all(waiters, e),
        Err(join) => {
            let msg = format!("embedding task failed: {join}");
            return fail_all(waiters, EmbedError::Service(msg));
        }
    };
    tracing::debug!(
        requests = batch_len,
        unique = texts.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "embedded batch"
    );
    let mut cache = lock(&shared.cache);
    for ((text, vector), senders) in texts.iter().zip(vectors).zip(waiters) {
        let vector = Arc::new(vector);
        cache.insert(text, vector.clone());
        for sender in senders {
            // The caller may have given up (dropped its future); that is fine.
            let _ = sender.send(Ok(vector.clone()));
        }
    }
}

/// Sends the same error to every waiting caller.
fn fail_all(waiters: Vec<Waiters>, error: EmbedError) {
    tracing::warn!(error = %error, "embedding batch failed");
    let error = Arc::new(error);
    for sender in waiters.into_iter().flatten() {
        let _ = sender.send(Err(error.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::tiny_embedder;
    use super::*;
    use std::future::Future;

    fn service(opts: ServiceOptions) -> EmbeddingService {
        EmbeddingService::new(Arc::new(tiny_embedder()), opts)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_one_forward_pass() {
        let svc = service(ServiceOptions {
            max_wait: Duration::from_millis(200),
            ..ServiceOptions::default()
        });
        let texts = ["hello", "world", "book a visit", "hello world", "hello"];
        let handles: Vec<_> = texts
            .iter()
            .map(|t| {
                let svc = svc.clone();
                let t = t.to_string();
                tokio::spawn(async move { svc.embed(&t).await })
            })
            .collect();
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.unwrap().unwrap());
        }
        assert_eq!(svc.embedder().forward_passes(), 1);
        assert_eq!(svc.cache_len(), 4, "duplicates are embedded once");
        assert!(Arc::ptr_eq(&results[0], &results[4]));
        let direct = svc.embedder().embed(&["book a visit"]).unwrap();
        for (a, b) in direct[0].iter().zip(results[2].iter()) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[tokio::test]
    async fn cache_hits_skip_the_model_and_batches_are_capped() {
        let svc = service(ServiceOptions {
            max_batch: 2,
            max_wait: Duration::ZERO,
            cache_capacity: 2,
            queue_capacity: 4,
        });
        let a = svc.embed("hello").await.unwrap();
        let b = svc.embed("hello").await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(svc.embedder().forward_passes(), 1);
        svc.embed("world").await.unwrap();
        svc.embed("visit").await.unwrap();
        assert_eq!(svc.cache_len(), 2, "cache is bounded");
        assert_eq!(svc.embedder().forward_passes(), 3);
    }

    #[tokio::test]
    async fn queued_request_for_a_text_cached_meanwhile_skips_the_model() {
        let svc = service(ServiceOptions::default());
        svc.embed("hello").await.unwrap();
        let (reply, answer) = oneshot::channel();
        let job = Job {
            text: "hello".into(),
            reply,
        };
        embed_jobs(vec![job], &svc.shared).await;
        assert!(answer.await.unwrap().is_ok());
        assert_eq!(svc.embedder().forward_passes(), 1);
    }

    #[test]
    fn outside_a_runtime_is_an_error_not_a_panic() {
        let svc = service(ServiceOptions::default());
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(svc.embed("hello"));
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Err(EmbedError::Service(msg))) => {
                assert!(msg.contains("tokio runtime"), "{msg}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn service_survives_its_first_runtime() {
        let svc = service(ServiceOptions::default());
        for _ in 0..2 {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let v = rt.block_on(svc.embed(&format!("hello {}", svc.cache_len())));
            assert_eq!(v.unwrap().len(), 8);
        }
        assert_eq!(svc.embedder().forward_passes(), 2);
    }
}
