use std::path::Path;
use std::sync::Arc;

use quiver_engine::collection::EngineOptions;
use quiver_engine::config::{CollectionConfig, Distance, MultiVectorConfig, VectorParams};
use quiver_engine::point::{NamedVectors, Payload, PointInsert, Vector};
use quiver_engine::{Collection, Collections, PointId};
use rand::{Rng, SeedableRng};

pub fn options() -> EngineOptions {
    EngineOptions {
        deterministic: true,
        build_threads: 1,
        ..Default::default()
    }
}

pub fn open(dir: &Path) -> Collections {
    Collections::open(dir, options()).unwrap()
}

pub fn obj(v: serde_json::Value) -> Payload {
    v.as_object().unwrap().clone()
}

pub fn dense(id: u64, v: Vec<f32>, payload: serde_json::Value) -> PointInsert {
    let mut vectors = NamedVectors::new();
    vectors.insert(String::new(), Vector::Dense(v));
    PointInsert {
        id: PointId::Num(id),
        vectors,
        payload: Some(obj(payload)),
    }
}

pub fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect()
}

/// A single unnamed vector plus a multi-vector `colbert` of the same row size.
pub fn config_with_multi(dim: usize, distance: Distance) -> CollectionConfig {
    let mut c = CollectionConfig::single(dim, distance);
    c.vectors.insert(
        "colbert".into(),
        VectorParams {
            size: dim,
            distance,
            hnsw_config: None,
            multivector_config: Some(MultiVectorConfig::max_sim()),
            on_disk: None,
            quantization_config: None,
        },
    );
    c.optimizer_config.default_segment_number = Some(KEEP_SEGMENTS);
    // Test segments are small: vacuum them whatever their size.
    c.optimizer_config.vacuum_min_vector_number = 0;
    c
}

/// A target segment number no test reaches: tests that build several sealed segments on purpose
/// keep them apart (the merge tests set their own target).
pub const KEEP_SEGMENTS: usize = 1_000;

/// A small collection whose segments seal at `max_points` and get graphs from `threshold` points.
pub fn small_config(
    dim: usize,
    distance: Distance,
    max_points: usize,
    threshold: usize,
) -> CollectionConfig {
    let mut c = CollectionConfig::single(dim, distance);
    c.optimizer_config.segment_max_points = max_points;
    c.optimizer_config.default_segment_number = Some(KEEP_SEGMENTS);
    c.hnsw_config.full_scan_threshold = threshold;
    // Test segments are small: vacuum them whatever their size.
    c.optimizer_config.vacuum_min_vector_number = 0;
    c
}

pub fn create(cs: &Collections, name: &str, config: CollectionConfig) -> Arc<Collection> {
    cs.create(name, config).unwrap()
}

pub fn ids(records: impl IntoIterator<Item = PointId>) -> Vec<u64> {
    records
        .into_iter()
        .map(|id| match id {
            PointId::Num(n) => n,
            PointId::Uuid(_) => panic!("uuid"),
        })
        .collect()
}

#[allow(dead_code)]
pub fn vectors_of(v: &NamedVectors) -> &[f32] {
    match v.get("").unwrap() {
        Vector::Dense(d) => d,
        Vector::Multi(_) | Vector::Sparse(_) => panic!("not a dense vector"),
    }
}
