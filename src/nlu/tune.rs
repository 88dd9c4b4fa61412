//! Cross-validation of the embedding classifier and of its fusion with the n-gram model on
//! sets' *training* examples only (`switchboard nlu eval --cv-folds K`): the evidence for the
//! L2 in `embed::classifier::TrainOptions` and the fusion constants in `engine`, so that the
//! held-out `test.tsv` is only ever used to report.
//!
//! Two passes over each set's training examples, both deterministic:
//! - **L2**: stratified K-fold (the i-th example of intent c in fold (i + c) mod K); for each
//!   candidate L2 the classifier trained without a fold predicts it; top-1 accuracy is reported.
//! - **Fusion**: the same folds, and each fold also leaves out whole intents (intent j is left
//!   out of fold j mod K's models): the fold's n-gram model and embedding classifier are trained
//!   on the other folds' examples of the remaining intents; they score the fold's examples of
//!   the remaining intents (in scope) and every example of the left-out intents (out of scope:
//!   requests the flow has no intent for, the hardest kind of out-of-scope message and the only
//!   kind training data can offer). Every setting (embedding probabilities at temperature 1 or
//!   calibrated, fusion weight, acceptance floor) is scored on those rows by accepted-right
//!   share − [`OOS_COST`] × accepted-out-of-scope share, per set and averaged over the sets.
//!
//! Owns only this report; nothing here runs when flows are trained.

use std::fmt::Write as _;

use super::embed::classifier::{softmax_in_place, TrainOptions as EmbedOptions};
use super::embed::{Embedder, EmbeddingClassifier};
use super::engine::{fused_classification, EMBEDDING_WEIGHT, FUSED_ACCEPT};
use super::eval::{EvalError, IntentSet};
use super::intent::{IntentModel, TrainOptions};

/// L2 values tried (see `embed::classifier::TrainOptions::l2`).
pub const L2_GRID: [f32; 6] = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0];
/// Fusion weights of the embedding classifier tried.
pub const WEIGHT_GRID: [f32; 6] = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
/// Acceptance floors tried.
pub const ACCEPT_GRID: [f32; 11] = [0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9];
/// Cost of accepting an out-of-scope row relative to rejecting a right one (the n-gram
/// model's own default, `intent::TrainOptions::oos_cost`).
pub const OOS_COST: f32 = 1.5;

/// A training example with its embedding and intent index (in the set's sorted intents).
struct Example<'a> {
    text: &'a str,
    intent: usize,
    vector: Vec<f32>,
    fold: usize,
}

/// One held-out prediction of the fusion pass.
struct Row {
    /// Index of the fold model's intents in [`FusionPass::models`].
    fold: usize,
    /// The true intent, `None` for an example of an intent left out of the fold's models.
    truth: Option<String>,
    ngram: Vec<f32>,
    /// The embedding classifier's probabilities with its calibrated temperature, and with
    /// temperature 1.
    calibrated: Vec<f32>,
    raw: Vec<f32>,
}

/// The held-out predictions of one set's fusion pass.
struct FusionPass {
    set: String,
    /// Each fold model's intents and n-gram threshold.
    models: Vec<(Vec<String>, f32)>,
    /// Each fold's calibrated embedding temperature.
    temperatures: Vec<f32>,
    rows: Vec<Row>,
}

/// A fusion setting.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Setting {
    calibrated: bool,
    weight: f32,
    accept: f32,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.calibrated {
            "calibrated"
        } else {
            "temperature 1"
        };
        write!(f, "{kind}, weight {}, accept {}", self.weight, self.accept)
    }
}

/// Counts for one fusion setting.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    in_scope: usize,
    top1: usize,
    accepted_correct: usize,
    rejected: usize,
    oos: usize,
    oos_detected: usize,
}

impl Tally {
    fn top1(&self) -> f64 {
        share(self.top1, self.in_scope)
    }

    /// Accepted-right share minus [`OOS_COST`] × accepted-out-of-scope share.
    fn score(&self) -> f64 {
        share(self.accepted_correct, self.in_scope)
            - f64::from(OOS_COST) * share(self.oos - self.oos_detected, self.oos)
    }

    fn describe(&self) -> String {
        format!(
            "top-1 {:.1}%, accepted-correct {:.1}%, out-of-scope recall {:.1}%, in-scope rejected {:.1}%, score {:.3}",
            100.0 * self.top1(),
            100.0 * share(self.accepted_correct, self.in_scope),
            100.0 * share(self.oos_detected, self.oos),
            100.0 * share(self.rejected, self.in_scope),
            self.score()
        )
    }
}

fn share(part: usize, whole: usize) -> f64 {
    part as f64 / whole.max(1) as f64
}

/// Runs both passes on each set's training examples, then picks the fusion setting with the
/// best mean score over the sets; returns the report as text.
pub fn cross_validate(
    sets: &[IntentSet],
    embedder: &Embedder,
    folds: usize,
) -> Result<String, EvalError> {
    let folds = folds.clamp(2, 20);
    let mut out = String::new();
    let mut passes = Vec::new();
    for set in sets {
        let mut intents: Vec<String> = set.train.iter().map(|(i, _)| i.clone()).collect();
        intents.sort();
        intents.dedup();
        let examples = embed_examples(set, &intents, embedder, folds)?;
        let _ = writeln!(
            out,
            "cross-validation {} ({} intents, {} examples, {folds} folds; training examples only)",
            set.name,
            intents.len(),
            examples.len()
        );
        l2_pass(&intents, &examples, folds, &mut out)?;
        let pass = fusion_pass(&set.name, &intents, &examples, folds)?;
        report_fusion(&pass, &mut out);
        passes.push(pass);
    }
    report_joint(&passes, &mut out);
    Ok(out)
}
fn embed_examples<'a>(
    set: &'a IntentSet,
    intents: &[String],
    embedder: &Embedder,
    folds: usize,
) -> Result<Vec<Example<'a>>, EvalError> {
    let texts: Vec<&str> = set.train.iter().map(|(_, t)| t.as_str()).collect();
    let vectors = embedder
        .embed(&texts)
        .map_err(|e| EvalError::Train(e.to_string()))?;
    let mut seen = vec![0usize; intents.len()];
    let mut out = Vec::with_capacity(texts.len());
    for ((intent, text), vector) in set.train.iter().zip(vectors) {
        let Some(c) = intents.iter().position(|i| i == intent) else {
            continue;
        };
        out.push(Example {
            text,
            intent: c,
            vector,
            fold: (seen[c] + c) % folds,
        });
        seen[c] += 1;
    }
    Ok(out)
}

/// Held-out top-1 accuracy of the embedding classifier for each L2 in [`L2_GRID`].
fn l2_pass(
    intents: &[String],
    examples: &[Example<'_>],
    folds: usize,
    out: &mut String,
) -> Result<(), EvalError> {
    let _ = write!(out, "  embeddings top-1 by L2:");
    for l2 in L2_GRID {
        let opts = EmbedOptions {
            l2,
            ..EmbedOptions::default()
        };
        let mut right = 0;
        for f in 0..folds {
            let train: Vec<(usize, Vec<f32>)> = examples
                .iter()
                .filter(|e| e.fold != f)
                .map(|e| (e.intent, e.vector.clone()))
                .collect();
            let clf = EmbeddingClassifier::train_with(intents, &train, &opts)
                .map_err(|e| EvalError::Train(e.to_string()))?;
            right += examples
                .iter()
                .filter(|e| e.fold == f && clf.predict(&e.vector).0 == e.intent)
                .count();
        }
        let _ = write!(out, " {l2}: {:.1}%", 100.0 * share(right, examples.len()));
    }
    let _ = writeln!(out, " (default {})", EmbedOptions::default().l2);
    Ok(())
}

/// Trains each fold's models without the fold and without its left-out intents, and collects
/// their predictions.
fn fusion_pass(
    set: &str,
    intents: &[String],
    examples: &[Example<'_>],
    folds: usize,
) -> Result<FusionPass, EvalError> {
    let mut pass = FusionPass {
        set: set.to_string(),
        models: Vec::new(),
        temperatures: Vec::new(),
        rows: Vec::new(),
    };
    for f in 0..folds {
        let kept = |c: usize| c % folds != f;
        let pairs: Vec<(String, String)> = examples
            .iter()
            .filter(|e| e.fold != f && kept(e.intent))
            .map(|e| (intents[e.intent].clone(), e.text.to_string()))
            .collect();
        let ngram = IntentModel::train(&pairs, &TrainOptions::default())
            .map_err(|e| EvalError::Train(e.to_string()))?;
        let names = ngram.intents().to_vec();
        let labelled: Vec<(usize, Vec<f32>)> = examples
            .iter()
            .filter(|e| e.fold != f && kept(e.intent))
            .filter_map(|e| {
                let name = &intents[e.intent];
                names
                    .iter()
                    .position(|n| n == name)
                    .map(|i| (i, e.vector.clone()))
            })
            .collect();
        let calibrated = EmbedOptions {
            cv_folds: folds,
            ..EmbedOptions::default()
        };
        let clf = EmbeddingClassifier::train_with(&names, &labelled, &calibrated)
            .map_err(|e| EvalError::Train(e.to_string()))?;
        for e in examples
            .iter()
            .filter(|e| (e.fold == f && kept(e.intent)) || !kept(e.intent))
        {
            let mut raw = clf.logits(&e.vector);
            softmax_in_place(&mut raw);
            pass.rows.push(Row {
                fold: pass.models.len(),
                truth: kept(e.intent).then(|| intents[e.intent].clone()),
                ngram: ngram.probabilities(e.text),
                calibrated: clf.probabilities(&e.vector),
                raw,
            });
        }
        pass.models.push((names, ngram.threshold()));
        pass.temperatures.push(clf.temperature());
    }
    Ok(pass)
}

/// Scores the fusion pass's rows with one setting.
fn tally(pass: &FusionPass, setting: Setting) -> Tally {
    let mut t = Tally::default();
    for row in &pass.rows {
        let (names, threshold) = &pass.models[row.fold];
        let embedded = if setting.calibrated {
            &row.calibrated
        } else {
            &row.raw
        };
        let c = fused_classification(
            names,
            &row.ngram,
            embedded,
            *threshold,
            setting.weight,
            setting.accept,
        );
        let top = c.ranked.first().map(|s| s.intent.as_str());
        match &row.truth {
            None => {
                t.oos += 1;
                t.oos_detected += usize::from(c.out_of_scope);
            }
            Some(truth) => {
                let right = top == Some(truth.as_str());
                t.in_scope += 1;
                t.top1 += usize::from(right);
                t.accepted_correct += usize::from(right && !c.out_of_scope);
                t.rejected += usize::from(c.out_of_scope);
            }
        }
    }
    t
}

/// Every setting of the grid.
fn settings() -> Vec<Setting> {
    let mut all = Vec::new();
    for calibrated in [true, false] {
        for weight in WEIGHT_GRID {
            for accept in ACCEPT_GRID {
                all.push(Setting {
                    calibrated,
                    weight,
                    accept,
                });
            }
        }
    }
    all
}

/// The engine's constants (the classifier's default temperature is 1).
fn defaults() -> Setting {
    Setting {
        calibrated: false,
        weight: EMBEDDING_WEIGHT,
        accept: FUSED_ACCEPT,
    }
}

fn report_fusion(pass: &FusionPass, out: &mut String) {
    let only = |weight, accept| Setting {
        calibrated: true,
        weight,
        accept,
    };
    let n_gram = tally(pass, only(0.0, 1.0));
    let _ = writeln!(
        out,
        "  held-out intents as out of scope: {} in-scope rows, {} out-of-scope rows; calibrated embedding temperatures {:?}",
        n_gram.in_scope, n_gram.oos, pass.temperatures
    );
    let _ = writeln!(
        out,
        "  n-gram alone: top-1 {:.1}%, out-of-scope recall {:.1}%, in-scope rejected {:.1}%; embeddings alone: top-1 {:.1}%",
        100.0 * n_gram.top1(),
        100.0 * share(n_gram.oos_detected, n_gram.oos),
        100.0 * share(n_gram.rejected, n_gram.in_scope),
        100.0 * tally(pass, only(1.0, 0.0)).top1()
    );
    for calibrated in [true, false] {
        let _ = write!(
            out,
            "  fused top-1 by weight ({}):",
            if calibrated {
                "calibrated"
            } else {
                "temperature 1"
            }
        );
        for weight in WEIGHT_GRID {
            let t = tally(
                pass,
                Setting {
                    calibrated,
                    weight,
                    accept: 0.0,
                },
            );
            let _ = write!(out, " {weight}: {:.1}%", 100.0 * t.top1());
        }
        let _ = writeln!(out);
    }
    let best = settings().into_iter().map(|s| (tally(pass, s), s)).fold(
        None::<(Tally, Setting)>,
        |best, (t, s)| match best {
            Some(b) if b.0.score() >= t.score() - 1e-9 => Some(b),
            _ => Some((t, s)),
        },
    );
    let d = defaults();
    let _ = writeln!(
        out,
        "  engine constants ({d}): {}",
        tally(pass, d).describe()
    );
    if let Some((t, s)) = best {
        let _ = writeln!(out, "  best for this set ({s}): {}", t.describe());
    }
    for calibrated in [false, true] {
        let kind = if calibrated {
            "calibrated"
        } else {
            "temperature 1"
        };
        let _ = write!(
            out,
            "  floors at weight {} ({kind}; out-of-scope recall/in-scope rejected %):",
            d.weight
        );
        for accept in ACCEPT_GRID {
            let t = tally(
                pass,
                Setting {
                    calibrated,
                    accept,
                    ..d
                },
            );
            let _ = write!(
                out,
                " {accept}: {:.0}/{:.1}",
                100.0 * share(t.oos_detected, t.oos),
                100.0 * share(t.rejected, t.in_scope)
            );
        }
        let _ = writeln!(out);
    }
}

/// The setting with the best mean score over all sets, and how each set fares with it.
fn report_joint(passes: &[FusionPass], out: &mut String) {
    if passes.len() < 2 {
        return;
    }
    let mean =
        |s: Setting| passes.iter().map(|p| tally(p, s).score()).sum::<f64>() / passes.len() as f64;
    let mut ranked: Vec<(f64, Setting)> = settings().into_iter().map(|s| (mean(s), s)).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let d = defaults();
    let _ = writeln!(out, "joint (mean score over {} sets):", passes.len());
    let rank = ranked.iter().position(|r| r.1 == d).map_or(0, |i| i + 1);
    let _ = writeln!(
        out,
        "  engine constants ({d}): mean score {:.3}, rank {rank} of {}",
        mean(d),
        ranked.len()
    );
    for (score, s) in ranked.iter().take(8) {
        let _ = write!(out, "  {s}: mean score {score:.3};");
        for p in passes {
            let t = tally(p, *s);
            let _ = write!(
                out,
                " {} top-1 {:.1}% recall {:.1}% rejected {:.1}%",
                p.set,
                100.0 * t.top1(),
                100.0 * share(t.oos_detected, t.oos),
                100.0 * share(t.rejected, t.in_scope)
            );
        }
        let _ = writeln!(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(truth: Option<&str>, ngram: [f32; 2], embedded: [f32; 2]) -> Row {
        Row {
            fold: 0,
            truth: truth.map(str::to_string),
            ngram: ngram.to_vec(),
            calibrated: embedded.to_vec(),
            raw: vec![0.5, 0.5],
        }
    }

    #[test]
    fn tally_counts_right_rejected_and_detected_rows() {
        let pass = FusionPass {
            set: "s".into(),
            models: vec![(vec!["a".into(), "b".into()], 0.7)],
            temperatures: vec![0.5],
            rows: vec![
                // Right and confident: accepted.
                row(Some("a"), [0.9, 0.1], [0.9, 0.1]),
                // Right by the embeddings, but both models timid: rejected.
                row(Some("b"), [0.55, 0.45], [0.4, 0.6]),
                // A left-out intent both models are unsure of: detected.
                row(None, [0.5, 0.5], [0.55, 0.45]),
                // One they are sure of: accepted, a false accept.
                row(None, [0.95, 0.05], [0.95, 0.05]),
            ],
        };
        let setting = Setting {
            calibrated: true,
            weight: 0.9,
            accept: 0.65,
        };
        let t = tally(&pass, setting);
        assert_eq!(
            (t.in_scope, t.top1, t.accepted_correct, t.rejected),
            (2, 2, 1, 1)
        );
        assert_eq!((t.oos, t.oos_detected), (2, 1));
        assert!((t.score() - (0.5 - 1.5 * 0.5)).abs() < 1e-9);
        // Temperature-1 probabilities here are flat: the n-gram model decides the ranking.
        let flat = tally(
            &pass,
            Setting {
                calibrated: false,
                ..setting
            },
        );
        assert_eq!(flat.top1, 1);
    }
}
