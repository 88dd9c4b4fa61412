//! The date/time vocabulary: canonical spellings, abbreviations, common typos and number words.
//!
//! Owns `canonical` (a lowercase word → its canonical spelling), the number-word tables and
//! the word classes the matchers ask about. Invariants: pure lookups; a canonical spelling is
//! always a `'static` entry of these tables; fuzzy matching only corrects long, distinctive
//! words (weekday and month names, "tomorrow", parts of the day), never short everyday words,
//! and keeps the first letter, so it cannot turn "remember" into "december".

/// Canonical weekday names, Monday first (index = days from Monday).
pub(super) const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Canonical month names, January first (index + 1 = month number).
pub(super) const MONTHS: [&str; 12] = [
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

/// Words fuzzy matching may produce, with the edit distance each tolerates.
const FUZZY: [(&str, usize); 23] = [
    ("monday", 1),
    ("tuesday", 1),
    ("wednesday", 2),
    ("thursday", 2),
    ("friday", 1),
    ("saturday", 2),
    ("sunday", 1),
    ("january", 1),
    ("february", 1),
    ("april", 1),
    ("august", 1),
    ("september", 1),
    ("october", 1),
    ("november", 1),
    ("december", 1),
    ("tomorrow", 2),
    ("tonight", 1),
    ("morning", 1),
    ("afternoon", 2),
    ("evening", 1),
    ("midnight", 1),
    ("lunchtime", 2),
    ("weekend", 1),
];

/// Canonical spelling of a lowercase word, and whether that reading is weak (an abbreviation
/// that is also an everyday word: "sat", "sun", "wed", "mon", "may", "march", "mar").
pub(super) fn canonical(word: &str) -> Option<(&'static str, bool)> {
    if let Some(hit) = weak(word) {
        return Some((hit, true));
    }
    if let Some(hit) = calendar_word(word).or_else(|| day_word(word)) {
        return Some((hit, false));
    }
    if let Some(hit) = function_word(word) {
        return Some((hit, false));
    }
    fuzzy(word).map(|hit| (hit, false))
}

fn weak(word: &str) -> Option<&'static str> {
    Some(match word {
        "mon" => "monday",
        "wed" => "wednesday",
        "sat" => "saturday",
        "sun" => "sunday",
        "may" => "may",
        "march" | "mar" => "march",
        _ => return None,
    })
}

/// Weekday and month names, their abbreviations, plurals and frequent misspellings.
fn calendar_word(word: &str) -> Option<&'static str> {
    Some(match word {
        "monday" | "mondays" | "mondy" | "munday" => "monday",
        "tuesday" | "tuesdays" | "tue" | "tues" | "tu" | "tuseday" | "tusday" | "teusday" => {
            "tuesday"
        }
        "wednesday" | "wednesdays" | "weds" | "wensday" | "wendsday" | "wednsday" | "wedensday"
        | "wednesay" | "wedsday" => "wednesday",
        "thursday" | "thursdays" | "thu" | "thur" | "thurs" | "thr" | "thrusday" | "thursay"
        | "thurday" | "thurdsay" => "thursday",
        "friday" | "fridays" | "fri" | "fryday" | "fridy" => "friday",
        "saturday" | "saturdays" | "satuday" | "saterday" | "satruday" => "saturday",
        "sunday" | "sundays" | "sundy" => "sunday",
        "january" | "jan" | "janurary" | "januray" => "january",
        "february" | "feb" | "febuary" | "feburary" | "febrary" => "february",
        "april" | "apr" => "april",
        "june" | "jun" => "june",
        "july" | "jul" => "july",
        "august" | "aug" => "august",
        "september" | "sep" | "sept" | "septmber" => "september",
        "october" | "oct" => "october",
        "november" | "nov" => "november",
        "december" | "dec" | "decemeber" => "december",
        _ => return None,
    })
}

/// Relative days, parts of the day, units and clock words.
fn day_word(word: &str) -> Option<&'static str> {
    Some(match word {
        "today" | "tday" | "todays" => "today",
        "tomorrow" | "tmrw" | "tmr" | "tmrow" | "tmw" | "tomoz" | "tomorow" | "tommorow"
        | "tommorrow" | "tomorrw" | "tomorro" | "tmro" => "tomorrow",
        "tonight" | "tonite" | "tonigt" | "tonights" => "tonight",
        "yesterday" => "yesterday",
        "morning" | "mornings" | "mornin" | "morn" => "morning",
        "afternoon" | "afternoons" | "arvo" | "afternon" | "aftn" | "aft" => "afternoon",
        "evening" | "evenings" | "evenin" | "evning" | "eveing" => "evening",
        "night" | "nite" => "night",
        "lunchtime" | "lunchtimes" => "lunchtime",
        "lunch" => "lunch",
        "noon" => "noon",
        "midday" => "midday",
        "midnight" | "midnite" => "midnight",
        "minute" | "minutes" | "min" | "mins" => "minute",
        "hour" | "hours" | "hr" | "hrs" => "hour",
        "day" | "days" => "day",
        "week" | "weeks" | "wk" | "wks" => "week",
        "weekend" | "weekends" | "wknd" | "wkend" => "weekend",
        "fortnight" | "fortnights" => "fortnight",
        "month" | "months" => "month",
        "year" | "years" => "year",
        "o'clock" | "oclock" => "o'clock",
        "am" => "am",
        "pm" => "pm",
        _ => return None,
    })
}

/// Function words the matchers look for (kept as themselves; a few spellings folded).
fn function_word(word: &str) -> Option<&'static str> {
    Some(match word {
        "next" | "nxt" => "next",
        "until" | "till" | "til" | "'til" | "untill" | "untl" => "until",
        "through" | "thru" => "through",
        "approximately" | "approx" | "roughly" | "circa" => "about",
        "anytime" => "anytime",
        "onwards" | "onward" => "onwards",
        _ => return None,
    })
}

/// Closest fuzzy target within its tolerated distance (same first letter, ASCII only).
fn fuzzy(word: &str) -> Option<&'static str> {
    const EVERYDAY: [&str; 4] = ["sundae", "sundry", "mourning", "fridge"];
    if word.len() < 5 || word.len() > 16 || !word.is_ascii() || EVERYDAY.contains(&word) {
        return None;
    }
    let first = word.as_bytes()[0];
    FUZZY
        .iter()
        .filter(|(target, max)| {
            target.as_bytes()[0] == first && target.len().abs_diff(word.len()) <= *max
        })
        .find(|(target, max)| distance(word.as_bytes(), target.as_bytes()) <= *max)
        .map(|(target, _)| *target)
}

/// Optimal-string-alignment distance (insertions, deletions, substitutions, adjacent swaps)
/// between two byte strings of at most 16 bytes.
fn distance(a: &[u8], b: &[u8]) -> usize {
    const W: usize = 17;
    let mut d = [[0usize; W]; W];
    let (n, m) = (a.len().min(W - 1), b.len().min(W - 1));
    for (i, row) in d.iter_mut().enumerate().take(n + 1) {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate().take(m + 1) {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m]
}

/// Weekday index (0 = Monday) of a canonical word.
pub(super) fn weekday_index(word: &str) -> Option<usize> {
    WEEKDAYS.iter().position(|w| *w == word)
}

/// Month number (1–12) of a canonical word.
pub(super) fn month_number(word: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| *m == word)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// Value of a number word from zero to nineteen.
pub(super) fn unit_number(word: &str) -> Option<u32> {
    crate::agent::slots::NUMBER_WORDS[..20]
        .iter()
        .position(|u| *u == word)
        .and_then(|i| u32::try_from(i).ok())
}

/// Value of a tens word (twenty … fifty).
pub(super) fn tens_number(word: &str) -> Option<u32> {
    Some(match word {
        "twenty" => 20,
        "thirty" => 30,
        "forty" | "fourty" => 40,
        "fifty" => 50,
        _ => return None,
    })
}

/// Value of an ordinal word (first … nineteenth, twentieth, thirtieth).
pub(super) fn ordinal_word(word: &str) -> Option<u32> {
    const ORDINALS: [&str; 20] = [
        "",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
    ];
    match word {
        "" => None,
        "twentieth" => Some(20),
        "thirtieth" => Some(30),
        "twelth" => Some(12),
        "fourtenth" => Some(14),
        _ => ORDINALS
            .iter()
            .position(|o| *o == word)
            .and_then(|i| u32::try_from(i).ok()),
    }
}

/// Whether a word names a day, a part of the day or a clock reading: a word after a number
/// that still leaves the number free to be a time or a day ("at 3 tomorrow", "the 3rd at 2").
pub(super) fn is_temporal(word: &str) -> bool {
    weekday_index(word).is_some()
        || month_number(word).is_some()
        || matches!(
            word,
            "today"
                | "tomorrow"
                | "tonight"
                | "morning"
                | "afternoon"
                | "evening"
                | "night"
                | "lunchtime"
                | "lunch"
                | "noon"
                | "midday"
                | "midnight"
                | "o'clock"
                | "am"
                | "pm"
                | "next"
                | "this"
                | "weekend"
                | "first"
                | "until"
                | "onwards"
                | "anytime"
                | "about"
        )
}

/// Words that may follow a bare number read as an hour or a day ("at 3 please", "the 3rd
/// if possible"); anything else ("about 2 hours", "the 3rd floor") blocks that reading.
pub(super) fn is_connector(word: &str) -> bool {
    matches!(
        word,
        "at" | "in"
            | "on"
            | "or"
            | "and"
            | "ish"
            | "please"
            | "pls"
            | "plz"
            | "then"
            | "if"
            | "is"
            | "was"
            | "would"
            | "could"
            | "should"
            | "will"
            | "works"
            | "work"
            | "suits"
            | "suit"
            | "good"
            | "fine"
            | "ok"
            | "okay"
            | "great"
            | "perfect"
            | "maybe"
            | "instead"
            | "thanks"
            | "thank"
            | "thx"
            | "too"
            | "either"
            | "so"
            | "but"
            | "with"
            | "as"
            | "for"
            | "to"
            | "from"
            | "between"
            | "after"
            | "before"
            | "by"
            | "around"
            | "sharp"
            | "latest"
            | "earliest"
            | "possible"
            | "preferably"
            | "ideally"
            | "any"
            | "also"
            | "again"
            | "still"
            | "yes"
            | "yeah"
            | "i"
            | "i'm"
            | "i'd"
            | "i'll"
            | "we"
            | "we'd"
            | "that"
            | "that's"
            | "it"
            | "it's"
            | "sometime"
            | "be"
            | "are"
            | "the"
            | "of"
            | "a"
            | "all"
            | "right"
            | "alright"
            | "cheers"
            | "best"
            | "better"
            | "ideal"
            | "available"
            | "free"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_abbreviations_fold() {
        assert_eq!(canonical("thrusday"), Some(("thursday", false)));
        assert_eq!(canonical("wendsday"), Some(("wednesday", false)));
        assert_eq!(canonical("wednsday"), Some(("wednesday", false)));
        assert_eq!(canonical("tomorow"), Some(("tomorrow", false)));
        assert_eq!(canonical("tommorrow"), Some(("tomorrow", false)));
        assert_eq!(canonical("febuary"), Some(("february", false)));
        assert_eq!(canonical("thurs"), Some(("thursday", false)));
        assert_eq!(canonical("tmrw"), Some(("tomorrow", false)));
        assert_eq!(canonical("sept"), Some(("september", false)));
        assert_eq!(canonical("satruday"), Some(("saturday", false)));
        assert_eq!(canonical("thursdya"), Some(("thursday", false)));
        assert_eq!(canonical("afternooon"), Some(("afternoon", false)));
    }

    #[test]
    fn weak_readings_are_flagged() {
        assert_eq!(canonical("sat"), Some(("saturday", true)));
        assert_eq!(canonical("may"), Some(("may", true)));
        assert_eq!(canonical("sun"), Some(("sunday", true)));
    }

    #[test]
    fn everyday_words_are_not_corrected() {
        for w in [
            "remember", "monkey", "money", "opening", "warning", "thirsty", "member", "sundae",
            "thanks", "match", "fried", "saturn", "evenly",
        ] {
            assert_eq!(canonical(w), None, "{w}");
        }
    }

    #[test]
    fn number_words() {
        assert_eq!(unit_number("fourteen"), Some(14));
        assert_eq!(unit_number("zero"), Some(0));
        assert_eq!(tens_number("fourty"), Some(40));
        assert_eq!(ordinal_word("fourteenth"), Some(14));
        assert_eq!(ordinal_word("third"), Some(3));
        assert_eq!(ordinal_word("thirtieth"), Some(30));
        assert_eq!(ordinal_word(""), None);
        assert_eq!(month_number("may"), Some(5));
        assert_eq!(weekday_index("sunday"), Some(6));
    }

    #[test]
    fn distance_counts_swaps_once() {
        assert_eq!(distance(b"thrusday", b"thursday"), 1);
        assert_eq!(distance(b"abc", b"abc"), 0);
        assert_eq!(distance(b"", b"abc"), 3);
    }
}
