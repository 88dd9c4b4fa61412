//! [`route_conversation`]: decide where one conversation goes and record it, inside the caller's
//! tenant transaction (the agent's turn, or any other writer holding the conversation).
//!
//! Order of rules: a confidence under the request's threshold goes to triage; a request for the
//! bot goes to the bot; a request for an unknown team (or for `triage`) goes to triage, which
//! always queues (its members pick from it); a known team assigns its chosen available member, or
//! queues when nobody fits. Invariants: the conversation row is locked before anything is decided
//! and its `version` is bumped, so a writer holding an older version fails its check; the team
//! row stays locked until the caller commits (see [`super::db`]).

use chrono::{SubsecRound, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::assign::{choose, Choice};
use super::db::{self, LockedTeam, TRIAGE_KEY};
use super::model::{DecisionTarget, RoutingDecision, RoutingError, Strategy};
use super::request::{RouteRequest, RouteTarget};
use crate::ids::{AgentId, ConversationId, TenantId};

/// How long a human owner's lease lasts before the console must renew it.
pub const HUMAN_LEASE_SECS: u32 = 30 * 60;

/// Where the rules sent the conversation, before it is written.
struct Outcome {
    target: DecisionTarget,
    team: Option<LockedTeam>,
    agent: Option<AgentId>,
    strategy: Option<Strategy>,
    detail: String,
}

/// Route `conversation` as `req` asks, store the decision on the conversation and in its
/// history, and return it. Runs in the caller's transaction with `tenant` set; the caller
/// commits, then publishes [`RoutingDecision::event`].
///
/// A transaction routing several conversations to different teams should route them in team-key
/// order; otherwise two such transactions may deadlock on the team locks (PostgreSQL then aborts
/// one, and its job is retried).
pub async fn route_conversation(
    conn: &mut PgConnection,
    tenant: TenantId,
    conversation: ConversationId,
    req: &RouteRequest,
) -> Result<RoutingDecision, RoutingError> {
    let req = req.normalized()?;
    match db::lock_conversation(conn, conversation).await? {
        None => return Err(RoutingError::ConversationNotFound),
        Some(status) if status == "closed" => return Err(RoutingError::ConversationClosed),
        Some(_) => {}
    }
    let outcome = decide(conn, tenant, conversation, &req).await?;
    let decision = RoutingDecision {
        id: Uuid::now_v7(),
        conversation_id: conversation,
        target: outcome.target,
        team_id: outcome.team.as_ref().map(|t| t.id),
        team: outcome.team.map(|t| t.key),
        agent_id: outcome.agent,
        strategy: outcome.strategy,
        skills: req.skills,
        category: req.category,
        priority: req.priority,
        language: req.language,
        confidence: req.confidence,
        min_confidence: req.min_confidence,
        reason: req.reason,
        detail: outcome.detail,
        // Microseconds: what PostgreSQL stores, so the copy on the conversation equals the row.
        decided_at: Utc::now().trunc_subsecs(6),
    };
    db::record(conn, tenant, &decision, f64::from(HUMAN_LEASE_SECS)).await?;
    tracing::info!(
        %tenant, %conversation, target = decision.target.as_str(), team = ?decision.team,
        agent = ?decision.agent_id, detail = %decision.detail, "conversation routed"
    );
    Ok(decision)
}

async fn decide(
    conn: &mut PgConnection,
    tenant: TenantId,
    conversation: ConversationId,
    req: &RouteRequest,
) -> Result<Outcome, RoutingError> {
    if req.below_threshold() {
        let detail = match (req.confidence, req.min_confidence) {
            (Some(c), Some(min)) => format!("confidence {c} is below {min}: triage"),
            _ => "no confidence given for a request with a threshold: triage".to_owned(),
        };
        return triage(conn, tenant, detail).await;
    }
    let key = match &req.target {
        RouteTarget::Bot => {
            return Ok(Outcome {
                target: DecisionTarget::Bot,
                team: None,
                agent: None,
                strategy: None,
                detail: "back to the bot".into(),
            })
        }
        RouteTarget::Triage => return triage(conn, tenant, "sent to triage".into()).await,
        RouteTarget::Team(key) if key == TRIAGE_KEY => {
            return triage(conn, tenant, "sent to triage".into()).await
        }
        RouteTarget::Team(key) => key,
    };
    let Some(team) = db::lock_team(conn, key).await? else {
        return triage(conn, tenant, format!("unknown team {key:?}: triage")).await;
    };
    let strategy = req.strategy.unwrap_or(team.strategy);
    let members = db::candidates(conn, team.id, conversation).await?;
    match choose(strategy, &members, &req.skills, team.rr_last_agent) {
        Choice::Agent(agent) => {
            if strategy == Strategy::RoundRobin {
                db::advance_cursor(conn, team.id, agent).await?;
            }
            Ok(Outcome {
                target: DecisionTarget::Agent,
                detail: format!("assigned by {} in {}", strategy.as_str(), team.key),
                team: Some(team),
                agent: Some(agent),
                strategy: Some(strategy),
            })
        }
        Choice::Nobody(why) => Ok(Outcome {
            target: DecisionTarget::Queue,
            detail: format!("queued on {}: {why}", team.key),
            team: Some(team),
            agent: None,
            strategy: Some(strategy),
        }),
    }
}

async fn triage(
    conn: &mut PgConnection,
    tenant: TenantId,
    detail: String,
) -> Result<Outcome, RoutingError> {
    let team = db::lock_triage(conn, tenant).await?;
    Ok(Outcome {
        target: DecisionTarget::Triage,
        team: Some(team),
        agent: None,
        strategy: None,
        detail,
    })
}
