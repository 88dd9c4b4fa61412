//! The gateway's [`Performer`]: webhook calls signed with the tenant's secret and LLM replies
//! for `llm` states, for turns finished outside the batch transaction (see `deferred`); its
//! own database work (the secret, the quota, usage records) runs in short transactions.
//!
//! Invariants: the webhook secret is read (created on first use) at most once per input; an LLM
//! call is made only when an LLM is configured, enabled for the tenant and within its monthly
//! quota, and every call (or call skipped for quota) is recorded in `llm_usage` with purpose
//! `flow_llm`; the system prompt and the customer's text travel in separate messages; every
//! tool call passes the guard built from the state's own allow-list, and one refusal makes the
//! whole reply unavailable (so the flow's `fallback` runs); database errors are the only errors.

use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgConnection;

use super::drafts::Draft;
use super::effect::{HttpRequest, HttpResult, LlmReply, LlmRequest, LlmResult};
use super::effects::{run_step, EffectError, Performer};
use super::flow::Flow;
use super::llm_tools::{actions, tool_specs};
use super::llm_usage::{record_now, within_quota_now, UsageRecord};
use super::machine::{FlowState, StepContext, StepOutcome, TurnInput};
use super::registry::{CompiledFlow, RegistryError};
use super::subflow::Callees;
use super::turns::{AgentTurns, LlmAgent, TenantInfo};
use super::webhook::WebhookClient;
use crate::bus::Bus;
use crate::db::Db;
use crate::ids::{ConversationId, TenantId};
use crate::jobs::JobError;
use crate::llm::{cost_micros, ChatRequest, ChatResult, LlmError, StreamEvent, ToolGuard};
use crate::tenants::notices;
use crate::tenants::secrets::SecretBox;
use crate::tenants::webhook_secret::{get_or_create, WebhookSecretError};

/// What performing effects needs besides the LLM: the webhook client and the secrets key.
#[derive(Debug, Clone)]
pub struct Effects {
    /// Calls webhooks (with the SSRF policy in force).
    pub webhooks: WebhookClient,
    /// Opens the tenant's sealed webhook secret.
    pub secrets: SecretBox,
}

impl AgentTurns {
    /// A performer for one input of `conversation`; with `stream`, `llm` states' replies are
    /// shown as drafts while the LLM writes them (see `drafts`).
    pub(super) fn performer<'a>(
        &'a self,
        db: &'a Db,
        tenant: TenantId,
        conversation: ConversationId,
        info: &'a TenantInfo,
        stream: bool,
    ) -> TurnPerformer<'a> {
        let llm = info.llm.as_deref();
        TurnPerformer {
            db,
            stream: stream.then(|| self.bus.clone()),
            drafts: Vec::new(),
            tenant,
            conversation,
            effects: self.effects.as_ref(),
            llm,
            quota: info.llm_quota.or(llm.map(|l| l.monthly_quota)).unwrap_or(0),
            secret: None,
        }
    }

    /// The flows `flow`'s subflows may call for a conversation in `state`.
    pub(super) async fn callees(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        flow: &CompiledFlow,
        state: &FlowState,
    ) -> Result<Callees, JobError> {
        self.flows
            .callees(conn, tenant, &flow.flow, &state.calls)
            .await
            .map_err(|e| match e {
                RegistryError::Database(db) => JobError::Retryable(db.to_string()),
                other => JobError::Permanent(other.to_string()),
            })
    }
}

/// One input's performer.
pub(super) struct TurnPerformer<'a> {
    pub(super) db: &'a Db,
    /// Where reply drafts are published, when the channel shows them.
    pub(super) stream: Option<Arc<dyn Bus>>,
    /// Drafts published and kept: the stored replies replace them.
    pub(super) drafts: Vec<uuid::Uuid>,
    pub(super) tenant: TenantId,
    pub(super) conversation: ConversationId,
    pub(super) effects: Option<&'a Effects>,
    /// The tenant's LLM (its own endpoint's or the server's), when it has one and it is enabled.
    pub(super) llm: Option<&'a LlmAgent>,
    /// AI-handled requests allowed this month (0 = unlimited).
    pub(super) quota: u32,
    pub(super) secret: Option<SecretString>,
}

impl TurnPerformer<'_> {
    /// Runs `input` through the flow and its effects; errors as job errors.
    pub(super) async fn run(
        &mut self,
        flow: &Flow,
        state: &FlowState,
        input: &TurnInput,
        ctx: &StepContext<'_>,
    ) -> Result<StepOutcome, JobError> {
        run_step(flow, state, input, ctx, self)
            .await
            .map_err(|e| match e {
                EffectError::Database(db) => JobError::Retryable(db.to_string()),
                other => JobError::Permanent(format!("flow {} failed: {other}", flow.id)),
            })
    }

    async fn secret(&mut self, effects: &Effects) -> Result<Option<String>, sqlx::Error> {
        if self.secret.is_none() {
            let mut tx = self.db.tenant_tx(self.tenant).await?;
            let found = get_or_create(&mut tx, &effects.secrets).await;
            tx.commit().await?;
            match found {
                Ok(secret) => self.secret = Some(secret),
                Err(WebhookSecretError::Database(e)) => return Err(e),
                Err(error) => {
                    tracing::error!(tenant = %self.tenant, %error, "webhook secret unavailable");
                    return Ok(None);
                }
            }
        }
        Ok(self.secret.as_ref().map(|s| s.expose_secret().to_string()))
    }

    async fn record(&mut self, rec: UsageRecord<'_>) -> Result<(), sqlx::Error> {
        metrics::counter!("llm_requests_total", "outcome" => rec.outcome).increment(1);
        record_now(self.db, self.tenant, &rec).await
    }
}

#[async_trait::async_trait]
impl Performer for TurnPerformer<'_> {
    async fn http(&mut self, request: &HttpRequest) -> Result<HttpResult, sqlx::Error> {
        let Some(effects) = self.effects else {
            return Ok(HttpResult::Failed("webhooks are not configured".into()));
        };
        let Some(secret) = self.secret(effects).await? else {
            return Ok(HttpResult::Failed(
                "the webhook secret is unavailable".into(),
            ));
        };
        let conversation = self.conversation.to_string();
        let result = effects.webhooks.call(request, &secret, &conversation).await;
        let outcome = match &result {
            HttpResult::Ok(_) => "ok",
            HttpResult::Failed(reason) => {
                tracing::warn!(tenant = %self.tenant, %conversation, state = %request.state, %reason, "webhook call failed");
                "failed"
            }
        };
        metrics::counter!("webhook_calls_total", "outcome" => outcome).increment(1);
        Ok(result)
    }

    async fn llm(&mut self, request: &LlmRequest) -> Result<LlmResult, sqlx::Error> {
        let Some(llm) = self.llm else {
            return Ok(LlmResult::Unavailable("no LLM is configured".into()));
        };
        let model = llm.client.model().to_string();
        let mut rec = UsageRecord {
            conversation: Some(self.conversation),
            purpose: "flow_llm",
            model: &model,
            outcome: "ok",
            usage: Default::default(),
            cost_micros: 0,
            error: None,
        };
        if !within_quota_now(self.db, self.tenant, self.quota).await? {
            rec.outcome = "quota_exceeded";
            notices::llm_quota_exceeded_now(self.db, self.tenant, self.quota, Utc::now()).await?;
            self.record(rec).await?;
            return Ok(LlmResult::Unavailable("monthly AI quota used up".into()));
        }
        let mut draft = self
            .stream
            .clone()
            .map(|bus| Draft::new(bus, self.tenant, self.conversation));
        let (result, usage) = ask(llm, request, draft.as_mut()).await;
        if let Some(draft) = draft.as_mut() {
            match &result {
                LlmResult::Replied(_) if draft.published() => self.drafts.push(draft.id()),
                _ => draft.discard().await,
            }
        }
        if let Some(usage) = usage {
            rec.usage = usage;
            rec.cost_micros = cost_micros(&model, &usage, &llm.prices);
        }
        if let LlmResult::Unavailable(reason) = &result {
            tracing::warn!(tenant = %self.tenant, conversation = %self.conversation, state = %request.state, %reason, "LLM reply unavailable; the state's fallback runs");
            rec.outcome = "failed";
            rec.error = Some(reason.clone());
        }
        self.record(rec).await?;
        Ok(result)
    }
}

/// One chat completion for `request` (streamed into `draft` when given), its checked reply, and
/// the tokens it used.
async fn ask(
    llm: &LlmAgent,
    request: &LlmRequest,
    draft: Option<&mut Draft>,
) -> (LlmResult, Option<crate::llm::Usage>) {
    let specs = tool_specs(request);
    let guard = match ToolGuard::new(&specs) {
        Ok(guard) => guard,
        Err(e) => return (LlmResult::Unavailable(e.to_string()), None),
    };
    let chat = ChatRequest {
        system: request.system.clone(),
        user: request.user.clone(),
        tools: specs,
        max_tokens: 400,
        temperature: 0.2,
        ..ChatRequest::default()
    };
    let result = match draft {
        Some(draft) => streamed(llm, &chat, draft).await,
        None => llm.client.chat(&chat).await,
    };
    let result = match result {
        Ok(result) => result,
        Err(e) => return (LlmResult::Unavailable(e.to_string()), None),
    };
    let usage = Some(result.usage);
    let report = guard.check_all(&result.tool_calls);
    if let Some((call, why)) = report.rejected.first() {
        let reason = format!("tool call {:?} refused: {why}", call.name);
        return (LlmResult::Unavailable(reason), usage);
    }
    match actions(&report.accepted) {
        Ok(actions) => (
            LlmResult::Replied(LlmReply {
                text: result.text,
                actions,
            }),
            usage,
        ),
        Err(reason) => (LlmResult::Unavailable(reason), usage),
    }
}

/// A streamed chat completion: every text fragment goes into `draft` as it arrives.
async fn streamed(
    llm: &LlmAgent,
    chat: &ChatRequest,
    draft: &mut Draft,
) -> Result<ChatResult, LlmError> {
    let stream = llm.client.chat_stream(chat).await?;
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::Delta(fragment) => draft.push(&fragment).await,
            StreamEvent::Done(result) => {
                draft.flush().await;
                return Ok(result);
            }
        }
    }
    Err(LlmError::Malformed(
        "the stream ended without its final chunk".into(),
    ))
}
