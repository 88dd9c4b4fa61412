//! Human-readable text for stored values, used by templates through the `when` filter
//! (`{{ slots.date | when }}`).
//!
//! Owns `describe_when`, which turns a stored time value (see docs/understanding.md: the object
//! with `kind` and its fields, or a plain `YYYY-MM-DD` string) into words such as
//! "Thursday 26 November, 12:00–17:00". Invariant: never fails — anything it cannot read is
//! returned as it was given.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::Value;

fn day(d: NaiveDate) -> String {
    d.format("%A %-d %B").to_string()
}

fn time(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

fn field<T: std::str::FromStr>(v: &Value, name: &str) -> Option<T> {
    v.get(name)?.as_str()?.parse().ok()
}

fn date_time(v: &Value, name: &str) -> Option<NaiveDateTime> {
    let s = v.get(name)?.as_str()?;
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
}

fn describe_object(v: &Value) -> Option<String> {
    match v.get("kind")?.as_str()? {
        "date" => Some(day(field(v, "date")?)),
        "date_time" => {
            let at = date_time(v, "at")?;
            Some(format!("{} at {}", day(at.date()), time(at.time())))
        }
        "date_range" => Some(format!(
            "{} to {}",
            day(field(v, "from")?),
            day(field(v, "to")?)
        )),
        "interval" => {
            let (from, to) = (date_time(v, "from")?, date_time(v, "to")?);
            if from.date() == to.date() {
                Some(format!(
                    "{}, {}–{}",
                    day(from.date()),
                    time(from.time()),
                    time(to.time())
                ))
            } else {
                Some(format!(
                    "{} {} to {} {}",
                    day(from.date()),
                    time(from.time()),
                    day(to.date()),
                    time(to.time())
                ))
            }
        }
        "time" => Some(format!("at {}", time(field(v, "at")?))),
        "time_range" => Some(format!(
            "between {} and {}",
            time(field(v, "from")?),
            time(field(v, "to")?)
        )),
        _ => None,
    }
}

/// Words for a stored time value; the value's own text when it cannot be read.
pub fn describe_when(v: &Value) -> String {
    if let Some(text) = describe_object(v) {
        return text;
    }
    match v {
        Value::String(s) => s
            .parse::<NaiveDate>()
            .map(day)
            .unwrap_or_else(|_| s.clone()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_reads_well() {
        assert_eq!(
            describe_when(&json!({"kind": "date", "date": "2026-11-26"})),
            "Thursday 26 November"
        );
        assert_eq!(
            describe_when(
                &json!({"kind": "interval", "from": "2026-11-26T12:00:00", "to": "2026-11-26T17:00:00"})
            ),
            "Thursday 26 November, 12:00–17:00"
        );
        assert_eq!(
            describe_when(&json!({"kind": "date_time", "at": "2026-11-25T15:00:00"})),
            "Wednesday 25 November at 15:00"
        );
        assert_eq!(describe_when(&json!("2026-11-26")), "Thursday 26 November");
        assert_eq!(describe_when(&json!("whenever")), "whenever");
        assert_eq!(describe_when(&json!({"kind": "odd"})), "{\"kind\":\"odd\"}");
    }
}
