//! Team routes under `/api/v1/teams` (tenant key): create, list, read, update, delete, and a
//! team's queue.
//!
//! Invariants: every body is validated before the transaction starts writing; members must be
//! agents of the caller's tenant (another tenant's agent id is refused as unknown, never
//! revealed); a team with conversations waiting in its queue cannot be deleted.

use std::collections::HashSet;

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::db::{self as routing_db, QueueEntry};
use super::model::Strategy;
use super::request::normalize_skills;
use super::teams_db::{self as db, Deleted, NewMember, Team};
use crate::app::AppState;
use crate::http::error::ResultExt;
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, TenantAuth};
use crate::ids::AgentId;

/// Most members a team may have.
pub const MAX_MEMBERS: usize = 500;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/teams", get(list_teams).post(create_team))
        .route(
            "/api/v1/teams/{key}",
            get(get_team).patch(update_team).delete(delete_team),
        )
        .route("/api/v1/teams/{key}/queue", get(team_queue))
}

/// A member in a request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    /// An agent of this tenant.
    pub agent_id: AgentId,
    /// Skills/labels this agent covers in the team.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Overrides the team's `max_concurrent` for this agent (1 to 1,000).
    pub max_concurrent: Option<i32>,
}

/// Body of `POST /api/v1/teams`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    /// Key: 1-64 of `a-z 0-9 _ -`, starting with a letter or digit.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Default strategy (least_loaded when omitted).
    pub strategy: Option<Strategy>,
    /// Open conversations per agent (default 5, 1 to 1,000).
    pub max_concurrent: Option<i32>,
    /// Members, in round-robin order.
    #[serde(default)]
    pub members: Vec<MemberInput>,
}

/// Body of `PATCH /api/v1/teams/{key}`; omitted fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeam {
    /// New name.
    pub name: Option<String>,
    /// New default strategy.
    pub strategy: Option<Strategy>,
    /// New per-agent limit.
    pub max_concurrent: Option<i32>,
    /// Replaces the whole member list.
    pub members: Option<Vec<MemberInput>>,
}

/// `?limit=` of a queue listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct QueueParams {
    /// 1 to 500, default 100.
    pub limit: Option<i64>,
}

fn check_key(key: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_key",
            "key must be 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit",
        ))
    }
}

fn check_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "name must be 1-200 characters",
        ));
    }
    Ok(name)
}

fn check_limit(field: &str, value: Option<i32>) -> Result<(), ApiError> {
    match value {
        Some(v) if !(1..=1000).contains(&v) => Err(ApiError::unprocessable(
            "invalid_max_concurrent",
            format!("{field} must be from 1 to 1000"),
        )),
        _ => Ok(()),
    }
}

/// Validate members: known shape, no duplicates, bounded skills and limits.
fn check_members(members: Vec<MemberInput>) -> Result<Vec<NewMember>, ApiError> {
    if members.len() > MAX_MEMBERS {
        return Err(ApiError::unprocessable(
            "too_many_members",
            format!("a team has at most {MAX_MEMBERS} members"),
        ));
    }
    let mut seen = HashSet::new();
    members
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            if !seen.insert(m.agent_id) {
                return Err(ApiError::unprocessable(
                    "duplicate_member",
                    format!("members[{i}]: agent {} is listed twice", m.agent_id),
                ));
            }
            check_limit(&format!("members[{i}].max_concurrent"), m.max_concurrent)?;
            let skills = normalize_skills(&m.skills).map_err(|e| {
                ApiError::unprocessable("invalid_skills", format!("members[{i}].skills: {e}"))
            })?;
            Ok(NewMember {
                agent_id: m.agent_id,
                skills,
                max_concurrent: m.max_concurrent,
            })
        })
        .collect()
}

async fn store_members(
    tx: &mut sqlx::PgConnection,
    auth: &TenantAuth,
    team: super::model::TeamId,
    members: &[NewMember],
) -> Result<(), ApiError> {
    let ids: Vec<AgentId> = members.iter().map(|m| m.agent_id).collect();
    let unknown = db::unknown_agents(tx, &ids).await?;
    if !unknown.is_empty() {
        return Err(ApiError::Unprocessable {
            code: "unknown_agent",
            message: "some members are not agents of this tenant".into(),
            details: Some(json!({ "agent_ids": unknown })),
        });
    }
    db::replace_members(tx, auth.tenant_id, team, members).await?;
    Ok(())
}

async fn read_back(tx: &mut sqlx::PgConnection, key: &str) -> Result<Team, ApiError> {
    db::get(tx, key).await?.ok_or(ApiError::NotFound("team"))
}

/// Create a team.
#[utoipa::path(post, path = "/api/v1/teams", tag = "routing", request_body = CreateTeam,
    responses((status = 201, body = Team), (status = 409), (status = 422)),
    security(("api_key" = [])))]
pub async fn create_team(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<CreateTeam>,
) -> Result<(StatusCode, Json<Team>), ApiError> {
    check_key(&body.key)?;
    let name = check_name(&body.name)?;
    check_limit("max_concurrent", body.max_concurrent)?;
    let members = check_members(body.members)?;
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let id = db::insert(
        &mut tx,
        auth.tenant_id,
        &body.key,
        name,
        body.strategy.unwrap_or(Strategy::LeastLoaded),
        body.max_concurrent.unwrap_or(5),
    )
    .await
    .on_constraint("teams_tenant_id_key_key", || ApiError::Conflict {
        code: "team_exists",
        message: format!("a team with key {:?} already exists", body.key),
    })?;
    store_members(&mut tx, &auth, id, &members).await?;
    let team = read_back(&mut tx, &body.key).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// List teams with their members.
#[utoipa::path(get, path = "/api/v1/teams", tag = "routing",
    responses((status = 200, body = [Team])), security(("api_key" = [])))]
pub async fn list_teams(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<Vec<Team>>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let teams = db::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(teams))
}

/// Read a team.
#[utoipa::path(get, path = "/api/v1/teams/{key}", tag = "routing",
    params(("key" = String, Path, description = "team key")),
    responses((status = 200, body = Team), (status = 404)), security(("api_key" = [])))]
pub async fn get_team(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Team>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let team = read_back(&mut tx, &key).await?;
    tx.commit().await?;
    Ok(Json(team))
}

/// Update a team's settings and/or replace its members.
#[utoipa::path(patch, path = "/api/v1/teams/{key}", tag = "routing", request_body = UpdateTeam,
    params(("key" = String, Path, description = "team key")),
    responses((status = 200, body = Team), (status = 404), (status = 422)),
    security(("api_key" = [])))]
pub async fn update_team(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateTeam>,
) -> Result<Json<Team>, ApiError> {
    let name = body.name.as_deref().map(check_name).transpose()?;
    check_limit("max_concurrent", body.max_concurrent)?;
    let members = body.members.map(check_members).transpose()?;
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let id = db::update(&mut tx, &key, name, body.strategy, body.max_concurrent)
        .await?
        .ok_or(ApiError::NotFound("team"))?;
    if let Some(members) = members {
        store_members(&mut tx, &auth, id, &members).await?;
    }
    let team = read_back(&mut tx, &key).await?;
    tx.commit().await?;
    Ok(Json(team))
}

/// Delete a team; refused while conversations wait in its queue.
#[utoipa::path(delete, path = "/api/v1/teams/{key}", tag = "routing",
    params(("key" = String, Path, description = "team key")),
    responses((status = 204), (status = 404), (status = 409)), security(("api_key" = [])))]
pub async fn delete_team(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    match db::delete(&mut tx, &key).await? {
        Deleted::Yes => {
            tx.commit().await?;
            Ok(StatusCode::NO_CONTENT)
        }
        Deleted::NotFound => Err(ApiError::NotFound("team")),
        Deleted::HasQueue(n) => Err(ApiError::Conflict {
            code: "team_has_queue",
            message: format!("{n} conversation(s) wait in this team's queue; route them first"),
        }),
    }
}

/// Conversations waiting in a team's queue: highest priority first, then longest waiting.
#[utoipa::path(get, path = "/api/v1/teams/{key}/queue", tag = "routing",
    params(("key" = String, Path, description = "team key (`triage` for the triage queue)"), QueueParams),
    responses((status = 200, body = [QueueEntry]), (status = 404)), security(("api_key" = [])))]
pub async fn team_queue(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(params): ApiQuery<QueueParams>,
) -> Result<Json<Vec<QueueEntry>>, ApiError> {
    let limit = params.limit.unwrap_or(100).clamp(1, 500);
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let team = db::id_of(&mut tx, &key)
        .await?
        .ok_or(ApiError::NotFound("team"))?;
    let entries = routing_db::queue(&mut tx, team, limit).await?;
    tx.commit().await?;
    Ok(Json(entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn keys_are_checked() {
        for good in ["sales", "a", "tier-2_support", "9lives"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "Sales", "-x", "a b", "é", &"k".repeat(65)] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn members_are_checked() {
        let a = AgentId(Uuid::from_u128(1));
        let ok = check_members(vec![MemberInput {
            agent_id: a,
            skills: vec!["Spanish ".into(), "spanish".into()],
            max_concurrent: Some(2),
        }])
        .unwrap();
        assert_eq!(ok[0].skills, ["spanish"]);
        let twice = || MemberInput {
            agent_id: a,
            skills: vec![],
            max_concurrent: None,
        };
        let err = check_members(vec![twice(), twice()]).unwrap_err();
        assert!(err.to_string().contains("members[1]"), "{err}");
        let zero = MemberInput {
            agent_id: a,
            skills: vec![],
            max_concurrent: Some(0),
        };
        assert!(check_members(vec![zero]).is_err());
    }
}
