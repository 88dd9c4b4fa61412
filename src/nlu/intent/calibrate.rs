//! Confidence calibration and the out-of-scope threshold.
//!
//! Owns the stratified cross-validation over the training examples, the temperature that makes
//! the out-of-fold softmax probabilities honest (minimum negative log-likelihood, golden-section
//! search over log T), and the threshold rule (see [`pick_threshold`]).
//!
//! Invariants: deterministic (folds come from the sorted example order, no randomness);
//! the temperature stays in [`MIN_T`, `MAX_T`] and the threshold in (0, 1); with too little data
//! to calibrate the defaults are returned rather than an error.

use super::features::SparseVec;
use super::model::{softmax, Data, Linear};

/// Smallest temperature considered.
pub const MIN_T: f32 = 0.05;
/// Largest temperature considered.
pub const MAX_T: f32 = 20.0;
/// Lowest picked threshold for a single intent (whose probability is an in-scope chance).
pub const MIN_THRESHOLD: f32 = 0.1;

/// What cross-validation found, kept with the model for diagnostics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Calibration {
    /// Softmax temperature applied to the logits.
    pub temperature: f32,
    /// Out-of-scope threshold on the top calibrated probability.
    pub threshold: f32,
    /// Examples that were predicted out of fold.
    pub held_out: usize,
    /// Share of those whose top intent was right.
    pub held_out_accuracy: f32,
    /// Share of held-out background sentences that fell below the threshold.
    pub background_rejected: f32,
}

/// Stratified fold of each example: the i-th example of a class goes to fold (i + class) mod k.
pub fn folds(ys: &[usize], classes: usize, k: usize) -> Vec<usize> {
    let k = k.max(1);
    let mut seen = vec![0usize; classes];
    ys.iter()
        .map(|&y| match seen.get_mut(y) {
            Some(s) => {
                let f = (*s + y) % k;
                *s += 1;
                f
            }
            None => 0,
        })
        .collect()
}

/// The examples used to train the model of fold `f`: all examples outside it.
pub fn fold_training_set(data: Data<'_>, fold_of: &[usize], f: usize) -> Owned {
    let mut set = Owned::default();
    for (i, (x, &y)) in data.xs.iter().zip(data.ys).enumerate() {
        if fold_of.get(i) != Some(&f) {
            set.xs.push(x.clone());
            set.ys.push(y);
            set.ws.push(data.ws.get(i).copied().unwrap_or(1.0));
        }
    }
    set
}

/// An owned training subset.
#[derive(Debug, Default)]
pub struct Owned {
    xs: Vec<SparseVec>,
    ys: Vec<usize>,
    ws: Vec<f32>,
}

impl Owned {
    /// Borrowed view for training.
    pub fn data(&self) -> Data<'_> {
        Data {
            xs: &self.xs,
            ys: &self.ys,
            ws: &self.ws,
        }
    }
}

/// Out-of-fold logits: each example scored by the model of its fold (`models[f]`, trained
/// without fold `f`). Examples whose fold model is missing, or of a class with fewer than two
/// examples (no fold model could have learnt it), get `None`.
pub fn out_of_fold_logits(
    data: Data<'_>,
    fold_of: &[usize],
    classes: usize,
    models: &[Option<Linear>],
) -> Vec<Option<Vec<f32>>> {
    let mut per_class = vec![0usize; classes];
    for &y in data.ys {
        if let Some(c) = per_class.get_mut(y) {
            *c += 1;
        }
    }
    data.xs
        .iter()
        .zip(data.ys)
        .zip(fold_of)
        .map(|((x, &y), &f)| {
            let learnable = per_class.get(y).is_some_and(|&c| c >= 2);
            let model = models.get(f).and_then(Option::as_ref);
            model.filter(|_| learnable).map(|m| m.logits(x))
        })
        .collect()
}

/// The distribution over `intents` given logits over intents plus trailing background classes:
/// softmax of `z / t`, then the background's probability spread evenly over the intents (so a
/// text that looks like background gets a flat distribution). With a single intent the result
/// is that intent's own probability against the background: an in-scope probability.
pub fn distribution(z: &[f32], t: f32, intents: usize) -> Vec<f32> {
    let mut p: Vec<f32> = z.iter().map(|v| v / t).collect();
    softmax(&mut p);
    let background: f32 = p.iter().skip(intents).sum();
    p.truncate(intents);
    if intents > 1 {
        let share = background / intents as f32;
        p.iter_mut().for_each(|v| *v += share);
    }
    p
}

/// A held-out prediction: logits, true class (intents, then background), weight.
pub type Sample<'a> = (&'a [f32], usize, f32);

/// Weighted negative log-likelihood of the true classes under softmax(z / t).
fn nll(samples: &[Sample<'_>], t: f32) -> f32 {
    samples
        .iter()
        .map(|&(z, y, w)| {
            let mut p: Vec<f32> = z.iter().map(|v| v / t).collect();
            softmax(&mut p);
            -w * p.get(y).copied().unwrap_or(0.0).max(1e-12).ln()
        })
        .sum::<f32>()
}

/// The temperature minimising the weighted negative log-likelihood of held-out predictions
/// over all classes (intents and background): the softmax model itself is calibrated, the
/// spreading of the background's share over the intents comes after.
pub fn fit_temperature(samples: &[Sample<'_>]) -> f32 {
    if samples.is_empty() {
        return 1.0;
    }
    let (mut lo, mut hi) = (MIN_T.ln(), MAX_T.ln());
    let g = 0.618_034f32;
    let mut a = hi - g * (hi - lo);
    let mut b = lo + g * (hi - lo);
    let (mut fa, mut fb) = (nll(samples, a.exp()), nll(samples, b.exp()));
    for _ in 0..40 {
        if fa <= fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - g * (hi - lo);
            fa = nll(samples, a.exp());
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + g * (hi - lo);
            fb = nll(samples, b.exp());
        }
    }
    ((lo + hi) / 2.0).exp().clamp(MIN_T, MAX_T)
}

/// The out-of-scope threshold, from held-out top probabilities of in-scope examples that were
/// predicted right (`correct`) and of background sentences (`background`): the threshold that
/// maximises `accepted share of correct − oos_cost · accepted share of background`, taken
/// midway (geometrically) between the neighbouring observed values. With two or more intents
/// it never goes below 1/`intents` plus a small margin (a flat distribution is always out of
/// scope); with one it never goes below [`MIN_THRESHOLD`]. Without both kinds of evidence it
/// falls back to [`fallback_threshold`].
pub fn pick_threshold(correct: &[f32], background: &[f32], intents: usize, oos_cost: f32) -> f32 {
    let floor = if intents >= 2 {
        uniform(intents) + 0.02
    } else {
        MIN_THRESHOLD
    };
    if correct.is_empty() || background.is_empty() {
        return fallback_threshold(intents);
    }
    // (value, is_correct) ascending; sweeping up, each value passed stops being accepted.
    let mut all: Vec<(f32, bool)> = correct
        .iter()
        .map(|&v| (v, true))
        .chain(background.iter().map(|&v| (v, false)))
        .filter(|v| v.0.is_finite())
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (nc, nb) = (correct.len() as f32, background.len() as f32);
    let (mut acc_c, mut acc_b) = (nc, nb);
    let mut best = (1.0 - oos_cost, 0.0f32, all.first().map_or(floor, |v| v.0));
    for (i, &(v, is_correct)) in all.iter().enumerate() {
        if is_correct {
            acc_c -= 1.0;
        } else {
            acc_b -= 1.0;
        }
        let next = all.get(i + 1).map(|n| n.0);
        if next == Some(v) {
            continue;
        }
        let score = acc_c / nc - oos_cost * acc_b / nb;
        if score > best.0 {
            let upper = next.unwrap_or(1.0);
            best = (score, v, upper);
        }
    }
    let (lo, hi) = (best.1.max(1e-6), best.2.max(1e-6));
    (lo * hi).sqrt().max(floor).min(0.99)
}

/// Temperature and threshold from the out-of-fold logits `oof` of examples labelled `ys`
/// (intents `0..intents`, then background) weighing `ws`. `fixed` overrides the picked
/// threshold.
pub fn calibrate(
    oof: &[Option<Vec<f32>>],
    ys: &[usize],
    ws: &[f32],
    intents: usize,
    fixed: Option<f32>,
    oos_cost: f32,
) -> Calibration {
    let labelled: Vec<Sample> = oof
        .iter()
        .zip(ys.iter().zip(ws))
        .filter_map(|(z, (&y, &w))| z.as_deref().map(|z| (z, y, w)))
        .collect();
    let temperature = fit_temperature(&labelled);
    let (samples, background): (Vec<&Sample>, Vec<&Sample>) =
        labelled.iter().partition(|s| s.1 < intents);
    let top = |z: &[f32]| top_of(&distribution(z, temperature, intents));
    let correct: Vec<f32> = samples
        .iter()
        .filter_map(|&&(z, y, _)| top(z).filter(|t| t.0 == y).map(|t| t.1))
        .collect();
    let background_tops: Vec<f32> = background
        .iter()
        .filter_map(|&&(z, _, _)| top(z).map(|t| t.1))
        .collect();
    let threshold = match fixed.filter(|t| t.is_finite()) {
        Some(t) => t.clamp(0.0, 1.0),
        None => pick_threshold(&correct, &background_tops, intents, oos_cost),
    };
    let rejected = background_tops.iter().filter(|&&p| p < threshold).count();
    Calibration {
        temperature,
        threshold,
        held_out: samples.len(),
        held_out_accuracy: correct.len() as f32 / samples.len().max(1) as f32,
        background_rejected: rejected as f32 / background_tops.len().max(1) as f32,
    }
}

/// Index and value of the largest probability (the first one on ties).
pub fn top_of(p: &[f32]) -> Option<(usize, f32)> {
    p.iter()
        .copied()
        .enumerate()
        .fold(None, |best, (i, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })
}

/// The uniform probability over `intents` (0.5 for one intent: an even in-scope chance).
fn uniform(intents: usize) -> f32 {
    1.0 / intents.max(2) as f32
}

/// Threshold used when there is nothing to calibrate on: a tenth of the way from a flat
/// distribution to certainty.
pub fn fallback_threshold(intents: usize) -> f32 {
    let u = uniform(intents);
    u + 0.1 * (1.0 - u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified() {
        let ys = [0, 0, 0, 1, 1, 1];
        assert_eq!(folds(&ys, 2, 3), vec![0, 1, 2, 1, 2, 0]);
    }

    #[test]
    fn temperature_softens_overconfident_logits() {
        // Confident logits that are right only half the time want a high temperature.
        let right = [4.0f32, 0.0];
        let wrong = [0.0f32, 4.0];
        let s: Vec<Sample> = vec![(&right, 0, 1.0), (&wrong, 0, 1.0), (&right, 0, 1.0)];
        assert!(fit_temperature(&s) > 2.0);
        // Always-right but timid logits want a low one.
        let timid = [0.5f32, 0.0];
        let s: Vec<Sample> = vec![(&timid, 0, 1.0); 4];
        assert!(fit_temperature(&s) < 0.2);
        assert_eq!(fit_temperature(&[]), 1.0);
    }

    #[test]
    fn threshold_separates_correct_from_background() {
        let correct = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let background = [0.1, 0.12, 0.15, 0.2];
        let t = pick_threshold(&correct, &background, 8, 1.0);
        assert!((t - (0.2f32 * 0.4).sqrt()).abs() < 1e-6, "{t}");
        // Overlap: one background above the lowest correct one is not worth a rejected right.
        let t = pick_threshold(&correct, &[0.1, 0.45], 8, 1.0);
        assert!(t > 0.45 && t <= 0.5, "{t}");
        // Everything flat: never below uniform.
        assert!(pick_threshold(&[0.1], &[0.5], 8, 1.0) >= 0.125 + 0.02);
        assert_eq!(pick_threshold(&[], &[0.5], 8, 1.0), fallback_threshold(8));
        assert!((fallback_threshold(2) - 0.55).abs() < 1e-6);
    }
}
