//! Rule-based entity extraction: date/time expressions (through [`super::datetime`]), email
//! addresses, phone numbers and plain numbers.
//!
//! Owns `extract_entities` and the JSON form of a time value stored in slots and entities.
//! Invariants: pure and deterministic; entities never overlap (a time expression's digits are
//! not also a phone number or a number); every value is validated by the same normalisers an
//! `ask` answer goes through, so an entity is always a value a slot would accept.

use serde_json::Value;

use super::datetime::{extract, TimeContext, TimeValue};
use super::understanding::Entity;
use crate::agent::slots::{normalize_email, normalize_number, normalize_phone};

/// Fewest digits a run needs to be read as a phone number.
const MIN_PHONE_DIGITS: usize = 7;

/// A time value as stored in slots and entities: its tagged object plus `canonical`.
pub fn time_value_json(value: &TimeValue) -> Value {
    let mut json = serde_json::to_value(value).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut json {
        map.insert("canonical".into(), Value::String(value.canonical()));
    }
    json
}

/// Every entity in `text`, in order of appearance.
pub fn extract_entities(text: &str, time: &TimeContext, country_code: &str) -> Vec<Entity> {
    let mut out: Vec<Entity> = extract(text, time)
        .into_iter()
        .map(|m| Entity {
            kind: "when".into(),
            text: m.text,
            start: m.start,
            end: m.end,
            value: time_value_json(&m.value),
        })
        .collect();
    for e in emails(text).into_iter().chain(phones(text, country_code)) {
        if !overlaps(&out, e.start, e.end) {
            out.push(e);
        }
    }
    for e in numbers(text) {
        if !overlaps(&out, e.start, e.end) {
            out.push(e);
        }
    }
    out.sort_by_key(|e| e.start);
    out
}

fn overlaps(found: &[Entity], start: usize, end: usize) -> bool {
    found.iter().any(|e| start < e.end && e.start < end)
}

/// Whitespace-separated tokens with their byte spans, edge punctuation trimmed.
fn tokens(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out.into_iter()
        .filter_map(|(s, tok)| {
            let lead = tok.len() - tok.trim_start_matches(is_edge).len();
            let core = tok.trim_matches(is_edge);
            (!core.is_empty()).then_some((s + lead, core))
        })
        .collect()
}

fn is_edge(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | '"' | '\'' | '(' | ')' | '<' | '>' | '[' | ']'
    )
}

fn emails(text: &str) -> Vec<Entity> {
    tokens(text)
        .into_iter()
        .filter(|(_, tok)| tok.contains('@'))
        .filter_map(|(start, tok)| {
            let value = normalize_email(tok).ok()?;
            Some(Entity {
                kind: "email".into(),
                text: tok.to_string(),
                start,
                end: start + tok.len(),
                value: Value::String(value),
            })
        })
        .collect()
}

/// Runs of digits, spaces, dashes, dots, parentheses and a leading `+` holding enough digits.
fn phones(text: &str, country_code: &str) -> Vec<Entity> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = bytes[i].is_ascii_digit() || (bytes[i] == b'+' || bytes[i] == b'(');
        if !starts || (i > 0 && bytes[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len()
            && matches!(
                bytes[j],
                b'0'..=b'9' | b' ' | b'-' | b'.' | b'(' | b')' | b'+'
            )
        {
            j += 1;
        }
        let run = text[i..j].trim_end_matches([' ', '-', '.', '(']);
        let digits = run.bytes().filter(u8::is_ascii_digit).count();
        if digits >= MIN_PHONE_DIGITS {
            if let Ok(value) = normalize_phone(run, country_code) {
                out.push(Entity {
                    kind: "phone".into(),
                    text: run.to_string(),
                    start: i,
                    end: i + run.len(),
                    value: Value::String(value),
                });
            }
        }
        i = j.max(i + 1);
    }
    out
}

fn numbers(text: &str) -> Vec<Entity> {
    tokens(text)
        .into_iter()
        .filter(|(_, tok)| tok.chars().any(|c| c.is_ascii_digit()))
        .filter_map(|(start, tok)| {
            let value = normalize_number(tok).ok()?;
            Some(Entity {
                kind: "number".into(),
                text: tok.to_string(),
                start,
                end: start + tok.len(),
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn ctx() -> TimeContext {
        TimeContext {
            now: NaiveDate::from_ymd_opt(2026, 11, 24)
                .and_then(|d| d.and_hms_opt(10, 0, 0))
                .unwrap(),
            tz: chrono_tz::Europe::London,
        }
    }

    fn kinds(text: &str) -> Vec<(String, Value)> {
        extract_entities(text, &ctx(), "44")
            .into_iter()
            .map(|e| (e.kind, e.value))
            .collect()
    }

    #[test]
    fn emails_phones_numbers_and_times_do_not_overlap() {
        let found = kinds("I'm ann@Example.COM, call 07700 900123 about 2 fillings tomorrow");
        let names: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["email", "phone", "number", "when"]);
        assert_eq!(found[0].1, "ann@example.com");
        assert_eq!(found[1].1, "+447700900123");
        assert_eq!(found[2].1, 2);
        assert_eq!(found[3].1["canonical"], "date:2026-11-25");
    }

    #[test]
    fn spans_point_into_the_text() {
        let text = "Mañana? no: email bob@x.io.";
        for e in extract_entities(text, &ctx(), "1") {
            assert_eq!(&text[e.start..e.end], e.text);
        }
    }
}
