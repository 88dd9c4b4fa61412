//! Text → token-id batches for the encoder, wrapping a HuggingFace `tokenizer.json`.
//!
//! Invariants:
//! - Whatever padding/truncation the file ships with is replaced at load time: padding is
//!   `BatchLongest` (pad to the longest text in the batch, never a fixed length) and
//!   truncation keeps at most `max_tokens` tokens (special tokens included). The packaged
//!   MiniLM tokenizer pads *and* truncates to 128, which both changes results for long texts
//!   and makes short texts several times slower, so this reset is essential.
//! - A [`TokenBatch`] is rectangular: `ids.len() == mask.len() == batch * seq_len`.
//! - Inputs longer than [`MAX_INPUT_BYTES`] are cut (at a char boundary) before tokenizing, to
//!   bound the work an adversarially long message can cause; this only matters for texts far
//!   beyond the token limit anyway.

use std::path::Path;

use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

use super::error::EmbedError;

/// Longest input (in bytes) handed to the tokenizer; anything after it is ignored.
pub const MAX_INPUT_BYTES: usize = 32 * 1024;

/// A rectangular, right-padded batch of token ids with its attention mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// Row-major token ids, `batch * seq_len` entries.
    pub ids: Vec<u32>,
    /// Row-major attention mask (1 = real token, 0 = padding), same shape as `ids`.
    pub mask: Vec<u32>,
    /// Number of texts.
    pub batch: usize,
    /// Tokens per row (the longest text in the batch, after truncation).
    pub seq_len: usize,
}

/// A configured tokenizer: BatchLongest padding, truncation at `max_tokens`.
pub struct TextEncoder {
    tokenizer: Tokenizer,
    max_tokens: usize,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder")
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

impl TextEncoder {
    /// Reads `tokenizer.json` at `path` and configures it for sentence embedding.
    pub fn from_file(path: &Path, max_tokens: usize) -> Result<Self, EmbedError> {
        let bytes = std::fs::read(path).map_err(|source| EmbedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, max_tokens)
            .map_err(|e| EmbedError::Tokenizer(format!("{}: {e}", path.display())))
    }

    /// Parses a `tokenizer.json` document and configures it (see the module invariants).
    pub fn from_bytes(json: &[u8], max_tokens: usize) -> Result<Self, EmbedError> {
        if max_tokens < 2 {
            return Err(EmbedError::Tokenizer(format!(
                "max_tokens must be at least 2 (got {max_tokens})"
            )));
        }
        let mut tokenizer =
            Tokenizer::from_bytes(json).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let padding = batch_longest_padding(&tokenizer);
        tokenizer.with_padding(Some(padding));
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(Self {
            tokenizer,
            max_tokens,
        })
    }

    /// Maximum number of tokens per text (including `[CLS]`/`[SEP]`).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Tokenizes `texts` into one padded batch. An empty slice gives an empty batch.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<TokenBatch, EmbedError> {
        if texts.is_empty() {
            return Ok(TokenBatch {
                ids: Vec::new(),
                mask: Vec::new(),
                batch: 0,
                seq_len: 0,
            });
        }
        let inputs: Vec<&str> = texts.iter().map(|t| clip(t, MAX_INPUT_BYTES)).collect();
        let encodings = self
            .tokenizer
            .encode_batch_fast(inputs, true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let seq_len = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(texts.len() * seq_len);
        let mut mask = Vec::with_capacity(texts.len() * seq_len);
        for enc in &encodings {
            if enc.len() != seq_len || enc.get_attention_mask().len() != seq_len {
                return Err(EmbedError::Tokenizer(format!(
                    "tokenizer produced a ragged batch ({} vs {seq_len} tokens)",
                    enc.len()
                )));
            }
            ids.extend_from_slice(enc.get_ids());
            mask.extend_from_slice(enc.get_attention_mask());
        }
        Ok(TokenBatch {
            ids,
            mask,
            batch: texts.len(),
            seq_len,
        })
    }
}

/// Padding parameters that keep the file's pad token but pad to the longest text only.
fn batch_longest_padding(tokenizer: &Tokenizer) -> PaddingParams {
    let shipped = tokenizer.get_padding().cloned();
    let (pad_id, pad_type_id, pad_token) = match shipped {
        Some(p) => (p.pad_id, p.pad_type_id, p.pad_token),
        None => {
            let token = "[PAD]".to_string();
            (tokenizer.token_to_id(&token).unwrap_or(0), 0, token)
        }
    };
    PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        direction: PaddingDirection::Right,
        pad_to_multiple_of: None,
        pad_id,
        pad_type_id,
        pad_token,
    }
}

/// Returns the longest prefix of `text` that is at most `max_bytes` long and ends on a char
/// boundary.
fn clip(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::tiny_tokenizer_json;
    use super::*;

    #[test]
    fn pads_to_longest_in_batch_not_fixed_length() {
        let enc = TextEncoder::from_bytes(tiny_tokenizer_json(16).as_bytes(), 8).unwrap();
        let batch = enc.encode_batch(&["Hello", "book a visits"]).unwrap();
        assert_eq!(batch.batch, 2);
        assert_eq!(batch.seq_len, 6);
        assert_eq!(batch.ids, vec![2, 4, 3, 0, 0, 0, 2, 6, 7, 8, 9, 3]);
        assert_eq!(batch.mask, vec![1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn truncates_at_configured_length_not_shipped_one() {
        let enc = TextEncoder::from_bytes(tiny_tokenizer_json(4).as_bytes(), 6).unwrap();
        let long = "hello world ".repeat(20);
        let batch = enc.encode_batch(&[&long]).unwrap();
        assert_eq!(batch.seq_len, 6);
        assert_eq!(batch.ids, vec![2, 4, 5, 4, 5, 3]);
        assert_eq!(enc.max_tokens(), 6);
    }

    #[test]
    fn unknown_words_and_empty_text_are_fine() {
        let enc = TextEncoder::from_bytes(tiny_tokenizer_json(16).as_bytes(), 8).unwrap();
        let batch = enc.encode_batch(&["", "zebra"]).unwrap();
        assert_eq!(batch.ids, vec![2, 3, 0, 2, 1, 3]);
        assert_eq!(enc.encode_batch(&[]).unwrap().batch, 0);
    }

    #[test]
    fn corrupt_or_missing_tokenizer_is_an_error() {
        let err = TextEncoder::from_bytes(b"{not json", 8).unwrap_err();
        assert!(matches!(err, EmbedError::Tokenizer(_)), "{err}");
        let err = TextEncoder::from_file(Path::new("/nonexistent/tokenizer.json"), 8).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/tokenizer.json"),
            "{err}"
        );
        let err = TextEncoder::from_bytes(tiny_tokenizer_json(4).as_bytes(), 1).unwrap_err();
        assert!(err.to_string().contains("at least 2"), "{err}");
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("héllo", 3), "hé");
        assert_eq!(clip("abc", 10), "abc");
    }
}
