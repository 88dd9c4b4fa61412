//! Application assembly: shared state, the router, background tasks, and graceful shutdown.
//! `App::build` binds the listener (port 0 in tests) before anything runs, so callers can read the
//! port; `run_until_stopped` serves until the stop token fires, then drains sockets, ingest and
//! workers within the grace period.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::{
    extract::{DefaultBodyLimit, MatchedPath, Request},
    middleware::{self, Next},
    response::Response,
    routing::get,
    serve::ListenerExt,
    Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::agent::tenant_llm::TenantLlms;
use crate::agent::timeouts::FlowTimeouts;
use crate::agent::turns::Effects;
use crate::agent::webhook::WebhookClient;
use crate::agent::{AgentTurns, FlowRegistry};
use crate::bus::{Bus, Hub, InProcessBus, RedisBus};
use crate::channels::ChannelDirectory;
use crate::config::Settings;
use crate::db::Db;
use crate::http::{health, openapi, ApiError};
use crate::inbox::Ingestor;
use crate::jobs::{Handlers, JobHandler, TxJobHandler, WorkerPool};
use crate::tenants::notices::NoticeWebhooks;
use crate::tenants::secrets::SecretBox;

/// State shared by every handler and task.
#[derive(Clone)]
pub struct AppState {
    /// Database pools.
    pub db: Db,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Event bus (Redis or in-process).
    pub bus: Arc<dyn Bus>,
    /// This node's socket router.
    pub hub: Hub,
    /// Group-commit ingest.
    pub ingest: Ingestor,
    /// Wakes the job workers.
    pub wake_jobs: Arc<Notify>,
    /// Public channel key routing.
    pub channels: Arc<ChannelDirectory>,
    /// Compiled flows.
    pub flows: Arc<FlowRegistry>,
    /// Secrets at rest.
    pub secrets: SecretBox,
    /// Prometheus renderer.
    pub metrics: Option<PrometheusHandle>,
    /// Fires on shutdown.
    pub stop: CancellationToken,
}

/// A built, bound, not yet running server.
pub struct App {
    listener: TcpListener,
    state: AppState,
    tasks: Vec<JoinHandle<()>>,
}

impl App {
    /// Connect to the database (creating and migrating it) and build.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = crate::db::connect(&settings.database).await?;
        Self::build_with_db(settings, db).await
    }

    /// Build on existing pools (tests pass pools of their fresh database).
    pub async fn build_with_db(settings: Settings, db: Db) -> anyhow::Result<Self> {
        let stop = CancellationToken::new();
        let hub = Hub::new();
        let bus: Arc<dyn Bus> = match settings.redis.url() {
            Some(url) => Arc::new(RedisBus::connect(url, hub.clone(), stop.clone()).await?),
            None => Arc::new(InProcessBus::new(hub.clone())),
        };
        let flows = FlowRegistry::load(&settings.agent.flows_dir, &settings.agent.prompts_dir)?;
        let (flows, embeddings) = embeddings(flows, &settings.nlu)?;
        let flows = Arc::new(flows);
        let wake_jobs = Arc::new(Notify::new());
        let (ingest, ingest_task) = Ingestor::start(
            db.clone(),
            bus.clone(),
            wake_jobs.clone(),
            settings.ingest.clone(),
            stop.clone(),
        );
        let secrets = SecretBox::from_config(&settings.security.secrets_key)?;
        let webhooks = WebhookClient::new(settings.agent.http_allow_private)?;
        let notices: Arc<dyn JobHandler> = Arc::new(NoticeWebhooks::new(
            db.clone(),
            webhooks.clone(),
            secrets.clone(),
            settings.jobs.clone(),
        ));
        let mut agent = AgentTurns::new(
            bus.clone(),
            flows.clone(),
            settings.agent.default_flow.clone(),
        )
        .with_effects(Effects {
            webhooks,
            secrets: secrets.clone(),
        });
        let llms = TenantLlms::from_config(
            &settings.llm,
            settings.agent.http_allow_private,
            secrets.clone(),
        )
        .map_err(|e| anyhow::anyhow!("llm configuration: {e}"))?;
        agent = agent
            .with_llms(llms)
            .with_tenant_cache(Duration::from_millis(settings.agent.tenant_cache_ms));
        #[cfg(feature = "embeddings")]
        if let Some(service) = embeddings {
            agent = agent.with_embeddings(service);
        }
        #[cfg(not(feature = "embeddings"))]
        let () = embeddings;
        let agent = Arc::new(agent);
        let deferred = agent.start_deferred(
            db.clone(),
            settings.jobs.clone(),
            wake_jobs.clone(),
            stop.clone(),
        );
        let timeouts: Arc<dyn TxJobHandler> = Arc::new(FlowTimeouts::new(agent.clone()));
        let turns: Arc<dyn TxJobHandler> = agent;
        let handlers = Handlers {
            leased: vec![notices],
            in_tx: vec![turns, timeouts],
            runtime_role: settings.database.runtime_role.clone(),
        };
        let mut tasks = WorkerPool::start(
            db.system.clone(),
            handlers,
            settings.jobs.clone(),
            wake_jobs.clone(),
            stop.clone(),
        );
        tasks.push(ingest_task);
        tasks.push(deferred);
        tasks.extend(crate::jobs::janitor::start(
            db.system.clone(),
            Duration::from_secs(settings.jobs.vacuum_interval_secs),
            stop.clone(),
        ));
        let listener =
            TcpListener::bind((settings.server.host.as_str(), settings.server.port)).await?;
        let state = AppState {
            db,
            secrets,
            settings: Arc::new(settings),
            bus,
            hub,
            ingest,
            wake_jobs,
            channels: Arc::new(ChannelDirectory::default()),
            flows,
            metrics: crate::telemetry::prometheus(),
            stop,
        };
        Ok(Self {
            listener,
            state,
            tasks,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The shared state (tests use its pools and stop token).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until the stop token fires (or SIGINT/SIGTERM when `handle_signals`), then drain.
    pub async fn run_until_stopped(self, handle_signals: bool) -> anyhow::Result<()> {
        let stop = self.state.stop.clone();
        if handle_signals {
            tokio::spawn(stop_on_signal(stop.clone()));
        }
        let grace = Duration::from_secs(self.state.settings.server.shutdown_grace_secs);
        let router = router(self.state.clone());
        // Replies are small frames written as soon as they exist: Nagle's algorithm would hold them
        // back until the peer's delayed ACK (~40 ms).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
        });
        let serve =
            axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
        serve.await?;
        tracing::info!("http server stopped; draining ingest and workers");
        let drain = futures::future::join_all(self.tasks);
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(
                ?grace,
                "shutdown grace period elapsed with work still running"
            );
        }
        Ok(())
    }
}

/// The full router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.server.max_body_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .merge(crate::tenants::api::router())
        .merge(crate::channels::api::router())
        .merge(crate::inbox::api::router())
        .merge(crate::jobs::api::router())
        .merge(crate::agent::flows_api::router())
        .merge(crate::routing::router())
        .merge(crate::agent::usage_api::router())
        .merge(crate::agent::llm_settings_api::router())
        .merge(crate::agent::prompt_overrides::router())
        .merge(crate::tenants::notices::api::router())
        .merge(crate::channels::webchat::router())
        .merge(crate::channels::form::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(record_request))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), route, uri = %req.uri().path())
        }))
        .with_state(state)
}

async fn record_request(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}

async fn stop_on_signal(stop: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received");
    stop.cancel();
}

/// Loads the sentence-embedding model when one is configured, and trains every flow on it.
#[cfg(feature = "embeddings")]
fn embeddings(
    flows: FlowRegistry,
    cfg: &crate::config::NluSettings,
) -> anyhow::Result<(FlowRegistry, Option<crate::nlu::embed::EmbeddingService>)> {
    use crate::nlu::embed::{Embedder, EmbeddingService, ServiceOptions};
    if cfg.embeddings_dir.trim().is_empty() {
        return Ok((flows, None));
    }
    let embedder = Arc::new(
        Embedder::load(std::path::Path::new(&cfg.embeddings_dir))
            .map_err(|e| anyhow::anyhow!("nlu.embeddings_dir {}: {e}", cfg.embeddings_dir))?,
    );
    let flows = flows.with_embeddings(embedder.clone())?;
    tracing::info!(dir = %cfg.embeddings_dir, "sentence embeddings loaded; intents use the fused model");
    Ok((
        flows,
        Some(EmbeddingService::new(embedder, ServiceOptions::default())),
    ))
}

/// Without the `embeddings` feature a configured model directory is reported and ignored.
#[cfg(not(feature = "embeddings"))]
fn embeddings(
    flows: FlowRegistry,
    cfg: &crate::config::NluSettings,
) -> anyhow::Result<(FlowRegistry, ())> {
    if !cfg.embeddings_dir.trim().is_empty() {
        tracing::warn!(dir = %cfg.embeddings_dir, "nlu.embeddings_dir is set but this build has no `embeddings` feature; the n-gram model runs alone");
    }
    Ok((flows, ()))
}
