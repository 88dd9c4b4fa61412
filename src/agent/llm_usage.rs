//! LLM usage accounting and monthly quotas, per tenant and conversation.
//!
//! Owns the `llm_usage` rows: `record` writes one per call (or per call skipped for quota),
//! `within_quota` decides whether a tenant may make another AI-handled request this month, and
//! `month_totals` sums a month for the API. Invariants: runs inside the caller's tenant
//! transaction (row-level security scopes every query); a quota of 0 means unlimited; only `ok`
//! rows count against the quota; months are calendar months in UTC.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use crate::ids::{ConversationId, TenantId};
use crate::llm::Usage;

/// One row to record.
#[derive(Debug, Clone)]
pub struct UsageRecord<'a> {
    /// The conversation the call served.
    pub conversation: Option<ConversationId>,
    /// What the call was for (`understand`).
    pub purpose: &'a str,
    /// Model name.
    pub model: &'a str,
    /// `ok`, `failed` or `quota_exceeded`.
    pub outcome: &'static str,
    /// Tokens reported.
    pub usage: Usage,
    /// Cost in millionths of a dollar.
    pub cost_micros: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Writes one usage row.
pub async fn record(
    conn: &mut PgConnection,
    tenant: TenantId,
    rec: &UsageRecord<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO llm_usage (tenant_id, conversation_id, purpose, model, outcome, \
                                prompt_tokens, completion_tokens, cost_micros, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant)
    .bind(rec.conversation)
    .bind(rec.purpose)
    .bind(rec.model)
    .bind(rec.outcome)
    .bind(i32::try_from(rec.usage.prompt_tokens).unwrap_or(i32::MAX))
    .bind(i32::try_from(rec.usage.completion_tokens).unwrap_or(i32::MAX))
    .bind(i64::try_from(rec.cost_micros).unwrap_or(i64::MAX))
    .bind(&rec.error)
    .execute(conn)
    .await?;
    Ok(())
}

/// The first instant of the UTC month containing `at`, and of the next month.
pub fn month_bounds(at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = NaiveDate::from_ymd_opt(at.year(), at.month(), 1).unwrap_or_default();
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    let start = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
    (start(first), start(next))
}

/// Whether the tenant may make another AI-handled request this month (`quota` 0 = unlimited).
pub async fn within_quota(
    conn: &mut PgConnection,
    quota: u32,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    if quota == 0 {
        return Ok(true);
    }
    let (from, to) = month_bounds(now);
    let used: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM llm_usage \
         WHERE tenant_id = sb_tenant() AND at >= $1 AND at < $2 AND outcome = 'ok'",
    )
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await?;
    Ok(used < i64::from(quota))
}

/// A month's usage.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MonthTotals {
    /// AI-handled requests (counted against the quota).
    pub requests: i64,
    /// Calls that failed (the embedded understanding answered instead).
    pub failed: i64,
    /// Requests not sent because the quota was used up.
    pub quota_exceeded: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Cost in millionths of a US dollar.
    pub cost_micros: i64,
}

/// Sums the month starting at `from`.
pub async fn month_totals(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<MonthTotals, sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE outcome = 'ok') AS requests, \
                count(*) FILTER (WHERE outcome = 'failed') AS failed, \
                count(*) FILTER (WHERE outcome = 'quota_exceeded') AS quota_exceeded, \
                coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens, \
                coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens, \
                coalesce(sum(cost_micros), 0)::bigint AS cost_micros \
         FROM llm_usage WHERE tenant_id = sb_tenant() AND at >= $1 AND at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await
}

/// [`record`] in a transaction of its own (for calls made outside the turn's transaction: the
/// call happened, whatever becomes of the turn).
pub async fn record_now(
    db: &crate::db::Db,
    tenant: TenantId,
    rec: &UsageRecord<'_>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.tenant_tx(tenant).await?;
    record(&mut tx, tenant, rec).await?;
    tx.commit().await
}

/// [`within_quota`] now, in a transaction of its own.
pub async fn within_quota_now(
    db: &crate::db::Db,
    tenant: TenantId,
    quota: u32,
) -> Result<bool, sqlx::Error> {
    if quota == 0 {
        return Ok(true);
    }
    let mut tx = db.tenant_tx(tenant).await?;
    let within = within_quota(&mut tx, quota, Utc::now()).await?;
    tx.commit().await?;
    Ok(within)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 0).unwrap();
        let (from, to) = month_bounds(at);
        assert_eq!(from, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(to, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }
}
