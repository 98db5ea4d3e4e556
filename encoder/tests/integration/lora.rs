//! LoRA: tasks differ, merged equals unmerged, layouts load the same.

use candle_core::{DType, Device, Tensor};
use quiver_encoder::loading::Checkpoint;

use crate::common::*;

#[test]
fn tasks_differ_pairwise() {
    let model = load(DType::F32);
    let tasks = &manifest().tasks;
    let outs: Vec<_> = (0..tasks.len())
        .map(|t| run(&model, "len11", Some(t), false))
        .collect();
    let base = run(&model, "len11", None, false);
    for i in 0..tasks.len() {
        assert!(
            max_abs_diff(&outs[i].single, &base.single) > 1e-2,
            "{} equals no-LoRA",
            tasks[i]
        );
        for j in (i + 1)..tasks.len() {
            let d = max_abs_diff(&outs[i].single, &outs[j].single);
            assert!(d > 1e-2, "{} and {} differ by only {d}", tasks[i], tasks[j]);
            let d = max_abs_diff(&outs[i].multi, &outs[j].multi);
            assert!(
                d > 1e-2,
                "{} and {} multi differ by only {d}",
                tasks[i],
                tasks[j]
            );
        }
    }
}

#[test]
fn merged_equals_unmerged() {
    let unmerged = load(DType::F32);
    for t in 0..manifest().tasks.len() {
        let mut merged = load(DType::F32);
        merged.merge_task(t).unwrap();
        for case in ["len11", "padded"] {
            let a = run(&unmerged, case, Some(t), false);
            let b = run(&merged, case, Some(t), false);
            assert_close(
                &format!("task {t} {case} hidden"),
                &a.hidden,
                &b.hidden,
                1e-4,
            );
            assert_close(
                &format!("task {t} {case} single"),
                &a.single,
                &b.single,
                1e-5,
            );
            assert_close(&format!("task {t} {case} multi"), &a.multi, &b.multi, 1e-5);
        }
        // A merged model refuses the other tasks instead of silently running the merged one.
        let other = (t + 1) % manifest().tasks.len();
        let c = &manifest().cases["len7"];
        let ids = Tensor::from_vec(c.input_ids.concat(), (1, 7), &Device::Cpu).unwrap();
        let mask = Tensor::from_vec(c.attention_mask.concat(), (1, 7), &Device::Cpu).unwrap();
        let pos =
            quiver_encoder::models::qwen2_5_vl::text_position_ids(&c.attention_mask, &Device::Cpu)
                .unwrap();
        assert!(merged
            .forward(&ids, &mask, &pos, Some(other), false)
            .is_err());
    }
}

#[test]
fn language_model_layout_loads_the_same() {
    // transformers >= 4.52 in-memory names: model.language_model.* / model.visual.*, one file.
    let tmp = fixture_copy();
    let dir = tmp.path();
    let mut all = std::collections::HashMap::new();
    for shard in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        for (k, v) in candle_core::safetensors::load(dir.join(shard), &Device::Cpu).unwrap() {
            let k = if let Some(rest) = k.strip_prefix("model.") {
                format!("model.language_model.{rest}")
            } else if let Some(rest) = k.strip_prefix("visual.") {
                format!("model.visual.{rest}")
            } else {
                k
            };
            all.insert(k, v);
        }
        std::fs::remove_file(dir.join(shard)).unwrap();
    }
    std::fs::remove_file(dir.join("model.safetensors.index.json")).unwrap();
    candle_core::safetensors::save(&all, dir.join("model.safetensors")).unwrap();
    let model = Checkpoint::open(dir)
        .unwrap()
        .load_model(&Device::Cpu, DType::F32)
        .unwrap();
    let out = run(&model, "len11", Some(0), false);
    assert_close(
        "single",
        &out.single,
        golden("retrieval/len11/single"),
        1e-5,
    );
}
