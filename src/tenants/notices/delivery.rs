//! Delivering notices to the tenant's notification webhook: the `notice_webhook` job handler.
//!
//! Each job (payload `{"notice_id": …}`) is one signed `POST` of [`WebhookBody`] to the URL
//! configured when the job runs, through the flows' [`WebhookClient`] (same SSRF policy, same
//! `X-Switchboard-Signature` under the tenant's webhook secret), with the notice id in
//! `X-Switchboard-Notice`. Invariants:
//! - jobs are leased, not run inside a transaction: no database transaction or row lock is held
//!   during the HTTP call, and each delivery runs in its own task so a slow receiver never holds
//!   up a worker loop (agent turns); one attempt ends well within the lease;
//! - a 2xx completes the job and stamps `delivered_at` in one transaction; a failure goes back
//!   to the queue with its backoff and is dead-lettered after the job's attempts (at once for a
//!   URL the policy refuses); a notice whose webhook was cleared meanwhile completes unsent;
//! - delivery is at least once: a crash or shutdown between the POST and the commit leaves the
//!   job leased, and it is sent again when the lease expires.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Serialize;

use super::db::{self, Notice};
use crate::agent::webhook::{WebhookClient, NOTICE_HEADER};
use crate::config::JobSettings;
use crate::db::Db;
use crate::ids::{NoticeId, TenantId};
use crate::jobs::{
    complete, settle_failure, ClaimedJob, FailedAttempt, JobError, JobHandler, JobKind,
};
use crate::tenants::secrets::SecretBox;
use crate::tenants::webhook_secret::{get_or_create, WebhookSecretError};

/// Longest one delivery attempt may take (shortened to half the lease when that is shorter).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The JSON posted to the notification webhook.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    /// Always `notice`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The tenant the notice is for.
    pub tenant_id: TenantId,
    /// The notice.
    pub notice: &'a Notice,
}

/// Runs `notice_webhook` jobs. Cheap to clone.
#[derive(Clone)]
pub struct NoticeWebhooks {
    db: Db,
    client: WebhookClient,
    secrets: SecretBox,
    settings: JobSettings,
}

/// What one attempt came to.
enum Outcome {
    /// The receiver accepted the notice.
    Delivered(NoticeId),
    /// Nothing to send (the notice or the webhook is gone).
    Nothing(&'static str),
}

/// What a delivery needs from the database.
struct Prepared {
    notice: Notice,
    url: String,
    secret: secrecy::SecretString,
}

impl NoticeWebhooks {
    /// A handler posting through `client` (whose SSRF policy applies), with secrets opened by
    /// `secrets` and failures settled with the queue's `settings`.
    pub fn new(db: Db, client: WebhookClient, secrets: SecretBox, settings: JobSettings) -> Self {
        Self {
            db,
            client,
            secrets,
            settings,
        }
    }

    fn timeout(&self) -> Duration {
        let half_lease = Duration::from_secs(self.settings.lease_secs.max(1)) / 2;
        ATTEMPT_TIMEOUT.min(half_lease)
    }

    /// One job: attempt it, then complete or settle it.
    async fn deliver(self, job: ClaimedJob, worker: String) {
        let settled = match self.attempt(&job).await {
            Ok(outcome) => self.finish(&job, &worker, outcome).await,
            Err(error) => self.fail(&job, &worker, &error).await,
        };
        // The lease then expires and the job runs again: at least once.
        if let Err(error) = settled {
            tracing::warn!(job = job.id, %error, "settling a notice delivery failed");
        }
    }

    async fn attempt(&self, job: &ClaimedJob) -> Result<Outcome, JobError> {
        let id: NoticeId = job
            .payload
            .get("notice_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| JobError::Permanent("payload has no notice_id".into()))?;
        let Some(prepared) = self.prepare(job.tenant_id, id).await? else {
            return Ok(Outcome::Nothing(
                "the notice or the notification webhook is gone",
            ));
        };
        let body = serde_json::to_vec(&WebhookBody {
            kind: "notice",
            tenant_id: job.tenant_id,
            notice: &prepared.notice,
        })
        .map_err(|e| JobError::Permanent(format!("encoding the notice: {e}")))?;
        let headers = [(NOTICE_HEADER, id.to_string())];
        self.client
            .post_signed(
                &prepared.url,
                &body,
                prepared.secret.expose_secret(),
                &headers,
                self.timeout(),
            )
            .await
            .map_err(|failure| {
                let reason = format!("notification webhook: {}", failure.reason);
                if failure.retryable {
                    JobError::Retryable(reason)
                } else {
                    JobError::Permanent(reason)
                }
            })?;
        Ok(Outcome::Delivered(id))
    }

    /// The notice, the current webhook URL and the secret; None when either is gone.
    async fn prepare(&self, tenant: TenantId, id: NoticeId) -> Result<Option<Prepared>, JobError> {
        let retry = |e: sqlx::Error| JobError::Retryable(e.to_string());
        let mut tx = self.db.tenant_tx(tenant).await.map_err(retry)?;
        let (Some(notice), Some(url)) = (
            db::get(&mut tx, id).await.map_err(retry)?,
            db::webhook_url(&mut tx).await.map_err(retry)?,
        ) else {
            return Ok(None);
        };
        let secret = get_or_create(&mut tx, &self.secrets)
            .await
            .map_err(|e| match e {
                WebhookSecretError::Database(db) => JobError::Retryable(db.to_string()),
                other => JobError::Permanent(format!("webhook secret: {other}")),
            })?;
        tx.commit().await.map_err(retry)?;
        Ok(Some(Prepared {
            notice,
            url,
            secret,
        }))
    }

    /// Complete the job, stamping the notice delivered in the same transaction.
    async fn finish(
        &self,
        job: &ClaimedJob,
        worker: &str,
        outcome: Outcome,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.tenant_tx(job.tenant_id).await?;
        let held = complete(&mut tx, &[job.id], worker).await?;
        match outcome {
            Outcome::Delivered(id) if !held.is_empty() => {
                db::mark_delivered(&mut tx, id).await?;
                metrics::counter!("notice_webhooks_total", "outcome" => "delivered").increment(1);
            }
            Outcome::Delivered(_) => {}
            Outcome::Nothing(why) => {
                tracing::info!(job = job.id, tenant = %job.tenant_id, why, "notice not sent");
            }
        }
        tx.commit().await
    }

    async fn fail(
        &self,
        job: &ClaimedJob,
        worker: &str,
        error: &JobError,
    ) -> Result<(), sqlx::Error> {
        metrics::counter!("notice_webhooks_total", "outcome" => "failed").increment(1);
        let failed = FailedAttempt {
            id: job.id,
            attempt: job.attempts,
            counted: true,
            held_by: Some(worker),
        };
        let mut conn = self.db.system.acquire().await?;
        settle_failure(&mut conn, failed, error, &self.settings).await
    }
}

#[async_trait::async_trait]
impl JobHandler for NoticeWebhooks {
    fn kind(&self) -> &'static str {
        JobKind::NoticeWebhook.as_str()
    }

    /// Starts one task per job and returns at once: each task completes or settles its own job.
    async fn run(&self, jobs: Vec<ClaimedJob>, worker: &str) -> Vec<(i64, JobError)> {
        for job in jobs {
            tokio::spawn(self.clone().deliver(job, worker.to_owned()));
        }
        Vec::new()
    }
}
