//! End-to-end tests of `extract`/`resolve`, one group per rule of docs/understanding.md, plus
//! robustness (typos, noise, non-ASCII, long input) and the reference timing loop.
//!
//! Reference now: Tuesday 2026-11-24 10:00, Europe/London, unless a test says otherwise.

use super::*;
use chrono::NaiveDate;

fn ctx_at(y: i32, m: u32, d: u32, h: u32, min: u32) -> TimeContext {
    TimeContext {
        now: NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, min, 0))
            .unwrap(),
        tz: chrono_tz::Europe::London,
    }
}

fn ctx() -> TimeContext {
    ctx_at(2026, 11, 24, 10, 0)
}

/// Canonical value of `text` at the reference now.
fn c(text: &str) -> String {
    canonical_or_none(resolve(text, &ctx()).as_ref())
}

/// Canonical value of `text` with today = `y-m-d` 10:00.
fn c_on(text: &str, y: i32, m: u32, d: u32) -> String {
    canonical_or_none(resolve(text, &ctx_at(y, m, d, 10, 0)).as_ref())
}

fn check(cases: &[(&str, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(text, want)| {
            let got = c(text);
            (got != *want).then(|| format!("{text:?}: got {got}, want {want}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn canonical_forms_match_the_doc() {
    let d = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    assert_eq!(TimeValue::Date { date: d }.canonical(), "date:2026-11-26");
    assert_eq!(
        TimeValue::DateTime {
            at: d.and_time(t(15))
        }
        .canonical(),
        "datetime:2026-11-26T15:00"
    );
    assert_eq!(
        TimeValue::Interval {
            from: d.and_time(t(12)),
            to: d.and_time(t(17))
        }
        .canonical(),
        "interval:2026-11-26T12:00..2026-11-26T17:00"
    );
    assert_eq!(TimeValue::Time { at: t(15) }.canonical(), "time:15:00");
    assert_eq!(
        TimeValue::TimeRange {
            from: t(14),
            to: t(16)
        }
        .canonical(),
        "timerange:14:00..16:00"
    );
    assert_eq!(canonical_or_none(None), "none");
}

#[test]
fn doc_examples() {
    check(&[
        ("Thursday", "date:2026-11-26"),
        ("the 26th", "date:2026-11-26"),
        ("Nov 26", "date:2026-11-26"),
        ("Thursday at 3pm", "datetime:2026-11-26T15:00"),
        ("next week", "daterange:2026-11-30..2026-12-06"),
        (
            "Thursday afternoon",
            "interval:2026-11-26T12:00..2026-11-26T17:00",
        ),
        ("at 3pm", "time:15:00"),
        ("between 2 and 4", "timerange:14:00..16:00"),
        ("I'd like to book a cleaning", "none"),
        (
            "next Thursday afternoon",
            "interval:2026-11-26T12:00..2026-11-26T17:00",
        ),
        ("tomorrow at 3", "datetime:2026-11-25T15:00"),
    ]);
}

#[test]
fn relative_days() {
    check(&[
        ("today", "date:2026-11-24"),
        ("tonight", "interval:2026-11-24T17:00..2026-11-24T21:00"),
        ("tomorrow", "date:2026-11-25"),
        ("the day after tomorrow", "date:2026-11-26"),
        ("in 3 days", "date:2026-11-27"),
        ("in two weeks", "date:2026-12-08"),
        ("in a week", "date:2026-12-01"),
        ("in a couple of days", "date:2026-11-26"),
        ("in three days' time", "date:2026-11-27"),
    ]);
}

#[test]
fn weekdays() {
    check(&[
        ("Thursday", "date:2026-11-26"),
        ("on Thursday", "date:2026-11-26"),
        ("this Thursday", "date:2026-11-26"),
        ("next Thursday", "date:2026-11-26"),
        ("Tuesday", "date:2026-12-01"),
        ("next Tuesday", "date:2026-12-01"),
        ("Monday", "date:2026-11-30"),
        ("Thursday next week", "date:2026-12-03"),
        ("next week Thursday", "date:2026-12-03"),
        ("Monday next week", "date:2026-11-30"),
        ("Sunday next week", "date:2026-12-06"),
        ("last Thursday", "none"),
    ]);
    // Today Thursday: "Thursday" is a week ahead.
    assert_eq!(c_on("Thursday", 2026, 11, 26), "date:2026-12-03");
    assert_eq!(c_on("this Thursday", 2026, 11, 26), "date:2026-12-03");
    // Today Sunday: next week starts tomorrow.
    assert_eq!(c_on("Thursday next week", 2026, 11, 29), "date:2026-12-03");
    assert_eq!(c_on("Monday", 2026, 11, 29), "date:2026-11-30");
}

#[test]
fn weeks_weekends_months() {
    check(&[
        ("this week", "daterange:2026-11-24..2026-11-29"),
        ("next week", "daterange:2026-11-30..2026-12-06"),
        ("early next week", "daterange:2026-11-30..2026-12-02"),
        ("later this week", "daterange:2026-11-25..2026-11-27"),
        ("end of the week", "daterange:2026-11-25..2026-11-27"),
        ("by the end of the week", "daterange:2026-11-25..2026-11-27"),
        ("this weekend", "daterange:2026-11-28..2026-11-29"),
        ("next weekend", "daterange:2026-12-05..2026-12-06"),
        ("next month", "daterange:2026-12-01..2026-12-31"),
        ("end of the month", "date:2026-11-30"),
    ]);
}

#[test]
fn weeks_late_in_the_week() {
    // Friday 27, Saturday 28, Sunday 29 November 2026.
    assert_eq!(
        c_on("later this week", 2026, 11, 27),
        "daterange:2026-11-28..2026-11-29"
    );
    assert_eq!(
        c_on("end of the week", 2026, 11, 28),
        "daterange:2026-11-29..2026-11-29"
    );
    assert_eq!(
        c_on("end of the week", 2026, 11, 29),
        "daterange:2026-11-30..2026-12-06"
    );
    assert_eq!(
        c_on("this weekend", 2026, 11, 28),
        "daterange:2026-11-28..2026-11-29"
    );
    assert_eq!(
        c_on("this weekend", 2026, 11, 29),
        "daterange:2026-11-29..2026-11-29"
    );
    assert_eq!(
        c_on("next weekend", 2026, 11, 28),
        "daterange:2026-12-05..2026-12-06"
    );
    assert_eq!(
        c_on("next weekend", 2026, 11, 29),
        "daterange:2026-12-05..2026-12-06"
    );
    assert_eq!(
        c_on("this week", 2026, 11, 29),
        "daterange:2026-11-29..2026-11-29"
    );
    assert_eq!(
        c_on("early next week", 2026, 11, 29),
        "daterange:2026-11-30..2026-12-02"
    );
}

#[test]
fn month_ends_and_year_rollover() {
    assert_eq!(
        c_on("next month", 2026, 12, 10),
        "daterange:2027-01-01..2027-01-31"
    );
    assert_eq!(c_on("end of the month", 2028, 2, 3), "date:2028-02-29");
    assert_eq!(c_on("end of the month", 2027, 2, 3), "date:2027-02-28");
    assert_eq!(c_on("the 3rd", 2026, 12, 24), "date:2027-01-03");
    assert_eq!(c_on("Dec 1", 2026, 12, 5), "date:2027-12-01");
    assert_eq!(c_on("Jan 2", 2026, 12, 30), "date:2027-01-02");
    assert_eq!(
        c_on("next week", 2026, 12, 30),
        "daterange:2027-01-04..2027-01-10"
    );
    assert_eq!(c_on("tomorrow", 2026, 12, 31), "date:2027-01-01");
    assert_eq!(c_on("in a week", 2026, 12, 28), "date:2027-01-04");
    assert_eq!(c_on("the 31st", 2026, 11, 10), "date:2026-12-31");
    assert_eq!(c_on("Feb 29", 2026, 11, 24), "date:2028-02-29");
    assert_eq!(c_on("29th February 2028", 2026, 11, 24), "date:2028-02-29");
    assert_eq!(c_on("the 29th", 2028, 2, 10), "date:2028-02-29");
    assert_eq!(c_on("the 30th", 2027, 2, 10), "date:2027-03-30");
    assert_eq!(c_on("tomorrow", 2028, 2, 28), "date:2028-02-29");
}

#[test]
fn days_of_the_month_and_month_names() {
    check(&[
        ("the 14th", "date:2026-12-14"),
        ("on the 3rd", "date:2026-12-03"),
        ("the 24th", "date:2026-11-24"),
        ("the fourteenth", "date:2026-12-14"),
        ("March 3rd", "date:2027-03-03"),
        ("3 March", "date:2027-03-03"),
        ("3rd of March 2027", "date:2027-03-03"),
        ("Dec 1", "date:2026-12-01"),
        ("Nov 24", "date:2026-11-24"),
        ("Nov 23", "date:2027-11-23"),
        ("2026-12-03", "date:2026-12-03"),
        ("3/12", "none"),
        ("13/12", "date:2026-12-13"),
        ("12/13", "date:2026-12-13"),
        ("25/12/2026", "date:2026-12-25"),
        ("sept 5th", "date:2027-09-05"),
        ("febuary 3rd", "date:2027-02-03"),
    ]);
}

#[test]
fn times() {
    check(&[
        ("3pm", "time:15:00"),
        ("3 pm", "time:15:00"),
        ("3:30pm", "time:15:30"),
        ("15:00", "time:15:00"),
        ("at 15", "time:15:00"),
        ("noon", "time:12:00"),
        ("midday", "time:12:00"),
        ("midnight", "time:00:00"),
        ("half past two", "time:14:30"),
        ("quarter past 9", "time:09:15"),
        ("quarter to 5", "time:16:45"),
        ("at 3", "time:15:00"),
        ("around 4", "time:16:00"),
        ("at 1", "time:13:00"),
        ("at 7", "time:19:00"),
        ("at 8", "time:08:00"),
        ("at 11", "time:11:00"),
        ("at 12", "time:12:00"),
        ("at two", "time:14:00"),
        ("at 9:30", "time:09:30"),
    ]);
}

#[test]
fn parts_of_the_day() {
    check(&[
        (
            "Thursday morning",
            "interval:2026-11-26T08:00..2026-11-26T12:00",
        ),
        (
            "Thursday lunchtime",
            "interval:2026-11-26T12:00..2026-11-26T14:00",
        ),
        (
            "Thursday afternoon",
            "interval:2026-11-26T12:00..2026-11-26T17:00",
        ),
        (
            "Thursday evening",
            "interval:2026-11-26T17:00..2026-11-26T21:00",
        ),
        ("tonight", "interval:2026-11-24T17:00..2026-11-24T21:00"),
        (
            "first thing tomorrow",
            "interval:2026-11-25T08:00..2026-11-25T10:00",
        ),
        (
            "tomorrow first thing",
            "interval:2026-11-25T08:00..2026-11-25T10:00",
        ),
        ("in the morning", "timerange:08:00..12:00"),
        (
            "this afternoon",
            "interval:2026-11-24T12:00..2026-11-24T17:00",
        ),
        (
            "tomorrow night",
            "interval:2026-11-25T17:00..2026-11-25T21:00",
        ),
        ("Good morning, I'd like to book a cleaning", "none"),
    ]);
}

#[test]
fn ranges_of_times() {
    check(&[
        ("between 2 and 4", "timerange:14:00..16:00"),
        ("from 9 to 11am", "timerange:09:00..11:00"),
        ("2-4pm", "timerange:14:00..16:00"),
        ("2 to 4 pm", "timerange:14:00..16:00"),
        ("from 11 to 1pm", "timerange:11:00..13:00"),
        ("between 8 and 9pm", "timerange:20:00..21:00"),
        ("after 3pm", "timerange:15:00..21:00"),
        ("before 11", "timerange:08:00..11:00"),
        (
            "tomorrow between 2 and 4",
            "interval:2026-11-25T14:00..2026-11-25T16:00",
        ),
        (
            "tomorrow 2-4",
            "interval:2026-11-25T14:00..2026-11-25T16:00",
        ),
        (
            "Friday after 3pm",
            "interval:2026-11-27T15:00..2026-11-27T21:00",
        ),
        (
            "Friday before 11",
            "interval:2026-11-27T08:00..2026-11-27T11:00",
        ),
    ]);
}

#[test]
fn relative_times_round_down() {
    let ctx = ctx_at(2026, 11, 24, 10, 17);
    let at = |text: &str| canonical_or_none(resolve(text, &ctx).as_ref());
    assert_eq!(at("in an hour"), "datetime:2026-11-24T11:17");
    assert_eq!(at("in 2 hours"), "datetime:2026-11-24T12:17");
    assert_eq!(at("in 30 minutes"), "datetime:2026-11-24T10:47");
    let secs = TimeContext {
        now: chrono::Timelike::with_second(&ctx.now, 59).unwrap(),
        ..ctx
    };
    assert_eq!(
        canonical_or_none(resolve("in 30 minutes", &secs).as_ref()),
        "datetime:2026-11-24T10:47"
    );
}

#[test]
fn combinations() {
    check(&[
        ("3pm tomorrow", "datetime:2026-11-25T15:00"),
        ("at 3 in the afternoon", "time:15:00"),
        ("tomorrow at 7 in the morning", "datetime:2026-11-25T07:00"),
        ("tonight at 8", "datetime:2026-11-24T20:00"),
        ("Thursday afternoon at 3", "datetime:2026-11-26T15:00"),
        ("on the 3rd at 2pm", "datetime:2026-12-03T14:00"),
        ("Friday, 10:30", "datetime:2026-11-27T10:30"),
        (
            "next Thursday afternoon between 2 and 4",
            "interval:2026-11-26T14:00..2026-11-26T16:00",
        ),
        ("Thursday 26th November at 3pm", "datetime:2026-11-26T15:00"),
        ("noon tomorrow", "datetime:2026-11-25T12:00"),
        ("in 3 days at 2pm", "datetime:2026-11-27T14:00"),
    ]);
}

#[test]
fn noise_and_politeness() {
    check(&[
        (
            "I'd like to come in next Thursday afternoon",
            "interval:2026-11-26T12:00..2026-11-26T17:00",
        ),
        (
            "can I get an appointment for tomorrow at 3 please?",
            "datetime:2026-11-25T15:00",
        ),
        (
            "Hi there! Is Friday at 10am available?",
            "datetime:2026-11-27T10:00",
        ),
        ("TOMORROW 3PM!!!", "datetime:2026-11-25T15:00"),
        ("tmrw 2pm", "datetime:2026-11-25T14:00"),
        ("thrusday at 4", "datetime:2026-11-26T16:00"),
        (
            "wendsday morning",
            "interval:2026-11-25T08:00..2026-11-25T12:00",
        ),
        ("tomorow", "date:2026-11-25"),
        ("thurs 3pm", "datetime:2026-11-26T15:00"),
        ("tmr", "date:2026-11-25"),
    ]);
}

#[test]
fn unrelated_numbers_give_nothing() {
    check(&[
        ("I have 2 kids", "none"),
        ("my number is 555 1234", "none"),
        ("it was $40 last time", "none"),
        ("I'm in room 12", "none"),
        ("we are a party of 4", "none"),
        ("it takes about 2 hours", "none"),
        ("call me on 07700 900123", "none"),
        ("order #12345", "none"),
        ("I'll need 2-3 sessions", "none"),
        ("we're open 24/7", "none"),
        ("I sat in the waiting room for ages", "none"),
        ("the 3rd floor", "none"),
        ("may I book a cleaning", "none"),
        ("I called yesterday", "none"),
        ("", "none"),
    ]);
}

#[test]
fn choosing_among_mentions() {
    check(&[
        ("not Monday, Tuesday", "date:2026-12-01"),
        ("I can't do Monday but Tuesday works", "date:2026-12-01"),
        (
            "Monday doesn't work, how about Wednesday?",
            "date:2026-11-25",
        ),
        ("Thursday, actually Friday", "date:2026-11-27"),
        ("can we move it from Tuesday to Thursday", "date:2026-11-26"),
        (
            "Can I reschedule my 3pm tomorrow to Friday?",
            "date:2026-11-27",
        ),
        (
            "My appointment is at 3pm tomorrow, can I change it to next week",
            "daterange:2026-11-30..2026-12-06",
        ),
        ("Thursday works. Around 3?", "datetime:2026-11-26T15:00"),
        ("Monday to Wednesday", "daterange:2026-11-30..2026-12-02"),
    ]);
}

#[test]
fn more_phrasings() {
    check(&[
        ("Thu 3/12", "date:2026-12-03"),
        ("a week today", "date:2026-12-01"),
        ("a week from tomorrow", "date:2026-12-02"),
        ("any day except Monday", "none"),
        (
            "lunch tomorrow",
            "interval:2026-11-25T12:00..2026-11-25T14:00",
        ),
        ("do you have anything on 2nd December?", "date:2026-12-02"),
        (
            "the 3rd after 5pm",
            "interval:2026-12-03T17:00..2026-12-03T21:00",
        ),
        ("2026-12-05 14:00", "datetime:2026-12-05T14:00"),
        ("2026-12-05T14:00", "datetime:2026-12-05T14:00"),
        ("December 5 2026", "date:2026-12-05"),
        ("half 3 tomorrow", "datetime:2026-11-25T15:30"),
        ("Sat 10-12", "interval:2026-11-28T10:00..2026-11-28T12:00"),
        ("2-4", "timerange:14:00..16:00"),
        ("sat?", "date:2026-11-28"),
        ("Sat or Sun", "date:2026-11-28"),
        ("the sun is shining", "none"),
        ("I rate you 10/10", "none"),
        ("I'm at 3 of 5 sessions", "none"),
        ("from ten to two", "timerange:10:00..14:00"),
        ("ten to two", "time:13:50"),
        ("between 7 and 9", "timerange:19:00..21:00"),
        ("in about an hour", "datetime:2026-11-24T11:00"),
        ("Thursday pm", "interval:2026-11-26T12:00..2026-11-26T17:00"),
        ("I am free tomorrow", "date:2026-11-25"),
        (
            "late afternoon on Friday",
            "interval:2026-11-27T15:00..2026-11-27T17:00",
        ),
        ("in December", "daterange:2026-12-01..2026-12-31"),
        ("end of December", "date:2026-12-31"),
        ("the week after next", "daterange:2026-12-07..2026-12-13"),
        ("Friday to Monday", "daterange:2026-11-27..2026-11-30"),
    ]);
}

#[test]
fn spans_point_into_the_text() {
    let text = "Mañana 🙂 no — next Thursday afternoon, ok? 3pm";
    let found = extract(text, &ctx());
    assert_eq!(found.len(), 2);
    for m in &found {
        assert_eq!(&text[m.start..m.end], m.text);
    }
    assert_eq!(found[0].text, "next Thursday afternoon");
    assert_eq!(found[1].text, "3pm");
}

#[test]
fn extract_lists_mentions_in_order() {
    let found = extract("tomorrow or Thursday at 3", &ctx());
    let values: Vec<String> = found.iter().map(|m| m.value.canonical()).collect();
    assert_eq!(values, ["date:2026-11-25", "datetime:2026-11-26T15:00"]);
}

#[test]
fn first_date() {
    let v = resolve("Thursday afternoon", &ctx()).unwrap();
    assert_eq!(v.first_date(), NaiveDate::from_ymd_opt(2026, 11, 26));
    let v = resolve("next week", &ctx()).unwrap();
    assert_eq!(v.first_date(), NaiveDate::from_ymd_opt(2026, 11, 30));
    let v = resolve("at 3pm", &ctx()).unwrap();
    assert_eq!(v.first_date(), None);
}

#[test]
fn from_utc_uses_the_zone() {
    let utc = DateTime::parse_from_rfc3339("2026-07-01T23:30:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let ctx = TimeContext::from_utc(utc, chrono_tz::Europe::London);
    assert_eq!(ctx.today(), NaiveDate::from_ymd_opt(2026, 7, 2).unwrap());
    let ny = TimeContext::from_utc(utc, chrono_tz::America::New_York);
    assert_eq!(
        ny.now.format("%Y-%m-%dT%H:%M").to_string(),
        "2026-07-01T19:30"
    );
}

#[test]
fn never_panics_on_odd_input() {
    let long = "blah 3 ".repeat(400);
    let inputs = [
        "mañana 3pm",
        "🙂🙂🙂 tomorrow 🙂",
        "ŞİŞLİ İSTANBUL at 3",
        "\u{0}\u{1}:::///---",
        "99999999999999999999:99999",
        "at 99999999999pm on the 99999999th",
        "the 0th of 0 at 0:00",
        "in 4294967295 days",
        "in 9999 months",
        "between and",
        "from to",
        "quarter to",
        "a.m.",
        "2moro 2nite 2day",
        "'s 's ' '",
        long.as_str(),
    ];
    for text in inputs {
        for m in extract(text, &ctx()) {
            assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
        }
        let _ = resolve(text, &ctx());
    }
    assert_eq!(c("mañana 3pm"), "time:15:00");
}

/// Deterministic pseudo-random messages from a pool of words and awkward characters: no panics,
/// spans on char boundaries, mentions in order and non-overlapping.
#[test]
fn random_messages_are_handled() {
    const POOL: [&str; 40] = [
        "at",
        "3",
        "pm",
        ":",
        "30",
        "tomorrow",
        "the",
        "14th",
        "of",
        "may",
        "between",
        "and",
        "-",
        "/",
        "12",
        "2026",
        "next",
        "week",
        "thursday",
        "afternoon",
        "in",
        "2",
        "hours",
        "half",
        "past",
        "quarter",
        "to",
        "ñ",
        "🙂",
        "é",
        "'",
        ".",
        ",",
        "$",
        "noon",
        "sat",
        "early",
        "end",
        "month",
        "İ",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let ctx = ctx();
    for _ in 0..3000 {
        let mut text = String::new();
        let words = 1 + (seed % 12) as usize;
        for _ in 0..words {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push_str(POOL[(seed % POOL.len() as u64) as usize]);
            if seed % 3 != 0 {
                text.push(' ');
            }
        }
        let found = extract(&text, &ctx);
        let mut last_end = 0;
        for m in &found {
            assert!(
                text.is_char_boundary(m.start) && text.is_char_boundary(m.end),
                "{text}"
            );
            assert!(m.start >= last_end && m.start < m.end, "{text}");
            assert_eq!(&text[m.start..m.end], m.text);
            last_end = m.end;
        }
        let _ = resolve(&text, &ctx);
    }
}

#[test]
fn serde_shape() {
    // The tagged shape consumers read (agent::humanize): kind + fields.
    let v = resolve("Thursday at 3pm", &ctx()).unwrap();
    assert_eq!(
        v,
        TimeValue::DateTime {
            at: NaiveDate::from_ymd_opt(2026, 11, 26)
                .and_then(|d| d.and_hms_opt(15, 0, 0))
                .unwrap()
        }
    );
}

#[test]
fn timing_typical_and_long_messages() {
    use std::time::Instant;
    let typical = "Hi, I'd like to come in next Thursday afternoon if possible, around 3?";
    let long: String = "I have 2 kids and my number is 555 1234, it cost $40 last time. "
        .repeat(32)
        .chars()
        .take(2000)
        .collect();
    let ctx = ctx();
    let runs = 2000;
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(resolve(std::hint::black_box(typical), &ctx));
    }
    let typical_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
    let start = Instant::now();
    for _ in 0..50 {
        std::hint::black_box(resolve(std::hint::black_box(&long), &ctx));
    }
    let long_us = start.elapsed().as_secs_f64() * 1e6 / 50.0;
    eprintln!("timing: typical {typical_us:.1} µs, 2000 chars {long_us:.1} µs");
    // Generous bounds so debug builds on a loaded machine pass; release figures are far lower.
    assert!(typical_us < 2_000.0, "typical {typical_us} µs");
    assert!(long_us < 50_000.0, "long {long_us} µs");
}
