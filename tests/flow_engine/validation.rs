//! Tests of `parse_flow` errors and `validate`/`check` problems.
//! Invariant: templates "known" to these tests are exactly `KNOWN`.

use switchboard::agent::{
    check, parse_flow, validate, Flow, FlowParseError, FlowProblem, Severity,
};

const KNOWN: [&str; 4] = ["hello", "menu", "choice_retry", "ask_retry"];

fn known(name: &str) -> bool {
    KNOWN.contains(&name)
}

fn problems(yaml: &str) -> Vec<FlowProblem> {
    let flow: Flow = parse_flow(yaml).unwrap();
    check(&flow, &known)
}

fn lines(yaml: &str) -> Vec<String> {
    problems(yaml).iter().map(ToString::to_string).collect()
}

fn has(yaml: &str, expected: &str) {
    let all = lines(yaml);
    assert!(
        all.iter().any(|l| l == expected),
        "missing {expected:?} in {all:#?}"
    );
}

const GOOD: &str = r#"
id: good_flow
name: Good
start: hello
states:
  hello: { kind: message, say: hello, next: menu }
  menu:
    kind: choice
    say: menu
    options:
      - { id: a, label: "Alpha", next: ask }
      - { id: b, label: "Beta", next: bye }
  ask: { kind: ask, slot: thing, text: "Thing?", next: bye }
  bye: { kind: end }
"#;

#[test]
fn good_flow_has_no_problems() {
    let flow = parse_flow(GOOD).unwrap();
    assert_eq!(validate(&flow, &known), Ok(()));
}

#[test]
fn bad_id_and_unknown_start() {
    let yaml = GOOD
        .replace("id: good_flow", "id: Good-Flow")
        .replace("start: hello", "start: nope");
    has(
        &yaml,
        "id: flow id \"Good-Flow\" must use only a-z, 0-9 and _",
    );
    has(&yaml, "start: unknown state \"nope\"");
}

#[test]
fn unknown_targets_report_full_paths() {
    let yaml = GOOD
        .replace("next: bye }\n  ask", "next: confirm }\n  ask")
        .replace(
            "slot: thing, text: \"Thing?\", next: bye",
            "slot: thing, text: \"Thing?\", next: gone, on_fail: void",
        );
    has(
        &yaml,
        "states.menu.options[1].next: unknown state \"confirm\"",
    );
    has(&yaml, "states.ask.next: unknown state \"gone\"");
    has(&yaml, "states.ask.on_fail: unknown state \"void\"");
}

#[test]
fn empty_options_and_duplicate_ids() {
    let empty = GOOD.replace(
        "    options:\n      - { id: a, label: \"Alpha\", next: ask }\n      - { id: b, label: \"Beta\", next: bye }\n",
        "    options: []\n",
    );
    has(
        &empty,
        "states.menu.options: a choice needs at least one option",
    );
    let dup = GOOD.replace("id: b, label: \"Beta\"", "id: a, label: \"alpha!\"");
    has(
        &dup,
        "states.menu.options[1].id: duplicate option id \"a\" (also options[0])",
    );
    has(&dup, "states.menu.options[1].label: label \"alpha!\" repeats options[0]; customers cannot tell them apart (warning)");
}

#[test]
fn prompt_problems() {
    let yaml = GOOD
        .replace(
            "hello: { kind: message, say: hello,",
            "hello: { kind: message, say: hello, text: hi,",
        )
        .replace("say: menu", "say: missing_menu")
        .replace("text: \"Thing?\", ", "")
        .replace(
            "bye: { kind: end }",
            "bye: { kind: end, text: \"{{ oops }\" }",
        );
    has(
        &yaml,
        "states.hello: set either `say` (template name) or `text` (inline), not both",
    );
    has(&yaml, "states.menu.say: unknown template \"missing_menu\"");
    has(
        &yaml,
        "states.ask: an ask state needs `say` (template name) or `text` (inline)",
    );
    let all = lines(&yaml);
    assert!(
        all.iter()
            .any(|l| l.starts_with("states.bye.text: template syntax error at line 1")),
        "{all:#?}"
    );
}

#[test]
fn retry_templates_and_attempts() {
    let yaml = GOOD.replace(
        "say: menu\n",
        "say: menu\n    retry: nope\n    max_attempts: 0\n",
    );
    has(&yaml, "states.menu.retry: unknown template \"nope\"");
    has(&yaml, "states.menu.max_attempts: must be at least 1");
    let flow = parse_flow(GOOD).unwrap();
    let no_defaults = |n: &str| n == "hello" || n == "menu";
    let all: Vec<String> = check(&flow, &no_defaults)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(all
        .iter()
        .any(|l| l.starts_with("states.menu.retry: default retry template \"choice_retry\"")));
    assert!(all
        .iter()
        .any(|l| l.starts_with("states.ask.retry: default retry template \"ask_retry\"")));
}

#[test]
fn slot_and_country_code_checks() {
    let yaml = GOOD.replace("slot: thing,", "slot: Thing Name, country_code: \"+44\",");
    has(
        &yaml,
        "states.ask.slot: slot name \"Thing Name\" must use only a-z, 0-9 and _",
    );
    has(
        &yaml,
        "states.ask.country_code: country code \"+44\" must be 1-3 digits without + (e.g. \"44\")",
    );
    let warn = GOOD.replace("slot: thing,", "slot: thing, country_code: \"44\",");
    has(
        &warn,
        "states.ask.country_code: only used by `type: phone` (warning)",
    );
}

#[test]
fn message_loops_are_detected_once() {
    let yaml = r#"
id: loops
name: Loops
start: a
states:
  a: { kind: message, text: "a", next: b }
  b: { kind: message, text: "b", next: c }
  c: { kind: message, text: "c", next: b }
  d: { kind: message, text: "d", next: d }
"#;
    let all = lines(yaml);
    let loops: Vec<&String> = all.iter().filter(|l| l.contains("loop")).collect();
    assert_eq!(
        loops,
        [
            "states.b.next: auto-transition loop b -> c -> b never waits for the customer",
            "states.d.next: auto-transition loop d -> d never waits for the customer",
        ]
    );
}

#[test]
fn loops_through_waiting_states_are_fine() {
    let yaml = r#"
id: ok_loop
name: Ok
start: a
states:
  a: { kind: message, text: "a", next: q }
  q:
    kind: choice
    text: "again?"
    options: [{ id: again, label: Again, next: a }]
"#;
    assert!(lines(yaml).is_empty(), "{:#?}", lines(yaml));
}

#[test]
fn unreachable_states_are_warnings() {
    let yaml = GOOD.replace(
        "bye: { kind: end }",
        "bye: { kind: end }\n  orphan: { kind: end }",
    );
    let found = problems(&yaml);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::Warning);
    assert_eq!(found[0].path, "states.orphan");
    assert_eq!(
        found[0].to_string(),
        "states.orphan: state is unreachable from start \"hello\" (warning)"
    );
}

#[test]
fn every_problem_is_reported_in_order() {
    let yaml = r#"
id: BAD
name: ""
start: nowhere
states:
  one: { kind: message, next: two }
  two:
    kind: choice
    say: absent
    options:
      - { id: x, label: X, next: three }
      - { id: x, label: Y, next: one }
"#;
    let flow = parse_flow(yaml).unwrap();
    let all: Vec<String> = validate(&flow, &known)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        all,
        [
            "id: flow id \"BAD\" must use only a-z, 0-9 and _",
            "name: flow name must not be empty",
            "start: unknown state \"nowhere\"",
            "states.one: a message state needs `say` (template name) or `text` (inline)",
            "states.two.say: unknown template \"absent\"",
            "states.two.options[0].next: unknown state \"three\"",
            "states.two.options[1].id: duplicate option id \"x\" (also options[0])",
        ]
    );
}

#[test]
fn parse_errors_carry_line_and_column() {
    let typo =
        "id: x\nname: y\nstart: a\nstates:\n  a:\n    kind: message\n    sy: hi\n    next: a\n";
    let err = parse_flow(typo).unwrap_err();
    assert!(
        matches!(
            err,
            FlowParseError::At {
                line: 5,
                column: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("invalid flow YAML at line 5, column 3: states.a: unknown field `sy`"),
        "{text}"
    );
    let kind = parse_flow("id: x\nname: y\nstart: a\nstates:\n  a: { kind: mesage, next: a }\n")
        .unwrap_err();
    assert!(
        kind.to_string().contains("unknown variant `mesage`"),
        "{kind}"
    );
    let top = parse_flow("id: x\nname: y\nstart: a\nstatez: {}\n").unwrap_err();
    assert!(
        matches!(
            top,
            FlowParseError::At {
                line: 4,
                column: 1,
                ..
            }
        ),
        "{top:?}"
    );
    let dup =
        parse_flow("id: x\nname: y\nstart: a\nstates:\n  a: { kind: end }\n  a: { kind: end }\n")
            .unwrap_err();
    assert!(dup.to_string().contains("duplicate state \"a\""), "{dup}");
    let broken = parse_flow("id: [x\n").unwrap_err();
    assert!(
        broken.to_string().starts_with("invalid flow YAML at line"),
        "{broken}"
    );
}

#[test]
fn states_keep_yaml_order_and_serialize_back() {
    let flow = parse_flow(GOOD).unwrap();
    let names: Vec<&str> = flow.states.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["hello", "menu", "ask", "bye"]);
    let yaml = serde_yaml::to_string(&flow).unwrap();
    assert_eq!(parse_flow(&yaml).unwrap(), flow);
}
