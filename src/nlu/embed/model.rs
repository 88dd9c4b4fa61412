//! BERT encoder (the MiniLM architecture) on candle: config parsing, weight loading and the
//! forward pass, CPU and f32 only.
//!
//! Invariants:
//! - Only what sentence embedding needs is loaded: embeddings and encoder layers (no pooler,
//!   no heads). Weight names follow the HuggingFace `BertModel` layout, with or without a
//!   leading `bert.` prefix; every tensor's shape is checked against `config.json` at load.
//! - `forward` takes right-padded ids plus a 0/1 mask and returns the last hidden state;
//!   padded positions never influence real ones (masked keys get a large negative bias), so a
//!   text's hidden states are the same whatever else is in its batch.
//! - Token-type ids are always 0 (single-sentence input).

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

use super::error::{EmbedError, ModelContext};

/// Bias added to attention scores of padded keys; `exp` of it underflows to exactly 0.
const MASKED_SCORE: f64 = -1.0e9;

/// The subset of a HuggingFace BERT `config.json` this encoder needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size (rows of the word-embedding table).
    pub vocab_size: usize,
    /// Hidden (and output embedding) size.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Feed-forward inner size.
    pub intermediate_size: usize,
    /// Feed-forward activation; only the exact (erf) `gelu` is supported.
    pub hidden_act: String,
    /// Rows of the position-embedding table (an upper bound on sequence length).
    pub max_position_embeddings: usize,
    /// Rows of the token-type table.
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Only `absolute` position embeddings are supported.
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".to_string()
}

impl BertConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, EmbedError> {
        let text = std::fs::read_to_string(path).map_err(|source| EmbedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| EmbedError::Config {
            path: path.to_path_buf(),
            message,
        };
        let config: Self = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// Checks the architecture is one this encoder implements.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be positive"));
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!("unsupported hidden_act {:?}", self.hidden_act));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "unsupported position_embedding_type {:?}",
                self.position_embedding_type
            ));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return Err("layer_norm_eps must be a positive number".to_string());
        }
        Ok(())
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// Word + position + token-type embeddings followed by LayerNorm.
struct Embeddings {
    word: Embedding,
    position: Tensor,
    token_type0: Tensor,
    norm: LayerNorm,
}

impl Embeddings {
    fn load(cfg: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        let word = vb.get((cfg.vocab_size, h), "word_embeddings.weight")?;
        let position = vb.get(
            (cfg.max_position_embeddings, h),
            "position_embeddings.weight",
        )?;
        let token_type = vb.get((cfg.type_vocab_size, h), "token_type_embeddings.weight")?;
        Ok(Self {
            word: Embedding::new(word, h),
            position,
            token_type0: token_type.get(0)?,
            norm: candle_nn::layer_norm(h, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (_, seq_len) = ids.dims2()?;
        let positions = self.position.narrow(0, 0, seq_len)?;
        let x = self
            .word
            .forward(ids)?
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type0)?;
        self.norm.forward(&x)
    }
}

/// One transformer layer: self-attention and feed-forward, each with residual + LayerNorm.
struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    ffn_norm: LayerNorm,
    heads: usize,
    head_dim: usize,
}

impl Layer {
    fn load(cfg: &BertConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        let attn = vb.pp("attention");
        let self_attn = attn.pp("self");
        // Query, key and value are fused into one (3h × h) projection: one matmul, not three.
        let mut weights = Vec::with_capacity(3);
        let mut biases = Vec::with_capacity(3);
        for name in ["query", "key", "value"] {
            weights.push(self_attn.get((h, h), &format!("{name}.weight"))?);
            biases.push(self_attn.get(h, &format!("{name}.bias"))?);
        }
        let qkv = Linear::new(Tensor::cat(&weights, 0)?, Some(Tensor::cat(&biases, 0)?));
        let eps = cfg.layer_norm_eps;
        Ok(Self {
            qkv,
            attn_out: candle_nn::linear(h, h, attn.pp("output.dense"))?,
            attn_norm: candle_nn::layer_norm(h, eps, attn.pp("output.LayerNorm"))?,
            ffn_in: candle_nn::linear(h, cfg.intermediate_size, vb.pp("intermediate.dense"))?,
            ffn_out: candle_nn::linear(cfg.intermediate_size, h, vb.pp("output.dense"))?,
            ffn_norm: candle_nn::layer_norm(h, eps, vb.pp("output.LayerNorm"))?,
            heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// `x`: (batch, seq, hidden); `mask_bias`: (batch, 1, 1, seq) with 0 or [`MASKED_SCORE`].
    fn forward(&self, x: &Tensor, mask_bias: &Tensor) -> candle_core::Result<Tensor> {
        let attended = self.attention(x, mask_bias)?;
        let x = self
            .attn_norm
            .forward(&(self.attn_out.forward(&attended)? + x)?)?;
        let inner = self.ffn_in.forward(&x)?.gelu_erf()?;
        self.ffn_norm.forward(&(self.ffn_out.forward(&inner)? + x)?)
    }

    fn attention(&self, x: &Tensor, mask_bias: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, h) = x.dims3()?;
        // (b, s, 3h) -> (3, b, heads, s, head_dim)
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((b, s, 3, self.heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let q = (qkv.get(0)? * scale)?;
        let k = qkv.get(1)?;
        let v = qkv.get(2)?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(mask_bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, s, h))
    }
}

/// A loaded BERT encoder.
pub struct BertEncoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    config: BertConfig,
    device: Device,
}

impl std::fmt::Debug for BertEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEncoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BertEncoder {
    /// Loads weights from a safetensors file (any float dtype; converted to f32 on the CPU).
    pub fn load(weights: &Path, config: BertConfig) -> Result<Self, EmbedError> {
        let bytes = std::fs::read(weights).map_err(|source| EmbedError::Io {
            path: weights.to_path_buf(),
            source,
        })?;
        let context = format!("loading {}", weights.display());
        Self::from_safetensors_bytes(bytes, config).map_err(|e| match e {
            EmbedError::Model { source, .. } => EmbedError::model(context, source),
            other => other,
        })
    }

    /// Loads weights from an in-memory safetensors buffer.
    pub fn from_safetensors_bytes(bytes: Vec<u8>, config: BertConfig) -> Result<Self, EmbedError> {
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
            .ctx("parsing safetensors")?;
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") {
            vb
        } else {
            vb.pp("bert")
        };
        let embeddings = Embeddings::load(&config, vb.pp("embeddings")).ctx("reading weights")?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(&config, vb.pp(format!("encoder.layer.{i}"))))
            .collect::<candle_core::Result<Vec<_>>>()
            .ctx("reading weights")?;
        Ok(Self {
            embeddings,
            layers,
            config,
            device,
        })
    }

    /// The architecture this encoder was loaded with.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The device tensors live on (always the CPU).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the encoder. `ids`: (batch, seq) u32; `mask`: (batch, seq) f32 of 0/1.
    /// Returns the last hidden state, (batch, seq, hidden) f32.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor, EmbedError> {
        let (_, seq_len) = ids.dims2().ctx("checking input ids")?;
        if seq_len > self.config.max_position_embeddings {
            return Err(EmbedError::model(
                "checking input length",
                candle_core::Error::Msg(format!(
                    "{seq_len} tokens exceed max_position_embeddings {}",
                    self.config.max_position_embeddings
                )),
            ));
        }
        self.forward_inner(ids, mask).ctx("running the encoder")
    }

    fn forward_inner(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        // (b, s) 1/0 -> (b, 1, 1, s) 0/MASKED_SCORE
        let mask_bias = ((mask.affine(1.0, -1.0)? * -MASKED_SCORE)?)
            .unsqueeze(1)?
            .unsqueeze(1)?
            .contiguous()?;
        let mut x = self.embeddings.forward(ids)?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask_bias)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{tiny_config, tiny_weights};
    use super::*;

    fn run(enc: &BertEncoder, ids: Vec<u32>, mask: Vec<f32>, b: usize) -> Vec<Vec<Vec<f32>>> {
        let s = ids.len() / b;
        let ids = Tensor::from_vec(ids, (b, s), &Device::Cpu).unwrap();
        let mask = Tensor::from_vec(mask, (b, s), &Device::Cpu).unwrap();
        enc.forward(&ids, &mask).unwrap().to_vec3().unwrap()
    }

    #[test]
    fn padding_does_not_change_real_positions() {
        let cfg = tiny_config();
        let enc = BertEncoder::from_safetensors_bytes(tiny_weights(&cfg, ""), cfg).unwrap();
        let alone = run(&enc, vec![2, 5, 6, 3], vec![1.0; 4], 1);
        let padded = run(
            &enc,
            vec![2, 5, 6, 3, 0, 0, 2, 7, 8, 9, 10, 3],
            vec![1., 1., 1., 1., 0., 0., 1., 1., 1., 1., 1., 1.],
            2,
        );
        for (a, p) in alone[0].iter().zip(&padded[0][..4]) {
            for (x, y) in a.iter().zip(p) {
                assert!((x - y).abs() < 1e-5, "{x} vs {y}");
            }
        }
        // LayerNorm output with unit-ish weights is not all zeros.
        assert!(alone[0][1].iter().any(|v| v.abs() > 1e-3));
    }

    #[test]
    fn bert_prefix_is_accepted_and_matches() {
        let cfg = tiny_config();
        let plain = BertEncoder::from_safetensors_bytes(tiny_weights(&cfg, ""), cfg.clone());
        let prefixed = BertEncoder::from_safetensors_bytes(tiny_weights(&cfg, "bert."), cfg);
        let a = run(&plain.unwrap(), vec![2, 4, 3], vec![1.0; 3], 1);
        let b = run(&prefixed.unwrap(), vec![2, 4, 3], vec![1.0; 3], 1);
        assert_eq!(a, b);
    }

    #[test]
    fn wrong_shapes_and_corrupt_files_are_errors() {
        let cfg = tiny_config();
        let mut bigger = cfg.clone();
        bigger.hidden_size = 16;
        let err = BertEncoder::from_safetensors_bytes(tiny_weights(&cfg, ""), bigger).unwrap_err();
        assert!(matches!(err, EmbedError::Model { .. }), "{err}");
        let err =
            BertEncoder::from_safetensors_bytes(b"garbage".to_vec(), cfg.clone()).unwrap_err();
        assert!(err.to_string().contains("parsing safetensors"), "{err}");
        let err = BertEncoder::load(Path::new("/nonexistent/model.safetensors"), cfg).unwrap_err();
        assert!(matches!(err, EmbedError::Io { .. }), "{err}");
    }

    #[test]
    fn too_long_input_is_an_error_not_a_panic() {
        let cfg = tiny_config();
        let enc = BertEncoder::from_safetensors_bytes(tiny_weights(&cfg, ""), cfg).unwrap();
        let ids = Tensor::zeros((1, 13), DType::U32, &Device::Cpu).unwrap();
        let mask = Tensor::ones((1, 13), DType::F32, &Device::Cpu).unwrap();
        let err = enc.forward(&ids, &mask).unwrap_err();
        assert!(err.to_string().contains("max_position_embeddings"), "{err}");
    }

    #[test]
    fn config_validation() {
        let mut cfg = tiny_config();
        assert!(cfg.validate().is_ok());
        cfg.num_attention_heads = 3;
        assert!(cfg.validate().unwrap_err().contains("divisible"));
        let mut cfg = tiny_config();
        cfg.hidden_act = "relu".into();
        assert!(cfg.validate().unwrap_err().contains("hidden_act"));
        let err = BertConfig::from_file(Path::new("/nonexistent/config.json")).unwrap_err();
        assert!(matches!(err, EmbedError::Io { .. }));
    }
}
