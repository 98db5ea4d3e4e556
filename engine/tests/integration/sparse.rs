//! Sparse vectors: exact dot products over shared dimensions whichever segment holds a point (the
//! appendable rows, a sealed inverted index), with tombstones, filters, IDF, reopen and the typed
//! query.

use std::collections::BTreeMap;

use quiver_engine::config::{
    CollectionConfig, Distance, SparseIndexParams, SparseModifier, SparseVectorParams,
};
use quiver_engine::filter::Filter;
use quiver_engine::point::{
    NamedVectors, PointInsert, PointsSelector, QueryVector, SearchRequest, SparseVector, Vector,
    WithPayload, WithVectors,
};
use quiver_engine::query::{Prefetch, Query, QueryInput, QueryRequest, SearchParams};
use quiver_engine::{Collection, PointId};
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::common::*;

const VOCAB: u32 = 40;

fn config() -> CollectionConfig {
    let mut c = CollectionConfig::single(2, Distance::Dot);
    c.sparse_vectors.insert(
        "plain".into(),
        SparseVectorParams {
            index: Some(SparseIndexParams {
                on_disk: Some(true),
                full_scan_threshold: Some(10),
            }),
            modifier: None,
        },
    );
    c.sparse_vectors.insert(
        "idf".into(),
        SparseVectorParams {
            index: None,
            modifier: Some(SparseModifier::Idf),
        },
    );
    c
}

fn random_sparse(rng: &mut impl Rng) -> SparseVector {
    let n = rng.random_range(1..8);
    let mut dims: Vec<u32> = (0..n).map(|_| rng.random_range(0..VOCAB)).collect();
    dims.sort_unstable();
    dims.dedup();
    let values = dims.iter().map(|_| rng.random_range(0.1f32..2.0)).collect();
    SparseVector {
        indices: dims,
        values,
    }
}

fn point(id: u64, s: &SparseVector) -> PointInsert {
    let mut vectors = NamedVectors::new();
    vectors.insert(String::new(), Vector::Dense(vec![id as f32, 1.0]));
    vectors.insert("plain".into(), Vector::Sparse(s.clone()));
    vectors.insert("idf".into(), Vector::Sparse(s.clone()));
    PointInsert {
        id: PointId::Num(id),
        vectors,
        payload: Some(obj(json!({"g": id % 3}))),
    }
}

fn dot(a: &SparseVector, b: &SparseVector) -> Option<f32> {
    let mut shared = false;
    let mut sum = 0.0;
    for (i, d) in a.indices.iter().enumerate() {
        if let Some(j) = b.indices.iter().position(|x| x == d) {
            shared = true;
            sum += a.values[i] * b.values[j];
        }
    }
    shared.then_some(sum)
}

fn search(
    c: &Collection,
    using: &str,
    q: &SparseVector,
    filter: Option<Filter>,
) -> Vec<(u64, f32)> {
    let mut req = SearchRequest::dense(vec![], 10);
    req.using = using.into();
    req.query = QueryVector::Sparse(q.clone());
    req.filter = filter;
    c.search(&req)
        .unwrap()
        .into_iter()
        .map(|h| (ids([h.id])[0], h.score))
        .collect()
}

/// Brute force over the live points: `weights` turns the query into what is scored.
fn expected(
    live: &BTreeMap<u64, SparseVector>,
    q: &SparseVector,
    keep: impl Fn(u64) -> bool,
) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = live
        .iter()
        .filter(|(id, _)| keep(**id))
        .filter_map(|(id, v)| Some((*id, dot(v, q)?)))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(10);
    all
}

fn idf_query(live: &BTreeMap<u64, SparseVector>, q: &SparseVector) -> SparseVector {
    let n = live.len() as f32;
    let values = q
        .indices
        .iter()
        .zip(&q.values)
        .map(|(d, v)| {
            let df = live.values().filter(|s| s.indices.contains(d)).count() as f32;
            v * ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
        })
        .collect();
    SparseVector {
        indices: q.indices.clone(),
        values,
    }
}

fn assert_close(got: &[(u64, f32)], want: &[(u64, f32)]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g.1 - w.1).abs() < 1e-4, "{got:?} vs {want:?}");
    }
    // Ties may order either way only when scores are equal.
    let got_ids: Vec<u64> = got.iter().map(|h| h.0).collect();
    let want_ids: Vec<u64> = want.iter().map(|h| h.0).collect();
    if got_ids != want_ids {
        for (g, w) in got.iter().zip(want) {
            assert!(
                g.0 == w.0 || (g.1 - w.1).abs() < 1e-4,
                "{got:?} vs {want:?}"
            );
        }
    }
}

fn check_all(c: &Collection, live: &BTreeMap<u64, SparseVector>, queries: &[SparseVector]) {
    let g1 =
        serde_json::from_value::<Filter>(json!({"must": [{"key": "g", "match": {"value": 1}}]}))
            .unwrap();
    for q in queries {
        assert_close(&search(c, "plain", q, None), &expected(live, q, |_| true));
        assert_close(
            &search(c, "plain", q, Some(g1.clone())),
            &expected(live, q, |id| id % 3 == 1),
        );
        assert_close(
            &search(c, "idf", q, None),
            &expected(live, &idf_query(live, q), |_| true),
        );
    }
}

#[test]
fn sparse_search_is_exact_across_appendable_and_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let vectors: Vec<SparseVector> = (0..300).map(|_| random_sparse(&mut rng)).collect();
    let queries: Vec<SparseVector> = (0..10).map(|_| random_sparse(&mut rng)).collect();
    let mut live: BTreeMap<u64, SparseVector> = BTreeMap::new();
    {
        let cs = open(dir.path());
        let c = create(&cs, "s", config());
        let first: Vec<PointInsert> = (0..200u64)
            .map(|i| point(i, &vectors[i as usize]))
            .collect();
        c.upsert(first).unwrap();
        for i in 0..200u64 {
            live.insert(i, vectors[i as usize].clone());
        }
        check_all(&c, &live, &queries);
        c.flush().unwrap();
        check_all(&c, &live, &queries);
        // Tombstones in the sealed segment, new rows in the appendable one.
        let gone: Vec<PointId> = (0..200u64).step_by(4).map(PointId::Num).collect();
        c.delete(PointsSelector::Ids(gone)).unwrap();
        for i in (0..200u64).step_by(4) {
            live.remove(&i);
        }
        c.upsert(
            (200..300u64)
                .map(|i| point(i, &vectors[i as usize]))
                .collect(),
        )
        .unwrap();
        for i in 200..300u64 {
            live.insert(i, vectors[i as usize].clone());
        }
        check_all(&c, &live, &queries);
        // `exact` scans the rows and finds the same hits.
        let mut req = SearchRequest::dense(vec![], 10);
        req.using = "plain".into();
        req.query = QueryVector::Sparse(queries[0].clone());
        req.exact = true;
        let exact: Vec<(u64, f32)> = c
            .search(&req)
            .unwrap()
            .into_iter()
            .map(|h| (ids([h.id])[0], h.score))
            .collect();
        assert_close(&exact, &expected(&live, &queries[0], |_| true));
        c.flush().unwrap();
        cs.close().unwrap();
    }
    let cs = open(dir.path());
    let c = cs.get("s").unwrap();
    check_all(&c, &live, &queries);
    // Reads give the vectors back sorted by index, beside the dense one.
    let r = c
        .retrieve(&[PointId::Num(1)], &WithPayload::None, &WithVectors::All)
        .unwrap();
    let v = r[0].vectors.as_ref().unwrap();
    assert_eq!(v.get("plain"), Some(&Vector::Sparse(vectors[1].clone())));
    assert_eq!(v.get(""), Some(&Vector::Dense(vec![1.0, 1.0])));
}

#[test]
fn bad_sparse_vectors_are_refused_naming_the_vector() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "s", config());
    let mut p = point(
        1,
        &SparseVector {
            indices: vec![3, 1],
            values: vec![1.0, 2.0],
        },
    );
    p.vectors.insert(
        "plain".into(),
        Vector::Sparse(SparseVector {
            indices: vec![1, 1],
            values: vec![1.0, 2.0],
        }),
    );
    let e = c.upsert(vec![p.clone()]).unwrap_err().to_string();
    assert!(e.contains("`plain`") && e.contains("more than once"), "{e}");
    p.vectors.insert(
        "plain".into(),
        Vector::Sparse(SparseVector {
            indices: vec![1, 2],
            values: vec![1.0],
        }),
    );
    let e = c.upsert(vec![p.clone()]).unwrap_err().to_string();
    assert!(e.contains("`plain`") && e.contains("same length"), "{e}");
    p.vectors.insert("plain".into(), Vector::Dense(vec![1.0]));
    assert!(c.upsert(vec![p]).is_err());
    assert_eq!(c.count(None).unwrap(), 0);
    // A partial point: only the dense vector; unsorted input is stored sorted.
    let mut only_dense = point(2, &SparseVector::default());
    only_dense.vectors.remove("plain");
    only_dense.vectors.insert(
        "idf".into(),
        Vector::Sparse(SparseVector {
            indices: vec![9, 2],
            values: vec![0.5, 1.5],
        }),
    );
    c.upsert(vec![only_dense]).unwrap();
    let r = c
        .retrieve(&[PointId::Num(2)], &WithPayload::None, &WithVectors::All)
        .unwrap();
    let v = r[0].vectors.as_ref().unwrap();
    assert!(!v.contains_key("plain"));
    assert_eq!(
        v.get("idf"),
        Some(&Vector::Sparse(SparseVector {
            indices: vec![2, 9],
            values: vec![1.5, 0.5],
        }))
    );
    // A dense query against a sparse vector is refused.
    let mut req = SearchRequest::dense(vec![1.0, 0.0], 3);
    req.using = "plain".into();
    assert!(c.search(&req).is_err());
}

#[test]
fn a_sparse_stage_rescores_a_dense_prefetch_and_reports_its_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "s", config());
    let s = |i: &[u32], v: &[f32]| SparseVector {
        indices: i.to_vec(),
        values: v.to_vec(),
    };
    c.upsert(vec![
        point(1, &s(&[1, 2], &[1.0, 1.0])),
        point(2, &s(&[2], &[5.0])),
        point(3, &s(&[2, 3], &[9.0, 1.0])),
    ])
    .unwrap();
    c.flush().unwrap();
    // The dense prefetch keeps the two points with the largest id (Dot with [1, 0]).
    let mut request = QueryRequest::nearest(
        Some("plain".into()),
        QueryInput::Sparse(s(&[2], &[1.0])),
        10,
    );
    request.prefetch = vec![Prefetch {
        prefetch: vec![],
        query: Some(Query::Nearest(QueryInput::Dense(vec![1.0, 0.0]))),
        using: None,
        filter: None,
        params: SearchParams::default(),
        score_threshold: None,
        limit: 2,
    }];
    let response = c.query(&request).unwrap();
    let got: Vec<(u64, f32)> = response
        .hits
        .iter()
        .map(|h| (ids([h.id])[0], h.score))
        .collect();
    assert_eq!(got, vec![(3, 9.0), (2, 5.0)]);
    let root = response.stages.last().unwrap();
    assert_eq!(root.strategy.as_str(), "rescore");
    // Without prefetch the sealed inverted index answers.
    let plain = QueryRequest::nearest(
        Some("plain".into()),
        QueryInput::Sparse(s(&[3], &[2.0])),
        10,
    );
    let response = c.query(&plain).unwrap();
    assert_eq!(response.hits.len(), 1);
    assert_eq!(response.stages[0].strategy.as_str(), "inverted_index");
    // A point's stored sparse vector as the query; as in Qdrant, the point itself is left out.
    let by_id = QueryRequest::nearest(Some("plain".into()), QueryInput::Point(PointId::Num(2)), 10);
    let hits = c.query(&by_id).unwrap().hits;
    assert_eq!(ids(hits.iter().map(|h| h.id)), vec![3, 1]);
}

#[test]
fn fusion_combines_a_dense_and_a_sparse_prefetch() {
    use quiver_engine::query::{Fusion, DEFAULT_RRF_K};
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "s", config());
    let s = |i: &[u32], v: &[f32]| SparseVector {
        indices: i.to_vec(),
        values: v.to_vec(),
    };
    // Dense (Dot with [1, 0]) ranks 4, 3, 2, 1; sparse (dim 7) ranks 1, 2, 3 (4 lacks dim 7).
    c.upsert(vec![
        point(1, &s(&[7], &[9.0])),
        point(2, &s(&[7], &[5.0])),
        point(3, &s(&[7], &[1.0])),
        point(4, &s(&[8], &[1.0])),
    ])
    .unwrap();
    let prefetch = |using: Option<&str>, input: QueryInput| Prefetch {
        prefetch: vec![],
        query: Some(Query::Nearest(input)),
        using: using.map(str::to_string),
        filter: None,
        params: SearchParams::default(),
        score_threshold: None,
        limit: 10,
    };
    let fused = |fusion: Fusion, threshold: Option<f32>, offset: usize| {
        let mut r = QueryRequest::nearest(None, QueryInput::Dense(vec![]), 10);
        r.query = Some(Query::Fusion(fusion));
        r.score_threshold = threshold;
        r.offset = offset;
        r.with_payload = WithPayload::All;
        r.prefetch = vec![
            prefetch(None, QueryInput::Dense(vec![1.0, 0.0])),
            prefetch(Some("plain"), QueryInput::Sparse(s(&[7], &[1.0]))),
        ];
        let response = c.query(&r).unwrap();
        assert_eq!(response.stages.last().unwrap().strategy.as_str(), "fusion");
        response
            .hits
            .into_iter()
            .map(|h| {
                assert!(h.payload.is_some());
                (ids([h.id])[0], h.score)
            })
            .collect::<Vec<_>>()
    };
    let rrf = Fusion::Rrf {
        k: DEFAULT_RRF_K,
        weights: None,
    };
    // Positions: 1 → dense 3, sparse 0; 2 → 2, 1; 3 → 1, 2; 4 → 0, -.
    let r = |p: usize| 1.0 / (p as f32 + 2.0);
    let want = [
        (1, r(3) + r(0)),
        (2, r(2) + r(1)),
        (3, r(1) + r(2)),
        (4, r(0)),
    ];
    let got = fused(rrf.clone(), None, 0);
    assert_eq!(got.len(), 4);
    for ((id, score), (wid, wscore)) in got.iter().zip(want) {
        assert_eq!(*id, wid, "{got:?}");
        assert!((score - wscore).abs() < 1e-6);
    }
    // Threshold and offset apply to the fused scores.
    assert_eq!(fused(rrf.clone(), Some(0.55), 0).len(), 3);
    assert_eq!(ids_of(&fused(rrf, None, 2)), vec![3, 4]);
    let dbsf = fused(Fusion::Dbsf, None, 0);
    assert_eq!(dbsf.len(), 4);
    // A fusion without prefetches, or with `using`, is refused.
    let mut bad = QueryRequest::nearest(Some("plain".into()), QueryInput::Dense(vec![]), 3);
    bad.query = Some(Query::Fusion(Fusion::Dbsf));
    assert!(c.query(&bad).is_err());
}

fn ids_of(hits: &[(u64, f32)]) -> Vec<u64> {
    hits.iter().map(|h| h.0).collect()
}
