//! 20k random vectors, sealed into one HNSW segment, reopened: recall@10 against exact >= 0.95.

use std::collections::HashSet;

use quiver_engine::config::{CollectionConfig, Distance, Residency};
use quiver_engine::point::SearchRequest;
use serde_json::json;

use crate::common::*;

#[test]
fn recall_at_10_after_seal_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let dim = 32;
    let data = random_vectors(n, dim, 2024);
    {
        let cs = open(dir.path());
        let c = create(&cs, "r", CollectionConfig::single(dim, Distance::Cosine));
        for (ci, chunk) in data.chunks(2000).enumerate() {
            c.upsert(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, v)| dense((ci * 2000 + i) as u64, v.clone(), json!({})))
                    .collect(),
            )
            .unwrap();
        }
        c.flush().unwrap();
        let info = c.info();
        assert_eq!(info.indexed_vectors_count, n, "{info:?}");
    }
    let cs = open(dir.path());
    let c = cs.get("r").unwrap();
    assert_eq!(c.info().indexed_vectors_count, n);
    let queries = random_vectors(100, dim, 77);
    let mut found = 0;
    for q in &queries {
        let mut exact = SearchRequest::dense(q.clone(), 10);
        exact.exact = true;
        let truth: HashSet<_> = c
            .search(&exact)
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        let approx = c.search(&SearchRequest::dense(q.clone(), 10)).unwrap();
        assert_eq!(approx.len(), 10);
        found += approx.iter().filter(|h| truth.contains(&h.id)).count();
    }
    let recall = found as f64 / (10 * queries.len()) as f64;
    eprintln!("recall@10 at default parameters over {n} x {dim}: {recall:.4}");
    assert!(recall >= 0.95, "recall@10 = {recall}");
}

/// Sealed rows and graphs read into memory (the default) and served from their maps (`on_disk`)
/// answer every search alike, and the setting survives a reopen.
#[test]
fn in_memory_and_on_disk_segments_answer_alike() {
    let dir = tempfile::tempdir().unwrap();
    let (n, dim) = (3_000, 16);
    let data = random_vectors(n, dim, 99);
    let in_memory = small_config(dim, Distance::Euclid, 1_000, 100);
    let mut on_disk = in_memory.clone();
    on_disk.vectors.get_mut("").unwrap().on_disk = Some(true);
    on_disk.hnsw_config.on_disk = true;
    {
        let cs = open(dir.path());
        for (name, config) in [("mem", &in_memory), ("disk", &on_disk)] {
            let c = create(&cs, name, config.clone());
            for (ci, chunk) in data.chunks(500).enumerate() {
                c.upsert(
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(i, v)| dense((ci * 500 + i) as u64, v.clone(), json!({})))
                        .collect(),
                )
                .unwrap();
            }
            c.flush().unwrap();
            assert_eq!(c.info().indexed_vectors_count, n, "{name}");
        }
    }
    let cs = open(dir.path());
    let (mem, disk) = (cs.get("mem").unwrap(), cs.get("disk").unwrap());
    assert_eq!(mem.config().vector_residency(""), Residency::InMemory);
    assert_eq!(disk.config().vector_residency(""), Residency::Mapped);
    assert_eq!(disk.config().graph_residency(""), Residency::Mapped);
    assert!(mem.info().segments_count >= 3);
    for q in random_vectors(20, dim, 5) {
        for exact in [false, true] {
            let mut req = SearchRequest::dense(q.clone(), 10);
            req.exact = exact;
            let (a, b) = (mem.search(&req).unwrap(), disk.search(&req).unwrap());
            assert_eq!(a.len(), 10);
            let hits = |h: &[quiver_engine::point::ScoredPoint]| {
                h.iter().map(|h| (h.id, h.score)).collect::<Vec<_>>()
            };
            assert_eq!(hits(&a), hits(&b), "exact {exact}");
        }
    }
}
