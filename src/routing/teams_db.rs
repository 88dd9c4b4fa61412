//! Teams, their members, and agents' availability: rows and queries (tenant transactions).
//!
//! Invariants: a team's member list is replaced as a whole, keeping the given order as
//! `position`; a member can only be an agent of the same tenant (composite foreign key, and
//! [`unknown_agents`] names offenders before any write); skills are stored as given here, already
//! normalized by the caller.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::PgConnection;

use super::model::{Strategy, TeamId};
use crate::ids::{AgentId, TenantId};

/// A team as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Team {
    /// Id.
    pub id: TeamId,
    /// Key used by flows and URLs.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Default strategy: round_robin | least_loaded | skill.
    pub strategy: Strategy,
    /// Open conversations an agent may own before routing skips them.
    pub max_concurrent: i32,
    /// Members, in round-robin order.
    pub members: Vec<TeamMember>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Updated at.
    pub updated_at: DateTime<Utc>,
}

/// One member of a team.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TeamMember {
    /// The agent.
    pub agent_id: AgentId,
    /// The agent's name.
    pub display_name: String,
    /// Whether the agent takes new conversations now.
    pub available: bool,
    /// Skills/labels (lower-case).
    pub skills: Vec<String>,
    /// Overrides the team's `max_concurrent` for this agent.
    pub max_concurrent: Option<i32>,
}

/// A member to store (validated).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMember {
    /// The agent.
    pub agent_id: AgentId,
    /// Normalized skills.
    pub skills: Vec<String>,
    /// Capacity override.
    pub max_concurrent: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct TeamRow {
    id: TeamId,
    key: String,
    name: String,
    strategy: String,
    max_concurrent: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    team_id: TeamId,
    #[sqlx(flatten)]
    member: TeamMember,
}

const TEAM_COLUMNS: &str = "id, key, name, strategy, max_concurrent, created_at, updated_at";

/// Insert a team (no members yet).
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    key: &str,
    name: &str,
    strategy: Strategy,
    max_concurrent: i32,
) -> Result<TeamId, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO teams (id, tenant_id, key, name, strategy, max_concurrent) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(TeamId::new())
    .bind(tenant)
    .bind(key)
    .bind(name)
    .bind(strategy.as_str())
    .bind(max_concurrent)
    .fetch_one(conn)
    .await
}

/// Change a team's settings; `None` keeps a value. Returns the id when the team exists.
pub async fn update(
    conn: &mut PgConnection,
    key: &str,
    name: Option<&str>,
    strategy: Option<Strategy>,
    max_concurrent: Option<i32>,
) -> Result<Option<TeamId>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE teams SET name = coalesce($2, name), strategy = coalesce($3, strategy), \
            max_concurrent = coalesce($4, max_concurrent), updated_at = now() \
         WHERE key = $1 RETURNING id",
    )
    .bind(key)
    .bind(name)
    .bind(strategy.map(Strategy::as_str))
    .bind(max_concurrent)
    .fetch_optional(conn)
    .await
}

/// Replace a team's members with `members`, in that order.
pub async fn replace_members(
    conn: &mut PgConnection,
    tenant: TenantId,
    team: TeamId,
    members: &[NewMember],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM team_members WHERE team_id = $1")
        .bind(team)
        .execute(&mut *conn)
        .await?;
    if members.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({"agent_id": m.agent_id, "position": i, "skills": m.skills,
                   "max_concurrent": m.max_concurrent})
        })
        .collect();
    sqlx::query(
        "INSERT INTO team_members (tenant_id, team_id, agent_id, position, skills, max_concurrent) \
         SELECT $1, $2, m.agent_id, m.position, m.skills, m.max_concurrent \
         FROM jsonb_to_recordset($3) AS m(agent_id uuid, position int, skills text[], max_concurrent int)",
    )
    .bind(tenant)
    .bind(team)
    .bind(serde_json::Value::Array(rows))
    .execute(conn)
    .await?;
    Ok(())
}

/// The ids among `ids` that are not agents of the current tenant.
pub async fn unknown_agents(
    conn: &mut PgConnection,
    ids: &[AgentId],
) -> Result<Vec<AgentId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT k.id FROM unnest($1::uuid[]) AS k(id) \
         WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = k.id) ORDER BY k.id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Every team, by key, with members.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Team>, sqlx::Error> {
    let rows: Vec<TeamRow> =
        sqlx::query_as(&format!("SELECT {TEAM_COLUMNS} FROM teams ORDER BY key"))
            .fetch_all(&mut *conn)
            .await?;
    with_members(conn, rows).await
}

/// One team by key, with members.
pub async fn get(conn: &mut PgConnection, key: &str) -> Result<Option<Team>, sqlx::Error> {
    let rows: Vec<TeamRow> =
        sqlx::query_as(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE key = $1"))
            .bind(key)
            .fetch_all(&mut *conn)
            .await?;
    Ok(with_members(conn, rows).await?.into_iter().next())
}

/// A team's id by key.
pub async fn id_of(conn: &mut PgConnection, key: &str) -> Result<Option<TeamId>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM teams WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await
}

async fn with_members(
    conn: &mut PgConnection,
    rows: Vec<TeamRow>,
) -> Result<Vec<Team>, sqlx::Error> {
    let ids: Vec<TeamId> = rows.iter().map(|r| r.id).collect();
    let members: Vec<MemberRow> = sqlx::query_as(
        "SELECT m.team_id, m.agent_id, a.display_name, a.available, m.skills, m.max_concurrent \
         FROM team_members m JOIN agents a ON a.id = m.agent_id \
         WHERE m.team_id = ANY($1) ORDER BY m.team_id, m.position, m.agent_id",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut by_team: HashMap<TeamId, Vec<TeamMember>> = HashMap::new();
    for row in members {
        by_team.entry(row.team_id).or_default().push(row.member);
    }
    rows.into_iter()
        .map(|r| {
            let strategy = Strategy::parse(&r.strategy).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown strategy {:?}", r.strategy).into())
            })?;
            Ok(Team {
                members: by_team.remove(&r.id).unwrap_or_default(),
                id: r.id,
                key: r.key,
                name: r.name,
                strategy,
                max_concurrent: r.max_concurrent,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

/// What deleting a team did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// Gone (its conversations forget it).
    Yes,
    /// No such team.
    NotFound,
    /// Refused: this many conversations wait in its queue.
    HasQueue(i64),
}

/// Delete a team unless conversations wait in its queue.
pub async fn delete(conn: &mut PgConnection, key: &str) -> Result<Deleted, sqlx::Error> {
    let Some(id): Option<TeamId> =
        sqlx::query_scalar("SELECT id FROM teams WHERE key = $1 FOR UPDATE")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?
    else {
        return Ok(Deleted::NotFound);
    };
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM conversations \
         WHERE team_id = $1 AND owner_kind = 'none' AND status <> 'closed'",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    if waiting > 0 {
        return Ok(Deleted::HasQueue(waiting));
    }
    sqlx::query("DELETE FROM teams WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(Deleted::Yes)
}

/// An agent with their availability and load.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AgentView {
    /// Id.
    pub id: AgentId,
    /// Login email.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// admin | agent
    pub role: String,
    /// Whether routing may assign them new conversations.
    pub available: bool,
    /// Open conversations they own.
    pub open_conversations: i64,
}

const AGENT_COLUMNS: &str = "a.id, a.email, a.display_name, a.role, a.available, \
    (SELECT count(*) FROM conversations c \
      WHERE c.owner_agent_id = a.id AND c.status <> 'closed') AS open_conversations";

/// The tenant's agents, by name.
pub async fn list_agents(conn: &mut PgConnection) -> Result<Vec<AgentView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents a ORDER BY a.display_name, a.id"
    ))
    .fetch_all(conn)
    .await
}

/// Set an agent's availability; `None` when there is no such agent.
pub async fn set_available(
    conn: &mut PgConnection,
    id: AgentId,
    available: bool,
) -> Result<Option<AgentView>, sqlx::Error> {
    let updated: Option<AgentId> =
        sqlx::query_scalar("UPDATE agents SET available = $2 WHERE id = $1 RETURNING id")
            .bind(id)
            .bind(available)
            .fetch_optional(&mut *conn)
            .await?;
    if updated.is_none() {
        return Ok(None);
    }
    sqlx::query_as(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents a WHERE a.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}
