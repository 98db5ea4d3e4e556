//! Fixture access and comparison helpers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use quiver_encoder::loading::Checkpoint;
use quiver_encoder::models::jina_v4::{JinaOutput, JinaV4};
use quiver_encoder::models::qwen2_5_vl::text_position_ids;
use serde::Deserialize;

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/jina-tiny")
}

#[derive(Debug, Deserialize)]
pub struct Case {
    pub input_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u32>>,
}

#[derive(Debug, Deserialize)]
pub struct E2e {
    pub task: String,
    pub prompt: String,
    pub text: String,
    pub input_ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub cases: HashMap<String, Case>,
    pub e2e: Vec<E2e>,
    pub tasks: Vec<String>,
    pub matryoshka_dims: Vec<usize>,
}

pub fn manifest() -> &'static Manifest {
    static M: OnceLock<Manifest> = OnceLock::new();
    M.get_or_init(|| {
        let s = std::fs::read_to_string(fixture_dir().join("goldens.json")).unwrap();
        serde_json::from_str(&s).unwrap()
    })
}

pub fn goldens() -> &'static HashMap<String, Tensor> {
    static G: OnceLock<HashMap<String, Tensor>> = OnceLock::new();
    G.get_or_init(|| {
        candle_core::safetensors::load(fixture_dir().join("goldens.safetensors"), &Device::Cpu)
            .unwrap()
    })
}

pub fn golden(key: &str) -> &'static Tensor {
    goldens()
        .get(key)
        .unwrap_or_else(|| panic!("golden {key} missing"))
}

pub fn load(dtype: DType) -> JinaV4 {
    Checkpoint::open(&fixture_dir())
        .unwrap()
        .load_model(&Device::Cpu, dtype)
        .unwrap()
}

/// Task index for a golden task name ("none" = no LoRA).
pub fn task_idx(name: &str) -> Option<usize> {
    if name == "none" {
        None
    } else {
        Some(manifest().tasks.iter().position(|t| t == name).unwrap())
    }
}

pub fn run(model: &JinaV4, case: &str, task: Option<usize>, keep_layers: bool) -> JinaOutput {
    let c = &manifest().cases[case];
    let b = c.input_ids.len();
    let l = c.input_ids[0].len();
    let ids = Tensor::from_vec(c.input_ids.concat(), (b, l), &Device::Cpu).unwrap();
    let mask = Tensor::from_vec(c.attention_mask.concat(), (b, l), &Device::Cpu).unwrap();
    let pos = text_position_ids(&c.attention_mask, &Device::Cpu).unwrap();
    model.forward(&ids, &mask, &pos, task, keep_layers).unwrap()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

pub fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) {
    let d = max_abs_diff(a, b);
    assert!(d <= tol, "{what}: max abs diff {d:e} > {tol:e}");
}

pub fn assert_vec_close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(d <= tol, "{what}: max abs diff {d:e} > {tol:e}");
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

pub fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap()
}

/// Copies the fixture to a temp dir so a test can swap one file.
pub fn fixture_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir(), tmp.path());
    tmp
}

pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// One test image of the vision goldens.
#[derive(Debug, Deserialize)]
pub struct VisionImage {
    pub file: String,
    pub height: usize,
    pub width: usize,
    pub grid_thw: [usize; 3],
    pub input_ids: Vec<u32>,
}

/// `goldens.vision.json`.
#[derive(Debug, Deserialize)]
pub struct VisionManifest {
    pub images: std::collections::BTreeMap<String, VisionImage>,
    pub prompt_prefix: Vec<u32>,
    pub prompt_suffix: Vec<u32>,
    pub tasks: Vec<String>,
    pub matryoshka_dims: Vec<usize>,
    pub batch: Vec<String>,
}

pub fn vision_manifest() -> &'static VisionManifest {
    static M: OnceLock<VisionManifest> = OnceLock::new();
    M.get_or_init(|| {
        let s = std::fs::read_to_string(fixture_dir().join("goldens.vision.json")).unwrap();
        serde_json::from_str(&s).unwrap()
    })
}

pub fn vision_golden(key: &str) -> &'static Tensor {
    static G: OnceLock<HashMap<String, Tensor>> = OnceLock::new();
    G.get_or_init(|| {
        candle_core::safetensors::load(
            fixture_dir().join("goldens.vision.safetensors"),
            &Device::Cpu,
        )
        .unwrap()
    })
    .get(key)
    .unwrap_or_else(|| panic!("vision golden {key} missing"))
}

pub fn image_bytes(name: &str) -> Vec<u8> {
    let m = &vision_manifest().images[name];
    std::fs::read(fixture_dir().join(&m.file)).unwrap()
}
/// A golden integer tensor (stored as i64) as usizes.
pub fn golden_usizes(key: &str) -> Vec<usize> {
    vision_golden(key)
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|v| v as usize)
        .collect()
}
