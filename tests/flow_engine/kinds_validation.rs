//! Validation of `http`, `wait`, `subflow` and `llm` states: every problem, with its path.

use switchboard::agent::subflow::check_calls;
use switchboard::agent::{check, parse_flow, Flow, Severity};

const KNOWN: [&str; 3] = ["handoff", "assistant", "ask_retry"];

fn lines(yaml: &str) -> Vec<String> {
    let flow: Flow = parse_flow(yaml).unwrap();
    check(&flow, &|name| KNOWN.contains(&name))
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn assert_lines(yaml: &str, expected: &[&str]) {
    let all = lines(yaml);
    for line in expected {
        assert!(
            all.iter().any(|l| l == line),
            "missing {line:?} in {all:#?}"
        );
    }
    assert_eq!(
        all.len(),
        expected.len(),
        "unexpected extra problems: {all:#?}"
    );
}

fn flow_with(states: &str) -> String {
    format!("id: kinds\nname: Kinds\nstart: a\nstates:\n{states}  end: {{kind: end}}\n")
}

#[test]
fn good_new_kinds_have_no_problems() {
    let yaml = flow_with(
        "  a:\n    kind: http\n    url: \"https://x.test/a?d={{ slots.d }}\"\n    method: POST\n    \
         body: {d: slots.d}\n    map: {start: /slots/0/start}\n    next: w\n    on_error: end\n  \
         w: {kind: wait, text: \"Hi\", slot: r, timeout_secs: 30, on_timeout: end, next: s}\n  \
         s: {kind: subflow, flow: other, next: l}\n  \
         l:\n    kind: llm\n    prompt: assistant\n    tools: [set_slot, goto]\n    slots: {email: email}\n    \
         exits: {done: end}\n    fallback: end\n",
    );
    assert_lines(&yaml, &[]);
}

#[test]
fn http_problems_are_reported_at_their_fields() {
    let yaml = flow_with(
        "  a:\n    kind: http\n    url: \"https://{{ slots.host }}/x\"\n    body: {d: \"slots.d +\"}\n    \
         timeout_ms: 20000\n    retries: 9\n    map: {Bad-Name: slots/0, ok: /x}\n    next: nowhere\n    \
         on_error: gone\n",
    );
    assert_lines(
        &yaml,
        &[
            "states.a.next: unknown state \"nowhere\"",
            "states.a.on_error: unknown state \"gone\"",
            "states.a.url: the URL's host must be written out, not templated",
            "states.a.body.d: invalid expression: syntax error: unexpected end of input, expected expression (in <expression>:1)",
            "states.a.body: a GET request sends no body; use `method: POST` (warning)",
            "states.a.timeout_ms: must be between 1 and 10000 milliseconds",
            "states.a.retries: at most 3 retries",
            "states.a.map.Bad-Name: slot name \"Bad-Name\" must use only a-z, 0-9 and _",
            "states.a.map.Bad-Name: \"slots/0\" is not a JSON pointer (write it like /slots/0/start)",
            "states.end: state is unreachable from start \"a\" (warning)",
        ],
    );
}

#[test]
fn an_http_url_must_be_http() {
    let yaml = flow_with("  a: {kind: http, url: \"file:///etc/passwd\", next: end}\n");
    assert_lines(
        &yaml,
        &["states.a.url: the URL must start with http:// or https://"],
    );
}

#[test]
fn wait_problems_are_reported_at_their_fields() {
    let yaml = flow_with(
        "  a: {kind: wait, slot: \"My Slot\", timeout_secs: 0, on_timeout: later, next: end}\n",
    );
    assert_lines(
        &yaml,
        &[
            "states.a.on_timeout: unknown state \"later\"",
            "states.a.slot: slot name \"My Slot\" must use only a-z, 0-9 and _",
            "states.a.timeout_secs: must be between 1 and 2592000 seconds (30 days)",
        ],
    );
}

#[test]
fn llm_problems_are_reported_at_their_fields() {
    let yaml = flow_with(
        "  a:\n    kind: llm\n    prompt: missing_template\n    text: \"inline {{ oops }\"\n    \
         tools: [goto, goto, set_slot]\n    slots: {}\n    exits: {Done: end, go: nowhere}\n    \
         max_turns: 0\n    fallback: end\n",
    );
    let all = lines(&yaml);
    let paths: Vec<&str> = all
        .iter()
        .map(|l| l.split(": ").next().unwrap_or_default())
        .collect();
    assert_eq!(
        paths,
        [
            "states.a.exits.go",
            "states.a",
            "states.a.prompt",
            "states.a.text",
            "states.a.tools[1]",
            "states.a.tools",
            "states.a.exits.Done",
            "states.a.max_turns",
        ],
        "{all:#?}"
    );
    let no_prompt = flow_with("  a: {kind: llm, fallback: end}\n");
    assert_lines(
        &no_prompt,
        &["states.a: an llm state needs `prompt` (template name) or `text` (inline)"],
    );
}

#[test]
fn a_subflow_key_must_be_an_identifier_and_not_the_flow_itself() {
    let yaml = flow_with(
        "  a: {kind: subflow, flow: kinds, next: b}\n  b: {kind: subflow, flow: \"Other-Flow\", next: end}\n",
    );
    assert_lines(
        &yaml,
        &[
            "states.a.flow: a flow cannot call itself",
            "states.b.flow: flow key \"Other-Flow\" must use only a-z, 0-9 and _",
        ],
    );
}

#[test]
fn calls_are_checked_against_the_flows_they_reach() {
    let main = parse_flow(&flow_with(
        "  a: {kind: subflow, flow: helper, next: end}\n",
    ))
    .unwrap();
    let helper = parse_flow(
        "id: helper\nname: H\nstart: x\nstates:\n  x: {kind: subflow, flow: kinds, next: y}\n  y: {kind: end}\n",
    )
    .unwrap();
    let problems = check_calls(&main, &|key| (key == "helper").then(|| helper.clone()));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "states.a.flow");
    assert_eq!(problems[0].message, "calls loop: kinds -> helper -> kinds");
    assert_eq!(problems[0].severity, Severity::Error);
    let none = check_calls(&main, &|_| None);
    assert_eq!(
        none[0].message,
        "unknown flow \"helper\" (not published, not built in)"
    );
}

#[test]
fn an_http_state_that_loops_to_itself_never_waits() {
    let yaml = flow_with("  a: {kind: http, url: \"https://x.test\", next: a, on_error: end}\n");
    assert_lines(
        &yaml,
        &["states.a.next: auto-transition loop a -> a never waits for the customer"],
    );
}
