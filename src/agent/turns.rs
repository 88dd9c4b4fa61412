//! The `agent_turn` job handler: the executor around the pure [`step`](super::machine::step).
//!
//! A claimed batch runs in one transaction: lock the claimed jobs, lock their conversations (id
//! order, so batches cannot deadlock), step each conversation's flow with each message its job
//! answers (one, or every one queued behind it: see `turn_queue`), chaining the state from one
//! message to the next, then write new flow states (version-checked), the bot's replies, and
//! delete the jobs, and commit once.
//! Replies are published to the bus after the commit. A conversation owned by a human or waiting
//! in the queue gets no bot reply: ownership is checked under the row lock. A `wait` state's
//! timer is scheduled with the writes (see `timeouts`).
//!
//! Nothing inside the batch transaction waits on another service: a turn that would read its
//! message with the LLM, or whose step asks for a webhook call or an LLM reply, is leased and
//! finished after the commit by `deferred`, which makes the calls without holding any lock and
//! then writes the outcome in a short transaction of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long cached business variables are used.
const VARS_TTL: Duration = Duration::from_secs(10);

/// How long a deferred turn's job is leased: longer than its calls can take (the LLM's and the
/// webhooks' timeouts and retries), after which the job goes back to the queue.
pub(super) const DEFERRED_LEASE: Duration = Duration::from_secs(120);

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::flow::{Engine, State};
use super::llm_reader::read;
use super::llm_usage::{record_now, within_quota_now, UsageRecord};
use super::machine::{
    initial_state, step, FlowState, FlowStatus, StepContext, StepOutcome, TurnInput,
};
use super::matching::match_option;
use super::prompt_overrides::{self, PromptOverride};
use super::prompts::Prompts;
use super::registry::{CompiledFlow, FlowRegistry};
use super::slots::{normalize_slot, SlotRules};
use super::subflow::Callees;
use super::tenant_llm::TenantLlms;
pub use super::turn_effects::Effects;
use super::turn_queue::{self, Split, ToAnswer, TurnJob};
use super::turn_writes::{bot_replies, persist, status_of, TurnResult};
use crate::bus::{publish_logged, Bus, Event, EventKind};
use crate::db::Db;
use crate::ids::{ChannelId, ConversationId, MessageId, TenantId};
use crate::jobs::{ClaimedJob, JobError, TxJobHandler, TxOutcome};
use crate::llm::{cost_micros, LlmClient, PriceTable, Usage};
use crate::nlu::datetime::TimeContext;
use crate::nlu::Understanding;
use crate::routing::{RouteRequest, RouteTarget};

/// Runs agent turns.
pub struct AgentTurns {
    tenants: Mutex<HashMap<TenantId, (Instant, Arc<TenantInfo>)>>,
    pub(super) bus: Arc<dyn Bus>,
    pub(super) flows: Arc<FlowRegistry>,
    default_flow: String,
    /// The server's LLM and the tenants' own (none: the embedded understanding only).
    llms: Option<TenantLlms>,
    /// How long a [`TenantInfo`] is used before it is read again.
    tenant_ttl: Duration,
    pub(super) effects: Option<Effects>,
    #[cfg(feature = "embeddings")]
    embeddings: Option<crate::nlu::embed::EmbeddingService>,
    overridden: Mutex<OverriddenPrompts>,
    /// Holder name of the jobs this node leases to finish outside the batch transaction.
    pub(super) node: String,
    /// Where leased turns go to be finished (see `deferred`).
    pub(super) deferred: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<ClaimedJob>>,
}

/// Flow templates with a tenant's overrides applied, by (tenant, flow key, version), with the
/// fingerprint of the overrides they were built from.
type OverriddenPrompts = HashMap<(TenantId, String, i32), (u64, Arc<Prompts>)>;

/// The LLM the agent reads messages with, and how it is paid for.
#[derive(Debug, Clone)]
pub struct LlmAgent {
    /// The client (retries, timeouts and circuit breaker included).
    pub client: LlmClient,
    /// Prices for the cost column.
    pub prices: PriceTable,
    /// Default AI-handled requests per tenant per month (0 = unlimited).
    pub monthly_quota: u32,
}

/// What a turn needs to know about its tenant; cached for [`VARS_TTL`] (or the configured time).
#[derive(Debug)]
pub(super) struct TenantInfo {
    /// Template variables (`business`).
    pub(super) vars: Value,
    /// The tenant's LLM: its own endpoint's or the server's; None when `settings.llm.enabled`
    /// is false or there is none.
    pub(super) llm: Option<Arc<LlmAgent>>,
    /// `settings.llm.monthly_quota`, overriding the server default.
    pub(super) llm_quota: Option<u32>,
    /// The tenant's prompt overrides, and a fingerprint of them.
    pub(super) overrides: Vec<PromptOverride>,
    pub(super) overrides_fp: u64,
}

impl AgentTurns {
    /// A handler over the given registry.
    pub fn new(bus: Arc<dyn Bus>, flows: Arc<FlowRegistry>, default_flow: String) -> Self {
        Self {
            tenants: Mutex::new(HashMap::new()),
            bus,
            flows,
            default_flow,
            llms: None,
            tenant_ttl: VARS_TTL,
            effects: None,
            #[cfg(feature = "embeddings")]
            embeddings: None,
            overridden: Mutex::new(HashMap::new()),
            node: format!("turns-{}", uuid::Uuid::new_v4().simple()),
            deferred: std::sync::OnceLock::new(),
        }
    }

    /// The same handler fusing sentence embeddings into intent classification where free text
    /// must be classified.
    #[cfg(feature = "embeddings")]
    pub fn with_embeddings(mut self, service: crate::nlu::embed::EmbeddingService) -> Self {
        self.embeddings = Some(service);
        self
    }

    /// The embedded engine's reading of `text`, fused with sentence embeddings when the flow
    /// has them and the text needs classifying (an embedding failure falls back to n-grams).
    async fn understand(
        &self,
        flow: &CompiledFlow,
        state: &FlowState,
        text: &str,
        time: &TimeContext,
    ) -> Understanding {
        if plain_answer(flow, state, text, time) {
            return Understanding::default();
        }
        let fused = self.embedding_probabilities(flow, state, text, time).await;
        flow.nlu
            .understand(text, time, flow.flow.country_code(), fused.as_deref())
    }

    #[cfg(feature = "embeddings")]
    async fn embedding_probabilities(
        &self,
        flow: &CompiledFlow,
        state: &FlowState,
        text: &str,
        time: &TimeContext,
    ) -> Option<Vec<f32>> {
        let service = self.embeddings.as_ref()?;
        if !flow.nlu.uses_embeddings() || !needs_reading(flow, state, text, time) {
            return None;
        }
        match service.embed(text).await {
            Ok(vector) => flow.nlu.embedding_probabilities(&vector),
            Err(error) => {
                tracing::warn!(%error, "embedding failed; the n-gram model answers alone");
                None
            }
        }
    }

    #[cfg(not(feature = "embeddings"))]
    async fn embedding_probabilities(
        &self,
        _flow: &CompiledFlow,
        _state: &FlowState,
        _text: &str,
        _time: &TimeContext,
    ) -> Option<Vec<f32>> {
        None
    }

    /// The same handler reading free text with the tenant's LLM, its own or the server's
    /// (falling back to the embedded engine).
    pub fn with_llms(mut self, llms: TenantLlms) -> Self {
        self.llms = Some(llms);
        self
    }

    /// The same handler re-reading a tenant's settings after `ttl` instead of [`VARS_TTL`].
    pub fn with_tenant_cache(mut self, ttl: Duration) -> Self {
        self.tenant_ttl = ttl;
        self
    }

    /// The same handler calling flows' webhooks (without it, every `http` state fails).
    pub fn with_effects(mut self, effects: Effects) -> Self {
        self.effects = Some(effects);
        self
    }
}

/// A conversation as a turn reads it, with the message it answers (if any).
#[derive(sqlx::FromRow, Clone)]
pub(super) struct ConversationRow {
    pub(super) id: ConversationId,
    pub(super) channel_id: ChannelId,
    pub(super) status: String,
    pub(super) owner_kind: String,
    pub(super) flow_key: Option<String>,
    pub(super) flow_version: Option<i32>,
    pub(super) flow_state: Option<Value>,
    pub(super) version: i64,
    pub(super) last_seq: i64,
    pub(super) channel_flow: Option<String>,
    pub(super) channel_kind: String,
    pub(super) message_body: Option<String>,
    pub(super) message_seq: Option<i64>,
}

/// What a turn came to.
pub(super) enum Turn {
    /// The writes to make.
    Done(Box<TurnResult>),
    /// Nothing to do (the bot does not own the conversation, a stale timer, …).
    Skipped,
    /// The turn must call another service (an LLM, a webhook): it is finished outside the
    /// batch's transaction (see `deferred`).
    Deferred,
}

/// How far a job's messages got inside the batch's transaction.
struct Answered {
    /// The writes of the messages answered (merged, in order).
    result: Option<TurnResult>,
    /// Messages answered or skipped.
    answered: usize,
    /// Where and why it stopped, if before the end.
    stop: Option<(usize, Stop)>,
}

/// Why a job's run stopped at a message.
enum Stop {
    /// Its turn must call another service: leased, finished by `deferred`.
    Deferred,
    /// Its turn failed: settled as a failed attempt.
    Failed(JobError),
}

/// A conversation's flow, state and callable subflows, read before a turn.
pub(super) struct Prepared {
    pub(super) flow: Arc<CompiledFlow>,
    pub(super) state: FlowState,
    pub(super) callees: Callees,
}

#[async_trait::async_trait]
impl TxJobHandler for AgentTurns {
    fn kind(&self) -> &'static str {
        "agent_turn"
    }

    async fn run_in_tx(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        jobs: &[&ClaimedJob],
    ) -> Result<TxOutcome, sqlx::Error> {
        self.run_tenant(conn, tenant, jobs).await
    }

    async fn after_commit(&self, events: Vec<Event>, leased: Vec<ClaimedJob>) {
        self.hand_over(leased);
        let replies = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::MessageCreated { .. }))
            .count();
        metrics::counter!("messages_out_total").increment(replies as u64);
        publish_logged(&self.bus, events).await;
    }
}

impl AgentTurns {
    /// Template variables describing the business; cached briefly (a rename shows within
    /// [`VARS_TTL`]) so a batch does not pay a query for them.
    pub(super) async fn tenant_info(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
    ) -> Result<Arc<TenantInfo>, sqlx::Error> {
        if let Some(info) = self.tenants.lock().ok().and_then(|cache| {
            cache
                .get(&tenant)
                .filter(|(at, _)| at.elapsed() < self.tenant_ttl)
                .map(|(_, v)| v.clone())
        }) {
            return Ok(info);
        }
        let row: Option<(String, String, Option<Value>)> = sqlx::query_as(
            "SELECT name, timezone, settings->'llm' FROM tenants WHERE id = sb_tenant()",
        )
        .fetch_optional(&mut *conn)
        .await?;
        let overrides = prompt_overrides::all(&mut *conn).await?;
        let overrides_fp = fingerprint(&overrides);
        let (name, timezone, llm) = row.unwrap_or_default();
        let llm = llm.unwrap_or(Value::Null);
        let llm_enabled = llm.get("enabled").and_then(Value::as_bool).unwrap_or(true);
        let agent = match &self.llms {
            Some(llms) => llms.for_tenant(conn, tenant, llm_enabled).await?,
            None => None,
        };
        let info = Arc::new(TenantInfo {
            vars: json!({ "business": { "name": name, "timezone": timezone } }),
            llm: agent,
            llm_quota: llm
                .get("monthly_quota")
                .and_then(Value::as_u64)
                .map(|q| u32::try_from(q).unwrap_or(u32::MAX)),
            overrides,
            overrides_fp,
        });
        if let Ok(mut cache) = self.tenants.lock() {
            cache.insert(tenant, (Instant::now(), info.clone()));
        }
        Ok(info)
    }

    async fn run_tenant(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        jobs: &[&ClaimedJob],
    ) -> Result<TxOutcome, sqlx::Error> {
        let mut out = TxOutcome::default();
        let mut inputs: Vec<TurnJob> = Vec::new();
        for job in jobs {
            match TurnJob::parse(job.id, &job.payload) {
                Some(turn) => inputs.push(turn),
                None => out.failures.push((
                    job.id,
                    JobError::Permanent("malformed agent_turn payload".into()),
                )),
            }
        }
        let keys: Vec<(ConversationId, Option<MessageId>)> = inputs
            .iter()
            .map(|j| (j.conversation, Some(j.first)))
            .collect();
        let conversations = load_conversations(conn, &keys, true).await?;
        // After the lock, in a statement of its own: every message committed before it.
        let mut later = turn_queue::later_messages(conn, &inputs, &conversations).await?;
        let info = self.tenant_info(conn, tenant).await?;
        let now = Utc::now();
        let mut done: Vec<i64> = Vec::new();
        let mut results: Vec<TurnResult> = Vec::new();
        let mut splits: Vec<Split> = Vec::new();
        let mut answered = 0u64;
        for job in inputs {
            let Some(conv) = conversations.get(&job.conversation) else {
                // Conversation deleted since: nothing to answer.
                done.push(job.id);
                continue;
            };
            let messages = turn_queue::answered_by(&job, conv, &mut later);
            let run = self
                .answer_in_order(conn, tenant, conv, &messages, &info, now)
                .await;
            answered += run.answered as u64;
            if let Some(result) = run.result {
                tracing::debug!(
                    %tenant, conversation = %job.conversation, job = job.id, state = %result.state.state,
                    messages = run.answered, replies = result.replies.len(), "agent turn"
                );
                results.push(result);
            }
            match run.stop {
                None => done.push(job.id),
                Some((at, stop)) => {
                    splits.extend(split_at(&job, &messages, at));
                    match stop {
                        Stop::Deferred => out.leased.push(job.id),
                        Stop::Failed(error) => {
                            tracing::warn!(%tenant, conversation = %job.conversation, job = job.id, %error, "agent turn failed");
                            out.failures.push((job.id, error));
                        }
                    }
                }
            }
        }
        out.events = persist(conn, tenant, results, &done).await?;
        turn_queue::apply_splits(conn, tenant, &splits).await?;
        out.payloads = splits
            .iter()
            .filter(|s| out.leased.contains(&s.job))
            .map(|s| (s.job, s.payload()))
            .collect();
        crate::jobs::in_tx::lease(conn, &out.leased, &self.node, DEFERRED_LEASE).await?;
        metrics::counter!("agent_turns_total").increment(answered);
        Ok(out)
    }

    /// Answers `messages` of one conversation in order inside the batch's transaction, each
    /// turn seeing the state the one before left, merged into one write. Stops at the first
    /// message whose turn must be finished outside the transaction or fails.
    async fn answer_in_order(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        conv: &ConversationRow,
        messages: &[ToAnswer],
        info: &TenantInfo,
        now: DateTime<Utc>,
    ) -> Answered {
        // Copied only when a second message needs the state the first one left: a job answering
        // one message (nearly every job when turns keep up) reads the row as it was loaded.
        let mut conv = std::borrow::Cow::Borrowed(conv);
        let mut run = Answered {
            result: None,
            answered: 0,
            stop: None,
        };
        for (i, (_, body)) in messages.iter().enumerate() {
            if i > 0 {
                conv.to_mut().message_body.clone_from(body);
            }
            match self
                .message_turn(conn, tenant, &conv, info, now, None)
                .await
            {
                Ok(Turn::Done(result)) => {
                    if i + 1 < messages.len() {
                        turn_queue::after_turn(conv.to_mut(), &result);
                    }
                    run.result = Some(match run.result.take() {
                        Some(before) => before.then(*result),
                        None => *result,
                    });
                }
                Ok(Turn::Skipped) => {}
                Ok(Turn::Deferred) => {
                    run.stop = Some((i, Stop::Deferred));
                    return run;
                }
                Err(error) => {
                    run.stop = Some((i, Stop::Failed(error)));
                    return run;
                }
            }
            run.answered += 1;
        }
        run
    }

    /// The flow, state and subflows of a conversation the bot owns; None when it does not own
    /// it (a person does, it waits in a queue, or it is closed).
    pub(super) async fn prepare(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        conv: &ConversationRow,
    ) -> Result<Option<Prepared>, JobError> {
        if conv.owner_kind != "bot" || conv.status == "closed" {
            return Ok(None);
        }
        let flow = self.flow_for(conn, tenant, conv).await?;
        let state: FlowState = match (&conv.flow_state, conv.flow_key.as_deref()) {
            (Some(value), Some(key)) if key == flow.key => serde_json::from_value(value.clone())
                .map_err(|e| JobError::Permanent(format!("stored flow state unreadable: {e}")))?,
            _ => initial_state(&flow.flow),
        };
        let callees = self.callees(conn, tenant, &flow, &state).await?;
        Ok(Some(Prepared {
            flow,
            state,
            callees,
        }))
    }

    /// One inbound message's turn. With `calls` None the turn runs inside the batch's
    /// transaction and gives [`Turn::Deferred`] as soon as it would call another service; with
    /// the pools it makes those calls (outside any long transaction).
    pub(super) async fn message_turn(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        conv: &ConversationRow,
        info: &TenantInfo,
        now: DateTime<Utc>,
        calls: Option<&Db>,
    ) -> Result<Turn, JobError> {
        let Some(text) = conv.message_body.as_deref() else {
            // The message was deleted since: nothing to answer.
            return Ok(Turn::Skipped);
        };
        let Some(prepared) = self.prepare(conn, tenant, conv).await? else {
            tracing::debug!(%tenant, conversation = %conv.id, owner = %conv.owner_kind, "no bot turn: not owned by the bot");
            return Ok(Turn::Skipped);
        };
        self.decide(tenant, conv, text, &prepared, info, now, calls)
            .await
    }

    /// Reads `text` and steps the flow with it (see [`Self::message_turn`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn decide(
        &self,
        tenant: TenantId,
        conv: &ConversationRow,
        text: &str,
        prepared: &Prepared,
        info: &TenantInfo,
        now: DateTime<Utc>,
        calls: Option<&Db>,
    ) -> Result<Turn, JobError> {
        let Prepared {
            flow,
            state,
            callees,
        } = prepared;
        let vars = &info.vars;
        // Inside a subflow, the called flow's intents and questions are the ones that count.
        let active = callees.active(flow, state);
        let tz = business_zone(vars);
        let time = TimeContext::from_utc(now, tz);
        let llm = info
            .llm
            .as_deref()
            .filter(|_| wants_llm(active, state, text, &time));
        let understanding = match (llm, calls) {
            (Some(_), None) => return Ok(Turn::Deferred),
            (Some(llm), Some(db)) => {
                let embedded = self.understand(active, state, text, &time).await;
                let reading = LlmTurn {
                    conversation: conv.id,
                    llm,
                    quota: info.llm_quota.unwrap_or(llm.monthly_quota),
                    flow: active,
                    state,
                    vars,
                    text,
                    time: &time,
                };
                self.llm_reading(db, tenant, reading, embedded)
                    .await
                    .map_err(|e| JobError::Retryable(e.to_string()))?
            }
            (None, _) => self.understand(active, state, text, &time).await,
        };
        let overridden = self.overridden_prompts(tenant, info, flow);
        let prompts = overridden.as_deref().unwrap_or(&flow.prompts);
        let ctx = StepContext::new(now, prompts, vars)
            .in_zone(tz)
            .understood(&understanding)
            .calling(callees);
        let input = TurnInput::Text(text.to_owned());
        let Some((outcome, drafts)) = self
            .run_input(tenant, conv, info, (flow, state), &input, &ctx, calls)
            .await?
        else {
            return Ok(Turn::Deferred);
        };
        let (status, owner_kind) = status_of(outcome.state.status);
        let mut understood = json!({
            "understanding": {
                "intent": &understanding.intent,
                "entities": &understanding.entities,
                "language": &understanding.language,
                "source": understanding.source,
            }
        });
        if !drafts.is_empty() {
            understood["drafts"] = json!(drafts);
        }
        let replies = bot_replies(conv.id, conv.last_seq, &outcome, &understood, now);
        let route = outcome.handoff.as_deref().map(|reason| {
            let at = callees.active(flow, &outcome.state);
            route_request(&at.flow, &outcome.state, reason, &understanding)
        });
        Ok(Turn::Done(Box::new(TurnResult {
            conversation: conv.id,
            old_version: conv.version,
            state: outcome.state,
            flow_key: flow.key.clone(),
            flow_version: flow.version,
            status,
            owner_kind,
            route,
            replies,
            channel_id: conv.channel_id,
            timer: outcome.timer,
        })))
    }

    /// Steps the flow with `input`. Without `calls` (inside the batch transaction) a step that
    /// asks for an effect gives None (the turn is deferred); with them every effect is performed
    /// (on web chat, `llm` states' replies are streamed as drafts, whose ids come with the outcome).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_input(
        &self,
        tenant: TenantId,
        conv: &ConversationRow,
        info: &TenantInfo,
        (flow, state): (&CompiledFlow, &FlowState),
        input: &TurnInput,
        ctx: &StepContext<'_>,
        calls: Option<&Db>,
    ) -> Result<Option<(StepOutcome, Vec<uuid::Uuid>)>, JobError> {
        let Some(db) = calls else {
            let outcome = step(&flow.flow, state, input, ctx)
                .map_err(|e| JobError::Permanent(format!("flow {} failed: {e}", flow.flow.id)))?;
            return Ok(outcome.effect.is_none().then_some((outcome, Vec::new())));
        };
        let stream = conv.channel_kind == crate::channels::ChannelKind::Webchat.as_str();
        let mut performer = self.performer(db, tenant, conv.id, info, stream);
        let outcome = performer.run(&flow.flow, state, input, ctx).await?;
        Ok(Some((outcome, performer.drafts)))
    }

    async fn flow_for(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        conv: &ConversationRow,
    ) -> Result<Arc<CompiledFlow>, JobError> {
        let found = match (&conv.flow_key, conv.flow_version) {
            (Some(key), Some(version)) => self.flows.version(conn, tenant, key, version).await,
            _ => {
                let key = conv.channel_flow.as_deref().unwrap_or(&self.default_flow);
                self.flows.current(conn, tenant, key).await
            }
        };
        found.map_err(|e| match e {
            super::registry::RegistryError::Database(db) => JobError::Retryable(db.to_string()),
            other => JobError::Permanent(other.to_string()),
        })
    }
}

/// The split of `job`, stopped at `messages[at]`: none for a job that answered that one message
/// only anyway.
fn split_at(job: &TurnJob, messages: &[ToAnswer], at: usize) -> Option<Split> {
    let (stopped, _) = messages.get(at)?;
    (job.open || at > 0).then(|| Split {
        job: job.id,
        conversation: job.conversation,
        at: *stopped,
        rest: messages.get(at + 1).map(|m| m.0),
    })
}

/// Where a handed-over conversation should go: the handoff state's team and rules (triage when
/// it names none, or when the flow gave up or the customer asked for a person), labelled with
/// what was understood of the message.
pub(super) fn route_request(
    flow: &super::flow::Flow,
    state: &FlowState,
    reason: &str,
    understanding: &Understanding,
) -> RouteRequest {
    let mut req = RouteRequest::new(RouteTarget::Triage, reason);
    if let Some(State::Handoff(h)) = flow.state(&state.state) {
        if let Some(team) = &h.team {
            req.target = RouteTarget::Team(team.clone());
        }
        req.strategy = h.strategy;
        req.skills = h.skills.clone();
        req.priority = h.priority;
        req.min_confidence = h.min_confidence;
    }
    if let Some(intent) = &understanding.intent {
        req.category = Some(intent.name.clone());
        req.confidence = Some(intent.confidence);
    } else if req.min_confidence.is_some() {
        req.confidence = Some(0.0);
    }
    req.language.clone_from(&understanding.language);
    req
}

/// The business's time zone from its variables (UTC when unset or unknown).
pub(super) fn business_zone(vars: &Value) -> chrono_tz::Tz {
    vars.pointer("/business/timezone")
        .and_then(Value::as_str)
        .and_then(|name| name.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// What the embedded engine reads in `text` (the first message only starts a conversation,
/// but its intent and entities still route and prefill).
/// Whether reading `text` is worth the LLM: the flow reads with one and the text needs reading.
fn wants_llm(flow: &CompiledFlow, state: &FlowState, text: &str, time: &TimeContext) -> bool {
    flow.flow.understanding.engine != Engine::Nlu && needs_reading(flow, state, text, time)
}

/// Whether `text` is simply a valid answer to the waiting question (an option, a well-formed
/// email at an email question, …): the state machine takes it as it is and nothing needs reading.
fn plain_answer(flow: &CompiledFlow, state: &FlowState, text: &str, time: &TimeContext) -> bool {
    if !state.started || state.status != FlowStatus::Active {
        return false;
    }
    match flow.flow.state(&state.state) {
        Some(State::Choice(c)) => match_option(text, &c.options).is_some(),
        Some(State::Ask(a)) if !a.slot_type.is_free_text() => {
            let rules = SlotRules {
                time: *time,
                country_code: a.calling_code(),
            };
            normalize_slot(a.slot_type, text, &rules).is_ok()
        }
        _ => false,
    }
}

/// Whether `text` must be classified beyond the cheap n-gram model: the flow has intents and the
/// text is not simply a valid answer (see [`plain_answer`]), which the state machine takes as
/// it is.
fn needs_reading(flow: &CompiledFlow, state: &FlowState, text: &str, time: &TimeContext) -> bool {
    if flow.flow.understanding.intents.is_empty() {
        return false;
    }
    if !state.started || state.status != FlowStatus::Active {
        return true;
    }
    match flow.flow.state(&state.state) {
        // Any reply is the answer at a wait; an llm state's own LLM reads the message.
        Some(State::Wait(_) | State::Llm(_)) => false,
        Some(State::Choice(_)) => !plain_answer(flow, state, text, time),
        Some(State::Ask(a)) if !a.slot_type.is_free_text() => {
            !plain_answer(flow, state, text, time)
        }
        // Any text answers a free-text question; only one that reads like a question or a
        // longer message may be a digression worth the LLM.
        Some(State::Ask(a)) => {
            a.digressions
                && !flow.flow.digressions.is_empty()
                && (text.contains('?') || text.split_whitespace().count() > 6)
        }
        _ => true,
    }
}

/// A stable fingerprint of a tenant's overrides (names, scopes and change times).
fn fingerprint(overrides: &[PromptOverride]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for o in overrides {
        (&o.name, &o.flow_key, o.updated_at.timestamp_micros()).hash(&mut h);
    }
    h.finish()
}

impl AgentTurns {
    /// The flow's templates with the tenant's overrides applied (cached per flow version until
    /// the overrides change); None when the tenant has none, so the flow's own are used as they are.
    pub(super) fn overridden_prompts(
        &self,
        tenant: TenantId,
        info: &TenantInfo,
        flow: &CompiledFlow,
    ) -> Option<Arc<Prompts>> {
        if info.overrides.is_empty() {
            return None;
        }
        let key = (tenant, flow.key.clone(), flow.version);
        if let Some(hit) = self.overridden.lock().ok().and_then(|c| {
            c.get(&key)
                .filter(|(fp, _)| *fp == info.overrides_fp)
                .map(|(_, p)| p.clone())
        }) {
            return Some(hit);
        }
        let prompts = match prompt_overrides::apply(
            &flow.prompts,
            &info.overrides,
            &flow.flow,
            &flow.key,
        ) {
            Ok(p) => Arc::new(p),
            Err(error) => {
                tracing::warn!(%tenant, flow = %flow.key, %error, "prompt overrides do not compile; using the defaults");
                Arc::new(flow.prompts.clone())
            }
        };
        if let Ok(mut cache) = self.overridden.lock() {
            cache.insert(key, (info.overrides_fp, prompts.clone()));
        }
        Some(prompts)
    }
}

/// One message to read with the LLM.
struct LlmTurn<'a> {
    conversation: ConversationId,
    llm: &'a LlmAgent,
    quota: u32,
    flow: &'a CompiledFlow,
    state: &'a FlowState,
    vars: &'a Value,
    text: &'a str,
    time: &'a TimeContext,
}

impl AgentTurns {
    /// The LLM's validated reading of `text`, or the embedded one when the quota is used up or
    /// the LLM fails; every call (and every skipped one) is recorded in `llm_usage`.
    async fn llm_reading(
        &self,
        db: &Db,
        tenant: TenantId,
        turn: LlmTurn<'_>,
        embedded: Understanding,
    ) -> Result<Understanding, sqlx::Error> {
        let LlmTurn {
            conversation,
            llm,
            quota,
            flow,
            state,
            vars,
            text,
            time,
        } = turn;
        let model = llm.client.model().to_string();
        let mut rec = UsageRecord {
            conversation: Some(conversation),
            purpose: "understand",
            model: &model,
            outcome: "ok",
            usage: Usage::default(),
            cost_micros: 0,
            error: None,
        };
        if !within_quota_now(db, tenant, quota).await? {
            rec.outcome = "quota_exceeded";
            crate::tenants::notices::llm_quota_exceeded_now(db, tenant, quota, Utc::now()).await?;
            metrics::counter!("llm_requests_total", "outcome" => "quota_exceeded").increment(1);
            tracing::warn!(%tenant, %conversation, quota, "monthly AI quota used up; embedded understanding answers");
            record_now(db, tenant, &rec).await?;
            return Ok(embedded);
        }
        let question = state.state.replace('_', " ");
        let reading = read(&llm.client, flow, vars, &question, text, &embedded, time).await;
        let out = match reading {
            Ok(reading) => {
                rec.usage = reading.usage;
                rec.cost_micros = cost_micros(&reading.model, &reading.usage, &llm.prices);
                reading.understanding
            }
            Err(error) => {
                tracing::warn!(%tenant, %conversation, %error, "LLM reading failed; embedded understanding answers");
                rec.outcome = "failed";
                rec.error = Some(error.to_string());
                embedded
            }
        };
        metrics::counter!("llm_requests_total", "outcome" => rec.outcome).increment(1);
        record_now(db, tenant, &rec).await?;
        Ok(out)
    }
}

pub(super) fn parse_payload(payload: &Value) -> Option<(ConversationId, MessageId)> {
    let conv = payload.get("conversation_id")?.as_str()?.parse().ok()?;
    let msg = payload.get("message_id")?.as_str()?.parse().ok()?;
    Some((conv, msg))
}

/// Read conversations with the message each job answers (None for a timer), in one statement;
/// with `lock`, lock them in id order (so batches cannot deadlock).
pub(super) async fn load_conversations(
    conn: &mut PgConnection,
    keys: &[(ConversationId, Option<MessageId>)],
    lock: bool,
) -> Result<HashMap<ConversationId, ConversationRow>, sqlx::Error> {
    let conversations: Vec<ConversationId> = keys.iter().map(|k| k.0).collect();
    let messages: Vec<Option<MessageId>> = keys.iter().map(|k| k.1).collect();
    let sql = if lock {
        LOAD_CONVERSATIONS_LOCKED
    } else {
        LOAD_CONVERSATIONS
    };
    let rows: Vec<ConversationRow> = sqlx::query_as(sql)
        .bind(&conversations)
        .bind(&messages)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// Reads the batch's conversations with their channel and message; `$lock` is appended.
macro_rules! load_conversations_sql {
    ($lock:literal) => {
        concat!(
            "SELECT c.id, c.channel_id, c.status, c.owner_kind, c.flow_key, c.flow_version, \
                    c.flow_state, c.version, c.last_seq, ch.settings->>'flow' AS channel_flow, \
                    ch.kind AS channel_kind, m.body AS message_body, m.seq AS message_seq \
             FROM unnest($1::uuid[], $2::uuid[]) AS k(conversation_id, message_id) \
             JOIN conversations c ON c.id = k.conversation_id \
             JOIN channels ch ON ch.id = c.channel_id \
             LEFT JOIN messages m ON m.id = k.message_id \
             ORDER BY c.id",
            $lock
        )
    };
}

const LOAD_CONVERSATIONS: &str = load_conversations_sql!("");

const LOAD_CONVERSATIONS_LOCKED: &str = load_conversations_sql!(" FOR UPDATE OF c");
