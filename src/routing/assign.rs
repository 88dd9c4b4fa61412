//! Choosing an agent among a team's members: pure functions over a snapshot of the members
//! (availability, load, capacity, skills), no I/O.
//!
//! Invariants: only a member who is available, under capacity and has every required skill is
//! ever chosen; the same snapshot always yields the same choice (ties go to the member listed
//! first); round-robin resumes after the member the cursor names and wraps around.

use std::fmt;

use crate::ids::AgentId;

use super::model::Strategy;

/// One team member as routing sees them at decision time.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The agent.
    pub agent_id: AgentId,
    /// Whether they take new conversations now.
    pub available: bool,
    /// Open conversations they own.
    pub load: i64,
    /// Open conversations they may own.
    pub capacity: i64,
    /// Their skills in this team (lower-case).
    pub skills: Vec<String>,
}

impl Candidate {
    fn has_all(&self, required: &[String]) -> bool {
        required.iter().all(|skill| self.skills.contains(skill))
    }
}

/// Why nobody was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nobody {
    /// The team has no members.
    NoMembers,
    /// No member has every required skill.
    NoneWithSkills,
    /// Every suitable member is unavailable.
    NoneAvailable,
    /// Every available suitable member is at capacity.
    AllAtCapacity,
}

impl fmt::Display for Nobody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoMembers => "the team has no members",
            Self::NoneWithSkills => "no member has every required skill",
            Self::NoneAvailable => "no suitable member is available",
            Self::AllAtCapacity => "every available member is at capacity",
        })
    }
}

/// The outcome of [`choose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// This agent gets the conversation.
    Agent(AgentId),
    /// The conversation waits in the queue.
    Nobody(Nobody),
}

/// Choose an agent. `members` is in the team's member order; `required` are lower-case skills
/// (every strategy filters by them; `Skill` is that filter followed by least-loaded); `cursor` is
/// the member who got the team's previous round-robin assignment.
pub fn choose(
    strategy: Strategy,
    members: &[Candidate],
    required: &[String],
    cursor: Option<AgentId>,
) -> Choice {
    if members.is_empty() {
        return Choice::Nobody(Nobody::NoMembers);
    }
    let skilled: Vec<(usize, &Candidate)> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.has_all(required))
        .collect();
    if skilled.is_empty() {
        return Choice::Nobody(Nobody::NoneWithSkills);
    }
    let available: Vec<(usize, &Candidate)> =
        skilled.into_iter().filter(|(_, m)| m.available).collect();
    if available.is_empty() {
        return Choice::Nobody(Nobody::NoneAvailable);
    }
    let free: Vec<(usize, &Candidate)> = available
        .into_iter()
        .filter(|(_, m)| m.load < m.capacity)
        .collect();
    let chosen = match strategy {
        Strategy::RoundRobin => next_after(&free, members, cursor),
        Strategy::LeastLoaded | Strategy::Skill => least_loaded(&free),
    };
    chosen.map_or(Choice::Nobody(Nobody::AllAtCapacity), Choice::Agent)
}

/// The first free member listed after the cursor's member, wrapping around.
fn next_after(
    free: &[(usize, &Candidate)],
    members: &[Candidate],
    cursor: Option<AgentId>,
) -> Option<AgentId> {
    let last = cursor.and_then(|agent| members.iter().position(|m| m.agent_id == agent));
    free.iter()
        .find(|(i, _)| match last {
            Some(last) => *i > last,
            None => true,
        })
        .or_else(|| free.first())
        .map(|(_, m)| m.agent_id)
}

/// The free member with the fewest open conversations; ties go to the one listed first.
fn least_loaded(free: &[(usize, &Candidate)]) -> Option<AgentId> {
    free.iter()
        .min_by_key(|(i, m)| (m.load, *i))
        .map(|(_, m)| m.agent_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn agent(n: u128) -> AgentId {
        AgentId(Uuid::from_u128(n))
    }

    fn member(n: u128, load: i64, skills: &[&str]) -> Candidate {
        Candidate {
            agent_id: agent(n),
            available: true,
            load,
            capacity: 3,
            skills: skills.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn skills(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn round_robin_cycles_in_member_order_and_wraps() {
        // Ids deliberately out of member order: order is the list's, not the ids'.
        let team = [member(3, 0, &[]), member(1, 0, &[]), member(2, 0, &[])];
        let mut cursor = None;
        let mut picked = Vec::new();
        for _ in 0..5 {
            let Choice::Agent(a) = choose(Strategy::RoundRobin, &team, &[], cursor) else {
                panic!("someone is free");
            };
            picked.push(a);
            cursor = Some(a);
        }
        assert_eq!(picked, [agent(3), agent(1), agent(2), agent(3), agent(1)]);
    }

    #[test]
    fn round_robin_skips_unavailable_and_full_members() {
        let mut team = [member(1, 0, &[]), member(2, 3, &[]), member(3, 0, &[])];
        team[2].available = false;
        // After 1 come 2 (full) and 3 (away): wrap back to 1.
        assert_eq!(
            choose(Strategy::RoundRobin, &team, &[], Some(agent(1))),
            Choice::Agent(agent(1))
        );
        // A cursor naming a former member starts from the top.
        assert_eq!(
            choose(Strategy::RoundRobin, &team, &[], Some(agent(99))),
            Choice::Agent(agent(1))
        );
    }

    #[test]
    fn least_loaded_picks_the_emptiest_and_breaks_ties_by_order() {
        let team = [member(1, 2, &[]), member(2, 1, &[]), member(3, 1, &[])];
        assert_eq!(
            choose(Strategy::LeastLoaded, &team, &[], None),
            Choice::Agent(agent(2))
        );
        let team = [member(5, 0, &[]), member(4, 0, &[])];
        assert_eq!(
            choose(Strategy::LeastLoaded, &team, &[], None),
            Choice::Agent(agent(5))
        );
    }

    #[test]
    fn skill_match_needs_every_skill_then_least_loaded() {
        let team = [
            member(1, 0, &["spanish"]),
            member(2, 2, &["spanish", "billing"]),
            member(3, 1, &["spanish", "billing", "vip"]),
        ];
        let wanted = skills(&["billing", "spanish"]);
        assert_eq!(
            choose(Strategy::Skill, &team, &wanted, None),
            Choice::Agent(agent(3))
        );
        assert_eq!(
            choose(Strategy::Skill, &team, &skills(&["german"]), None),
            Choice::Nobody(Nobody::NoneWithSkills)
        );
        // Skills filter every strategy.
        assert_eq!(
            choose(Strategy::RoundRobin, &team, &skills(&["vip"]), None),
            Choice::Agent(agent(3))
        );
        // No skills asked: everyone qualifies.
        assert_eq!(
            choose(Strategy::Skill, &team, &[], None),
            Choice::Agent(agent(1))
        );
    }

    #[test]
    fn nobody_says_why() {
        assert_eq!(
            choose(Strategy::LeastLoaded, &[], &[], None),
            Choice::Nobody(Nobody::NoMembers)
        );
        let mut away = member(1, 0, &[]);
        away.available = false;
        assert_eq!(
            choose(Strategy::LeastLoaded, &[away], &[], None),
            Choice::Nobody(Nobody::NoneAvailable)
        );
        let full = member(1, 3, &[]);
        assert_eq!(
            choose(Strategy::RoundRobin, &[full], &[], None),
            Choice::Nobody(Nobody::AllAtCapacity)
        );
        assert_eq!(
            Nobody::AllAtCapacity.to_string(),
            "every available member is at capacity"
        );
    }
}
