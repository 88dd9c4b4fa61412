//! Tenant notices: things the business must know about its own account, such as its monthly AI
//! quota being used up. A notice is a row in `tenant_notices`, listed and acknowledged through
//! the API ([`api`]), and posted, signed, to the tenant's notification webhook when it has one
//! ([`delivery`]).
//!
//! Owns raising notices ([`raise`], and [`llm_quota_exceeded`] for the quota), their rows
//! ([`db`]) and the notification webhook setting (`tenants.settings.notifications.webhook_url`).
//! Invariants:
//! - a notice is raised at most once per (tenant, kind, period): `period` is the occurrence's
//!   dedupe key (the month for a monthly quota), so callers may raise on every event and only
//!   the first one counts; concurrent raisers agree through the table's unique key;
//! - raising runs in the caller's tenant transaction (row-level security), together with the
//!   `notice_webhook` job when a webhook is configured: the notice and its delivery commit or
//!   roll back together, and the job is enqueued once per notice (the `_now` variants open a
//!   short transaction of their own, for work that runs outside one, like LLM calls);
//! - delivery happens after commit, at least once, retried with the queue's backoff and
//!   dead-lettered when the receiver keeps failing; receivers deduplicate on the notice id.

pub mod api;
pub mod db;
pub mod delivery;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::agent::llm_usage::month_bounds;
use crate::db::Db;
use crate::ids::{NoticeId, TenantId};
use crate::jobs::JobKind;

pub use db::Notice;
pub use delivery::NoticeWebhooks;

/// Longest title stored (the table's CHECK).
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest body stored (the table's CHECK).
pub const MAX_BODY_CHARS: usize = 2000;

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The tenant's monthly quota of AI-handled requests is used up.
    LlmQuotaExceeded,
}

impl NoticeKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LlmQuotaExceeded => "llm_quota_exceeded",
        }
    }
}

/// A notice to raise.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotice {
    /// What it is about.
    pub kind: NoticeKind,
    /// Dedupe key of the occurrence (e.g. the month `2026-11`): one notice per kind and period.
    pub period: String,
    /// One line for lists and subjects.
    pub title: String,
    /// What happened and what it means, for a person.
    pub body: String,
    /// The facts behind the text, for programs.
    pub detail: Value,
}

/// Raise `notice` for `tenant` in the caller's transaction (which must be scoped to `tenant`),
/// and enqueue its delivery to the tenant's notification webhook when one is configured.
/// Returns true when it was newly raised, false when this kind and period already had one.
pub async fn raise(
    conn: &mut PgConnection,
    tenant: TenantId,
    notice: &NewNotice,
) -> Result<bool, sqlx::Error> {
    // One statement: the insert, and the job only for a row actually inserted. A notice that
    // exists is a no-op that takes no lock (ON CONFLICT DO NOTHING); a concurrent first raise
    // waits for the other transaction and then does nothing.
    let raised: i64 = sqlx::query_scalar(
        "WITH raised AS ( \
           INSERT INTO tenant_notices (id, tenant_id, kind, period, title, body, detail) \
           VALUES ($1, $2, $3, $4, $5, $6, $7) \
           ON CONFLICT ON CONSTRAINT tenant_notices_once DO NOTHING RETURNING id), \
         delivery AS ( \
           INSERT INTO jobs (tenant_id, kind, payload, idempotency_key) \
           SELECT $2, $8, jsonb_build_object('notice_id', r.id), r.id::text \
           FROM raised r JOIN tenants t ON t.id = $2 \
           WHERE t.settings #>> '{notifications,webhook_url}' IS NOT NULL \
           ON CONFLICT (tenant_id, kind, idempotency_key) WHERE idempotency_key IS NOT NULL \
           DO NOTHING) \
         SELECT count(*) FROM raised",
    )
    .bind(NoticeId::new())
    .bind(tenant)
    .bind(notice.kind.as_str())
    .bind(&notice.period)
    .bind(truncate(&notice.title, MAX_TITLE_CHARS))
    .bind(truncate(&notice.body, MAX_BODY_CHARS))
    .bind(&notice.detail)
    .bind(JobKind::NoticeWebhook.as_str())
    .fetch_one(conn)
    .await?;
    if raised > 0 {
        metrics::counter!("tenant_notices_raised_total", "kind" => notice.kind.as_str())
            .increment(1);
        tracing::info!(%tenant, kind = notice.kind.as_str(), period = %notice.period, "tenant notice raised");
    }
    Ok(raised > 0)
}

/// Raise the "monthly AI quota used up" notice for the month of `at` (once per month).
pub async fn llm_quota_exceeded(
    conn: &mut PgConnection,
    tenant: TenantId,
    quota: u32,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    raise(conn, tenant, &quota_notice(quota, at)).await
}

/// [`llm_quota_exceeded`] in a transaction of its own, for LLM calls made outside the turn's
/// transaction (like their usage records: the quota was met, whatever becomes of the turn).
pub async fn llm_quota_exceeded_now(
    db: &Db,
    tenant: TenantId,
    quota: u32,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.tenant_tx(tenant).await?;
    let raised = llm_quota_exceeded(&mut tx, tenant, quota, at).await?;
    tx.commit().await?;
    Ok(raised)
}

/// The quota notice for the month of `at`.
pub fn quota_notice(quota: u32, at: DateTime<Utc>) -> NewNotice {
    let (from, resets) = month_bounds(at);
    let month = from.format("%Y-%m").to_string();
    let requests = if quota == 1 { "request" } else { "requests" };
    NewNotice {
        kind: NoticeKind::LlmQuotaExceeded,
        period: month.clone(),
        title: format!("Monthly AI quota used up ({month})"),
        body: format!(
            "Your monthly AI quota of {quota} {requests} is used up; the assistant keeps \
             answering with the built-in understanding until {} (UTC), when the quota resets. \
             Raise the quota with PUT /api/v1/tenant/llm.",
            resets.format("%-d %B %Y")
        ),
        detail: json!({
            "quota": quota,
            "month": month,
            "resets_at": resets,
        }),
    }
}

/// At most `max` characters of `text`.
fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_quota_notice_names_the_quota_and_the_first_of_next_month() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
        let notice = quota_notice(500, at);
        assert_eq!(notice.kind.as_str(), "llm_quota_exceeded");
        assert_eq!(notice.period, "2026-11");
        assert!(
            notice
                .body
                .starts_with("Your monthly AI quota of 500 requests is used up"),
            "{}",
            notice.body
        );
        assert!(
            notice.body.contains("until 1 December 2026"),
            "{}",
            notice.body
        );
        assert_eq!(notice.detail["quota"], 500);
        assert_eq!(notice.detail["resets_at"], "2026-12-01T00:00:00Z");
    }

    #[test]
    fn december_resets_in_january_and_one_request_is_singular() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let notice = quota_notice(1, at);
        assert_eq!(notice.period, "2026-12");
        assert!(notice.body.contains("of 1 request is"), "{}", notice.body);
        assert!(
            notice.body.contains("until 1 January 2027"),
            "{}",
            notice.body
        );
    }

    #[test]
    fn texts_fit_the_table() {
        let notice = quota_notice(u32::MAX, Utc::now());
        assert!(notice.title.chars().count() <= MAX_TITLE_CHARS);
        assert!(notice.body.chars().count() <= MAX_BODY_CHARS);
        assert_eq!(truncate("ééé", 2), "éé");
    }
}
