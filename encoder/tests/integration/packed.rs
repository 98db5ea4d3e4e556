//! The packed text pass (the GPU's text path: sequences end to end, fused kernels), run here on
//! the kernels' CPU twins, against the transformers goldens and against the padded pass.

use candle_core::{DType, Device, IndexOp, Tensor};
use quiver_encoder::models::jina_v4::PackedOutput;
use quiver_encoder::{Encoder, PromptKind};

use crate::common::*;

const CASES: [&str; 3] = ["len7", "len11", "len40"];

fn ids(case: &str) -> Vec<u32> {
    manifest().cases[case].input_ids[0].clone()
}

fn packed(
    model: &quiver_encoder::models::jina_v4::JinaV4,
    rows: &[&[u32]],
    task: Option<usize>,
) -> PackedOutput {
    let input = model
        .text_model()
        .packed_text_input(rows, &Device::Cpu)
        .unwrap();
    model.forward_packed(&input, task).unwrap()
}

#[test]
fn one_packed_batch_matches_transformers_for_every_task() {
    let model = load(DType::F32);
    let layers = model.config().text.num_hidden_layers as u64;
    let rows: Vec<Vec<u32>> = CASES.iter().map(|c| ids(c)).collect();
    let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    for task in ["none", "retrieval", "text-matching", "code"] {
        let out = packed(&model, &refs, task_idx(task));
        // One kernel per fused op or GEMM; a task's LoRA adds two per projection.
        let per_layer = if task == "none" { 9 } else { 17 };
        let heads = if task == "none" { 4 } else { 6 };
        assert_eq!(out.launches, 1 + per_layer * layers + 1 + heads, "{task}");
        let mut start = 0;
        for (i, case) in CASES.iter().enumerate() {
            let len = rows[i].len();
            let key = |k: &str| format!("{task}/{case}/{k}");
            assert_close(
                &key("last_hidden"),
                &out.hidden.narrow(0, start, len).unwrap(),
                &golden(&key("last_hidden")).i(0).unwrap(),
                1e-4,
            );
            assert_close(
                &key("single"),
                &out.single.i(i).unwrap(),
                &golden(&key("single")).i(0).unwrap(),
                1e-5,
            );
            assert_close(
                &key("multi"),
                &out.multi.narrow(0, start, len).unwrap(),
                &golden(&key("multi")).i(0).unwrap(),
                1e-5,
            );
            start += len;
        }
    }
}

#[test]
fn packed_bf16_keeps_the_cosines() {
    let model = load(DType::BF16);
    let inputs: Vec<Vec<u32>> = CASES.iter().map(|c| ids(c)).collect();
    let refs: Vec<&[u32]> = inputs.iter().map(Vec::as_slice).collect();
    let out = packed(&model, &refs, task_idx("retrieval"));
    let multi = rows_f32(&out.multi);
    let mut start = 0;
    for (i, case) in CASES.iter().enumerate() {
        let key = |k: &str| format!("retrieval/{case}/{k}");
        let single = rows_f32(&out.single);
        let want = &rows(golden(&key("single")))[0];
        let c = cosine(&single[i], want);
        assert!(c >= 0.999, "{case} single: {c}");
        let want_multi = rows(&golden(&key("multi")).i(0).unwrap());
        for (t, w) in want_multi.iter().enumerate() {
            let c = cosine(&multi[start + t], w);
            assert!(c >= 0.99, "{case} token {t}: {c}");
        }
        start += inputs[i].len();
    }
}

fn rows_f32(t: &Tensor) -> Vec<Vec<f32>> {
    rows(t)
}

#[test]
fn the_encoder_gives_the_same_vectors_packed_and_padded() {
    let texts = [
        "What is the weather like in Berlin today?",
        "a",
        "Packed batches lay sequences end to end without padding, so each costs its own tokens.",
    ];
    let mut enc = Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    assert!(!enc.packs_batches(), "the CPU default is the padded pass");
    let padded = enc
        .encode_texts(&texts, "code", PromptKind::Passage, Some(32))
        .unwrap();
    enc.set_packed_text(true).unwrap();
    assert!(enc.packs_batches());
    let packed = enc
        .encode_texts(&texts, "code", PromptKind::Passage, Some(32))
        .unwrap();
    let layers = enc.jina_config().unwrap().text.num_hidden_layers as u64;
    assert_eq!(enc.last_launches(), Some(17 * layers + 8));
    for (a, b) in padded.iter().zip(&packed) {
        assert_eq!(a.tokens, b.tokens);
        assert_eq!(b.single.len(), 32);
        assert_vec_close("single", &a.single, &b.single, 1e-5);
        assert_vec_close("multi", &a.multi.data, &b.multi.data, 1e-5);
    }
}

#[test]
fn the_service_packs_jina_batches_when_the_pass_is_packed() {
    use quiver_encoder::{EncodeRequest, EncoderService, ServiceOptions, Truncation};
    use std::sync::atomic::Ordering;

    let mut enc = Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    let single = |enc: &Encoder, t: &str| {
        enc.encode_texts(&[t], "retrieval", PromptKind::Query, None)
            .unwrap()
            .remove(0)
    };
    let texts = [
        "a",
        "Berlin is the capital of Germany.",
        "short one",
        "x y z",
    ];
    let want: Vec<_> = texts.iter().map(|t| single(&enc, t)).collect();
    let tokens: usize = want.iter().map(|e| e.tokens).sum();
    let longest = want.iter().map(|e| e.tokens).max().unwrap();
    assert!(longest * texts.len() > tokens, "the rows differ in length");
    enc.set_packed_text(true).unwrap();
    let svc = EncoderService::start(
        std::sync::Arc::new(enc),
        ServiceOptions {
            // Packed, the four rows fit one batch by their real tokens; padded they would not.
            max_batch_tokens: tokens,
            max_batch_requests: 8,
            queue_capacity: 8,
        },
    )
    .unwrap();
    let got = svc
        .encode(EncodeRequest {
            texts: texts.iter().map(|s| s.to_string()).collect(),
            task: "retrieval".into(),
            prompt: PromptKind::Query,
            dims: None,
            truncation: Truncation::default(),
        })
        .unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert_vec_close("single", &g.single, &w.single, 1e-5);
        assert_vec_close("multi", &g.multi.data, &w.multi.data, 1e-5);
    }
    let stats = svc.stats();
    assert_eq!(stats.batches.load(Ordering::Relaxed), 1);
    assert_eq!(stats.padded_tokens.load(Ordering::Relaxed), tokens as u64);
}
