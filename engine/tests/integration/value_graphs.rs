//! Value graphs (`hnsw_config.payload_m`): a seal builds one graph per value of an indexed field that
//! holds at least `full_scan_threshold` points; a search whose filter requires such a value walks its
//! graph, returns only points that pass the whole filter, finds what an exact scan finds, and does so
//! after a reopen and a snapshot restore, with `m: 0` (no main graph), and not at all with
//! `payload_m: 0`.

use std::collections::HashSet;
use std::path::Path;

use quiver_engine::config::Distance;
use quiver_engine::filter::Filter;
use quiver_engine::point::{PayloadOp, PointsSelector, SearchRequest, WithPayload};
use quiver_engine::query::{
    Query, QueryInput, QueryRequest, Recommend, RecommendStrategy, Strategy,
};
use quiver_engine::{Collection, PointId};
use quiver_storage::snapshot::Limits;
use serde_json::{json, Value};

use crate::common::*;

const N: usize = 3000;
const DIM: usize = 16;
const THRESHOLD: usize = 200;

fn tenant(i: usize) -> &'static str {
    match i % 100 {
        99 => "rare",
        r if r % 10 < 6 => "a",
        r if r % 10 < 9 => "b",
        _ => "c",
    }
}

fn filter(v: Value) -> Filter {
    serde_json::from_value(v).unwrap()
}

fn value_graph_files(dir: &Path, collection: &str) -> usize {
    let mut n = 0;
    for seg in std::fs::read_dir(dir.join("collections").join(collection).join("segments")).unwrap()
    {
        for f in std::fs::read_dir(seg.unwrap().path()).unwrap() {
            let name = f.unwrap().file_name().to_string_lossy().into_owned();
            n += (name.starts_with("value-graph-") && name.ends_with(".hnsw")) as usize;
        }
    }
    n
}

/// `(segments walked on a value graph, strategy, hit ids)` of a filtered query.
fn run(c: &Collection, q: &[f32], f: &Filter) -> (usize, Strategy, Vec<PointId>) {
    let mut req = QueryRequest::nearest(None, QueryInput::Dense(q.to_vec()), 10);
    req.filter = Some(f.clone());
    req.params.hnsw_ef = Some(128);
    let r = c.query(&req).unwrap();
    let stage = &r.stages[0];
    (
        stage.segments_value_graph,
        stage.strategy,
        r.hits.into_iter().map(|p| p.id).collect(),
    )
}

fn exact(c: &Collection, q: &[f32], f: &Filter) -> HashSet<PointId> {
    let mut req = SearchRequest::dense(q.to_vec(), 10);
    req.filter = Some(f.clone());
    req.exact = true;
    c.search(&req).unwrap().into_iter().map(|h| h.id).collect()
}

/// Recall@10 of the pinned walks against exact scans, and that every hit passes the filter.
fn assert_walks(c: &Collection, queries: &[Vec<f32>], f: &Filter, when: &str) {
    let (mut found, mut wanted) = (0, 0);
    for q in queries {
        let (value_graphs, strategy, hits) = run(c, q, f);
        assert_eq!(value_graphs, 1, "{when}: {f:?}");
        assert_eq!(strategy, Strategy::Hnsw, "{when}");
        let truth = exact(c, q, f);
        wanted += truth.len();
        found += hits.iter().filter(|id| truth.contains(id)).count();
        let passing = c
            .retrieve(&hits, &WithPayload::All, &Default::default())
            .unwrap();
        for p in passing {
            assert!(
                f.matches(&p.id, p.payload.as_ref().unwrap()),
                "{when}: {:?} fails {f:?}",
                p.id
            );
        }
    }
    let recall = found as f64 / wanted as f64;
    assert!(recall >= 0.95, "{when}: recall@10 {recall} for {f:?}");
}

#[test]
fn a_filter_on_one_indexed_value_walks_that_values_graph() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_vectors(N, DIM, 3);
    let queries = random_vectors(20, DIM, 4);
    let cs = open(dir.path());
    let c = create(&cs, "v", small_config(DIM, Distance::Cosine, N, THRESHOLD));
    // Indexes first, as Qdrant advises: a segment's value graphs are built when it is written.
    c.create_payload_index("tenant", serde_json::from_value(json!("keyword")).unwrap())
        .unwrap();
    c.create_payload_index("n", serde_json::from_value(json!("integer")).unwrap())
        .unwrap();
    let points = data
        .iter()
        .enumerate()
        .map(|(i, v)| {
            dense(
                i as u64,
                v.clone(),
                json!({"tenant": tenant(i), "n": i % 7}),
            )
        })
        .collect();
    c.upsert(points).unwrap();
    c.flush().unwrap();
    // a, b, c and n = 0..7 hold 200 points or more; "rare" (30 points) does not.
    assert_eq!(value_graph_files(dir.path(), "v"), 3 + 7);

    let only_b = filter(json!({"must": [{"key": "tenant", "match": {"value": "b"}}]}));
    // About 257 points: over the threshold, so walked, on the smaller pinned graph (n = 2).
    let a_and_n = filter(json!({"must": [
        {"key": "tenant", "match": {"value": "a"}},
        {"key": "n", "match": {"any": [2]}},
        {"key": "n", "range": {"lt": 5}}
    ]}));
    assert_walks(&c, &queries, &only_b, "sealed");
    assert_walks(&c, &queries, &a_and_n, "sealed, two pins and a range");
    // Not pinned: `should`, several values, a value without a graph.
    for f in [
        json!({"should": [{"key": "tenant", "match": {"value": "b"}}]}),
        json!({"must": [{"key": "tenant", "match": {"any": ["a", "b"]}}]}),
    ] {
        assert_eq!(run(&c, &queries[0], &filter(f)).0, 0);
    }
    let rare = filter(json!({"must": [{"key": "tenant", "match": {"value": "rare"}}]}));
    assert_eq!(run(&c, &queries[0], &rare).1, Strategy::Exact);

    // A tombstoned point is never returned, and a point moved into the value by a payload update
    // (now in the appendable segment) is found.
    let (_, _, hits) = run(&c, &queries[0], &only_b);
    c.delete(PointsSelector::Ids(vec![hits[0]])).unwrap();
    let a_point = (0..N).find(|&i| tenant(i) == "a").unwrap();
    c.update_payload(
        PointsSelector::Ids(vec![PointId::Num(a_point as u64)]),
        PayloadOp::Set {
            payload: obj(json!({"tenant": "b"})),
            key: None,
        },
    )
    .unwrap();
    let q = data[a_point].clone();
    let (_, _, after) = run(&c, &queries[0], &only_b);
    assert!(!after.contains(&hits[0]));
    let (_, _, near) = run(&c, &q, &only_b);
    assert_eq!(near[0], PointId::Num(a_point as u64));

    // The graphs are files of the segment: a reopen serves them.
    drop(c);
    drop(cs);
    let cs = open(dir.path());
    let c = cs.get("v").unwrap();
    assert_walks(&c, &queries, &only_b, "reopened");

    // And they travel in a snapshot.
    let d = cs.create_snapshot("v").unwrap();
    let archive = cs.snapshot_path("v", &d.name).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let cs2 = open(dst.path());
    let restored = cs2
        .restore_snapshot("v", &archive, None, Limits::default())
        .unwrap();
    assert_eq!(value_graph_files(dst.path(), "v"), 3 + 7);
    assert_walks(&restored, &queries, &only_b, "restored");

    // payload_m 0 rebuilds the segment without them.
    c.update_config(|config| {
        config.hnsw_config.payload_m = Some(0);
        Ok(())
    })
    .unwrap();
    c.flush().unwrap();
    assert_eq!(value_graph_files(dir.path(), "v"), 0);
    assert_eq!(run(&c, &queries[0], &only_b).0, 0);
}

#[test]
fn with_m_0_value_graphs_are_the_only_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_vectors(N, DIM, 5);
    let queries = random_vectors(20, DIM, 6);
    let cs = open(dir.path());
    // Qdrant's multitenancy setting: no graph over the whole collection, one per tenant.
    let mut config = small_config(DIM, Distance::Dot, N, THRESHOLD);
    config.hnsw_config.m = 0;
    config.hnsw_config.payload_m = Some(16);
    let c = create(&cs, "t", config);
    c.create_payload_index("tenant", serde_json::from_value(json!("keyword")).unwrap())
        .unwrap();
    let points = data
        .iter()
        .enumerate()
        .map(|(i, v)| dense(i as u64, v.clone(), json!({"tenant": tenant(i)})))
        .collect();
    c.upsert(points).unwrap();
    c.flush().unwrap();
    assert_eq!(value_graph_files(dir.path(), "t"), 3);
    for t in ["a", "b", "c"] {
        let f = filter(json!({"must": {"key": "tenant", "match": {"value": t}}}));
        assert_walks(&c, &queries, &f, "m 0");
    }
    // Example-scored stages walk the pinned graph too: with no main graph, a walk is one.
    let mut rec = QueryRequest::nearest(None, QueryInput::Dense(queries[0].clone()), 5);
    rec.query = Some(Query::Recommend(Recommend {
        positive: vec![QueryInput::Dense(queries[1].clone())],
        negative: vec![QueryInput::Dense(queries[2].clone())],
        strategy: RecommendStrategy::BestScore,
    }));
    rec.filter = Some(filter(
        json!({"must": {"key": "tenant", "match": {"value": "b"}}}),
    ));
    let answer = c.query(&rec).unwrap();
    assert_eq!(answer.stages[0].segments_indexed, 1, "{:?}", answer.stages);
    assert_eq!(answer.hits.len(), 5);
    for h in &answer.hits {
        let PointId::Num(i) = h.id else { panic!() };
        assert_eq!(tenant(i as usize), "b");
    }

    let unpinned = filter(json!({"must_not": [{"key": "tenant", "match": {"value": "a"}}]}));
    let (value_graphs, strategy, _) = run(&c, &queries[0], &unpinned);
    assert_eq!((value_graphs, strategy), (0, Strategy::Exact));
}
