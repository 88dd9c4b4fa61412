//! Tests against the real all-MiniLM-L6-v2 model: embeddings must match an independent numpy
//! reference (`tests/data/minilm_reference.json`) and behave sensibly (paraphrases closer
//! than unrelated sentences).
//!
//! Invariant: these tests need the model directory named by `SWITCHBOARD_MINILM_DIR`
//! (`scripts/fetch-minilm.sh` creates one); without it they print why and pass vacuously.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use super::pooling::cosine;
use super::{EmbedError, Embedder, EmbeddingService, ServiceOptions};

const MODEL_DIR_VAR: &str = "SWITCHBOARD_MINILM_DIR";
const REFERENCE: &str = include_str!("../../../tests/data/minilm_reference.json");

#[derive(Deserialize)]
struct Reference {
    dim: usize,
    sentences: Vec<ReferenceSentence>,
}

#[derive(Deserialize)]
struct ReferenceSentence {
    text: String,
    embedding: Vec<f32>,
}

/// The shared real model, or `None` (after saying why) when the env var is unset.
fn model(test: &str) -> Option<Arc<Embedder>> {
    static MODEL: OnceLock<Option<Arc<Embedder>>> = OnceLock::new();
    let Some(dir) = std::env::var_os(MODEL_DIR_VAR) else {
        eprintln!("skipping {test}: set {MODEL_DIR_VAR} to the all-MiniLM-L6-v2 directory");
        return None;
    };
    MODEL
        .get_or_init(|| {
            let dir = PathBuf::from(dir);
            let embedder = Embedder::load(&dir).unwrap_or_else(|e| {
                panic!("{MODEL_DIR_VAR}={} failed to load: {e}", dir.display())
            });
            Some(Arc::new(embedder))
        })
        .clone()
}

#[test]
fn matches_numpy_reference() {
    let Some(model) = model("matches_numpy_reference") else {
        return;
    };
    let reference: Reference = serde_json::from_str(REFERENCE).unwrap();
    assert_eq!(model.dim(), reference.dim);
    assert_eq!(model.max_tokens(), 256);
    let texts: Vec<&str> = reference
        .sentences
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    // One padded batch (the long sentence forces padding of the short ones) ...
    let batched = model.embed(&texts).unwrap();
    // ... and each sentence alone must both match the unpadded reference.
    for (i, sentence) in reference.sentences.iter().enumerate() {
        let alone = model.embed(&[sentence.text.as_str()]).unwrap().remove(0);
        for got in [&batched[i], &alone] {
            let cos = cosine(got, &sentence.embedding);
            let max_diff = got
                .iter()
                .zip(&sentence.embedding)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(cos >= 0.9999, "sentence {i}: cosine {cos}");
            assert!(max_diff < 1e-3, "sentence {i}: max abs diff {max_diff}");
        }
    }
}

#[test]
fn paraphrases_are_closer_than_unrelated_sentences() {
    let Some(model) = model("paraphrases_are_closer_than_unrelated_sentences") else {
        return;
    };
    let texts = [
        "I need to cancel my appointment tomorrow",
        "Please call off my visit for tomorrow",
        "What time do you open on Saturdays?",
        "Are you open at the weekend, and from when?",
        "The weather in Lisbon is lovely today",
    ];
    let e = model.embed(&texts).unwrap();
    let cancel = cosine(&e[0], &e[1]);
    let hours = cosine(&e[2], &e[3]);
    for (a, b) in [(0, 2), (0, 4), (1, 3), (2, 4), (3, 4)] {
        let unrelated = cosine(&e[a], &e[b]);
        assert!(
            cancel > unrelated + 0.1,
            "cancel {cancel} vs {a}/{b} {unrelated}"
        );
        assert!(
            hours > unrelated + 0.1,
            "hours {hours} vs {a}/{b} {unrelated}"
        );
    }
    assert!(cosine(&e[0], &e[0]) > 0.9999);
}

#[test]
fn texts_beyond_the_token_limit_are_truncated_not_rejected() {
    let Some(model) = model("texts_beyond_the_token_limit_are_truncated_not_rejected") else {
        return;
    };
    let long = "please book me a cleaning appointment ".repeat(200);
    let longer = format!("{long} and also whiten my teeth while you are at it");
    let e = model.embed(&[&long, &longer]).unwrap();
    assert!(
        cosine(&e[0], &e[1]) > 0.99999,
        "only the first 256 tokens count"
    );
}

#[test]
fn service_matches_direct_embedding() {
    let Some(model) = model("service_matches_direct_embedding") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let svc = EmbeddingService::new(model.clone(), ServiceOptions::default());
    let texts = [
        "book me in please",
        "where are you located?",
        "book me in please",
    ];
    let got: Vec<Result<Arc<Vec<f32>>, EmbedError>> = rt.block_on(async {
        let handles: Vec<_> = texts
            .iter()
            .map(|t| {
                let svc = svc.clone();
                let t = t.to_string();
                tokio::spawn(async move { svc.embed(&t).await })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    });
    let direct = model.embed(&texts).unwrap();
    for (g, d) in got.into_iter().zip(&direct) {
        assert!(cosine(&g.unwrap(), d) > 0.99999);
    }
}
