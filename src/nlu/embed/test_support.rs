//! Test-only fixtures: a tiny WordPiece tokenizer, a tiny random BERT and an [`Embedder`]
//! built from them, so batching/caching/loading logic is tested without the real model.
//!
//! Invariant: fixtures are deterministic (fixed-seed weights), so tests asserting exact
//! values stay stable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{Device, Tensor};

use super::model::{BertConfig, BertEncoder};
use super::tokenize::TextEncoder;
use super::Embedder;

/// A tiny WordPiece tokenizer in the same shape as the MiniLM one, including the
/// problematic fixed padding / 128 truncation.
pub fn tiny_tokenizer_json(fixed_pad: usize) -> String {
    format!(
        r###"{{
  "version": "1.0",
  "truncation": {{"max_length": {fixed_pad}, "strategy": "LongestFirst", "stride": 0}},
  "padding": {{"strategy": {{"Fixed": {fixed_pad}}}, "direction": "Right",
    "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}},
  "added_tokens": [],
  "normalizer": {{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
    "strip_accents": null, "lowercase": true}},
  "pre_tokenizer": {{"type": "BertPreTokenizer"}},
  "post_processor": {{"type": "TemplateProcessing",
    "single": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}},
               {{"Sequence": {{"id": "A", "type_id": 0}}}},
               {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}],
    "pair": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}},
         {{"Sequence": {{"id": "A", "type_id": 0}}}},
         {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}},
         {{"Sequence": {{"id": "B", "type_id": 1}}}},
         {{"SpecialToken": {{"id": "[SEP]", "type_id": 1}}}}],
    "special_tokens": {{"[CLS]": {{"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}},
                    "[SEP]": {{"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}}}}},
  "decoder": null,
  "model": {{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
    "max_input_chars_per_word": 100,
    "vocab": {{"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5,
           "book": 6, "a": 7, "visit": 8, "##s": 9}}}}
}}"###
    )
}

/// A 2-layer, 8-dim, 2-head BERT config whose vocabulary covers the tiny tokenizer.
pub fn tiny_config() -> BertConfig {
    BertConfig {
        vocab_size: 11,
        hidden_size: 8,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 16,
        hidden_act: "gelu".into(),
        max_position_embeddings: 12,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        position_embedding_type: "absolute".into(),
    }
}

/// Deterministic pseudo-random weights for every tensor the encoder needs.
pub fn tiny_weights(cfg: &BertConfig, prefix: &str) -> Vec<u8> {
    let mut seed = 7u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            vec![cfg.vocab_size, h],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![cfg.max_position_embeddings, h],
        ),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{l}.");
        for (name, shape) in [
            ("attention.self.query.weight", vec![h, h]),
            ("attention.self.query.bias", vec![h]),
            ("attention.self.key.weight", vec![h, h]),
            ("attention.self.key.bias", vec![h]),
            ("attention.self.value.weight", vec![h, h]),
            ("attention.self.value.bias", vec![h]),
            ("attention.output.dense.weight", vec![h, h]),
            ("attention.output.dense.bias", vec![h]),
            ("attention.output.LayerNorm.weight", vec![h]),
            ("attention.output.LayerNorm.bias", vec![h]),
            ("intermediate.dense.weight", vec![i, h]),
            ("intermediate.dense.bias", vec![i]),
            ("output.dense.weight", vec![h, i]),
            ("output.dense.bias", vec![h]),
            ("output.LayerNorm.weight", vec![h]),
            ("output.LayerNorm.bias", vec![h]),
        ] {
            shapes.push((format!("{p}{name}"), shape));
        }
    }
    let tensors: HashMap<String, Tensor> = shapes
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            // LayerNorm gains near 1 and small biases, so outputs depend on the input.
            let (scale, offset) = if name.ends_with("LayerNorm.weight") {
                (0.2, 1.0)
            } else if name.ends_with("LayerNorm.bias") {
                (0.05, 0.0)
            } else {
                (1.0, 0.0)
            };
            let data: Vec<f32> = (0..n).map(|_| offset + scale * next()).collect();
            let t = Tensor::from_vec(data, shape, &Device::Cpu).unwrap();
            (format!("{prefix}{name}"), t)
        })
        .collect();
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "embed-model-test-{}-{}.safetensors",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

/// An [`Embedder`] over the tiny tokenizer and tiny random model (8-dim output).
pub fn tiny_embedder() -> Embedder {
    let cfg = tiny_config();
    let encoder = TextEncoder::from_bytes(tiny_tokenizer_json(16).as_bytes(), 10).unwrap();
    let model = BertEncoder::from_safetensors_bytes(tiny_weights(&cfg, ""), cfg).unwrap();
    Embedder::from_parts(encoder, model)
}
