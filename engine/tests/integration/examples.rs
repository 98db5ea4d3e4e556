//! Example-scored stages (`recommend` with `best_score`, `discover`, `context`): a sealed segment with
//! a graph answers them by a graph walk with the example scoring, `exact` and segments without a graph
//! scan; and the read deadline (Qdrant's `timeout`) that stops a query.

use std::time::{Duration, Instant};

use quiver_engine::query::{
    ContextPair, Deadline, Query, QueryInput, QueryRequest, Recommend, RecommendStrategy, Strategy,
};
use quiver_engine::{Collection, Distance, Error, PointId};
use serde_json::json;

use crate::common::*;

const DIM: usize = 8;

/// A collection of `n` random points; `seal` flushes them into one sealed segment with a graph.
fn collection(n: usize, seal: bool) -> (tempfile::TempDir, std::sync::Arc<Collection>) {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "ex", small_config(DIM, Distance::Cosine, 100_000, 10));
    let points = random_vectors(n, DIM, 7)
        .into_iter()
        .enumerate()
        .map(|(i, v)| dense(i as u64, v, json!({"g": i % 10})))
        .collect();
    c.upsert(points).unwrap();
    if seal {
        c.flush().unwrap();
        assert_eq!(c.info().indexed_vectors_count, n);
    }
    (dir, c)
}

fn d(v: &[f32]) -> QueryInput {
    QueryInput::Dense(v.to_vec())
}

fn pair(p: &[f32], n: &[f32]) -> ContextPair {
    ContextPair {
        positive: d(p),
        negative: d(n),
    }
}

/// The three kinds of example queries, built from random vectors `v[0..5]`.
fn queries(v: &[Vec<f32>]) -> Vec<(&'static str, Query)> {
    vec![
        (
            "best_score",
            Query::Recommend(Recommend {
                positive: vec![d(&v[0]), d(&v[1])],
                negative: vec![d(&v[2])],
                strategy: RecommendStrategy::BestScore,
            }),
        ),
        (
            "discover",
            Query::Discover {
                target: d(&v[0]),
                context: vec![pair(&v[1], &v[2]), pair(&v[3], &v[4])],
            },
        ),
        (
            "context",
            Query::Context(vec![pair(&v[1], &v[2]), pair(&v[3], &v[4])]),
        ),
    ]
}

fn request(query: Query, limit: usize, exact: bool) -> QueryRequest {
    let mut r = QueryRequest::nearest(None, d(&[0.0; DIM]), limit);
    r.query = Some(query);
    r.params.exact = exact;
    r
}

fn scored(hits: &[quiver_engine::ScoredPoint]) -> Vec<(PointId, u32)> {
    hits.iter().map(|h| (h.id, h.score.to_bits())).collect()
}

#[test]
fn graph_walks_find_what_exact_scans_find() {
    let (_dir, c) = collection(2_000, true);
    let k = 10;
    for kind in ["best_score", "discover", "context"] {
        let (mut found, mut wanted) = (0usize, 0usize);
        for seed in 0..20u64 {
            let v = random_vectors(5, DIM, 1_000 + seed);
            let (_, query) = queries(&v).into_iter().find(|(n, _)| *n == kind).unwrap();
            let walked = c.query(&request(query.clone(), k, false)).unwrap();
            let exact = c.query(&request(query, k, true)).unwrap();
            assert_eq!(walked.stages[0].strategy, Strategy::Hnsw, "{kind}");
            assert_eq!(walked.stages[0].segments_indexed, 1, "{kind}");
            assert_eq!(exact.stages[0].strategy, Strategy::Exact, "{kind}");
            assert_eq!(exact.stages[0].segments_indexed, 0, "{kind}");
            assert_eq!(walked.hits.len(), k, "{kind}");
            // Ties (a context score of 0 inside the zone) make ids ambiguous: a walked hit counts
            // when it scores as well as the exact scan's k-th.
            let kth = exact.hits[k - 1].score;
            found += walked.hits.iter().filter(|h| h.score >= kth).count();
            wanted += k;
            // The walk scores points the way the scan does.
            for h in &walked.hits {
                if let Some(e) = exact.hits.iter().find(|e| e.id == h.id) {
                    assert_eq!(h.score.to_bits(), e.score.to_bits(), "{kind}");
                }
            }
        }
        let recall = found as f64 / wanted as f64;
        assert!(recall >= 0.9, "{kind}: recall@{k} {recall}");
    }
}

#[test]
fn exact_scans_answer_as_the_scan_of_an_unsealed_segment() {
    let (_a, sealed) = collection(300, true);
    let (_b, fresh) = collection(300, false);
    for seed in 0..3u64 {
        let v = random_vectors(5, DIM, 2_000 + seed);
        for (kind, query) in queries(&v) {
            let a = sealed.query(&request(query.clone(), 25, true)).unwrap();
            let b = fresh.query(&request(query, 25, false)).unwrap();
            assert_eq!(b.stages[0].strategy, Strategy::Exact, "{kind}");
            assert_eq!(scored(&a.hits), scored(&b.hits), "{kind}");
        }
    }
}

#[test]
fn the_walk_keeps_limit_plus_offset_and_pages_like_the_scan() {
    let (_dir, c) = collection(400, true);
    let v = random_vectors(5, DIM, 3_000);
    let (_, query) = queries(&v).remove(0);
    let mut all = request(query.clone(), 20, false);
    all.params.hnsw_ef = Some(4);
    let all = c.query(&all).unwrap();
    assert_eq!(
        all.hits.len(),
        20,
        "ef below limit + offset still fills the page"
    );
    let mut page = request(query, 10, false);
    page.offset = 10;
    page.params.hnsw_ef = Some(4);
    let page = c.query(&page).unwrap();
    assert_eq!(scored(&page.hits), scored(&all.hits[10..]));
}

#[test]
fn a_past_deadline_stops_every_kind_of_read() {
    let (_dir, c) = collection(300, true);
    let v = random_vectors(5, DIM, 4_000);
    let past = Deadline::after(Duration::ZERO, "Search");
    let mut requests: Vec<QueryRequest> = queries(&v)
        .into_iter()
        .flat_map(|(_, q)| [request(q.clone(), 5, false), request(q, 5, true)])
        .collect();
    requests.push(QueryRequest::nearest(None, d(&v[0]), 5));
    for mut r in requests {
        r.deadline = Some(past);
        match c.query(&r) {
            Err(Error::Timeout { operation, after }) => {
                assert_eq!((operation, after), ("Search", Duration::ZERO));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
    let err = past.error().to_string();
    assert_eq!(
        err,
        "Timeout error: Operation 'Search' timed out after 0 seconds"
    );
    // A generous deadline changes nothing.
    let q = queries(&v).remove(1).1;
    let mut timed = request(q.clone(), 10, false);
    timed.deadline = Some(Deadline::after(Duration::from_secs(3_600), "Search"));
    assert_eq!(
        scored(&c.query(&timed).unwrap().hits),
        scored(&c.query(&request(q, 10, false)).unwrap().hits)
    );
}

#[test]
fn a_deadline_stops_a_long_scan_inside_it() {
    // Many context pairs over an unsealed segment: one long exact scan of the examples.
    let (_dir, c) = collection(20_000, false);
    let v = random_vectors(200, DIM, 5_000);
    let pairs = v.chunks(2).map(|p| pair(&p[0], &p[1])).collect();
    let slow = request(Query::Context(pairs), 10, true);
    let started = Instant::now();
    c.query(&slow).unwrap();
    let untimed = started.elapsed();
    let mut timed = slow.clone();
    timed.deadline = Some(Deadline::after(untimed / 10, "Search"));
    let started = Instant::now();
    assert!(matches!(c.query(&timed), Err(Error::Timeout { .. })));
    let stopped = started.elapsed();
    assert!(
        stopped < untimed / 2,
        "stopped after {stopped:?}; the whole scan takes {untimed:?}"
    );
}

/// A multivector field scores each example by MaxSim, so `sum_scores` over examples is the sum and
/// difference of the nearest-neighbour scores of the same matrices: in the appendable segment (f16
/// rows, widened into a buffer the scan reuses) and in a sealed one (f32 rows from its file).
#[test]
fn multivector_examples_score_by_max_sim_before_and_after_a_seal() {
    use quiver_engine::point::{NamedVectors, PointInsert, Vector};
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "mx", config_with_multi(DIM, Distance::Cosine));
    let n = 60;
    let points = (0..n)
        .map(|i| {
            // 1 to 5 token rows a point; every seventh point has no multivector at all.
            let rows = random_vectors(1 + i % 5, DIM, 3_000 + i as u64);
            let mut vectors = NamedVectors::new();
            vectors.insert("".into(), Vector::Dense(rows[0].clone()));
            if i % 7 != 3 {
                vectors.insert("colbert".into(), Vector::Multi(rows));
            }
            PointInsert {
                id: PointId::Num(i as u64),
                vectors,
                payload: None,
            }
        })
        .collect();
    c.upsert(points).unwrap();
    let matrix = |seed: u64, rows: usize| QueryInput::Multi(random_vectors(rows, DIM, seed));
    let (p1, p2, neg) = (matrix(1, 3), matrix(2, 2), matrix(3, 4));
    let using = Some("colbert".to_string());
    let scores = |c: &Collection, q: Query| -> Vec<(PointId, f32)> {
        let mut r = QueryRequest::nearest(using.clone(), d(&[0.0; DIM]), n);
        r.query = Some(q);
        r.params.exact = true;
        let mut hits: Vec<_> = c
            .query(&r)
            .unwrap()
            .hits
            .iter()
            .map(|h| (h.id, h.score))
            .collect();
        hits.sort_by_key(|h| h.0);
        hits
    };
    for sealed in [false, true] {
        if sealed {
            c.flush().unwrap();
        }
        let nearest = |m: &QueryInput| scores(&c, Query::Nearest(m.clone()));
        let (a, b, x) = (nearest(&p1), nearest(&p2), nearest(&neg));
        assert_eq!(a.len(), (0..n).filter(|i| i % 7 != 3).count());
        let summed = scores(
            &c,
            Query::Recommend(Recommend {
                positive: vec![p1.clone(), p2.clone()],
                negative: vec![neg.clone()],
                strategy: RecommendStrategy::SumScores,
            }),
        );
        assert_eq!(summed.len(), a.len(), "sealed: {sealed}");
        for (i, &(id, got)) in summed.iter().enumerate() {
            assert_eq!(id, a[i].0);
            let want = (a[i].1 + b[i].1) - x[i].1;
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "point {id:?}, sealed: {sealed}"
            );
        }
    }
}
