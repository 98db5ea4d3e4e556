//! The real all-MiniLM-L6-v2, fetched by `scripts/fetch-test-assets.sh` into
//! `target/test-assets/all-MiniLM-L6-v2` (override: QUIVER_MINILM_DIR), against
//! sentence-transformers: the published reference cosines and the vectors of
//! `tests/fixtures/minilm-goldens.json` (`scripts/fixtures/minilm_goldens.py`).

use std::path::PathBuf;
use std::sync::OnceLock;

use quiver_encoder::{DType, Device, Encoder, PromptKind};
use serde::Deserialize;

use crate::bert::max_abs_diff;

fn encoder() -> &'static Encoder {
    static E: OnceLock<Encoder> = OnceLock::new();
    E.get_or_init(|| {
        let dir = std::env::var_os("QUIVER_MINILM_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../target/test-assets/all-MiniLM-L6-v2")
            });
        assert!(
            dir.join("model.safetensors").is_file(),
            "{} is missing: run scripts/fetch-test-assets.sh first (or set QUIVER_MINILM_DIR)",
            dir.display()
        );
        Encoder::load(dir.to_str().unwrap(), &Device::Cpu, DType::F32).unwrap()
    })
}

#[derive(Deserialize)]
struct Goldens {
    texts: Vec<String>,
    tokens: Vec<usize>,
    embeddings: Vec<Vec<f32>>,
}

fn goldens() -> Goldens {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/minilm-goldens.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

#[test]
fn reference_cosines() {
    let enc = encoder();
    assert_eq!((enc.dims(), enc.max_length()), (384, 256));
    let e = enc
        .encode_texts(
            &[
                "A man is eating food.",
                "A man is eating a piece of bread.",
                "The girl is carrying a baby.",
            ],
            "retrieval",
            PromptKind::Query,
            None,
        )
        .unwrap();
    let near = cos(&e[0].single, &e[1].single);
    let far = cos(&e[0].single, &e[2].single);
    assert!((near - 0.7553).abs() <= 1e-3, "cos(food, bread) = {near}");
    assert!((far - -0.1050).abs() <= 1e-3, "cos(food, baby) = {far}");
    for v in &e {
        let norm = v.single.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "2_Normalize: norm {norm}");
    }
}

#[test]
fn vectors_match_sentence_transformers() {
    let g = goldens();
    let enc = encoder();
    let batch = enc
        .encode_texts(&g.texts, "retrieval", PromptKind::Query, None)
        .unwrap();
    let mut worst = 0f32;
    for (i, (got, want)) in batch.iter().zip(&g.embeddings).enumerate() {
        assert_eq!(got.tokens, g.tokens[i], "text {i}: token count");
        let d = max_abs_diff(&got.single, want);
        assert!(d <= 1e-4, "text {i} ({:.40}): max abs diff {d}", g.texts[i]);
        worst = worst.max(d);
    }
    eprintln!("all-MiniLM-L6-v2 vs sentence-transformers: max abs diff {worst:e}");
    // The last text is past 256 tokens: cut there, as sentence-transformers does.
    assert_eq!(*g.tokens.last().unwrap(), 256);
    // Padding must not change a vector: each text alone equals its row in the batch.
    for (i, text) in g.texts.iter().enumerate() {
        let one = enc
            .encode_texts(&[text], "retrieval", PromptKind::Passage, None)
            .unwrap();
        let d = max_abs_diff(&one[0].single, &batch[i].single);
        assert!(d <= 1e-5, "text {i}: batch vs single differ by {d}");
    }
}
