//! The accuracy evaluation behind `switchboard nlu eval`: held-out date/time expressions,
//! held-out intent utterances and held-out messages for language identification
//! (tests/data/nlu/), scored against the embedded engine.
//!
//! Owns reading the evaluation files, running them, and the report. Invariants: the held-out
//! `test.tsv` rows are never used for training (only each set's `train.tsv`); rows that cannot
//! be read are reported as file errors with their line, never skipped silently; the report is
//! deterministic for the n-gram engine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDateTime;
use serde::Serialize;

use super::datetime::{resolve, TimeContext};
use super::intent::{Classification, IntentModel, TrainOptions};

pub mod language;

pub use language::{eval_language, format_language, LanguageReport};

/// Label of out-of-scope rows in intent test files.
pub const OUT_OF_SCOPE: &str = "oos";

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A row is malformed.
    #[error("{path}:{line}: {message}")]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A model could not be trained.
    #[error("{0}")]
    Train(String),
}

/// One expression the engine got wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    /// The text.
    pub text: String,
    /// The expected value (canonical or intent).
    pub expected: String,
    /// What the engine said.
    pub got: String,
}

/// Date/time results.
#[derive(Debug, Clone, Serialize)]
pub struct DateTimeReport {
    /// Rows evaluated.
    pub total: usize,
    /// Rows resolved exactly.
    pub correct: usize,
    /// Rows expecting a value that got exactly it.
    pub with_value_correct: usize,
    /// Rows expecting a value.
    pub with_value: usize,
    /// Rows expecting `none` that got none.
    pub none_correct: usize,
    /// Rows expecting `none`.
    pub none_total: usize,
    /// Mean time per expression, microseconds.
    pub mean_micros: f64,
    /// Every miss.
    pub misses: Vec<Miss>,
}

/// Results of one intent set.
#[derive(Debug, Clone, Serialize)]
pub struct IntentReport {
    /// Set name (directory).
    pub set: String,
    /// Which model: `ngram`, `embeddings` or `fused`.
    pub model: String,
    /// Intents in the training file.
    pub intents: usize,
    /// Training examples.
    pub train_examples: usize,
    /// In-scope test rows.
    pub in_scope: usize,
    /// In-scope rows whose top intent (ignoring the threshold) was right.
    pub top1_correct: usize,
    /// In-scope rows classified right and in scope (above the threshold).
    pub accepted_correct: usize,
    /// Out-of-scope test rows.
    pub oos_total: usize,
    /// Out-of-scope rows detected as such.
    pub oos_detected: usize,
    /// In-scope rows wrongly rejected as out of scope.
    pub in_scope_rejected: usize,
    /// Training time, milliseconds (for the embedding models: embedding the examples, then
    /// fitting the classifier).
    pub train_millis: f64,
    /// Of that, fitting the embedding classifier on the embedded examples, milliseconds.
    pub fit_millis: Option<f64>,
    /// Mean classification time, microseconds.
    pub mean_micros: f64,
    /// Up to 30 misses.
    pub misses: Vec<Miss>,
}

/// Reads a TSV file: the header is skipped, blank lines ignored; each row split on tabs.
fn read_tsv(path: &Path, columns: usize) -> Result<Vec<(usize, Vec<String>)>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<String> = line.split('\t').map(str::to_string).collect();
        if cells.len() != columns {
            return Err(EvalError::Row {
                path: path.to_path_buf(),
                line: i + 1,
                message: format!(
                    "expected {columns} tab-separated columns, found {}",
                    cells.len()
                ),
            });
        }
        rows.push((i + 1, cells));
    }
    Ok(rows)
}

/// Scores the date/time extractor on `datetime.tsv` (`now`, `tz`, `text`, `expected`).
pub fn eval_datetime(path: &Path) -> Result<DateTimeReport, EvalError> {
    let rows = read_tsv(path, 4)?;
    let mut report = DateTimeReport {
        total: 0,
        correct: 0,
        with_value_correct: 0,
        with_value: 0,
        none_correct: 0,
        none_total: 0,
        mean_micros: 0.0,
        misses: Vec::new(),
    };
    let mut spent = 0.0;
    for (line, cells) in rows {
        let bad = |message: String| EvalError::Row {
            path: path.to_path_buf(),
            line,
            message,
        };
        let now = NaiveDateTime::parse_from_str(&cells[0], "%Y-%m-%dT%H:%M")
            .map_err(|e| bad(format!("now {:?}: {e}", cells[0])))?;
        let tz: chrono_tz::Tz = cells[1]
            .parse()
            .map_err(|_| bad(format!("unknown time zone {:?}", cells[1])))?;
        let (text, expected) = (&cells[2], cells[3].trim());
        let started = Instant::now();
        let got = resolve(text, &TimeContext { now, tz })
            .map_or_else(|| "none".to_string(), |v| v.canonical());
        spent += started.elapsed().as_secs_f64();
        report.total += 1;
        let hit = got == expected;
        if expected == "none" {
            report.none_total += 1;
            report.none_correct += usize::from(hit);
        } else {
            report.with_value += 1;
            report.with_value_correct += usize::from(hit);
        }
        if hit {
            report.correct += 1;
        } else {
            report.misses.push(Miss {
                text: text.clone(),
                expected: expected.to_string(),
                got,
            });
        }
    }
    report.mean_micros = spent * 1e6 / report.total.max(1) as f64;
    Ok(report)
}

/// A set's training and test rows.
pub struct IntentSet {
    /// Directory name.
    pub name: String,
    /// (intent, text) training pairs.
    pub train: Vec<(String, String)>,
    /// (intent or `oos`, text) held-out pairs.
    pub test: Vec<(String, String)>,
}

/// Reads `dir/train.tsv` and `dir/test.tsv`.
pub fn read_intent_set(dir: &Path) -> Result<IntentSet, EvalError> {
    let pairs = |file: &str| -> Result<Vec<(String, String)>, EvalError> {
        Ok(read_tsv(&dir.join(file), 2)?
            .into_iter()
            .map(|(_, mut c)| {
                let text = c.pop().unwrap_or_default();
                let intent = c.pop().unwrap_or_default();
                (intent, text)
            })
            .collect())
    };
    Ok(IntentSet {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        train: pairs("train.tsv")?,
        test: pairs("test.tsv")?,
    })
}

/// Scores classifications of a set's test rows; `classify` gives each text's classification.
pub fn score_intents(
    set: &IntentSet,
    model: &str,
    intents: usize,
    train_millis: f64,
    classify: &mut dyn FnMut(&str) -> Classification,
) -> IntentReport {
    let mut r = IntentReport {
        set: set.name.clone(),
        model: model.to_string(),
        intents,
        train_examples: set.train.len(),
        in_scope: 0,
        top1_correct: 0,
        accepted_correct: 0,
        oos_total: 0,
        oos_detected: 0,
        in_scope_rejected: 0,
        train_millis,
        fit_millis: None,
        mean_micros: 0.0,
        misses: Vec::new(),
    };
    let mut spent = 0.0;
    for (label, text) in &set.test {
        let started = Instant::now();
        let c = classify(text);
        spent += started.elapsed().as_secs_f64();
        let top = c.ranked.first().map(|s| s.intent.as_str()).unwrap_or("");
        if label == OUT_OF_SCOPE {
            r.oos_total += 1;
            r.oos_detected += usize::from(c.out_of_scope);
            continue;
        }
        r.in_scope += 1;
        let right = top == label;
        r.top1_correct += usize::from(right);
        r.accepted_correct += usize::from(right && !c.out_of_scope);
        r.in_scope_rejected += usize::from(c.out_of_scope);
        if !right && r.misses.len() < 30 {
            r.misses.push(Miss {
                text: text.clone(),
                expected: label.clone(),
                got: top.to_string(),
            });
        }
    }
    r.mean_micros = spent * 1e6 / set.test.len().max(1) as f64;
    r
}

/// Trains the n-gram model on a set and scores it.
pub fn eval_ngram(set: &IntentSet) -> Result<(IntentReport, IntentModel), EvalError> {
    let started = Instant::now();
    let model = IntentModel::train(&set.train, &TrainOptions::default())
        .map_err(|e| EvalError::Train(format!("{}: {e}", set.name)))?;
    let train_millis = started.elapsed().as_secs_f64() * 1e3;
    let report = score_intents(
        set,
        "ngram",
        model.intents().len(),
        train_millis,
        &mut |t| model.classify(t),
    );
    Ok((report, model))
}

fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The date/time report as text.
pub fn format_datetime(r: &DateTimeReport, misses: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "date/time expressions: {}/{} exact = {:.1}% (with a value {:.1}% of {}, no value {:.1}% of {}), {:.1} µs each",
        r.correct,
        r.total,
        pct(r.correct, r.total),
        pct(r.with_value_correct, r.with_value),
        r.with_value,
        pct(r.none_correct, r.none_total),
        r.none_total,
        r.mean_micros
    );
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

/// An intent report as text.
pub fn format_intents(r: &IntentReport, misses: bool) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "intents {:<10} {:<10} {} intents, {} train: top-1 {:.1}% ({}/{}), accepted-correct {:.1}%",
        r.set,
        r.model,
        r.intents,
        r.train_examples,
        pct(r.top1_correct, r.in_scope),
        r.top1_correct,
        r.in_scope,
        pct(r.accepted_correct, r.in_scope),
    );
    if r.oos_total > 0 {
        let _ = write!(
            out,
            ", out-of-scope recall {:.1}% ({}/{}), in-scope wrongly rejected {:.1}%",
            pct(r.oos_detected, r.oos_total),
            r.oos_detected,
            r.oos_total,
            pct(r.in_scope_rejected, r.in_scope)
        );
    }
    let _ = write!(out, "; train {:.0} ms", r.train_millis);
    if let Some(fit) = r.fit_millis {
        let _ = write!(out, " (classifier {fit:.0} ms)");
    }
    let _ = writeln!(out, ", {:.0} µs per message", r.mean_micros);
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

/// Intent set directories under `dir/intents`, sorted.
pub fn intent_sets(dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let root = dir.join("intents");
    let entries = std::fs::read_dir(&root).map_err(|source| EvalError::Io {
        path: root.clone(),
        source,
    })?;
    let mut sets: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("train.tsv").is_file() && p.join("test.tsv").is_file())
        .collect();
    sets.sort();
    Ok(sets)
}

/// What `switchboard nlu eval` runs.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The evaluation directory.
    pub data: PathBuf,
    /// Intent sets to run (all when empty).
    pub sets: Vec<String>,
    /// Print every miss.
    pub misses: bool,
    /// Print JSON instead of text.
    pub json: bool,
    /// MiniLM directory for the embedding models.
    pub embeddings_dir: Option<PathBuf>,
    /// Least acceptable date/time accuracy, percent.
    pub min_datetime: Option<f64>,
    /// Least acceptable top-1 intent accuracy per set (best model), percent.
    pub min_intent: Option<f64>,
    /// Least acceptable language identification accuracy (all rows, `und` included), percent.
    pub min_language: Option<f64>,
    /// Directory to write each set's train/test embeddings to (TSV), for offline analysis.
    pub dump_embeddings: Option<PathBuf>,
    /// Instead of scoring the test files, cross-validate the embedding classifier and the
    /// fusion on each set's training examples with this many folds (needs `embeddings_dir`).
    pub cv_folds: Option<usize>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRun {
    /// Date/time results.
    pub datetime: DateTimeReport,
    /// Intent results, per set and model.
    pub intents: Vec<IntentReport>,
    /// Language identification results.
    pub language: LanguageReport,
}

/// Runs the evaluation and prints it; `Ok(false)` when a `min_*` bar is not met.
pub fn run(options: &EvalOptions) -> Result<bool, EvalError> {
    if let Some(folds) = options.cv_folds {
        return cross_validate(options, folds).map(|()| true);
    }
    let datetime = eval_datetime(&options.data.join("datetime.tsv"))?;
    let mut intents = Vec::new();
    for dir in intent_sets(&options.data)? {
        let set = read_intent_set(&dir)?;
        if !options.sets.is_empty() && !options.sets.contains(&set.name) {
            continue;
        }
        let (report, model) = eval_ngram(&set)?;
        intents.push(report);
        if let Some(dir) = &options.embeddings_dir {
            intents.extend(embedding_reports(
                &set,
                &model,
                dir,
                options.dump_embeddings.as_deref(),
            )?);
        }
    }
    let language = eval_language(&options.data.join("language.tsv"))?;
    let run = EvalRun {
        datetime,
        intents,
        language,
    };
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&run)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        );
    } else {
        print!("{}", format_datetime(&run.datetime, options.misses));
        for r in &run.intents {
            print!("{}", format_intents(r, options.misses));
        }
        print!("{}", format_language(&run.language, options.misses));
    }
    Ok(meets_bars(&run, options))
}

/// Prints the training-set cross-validation of each selected set (see `nlu::tune`).
#[cfg(feature = "embeddings")]
fn cross_validate(options: &EvalOptions, folds: usize) -> Result<(), EvalError> {
    let Some(dir) = &options.embeddings_dir else {
        return Err(EvalError::Train(
            "cross-validation needs --embeddings-dir".into(),
        ));
    };
    let embedder =
        super::embed::Embedder::load(dir).map_err(|e| EvalError::Train(e.to_string()))?;
    let mut sets = Vec::new();
    for dir in intent_sets(&options.data)? {
        let set = read_intent_set(&dir)?;
        if options.sets.is_empty() || options.sets.contains(&set.name) {
            sets.push(set);
        }
    }
    print!("{}", super::tune::cross_validate(&sets, &embedder, folds)?);
    Ok(())
}

#[cfg(not(feature = "embeddings"))]
fn cross_validate(_options: &EvalOptions, _folds: usize) -> Result<(), EvalError> {
    Err(EvalError::Train(
        "cross-validation needs a build with `--features embeddings`".into(),
    ))
}

fn meets_bars(run: &EvalRun, options: &EvalOptions) -> bool {
    let mut ok = true;
    let dt = pct(run.datetime.correct, run.datetime.total);
    if let Some(min) = options.min_datetime.filter(|min| dt < *min) {
        eprintln!("date/time accuracy {dt:.1}% is below the required {min:.1}%");
        ok = false;
    }
    let language = run.language.accuracy();
    if let Some(min) = options.min_language.filter(|min| language < *min) {
        eprintln!("language accuracy {language:.1}% is below the required {min:.1}%");
        ok = false;
    }
    if let Some(min) = options.min_intent {
        let mut sets: Vec<&str> = run.intents.iter().map(|r| r.set.as_str()).collect();
        sets.dedup();
        for set in sets {
            let best = run
                .intents
                .iter()
                .filter(|r| r.set == set)
                .map(|r| pct(r.top1_correct, r.in_scope))
                .fold(0.0, f64::max);
            if best < min {
                eprintln!(
                    "intent set {set}: top-1 accuracy {best:.1}% is below the required {min:.1}%"
                );
                ok = false;
            }
        }
    }
    ok
}

#[cfg(not(feature = "embeddings"))]
fn embedding_reports(
    _set: &IntentSet,
    _ngram: &IntentModel,
    _dir: &Path,
    _dump: Option<&Path>,
) -> Result<Vec<IntentReport>, EvalError> {
    Err(EvalError::Train(
        "sentence embeddings need a build with `--features embeddings`".into(),
    ))
}

/// A fusion constant, overridable from the environment when tuning with `nlu eval`.
#[cfg(feature = "embeddings")]
fn tuning(var: &str, default: f32) -> f32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Scores the embedding classifier alone and fused with the n-gram model.
#[cfg(feature = "embeddings")]
fn embedding_reports(
    set: &IntentSet,
    ngram: &IntentModel,
    dir: &Path,
    dump: Option<&Path>,
) -> Result<Vec<IntentReport>, EvalError> {
    use super::embed::{Embedder, EmbeddingClassifier};
    use super::engine::{fused_classification, EMBEDDING_WEIGHT, FUSED_ACCEPT};

    let embedder = Embedder::load(dir).map_err(|e| EvalError::Train(e.to_string()))?;
    let embed_all = |texts: Vec<&str>| -> Result<Vec<Vec<f32>>, EvalError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(64) {
            out.extend(
                embedder
                    .embed(chunk)
                    .map_err(|e| EvalError::Train(e.to_string()))?,
            );
        }
        Ok(out)
    };
    let intents = ngram.intents().to_vec();
    let started = Instant::now();
    let train_vectors = embed_all(set.train.iter().map(|(_, t)| t.as_str()).collect())?;
    let examples: Vec<(usize, Vec<f32>)> = set
        .train
        .iter()
        .zip(train_vectors)
        .filter_map(|((intent, _), v)| intents.iter().position(|i| i == intent).map(|i| (i, v)))
        .collect();
    let fit_started = Instant::now();
    let classifier = EmbeddingClassifier::train(&intents, &examples)
        .map_err(|e| EvalError::Train(e.to_string()))?;
    let fit_millis = Some(fit_started.elapsed().as_secs_f64() * 1e3);
    let train_millis = started.elapsed().as_secs_f64() * 1e3;
    let test_vectors = embed_all(set.test.iter().map(|(_, t)| t.as_str()).collect())?;
    if let Some(out) = dump {
        let train_vectors: Vec<Vec<f32>> = examples.iter().map(|(_, v)| v.clone()).collect();
        let train_labels: Vec<&str> = examples.iter().map(|(i, _)| intents[*i].as_str()).collect();
        let test_labels: Vec<&str> = set.test.iter().map(|(l, _)| l.as_str()).collect();
        dump_vectors(
            &out.join(format!("{}.train.tsv", set.name)),
            &train_labels,
            &train_vectors,
        )?;
        dump_vectors(
            &out.join(format!("{}.test.tsv", set.name)),
            &test_labels,
            &test_vectors,
        )?;
    }
    let by_text: std::collections::HashMap<&str, &Vec<f32>> = set
        .test
        .iter()
        .map(|(_, t)| t.as_str())
        .zip(test_vectors.iter())
        .collect();
    let threshold = ngram.threshold();
    let probs_of = |t: &str| {
        by_text
            .get(t)
            .map(|v| classifier.probabilities(v))
            .unwrap_or_default()
    };
    let mut alone = score_intents(set, "embeddings", intents.len(), train_millis, &mut |t| {
        Classification::from_probabilities(&intents, &probs_of(t), threshold)
    });
    alone.fit_millis = fit_millis;
    let mut fused = score_intents(set, "fused", intents.len(), train_millis, &mut |t| {
        fused_classification(
            &intents,
            &ngram.probabilities(t),
            &probs_of(t),
            threshold,
            tuning("SWITCHBOARD_FUSION_WEIGHT", EMBEDDING_WEIGHT),
            tuning("SWITCHBOARD_FUSION_ACCEPT", FUSED_ACCEPT),
        )
    });
    fused.fit_millis = fit_millis;
    Ok(vec![alone, fused])
}

/// Writes `label<TAB>v1 v2 …` rows, one per vector.
#[cfg(feature = "embeddings")]
fn dump_vectors(path: &Path, labels: &[&str], vectors: &[Vec<f32>]) -> Result<(), EvalError> {
    let mut text = String::new();
    for (label, vector) in labels.iter().zip(vectors) {
        let values: Vec<String> = vector.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(text, "{label}\t{}", values.join(" "));
    }
    std::fs::write(path, text).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}
