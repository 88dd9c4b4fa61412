//! Slot validation and normalisation for `ask` states.
//!
//! Owns `SlotType`, `SlotError` and the per-type normalisers. Invariants:
//! - Every normaliser is pure: same input (and `today`/calling code) gives the
//!   same output.
//! - Stored values are canonical: trimmed text, JSON numbers, emails with a
//!   lowercased domain, E.164 phone numbers (`+` and 8–15 digits) and ISO
//!   `YYYY-MM-DD` dates.
//! - Every `SlotError` message is written for the customer; it is shown
//!   verbatim through the retry template's `error` variable.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dates;
use crate::nlu::datetime::{resolve, TimeContext};
use crate::nlu::entities::time_value_json;

/// Longest accepted free-text answer, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// The kind of value an `ask` state collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotType {
    /// Trimmed free text of at most `MAX_TEXT_CHARS` characters.
    #[default]
    Text,
    /// An integer or decimal (or "zero" to "twenty"), stored as a JSON number.
    Number,
    /// An email address, stored with its domain lowercased.
    Email,
    /// A phone number, stored in E.164 form.
    Phone,
    /// A calendar date, absolute or relative, stored as `YYYY-MM-DD`.
    Date,
    /// Any date/time expression ("next Thursday afternoon", "tomorrow at 3", "next week"),
    /// stored as a time value object (`kind`, its fields, and `canonical`) in the business's
    /// time zone; see docs/understanding.md.
    When,
}

impl SlotType {
    /// Whether any non-empty text is a valid answer.
    pub fn is_free_text(self) -> bool {
        self == SlotType::Text
    }
}

/// Why an answer was rejected; `Display` is the customer-facing explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The answer is blank.
    #[error("I didn't catch anything there. Could you type your answer?")]
    Empty,
    /// Text longer than `MAX_TEXT_CHARS` characters.
    #[error("That's a bit long. Please keep it under {max} characters.")]
    TooLong {
        /// The character limit.
        max: usize,
    },
    /// Not a number.
    #[error("Please reply with a number, like 3 or 2.5.")]
    NotANumber,
    /// Email without an `@`.
    #[error("That email address is missing an \"@\". It should look like name@example.com.")]
    EmailMissingAt,
    /// Email with more than one `@`.
    #[error("An email address has only one \"@\". Please check it and try again.")]
    EmailManyAt,
    /// Email containing whitespace.
    #[error("Email addresses can't contain spaces. Please check it and try again.")]
    EmailSpaces,
    /// Invalid local part (before the `@`).
    #[error("The part before the \"@\" doesn't look right. Please check your email address.")]
    EmailLocalPart,
    /// Invalid domain (after the `@`).
    #[error(
        "The part after the \"@\" should look like example.com. Please check your email address."
    )]
    EmailDomain,
    /// Email longer than 254 characters.
    #[error("That email address is too long. Please check it and try again.")]
    EmailTooLong,
    /// Phone number with characters other than digits, spaces and `+ ( ) - . /`.
    #[error("Phone numbers can only contain digits, spaces and the characters + ( ) - .")]
    PhoneCharacters,
    /// Phone number with too few digits.
    #[error("That phone number looks too short. Please include the area code.")]
    PhoneTooShort,
    /// Phone number with more than 15 digits (or too many for its calling code).
    #[error("That phone number has too many digits. Please check it and try again.")]
    PhoneTooLong,
    /// Phone number whose international form starts with 0.
    #[error("That doesn't look like a valid phone number. Please check it and try again.")]
    PhoneInvalid,
    /// Text that is not a recognised date.
    #[error("I couldn't read that date. Try something like 2026-12-03, \"tomorrow\" or \"next Tuesday\".")]
    DateUnrecognised,
    /// Text that holds no recognisable day or time.
    #[error("I couldn't work out when you mean. Try something like \"tomorrow at 3pm\" or \"next Tuesday morning\".")]
    WhenUnrecognised,
    /// A day that does not exist, e.g. 31 April.
    #[error("That date doesn't exist. Please check the day and month.")]
    DateInvalid,
    /// A numeric date that reads validly both day-first and month-first.
    #[error("Did you mean {day_first} or {month_first}? Please write the date as YYYY-MM-DD, for example 2026-12-03.")]
    DateAmbiguous {
        /// The day-first reading, e.g. "3 December 2026".
        day_first: String,
        /// The month-first reading.
        month_first: String,
    },
}

/// Context a normaliser may need besides the answer itself.
#[derive(Debug, Clone, Copy)]
pub struct SlotRules<'a> {
    /// The business's local "now" and time zone; relative dates resolve against its day.
    pub time: TimeContext,
    /// Calling code for national phone numbers, digits only (e.g. "1", "44").
    pub country_code: &'a str,
}

/// Validates and normalises `input` as `ty`, giving the value to store.
pub fn normalize_slot(
    ty: SlotType,
    input: &str,
    rules: &SlotRules<'_>,
) -> Result<Value, SlotError> {
    match ty {
        SlotType::Text => normalize_text(input).map(Value::String),
        SlotType::Number => normalize_number(input),
        SlotType::Email => normalize_email(input).map(Value::String),
        SlotType::Phone => normalize_phone(input, rules.country_code).map(Value::String),
        SlotType::Date => {
            parse_day(input, rules).map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
        }
        SlotType::When => parse_when(input, rules),
    }
}

/// A day: the first day of any time expression, else the strict date reader (which explains
/// ambiguous numeric dates).
fn parse_day(input: &str, rules: &SlotRules<'_>) -> Result<NaiveDate, SlotError> {
    match dates::parse_date(input, rules.time.today()) {
        Ok(day) => Ok(day),
        Err(SlotError::DateUnrecognised) => resolve(input, &rules.time)
            .and_then(|v| v.first_date())
            .ok_or(SlotError::DateUnrecognised),
        Err(other) => Err(other),
    }
}

/// Any time expression, as its value object plus `canonical`.
fn parse_when(input: &str, rules: &SlotRules<'_>) -> Result<Value, SlotError> {
    if input.trim().is_empty() {
        return Err(SlotError::Empty);
    }
    match resolve(input, &rules.time) {
        Some(value) => Ok(time_value_json(&value)),
        // The strict date reader explains what is wrong (e.g. an ambiguous 3/12/2026).
        None => match dates::parse_date(input, rules.time.today()) {
            Err(SlotError::DateUnrecognised) => Err(SlotError::WhenUnrecognised),
            Err(other) => Err(other),
            Ok(day) => Ok(time_value_json(&crate::nlu::datetime::TimeValue::Date {
                date: day,
            })),
        },
    }
}

/// Trimmed, non-empty text of at most `MAX_TEXT_CHARS` characters.
pub fn normalize_text(input: &str) -> Result<String, SlotError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(SlotError::Empty);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(SlotError::TooLong {
            max: MAX_TEXT_CHARS,
        });
    }
    Ok(text.to_string())
}

/// Number words "zero" to "twenty", by value.
pub(crate) const NUMBER_WORDS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// An integer or decimal number; "1,000" and "2,5" are understood, as are
/// the words "zero" to "twenty".
pub fn normalize_number(input: &str) -> Result<Value, SlotError> {
    let raw = input.trim().to_lowercase();
    if raw.is_empty() {
        return Err(SlotError::Empty);
    }
    if let Some(n) = NUMBER_WORDS.iter().position(|w| *w == raw) {
        return Ok(Value::from(n));
    }
    let cleaned = clean_number(&raw).ok_or(SlotError::NotANumber)?;
    if let Ok(i) = cleaned.parse::<i64>() {
        return Ok(Value::from(i));
    }
    cleaned
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or(SlotError::NotANumber)
}

/// Strips grouping commas and spaces; `None` unless the result is
/// `[+-]digits[.digits]`.
fn clean_number(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let unsigned = compact.trim_start_matches(['+', '-']);
    let grouped = is_thousands_grouped(unsigned.split('.').next().unwrap_or(""));
    let s = if compact.contains('.') || grouped {
        compact.replace(',', "")
    } else {
        compact.replace(',', ".")
    };
    let body = s.strip_prefix(['+', '-']).unwrap_or(&s);
    let mut parts = body.split('.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let ok = parts.next().is_none() && digits(int) && frac.map_or(true, digits);
    ok.then_some(s)
}

fn is_thousands_grouped(s: &str) -> bool {
    let mut groups = s.split(',');
    let first = groups.next().unwrap_or("");
    let rest: Vec<&str> = groups.collect();
    !rest.is_empty() && (1..=3).contains(&first.len()) && rest.iter().all(|g| g.len() == 3)
}

/// A practical email check; the domain is lowercased, the local part kept.
pub fn normalize_email(input: &str) -> Result<String, SlotError> {
    let raw = input.trim();
    let raw = raw.strip_prefix("mailto:").unwrap_or(raw);
    let raw = raw.trim_start_matches('<').trim_end_matches(['>', '.']);
    if raw.is_empty() {
        return Err(SlotError::Empty);
    }
    if raw.chars().any(char::is_whitespace) {
        return Err(SlotError::EmailSpaces);
    }
    let (local, domain) = match raw.split_once('@') {
        None => return Err(SlotError::EmailMissingAt),
        Some((_, d)) if d.contains('@') => return Err(SlotError::EmailManyAt),
        Some(parts) => parts,
    };
    if raw.len() > 254 {
        return Err(SlotError::EmailTooLong);
    }
    if !valid_local_part(local) {
        return Err(SlotError::EmailLocalPart);
    }
    let domain = domain.to_lowercase();
    if !valid_domain(&domain) {
        return Err(SlotError::EmailDomain);
    }
    Ok(format!("{local}@{domain}"))
}

fn valid_local_part(local: &str) -> bool {
    let allowed = |c: char| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c);
    !local.is_empty()
        && local.len() <= 64
        && local.chars().all(allowed)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld_ok = labels
        .last()
        .is_some_and(|t| t.chars().count() >= 2 && t.chars().all(char::is_alphabetic));
    labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
}

/// Normalises a phone number to E.164 (`+` then 8–15 digits).
///
/// International forms start with `+` or `00`; anything else is national and
/// gets `country_code` prepended (one leading trunk `0` is dropped). For
/// calling code "1" a national number must have 10 digits (or 11 starting
/// with 1).
pub fn normalize_phone(input: &str, country_code: &str) -> Result<String, SlotError> {
    let raw = input.trim();
    if raw.is_empty() {
        return Err(SlotError::Empty);
    }
    let (plus, rest) = match raw.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, raw),
    };
    let digits = phone_digits(rest)?;
    let full = if plus {
        digits
    } else if let Some(intl) = digits.strip_prefix("00") {
        intl.to_string()
    } else {
        national_to_full(&digits, country_code)?
    };
    check_e164_length(&full)?;
    Ok(format!("+{full}"))
}

fn phone_digits(rest: &str) -> Result<String, SlotError> {
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            _ => return Err(SlotError::PhoneCharacters),
        }
    }
    Ok(digits)
}

fn national_to_full(digits: &str, country_code: &str) -> Result<String, SlotError> {
    if country_code == "1" {
        return match digits.len() {
            10 => Ok(format!("1{digits}")),
            11 if digits.starts_with('1') => Ok(digits.to_string()),
            n if n < 10 => Err(SlotError::PhoneTooShort),
            _ => Err(SlotError::PhoneTooLong),
        };
    }
    let national = digits.strip_prefix('0').unwrap_or(digits);
    Ok(format!("{country_code}{national}"))
}

fn check_e164_length(full: &str) -> Result<(), SlotError> {
    match full.len() {
        0..=7 => Err(SlotError::PhoneTooShort),
        16.. => Err(SlotError::PhoneTooLong),
        _ if full.starts_with('0') => Err(SlotError::PhoneInvalid),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_grouping() {
        assert!(is_thousands_grouped("1,000"));
        assert!(is_thousands_grouped("12,345,678"));
        assert!(!is_thousands_grouped("2,5"));
        assert!(!is_thousands_grouped("1000"));
    }

    #[test]
    fn clean_number_rejects_junk() {
        assert_eq!(clean_number("1e5"), None);
        assert_eq!(clean_number("inf"), None);
        assert_eq!(clean_number("1.2.3"), None);
        assert_eq!(clean_number("-"), None);
        assert_eq!(clean_number("-4.5").as_deref(), Some("-4.5"));
    }

    #[test]
    fn domain_rules() {
        assert!(valid_domain("example.co.uk"));
        assert!(!valid_domain("example"));
        assert!(!valid_domain("-bad.com"));
        assert!(!valid_domain("example.c"));
        assert!(!valid_domain("example..com"));
    }
}
