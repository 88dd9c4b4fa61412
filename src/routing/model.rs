//! Routing value types: team ids, strategies, priorities, what routing decided
//! ([`RoutingDecision`]) and why it could not.
//!
//! Invariant: a decision's `target` alone determines the conversation's resulting status and
//! owner kind ([`DecisionTarget::status`], [`DecisionTarget::owner_kind`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bus::{Event, EventKind};
use crate::ids::{AgentId, ConversationId, TenantId};

/// A team's identifier.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[sqlx(transparent)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct TeamId(pub Uuid);

impl TeamId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for TeamId {
    fn default() -> Self {
        Self::new()
    }
}

/// How an agent is chosen among a team's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Take turns, in member order, from where the team's cursor stopped.
    RoundRobin,
    /// The available member with the fewest open conversations.
    LeastLoaded,
    /// Members having every requested skill, then the least loaded of them.
    Skill,
}

impl Strategy {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::LeastLoaded => "least_loaded",
            Self::Skill => "skill",
        }
    }

    /// Parse a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::RoundRobin, Self::LeastLoaded, Self::Skill]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// How urgent a request is; queues serve higher priorities first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Whenever someone is free.
    Low,
    /// The default.
    Normal,
    /// Before normal requests.
    High,
    /// First.
    Urgent,
}

impl Priority {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }

    /// Parse a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Low, Self::Normal, Self::High, Self::Urgent]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// Where a decision sent the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionTarget {
    /// Assigned to one human agent.
    Agent,
    /// Waiting in a team's queue (nobody available).
    Queue,
    /// Waiting in the triage queue.
    Triage,
    /// Left with (or given back to) the bot.
    Bot,
}

impl DecisionTarget {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Queue => "queue",
            Self::Triage => "triage",
            Self::Bot => "bot",
        }
    }

    /// Parse a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Agent, Self::Queue, Self::Triage, Self::Bot]
            .into_iter()
            .find(|t| t.as_str() == name)
    }

    /// The conversation's status after this decision.
    pub fn status(self) -> &'static str {
        match self {
            Self::Bot => "open",
            _ => "handoff",
        }
    }

    /// The conversation's owner kind after this decision.
    pub fn owner_kind(self) -> &'static str {
        match self {
            Self::Agent => "human",
            Self::Queue | Self::Triage => "none",
            Self::Bot => "bot",
        }
    }
}

/// One routing decision, as stored on the conversation and in its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoutingDecision {
    /// Decision id.
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// The conversation routed.
    pub conversation_id: ConversationId,
    /// agent | queue | triage | bot
    pub target: DecisionTarget,
    /// The team whose agent or queue got it.
    pub team_id: Option<TeamId>,
    /// That team's key.
    pub team: Option<String>,
    /// The agent who owns it now (target `agent`).
    pub agent_id: Option<AgentId>,
    /// The strategy that chose among the team's members.
    pub strategy: Option<Strategy>,
    /// Skills required.
    pub skills: Vec<String>,
    /// Classified category.
    pub category: Option<String>,
    /// Classified priority.
    pub priority: Option<Priority>,
    /// Classified language.
    pub language: Option<String>,
    /// Classifier confidence.
    pub confidence: Option<f32>,
    /// Threshold below which it went to triage.
    pub min_confidence: Option<f32>,
    /// The caller's reason.
    pub reason: String,
    /// What routing decided and why (e.g. "no available member of sales").
    pub detail: String,
    /// When.
    pub decided_at: DateTime<Utc>,
}

impl RoutingDecision {
    /// The bus event announcing the conversation's new status and owner (publish after commit).
    pub fn event(&self, tenant: TenantId) -> Event {
        Event {
            tenant_id: tenant,
            conversation_id: self.conversation_id,
            kind: EventKind::ConversationUpdated {
                status: self.target.status().into(),
                owner_kind: self.target.owner_kind().into(),
                owner_agent_id: self.agent_id,
            },
        }
    }
}

/// Why a conversation could not be routed.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The request itself is wrong (a bug in the calling flow, not a runtime condition).
    #[error("invalid routing request: {0}")]
    InvalidRequest(String),
    /// No such conversation in this tenant.
    #[error("conversation not found")]
    ConversationNotFound,
    /// The conversation is closed; closed conversations are not routed.
    #[error("conversation is closed")]
    ConversationClosed,
    /// The database failed; nothing was written.
    #[error("routing failed: {0}")]
    Database(#[from] sqlx::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ["round_robin", "least_loaded", "skill"] {
            assert_eq!(Strategy::parse(s).map(Strategy::as_str), Some(s));
        }
        for p in ["low", "normal", "high", "urgent"] {
            assert_eq!(Priority::parse(p).map(Priority::as_str), Some(p));
        }
        for t in ["agent", "queue", "triage", "bot"] {
            assert_eq!(
                DecisionTarget::parse(t).map(DecisionTarget::as_str),
                Some(t)
            );
        }
        assert_eq!(Strategy::parse("random"), None);
        assert!(Priority::Urgent > Priority::High && Priority::Low < Priority::Normal);
    }

    #[test]
    fn targets_set_status_and_owner() {
        assert_eq!(DecisionTarget::Agent.owner_kind(), "human");
        assert_eq!(DecisionTarget::Queue.owner_kind(), "none");
        assert_eq!(DecisionTarget::Triage.status(), "handoff");
        assert_eq!(DecisionTarget::Bot.status(), "open");
        assert_eq!(DecisionTarget::Bot.owner_kind(), "bot");
    }
}
