//! In-process sentence embeddings (sentence-transformers/all-MiniLM-L6-v2 on candle, CPU, f32)
//! for the NLU, plus an async batching/caching front and an intent classifier over the
//! embeddings. Compiled only with the `embeddings` cargo feature.
//!
//! Layout:
//! - [`tokenize`]: `tokenizer.json` → padded id batches (BatchLongest padding, truncation 256).
//! - [`model`]: BERT config, weight loading (safetensors) and the forward pass.
//! - [`pooling`]: attention-mask-aware mean pooling and L2 normalisation.
//! - [`service`]: [`EmbeddingService`], micro-batching + exact-text LRU cache ([`cache`]).
//! - [`classifier`]: [`EmbeddingClassifier`], multinomial logistic regression.
//!
//! Invariants of [`Embedder`]: outputs are unit-length [`Embedder::dim`]-float vectors, one per
//! input text in input order; a text's embedding does not depend on the other texts in its
//! batch (up to float rounding); texts are truncated to [`Embedder::max_tokens`] tokens. The
//! model directory is the one produced by `scripts/fetch-minilm.sh`.

pub mod cache;
pub mod classifier;
pub mod error;
pub mod model;
pub mod pooling;
pub mod service;
pub mod tokenize;

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod test_support;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Tensor};
use serde::Deserialize;

pub use cache::SharedEmbedding;
pub use classifier::EmbeddingClassifier;
pub use error::EmbedError;
pub use service::{EmbeddingService, ServiceOptions};

use error::ModelContext;
use model::{BertConfig, BertEncoder};
use tokenize::TextEncoder;

/// Token limit used when the model directory has no `sentence_bert_config.json`
/// (all-MiniLM-L6-v2 was trained with 256).
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// Most texts run through the encoder at once. Larger inputs to [`Embedder::embed`] are
/// sorted by length and split into passes of this size: that bounds memory and cuts padding
/// (measured ~25% faster for 64 short messages than one 64-row pass).
pub const MAX_FORWARD_BATCH: usize = 16;

/// `sentence_bert_config.json`: the sequence length the sentence model was trained with.
#[derive(Debug, Deserialize)]
struct SentenceConfig {
    max_seq_length: usize,
}

/// `1_Pooling/config.json`: only mean pooling is implemented.
#[derive(Debug, Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

/// A loaded sentence-embedding model (tokenizer + encoder). `Send + Sync`: share it in an
/// `Arc` and call [`embed`](Self::embed) from any thread (blocking, CPU-bound).
pub struct Embedder {
    encoder: TextEncoder,
    model: BertEncoder,
    forward_passes: AtomicU64,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dim", &self.dim())
            .field("max_tokens", &self.max_tokens())
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `dir` (CPU, f32).
    /// `sentence_bert_config.json` and `1_Pooling/config.json` are honoured when present.
    /// Missing or corrupt files give an error naming the file.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let started = std::time::Instant::now();
        let config = BertConfig::from_file(&dir.join("config.json"))?;
        check_pooling(&dir.join("1_Pooling").join("config.json"))?;
        let max_tokens = read_max_tokens(&dir.join("sentence_bert_config.json"))?
            .min(config.max_position_embeddings);
        let encoder = TextEncoder::from_file(&dir.join("tokenizer.json"), max_tokens)?;
        let model = BertEncoder::load(&dir.join("model.safetensors"), config)?;
        tracing::info!(
            dir = %dir.display(),
            dim = model.config().hidden_size,
            max_tokens,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded sentence-embedding model"
        );
        Ok(Self::from_parts(encoder, model))
    }

    /// Assembles an embedder from an already configured tokenizer and encoder.
    pub fn from_parts(encoder: TextEncoder, model: BertEncoder) -> Self {
        Self {
            encoder,
            model,
            forward_passes: AtomicU64::new(0),
        }
    }

    /// Mean-pooled (attention-mask aware), L2-normalised embeddings, one per text, in input
    /// order. Up to [`MAX_FORWARD_BATCH`] texts run in one padded forward pass; more are
    /// grouped by length into several passes. Empty input gives an empty output.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.len() <= MAX_FORWARD_BATCH {
            return self.embed_batch(texts);
        }
        // Group similar lengths so each pass pads as little as possible.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(MAX_FORWARD_BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, vector) in chunk.iter().zip(self.embed_batch(&batch)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    /// Embedding size (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.model.config().hidden_size
    }

    /// Token limit per text (including `[CLS]`/`[SEP]`); longer texts are truncated.
    pub fn max_tokens(&self) -> usize {
        self.encoder.max_tokens()
    }

    /// Number of encoder forward passes run so far (for metrics and tests).
    pub fn forward_passes(&self) -> u64 {
        self.forward_passes.load(Ordering::Relaxed)
    }

    /// One forward pass over `texts` (at most [`MAX_FORWARD_BATCH`] of them).
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let tokens = self.encoder.encode_batch(texts)?;
        if tokens.batch == 0 {
            return Ok(Vec::new());
        }
        let shape = (tokens.batch, tokens.seq_len);
        let device = self.model.device();
        let ids = Tensor::from_vec(tokens.ids, shape, device).ctx("building the id tensor")?;
        let mask = Tensor::from_vec(tokens.mask, shape, device)
            .and_then(|m| m.to_dtype(DType::F32))
            .ctx("building the mask tensor")?;
        self.forward_passes.fetch_add(1, Ordering::Relaxed);
        let hidden = self.model.forward(&ids, &mask)?;
        pooling::mean_pool(&hidden, &mask)
            .and_then(|pooled| pooling::l2_normalize(&pooled))
            .and_then(|normed| normed.to_vec2::<f32>())
            .ctx("pooling")
    }
}

/// Reads `max_seq_length` from `sentence_bert_config.json`, or [`DEFAULT_MAX_TOKENS`] when the
/// file does not exist.
fn read_max_tokens(path: &Path) -> Result<usize, EmbedError> {
    let Some(config) = read_optional_json::<SentenceConfig>(path)? else {
        return Ok(DEFAULT_MAX_TOKENS);
    };
    if config.max_seq_length < 2 {
        return Err(EmbedError::Config {
            path: path.to_path_buf(),
            message: format!("max_seq_length {} is too small", config.max_seq_length),
        });
    }
    Ok(config.max_seq_length)
}

/// Fails when `1_Pooling/config.json` exists and asks for something other than mean pooling.
fn check_pooling(path: &Path) -> Result<(), EmbedError> {
    match read_optional_json::<PoolingConfig>(path)? {
        Some(cfg) if !cfg.pooling_mode_mean_tokens => Err(EmbedError::Config {
            path: path.to_path_buf(),
            message: "only mean pooling (pooling_mode_mean_tokens) is supported".into(),
        }),
        _ => Ok(()),
    }
}

/// Parses a JSON file that may legitimately be absent.
fn read_optional_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<T>, EmbedError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(EmbedError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| EmbedError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::test_support::tiny_embedder;
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn embedder_is_send_and_sync() {
        assert_send_sync::<Embedder>();
        assert_send_sync::<EmbeddingService>();
    }

    #[test]
    fn outputs_are_unit_length_and_in_order() {
        let e = tiny_embedder();
        let out = e.embed(&["hello", "book a visit", ""]).unwrap();
        assert_eq!(out.len(), 3);
        for v in &out {
            assert_eq!(v.len(), e.dim());
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        }
        let alone = e.embed(&["book a visit"]).unwrap();
        assert!(pooling::cosine(&alone[0], &out[1]) > 0.99999);
        let c = pooling::cosine(&out[0], &out[1]);
        assert!(
            c < 0.9999,
            "different texts, different vectors: {c} {out:?}"
        );
        assert!(e.embed(&[]).unwrap().is_empty());
        assert_eq!(e.forward_passes(), 2);
    }

    #[test]
    fn large_inputs_are_chunked_but_keep_order() {
        let e = tiny_embedder();
        let words = ["hello", "world hello world", "a", "book a visit visits"];
        let texts: Vec<&str> = (0..MAX_FORWARD_BATCH + 10).map(|i| words[i % 4]).collect();
        let out = e.embed(&texts).unwrap();
        assert_eq!(out.len(), texts.len());
        assert_eq!(e.forward_passes(), 2);
        let reference = e.embed(&words).unwrap();
        for (i, v) in out.iter().enumerate() {
            assert!(pooling::cosine(v, &reference[i % 4]) > 0.99999, "text {i}");
        }
    }

    #[test]
    fn missing_directory_names_the_file() {
        let err = Embedder::load(Path::new("/nonexistent/minilm")).unwrap_err();
        assert!(matches!(err, EmbedError::Io { .. }), "{err}");
        assert!(
            err.to_string().contains("/nonexistent/minilm/config.json"),
            "{err}"
        );
    }

    #[test]
    fn optional_configs() {
        let dir = std::env::temp_dir().join(format!("embed-optcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sbert = dir.join("sentence_bert_config.json");
        assert_eq!(read_max_tokens(&sbert).unwrap(), DEFAULT_MAX_TOKENS);
        std::fs::write(&sbert, r#"{"max_seq_length": 128, "do_lower_case": false}"#).unwrap();
        assert_eq!(read_max_tokens(&sbert).unwrap(), 128);
        std::fs::write(&sbert, "{oops").unwrap();
        assert!(matches!(
            read_max_tokens(&sbert),
            Err(EmbedError::Config { .. })
        ));
        let pooling = dir.join("pooling.json");
        assert!(check_pooling(&pooling).is_ok());
        std::fs::write(&pooling, r#"{"pooling_mode_cls_token": true}"#).unwrap();
        assert!(check_pooling(&pooling).is_err());
        std::fs::write(&pooling, r#"{"pooling_mode_mean_tokens": true}"#).unwrap();
        assert!(check_pooling(&pooling).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
