//! Sentence pooling: attention-mask-aware mean over tokens, then L2 normalisation.
//!
//! Invariants: padded positions (mask 0) contribute nothing to the mean; a row whose mask is
//! all zero (never produced by the tokenizer, which always adds `[CLS]`/`[SEP]`) yields a zero
//! vector instead of NaN; normalised rows have unit length unless they are all zero.

use candle_core::{Tensor, D};

/// Divisor floor for the token count and the vector norm (avoids division by zero).
const EPS: f64 = 1e-12;

/// Mean of `hidden` (batch, seq, dim) over the positions where `mask` (batch, seq; 0/1 f32)
/// is 1. Returns (batch, dim).
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.unsqueeze(D::Minus1)?; // (b, s, 1)
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (b, dim)
    let counts = mask.sum(1)?.maximum(EPS)?; // (b, 1)
    summed.broadcast_div(&counts)
}

/// Scales every row of `x` (batch, dim) to unit L2 norm.
pub fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    let norms = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(EPS)?;
    x.broadcast_div(&norms)
}

/// Cosine similarity of two equal-length vectors (0 when either is all zeros or the lengths
/// differ).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na * nb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn mean_ignores_padding() {
        let hidden = Tensor::from_vec(
            vec![
                1f32, 2., 3., 4., 100., 100., /* row 2 */ 2., 2., 4., 6., 8., 10.,
            ],
            (2, 3, 2),
            &Device::Cpu,
        )
        .unwrap();
        let mask = Tensor::from_vec(vec![1f32, 1., 0., 0., 1., 1.], (2, 3), &Device::Cpu).unwrap();
        let pooled: Vec<Vec<f32>> = mean_pool(&hidden, &mask).unwrap().to_vec2().unwrap();
        assert_eq!(pooled, vec![vec![2.0, 3.0], vec![6.0, 8.0]]);
    }

    #[test]
    fn all_zero_mask_gives_zero_not_nan() {
        let hidden = Tensor::ones((1, 2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let mask = Tensor::zeros((1, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let pooled = mean_pool(&hidden, &mask).unwrap();
        let normed: Vec<Vec<f32>> = l2_normalize(&pooled).unwrap().to_vec2().unwrap();
        assert_eq!(normed, vec![vec![0.0, 0.0, 0.0]]);
    }

    #[test]
    fn rows_get_unit_norm() {
        let x = Tensor::from_vec(vec![3f32, 4., 0., -2.], (2, 2), &Device::Cpu).unwrap();
        let n: Vec<Vec<f32>> = l2_normalize(&x).unwrap().to_vec2().unwrap();
        assert_eq!(n, vec![vec![0.6, 0.8], vec![0.0, -1.0]]);
    }

    #[test]
    fn cosine_basics() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
    }
}
