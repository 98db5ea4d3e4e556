//! f32 parity with transformers, per layer and per head, for every task and without LoRA.

use candle_core::{DType, Device, IndexOp};
use quiver_encoder::models::qwen2_5_vl::text_position_ids;
use quiver_encoder::{Embedding, Encoder, MultiVector, PromptKind};

use crate::common::*;

const HIDDEN_TOL: f32 = 1e-4;
const NORMALIZED_TOL: f32 = 1e-5;

#[test]
fn hidden_states_and_heads_match_transformers() {
    let mut model = load(DType::F32);
    let layers = model.config().text.num_hidden_layers;
    // First the fused CPU kernel (the default for f32 on a CPU), then the generic path that GPUs
    // run, with query chunking forced (2 chunks of 4 queries for len7, one query per chunk for
    // the longer inputs) so the chunked loop is what gets compared.
    for fused in [true, false] {
        if !fused {
            model.text_model_mut().set_fused_cpu_attention(false);
            model.text_model_mut().set_max_attention_elements(4 * 4 * 7);
        }
        for task in ["none", "retrieval", "text-matching", "code"] {
            for case in ["len7", "len11", "len40", "padded"] {
                let out = run(&model, case, task_idx(task), true);
                let key = |k: &str| format!("{task}/{case}/{k}");
                assert_eq!(out.layer_outputs.len(), layers + 1);
                for (i, h) in out.layer_outputs.iter().enumerate() {
                    assert_close(
                        &key(&format!("layer.{i}")),
                        h,
                        golden(&key(&format!("layer.{i}"))),
                        HIDDEN_TOL,
                    );
                }
                assert_close(
                    &key("last_hidden"),
                    &out.hidden,
                    golden(&key("last_hidden")),
                    HIDDEN_TOL,
                );
                assert_close(
                    &key("single"),
                    &out.single,
                    golden(&key("single")),
                    NORMALIZED_TOL,
                );
                assert_close(
                    &key("multi"),
                    &out.multi,
                    golden(&key("multi")),
                    NORMALIZED_TOL,
                );
                for &d in &manifest().matryoshka_dims {
                    let ours: Vec<Vec<f32>> = rows(&out.single)
                        .into_iter()
                        .map(|single| {
                            Embedding {
                                single,
                                multi: MultiVector::empty(),
                                tokens: 0,
                            }
                            .truncated(d)
                        })
                        .collect();
                    let want = rows(golden(&key(&format!("single.{d}"))));
                    for (a, b) in ours.iter().zip(&want) {
                        assert_vec_close(&key(&format!("single.{d}")), a, b, NORMALIZED_TOL);
                    }
                }
            }
        }
    }
}

#[test]
fn position_ids_match_transformers() {
    for case in ["len7", "padded"] {
        let c = &manifest().cases[case];
        let ours = text_position_ids(&c.attention_mask, &Device::Cpu).unwrap();
        let want = golden(&format!("none/{case}/position_ids"));
        assert_eq!(
            ours.to_vec3::<i64>().unwrap(),
            want.to_vec3::<i64>().unwrap(),
            "{case}"
        );
    }
}

#[test]
fn padded_batch_equals_rows() {
    let model = load(DType::F32);
    for task in ["none", "retrieval"] {
        let t = task_idx(task);
        let batch = run(&model, "padded", t, false);
        for (row, case) in ["len7", "len11"].iter().enumerate() {
            let single = run(&model, case, t, false);
            let n = manifest().cases[*case].input_ids[0].len();
            assert_close(
                &format!("{task} {case} single"),
                &batch.single.i(row).unwrap(),
                &single.single.i(0).unwrap(),
                NORMALIZED_TOL,
            );
            assert_close(
                &format!("{task} {case} multi"),
                &batch.multi.i(row).unwrap().narrow(0, 0, n).unwrap(),
                &single.multi.i(0).unwrap(),
                NORMALIZED_TOL,
            );
        }
        // Padding rows of the multi-vector output are zero.
        let pad = batch.multi.i(0).unwrap().narrow(0, 7, 4).unwrap();
        assert_eq!(max_abs_diff(&pad, &pad.zeros_like().unwrap()), 0.0);
    }
}

#[test]
fn bf16_stays_close() {
    let model = load(DType::BF16);
    for task in ["none", "retrieval", "text-matching", "code"] {
        for case in ["len11", "len40"] {
            let out = run(&model, case, task_idx(task), false);
            let s = rows(&out.single);
            let want = rows(golden(&format!("{task}/{case}/single")));
            let c = cosine(&s[0], &want[0]);
            assert!(c >= 0.999, "{task}/{case} single cosine {c}");
            let multi = out.multi.i(0).unwrap();
            let want = golden(&format!("{task}/{case}/multi")).i(0).unwrap();
            for (i, (a, b)) in rows(&multi).iter().zip(rows(&want)).enumerate() {
                let c = cosine(a, &b);
                assert!(c >= 0.999, "{task}/{case} multi token {i} cosine {c}");
            }
        }
    }
}

#[test]
fn encoder_end_to_end_matches_transformers() {
    let enc = Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    for (i, e) in manifest().e2e.iter().enumerate() {
        let prompt: PromptKind = e.prompt.parse().unwrap();
        let ids = enc
            .tokenize(&[&e.text], &e.task, prompt, Default::default())
            .unwrap();
        assert_eq!(ids[0], e.input_ids, "e2e {i} token ids");
        let full = enc.encode_texts(&[&e.text], &e.task, prompt, None).unwrap();
        let want = golden(&format!("e2e/{i}/single")).to_vec1::<f32>().unwrap();
        assert_vec_close(
            &format!("e2e {i} single"),
            &full[0].single,
            &want,
            NORMALIZED_TOL,
        );
        let want_multi = golden(&format!("e2e/{i}/multi"));
        assert_eq!(full[0].multi.num_tokens(), e.input_ids.len());
        assert_vec_close(
            &format!("e2e {i} multi"),
            &full[0].multi.data,
            &want_multi.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            NORMALIZED_TOL,
        );
        for &d in &manifest().matryoshka_dims {
            let got = enc
                .encode_texts(&[&e.text], &e.task, prompt, Some(d))
                .unwrap();
            let want = golden(&format!("e2e/{i}/single.{d}"))
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(got[0].single.len(), d);
            assert_vec_close(
                &format!("e2e {i} single.{d}"),
                &got[0].single,
                &want,
                NORMALIZED_TOL,
            );
        }
    }
    // One call with all texts of a task (batched, sorted by length) equals the single calls.
    let texts: Vec<&str> = manifest().e2e.iter().map(|e| e.text.as_str()).collect();
    let batched = enc
        .encode_texts(&texts, "code", PromptKind::Passage, Some(32))
        .unwrap();
    for (i, t) in texts.iter().enumerate() {
        let one = enc
            .encode_texts(&[t], "code", PromptKind::Passage, Some(32))
            .unwrap();
        assert_vec_close(
            &format!("batched {i}"),
            &batched[i].single,
            &one[0].single,
            NORMALIZED_TOL,
        );
        assert_vec_close(
            &format!("batched multi {i}"),
            &batched[i].multi.data,
            &one[0].multi.data,
            NORMALIZED_TOL,
        );
    }
}
