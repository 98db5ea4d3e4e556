//! The vision tower against transformers: window layout, patch embedding, merged features.

use candle_core::{DType, Device, Tensor};
use quiver_encoder::image::{preprocess, ImageLimits, PreprocessorConfig};
use quiver_encoder::models::qwen2_5_vl::{multimodal_position_ids, window_layout};

use crate::common::*;

const VISION_TOL: f32 = 1e-4;

/// Pixel values and grid of a fixture image, through the Rust preprocessing.
pub fn pixels(name: &str) -> (Tensor, [usize; 3]) {
    let cfg = PreprocessorConfig::from_dir(&fixture_dir()).unwrap();
    let p = preprocess(&image_bytes(name), &cfg, &ImageLimits::default()).unwrap();
    let shape = (p.num_patches(), p.patch_dim);
    (
        Tensor::from_vec(p.data, shape, &Device::Cpu).unwrap(),
        p.grid_thw,
    )
}

#[test]
fn window_layout_matches_transformers() {
    let model = load(DType::F32);
    let cfg = model
        .vision()
        .expect("tiny checkpoint has a vision tower")
        .config();
    let m = vision_manifest();
    for (name, img) in &m.images {
        let l = window_layout(&[img.grid_thw], cfg);
        let key = |k: &str| format!("img/{name}/{k}");
        assert_eq!(
            l.window_index,
            golden_usizes(&key("window_index")),
            "{name}"
        );
        assert_eq!(
            l.cu_window_seqlens,
            golden_usizes(&key("cu_window_seqlens")),
            "{name}"
        );
        assert_eq!(l.cu_seqlens, golden_usizes(&key("cu_seqlens")), "{name}");
    }
    // All images in one call: indices and boundaries continue across images.
    let grids: Vec<[usize; 3]> = m.batch.iter().map(|n| m.images[n].grid_thw).collect();
    let l = window_layout(&grids, cfg);
    assert_eq!(l.window_index, golden_usizes("batch/window_index"));
    assert_eq!(
        l.cu_window_seqlens,
        golden_usizes("batch/cu_window_seqlens")
    );
    assert_eq!(l.cu_seqlens, golden_usizes("batch/cu_seqlens"));
}

#[test]
fn patch_embedding_and_merger_match_transformers() {
    let model = load(DType::F32);
    let vision = model.vision().unwrap();
    for name in vision_manifest().images.keys() {
        let (pv, grid) = pixels(name);
        let pe = vision.patch_embed(&pv).unwrap();
        let d = max_abs_diff(&pe, vision_golden(&format!("img/{name}/patch_embed")));
        eprintln!("{name}: patch_embed max abs diff {d:e}");
        assert!(d <= VISION_TOL, "{name}: patch_embed {d:e}");
        let merged = vision.forward(&pv, &[grid]).unwrap();
        let d = max_abs_diff(&merged, vision_golden(&format!("img/{name}/merger")));
        eprintln!("{name}: merger max abs diff {d:e}");
        assert!(d <= VISION_TOL, "{name}: merger {d:e}");
    }
}

#[test]
fn mixed_size_batch_through_the_tower_equals_one_by_one() {
    let model = load(DType::F32);
    let vision = model.vision().unwrap();
    let m = vision_manifest();
    let parts: Vec<(Tensor, [usize; 3])> = m.batch.iter().map(|n| pixels(n)).collect();
    let pv = Tensor::cat(&parts.iter().map(|p| &p.0).collect::<Vec<_>>(), 0).unwrap();
    let grids: Vec<[usize; 3]> = parts.iter().map(|p| p.1).collect();
    let merged = vision.forward(&pv, &grids).unwrap();
    let mut start = 0;
    for (name, (pv1, grid)) in m.batch.iter().zip(&parts) {
        let n = grid.iter().product::<usize>() / 4;
        let alone = vision.forward(pv1, &[*grid]).unwrap();
        let in_batch = merged.narrow(0, start, n).unwrap();
        let d = max_abs_diff(&in_batch, &alone);
        assert!(d <= 1e-5, "{name}: batched vs single {d:e}");
        assert_close(
            name,
            &in_batch,
            vision_golden(&format!("img/{name}/merger")),
            VISION_TOL,
        );
        start += n;
    }
    assert_eq!(start, merged.dim(0).unwrap());
}

#[test]
fn position_ids_match_get_rope_index() {
    let m = vision_manifest();
    for (name, img) in &m.images {
        let ids = img.input_ids.as_slice();
        let pos = multimodal_position_ids(
            &[ids],
            &[vec![img.grid_thw]],
            500,
            2,
            ids.len(),
            &Device::Cpu,
        )
        .unwrap()
        .squeeze(1)
        .unwrap();
        let want = vision_golden(&format!("img/{name}/position_ids"));
        assert_eq!(
            pos.to_vec2::<i64>().unwrap(),
            want.to_vec2::<i64>().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn chunked_attention_gives_the_same_features() {
    // A budget below one window's scores forces one query row per chunk in every block, and
    // runs of a single window: the result must not change.
    let mut model = load(DType::F32);
    let (pv, grid) = pixels("a");
    let whole = model.vision().unwrap().forward(&pv, &[grid]).unwrap();
    model
        .vision_mut()
        .unwrap()
        .set_max_attention_elements(2 * 64);
    let chunked = model.vision().unwrap().forward(&pv, &[grid]).unwrap();
    let d = max_abs_diff(&whole, &chunked);
    assert!(d <= 1e-6, "chunked vs whole {d:e}");
    assert_close(
        "chunked merger",
        &chunked,
        vision_golden("img/a/merger"),
        VISION_TOL,
    );
}

#[test]
fn varlen_attention_path_matches_transformers_and_the_segment_path() {
    // The GPU's default path (fused bias + 2-D rotary, one bidirectional varlen launch per block
    // over every window of every image) run by its CPU twins, against the goldens and against
    // the segment path, image by image and for the mixed-size batch.
    let mut model = load(DType::F32);
    let m = vision_manifest();
    let parts: Vec<(Tensor, [usize; 3])> = m.batch.iter().map(|n| pixels(n)).collect();
    let pv = Tensor::cat(&parts.iter().map(|p| &p.0).collect::<Vec<_>>(), 0).unwrap();
    let grids: Vec<[usize; 3]> = parts.iter().map(|p| p.1).collect();
    assert!(!model.vision().unwrap().varlen_attention(), "CPU default");
    let segments = model.vision().unwrap().forward(&pv, &grids).unwrap();
    model.vision_mut().unwrap().set_varlen_attention(true);
    let vision = model.vision().unwrap();
    let varlen = vision.forward(&pv, &grids).unwrap();
    let d = max_abs_diff(&varlen, &segments);
    assert!(d <= 1e-5, "varlen vs segments {d:e}");
    let mut start = 0;
    for (name, (pv1, grid)) in m.batch.iter().zip(&parts) {
        let n = grid.iter().product::<usize>() / 4;
        let alone = vision.forward(pv1, &[*grid]).unwrap();
        assert_close(
            name,
            &alone,
            vision_golden(&format!("img/{name}/merger")),
            VISION_TOL,
        );
        let d = max_abs_diff(&varlen.narrow(0, start, n).unwrap(), &alone);
        assert!(d <= 1e-5, "{name}: batched vs single {d:e}");
        start += n;
    }
}

#[test]
fn varlen_attention_path_in_bf16_stays_close() {
    let mut model = load(DType::BF16);
    model.vision_mut().unwrap().set_varlen_attention(true);
    for name in vision_manifest().images.keys() {
        let (pv, grid) = pixels(name);
        let got = model.vision().unwrap().forward(&pv, &[grid]).unwrap();
        let want = vision_golden(&format!("img/{name}/merger"));
        let got = rows(&got.to_dtype(DType::F32).unwrap());
        let c = got
            .iter()
            .zip(rows(want))
            .map(|(a, b)| cosine(a, &b))
            .fold(1f32, f32::min);
        assert!(c >= 0.999, "{name}: bf16 varlen merger row cosine {c}");
    }
}
