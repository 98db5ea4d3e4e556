//! The real all-MiniLM-L6-v2, fetched by `scripts/fetch-test-assets.sh` into
//! `target/test-assets/all-MiniLM-L6-v2` (override: QUIVER_MINILM_DIR), against
//! sentence-transformers: the published reference cosines and the vectors of
//! `tests/fixtures/minilm-goldens.json` (`scripts/fixtures/minilm_goldens.py`).

use std::path::PathBuf;
use std::sync::OnceLock;

use quiver_encoder::{DType, Device, Encoder, LoadOptions, PromptKind};
use serde::Deserialize;

use crate::bert::max_abs_diff;

/// The all-MiniLM-L6-v2 checkpoint: `QUIVER_MINILM_DIR`, or the one the test-asset script fetches.
fn minilm_dir() -> PathBuf {
    std::env::var_os("QUIVER_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-assets/all-MiniLM-L6-v2")
        })
}

fn encoder() -> &'static Encoder {
    static E: OnceLock<Encoder> = OnceLock::new();
    E.get_or_init(|| {
        let dir = minilm_dir();
        assert!(
            dir.join("model.safetensors").is_file(),
            "{} is missing: run scripts/fetch-test-assets.sh first (or set QUIVER_MINILM_DIR)",
            dir.display()
        );
        Encoder::load(dir.to_str().unwrap(), &Device::Cpu, DType::F32).unwrap()
    })
}

/// all-MiniLM-L6-v2 with `--cpu-f16-weights`.
fn encoder_f16() -> &'static Encoder {
    static E: OnceLock<Encoder> = OnceLock::new();
    E.get_or_init(|| {
        let dir = minilm_dir();
        let opts = LoadOptions {
            cpu_f16_weights: true,
            ..LoadOptions::default()
        };
        Encoder::load_with(dir.to_str().unwrap(), &opts).unwrap()
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

/// f16 weights are an opt-in with a bound: every golden text's vector keeps a cosine ≥ 0.9999 to
/// the f32 one and to sentence-transformers', yet differs from it (the option is on); a text alone
/// still equals its row in the batch.
#[test]
fn f16_weights_stay_within_their_tolerance() {
    let g = goldens();
    let (f32e, f16e) = (encoder(), encoder_f16());
    let a = f32e
        .encode_texts(&g.texts, "retrieval", PromptKind::Query, None)
        .unwrap();
    let b = f16e
        .encode_texts(&g.texts, "retrieval", PromptKind::Query, None)
        .unwrap();
    let mut worst = 1f32;
    let mut moved = 0f32;
    for (i, ((x, y), want)) in a.iter().zip(&b).zip(&g.embeddings).enumerate() {
        let c = cos(&x.single, &y.single);
        assert!(c >= 0.9999, "text {i}: cosine f16 vs f32 {c}");
        let c2 = cos(&y.single, want);
        assert!(
            c2 >= 0.9999,
            "text {i}: cosine f16 vs sentence-transformers {c2}"
        );
        worst = worst.min(c);
        moved = moved.max(max_abs_diff(&x.single, &y.single));
    }
    eprintln!("f16 weights vs f32: worst cosine {worst}, max abs diff {moved:e}");
    assert!(moved > 1e-6, "f16 weights changed nothing: {moved:e}");
    for (i, text) in g.texts.iter().enumerate() {
        let one = f16e
            .encode_texts(&[text], "retrieval", PromptKind::Passage, None)
            .unwrap();
        let d = max_abs_diff(&one[0].single, &b[i].single);
        assert!(d <= 1e-5, "text {i}: batch vs single differ by {d}");
    }
}
