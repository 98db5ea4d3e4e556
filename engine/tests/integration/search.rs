//! Search against brute force: every segment kind, filters both ways through the planner, candidates,
//! thresholds, pagination and multi-vectors.

use std::collections::HashSet;

use quiver_engine::config::Distance;
use quiver_engine::distance;
use quiver_engine::filter::Filter;
use quiver_engine::point::{
    NamedVectors, PointInsert, PointsSelector, QueryVector, SearchRequest, Vector, WithPayload,
};
use quiver_engine::PointId;
use serde_json::json;

use crate::common::*;

fn filter(v: serde_json::Value) -> Filter {
    serde_json::from_value(v).unwrap()
}

fn brute(
    vs: &[(u64, Vec<f32>, i64)],
    dist: Distance,
    q: &[f32],
    k: usize,
    keep: impl Fn(u64, i64) -> bool,
) -> Vec<u64> {
    let mut qn = q.to_vec();
    let mut scored: Vec<(f32, u64)> = vs
        .iter()
        .filter(|(id, _, g)| keep(*id, *g))
        .map(|(id, v, _)| {
            let mut v = v.clone();
            if dist == Distance::Cosine {
                distance::normalize(&mut v);
                distance::normalize(&mut qn);
            }
            (distance::score(dist, &qn, &v), *id)
        })
        .collect();
    scored.sort_by(|a, b| {
        if distance::is_better(dist, a.0, b.0) {
            std::cmp::Ordering::Less
        } else if distance::is_better(dist, b.0, a.0) {
            std::cmp::Ordering::Greater
        } else {
            a.1.cmp(&b.1)
        }
    });
    scored.into_iter().take(k).map(|s| s.1).collect()
}

/// 3000 points over three sealed segments with graphs plus an in-memory tail; group = id % 100.
type Setup = (
    tempfile::TempDir,
    std::sync::Arc<quiver_engine::Collection>,
    Vec<(u64, Vec<f32>, i64)>,
);

fn setup(dist: Distance) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "s", small_config(8, dist, 1_000_000, 500));
    let vs: Vec<(u64, Vec<f32>, i64)> = random_vectors(3200, 8, 11)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i as u64, v, (i % 100) as i64))
        .collect();
    for chunk in vs.chunks(1000) {
        c.upsert(
            chunk
                .iter()
                .map(|(id, v, g)| dense(*id, v.clone(), json!({"group": g})))
                .collect(),
        )
        .unwrap();
        if chunk.len() == 1000 {
            c.flush().unwrap();
        }
    }
    let info = c.info();
    assert_eq!(info.segments_count, 4, "{info:?}");
    assert_eq!(info.indexed_vectors_count, 3000);
    drop(cs);
    (dir, c, vs)
}

#[test]
fn exact_search_matches_brute_force_for_every_metric() {
    for dist in [Distance::Cosine, Distance::Dot, Distance::Euclid] {
        let (_dir, c, vs) = setup(dist);
        for q in random_vectors(5, 8, 99) {
            let mut req = SearchRequest::dense(q.clone(), 10);
            req.exact = true;
            let got = ids(c.search(&req).unwrap().into_iter().map(|h| h.id));
            assert_eq!(got, brute(&vs, dist, &q, 10, |_, _| true), "{dist:?}");
            // Graph search finds nearly the same.
            req.exact = false;
            req.ef = Some(128);
            let approx: HashSet<u64> = ids(c.search(&req).unwrap().into_iter().map(|h| h.id))
                .into_iter()
                .collect();
            let hit = got.iter().filter(|i| approx.contains(i)).count();
            assert!(hit >= 8, "{dist:?}: {hit}/10");
        }
    }
}

#[test]
fn filters_selective_and_broad_offset_threshold_candidates() {
    let (_dir, c, vs) = setup(Distance::Dot);
    let q = random_vectors(1, 8, 5).remove(0);
    // Selective (1% of points): the planner scans exactly, so results equal brute force.
    let mut req = SearchRequest::dense(q.clone(), 10);
    req.filter = Some(filter(
        json!({"must": [{"key": "group", "match": {"value": 7}}]}),
    ));
    let got = ids(c.search(&req).unwrap().into_iter().map(|h| h.id));
    assert_eq!(got, brute(&vs, Distance::Dot, &q, 10, |_, g| g == 7));
    // Broad (80%): filtered inside the graph walk; every hit passes, recall stays high.
    req.filter = Some(filter(
        json!({"must": [{"key": "group", "range": {"lt": 80}}]}),
    ));
    req.ef = Some(200);
    let got = ids(c.search(&req).unwrap().into_iter().map(|h| h.id));
    assert!(got.iter().all(|id| id % 100 < 80));
    let want = brute(&vs, Distance::Dot, &q, 10, |_, g| g < 80);
    assert!(got.iter().filter(|i| want.contains(i)).count() >= 8);

    // Offset and limit page through the exact order; the threshold cuts it.
    let all = brute(&vs, Distance::Dot, &q, 30, |_, _| true);
    let mut req = SearchRequest::dense(q.clone(), 10);
    req.exact = true;
    req.offset = 10;
    let page2 = c.search(&req).unwrap();
    assert_eq!(ids(page2.iter().map(|h| h.id)), all[10..20].to_vec());
    req.offset = 0;
    req.score_threshold = Some(page2[4].score);
    let cut = c.search(&req).unwrap();
    assert!(cut.iter().all(|h| h.score >= page2[4].score));

    // Candidates restrict scoring to those points.
    let cands: Vec<PointId> = [5u64, 50, 500, 3100, 99_999].map(PointId::Num).to_vec();
    let mut req = SearchRequest::dense(q.clone(), 10);
    req.candidates = Some(cands);
    req.with_payload = WithPayload::All;
    let got = c.search(&req).unwrap();
    let mut got_ids = ids(got.iter().map(|h| h.id));
    got_ids.sort();
    assert_eq!(got_ids, vec![5, 50, 500, 3100]);
    assert!(got[0].payload.as_ref().unwrap().contains_key("group"));
}

#[test]
fn deleted_and_updated_points_in_search() {
    let (_dir, c, vs) = setup(Distance::Euclid);
    let q = vs[42].1.clone();
    let mut req = SearchRequest::dense(q.clone(), 1);
    assert_eq!(
        ids(c.search(&req).unwrap().into_iter().map(|h| h.id)),
        vec![42]
    );
    c.delete(PointsSelector::Ids(vec![PointId::Num(42)]))
        .unwrap();
    for exact in [false, true] {
        req.exact = exact;
        req.limit = 50;
        let got = ids(c.search(&req).unwrap().into_iter().map(|h| h.id));
        assert!(!got.contains(&42));
    }
    // Move point 7 onto the query: it wins, with its new vector.
    c.upsert(vec![dense(7, q.clone(), json!({}))]).unwrap();
    req.limit = 1;
    let hit = &c.search(&req).unwrap()[0];
    assert_eq!((hit.id, hit.score), (PointId::Num(7), 0.0));
    c.delete(PointsSelector::Filter(filter(
        json!({"must": [{"key": "group", "match": {"value": 3}}]}),
    )))
    .unwrap();
    let mut req = SearchRequest::dense(vs[3].1.clone(), 100);
    req.exact = true;
    let got = ids(c.search(&req).unwrap().into_iter().map(|h| h.id));
    assert!(got.iter().all(|id| id % 100 != 3));
    c.vacuum().unwrap();
    let got = ids(c.search(&req).unwrap().into_iter().map(|h| h.id));
    assert!(got.iter().all(|id| id % 100 != 3 && *id != 42));
}

#[test]
fn multivector_maxsim_and_type_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "mv", config_with_multi(4, Distance::Dot));
    let docs: Vec<Vec<Vec<f32>>> = (0..30)
        .map(|i| random_vectors(1 + i % 4, 4, 100 + i as u64))
        .collect();
    let points: Vec<PointInsert> = docs
        .iter()
        .enumerate()
        .map(|(i, rows)| {
            let mut vectors = NamedVectors::new();
            vectors.insert("colbert".into(), Vector::Multi(rows.clone()));
            if i % 2 == 0 {
                vectors.insert(String::new(), Vector::Dense(rows[0].clone()));
            }
            PointInsert {
                id: PointId::Num(i as u64),
                vectors,
                payload: None,
            }
        })
        .collect();
    c.upsert(points[..15].to_vec()).unwrap();
    c.flush().unwrap();
    c.upsert(points[15..].to_vec()).unwrap();
    let query = random_vectors(3, 4, 1);
    let mut want: Vec<(f32, u64)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (distance::max_sim(&query.concat(), &d.concat(), 4), i as u64))
        .collect();
    want.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
    let mut req = SearchRequest::dense(vec![], 5);
    req.using = "colbert".into();
    req.query = QueryVector::Multi(query.clone());
    let got = c.search(&req).unwrap();
    assert_eq!(
        ids(got.iter().map(|h| h.id)),
        want.iter().take(5).map(|w| w.1).collect::<Vec<_>>()
    );

    // Points without the dense vector are simply absent from dense search.
    let mut dreq = SearchRequest::dense(docs[1][0].clone(), 30);
    dreq.exact = true;
    let got = ids(c.search(&dreq).unwrap().into_iter().map(|h| h.id));
    assert_eq!(got.len(), 15);
    assert!(got.iter().all(|i| i % 2 == 0));

    req.query = QueryVector::Dense(vec![0.0; 4]);
    let err = c.search(&req).unwrap_err().to_string();
    assert!(err.contains("colbert"), "{err}");
    dreq.query = QueryVector::Multi(query);
    assert!(matches!(
        c.search(&dreq),
        Err(quiver_engine::Error::InvalidInput(_))
    ));
    let mut bad = points[0].clone();
    bad.vectors.insert("colbert".into(), Vector::Multi(vec![]));
    assert!(matches!(
        c.upsert(vec![bad]),
        Err(quiver_engine::Error::InvalidInput(_))
    ));
}

#[test]
fn cosine_vectors_are_stored_normalised_and_zero_is_stored_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "cos", small_config(2, Distance::Cosine, 100, 100));
    c.upsert(vec![dense(1, vec![3.0, 4.0], json!({}))]).unwrap();
    let r = c
        .retrieve(
            &[PointId::Num(1)],
            &WithPayload::None,
            &quiver_engine::WithVectors::All,
        )
        .unwrap();
    let v = vectors_of(r[0].vectors.as_ref().unwrap());
    assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    // Qdrant stores an all-zero vector under Cosine; it scores 0 against any query.
    c.upsert(vec![dense(2, vec![0.0, 0.0], json!({}))]).unwrap();
    let r = c
        .retrieve(
            &[PointId::Num(2)],
            &WithPayload::None,
            &quiver_engine::WithVectors::All,
        )
        .unwrap();
    assert_eq!(vectors_of(r[0].vectors.as_ref().unwrap()), &[0.0, 0.0]);
    let hits = c.search(&SearchRequest::dense(vec![1.0, 1.0], 10)).unwrap();
    let zero = hits.iter().find(|h| h.id == PointId::Num(2)).unwrap();
    assert_eq!(zero.score, 0.0);
}

#[test]
fn a_single_vector_for_a_multivector_field_is_stored_as_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "m", config_with_multi(2, Distance::Dot));
    let mut point = dense(1, vec![1.0, 0.0], json!({}));
    point
        .vectors
        .insert("colbert".into(), Vector::Dense(vec![0.5, 2.0]));
    c.upsert(vec![point]).unwrap();
    let r = c
        .retrieve(
            &[PointId::Num(1)],
            &WithPayload::None,
            &quiver_engine::WithVectors::All,
        )
        .unwrap();
    assert_eq!(
        r[0].vectors.as_ref().unwrap()["colbert"],
        Vector::Multi(vec![vec![0.5, 2.0]])
    );
}
