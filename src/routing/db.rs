//! The SQL behind a routing decision and its read side (history, queues). Every function runs in
//! the caller's tenant transaction.
//!
//! Invariants: a team is read with `FOR UPDATE` before its members are counted, and its members'
//! agent rows are locked in id order before their load is read, so concurrent routings to one
//! team (or to teams sharing agents) see each other's assignments: round-robin turns and
//! capacities are exact. An agent's load counts the open conversations they own, except the one
//! being routed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{types::Json, PgConnection};
use uuid::Uuid;

use super::assign::Candidate;
use super::model::{DecisionTarget, Priority, RoutingDecision, Strategy, TeamId};
use crate::ids::{AgentId, ChannelId, ContactId, ConversationId, TenantId};

/// The key of every tenant's triage team.
pub const TRIAGE_KEY: &str = "triage";

/// A team as routing needs it.
#[derive(Debug, Clone)]
pub struct LockedTeam {
    /// Id.
    pub id: TeamId,
    /// Key.
    pub key: String,
    /// Default strategy.
    pub strategy: Strategy,
    /// Round-robin cursor.
    pub rr_last_agent: Option<AgentId>,
}

type TeamRow = (TeamId, String, String, Option<AgentId>);

fn locked_team(row: TeamRow) -> Result<LockedTeam, sqlx::Error> {
    let (id, key, strategy, rr_last_agent) = row;
    let strategy = Strategy::parse(&strategy)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown strategy {strategy:?}").into()))?;
    Ok(LockedTeam {
        id,
        key,
        strategy,
        rr_last_agent,
    })
}

/// Lock a conversation and read its status; `None` when it is not this tenant's.
pub async fn lock_conversation(
    conn: &mut PgConnection,
    id: ConversationId,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM conversations WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Lock a team by key.
pub async fn lock_team(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Option<LockedTeam>, sqlx::Error> {
    let row: Option<TeamRow> = sqlx::query_as(
        "SELECT id, key, strategy, rr_last_agent FROM teams WHERE key = $1 FOR UPDATE",
    )
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.map(locked_team).transpose()
}

/// Lock the tenant's triage team, creating it on first use.
pub async fn lock_triage(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<LockedTeam, sqlx::Error> {
    sqlx::query(
        "INSERT INTO teams (id, tenant_id, key, name, strategy) \
         VALUES ($1, $2, $3, 'Triage', 'least_loaded') ON CONFLICT (tenant_id, key) DO NOTHING",
    )
    .bind(TeamId::new())
    .bind(tenant)
    .bind(TRIAGE_KEY)
    .execute(&mut *conn)
    .await?;
    lock_team(conn, TRIAGE_KEY)
        .await?
        .ok_or_else(|| sqlx::Error::Protocol("triage team vanished after insert".into()))
}

/// The team's members in member order, with availability, load and capacity, after locking
/// their agent rows (id order, so concurrent routings cannot deadlock on them).
pub async fn candidates(
    conn: &mut PgConnection,
    team: TeamId,
    routed: ConversationId,
) -> Result<Vec<Candidate>, sqlx::Error> {
    sqlx::query(
        "SELECT a.id FROM agents a JOIN team_members m ON m.agent_id = a.id \
         WHERE m.team_id = $1 ORDER BY a.id FOR NO KEY UPDATE OF a",
    )
    .bind(team)
    .execute(&mut *conn)
    .await?;
    let rows: Vec<(AgentId, bool, i64, i32, Vec<String>)> = sqlx::query_as(
        "SELECT m.agent_id, a.available, \
                (SELECT count(*) FROM conversations c \
                  WHERE c.owner_agent_id = m.agent_id AND c.status <> 'closed' AND c.id <> $2), \
                coalesce(m.max_concurrent, t.max_concurrent), m.skills \
         FROM team_members m JOIN agents a ON a.id = m.agent_id JOIN teams t ON t.id = m.team_id \
         WHERE m.team_id = $1 ORDER BY m.position, m.agent_id",
    )
    .bind(team)
    .bind(routed)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(agent_id, available, load, capacity, skills)| Candidate {
            agent_id,
            available,
            load,
            capacity: i64::from(capacity),
            skills,
        })
        .collect())
}

/// Move the team's round-robin cursor to `agent`.
pub async fn advance_cursor(
    conn: &mut PgConnection,
    team: TeamId,
    agent: AgentId,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE teams SET rr_last_agent = $2 WHERE id = $1")
        .bind(team)
        .bind(agent)
        .execute(conn)
        .await?;
    Ok(())
}

/// Give the conversation its new owner and status, store the decision on it and append it to
/// the history. A human owner gets a lease of `lease_secs`.
pub async fn record(
    conn: &mut PgConnection,
    tenant: TenantId,
    decision: &RoutingDecision,
    lease_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE conversations SET status = $2, owner_kind = $3, owner_agent_id = $4, \
            owner_lease_until = CASE WHEN $4::uuid IS NULL THEN NULL \
                                     ELSE now() + make_interval(secs => $5) END, \
            team_id = $6, routing = $7, version = version + 1, updated_at = now() \
         WHERE id = $1",
    )
    .bind(decision.conversation_id)
    .bind(decision.target.status())
    .bind(decision.target.owner_kind())
    .bind(decision.agent_id)
    .bind(lease_secs)
    .bind(decision.team_id)
    .bind(Json(decision))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO routing_decisions (id, tenant_id, conversation_id, target, team_id, team_key, \
            agent_id, strategy, skills, category, priority, language, confidence, min_confidence, \
            reason, detail, decided_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(decision.id)
    .bind(tenant)
    .bind(decision.conversation_id)
    .bind(decision.target.as_str())
    .bind(decision.team_id)
    .bind(&decision.team)
    .bind(decision.agent_id)
    .bind(decision.strategy.map(Strategy::as_str))
    .bind(&decision.skills)
    .bind(&decision.category)
    .bind(decision.priority.map(Priority::as_str))
    .bind(&decision.language)
    .bind(decision.confidence)
    .bind(decision.min_confidence)
    .bind(&decision.reason)
    .bind(&decision.detail)
    .bind(decision.decided_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    id: Uuid,
    conversation_id: ConversationId,
    target: String,
    team_id: Option<TeamId>,
    team_key: Option<String>,
    agent_id: Option<AgentId>,
    strategy: Option<String>,
    skills: Vec<String>,
    category: Option<String>,
    priority: Option<String>,
    language: Option<String>,
    confidence: Option<f32>,
    min_confidence: Option<f32>,
    reason: String,
    detail: String,
    decided_at: DateTime<Utc>,
}

fn decode<T>(value: &str, parse: fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
    parse(value).ok_or_else(|| sqlx::Error::Decode(format!("unknown value {value:?}").into()))
}

impl DecisionRow {
    fn into_decision(self) -> Result<RoutingDecision, sqlx::Error> {
        Ok(RoutingDecision {
            id: self.id,
            conversation_id: self.conversation_id,
            target: decode(&self.target, DecisionTarget::parse)?,
            team_id: self.team_id,
            team: self.team_key,
            agent_id: self.agent_id,
            strategy: self
                .strategy
                .map(|s| decode(&s, Strategy::parse))
                .transpose()?,
            skills: self.skills,
            category: self.category,
            priority: self
                .priority
                .map(|p| decode(&p, Priority::parse))
                .transpose()?,
            language: self.language,
            confidence: self.confidence,
            min_confidence: self.min_confidence,
            reason: self.reason,
            detail: self.detail,
            decided_at: self.decided_at,
        })
    }
}

/// Every decision about a conversation, oldest first.
pub async fn history(
    conn: &mut PgConnection,
    conversation: ConversationId,
) -> Result<Vec<RoutingDecision>, sqlx::Error> {
    let rows: Vec<DecisionRow> = sqlx::query_as(
        "SELECT id, conversation_id, target, team_id, team_key, agent_id, strategy, skills, \
                category, priority, language, confidence, min_confidence, reason, detail, decided_at \
         FROM routing_decisions WHERE conversation_id = $1 ORDER BY decided_at, id",
    )
    .bind(conversation)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(DecisionRow::into_decision).collect()
}

/// A conversation waiting in a team's queue.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct QueueEntry {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Its contact.
    pub contact_id: ContactId,
    /// The contact's name, if known.
    pub contact_name: Option<String>,
    /// Time of its latest message.
    pub last_message_at: DateTime<Utc>,
    /// The decision that queued it (priority, category, confidence, reason).
    #[schema(value_type = Option<RoutingDecision>)]
    pub routing: Option<Json<RoutingDecision>>,
}

/// A team's waiting conversations: highest priority first, then longest waiting.
pub async fn queue(
    conn: &mut PgConnection,
    team: TeamId,
    limit: i64,
) -> Result<Vec<QueueEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.id AS conversation_id, c.channel_id, c.contact_id, \
                ct.display_name AS contact_name, c.last_message_at, c.routing \
         FROM conversations c JOIN contacts ct ON ct.id = c.contact_id \
         WHERE c.team_id = $1 AND c.owner_kind = 'none' AND c.status <> 'closed' \
         ORDER BY CASE c.routing->>'priority' WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 \
                                              WHEN 'low' THEN 3 ELSE 2 END, \
                  (c.routing->>'decided_at')::timestamptz, c.id \
         LIMIT $2",
    )
    .bind(team)
    .bind(limit)
    .fetch_all(conn)
    .await
}
