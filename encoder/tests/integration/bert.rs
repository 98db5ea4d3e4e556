//! The BERT sentence encoder on the tiny random checkpoint (`tests/fixtures/bert-tiny`, made by
//! `scripts/fixtures/make_tiny_bert.py`): token ids and vectors against sentence-transformers,
//! padding invariance, the fixture tokenizer's fixed-padding trap, capabilities and errors.

use std::path::PathBuf;
use std::sync::Arc;

use quiver_encoder::{
    DType, Device, EncodeRequest, Encoder, EncoderService, Error, LoadOptions, ModelKind,
    PromptKind, ServiceOptions, TextOptions, Truncation,
};
use serde::Deserialize;

pub fn bert_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bert-tiny")
}

#[derive(Deserialize)]
struct Goldens {
    max_seq_length: usize,
    texts: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

fn goldens() -> Goldens {
    let s = std::fs::read_to_string(bert_dir().join("goldens.json")).unwrap();
    serde_json::from_str(&s).unwrap()
}

fn load() -> Encoder {
    Encoder::load(bert_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn token_ids_match_sentence_transformers() {
    let g = goldens();
    let enc = load();
    assert_eq!(enc.max_length(), g.max_seq_length);
    let rows = enc
        .tokenize(
            &g.texts,
            "retrieval",
            PromptKind::Query,
            Truncation::default(),
        )
        .unwrap();
    // The file pads and truncates every row to 16; sentence-transformers (and Quiver) do not.
    assert_eq!(rows, g.input_ids);
}

#[test]
fn embeddings_match_sentence_transformers() {
    let g = goldens();
    let enc = load();
    let batch = enc
        .encode_texts(&g.texts, "retrieval", PromptKind::Query, None)
        .unwrap();
    let mut worst = 0f32;
    for (i, (got, want)) in batch.iter().zip(&g.embeddings).enumerate() {
        let d = max_abs_diff(&got.single, want);
        assert!(d <= 1e-5, "text {i} ({:?}): max abs diff {d}", g.texts[i]);
        worst = worst.max(d);
        assert_eq!(got.tokens, g.input_ids[i].len());
        assert!(got.multi.data.is_empty());
    }
    eprintln!("bert-tiny vs sentence-transformers: max abs diff {worst:e}");
    // One at a time: no padding at all, the same vectors.
    for (i, text) in g.texts.iter().enumerate() {
        let one = enc
            .encode_texts(&[text], "retrieval", PromptKind::Query, None)
            .unwrap();
        let d = max_abs_diff(&one[0].single, &batch[i].single);
        assert!(d <= 1e-6, "text {i}: batch vs single differ by {d}");
    }
}

#[derive(Deserialize)]
struct ClsGoldens {
    texts: Vec<String>,
    embeddings: Vec<Vec<f32>>,
}

#[test]
fn cls_pooling_matches_sentence_transformers() {
    // The same checkpoint with the Pooling module switched to [CLS], as BGE-style models ship it
    // (goldens by scripts/fixtures/bert_cls_goldens.py).
    let g: ClsGoldens = serde_json::from_str(
        &std::fs::read_to_string(bert_dir().join("goldens-cls.json")).unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    super::common::copy_dir(&bert_dir(), tmp.path());
    std::fs::write(
        tmp.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 32, "pooling_mode_cls_token": true,
            "pooling_mode_mean_tokens": false, "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false}"#,
    )
    .unwrap();
    let enc = Encoder::load(tmp.path().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    let batch = enc
        .encode_texts(&g.texts, "retrieval", PromptKind::Query, None)
        .unwrap();
    for (i, (got, want)) in batch.iter().zip(&g.embeddings).enumerate() {
        let d = max_abs_diff(&got.single, want);
        assert!(d <= 1e-5, "text {i} ({:?}): max abs diff {d}", g.texts[i]);
    }
    // And it is not the mean-pooled vector.
    let mean = load()
        .encode_texts(&g.texts[..1], "retrieval", PromptKind::Query, None)
        .unwrap();
    assert!(max_abs_diff(&mean[0].single, &batch[0].single) > 1e-3);
}

#[test]
fn bf16_stays_close() {
    let g = goldens();
    let enc = Encoder::load(bert_dir().to_str().unwrap(), &Device::Cpu, DType::BF16).unwrap();
    let got = enc
        .encode_texts(&g.texts, "retrieval", PromptKind::Query, None)
        .unwrap();
    for (i, (e, want)) in got.iter().zip(&g.embeddings).enumerate() {
        let cos: f32 = e.single.iter().zip(want).map(|(a, b)| a * b).sum();
        assert!(cos > 0.99, "text {i}: cosine to f32 reference {cos}");
    }
}

#[test]
fn capabilities() {
    let enc = load();
    assert_eq!(enc.kind(), ModelKind::Bert);
    assert_eq!(enc.dims(), 32);
    assert_eq!(enc.allowed_dims(), vec![32]);
    assert!(enc.tasks().is_empty());
    assert!(!enc.supports_images());
    assert!(!enc.supports_multivector());
    assert_eq!(enc.multi_vector_dim(), None);
    assert!(!enc.uses_prompts());
    assert!(enc.jina_config().is_none());
    assert_eq!(enc.bert_config().unwrap().num_hidden_layers, 2);
    // Whatever task a caller sends by default, and either prompt kind, gives the same vector.
    let a = enc
        .encode_texts(&["a man is eating"], "retrieval", PromptKind::Query, None)
        .unwrap();
    let b = enc
        .encode_texts(
            &["a man is eating"],
            "text-matching",
            PromptKind::Passage,
            Some(32),
        )
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn refused_requests_say_why() {
    let enc = load();
    match enc.resolve_dims(Some(16)) {
        Err(Error::InvalidDimension { got: 16, valid }) => assert_eq!(valid, vec![32]),
        other => panic!("expected InvalidDimension, got {other:?}"),
    }
    let err = enc
        .encode_texts(&["x"], "retrieval", PromptKind::Query, Some(8))
        .unwrap_err();
    assert!(err.to_string().contains("valid dimensions: 32"), "{err}");

    let err = enc
        .encode_images(&[b"not an image"], "retrieval", None)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");

    let long = goldens().texts[7].clone();
    let strict = TextOptions {
        task: "retrieval".into(),
        prompt: PromptKind::Query,
        dims: None,
        truncation: Truncation {
            max_length: 4096,
            truncate: false,
        },
    };
    // The request's limit is capped at max_seq_length: 24 tokens with [CLS] and [SEP].
    match enc.encode_texts_with(&[long], &strict) {
        Err(Error::TooLong {
            index: 0,
            max_length: 24,
            tokens,
        }) => assert!(tokens > 24),
        other => panic!("expected TooLong, got {other:?}"),
    }
    let short = TextOptions {
        truncation: Truncation {
            max_length: 5,
            truncate: true,
        },
        ..strict.clone()
    };
    let rows = enc
        .tokenize(
            &["a man is eating food"],
            "retrieval",
            PromptKind::Query,
            short.truncation,
        )
        .unwrap();
    // [CLS] a man is [SEP]
    assert_eq!(rows[0].len(), 5);
    assert_eq!(rows[0][4], rows[0][rows[0].len() - 1]);
    let tiny = Truncation {
        max_length: 2,
        truncate: true,
    };
    let err = enc
        .tokenize(&["a"], "retrieval", PromptKind::Query, tiny)
        .unwrap_err();
    assert!(err.to_string().contains("special tokens"), "{err}");
    assert!(matches!(
        enc.tokenize(
            &["  "],
            "retrieval",
            PromptKind::Query,
            Truncation::default()
        ),
        Err(Error::EmptyText { index: 0 })
    ));

    let opts = LoadOptions {
        merge_task: Some("retrieval".into()),
        ..LoadOptions::default()
    };
    let err = Encoder::load_with(bert_dir().to_str().unwrap(), &opts)
        .err()
        .expect("merging a task into BERT must fail");
    assert!(err.to_string().contains("no task adapters"), "{err}");
}

#[test]
fn bad_checkpoints_fail_to_load() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(bert_dir().join(f), tmp.path().join(f)).unwrap();
    }
    // No modules.json: a plain transformers checkpoint, mean pooling without normalisation.
    let enc = Encoder::load(tmp.path().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    let v = &enc
        .encode_texts(&["a man"], "retrieval", PromptKind::Query, None)
        .unwrap()[0]
        .single;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "not normalised: {norm}");

    std::fs::create_dir(tmp.path().join("1_Pooling")).unwrap();
    std::fs::write(
        tmp.path().join("modules.json"),
        r#"[{"path": "", "type": "sentence_transformers.models.Transformer"},
            {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]"#,
    )
    .unwrap();
    let err = Encoder::load(tmp.path().to_str().unwrap(), &Device::Cpu, DType::F32)
        .err()
        .unwrap();
    assert!(err.to_string().contains("Dense"), "{err}");
    std::fs::remove_file(tmp.path().join("modules.json")).unwrap();

    let cfg = std::fs::read_to_string(bert_dir().join("config.json")).unwrap();
    std::fs::write(
        tmp.path().join("config.json"),
        cfg.replace("\"hidden_size\": 32", "\"hidden_size\": 48"),
    )
    .unwrap();
    let err = Encoder::load(tmp.path().to_str().unwrap(), &Device::Cpu, DType::F32)
        .err()
        .unwrap();
    assert!(matches!(err, Error::Weights(_)), "{err}");
}

#[test]
fn service_batches_bert_rows() {
    let g = goldens();
    let enc = Arc::new(load());
    let service = EncoderService::start(enc.clone(), ServiceOptions::default()).unwrap();
    let req = |texts: &[String], prompt| EncodeRequest {
        texts: texts.to_vec(),
        task: "retrieval".into(),
        prompt,
        dims: None,
        truncation: Truncation::default(),
    };
    let a = service
        .submit(req(&g.texts[..4], PromptKind::Query))
        .unwrap();
    let b = service
        .submit(req(&g.texts[4..], PromptKind::Passage))
        .unwrap();
    let got: Vec<_> = a
        .wait()
        .unwrap()
        .into_iter()
        .chain(b.wait().unwrap())
        .collect();
    for (i, (e, want)) in got.iter().zip(&g.embeddings).enumerate() {
        let d = max_abs_diff(&e.single, want);
        assert!(d <= 1e-5, "text {i}: {d}");
    }
    let real: usize = g.input_ids.iter().map(Vec::len).sum();
    let stats = service.stats();
    assert_eq!(
        stats.tokens.load(std::sync::atomic::Ordering::Relaxed),
        real as u64
    );
    let err = service.submit(EncodeRequest {
        dims: Some(16),
        ..req(&g.texts[..1], PromptKind::Query)
    });
    assert!(matches!(err, Err(Error::InvalidDimension { .. })));
}
