//! Date parsing for `type: date` slots.
//!
//! Owns `parse_date`, which understands ISO dates, numeric day/month dates,
//! month names, "today"/"tomorrow" and weekday names relative to `today`.
//! Invariants:
//! - Pure: the result depends only on the input text and `today`.
//! - Never guesses between day-first and month-first: `3/12/2026` is an
//!   error asking the customer to disambiguate; it is read day-first only
//!   when the first number is over 12 (and month-first when the second is).
//! - A weekday name ("tuesday", "next tuesday", "this tuesday") means the
//!   first such day strictly after `today` (1–7 days ahead).
//! - A date without a year means its next occurrence on or after `today`.

use chrono::{Datelike, Days, NaiveDate, Weekday};

use super::slots::SlotError;

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Mon, "monday"),
    (Weekday::Tue, "tuesday"),
    (Weekday::Wed, "wednesday"),
    (Weekday::Thu, "thursday"),
    (Weekday::Fri, "friday"),
    (Weekday::Sat, "saturday"),
    (Weekday::Sun, "sunday"),
];

/// Words that carry no date information ("on the 3rd of May").
const FILLER: [&str; 5] = ["on", "the", "of", "this", "next"];

/// Parses a customer's date answer relative to `today`.
pub fn parse_date(input: &str, today: NaiveDate) -> Result<NaiveDate, SlotError> {
    let text = input
        .trim()
        .trim_end_matches(['.', '!', '?'])
        .to_lowercase();
    if text.is_empty() {
        return Err(SlotError::Empty);
    }
    if let Some(d) = relative(&text, today) {
        return Ok(d);
    }
    if let Some(result) = numeric(&text, today) {
        return result;
    }
    if let Some(result) = with_month_name(&text, today) {
        return result;
    }
    Err(SlotError::DateUnrecognised)
}

fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty() && !FILLER.contains(w))
        .collect()
}

fn relative(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    let w = words(text);
    match w.as_slice() {
        ["today"] | ["now"] => Some(today),
        ["tomorrow"] | ["tmrw"] | ["tmr"] => today.checked_add_days(Days::new(1)),
        ["day", "after", "tomorrow"] => today.checked_add_days(Days::new(2)),
        [day] => weekday(day).and_then(|wd| upcoming(today, wd)),
        _ => None,
    }
}

fn weekday(word: &str) -> Option<Weekday> {
    WEEKDAYS
        .iter()
        .find(|(_, name)| word.len() >= 3 && name.starts_with(word))
        .map(|(wd, _)| *wd)
}

/// The first `wd` strictly after `today`.
fn upcoming(today: NaiveDate, wd: Weekday) -> Option<NaiveDate> {
    let from = today.weekday().num_days_from_monday();
    let to = wd.num_days_from_monday();
    let ahead = (to + 7 - from) % 7;
    let ahead = if ahead == 0 { 7 } else { ahead };
    today.checked_add_days(Days::new(u64::from(ahead)))
}

/// `YYYY-MM-DD`, `D/M/YYYY`, `M/D/YY`, `D.M` and friends.
fn numeric(text: &str, today: NaiveDate) -> Option<Result<NaiveDate, SlotError>> {
    let parts: Vec<&str> = text.split(['-', '/', '.']).map(str::trim).collect();
    let all_digits = parts
        .iter()
        .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()));
    // Only the first (ISO) or last part may be a four-digit year.
    let short = |p: &str| p.len() <= 2;
    let shape_ok = match parts.as_slice() {
        [y, m, d] if y.len() == 4 => short(m) && short(d),
        [a, b, _] | [a, b] => short(a) && short(b),
        _ => false,
    };
    if !all_digits || !shape_ok {
        return None;
    }
    let nums: Vec<u32> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    Some(match (parts.as_slice(), nums.as_slice()) {
        ([y, _, _], [year, m, d]) if y.len() == 4 => ymd(*year as i32, *m, *d),
        ([_, _, y], [a, b, year]) if y.len() == 4 || y.len() == 2 => {
            day_month(*a, *b, Some(expand_year(*year)), today)
        }
        ([_, _], [a, b]) => day_month(*a, *b, None, today),
        _ => Err(SlotError::DateUnrecognised),
    })
}

fn expand_year(year: u32) -> i32 {
    let y = year as i32;
    if y < 100 {
        2000 + y
    } else {
        y
    }
}

fn ymd(year: i32, month: u32, day: u32) -> Result<NaiveDate, SlotError> {
    NaiveDate::from_ymd_opt(year, month, day).ok_or(SlotError::DateInvalid)
}

/// Resolves `a/b` as day/month or month/day, refusing to guess.
fn day_month(a: u32, b: u32, year: Option<i32>, today: NaiveDate) -> Result<NaiveDate, SlotError> {
    let (day, month) = match (a, b) {
        (a, b) if a > 12 && b <= 12 => (a, b),
        (a, b) if b > 12 && a <= 12 => (b, a),
        (a, b) if a == b => (a, b),
        (a, b) if a <= 12 && b <= 12 => return Err(ambiguous(a, b, year, today)),
        _ => return Err(SlotError::DateInvalid),
    };
    resolve(day, month, year, today)
}

fn ambiguous(a: u32, b: u32, year: Option<i32>, today: NaiveDate) -> SlotError {
    let show = |day: u32, month: u32| match resolve(day, month, year, today) {
        Ok(d) => d.format("%-d %B %Y").to_string(),
        Err(_) => format!("{day}/{month}"),
    };
    SlotError::DateAmbiguous {
        day_first: show(a, b),
        month_first: show(b, a),
    }
}

/// A day and month in `year`, or the next occurrence on/after `today`.
fn resolve(
    day: u32,
    month: u32,
    year: Option<i32>,
    today: NaiveDate,
) -> Result<NaiveDate, SlotError> {
    if let Some(y) = year {
        return ymd(y, month, day);
    }
    match ymd(today.year(), month, day) {
        Ok(d) if d >= today => Ok(d),
        _ => ymd(today.year() + 1, month, day),
    }
}

/// "3 December 2026", "Dec 3rd", "3rd of december", "tuesday 3 dec".
fn with_month_name(text: &str, today: NaiveDate) -> Option<Result<NaiveDate, SlotError>> {
    let mut month = None;
    let mut numbers = Vec::new();
    for w in words(text) {
        if let Some(m) = month_number(w) {
            if month.replace(m).is_some() {
                return None;
            }
        } else if let Some(n) = ordinal_number(w) {
            numbers.push((w.len(), n));
        } else if weekday(w).is_none() {
            return None;
        }
    }
    let month = month?;
    Some(match numbers.as_slice() {
        [(_, day)] => resolve(*day, month, None, today),
        [(4, year), (_, day)] | [(_, day), (4, year)] => ymd(*year as i32, month, *day),
        _ => Err(SlotError::DateUnrecognised),
    })
}

fn month_number(word: &str) -> Option<u32> {
    let word = if word == "sept" { "sep" } else { word };
    MONTHS
        .iter()
        .position(|m| word.len() >= 3 && m.starts_with(word))
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// "3", "3rd", "21st" → the number.
fn ordinal_number(word: &str) -> Option<u32> {
    let digits = ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|s| word.strip_suffix(s))
        .unwrap_or(word);
    if digits.is_empty() || digits.len() > 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn upcoming_is_strictly_after_today() {
        // 2026-03-03 is a Tuesday.
        let tue = d(2026, 3, 3);
        assert_eq!(upcoming(tue, Weekday::Tue), Some(d(2026, 3, 10)));
        assert_eq!(upcoming(tue, Weekday::Wed), Some(d(2026, 3, 4)));
        assert_eq!(upcoming(tue, Weekday::Mon), Some(d(2026, 3, 9)));
    }

    #[test]
    fn month_and_ordinal_words() {
        assert_eq!(month_number("dec"), Some(12));
        assert_eq!(month_number("sept"), Some(9));
        assert_eq!(month_number("ma"), None);
        assert_eq!(ordinal_number("21st"), Some(21));
        assert_eq!(ordinal_number("th"), None);
    }

    #[test]
    fn year_without_century() {
        assert_eq!(expand_year(26), 2026);
        assert_eq!(expand_year(2031), 2031);
    }
}
