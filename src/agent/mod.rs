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
//! - [`flow_kinds`]: the `http`, `wait`, `subflow` and `llm` state models; `http_state`,
//!   `wait_state`, `llm_state` (private) and [`subflow`]: what they do inside a step;
//! - [`step_io`]: what `step` reads and returns; [`effect`]: the work a step leaves to the
//!   gateway (webhook calls, LLM replies) and the timers of `wait` states;
//! - [`registry`]: compiled flows per tenant and version;
//! - [`flows_db`] and [`flows_api`]: a tenant's versioned flows, stored and served over REST;
//! - [`simulate`]: a scripted conversation run through `step` with no I/O;
//! - [`turns`]: the `agent_turn` job handler that runs `step` and persists its effects;
//! - [`llm_endpoint`] and [`tenant_llm`]: a tenant's own LLM endpoint, stored sealed, and which
//!   LLM (its own, the server's, or none) reads its conversations; [`llm_settings_api`] serves it.
//!
//! Invariants: no unsafe code; no panics on any input (no `unwrap`/`expect`
//! outside tests); `step` reads no clock and touches no disk, so the gateway
//! persists `FlowState` and replays turns deterministically.

pub mod dates;
pub mod deferred;
mod digress;
mod drafts;
pub mod dry_run;
pub mod effect;
pub mod effects;
pub mod expr;
pub mod flow;
pub mod flow_kinds;
pub mod flows_api;
pub mod flows_db;
mod http_state;
pub mod humanize;
pub mod llm_endpoint;
pub mod llm_reader;
pub mod llm_settings_api;
mod llm_state;
pub mod llm_tools;
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
pub mod step_io;
pub mod subflow;
pub mod tenant_llm;
pub mod timeouts;
mod turn_effects;
mod turn_queue;
mod turn_writes;
pub mod turns;
pub mod usage_api;
pub mod validate;
mod validate_kinds;
mod wait_state;
pub mod webhook;

pub use effect::{
    Effect, HttpRequest, HttpResult, LlmAction, LlmReply, LlmRequest, LlmResult, WaitTimer,
};
pub use flow::{
    parse_flow, AskState, ChoiceOption, ChoiceState, Digression, EndState, Flow, FlowParseError,
    HandoffState, HttpMethod, HttpState, LlmState, LlmTool, MessageState, PromptRef, Route,
    RouteState, SetState, State, SubflowState, WaitState,
};
pub use machine::{
    initial_state, step, Call, FlowState, FlowStatus, Reply, ReplyOption, StepContext, StepError,
    StepOutcome, TurnInput,
};
pub use matching::{match_index, match_option};
pub use prompts::{PromptError, Prompts};
pub use registry::{CompiledFlow, FlowRegistry};
pub use slots::{normalize_slot, SlotError, SlotRules, SlotType};
pub use subflow::Callees;
pub use turns::AgentTurns;
pub use validate::{check, validate, FlowProblem, Severity};
