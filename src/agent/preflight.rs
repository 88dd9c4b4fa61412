//! Preflight: checking a flow's YAML against the templates and compiling it, in one place for
//! everything that accepts a flow (the registry, the flows API, the simulator, the CLI).
//!
//! Invariants: the YAML is parsed once; every problem is reported (errors and warnings, with
//! their paths); a flow with an error-severity problem is never compiled.

use super::dry_run::dry_run;
use super::flow::{parse_flow, Flow};
use super::prompts::Prompts;
use super::validate::{check, FlowProblem, Severity};
use crate::nlu::NluModel;

/// A source checked against the templates: the flow when it parses, and every problem.
#[derive(Debug)]
pub struct Checked {
    /// The parsed flow (None when the YAML does not parse).
    pub flow: Option<Flow>,
    /// Every problem found; a parse failure is one error at the root path.
    pub problems: Vec<FlowProblem>,
}

/// A flow ready to run: the flow, its templates, and its warnings.
#[derive(Debug)]
pub struct Prepared {
    /// The parsed flow.
    pub flow: Flow,
    /// `base` plus the flow's inline texts, compiled.
    pub prompts: Prompts,
    /// Warning-severity problems (a prepared flow has no errors).
    pub warnings: Vec<FlowProblem>,
    /// The flow's trained understanding (intents and entities).
    pub nlu: NluModel,
}

/// Parse `source` and check it against the templates in `base`.
pub fn check_source(source: &str, base: &Prompts) -> Checked {
    match parse_flow(source) {
        Ok(flow) => {
            let mut problems = check(&flow, &|name| base.has(name));
            if !has_errors(&problems) {
                // Every prompt rendered once with the slots certain to be filled when it is sent.
                match base.clone().with_flow_texts(&flow) {
                    Ok(prompts) => problems.extend(dry_run(&flow, &prompts)),
                    Err(e) => problems.push(root_error(e.to_string())),
                }
            }
            Checked {
                flow: Some(flow),
                problems,
            }
        }
        Err(e) => Checked {
            flow: None,
            problems: vec![root_error(e.to_string())],
        },
    }
}

/// Whether any problem is an error (warnings do not count).
pub fn has_errors(problems: &[FlowProblem]) -> bool {
    problems.iter().any(|p| p.severity == Severity::Error)
}

/// Parse, check and compile `source`; every problem when any is an error.
pub fn prepare(source: &str, base: &Prompts) -> Result<Prepared, Vec<FlowProblem>> {
    let Checked { flow, problems } = check_source(source, base);
    let flow = match flow {
        Some(flow) if !has_errors(&problems) => flow,
        _ => return Err(problems),
    };
    let prompts = base
        .clone()
        .with_flow_texts(&flow)
        .map_err(|e| vec![root_error(e.to_string())])?;
    let nlu = NluModel::train(&flow.understanding.intents, flow.understanding.threshold).map_err(
        |e| {
            vec![FlowProblem {
                path: "understanding.intents".into(),
                message: e.to_string(),
                severity: Severity::Error,
            }]
        },
    )?;
    Ok(Prepared {
        flow,
        prompts,
        warnings: problems,
        nlu,
    })
}

fn root_error(message: String) -> FlowProblem {
    FlowProblem {
        path: String::new(),
        message,
        severity: Severity::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_reports_every_error_and_keeps_warnings() {
        let bad = "id: f\nname: F\nstart: a\nstates:\n  a:\n    kind: message\n    text: x\n    next: nope\n  \
                   b:\n    kind: message\n    text: y\n    next: gone\n";
        let problems = prepare(bad, &Prompts::new()).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"states.a.next") && paths.contains(&"states.b.next"));
        let ok = "id: f\nname: F\nstart: a\nstates:\n  a: {kind: end}\n  b: {kind: end}\n";
        let prepared = prepare(ok, &Prompts::new()).unwrap();
        assert_eq!(prepared.warnings.len(), 1, "b is unreachable");
        let unparsable = check_source(": :", &Prompts::new());
        assert!(unparsable.flow.is_none());
        assert_eq!(unparsable.problems[0].path, "");
    }
}
