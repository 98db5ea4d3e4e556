//! The merge optimizer: many small sealed segments (dense, multi-vector, sparse, an indexed payload
//! field, deletes and updates between seals, deletes while the merge runs) come down to the target
//! number; every live point reads back the same, deleted ones stay gone, exact and filtered searches
//! rank and score as before, and the result survives a reopen and a snapshot restore.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use quiver_engine::config::{CollectionConfig, Distance, SparseVectorParams};
use quiver_engine::filter::Filter;
use quiver_engine::payload_schema::PayloadFieldSchema;
use quiver_engine::point::{
    NamedVectors, PointInsert, PointsSelector, QueryVector, Record, SearchRequest, SparseVector,
    Vector, WithPayload, WithVectors,
};
use quiver_engine::{Collection, Collections, OptimizationKind, OptimizationStatus, PointId};
use quiver_storage::snapshot::Limits;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::common::*;

const DIM: usize = 4;
const SEGMENTS: u64 = 12;
const PER_SEGMENT: u64 = 60;
const TARGET: usize = 3;

fn config() -> CollectionConfig {
    // Dot multi-vectors keep their raw rows (no token store), so reads and scores can be compared
    // exactly across the rewrite.
    let mut c = config_with_multi(DIM, Distance::Dot);
    c.hnsw_config.full_scan_threshold = 50;
    c.optimizer_config.segment_max_points = 1_000_000;
    // Updates and deletes stay below it: no vacuum, so only the merge rewrites segments.
    c.optimizer_config.deleted_threshold = 0.5;
    c.sparse_vectors.insert(
        "sp".into(),
        SparseVectorParams {
            index: None,
            modifier: None,
        },
    );
    c
}

fn point(id: u64, rng: &mut impl Rng) -> PointInsert {
    let v = |rng: &mut dyn rand::RngCore| -> Vec<f32> {
        (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    };
    let mut vectors = NamedVectors::new();
    vectors.insert(String::new(), Vector::Dense(v(rng)));
    let tokens = rng.random_range(1..4);
    vectors.insert(
        "colbert".into(),
        Vector::Multi((0..tokens).map(|_| v(rng)).collect()),
    );
    let mut indices: Vec<u32> = (0..rng.random_range(1..5))
        .map(|_| rng.random_range(0..20))
        .collect();
    indices.sort_unstable();
    indices.dedup();
    let values = indices
        .iter()
        .map(|_| rng.random_range(0.1f32..2.0))
        .collect();
    vectors.insert(
        "sp".into(),
        Vector::Sparse(SparseVector { indices, values }),
    );
    PointInsert {
        id: PointId::Num(id),
        vectors,
        payload: Some(obj(json!({"g": id % 5, "name": format!("p{id}")}))),
    }
}

fn filter(v: serde_json::Value) -> Filter {
    serde_json::from_value(v).unwrap()
}

fn requests(rng: &mut impl Rng, exclude: &[u64]) -> Vec<SearchRequest> {
    let q = |rng: &mut dyn rand::RngCore| -> Vec<f32> {
        (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    };
    let mut out = Vec::new();
    for _ in 0..3 {
        let dense = SearchRequest::dense(q(rng), 10);
        let mut multi = SearchRequest::dense(Vec::new(), 10);
        multi.using = "colbert".into();
        multi.query = QueryVector::Multi(vec![q(rng), q(rng)]);
        let mut sparse = SearchRequest::dense(Vec::new(), 10);
        sparse.using = "sp".into();
        sparse.query = QueryVector::Sparse(SparseVector {
            indices: vec![1, 3, 7, 12],
            values: vec![rng.random_range(0.5f32..1.5), 1.0, 0.7, 1.3],
        });
        for mut r in [dense, multi, sparse] {
            r.exact = true;
            out.push(r.clone());
            // Through the payload index on `g`.
            r.filter = Some(filter(
                json!({"must": [{"key": "g", "match": {"value": 2}}]}),
            ));
            out.push(r);
        }
    }
    // Points deleted while the merge runs are excluded from the answers taken before it.
    if !exclude.is_empty() {
        for r in &mut out {
            let mut f = match r.filter.take() {
                Some(f) => serde_json::to_value(&f).unwrap(),
                None => json!({}),
            };
            f["must_not"] = json!([{"has_id": exclude}]);
            r.filter = Some(filter(f));
        }
    }
    out
}

fn answers(c: &Collection, reqs: &[SearchRequest]) -> Vec<Vec<(PointId, f32)>> {
    reqs.iter()
        .map(|r| {
            c.search(r)
                .unwrap()
                .into_iter()
                .map(|h| (h.id, h.score))
                .collect()
        })
        .collect()
}

fn read_all(c: &Collection, ids: &[u64]) -> BTreeMap<u64, Record> {
    let ids: Vec<PointId> = ids.iter().map(|&i| PointId::Num(i)).collect();
    c.retrieve(&ids, &WithPayload::All, &WithVectors::All)
        .unwrap()
        .into_iter()
        .map(|r| match r.id {
            PointId::Num(n) => (n, r),
            PointId::Uuid(_) => unreachable!(),
        })
        .collect()
}

fn wait_for_segments(c: &Collection, sealed: usize) {
    let start = Instant::now();
    while c.info().segments_count != sealed + 1 || c.info().optimizing {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "still {:?}",
            c.info()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn small_segments_merge_down_to_the_target_keeping_every_point_and_score() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let all_ids: Vec<u64> = (0..SEGMENTS * PER_SEGMENT + 100).collect();
    let cs = open(dir.path());
    let mut cfg = config();
    // Kept apart while they are built.
    cfg.optimizer_config.default_segment_number = Some(KEEP_SEGMENTS);
    let c = create(&cs, "m", cfg);
    let schema: PayloadFieldSchema = serde_json::from_value(json!("integer")).unwrap();
    c.create_payload_index("g", schema).unwrap();

    // Each segment's ids interleave with every other's, so the merged one must re-sort them.
    for s in 0..SEGMENTS {
        let batch = (0..PER_SEGMENT)
            .map(|k| point(s + SEGMENTS * k, &mut rng))
            .collect();
        c.upsert(batch).unwrap();
        if s % 3 == 2 {
            // Deletes and updates between seals: tombstones persisted in earlier segments.
            let sealed_ids: Vec<PointId> = (0..s * PER_SEGMENT)
                .filter(|i| i % 23 == s % 23)
                .map(PointId::Num)
                .collect();
            c.delete(PointsSelector::Ids(sealed_ids)).unwrap();
            let updated = (0..s * PER_SEGMENT)
                .filter(|i| i % 29 == s)
                .map(|i| point(i, &mut rng))
                .collect();
            c.upsert(updated).unwrap();
        }
        c.flush().unwrap();
    }
    // A tail in the appendable segment, and deletes not yet persisted (in memory only).
    c.upsert(
        (SEGMENTS * PER_SEGMENT..SEGMENTS * PER_SEGMENT + 100)
            .map(|i| point(i, &mut rng))
            .collect(),
    )
    .unwrap();
    c.delete(PointsSelector::Ids(
        (0..SEGMENTS * PER_SEGMENT)
            .filter(|i| i % 31 == 5)
            .map(PointId::Num)
            .collect(),
    ))
    .unwrap();
    let info = c.info();
    assert_eq!(info.segments_count, SEGMENTS as usize + 1, "{info:?}");

    // Deleted while the merge runs.
    let during: Vec<u64> = (0..SEGMENTS * PER_SEGMENT)
        .filter(|i| i % 37 == 11)
        .collect();
    let reqs = requests(&mut rng, &during);
    let before = answers(&c, &reqs);
    let mut expected = read_all(&c, &all_ids);
    for i in &during {
        expected.remove(i);
    }
    let wal_seq = c.manifest().wal_seq;
    assert!(before.iter().all(|a| !a.is_empty()));

    c.update_config(|cfg| {
        cfg.optimizer_config.default_segment_number = Some(TARGET);
        Ok(())
    })
    .unwrap();
    // The background optimizer merges; delete meanwhile, one point per write.
    for &i in &during {
        c.delete(PointsSelector::Ids(vec![PointId::Num(i)]))
            .unwrap();
    }
    wait_for_segments(&c, TARGET);

    // A merge keeps the manifest's log position (no seal ran: nothing was due).
    assert_eq!(c.manifest().wal_seq, wal_seq);
    let report = c.optimizations();
    let merge = report
        .completed
        .iter()
        .find(|o| o.kind == OptimizationKind::Merge)
        .expect("a merge ran");
    assert_eq!(merge.status, OptimizationStatus::Done);
    assert!(merge.segments.len() >= 2, "{merge:?}");
    assert!(report.queued.is_empty(), "{:?}", report.queued);

    let check = |c: &Collection, when: &str| {
        let got = read_all(c, &all_ids);
        let differ: Vec<u64> = all_ids
            .iter()
            .copied()
            .filter(|i| got.get(i) != expected.get(i))
            .collect();
        assert!(differ.is_empty(), "{when}: points that differ: {differ:?}");
        assert_eq!(c.count(None).unwrap(), expected.len(), "{when}");
        assert_eq!(answers(c, &reqs), before, "{when}");
    };
    check(&c, "after the merge");

    // A seal persists the carried-over tombstones; the same again.
    c.flush().unwrap();
    check(&c, "after a seal");
    assert_eq!(c.info().segments_count, TARGET + 1);
    let snapshot = cs.create_snapshot("m").unwrap();
    let archive = cs.snapshot_path("m", &snapshot.name).unwrap();
    drop(c);
    drop(cs);

    let cs: Collections = open(dir.path());
    let c = cs.get("m").unwrap();
    check(&c, "after a reopen");
    assert_eq!(c.info().segments_count, TARGET + 1);
    cs.restore_snapshot("copy", &archive, None, Limits::default())
        .unwrap();
    let copy = cs.get("copy").unwrap();
    check(&copy, "after a snapshot restore");
}

#[test]
fn max_segment_size_bounds_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let cs = open(dir.path());
    let mut cfg = config();
    cfg.optimizer_config.default_segment_number = Some(1);
    // Each segment holds 60 points of 4 dense floats and 1 to 3 tokens of 4: about 2 to 4 KiB of
    // vectors, so 4 KiB lets no two merge.
    cfg.optimizer_config.max_segment_size = Some(4);
    let c = create(&cs, "s", cfg);
    for s in 0..4 {
        c.upsert(
            (s * PER_SEGMENT..(s + 1) * PER_SEGMENT)
                .map(|i| point(i, &mut rng))
                .collect(),
        )
        .unwrap();
        c.flush().unwrap();
    }
    assert_eq!(c.info().segments_count, 5);
    // A larger bound lets them merge into one on the next pass.
    c.update_config(|cfg| {
        cfg.optimizer_config.max_segment_size = Some(1_000);
        Ok(())
    })
    .unwrap();
    c.flush().unwrap();
    assert_eq!(c.info().segments_count, 2);
    assert_eq!(c.count(None).unwrap(), 4 * PER_SEGMENT as usize);
}
