//! What a caller asks routing to do ([`RouteRequest`]) and how a request is cleaned.
//!
//! Invariants: a request is checked by [`RouteRequest::normalized`] before anything is written:
//! confidences finite and within 0..=1, bounded labels, the reason cut to a bounded length, skills
//! trimmed, lower-cased, deduplicated and sorted.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::model::{Priority, RoutingError, Strategy};

/// Longest category or language label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// Longest stored reason, in characters (longer ones are cut, not refused).
pub const MAX_REASON_CHARS: usize = 500;
/// Most skills a request or a member may name.
pub const MAX_SKILLS: usize = 32;

/// Where a caller asks to send a conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteTarget {
    /// A team, by key: one of its available members, or its queue. An unknown key goes to triage.
    Team(String),
    /// The tenant's triage queue (the team with key `triage`, created on first use).
    #[default]
    Triage,
    /// Back to the bot: the flow keeps (or takes back) the conversation.
    Bot,
}

/// What a flow (or any caller) asks routing to do with one conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteRequest {
    /// Where to send it.
    pub target: RouteTarget,
    /// Overrides the team's default strategy.
    pub strategy: Option<Strategy>,
    /// Skills/labels an agent must all have (any strategy filters by them when given).
    pub skills: Vec<String>,
    /// The classified category (e.g. `billing`).
    pub category: Option<String>,
    /// The classified priority (default normal).
    pub priority: Option<Priority>,
    /// The classified language (e.g. `es`).
    pub language: Option<String>,
    /// The classifier's confidence, 0 to 1.
    pub confidence: Option<f32>,
    /// Below this confidence the conversation goes to triage instead of `target`.
    pub min_confidence: Option<f32>,
    /// Why the caller routes it (shown with the decision).
    pub reason: String,
}

impl RouteRequest {
    /// A request for `target` with a reason and nothing else.
    pub fn new(target: RouteTarget, reason: impl Into<String>) -> Self {
        Self {
            target,
            reason: reason.into(),
            ..Self::default()
        }
    }

    /// The request checked and cleaned: errors name the offending field.
    pub fn normalized(&self) -> Result<Self, RoutingError> {
        let mut req = self.clone();
        for (field, value) in [
            ("confidence", req.confidence),
            ("min_confidence", req.min_confidence),
        ] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(RoutingError::InvalidRequest(format!(
                    "{field} must be a number from 0 to 1"
                )));
            }
        }
        req.category = label("category", req.category)?;
        req.language = label("language", req.language)?;
        req.skills = normalize_skills(&req.skills)?;
        req.reason = req.reason.trim().chars().take(MAX_REASON_CHARS).collect();
        Ok(req)
    }

    /// Whether the classifier's confidence is under the request's threshold.
    pub fn below_threshold(&self) -> bool {
        match (self.confidence, self.min_confidence) {
            (Some(confidence), Some(min)) => confidence < min,
            // A threshold with no confidence at all: nothing vouches for the target.
            (None, Some(_)) => true,
            _ => false,
        }
    }
}

fn label(field: &str, value: Option<String>) -> Result<Option<String>, RoutingError> {
    let Some(value) = value
        .map(|v| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if value.chars().count() > MAX_LABEL_CHARS {
        return Err(RoutingError::InvalidRequest(format!(
            "{field} must be at most {MAX_LABEL_CHARS} characters"
        )));
    }
    Ok(Some(value))
}

/// Skills trimmed, lower-cased, deduplicated and sorted; empty ones dropped.
pub fn normalize_skills(skills: &[String]) -> Result<Vec<String>, RoutingError> {
    let set: BTreeSet<String> = skills
        .iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if set.len() > MAX_SKILLS {
        return Err(RoutingError::InvalidRequest(format!(
            "at most {MAX_SKILLS} skills"
        )));
    }
    if let Some(long) = set.iter().find(|s| s.chars().count() > MAX_LABEL_CHARS) {
        return Err(RoutingError::InvalidRequest(format!(
            "skill {long:?} is longer than {MAX_LABEL_CHARS} characters"
        )));
    }
    Ok(set.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_cleaned() {
        let mut req = RouteRequest::new(RouteTarget::Team("sales".into()), "  asked  ");
        req.skills = vec![" Spanish".into(), "spanish".into(), "".into(), "VIP".into()];
        req.category = Some(" Billing ".into());
        req.language = Some("  ".into());
        let clean = req.normalized().unwrap();
        assert_eq!(clean.skills, ["spanish", "vip"]);
        assert_eq!(clean.category.as_deref(), Some("billing"));
        assert_eq!(clean.language, None);
        assert_eq!(clean.reason, "asked");
    }

    #[test]
    fn bad_requests_name_the_field() {
        let mut req = RouteRequest::new(RouteTarget::Bot, "x");
        req.confidence = Some(f32::NAN);
        let err = req.normalized().unwrap_err().to_string();
        assert!(err.contains("confidence"), "{err}");
        req.confidence = None;
        req.min_confidence = Some(1.5);
        assert!(req
            .normalized()
            .unwrap_err()
            .to_string()
            .contains("min_confidence"));
        req.min_confidence = None;
        req.category = Some("x".repeat(65));
        assert!(req
            .normalized()
            .unwrap_err()
            .to_string()
            .contains("category"));
        req.category = None;
        req.skills = (0..33).map(|i| format!("s{i}")).collect();
        assert!(req.normalized().is_err());
        req.reason = "y".repeat(600);
        req.skills.clear();
        assert_eq!(req.normalized().unwrap().reason.len(), MAX_REASON_CHARS);
    }

    #[test]
    fn threshold_needs_a_confidence_at_or_above_it() {
        let mut req = RouteRequest::new(RouteTarget::Team("a".into()), "x");
        assert!(!req.below_threshold());
        req.min_confidence = Some(0.6);
        assert!(req.below_threshold(), "no confidence under a threshold");
        req.confidence = Some(0.59);
        assert!(req.below_threshold());
        req.confidence = Some(0.6);
        assert!(!req.below_threshold());
        req.min_confidence = None;
        req.confidence = Some(0.1);
        assert!(!req.below_threshold(), "no threshold, no triage");
    }

    #[test]
    fn requests_deserialize_from_flow_data() {
        let req: RouteRequest = serde_json::from_str(
            r#"{"target": {"team": "sales"}, "strategy": "skill", "skills": ["es"],
                "priority": "urgent", "confidence": 0.9, "min_confidence": 0.5, "reason": "r"}"#,
        )
        .unwrap();
        assert_eq!(req.target, RouteTarget::Team("sales".into()));
        assert_eq!(req.strategy, Some(Strategy::Skill));
        assert_eq!(req.priority, Some(Priority::Urgent));
        let bot: RouteRequest = serde_json::from_str(r#"{"target": "bot"}"#).unwrap();
        assert_eq!(bot.target, RouteTarget::Bot);
    }
}
