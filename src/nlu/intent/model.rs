//! The linear scorer and its training: multinomial logistic regression (softmax) with L2.
//!
//! Owns [`Linear`] (one weight row per feature, one float per class, plus a bias per class) and
//! [`train`], which minimises mean cross-entropy + `l2`/2 · ‖W‖² with deterministic SGD: a
//! fixed-seed shuffle per epoch, a decaying step, and the L2 shrink applied lazily through a
//! scale factor so each step only touches the example's own features.
//!
//! Invariants: same inputs → bit-identical weights; never panics (indices outside the weight
//! matrix are ignored); logits are finite for finite inputs.

use super::features::SparseVec;

/// Training knobs of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct SgdParams {
    /// L2 strength (λ) on the weights (the bias is not shrunk).
    pub l2: f32,
    /// Passes over the examples.
    pub epochs: usize,
    /// Initial step size.
    pub step: f32,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Longest visiting period of light examples: an example of weight w < 1 takes part in
    /// every `min(⌊1/w⌋, thin)`-th epoch only, with its weight multiplied by that period (the
    /// same expected gradient for less work). 1 visits every example every epoch.
    pub thin: usize,
}

/// A linear multi-class scorer over sparse features.
#[derive(Clone, PartialEq)]
pub struct Linear {
    classes: usize,
    /// Row length: `classes` rounded up to a multiple of [`LANES`] (padding stays zero).
    stride: usize,
    /// Row-major: feature `j`'s weights are `w[j * stride..][..classes]`.
    w: Vec<f32>,
    /// Biases, `stride` long.
    b: Vec<f32>,
}

/// Rows are padded to a multiple of this many floats so the inner loops vectorise cleanly.
const LANES: usize = 8;

impl Linear {
    /// An all-zero scorer.
    pub fn zeros(features: usize, classes: usize) -> Self {
        let stride = classes.div_ceil(LANES) * LANES;
        Self {
            classes,
            stride,
            w: vec![0.0; features.saturating_mul(stride)],
            b: vec![0.0; stride],
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Logits of `x` (length `classes`).
    pub fn logits(&self, x: &SparseVec) -> Vec<f32> {
        let mut z = self.b.clone();
        add_rows(&self.w, self.stride, x, 1.0, &mut z);
        z.truncate(self.classes);
        z
    }
}

impl std::fmt::Debug for Linear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linear")
            .field("classes", &self.classes)
            .field("weights", &self.w.len())
            .finish()
    }
}

/// `out += scale · Σ_j x_j · W[j]` (rows of length `k`).
fn add_rows(w: &[f32], k: usize, x: &SparseVec, scale: f32, out: &mut [f32]) {
    for (&j, &xj) in x.idx.iter().zip(&x.val) {
        let from = j as usize * k;
        if let Some(row) = w.get(from..from + k) {
            let a = scale * xj;
            for (o, wv) in out.iter_mut().zip(row) {
                *o += a * wv;
            }
        }
    }
}

/// In-place softmax; a slice of non-finite or empty values is left as a uniform distribution.
pub fn softmax(z: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        let u = 1.0 / z.len().max(1) as f32;
        z.iter_mut().for_each(|v| *v = u);
        return;
    }
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    z.iter_mut().for_each(|v| *v /= sum);
}

/// A small fixed-seed generator (xorshift64*), for the shuffle only.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Fisher–Yates shuffle.
    fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Labelled training data: vectors, labels (< classes) and per-example weights.
#[derive(Debug, Clone, Copy)]
pub struct Data<'a> {
    /// Feature vectors.
    pub xs: &'a [SparseVec],
    /// Class of each vector.
    pub ys: &'a [usize],
    /// Weight of each vector's loss (missing weights count as 1).
    pub ws: &'a [f32],
}

impl Data<'_> {
    fn len(&self) -> usize {
        self.xs.len().min(self.ys.len())
    }

    fn weight(&self, i: usize) -> f32 {
        self.ws.get(i).copied().unwrap_or(1.0)
    }

    /// Visiting period of example `i` (see [`SgdParams::thin`]).
    fn period(&self, i: usize, thin: usize) -> usize {
        let w = self.weight(i);
        if w >= 1.0 || w <= 0.0 || !w.is_finite() {
            1
        } else {
            ((1.0 / w) as usize).clamp(1, thin.max(1))
        }
    }
}

/// Fits a [`Linear`] of `features × classes` to `data`.
pub fn train(data: Data<'_>, features: usize, classes: usize, p: &SgdParams) -> Linear {
    let mut m = Linear::zeros(features, classes);
    let (xs, ys) = (data.xs, data.ys);
    let n = data.len();
    if n == 0 || classes == 0 {
        return m;
    }
    let periods: Vec<usize> = (0..n).map(|i| data.period(i, p.thin)).collect();
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut rng = Rng(p.seed | 1);
    let mut scale = 1.0f32;
    let stride = m.stride;
    let mut z = vec![0.0f32; stride];
    let mut t = 0.0f32;
    for epoch in 0..p.epochs {
        order.clear();
        order.extend((0..n).filter(|&i| (epoch + i) % periods[i] == 0));
        rng.shuffle(&mut order);
        for &i in &order {
            let (x, y) = (&xs[i], ys[i]);
            let eta = p.step / (1.0 + p.step * p.l2 * t);
            t += 1.0;
            z.copy_from_slice(&m.b);
            add_rows(&m.w, stride, x, scale, &mut z);
            softmax(&mut z[..classes]);
            z[classes..].iter_mut().for_each(|v| *v = 0.0);
            if let Some(zy) = z[..classes].get_mut(y) {
                *zy -= 1.0;
            }
            scale *= (1.0 - eta * p.l2).max(0.01);
            if scale < 1e-3 {
                m.w.iter_mut().for_each(|v| *v *= scale);
                scale = 1.0;
            }
            let w = data.weight(i) * periods[i] as f32;
            for g in z.iter_mut() {
                *g *= -eta * w;
            }
            add_outer(&mut m.w, stride, x, &z, 1.0 / scale);
            for (b, g) in m.b.iter_mut().zip(&z) {
                *b += g;
            }
        }
    }
    m.w.iter_mut().for_each(|v| *v *= scale);
    m
}

/// `W[j] += s · x_j · g` for every feature `j` of `x`.
fn add_outer(w: &mut [f32], k: usize, x: &SparseVec, g: &[f32], s: f32) {
    for (&j, &xj) in x.idx.iter().zip(&x.val) {
        let from = j as usize * k;
        if let Some(row) = w.get_mut(from..from + k) {
            let a = s * xj;
            for (wv, gv) in row.iter_mut().zip(g) {
                *wv += a * gv;
            }
        }
    }
}

/// Full-batch Nesterov-accelerated gradient descent on the same objective (reference solver).
#[cfg(test)]
fn train_batch(
    xs: &[SparseVec],
    ys: &[usize],
    features: usize,
    classes: usize,
    p: &SgdParams,
) -> Linear {
    let n = xs.len().min(ys.len());
    let mut cur = Linear::zeros(features, classes);
    let k = cur.stride;
    if n == 0 || k == 0 {
        return cur;
    }
    let mut look = cur.clone();
    let mut grad = Linear::zeros(features, classes);
    let mut z = vec![0.0f32; k];
    for it in 0..p.epochs {
        grad.w.iter_mut().for_each(|v| *v = 0.0);
        grad.b.iter_mut().for_each(|v| *v = 0.0);
        for (x, &y) in xs.iter().zip(ys) {
            z.copy_from_slice(&look.b);
            add_rows(&look.w, k, x, 1.0, &mut z);
            softmax(&mut z[..classes]);
            z[classes..].iter_mut().for_each(|v| *v = 0.0);
            if let Some(zy) = z[..classes].get_mut(y) {
                *zy -= 1.0;
            }
            add_outer(&mut grad.w, k, x, &z, 1.0 / n as f32);
            for (b, g) in grad.b.iter_mut().zip(&z) {
                *b += g / n as f32;
            }
        }
        let mom = it as f32 / (it as f32 + 3.0);
        for ((c, l), g) in cur.w.iter_mut().zip(look.w.iter_mut()).zip(&grad.w) {
            let next = *l - p.step * (g + p.l2 * *l);
            *l = next + mom * (next - *c);
            *c = next;
        }
        for ((c, l), g) in cur.b.iter_mut().zip(look.b.iter_mut()).zip(&grad.b) {
            let next = *l - p.step * g;
            *l = next + mom * (next - *c);
            *c = next;
        }
    }
    cur
}

/// Mean cross-entropy + l2/2‖W‖² of a model (unweighted; for tests and diagnostics).
pub fn objective(m: &Linear, xs: &[SparseVec], ys: &[usize], l2: f32) -> f32 {
    let n = xs.len().max(1) as f32;
    let mut loss = 0.0;
    for (x, &y) in xs.iter().zip(ys) {
        let mut z = m.logits(x);
        softmax(&mut z);
        loss -= z.get(y).copied().unwrap_or(0.0).max(1e-30).ln();
    }
    loss / n + 0.5 * l2 * m.w.iter().map(|v| v * v).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sv(pairs: &[(u32, f32)]) -> SparseVec {
        SparseVec {
            idx: pairs.iter().map(|p| p.0).collect(),
            val: pairs.iter().map(|p| p.1).collect(),
        }
    }

    fn data<'a>(xs: &'a [SparseVec], ys: &'a [usize]) -> Data<'a> {
        Data { xs, ys, ws: &[] }
    }

    fn examples() -> (Vec<SparseVec>, Vec<usize>) {
        let xs = vec![
            sv(&[(0, 0.8), (1, 0.6)]),
            sv(&[(0, 1.0)]),
            sv(&[(2, 0.6), (3, 0.8)]),
            sv(&[(3, 1.0)]),
            sv(&[(4, 1.0)]),
        ];
        (xs, vec![0, 0, 1, 1, 2])
    }

    fn params() -> SgdParams {
        SgdParams {
            l2: 1e-3,
            epochs: 50,
            step: 0.5,
            seed: 7,
            thin: 1,
        }
    }

    #[test]
    fn softmax_sums_to_one_and_survives_garbage() {
        let mut z = vec![1.0, 2.0, 3.0];
        softmax(&mut z);
        assert!((z.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(z[2] > z[1] && z[1] > z[0]);
        let mut bad = vec![f32::NAN, f32::NEG_INFINITY];
        softmax(&mut bad);
        assert_eq!(bad, vec![0.5, 0.5]);
    }

    #[test]
    fn sgd_learns_separable_data_and_lowers_the_objective() {
        let (xs, ys) = examples();
        let m = train(data(&xs, &ys), 5, 3, &params());
        for (x, &y) in xs.iter().zip(&ys) {
            let z = m.logits(x);
            let best = (0..3).max_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap();
            assert_eq!(best, y);
        }
        let zero = Linear::zeros(5, 3);
        assert!(objective(&m, &xs, &ys, 1e-3) < 0.5 * objective(&zero, &xs, &ys, 1e-3));
    }

    #[test]
    fn training_is_deterministic_and_batch_agrees() {
        let (xs, ys) = examples();
        let a = train(data(&xs, &ys), 5, 3, &params());
        let b = train(data(&xs, &ys), 5, 3, &params());
        assert_eq!(a, b);
        let full = train_batch(
            &xs,
            &ys,
            5,
            3,
            &SgdParams {
                epochs: 300,
                step: 1.0,
                ..params()
            },
        );
        let (oa, ob) = (
            objective(&a, &xs, &ys, 1e-3),
            objective(&full, &xs, &ys, 1e-3),
        );
        assert!((oa - ob).abs() < 0.1, "{oa} vs {ob}");
    }

    #[test]
    fn out_of_range_features_are_ignored() {
        let m = Linear::zeros(2, 2);
        assert_eq!(m.logits(&sv(&[(9, 1.0)])), vec![0.0, 0.0]);
    }
}
