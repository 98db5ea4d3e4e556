//! End-to-end image embeddings against transformers: prompt ids, hidden states, single
//! (with Matryoshka) and multi vectors per task, and batch invariance.

use candle_core::{DType, Device, IndexOp};
use quiver_encoder::image::{preprocess, ImageLimits};
use quiver_encoder::prompt::ImagePrompt;
use quiver_encoder::Encoder;

use crate::common::*;

const HIDDEN_TOL: f32 = 1e-4;
const NORMALIZED_TOL: f32 = 1e-5;

fn encoder() -> Encoder {
    Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap()
}

#[test]
fn hidden_states_and_heads_match_transformers() {
    let enc = encoder();
    assert!(enc.supports_images());
    let m = vision_manifest();
    let mut worst = (0f32, 0f32);
    for task in &m.tasks {
        let spec = enc.run_spec(task, None).unwrap();
        for (name, img) in &m.images {
            let p = preprocess(
                &image_bytes(name),
                enc.preprocessor(),
                &ImageLimits::default(),
            )
            .unwrap();
            let (out, emb) = enc.embed_patches(&[&p], spec, false).unwrap();
            let key = |k: &str| format!("{task}/img/{name}/{k}");
            assert_eq!(
                emb[0].multi.num_tokens(),
                img.input_ids.len(),
                "{name}: tokens"
            );
            let hidden = out.hidden.i(0).unwrap();
            let d = max_abs_diff(&hidden, vision_golden(&key("last_hidden")));
            assert!(d <= HIDDEN_TOL, "{}: {d:e}", key("last_hidden"));
            worst.0 = worst.0.max(d);
            let single = vision_golden(&key("single")).to_vec1::<f32>().unwrap();
            let multi = rows(vision_golden(&key("multi")));
            let ours: Vec<Vec<f32>> = emb[0].multi.rows().map(|r| r.to_vec()).collect();
            for (a, b) in [(&emb[0].single, &single)]
                .into_iter()
                .chain(ours.iter().zip(&multi))
            {
                let d = a
                    .iter()
                    .zip(b.iter())
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                worst.1 = worst.1.max(d);
                assert!(d <= NORMALIZED_TOL, "{task}/{name}: {d:e}");
            }
        }
    }
    eprintln!(
        "images: last_hidden max abs diff {:e}, normalised outputs {:e}",
        worst.0, worst.1
    );
}

#[test]
fn encode_images_matches_goldens_with_matryoshka() {
    let enc = encoder();
    let m = vision_manifest();
    let bytes: Vec<Vec<u8>> = m.batch.iter().map(|n| image_bytes(n)).collect();
    for task in &m.tasks {
        for &d in &m.matryoshka_dims {
            let embs = enc.encode_images(&bytes, task, Some(d)).unwrap();
            for (name, e) in m.batch.iter().zip(&embs) {
                let key = |k: &str| format!("{task}/img/{name}/{k}");
                let want = if d == enc.dims() {
                    vision_golden(&key("single"))
                } else {
                    vision_golden(&key(&format!("single.{d}")))
                };
                assert_vec_close(
                    &key(&format!("single.{d}")),
                    &e.single,
                    &want.to_vec1::<f32>().unwrap(),
                    NORMALIZED_TOL,
                );
                let multi: Vec<f32> = rows(vision_golden(&key("multi"))).concat();
                assert_vec_close(&key("multi"), &e.multi.data, &multi, NORMALIZED_TOL);
            }
        }
    }
}

#[test]
fn prompt_ids_equal_the_reference_template() {
    // The fixture rows were built in Python from the tiny tokenizer and the config's vision ids.
    let enc = encoder();
    let m = vision_manifest();
    let p = ImagePrompt::new(enc.tokenizer(), 502, 503).unwrap();
    assert_eq!(p.before, m.prompt_prefix);
    assert_eq!(p.after, m.prompt_suffix);
    for img in m.images.values() {
        let n = img.grid_thw.iter().product::<usize>() / 4;
        assert_eq!(p.ids(500, n), img.input_ids);
    }
}

#[test]
fn mixed_size_batch_equals_one_by_one() {
    let enc = encoder();
    let m = vision_manifest();
    // Largest first, so the batch is right-padded for the smaller ones.
    let names = ["a", "c", "b", "a"];
    let bytes: Vec<Vec<u8>> = names.iter().map(|n| image_bytes(n)).collect();
    let batch = enc.encode_images(&bytes, "retrieval", None).unwrap();
    let mut worst = 0f32;
    for (name, (b, e)) in names.iter().zip(bytes.iter().zip(&batch)) {
        let alone = enc.encode_images(&[b], "retrieval", None).unwrap();
        assert_eq!(e.multi.num_tokens(), m.images[*name].input_ids.len());
        assert_eq!(alone[0].multi.num_tokens(), e.multi.num_tokens());
        for (x, y) in [
            (&e.single, &alone[0].single),
            (&e.multi.data, &alone[0].multi.data),
        ] {
            let d = x
                .iter()
                .zip(y.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            worst = worst.max(d);
            assert!(d <= NORMALIZED_TOL, "{name}: batch vs single {d:e}");
        }
    }
    eprintln!("mixed batch vs one-by-one: max abs diff {worst:e}");
    // And the two copies of `a` agree with each other exactly.
    assert_eq!(batch[0], batch[3]);
}

#[test]
fn text_and_images_share_the_embedding_space_shape() {
    let enc = encoder();
    let img = enc
        .encode_images(&[image_bytes("b")], "code", Some(32))
        .unwrap();
    let txt = enc
        .encode_texts(
            &["sort a list"],
            "code",
            quiver_encoder::PromptKind::Query,
            Some(32),
        )
        .unwrap();
    assert_eq!(img[0].single.len(), txt[0].single.len());
    assert_eq!(img[0].multi.dim, txt[0].multi.dim);
    let n: f32 = img[0].single.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((n - 1.0).abs() < 1e-5);
}

#[test]
fn bf16_images_stay_close() {
    let enc = Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::BF16).unwrap();
    let m = vision_manifest();
    let bytes: Vec<Vec<u8>> = m.batch.iter().map(|n| image_bytes(n)).collect();
    let mut worst = (1f32, 1f32);
    for task in &m.tasks {
        let embs = enc.encode_images(&bytes, task, None).unwrap();
        for (name, e) in m.batch.iter().zip(&embs) {
            let key = |k: &str| format!("{task}/img/{name}/{k}");
            let single = vision_golden(&key("single")).to_vec1::<f32>().unwrap();
            worst.0 = worst.0.min(cosine(&e.single, &single));
            for (a, b) in e.multi.rows().zip(rows(vision_golden(&key("multi")))) {
                worst.1 = worst.1.min(cosine(a, &b));
            }
        }
    }
    eprintln!(
        "bf16 images: min cosine single {}, multi {}",
        worst.0, worst.1
    );
    assert!(worst.0 >= 0.999 && worst.1 >= 0.999, "{worst:?}");
}

/// The GPU's image path on the CPU twins of its kernels: the vision tower on the varlen kernel and
/// the image prompts packed end to end through the fused decoder pass.
fn packed_encoder(dtype: DType) -> Encoder {
    let mut enc = Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, dtype).unwrap();
    enc.set_packed_text(true).unwrap();
    enc.set_varlen_vision(true).unwrap();
    enc
}

#[test]
fn packed_image_pass_matches_goldens_in_a_mixed_batch() {
    let enc = packed_encoder(DType::F32);
    assert!(enc.packs_batches());
    let m = vision_manifest();
    // Mixed sizes in one call: the prompts are packed, never padded to the longest.
    let names = ["a", "c", "b", "a"];
    let bytes: Vec<Vec<u8>> = names.iter().map(|n| image_bytes(n)).collect();
    for task in &m.tasks {
        let embs = enc.encode_images(&bytes, task, None).unwrap();
        let launches = enc.last_launches().unwrap();
        assert!(launches > 0, "the packed pass ran");
        for (name, e) in names.iter().zip(&embs) {
            let key = |k: &str| format!("{task}/img/{name}/{k}");
            assert_eq!(e.multi.num_tokens(), m.images[*name].input_ids.len());
            assert_vec_close(
                &key("single"),
                &e.single,
                &vision_golden(&key("single")).to_vec1::<f32>().unwrap(),
                1e-4,
            );
            let multi: Vec<f32> = rows(vision_golden(&key("multi"))).concat();
            assert_vec_close(&key("multi"), &e.multi.data, &multi, 1e-4);
        }
        // Matryoshka truncation is applied to the packed pass's vectors as to the padded one's.
        let small = enc.encode_images(&bytes[..1], task, Some(16)).unwrap();
        assert_eq!(small[0].single.len(), 16);
    }
}

#[test]
fn packed_image_pass_in_bf16_stays_close() {
    let enc = packed_encoder(DType::BF16);
    let m = vision_manifest();
    let bytes: Vec<Vec<u8>> = m.batch.iter().map(|n| image_bytes(n)).collect();
    let embs = enc.encode_images(&bytes, "retrieval", None).unwrap();
    let mut worst = (1f32, 1f32);
    for (name, e) in m.batch.iter().zip(&embs) {
        let key = |k: &str| format!("retrieval/img/{name}/{k}");
        let single = vision_golden(&key("single")).to_vec1::<f32>().unwrap();
        worst.0 = worst.0.min(cosine(&e.single, &single));
        for (a, b) in e.multi.rows().zip(rows(vision_golden(&key("multi")))) {
            worst.1 = worst.1.min(cosine(a, &b));
        }
    }
    assert!(worst.0 >= 0.999 && worst.1 >= 0.99, "{worst:?}");
}
