//! Tests of slot validation and normalisation per type.
//! Invariant: "today" is Tuesday 2026-03-03 throughout.

use chrono::NaiveDate;
use serde_json::{json, Value};
use switchboard::agent::slots::{
    normalize_email, normalize_number, normalize_phone, normalize_text, SlotError,
};
use switchboard::agent::{dates::parse_date, normalize_slot, SlotRules, SlotType};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 3).unwrap()
}

fn date(input: &str) -> Result<String, SlotError> {
    parse_date(input, today()).map(|d| d.format("%Y-%m-%d").to_string())
}

#[test]
fn text_is_trimmed_non_empty_and_bounded() {
    assert_eq!(normalize_text("  Ann Smith \n").unwrap(), "Ann Smith");
    assert_eq!(normalize_text(" \t "), Err(SlotError::Empty));
    assert_eq!(
        normalize_text(&"é".repeat(500)).unwrap().chars().count(),
        500
    );
    assert_eq!(
        normalize_text(&"a".repeat(501)),
        Err(SlotError::TooLong { max: 500 })
    );
}

#[test]
fn numbers() {
    let ok: [(&str, Value); 10] = [
        ("12", json!(12)),
        (" -3 ", json!(-3)),
        ("+4", json!(4)),
        ("2.5", json!(2.5)),
        ("2,5", json!(2.5)),
        ("1,000", json!(1000)),
        ("1,234.5", json!(1234.5)),
        ("twelve", json!(12)),
        ("Zero", json!(0)),
        ("twenty", json!(20)),
    ];
    for (input, expected) in ok {
        assert_eq!(normalize_number(input).unwrap(), expected, "{input}");
    }
    for bad in [
        "abc",
        "1e5",
        "NaN",
        "inf",
        "1.2.3",
        "--1",
        "twenty one",
        "3 apples",
    ] {
        assert_eq!(normalize_number(bad), Err(SlotError::NotANumber), "{bad}");
    }
    assert_eq!(normalize_number(" "), Err(SlotError::Empty));
}

#[test]
fn emails() {
    assert_eq!(
        normalize_email(" Ann@Example.COM ").unwrap(),
        "Ann@example.com"
    );
    assert_eq!(
        normalize_email("mailto:bob@mail.co.uk").unwrap(),
        "bob@mail.co.uk"
    );
    assert_eq!(
        normalize_email("<a.b+tag@x-y.io>").unwrap(),
        "a.b+tag@x-y.io"
    );
    assert_eq!(
        normalize_email("bob@example.com.").unwrap(),
        "bob@example.com"
    );
    let cases = [
        ("bob.example.com", SlotError::EmailMissingAt),
        ("bob@@example.com", SlotError::EmailManyAt),
        ("a@b@example.com", SlotError::EmailManyAt),
        ("bob @example.com", SlotError::EmailSpaces),
        ("@example.com", SlotError::EmailLocalPart),
        (".bob@example.com", SlotError::EmailLocalPart),
        ("bo..b@example.com", SlotError::EmailLocalPart),
        ("bob@example", SlotError::EmailDomain),
        ("bob@", SlotError::EmailDomain),
        ("bob@example.c", SlotError::EmailDomain),
        ("bob@-example.com", SlotError::EmailDomain),
        ("bob@exa_mple.com", SlotError::EmailDomain),
        ("", SlotError::Empty),
    ];
    for (input, err) in cases {
        assert_eq!(normalize_email(input), Err(err), "{input}");
    }
    let long = format!("{}@example.com", "a".repeat(250));
    assert_eq!(normalize_email(&long), Err(SlotError::EmailTooLong));
    assert!(SlotError::EmailMissingAt
        .to_string()
        .contains("name@example.com"));
}

#[test]
fn phones() {
    let ok = [
        ("+1 415 555 2671", "1", "+14155552671"),
        ("(415) 555-2671", "1", "+14155552671"),
        ("415.555.2671", "1", "+14155552671"),
        ("1-415-555-2671", "1", "+14155552671"),
        ("0044 20 7946 0018", "1", "+442079460018"),
        ("020 7946 0018", "44", "+442079460018"),
        ("06 12 34 56 78", "33", "+33612345678"),
    ];
    for (input, cc, expected) in ok {
        assert_eq!(normalize_phone(input, cc).unwrap(), expected, "{input}");
    }
    let bad = [
        ("555 2671", SlotError::PhoneTooShort),
        ("415 555 26711 2", SlotError::PhoneTooLong),
        ("+1234567890123456", SlotError::PhoneTooLong),
        ("+1234", SlotError::PhoneTooShort),
        ("call me", SlotError::PhoneCharacters),
        ("415-555-CALL", SlotError::PhoneCharacters),
        ("+0123456789", SlotError::PhoneInvalid),
        ("", SlotError::Empty),
    ];
    for (input, err) in bad {
        assert_eq!(normalize_phone(input, "1"), Err(err), "{input}");
    }
}

#[test]
fn dates_absolute() {
    let ok = [
        ("2026-12-03", "2026-12-03"),
        ("2026/12/03", "2026-12-03"),
        ("13/12/2026", "2026-12-13"),
        ("12/13/2026", "2026-12-13"),
        ("5/5/26", "2026-05-05"),
        ("25.12.2026", "2026-12-25"),
        ("3 December 2026", "2026-12-03"),
        ("December 3rd, 2026", "2026-12-03"),
        ("the 3rd of dec", "2026-12-03"),
        ("Tuesday 10 March", "2026-03-10"),
        ("1 march", "2027-03-01"),
        ("3 march", "2026-03-03"),
        ("20/3", "2026-03-20"),
    ];
    for (input, expected) in ok {
        assert_eq!(date(input).unwrap(), expected, "{input}");
    }
}

#[test]
fn dates_relative() {
    let ok = [
        ("today", "2026-03-03"),
        ("Tomorrow", "2026-03-04"),
        ("the day after tomorrow", "2026-03-05"),
        ("wednesday", "2026-03-04"),
        ("next tuesday", "2026-03-10"),
        ("this friday", "2026-03-06"),
        ("on Mon", "2026-03-09"),
        ("sunday.", "2026-03-08"),
    ];
    for (input, expected) in ok {
        assert_eq!(date(input).unwrap(), expected, "{input}");
    }
}

#[test]
fn dates_rejected() {
    assert_eq!(
        date("3/12/2026"),
        Err(SlotError::DateAmbiguous {
            day_first: "3 December 2026".into(),
            month_first: "12 March 2026".into(),
        })
    );
    assert_eq!(date("2026-02-30"), Err(SlotError::DateInvalid));
    assert_eq!(date("31/31/2026"), Err(SlotError::DateInvalid));
    assert_eq!(date("30 february 2026"), Err(SlotError::DateInvalid));
    for bad in [
        "soon",
        "next week",
        "2026-12",
        "123/4/2026",
        "blue 3 december",
        "3 4 december",
        "tu",
    ] {
        assert_eq!(date(bad), Err(SlotError::DateUnrecognised), "{bad}");
    }
    assert_eq!(date(" "), Err(SlotError::Empty));
    assert!(date("4/5/2026")
        .unwrap_err()
        .to_string()
        .contains("YYYY-MM-DD"));
}

#[test]
fn normalize_slot_dispatches_by_type() {
    let rules = SlotRules {
        time: switchboard::nlu::datetime::TimeContext {
            now: today().and_hms_opt(10, 0, 0).unwrap(),
            tz: chrono_tz::UTC,
        },
        country_code: "1",
    };
    let cases = [
        (SlotType::Text, " hi ", json!("hi")),
        (SlotType::Number, "7", json!(7)),
        (SlotType::Email, "A@B.CO", json!("A@b.co")),
        (SlotType::Phone, "(415) 555-2671", json!("+14155552671")),
        (SlotType::Date, "tomorrow", json!("2026-03-04")),
    ];
    for (ty, input, expected) in cases {
        assert_eq!(
            normalize_slot(ty, input, &rules).unwrap(),
            expected,
            "{ty:?}"
        );
    }
}
