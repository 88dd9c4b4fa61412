//! The conversational agent: data-driven flows for Switchboard.
//!
//! Owns everything needed to run a flow, and nothing that does I/O except
//! `Prompts::from_dir`:
//! - [`flow`]: the model and YAML parsing (`parse_flow`);
//! - [`validate`]: static checks reporting every problem (`validate`);
//! - [`machine`]: the pure `step` from one customer turn to the next state;
//! - [`matching`]: free text → choice option;
//! - [`slots`] and [`dates`]: answer validation and normalisation;
//! - [`preflight`]: checking and compiling a flow's YAML, for every caller;
//! - [`prompts`]: compiled minijinja templates (`Prompts`);
//! - [`repair`]: global commands (cancel, ask for a person, go back) available at any waiting state;
//! - `digress` (private): prefilling from entities, options chosen by intent, digressions and
//!   corrections of earlier answers;
//! - `route` (private): `route` and `set` states; [`expr`]: their minijinja expressions;
//! - [`registry`]: compiled flows per tenant and version;
//! - [`flows_db`] and [`flows_api`]: a tenant's versioned flows, stored and served over REST;
//! - [`simulate`]: a scripted conversation run through `step` with no I/O;
//! - [`turns`]: the `agent_turn` job handler that runs `step` and persists its effects.
//!
//! Invariants: no unsafe code; no panics on any input (no `unwrap`/`expect`
//! outside tests); `step` reads no clock and touches no disk, so the gateway
//! persists `FlowState` and replays turns deterministically.

pub mod dates;
mod digress;
pub mod dry_run;
pub mod expr;
pub mod flow;
pub mod flows_api;
pub mod flows_db;
pub mod humanize;
pub mod llm_reader;
pub mod llm_usage;
pub mod machine;
pub mod matching;
pub mod preflight;
pub mod prompt_overrides;
pub mod prompts;
pub mod registry;
pub mod repair;
mod replies;
mod route;
pub mod simulate;
pub mod slots;
mod turn_writes;
pub mod turns;
pub mod usage_api;
pub mod validate;

pub use flow::{
    parse_flow, AskState, ChoiceOption, ChoiceState, Digression, EndState, Flow, FlowParseError,
    HandoffState, MessageState, PromptRef, Route, RouteState, SetState, State,
};
pub use machine::{
    initial_state, step, FlowState, FlowStatus, Reply, ReplyOption, StepContext, StepError,
    StepOutcome, TurnInput,
};
pub use matching::{match_index, match_option};
pub use prompts::{PromptError, Prompts};
pub use registry::{CompiledFlow, FlowRegistry};
pub use slots::{normalize_slot, SlotError, SlotRules, SlotType};
pub use turns::AgentTurns;
pub use validate::{check, validate, FlowProblem, Severity};
