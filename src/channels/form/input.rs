//! The fields of a public form post and their checks: pure functions, no I/O.
//!
//! Invariants: a filled honeypot (`website`) wins over every other check, so a bot learns nothing
//! from error messages; every accepted text is trimmed and free of control characters (newlines
//! and tabs survive in the message only); the email is lower-cased and is the contact's identity;
//! a redirect is only ever to an `http(s)` origin listed in the channel's settings.

use serde::Deserialize;
use serde_json::{json, Value};

/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Longest name or subject, in characters.
pub const MAX_LINE_CHARS: usize = 200;
/// Longest redirect URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// The fields a form may post (JSON or `application/x-www-form-urlencoded`); other fields are
/// ignored, since HTML forms often carry a submit button's name or a CSRF token.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct FormFields {
    /// The sender's name.
    pub name: Option<String>,
    /// The sender's email address (required): the contact's identity on this channel.
    pub email: Option<String>,
    /// The sender's phone number.
    pub phone: Option<String>,
    /// Subject line.
    pub subject: Option<String>,
    /// The message (required, at most 4,000 characters).
    pub message: Option<String>,
    /// Honeypot: hidden from people, filled by bots. Must be empty.
    pub website: Option<String>,
    /// Idempotency key (1-64 of `A-Z a-z 0-9 _ -`): posting the same key twice stores one message.
    pub client_id: Option<String>,
    /// Where to send the browser afterwards (303); its origin must be in the channel's
    /// `redirect_origins` setting.
    pub redirect_to: Option<String>,
}

/// A valid submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// Name.
    pub name: Option<String>,
    /// Lower-cased email.
    pub email: String,
    /// Phone.
    pub phone: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Message.
    pub message: String,
    /// Idempotency key.
    pub client_id: Option<String>,
    /// Requested redirect (origin not yet checked against the channel).
    pub redirect_to: Option<String>,
}

impl Submission {
    /// The structured extras stored with the message.
    pub fn content(&self) -> Value {
        json!({
            "form": {
                "name": self.name, "email": self.email, "phone": self.phone, "subject": self.subject,
            },
            "client_id": self.client_id,
        })
    }
}

/// One field's problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field.
    pub field: &'static str,
    /// Stable code: `missing_field`, `invalid_email`, `invalid_phone`, `too_long`,
    /// `invalid_client_id`, `invalid_redirect`.
    pub code: &'static str,
    /// Explanation.
    pub message: String,
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// The honeypot was filled: accept politely, store nothing.
    Spam,
    /// Store it.
    Valid(Submission),
}

/// Check every field; returns all problems when any.
pub fn check(fields: FormFields) -> Result<Checked, Vec<Problem>> {
    if fields
        .website
        .as_deref()
        .is_some_and(|w| !w.trim().is_empty())
    {
        return Ok(Checked::Spam);
    }
    let mut problems = Vec::new();
    let mut problem = |field, code, message: String| {
        problems.push(Problem {
            field,
            code,
            message,
        })
    };
    let name = one_line(fields.name);
    let subject = one_line(fields.subject);
    for (field, value) in [("name", &name), ("subject", &subject)] {
        if value
            .as_ref()
            .is_some_and(|v| v.chars().count() > MAX_LINE_CHARS)
        {
            problem(
                field,
                "too_long",
                format!("{field} must be at most {MAX_LINE_CHARS} characters"),
            );
        }
    }
    let email = match one_line(fields.email) {
        None => {
            problem("email", "missing_field", "email is required".into());
            None
        }
        Some(raw) => {
            let email = normalize_email(&raw);
            if email.is_none() {
                problem(
                    "email",
                    "invalid_email",
                    format!("{raw:?} is not an email address"),
                );
            }
            email
        }
    };
    let phone = one_line(fields.phone);
    if phone.as_deref().is_some_and(|p| !is_phone(p)) {
        problem(
            "phone",
            "invalid_phone",
            "phone must be 5 to 20 digits, optionally with + ( ) - . and spaces".into(),
        );
    }
    let message = text(fields.message);
    match &message {
        None => problem("message", "missing_field", "message is required".into()),
        Some(m) if m.chars().count() > MAX_MESSAGE_CHARS => problem(
            "message",
            "too_long",
            format!("message must be at most {MAX_MESSAGE_CHARS} characters"),
        ),
        Some(_) => {}
    }
    let client_id = one_line(fields.client_id);
    if client_id.as_deref().is_some_and(|c| !is_client_id(c)) {
        problem(
            "client_id",
            "invalid_client_id",
            "client_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -".into(),
        );
    }
    let redirect_to = one_line(fields.redirect_to);
    if redirect_to
        .as_deref()
        .is_some_and(|r| origin_of(r).is_none())
    {
        problem(
            "redirect_to",
            "invalid_redirect",
            "redirect_to must be an absolute http(s) URL".into(),
        );
    }
    match (email, message) {
        (Some(email), Some(message)) if problems.is_empty() => Ok(Checked::Valid(Submission {
            name,
            email,
            phone,
            subject,
            message,
            client_id,
            redirect_to,
        })),
        _ => Err(problems),
    }
}

/// Single-line text: control characters and runs of whitespace become one space; empty is none.
fn one_line(value: Option<String>) -> Option<String> {
    let cleaned: String = value?
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let joined = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// Multi-line text: trimmed, `\r\n` as `\n`, control characters other than newline and tab
/// dropped; empty is none.
fn text(value: Option<String>) -> Option<String> {
    let cleaned: String = value?
        .replace("\r\n", "\n")
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// The address lower-cased when it is a plausible email address (`local@domain.tld`).
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    if email.len() > 254 {
        return None;
    }
    let (local, domain) = email.rsplit_once('@')?;
    let local_ok = (1..=64).contains(&local.len())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let labels_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let tld_ok = labels.last().is_some_and(|tld| {
        tld.len() >= 2 && (tld.chars().all(|c| c.is_ascii_alphabetic()) || tld.starts_with("xn--"))
    });
    (local_ok && labels_ok && tld_ok).then_some(email)
}

fn is_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    (5..=20).contains(&digits)
        && phone.len() <= 32
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +()-.".contains(c))
}

fn is_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `scheme://host[:port]`, lower-cased, of an absolute `http(s)` URL; `None` for anything else
/// (relative URLs, other schemes, user info, whitespace, backslashes).
pub fn origin_of(url: &str) -> Option<String> {
    if url.len() > MAX_URL_BYTES
        || url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// Whether `url`'s origin is one of `allowed` (origins as configured, compared by [`origin_of`]).
pub fn redirect_allowed(url: &str, allowed: &[String]) -> bool {
    let Some(origin) = origin_of(url) else {
        return false;
    };
    allowed
        .iter()
        .filter_map(|a| origin_of(a.trim()))
        .any(|a| a == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(email: &str, message: &str) -> FormFields {
        FormFields {
            email: Some(email.into()),
            message: Some(message.into()),
            ..FormFields::default()
        }
    }

    fn problems(f: FormFields) -> Vec<(&'static str, &'static str)> {
        check(f)
            .unwrap_err()
            .into_iter()
            .map(|p| (p.field, p.code))
            .collect()
    }

    #[test]
    fn a_valid_form_is_cleaned() {
        let mut f = fields("  Ada@Example.COM ", "  Hello\r\nthere\u{0}  ");
        f.name = Some(" Ada\n Lovelace ".into());
        f.subject = Some("".into());
        f.website = Some("   ".into());
        let Ok(Checked::Valid(s)) = check(f) else {
            panic!("valid");
        };
        assert_eq!(s.email, "ada@example.com");
        assert_eq!(s.message, "Hello\nthere");
        assert_eq!(s.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(s.subject, None);
        assert_eq!(s.content()["form"]["email"], "ada@example.com");
    }

    #[test]
    fn the_honeypot_wins_over_everything() {
        let f = FormFields {
            website: Some("http://spam.example".into()),
            ..FormFields::default()
        };
        assert_eq!(check(f), Ok(Checked::Spam));
    }

    #[test]
    fn every_problem_is_reported() {
        let mut f = fields("not-an-email", &"x".repeat(MAX_MESSAGE_CHARS + 1));
        f.phone = Some("call me".into());
        f.client_id = Some("bad id!".into());
        f.redirect_to = Some("javascript:alert(1)".into());
        assert_eq!(
            problems(f),
            [
                ("email", "invalid_email"),
                ("phone", "invalid_phone"),
                ("message", "too_long"),
                ("client_id", "invalid_client_id"),
                ("redirect_to", "invalid_redirect"),
            ]
        );
        assert_eq!(
            problems(FormFields::default()),
            [("email", "missing_field"), ("message", "missing_field")]
        );
        // Exactly at the limit is fine (characters, not bytes).
        let at_limit = fields("a@b.co", &"é".repeat(MAX_MESSAGE_CHARS));
        assert!(matches!(check(at_limit), Ok(Checked::Valid(_))));
    }

    #[test]
    fn emails_are_checked() {
        for good in [
            "a@b.co",
            "first.last+tag@mail.example.org",
            "x@xn--p1ai.xn--p1ai",
        ] {
            assert!(normalize_email(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@b.co",
            "a@b",
            "a@b.c",
            "a..b@c.co",
            ".a@b.co",
            "a@-b.co",
            "a b@c.co",
            "a@b_c.co",
            "a@b.co.",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn phones_are_checked() {
        assert!(is_phone("+44 (20) 7946-0958"));
        assert!(!is_phone("1234"));
        assert!(!is_phone("+44 20 7946 0958 ext"));
    }

    #[test]
    fn redirects_only_go_to_listed_origins() {
        let allowed = vec!["https://Clinic.example/".to_owned(), "not a url".to_owned()];
        assert!(redirect_allowed(
            "https://clinic.example/thanks?x=1",
            &allowed
        ));
        assert!(!redirect_allowed("http://clinic.example/thanks", &allowed));
        assert!(!redirect_allowed("https://clinic.example.evil/", &allowed));
        assert!(!redirect_allowed(
            "https://clinic.example@evil.example/",
            &allowed
        ));
        assert!(!redirect_allowed("/thanks", &allowed));
        assert!(!redirect_allowed(
            "https://clinic.example/\r\nX: y",
            &allowed
        ));
        assert_eq!(
            origin_of("HTTPS://Clinic.Example:8443/a#b").as_deref(),
            Some("https://clinic.example:8443")
        );
    }
}
