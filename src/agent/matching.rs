//! Matching a customer's free text to the options of a `choice` state.
//!
//! Owns `match_option` and the text normalisation it relies on. Tiers are
//! tried in order and the first tier that decides wins:
//! 1. exact id, label or synonym (case and punctuation insensitive);
//! 2. a position: "2", "#2", "option 2", "the second one", "last";
//! 3. an option's label, synonym or id appearing inside the text;
//! 4. the text being a prefix of a label or synonym ("talk to");
//! 5. shared significant words ("I have a question about fees");
//! 6. close spelling (normalised Damerau-Levenshtein over whole strings and
//!    single words).
//!
//! Invariant: a tier that finds two or more different options is ambiguous
//! and the result is `None`; the engine then asks again rather than guess.

use std::collections::BTreeSet;

use strsim::normalized_damerau_levenshtein as similarity;

use super::flow::ChoiceOption;

/// Minimum similarity of the whole text to a whole label/synonym/id.
const PHRASE_MIN: f64 = 0.75;
/// Minimum similarity of one word to one significant option word.
const WORD_MIN: f64 = 0.8;
/// Shortest word that takes part in word-level spelling matches.
const WORD_MIN_LEN: usize = 4;
/// Two fuzzy scores closer than this are a tie.
const TIE_MARGIN: f64 = 0.05;

/// Words ignored when comparing significant words.
const STOPWORDS: [&str; 34] = [
    "a", "an", "the", "to", "of", "for", "and", "or", "my", "me", "i", "im", "id", "with", "about",
    "in", "on", "at", "is", "it", "please", "want", "like", "would", "need", "can", "you", "your",
    "do", "some", "this", "that", "just", "have",
];

/// Words ignored around a number ("I'd like option 2 please").
const NUMBER_FILLER: [&str; 24] = [
    "the", "option", "options", "number", "no", "nr", "num", "choice", "item", "please", "pls",
    "i", "id", "ill", "want", "would", "like", "to", "pick", "choose", "select", "take", "go",
    "lets",
];

const ORDINALS: [&str; 10] = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
];

const CARDINALS: [&str; 10] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
];

/// Picks the option the customer meant, or `None` when nothing fits well
/// enough or two options fit equally well.
pub fn match_option<'a>(input: &str, options: &'a [ChoiceOption]) -> Option<&'a ChoiceOption> {
    match_index(input, options).and_then(|i| options.get(i))
}

/// Like `match_option` but gives the option's position.
pub fn match_index(input: &str, options: &[ChoiceOption]) -> Option<usize> {
    let text = normalize(input);
    if text.is_empty() || options.is_empty() {
        return None;
    }
    let views: Vec<OptionView> = options.iter().map(OptionView::new).collect();
    let tiers: [fn(&str, &[OptionView]) -> Tier; 6] =
        [exact, by_number, contained, prefix, keywords, fuzzy];
    for tier in tiers {
        match tier(&text, &views) {
            Tier::Hit(i) => return Some(i),
            Tier::Ambiguous => return None,
            Tier::Miss => {}
        }
    }
    None
}

/// Lowercases, drops apostrophes, turns other punctuation into spaces and
/// collapses whitespace: `"Talk to a Person!"` → `"talk to a person"`.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !matches!(c, '\'' | '’')) {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
    }
    out.trim_end().to_string()
}

enum Tier {
    Hit(usize),
    Ambiguous,
    Miss,
}

/// Decides a tier from the indices of the options it found.
fn decide(hits: impl IntoIterator<Item = usize>) -> Tier {
    let set: BTreeSet<usize> = hits.into_iter().collect();
    let mut it = set.iter();
    match (it.next(), it.next()) {
        (None, _) => Tier::Miss,
        (Some(i), None) => Tier::Hit(*i),
        _ => Tier::Ambiguous,
    }
}

/// An option with every comparable form precomputed and normalised.
struct OptionView {
    /// Id, label and synonyms, normalised.
    phrases: Vec<String>,
    /// Significant words of the phrases.
    keywords: Vec<String>,
}

impl OptionView {
    fn new(opt: &ChoiceOption) -> Self {
        let mut phrases = vec![normalize(&opt.id), normalize(&opt.label)];
        phrases.extend(opt.synonyms.iter().map(|s| normalize(s)));
        phrases.retain(|p| !p.is_empty());
        let mut keywords: Vec<String> = Vec::new();
        for word in phrases.iter().flat_map(|p| p.split(' ')) {
            if !STOPWORDS.contains(&word) && word.len() >= 3 && !keywords.iter().any(|k| k == word)
            {
                keywords.push(word.to_string());
            }
        }
        OptionView { phrases, keywords }
    }
}

fn exact(text: &str, views: &[OptionView]) -> Tier {
    decide(
        views
            .iter()
            .enumerate()
            .filter(|(_, v)| v.phrases.iter().any(|p| p == text))
            .map(|(i, _)| i),
    )
}

fn by_number(text: &str, views: &[OptionView]) -> Tier {
    let mut words: Vec<&str> = text
        .split(' ')
        .filter(|w| !NUMBER_FILLER.contains(w))
        .collect();
    if words.len() == 2 && words[1] == "one" && ORDINALS.contains(&words[0]) {
        words.pop();
    }
    let position = match words.as_slice() {
        [w] => position_word(w, views.len()),
        _ => None,
    };
    match position {
        Some(n) if (1..=views.len()).contains(&n) => Tier::Hit(n - 1),
        _ => Tier::Miss,
    }
}

/// "2", "2nd", "second", "two", "last" → 1-based position.
fn position_word(word: &str, count: usize) -> Option<usize> {
    if word == "last" {
        return Some(count);
    }
    let digits = ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|s| word.strip_suffix(s))
        .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or(word);
    if let Ok(n) = digits.parse::<usize>() {
        return Some(n);
    }
    let named = |list: &[&str]| list.iter().position(|w| *w == word).map(|i| i + 1);
    named(&ORDINALS).or_else(|| named(&CARDINALS))
}

/// Whether `needle`'s words appear consecutively in `hay`'s words.
fn contains_words(hay: &str, needle: &str) -> bool {
    let hay: Vec<&str> = hay.split(' ').collect();
    let needle: Vec<&str> = needle.split(' ').collect();
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_slice())
}

fn contained(text: &str, views: &[OptionView]) -> Tier {
    decide(
        views
            .iter()
            .enumerate()
            .filter(|(_, v)| v.phrases.iter().any(|p| contains_words(text, p)))
            .map(|(i, _)| i),
    )
}

/// The text's words start the phrase; its last word may be cut short.
fn is_word_prefix(text: &str, phrase: &str) -> bool {
    let t: Vec<&str> = text.split(' ').collect();
    let p: Vec<&str> = phrase.split(' ').collect();
    let Some((last, init)) = t.split_last() else {
        return false;
    };
    t.len() <= p.len()
        && init.iter().zip(&p).all(|(a, b)| a == b)
        && p[init.len()].starts_with(last)
}

fn prefix(text: &str, views: &[OptionView]) -> Tier {
    if text.chars().count() < 3 {
        return Tier::Miss;
    }
    decide(
        views
            .iter()
            .enumerate()
            .filter(|(_, v)| v.phrases.iter().any(|p| is_word_prefix(text, p)))
            .map(|(i, _)| i),
    )
}

fn keywords(text: &str, views: &[OptionView]) -> Tier {
    let words: Vec<&str> = text.split(' ').collect();
    let scores: Vec<f64> = views
        .iter()
        .map(|v| {
            v.keywords
                .iter()
                .filter(|k| words.contains(&k.as_str()))
                .count() as f64
        })
        .collect();
    match best_of(&scores, 1.0) {
        // A tie on exact words may still be broken by spelling below.
        Tier::Ambiguous => Tier::Miss,
        decided => decided,
    }
}

fn fuzzy(text: &str, views: &[OptionView]) -> Tier {
    let scores: Vec<f64> = views.iter().map(|v| fuzzy_score(text, v)).collect();
    best_of(&scores, PHRASE_MIN.min(WORD_MIN))
}

/// The better of: the text's similarity to a whole phrase of the option,
/// and the summed similarity of the text's words to the option's keywords
/// (each word counts once, only when close enough).
fn fuzzy_score(text: &str, view: &OptionView) -> f64 {
    let phrase = view
        .phrases
        .iter()
        .map(|p| similarity(text, p))
        .filter(|s| *s >= PHRASE_MIN)
        .fold(0.0, f64::max);
    let words: f64 = text
        .split(' ')
        .filter(|w| w.chars().count() >= WORD_MIN_LEN)
        .map(|w| best_word_similarity(w, &view.keywords))
        .sum();
    phrase.max(words)
}

fn best_word_similarity(word: &str, keywords: &[String]) -> f64 {
    keywords
        .iter()
        .map(|k| similarity(word, k))
        .filter(|s| *s >= WORD_MIN)
        .fold(0.0, f64::max)
}

/// The index of the single best score at or above `min`, else miss/tie.
fn best_of(scores: &[f64], min: f64) -> Tier {
    let Some((best, top)) = scores
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
    else {
        return Tier::Miss;
    };
    if top < min {
        return Tier::Miss;
    }
    let tied = scores
        .iter()
        .enumerate()
        .any(|(i, s)| i != best && *s >= min && top - *s < TIE_MARGIN);
    if tied {
        Tier::Ambiguous
    } else {
        Tier::Hit(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_punctuation() {
        assert_eq!(normalize("  Talk to a Person!! "), "talk to a person");
        assert_eq!(normalize("I'd like #2."), "id like 2");
        assert_eq!(normalize("?!"), "");
    }

    #[test]
    fn positions() {
        assert_eq!(position_word("2nd", 3), Some(2));
        assert_eq!(position_word("third", 3), Some(3));
        assert_eq!(position_word("two", 3), Some(2));
        assert_eq!(position_word("last", 3), Some(3));
        assert_eq!(position_word("nd", 3), None);
    }

    #[test]
    fn word_prefix() {
        assert!(is_word_prefix("talk to", "talk to a person"));
        assert!(is_word_prefix("book an app", "book an appointment"));
        assert!(!is_word_prefix("book a", "talk to a person"));
        assert!(!is_word_prefix("talk to a person now", "talk to a person"));
    }
}
