//! Tests of the pure flow engine (model, validation, step, matching, slots, prompts) over the real
//! demo flow and prompt files. One binary, many modules, to keep link times down.
#![allow(dead_code)]

mod common;
mod demo_flow;
mod http_wait;
mod kinds_validation;
mod language;
mod machine_edges;
mod matching;
mod prompts;
mod repair;
mod slots;
mod subflow_llm;
mod understanding;
mod validation;
