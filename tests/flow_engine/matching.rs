//! Tests of free-text → option matching, positives and negatives.
//! Invariant: `menu()` mirrors the demo's main menu; `yes_no()` is a
//! deliberately short, easily confused option set.

use switchboard::agent::{match_index, ChoiceOption};

fn opt(id: &str, label: &str, synonyms: &[&str]) -> ChoiceOption {
    ChoiceOption {
        id: id.into(),
        label: label.into(),
        next: "x".into(),
        synonyms: synonyms.iter().map(|s| s.to_string()).collect(),
        intent: None,
    }
}

fn menu() -> Vec<ChoiceOption> {
    vec![
        opt("book", "Book an appointment", &["appointment", "booking"]),
        opt("question", "Ask a question", &[]),
        opt("human", "Talk to a person", &[]),
    ]
}

fn yes_no() -> Vec<ChoiceOption> {
    vec![
        opt("yes", "Yes", &["yeah", "sure"]),
        opt("no", "No", &["nope"]),
    ]
}

fn id_of(input: &str, options: &[ChoiceOption]) -> Option<String> {
    match_index(input, options).map(|i| options[i].id.clone())
}

fn expect(options: &[ChoiceOption], cases: &[(&str, Option<&str>)]) {
    for (input, expected) in cases {
        let got = id_of(input, options);
        assert_eq!(got.as_deref(), *expected, "input {input:?}");
    }
}

#[test]
fn exact_ids_labels_and_synonyms() {
    expect(
        &menu(),
        &[
            ("book", Some("book")),
            ("HUMAN", Some("human")),
            ("question", Some("question")),
            ("Book an appointment", Some("book")),
            ("talk to a person!!", Some("human")),
            ("  ask   a QUESTION ", Some("question")),
            ("booking", Some("book")),
            ("Appointment.", Some("book")),
        ],
    );
}

#[test]
fn numbers_and_ordinals() {
    expect(
        &menu(),
        &[
            ("1", Some("book")),
            ("2.", Some("question")),
            ("#3", Some("human")),
            ("option 2", Some("question")),
            ("Option #1", Some("book")),
            ("number 3 please", Some("human")),
            ("the second one", Some("question")),
            ("second", Some("question")),
            ("the 3rd", Some("human")),
            ("first option", Some("book")),
            ("two", Some("question")),
            ("last", Some("human")),
            ("I'd like 1", Some("book")),
            ("4", None),
            ("0", None),
            ("option 12", None),
        ],
    );
}

#[test]
fn containment_and_prefixes() {
    expect(
        &menu(),
        &[
            ("I'd like to book an appointment please", Some("book")),
            ("can I talk to a person?", Some("human")),
            ("I need an appointment", Some("book")),
            ("I want to ask a question", Some("question")),
            ("talk", Some("human")),
            ("talk to", Some("human")),
            ("ask a q", Some("question")),
            ("book an app", Some("book")),
            ("I have a question about prices", Some("question")),
            ("a real person please", Some("human")),
        ],
    );
}

#[test]
fn spelling_mistakes() {
    expect(
        &menu(),
        &[
            ("apointment", Some("book")),
            ("appointmnet", Some("book")),
            ("tlak to a persn", Some("human")),
            ("bok an apointment", Some("book")),
            ("qestion", Some("question")),
            ("ask a qeustion", Some("question")),
            ("persn", Some("human")),
        ],
    );
}

#[test]
fn negatives_and_ambiguity() {
    expect(
        &menu(),
        &[
            ("banana", None),
            ("", None),
            ("   ?! ", None),
            ("hello", None),
            ("what", None),
            ("xyz", None),
            ("a", None),
            ("I want to book but first talk to a person", None),
            ("question about my appointment", None),
            ("what are your opening hours", None),
            ("thanks", None),
            ("5th", None),
        ],
    );
}

#[test]
fn short_options() {
    expect(
        &yes_no(),
        &[
            ("yes", Some("yes")),
            ("Yes!", Some("yes")),
            ("yeah", Some("yes")),
            ("sure", Some("yes")),
            ("nope", Some("no")),
            ("no thanks", Some("no")),
            ("yes please", Some("yes")),
            ("1", Some("yes")),
            ("2", Some("no")),
            ("maybe", None),
            ("yes no", None),
        ],
    );
}

#[test]
fn equally_close_options_are_ambiguous() {
    let options = vec![opt("a", "Cleaning", &[]), opt("b", "Cleaninh", &[])];
    assert_eq!(id_of("cleanin", &options), None);
    let options = vec![opt("red", "Red wine", &[]), opt("white", "White wine", &[])];
    assert_eq!(id_of("wine", &options), None);
    assert_eq!(id_of("whte wine", &options).as_deref(), Some("white"));
}

#[test]
fn empty_option_list_matches_nothing() {
    assert_eq!(match_index("1", &[]), None);
}
