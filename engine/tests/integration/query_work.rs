//! `Collection::query_work`: the engine's estimate of a query's work before it runs, which the server
//! uses to run short queries on its async workers.

use quiver_engine::filter::Filter;
use quiver_engine::query::{Fusion, Prefetch, Query, QueryInput, QueryRequest};
use quiver_engine::{Distance, PointId};
use serde_json::json;

use crate::common::*;

const DIM: usize = 4;
const SEALED: usize = 5_000;

/// One sealed segment of 5,000 points with a graph (default `m` 16, so layer 0 has 32 links).
fn sealed() -> (tempfile::TempDir, quiver_engine::Collections) {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "w", small_config(DIM, Distance::Cosine, 10_000, 100));
    let points = random_vectors(SEALED, DIM, 5)
        .into_iter()
        .enumerate()
        .map(|(i, v)| dense(i as u64, v, json!({"g": i % 10})))
        .collect();
    c.upsert(points).unwrap();
    c.flush().unwrap();
    assert_eq!(c.info().indexed_vectors_count, SEALED);
    (dir, cs)
}

fn nearest(limit: usize, ef: usize) -> QueryRequest {
    let mut r = QueryRequest::nearest(None, QueryInput::Dense(vec![0.5; DIM]), limit);
    r.params.hnsw_ef = Some(ef);
    r
}

#[test]
fn a_graph_walk_is_bounded_by_ef_and_a_scan_by_the_rows() {
    let (_dir, cs) = sealed();
    let c = cs.get("w").unwrap();
    // ef 32 × 32 links per node, plus the 10 hits read back.
    let walk = ((32 * 32 + 10) * DIM) as u64;
    assert_eq!(c.query_work(&nearest(10, 32)), Some(walk));
    // A larger ef costs more: the estimate follows the request, not the collection alone.
    assert_eq!(
        c.query_work(&nearest(10, 64)),
        Some(((64 * 32 + 10) * DIM) as u64)
    );
    // A limit above ef widens the walk the same way the search does, up to every row.
    assert_eq!(
        c.query_work(&nearest(100, 32)),
        Some(((100 * 32 + 100) * DIM) as u64)
    );
    assert_eq!(
        c.query_work(&nearest(200, 32)),
        Some(((SEALED + 200) * DIM) as u64),
        "200 × 32 links exceed the segment's rows: the walk is capped at every row"
    );
    let mut exact = nearest(10, 32);
    exact.params.exact = true;
    assert_eq!(c.query_work(&exact), Some(((SEALED + 10) * DIM) as u64));
    // A point id is a lookup, then the same walk.
    let by_id = QueryRequest {
        query: Some(Query::Nearest(QueryInput::Point(PointId::Num(3)))),
        ..nearest(10, 32)
    };
    assert_eq!(c.query_work(&by_id), Some(walk));
}

#[test]
fn the_appendable_segment_is_scanned_whole() {
    let (_dir, cs) = sealed();
    let c = cs.get("w").unwrap();
    let before = c.query_work(&nearest(10, 32)).unwrap();
    let unindexed = 3_000;
    let points = random_vectors(unindexed, DIM, 6)
        .into_iter()
        .enumerate()
        .map(|(i, v)| dense((SEALED + i) as u64, v, json!({})))
        .collect();
    c.upsert(points).unwrap();
    assert_eq!(c.info().indexed_vectors_count, SEALED);
    assert_eq!(
        c.query_work(&nearest(10, 32)),
        Some(before + (unindexed * DIM) as u64)
    );
}

#[test]
fn plans_the_estimate_cannot_see_are_unbounded() {
    let (_dir, cs) = sealed();
    let c = cs.get("w").unwrap();
    let filtered = QueryRequest {
        filter: Some(
            serde_json::from_value::<Filter>(
                json!({"must": [{"key": "g", "match": {"value": 3}}]}),
            )
            .unwrap(),
        ),
        ..nearest(10, 32)
    };
    assert_eq!(c.query_work(&filtered), None);
    let prefetched = QueryRequest {
        prefetch: vec![Prefetch {
            prefetch: Vec::new(),
            query: Some(Query::Nearest(QueryInput::Dense(vec![0.5; DIM]))),
            using: None,
            filter: None,
            params: Default::default(),
            score_threshold: None,
            limit: 20,
        }],
        ..nearest(10, 32)
    };
    assert_eq!(c.query_work(&prefetched), None);
    let fused = QueryRequest {
        query: Some(Query::Fusion(Fusion::Dbsf)),
        ..nearest(10, 32)
    };
    assert_eq!(c.query_work(&fused), None);
    let listed = QueryRequest {
        query: None,
        ..nearest(10, 32)
    };
    assert_eq!(c.query_work(&listed), None);
}
