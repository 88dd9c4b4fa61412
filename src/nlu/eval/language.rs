//! The language identification part of `switchboard nlu eval`: held-out messages
//! (`language.tsv`: expected ISO 639-1 code or `und`, text) scored against
//! [`crate::nlu::language`].
//!
//! Owns the report and its text form. Invariants: every row counts (an expected code the
//! identifier does not know is a file error, not a skipped row); a row expecting `und` is right
//! only when no language is given; "wrong confident" counts every row answered with a language
//! other than the expected one, including `und` rows.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::{pct, read_tsv, EvalError, Miss};
use crate::nlu::language::{self, Rejection, Verdict, UNDETERMINED};

/// Results for the rows expecting one code.
#[derive(Debug, Clone, Serialize)]
pub struct LanguageRow {
    /// The expected code (`und` for rows expecting no language).
    pub code: String,
    /// Rows.
    pub total: usize,
    /// Rows answered right.
    pub correct: usize,
    /// Rows given no language (right for `und`).
    pub rejected: usize,
    /// Rows given another language.
    pub wrong: usize,
}

/// Language identification results.
#[derive(Debug, Clone, Serialize)]
pub struct LanguageReport {
    /// Rows evaluated.
    pub total: usize,
    /// Rows answered right.
    pub correct: usize,
    /// Rows expecting a language.
    pub language_rows: usize,
    /// Rows expecting a language that got none.
    pub rejected: usize,
    /// Rows (any) answered with a language other than the expected one.
    pub wrong_confident: usize,
    /// Rows expecting `und`.
    pub und_rows: usize,
    /// Rows expecting `und` that were given a language.
    pub und_answered: usize,
    /// Per expected code, in file order of first appearance.
    pub languages: Vec<LanguageRow>,
    /// Mean time per message, microseconds.
    pub mean_micros: f64,
    /// Every miss.
    pub misses: Vec<Miss>,
}

impl LanguageReport {
    /// Share of rows answered right, percent.
    pub fn accuracy(&self) -> f64 {
        pct(self.correct, self.total)
    }
}

/// What a verdict says, as written in reports: a code, or `und (why)`.
fn describe(v: &Verdict) -> String {
    match v {
        Verdict::Identified(l) => format!("{} ({:.2})", l.code, l.confidence),
        Verdict::Rejected(r) => match r {
            Rejection::TooShort => "und (too short)".into(),
            Rejection::OtherScript => "und (other script)".into(),
            Rejection::Unknown => "und (no known n-gram)".into(),
            Rejection::Unsure { best, confidence } => {
                format!("und (unsure: {best} {confidence:.2})")
            }
            Rejection::Mixed { first, second } => format!("und (mixed {first}+{second})"),
        },
    }
}

/// Scores the identifier on `language.tsv`.
pub fn eval_language(path: &Path) -> Result<LanguageReport, EvalError> {
    let known =
        |code: &str| code == UNDETERMINED || language::CORPORA.iter().any(|(c, _)| *c == code);
    let mut r = LanguageReport {
        total: 0,
        correct: 0,
        language_rows: 0,
        rejected: 0,
        wrong_confident: 0,
        und_rows: 0,
        und_answered: 0,
        languages: Vec::new(),
        mean_micros: 0.0,
        misses: Vec::new(),
    };
    language::warm_up();
    let mut spent = 0.0;
    for (line, cells) in read_tsv(path, 2)? {
        let (expected, text) = (cells[0].trim(), &cells[1]);
        if !known(expected) {
            return Err(EvalError::Row {
                path: path.to_path_buf(),
                line,
                message: format!("unknown language code {expected:?}"),
            });
        }
        let started = Instant::now();
        let verdict = language::read(text);
        spent += started.elapsed().as_secs_f64();
        let got = verdict.language().map_or(UNDETERMINED, |l| l.code);
        record(&mut r, expected, got);
        if got != expected {
            r.misses.push(Miss {
                text: text.clone(),
                expected: expected.to_string(),
                got: describe(&verdict),
            });
        }
    }
    r.mean_micros = spent * 1e6 / r.total.max(1) as f64;
    Ok(r)
}

fn record(r: &mut LanguageReport, expected: &str, got: &str) {
    let index = match r.languages.iter().position(|l| l.code == expected) {
        Some(i) => i,
        None => {
            r.languages.push(LanguageRow {
                code: expected.to_string(),
                total: 0,
                correct: 0,
                rejected: 0,
                wrong: 0,
            });
            r.languages.len() - 1
        }
    };
    let row = &mut r.languages[index];
    let (right, rejected) = (got == expected, got == UNDETERMINED);
    row.total += 1;
    row.correct += usize::from(right);
    row.rejected += usize::from(rejected);
    row.wrong += usize::from(!right && !rejected);
    r.total += 1;
    r.correct += usize::from(right);
    r.wrong_confident += usize::from(!right && !rejected);
    if expected == UNDETERMINED {
        r.und_rows += 1;
        r.und_answered += usize::from(!rejected);
    } else {
        r.language_rows += 1;
        r.rejected += usize::from(rejected);
    }
}

/// The language report as text.
pub fn format_language(r: &LanguageReport, misses: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "language: {}/{} right = {:.1}%; rows in a language rejected {:.1}% ({}/{}); wrong confident {:.1}% of all rows ({}/{}), `und` rows given a language {}/{}; {:.1} µs each",
        r.correct,
        r.total,
        r.accuracy(),
        pct(r.rejected, r.language_rows),
        r.rejected,
        r.language_rows,
        pct(r.wrong_confident, r.total),
        r.wrong_confident,
        r.total,
        r.und_answered,
        r.und_rows,
        r.mean_micros
    );
    for l in &r.languages {
        let _ = writeln!(
            out,
            "  {:<4} {:>3} rows: right {:5.1}%, rejected {:5.1}%, wrong {:5.1}%",
            l.code,
            l.total,
            pct(l.correct, l.total),
            pct(l.rejected, l.total),
            pct(l.wrong, l.total)
        );
    }
    if misses {
        for m in &r.misses {
            let _ = writeln!(
                out,
                "  miss: {:?} expected {} got {}",
                m.text, m.expected, m.got
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A TSV file under the system temp directory, removed on drop.
    struct TempTsv(PathBuf);

    impl TempTsv {
        fn new(name: &str, rows: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("switchboard-{name}-{}.tsv", std::process::id()));
            std::fs::write(&path, format!("expected\ttext\n{rows}")).unwrap();
            TempTsv(path)
        }
    }

    impl Drop for TempTsv {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn rows_are_scored_right_rejected_or_wrong() {
        let file = TempTsv::new(
            "language-scored",
            "de\tKönnten Sie mir bitte einen Termin für nächste Woche geben?\n\
             fr\tKönnten Sie mir bitte einen Termin für nächste Woche geben?\n\
             es\tok\n\
             und\t👍\n\
             und\tWould you have a table for two on Friday evening?\n",
        );
        let r = eval_language(&file.0).unwrap();
        assert_eq!((r.total, r.correct), (5, 2));
        assert_eq!((r.language_rows, r.rejected), (3, 1));
        assert_eq!(
            r.wrong_confident, 2,
            "the French row and the English `und` row"
        );
        assert_eq!((r.und_rows, r.und_answered), (2, 1));
        let codes: Vec<&str> = r.languages.iter().map(|l| l.code.as_str()).collect();
        assert_eq!(codes, ["de", "fr", "es", "und"]);
        assert_eq!(r.misses.len(), 3);
        assert!(r.misses[0].got.starts_with("de ("), "{:?}", r.misses[0]);
        let text = format_language(&r, true);
        assert!(text.starts_with("language: 2/5 right = 40.0%"), "{text}");
        assert!(
            text.contains("miss: \"ok\" expected es got und (too short)"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_code_is_a_file_error() {
        let file = TempTsv::new(
            "language-unknown",
            "en\thello there friend\nxx\tsomething\n",
        );
        let err = eval_language(&file.0).unwrap_err().to_string();
        assert!(err.ends_with(":3: unknown language code \"xx\""), "{err}");
    }

    #[test]
    fn the_language_bar_decides_the_run() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nlu");
        let options = |min_language| crate::nlu::eval::EvalOptions {
            data: data.clone(),
            sets: vec!["dental".into()],
            misses: false,
            json: true,
            embeddings_dir: None,
            min_datetime: None,
            min_intent: None,
            min_language,
            dump_embeddings: None,
            cv_folds: None,
        };
        assert!(crate::nlu::eval::run(&options(Some(50.0))).unwrap());
        assert!(!crate::nlu::eval::run(&options(Some(100.1))).unwrap());
    }
}
