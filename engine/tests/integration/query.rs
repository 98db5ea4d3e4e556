//! `Collection::query`: prefetch trees, point-id inputs, and the per-stage statistics the engine
//! reports (which strategy each stage really ran).

use quiver_engine::filter::Filter;
use quiver_engine::query::{Prefetch, Query, QueryInput, QueryRequest, SearchParams, Strategy};
use quiver_engine::{Distance, Error, PointId, SearchRequest};
use serde_json::json;

use crate::common::*;

const N: u64 = 5_000;

fn filter(v: serde_json::Value) -> Filter {
    serde_json::from_value(v).unwrap()
}

/// One sealed segment of 5,000 points with a graph; `g` runs over 0..100, so `g = 3` passes 1 %.
fn sealed() -> (tempfile::TempDir, quiver_engine::Collections) {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "q", small_config(4, Distance::Cosine, 10_000, 100));
    let vectors = random_vectors(N as usize, 4, 11);
    let points = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| dense(i as u64, v, json!({"g": i % 100})))
        .collect();
    c.upsert(points).unwrap();
    c.flush().unwrap();
    assert_eq!(c.info().indexed_vectors_count, N as usize);
    (dir, cs)
}

fn nearest(v: Vec<f32>, limit: usize) -> QueryRequest {
    QueryRequest::nearest(None, QueryInput::Dense(v), limit)
}

#[test]
fn stages_report_the_strategy_the_engine_ran() {
    let (_dir, cs) = sealed();
    let c = cs.get("q").unwrap();
    let q = vec![0.3, -0.2, 0.9, 0.1];

    let plain = c.query(&nearest(q.clone(), 5)).unwrap();
    assert_eq!(plain.hits.len(), 5);
    let stage = &plain.stages[0];
    assert_eq!(stage.strategy, Strategy::Hnsw);
    assert_eq!((stage.depth, stage.limit, stage.dims), (0, 5, 4));
    assert_eq!(stage.segments_indexed, 1);

    // 1 % of the points pass: the filter planner scans instead of walking the graph, and the stage
    // says so (it used to be reported as `hnsw`).
    let mut selective = nearest(q.clone(), 5);
    selective.filter = Some(filter(
        json!({"must": [{"key": "g", "match": {"value": 3}}]}),
    ));
    let ran = c.query(&selective).unwrap();
    assert_eq!(ran.stages[0].strategy, Strategy::Exact);
    assert_eq!(ran.stages[0].segments_indexed, 0);
    assert!(ran.hits.iter().all(|h| match h.id {
        PointId::Num(n) => n % 100 == 3,
        PointId::Uuid(_) => false,
    }));

    // Half pass: the graph is walked with the filter inside.
    let mut broad = nearest(q.clone(), 5);
    broad.filter = Some(filter(json!({"must": [{"key": "g", "range": {"lt": 50}}]})));
    assert_eq!(c.query(&broad).unwrap().stages[0].strategy, Strategy::Hnsw);

    let mut exact = nearest(q.clone(), 5);
    exact.params.exact = true;
    let exact = c.query(&exact).unwrap();
    assert_eq!(exact.stages[0].strategy, Strategy::Exact);
    // Exact and graph agree on this easy, small set.
    assert_eq!(exact.hits[0].id, plain.hits[0].id);
}

#[test]
fn prefetches_run_first_and_their_union_is_rescored() {
    let (_dir, cs) = sealed();
    let c = cs.get("q").unwrap();
    let q = vec![0.3, -0.2, 0.9, 0.1];
    let prefetch = |limit: usize, g: u64| Prefetch {
        prefetch: Vec::new(),
        query: Some(Query::Nearest(QueryInput::Dense(q.clone()))),
        using: None,
        filter: Some(filter(
            json!({"must": [{"key": "g", "range": {"gte": g, "lt": g + 50}}]}),
        )),
        params: SearchParams::default(),
        score_threshold: None,
        limit,
    };
    let mut request = nearest(q.clone(), 4);
    request.prefetch = vec![prefetch(10, 0), prefetch(10, 50)];
    request.offset = 1;
    let res = c.query(&request).unwrap();
    let shape: Vec<_> = res
        .stages
        .iter()
        .map(|s| (s.depth, s.limit, s.candidates, s.strategy))
        .collect();
    assert_eq!(
        shape,
        vec![
            (1, 10, None, Strategy::Hnsw),
            (1, 10, None, Strategy::Hnsw),
            (0, 5, Some(20), Strategy::Rescore),
        ]
    );
    // The same as one search over everything: the two prefetches split the points in half.
    let mut everything = SearchRequest::dense(q.clone(), 5);
    everything.exact = true;
    let all = c.search(&everything).unwrap();
    let got: Vec<_> = res.hits.iter().map(|h| h.id).collect();
    let want: Vec<_> = all.iter().skip(1).map(|h| h.id).collect();
    assert_eq!(got, want);
}

#[test]
fn point_inputs_missing_points_and_malformed_trees() {
    let (_dir, cs) = sealed();
    let c = cs.get("q").unwrap();
    // Querying by a point leaves that point out, as Qdrant does: the best hit is its nearest other.
    let mut by_id = QueryRequest::nearest(None, QueryInput::Point(PointId::Num(7)), 2);
    by_id.params.exact = true;
    let seven = c
        .retrieve(
            &[PointId::Num(7)],
            &quiver_engine::WithPayload::None,
            &quiver_engine::WithVectors::All,
        )
        .unwrap()
        .remove(0)
        .vectors
        .unwrap()
        .remove("")
        .unwrap();
    let quiver_engine::Vector::Dense(seven) = seven else {
        panic!("dense")
    };
    let mut around = SearchRequest::dense(seven, 3);
    around.exact = true;
    let want: Vec<_> = c.search(&around).unwrap().iter().map(|h| h.id).collect();
    assert_eq!(want[0], PointId::Num(7));
    let got: Vec<_> = c.query(&by_id).unwrap().hits.iter().map(|h| h.id).collect();
    assert_eq!(got, want[1..]);
    let missing = QueryRequest::nearest(None, QueryInput::Point(PointId::Num(N + 1)), 1);
    assert!(matches!(
        c.query(&missing),
        Err(Error::PointNotFound { .. })
    ));

    let mut no_query = nearest(vec![1.0, 0.0, 0.0, 0.0], 3);
    no_query.query = None;
    no_query.offset = 2;
    let listed = c.query(&no_query).unwrap();
    assert_eq!(ids(listed.hits.iter().map(|h| h.id)), vec![2, 3, 4]);
    assert!(listed.stages.is_empty());

    let mut headless = nearest(vec![1.0, 0.0, 0.0, 0.0], 3);
    headless.prefetch = vec![Prefetch {
        prefetch: Vec::new(),
        query: None,
        using: None,
        filter: None,
        params: SearchParams::default(),
        score_threshold: None,
        limit: 3,
    }];
    // A prefetch without a query passes up its first `limit` points in id order (a scroll, as in
    // Qdrant); the root rescores those.
    let rescored = c.query(&headless).unwrap();
    let mut got = ids(rescored.hits.iter().map(|h| h.id));
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 2]);
    assert!(rescored.hits.windows(2).all(|w| w[0].score >= w[1].score));
    headless.prefetch[0].filter = Some(filter(
        json!({"must": [{"key": "g", "match": {"value": 3}}]}),
    ));
    let mut got = ids(c.query(&headless).unwrap().hits.iter().map(|h| h.id));
    got.sort_unstable();
    assert_eq!(got, vec![3, 103, 203]);

    let multi = QueryRequest::nearest(None, QueryInput::Multi(vec![vec![1.0; 4]]), 3);
    assert!(matches!(c.query(&multi), Err(Error::InvalidInput(_))));
}

#[test]
fn formula_scores_sealed_candidates_through_the_payload_index() {
    use quiver_engine::payload_schema::PayloadFieldSchema;
    use quiver_engine::query::formula::{Expression, Formula, Variable};
    let (_dir, cs) = sealed();
    let c = cs.get("q").unwrap();
    // The condition is answered by the index of a sealed segment, not by reading payloads.
    let schema: PayloadFieldSchema = serde_json::from_value(json!("integer")).unwrap();
    c.create_payload_index("g", schema).unwrap();
    let q = vec![0.3, -0.2, 0.9, 0.1];
    let mut plain = nearest(q.clone(), 200);
    plain.params.exact = true;
    let prefetched = c.query(&plain).unwrap().hits;
    let low_g = |n: u64| n % 100 < 10;
    // `$score + 2·[g < 10] + g / 1000`
    let formula = Formula {
        expression: Expression::Sum(vec![
            Expression::Variable(Variable::Score(0)),
            Expression::Mult(vec![
                Expression::Constant(2.0),
                Expression::Condition(Box::new(
                    serde_json::from_value(json!({"key": "g", "range": {"lt": 10}})).unwrap(),
                )),
            ]),
            Expression::Div {
                left: Box::new(Expression::Variable(Variable::Payload("g".into()))),
                right: Box::new(Expression::Constant(1000.0)),
                by_zero_default: None,
            },
        ]),
        defaults: Default::default(),
    };
    let mut request = nearest(q.clone(), 5);
    request.query = Some(Query::Formula(formula));
    let mut prefetch = Prefetch {
        prefetch: Vec::new(),
        query: Some(Query::Nearest(QueryInput::Dense(q.clone()))),
        using: None,
        filter: None,
        params: SearchParams::default(),
        score_threshold: None,
        limit: 200,
    };
    prefetch.params.exact = true;
    request.prefetch = vec![prefetch];
    let res = c.query(&request).unwrap();
    let mut want: Vec<(u64, f32)> = prefetched
        .iter()
        .map(|h| {
            let PointId::Num(n) = h.id else {
                panic!("numeric ids")
            };
            let boost = if low_g(n) { 2.0 } else { 0.0 };
            let s = f64::from(h.score) + boost + (n % 100) as f64 / 1000.0;
            (n, s as f32)
        })
        .collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1));
    want.truncate(5);
    let got: Vec<(u64, f32)> = res
        .hits
        .iter()
        .map(|h| match h.id {
            PointId::Num(n) => (n, h.score),
            PointId::Uuid(_) => panic!("numeric ids"),
        })
        .collect();
    assert_eq!(
        got.iter().map(|h| h.0).collect::<Vec<_>>(),
        want.iter().map(|h| h.0).collect::<Vec<_>>()
    );
    for (g, w) in got.iter().zip(&want) {
        assert!((g.1 - w.1).abs() < 1e-5, "{got:?} != {want:?}");
    }
    let stage = res.stages.last().unwrap();
    assert_eq!(
        (stage.strategy, stage.candidates),
        (Strategy::Formula, Some(200))
    );

    // Without a prefetch there is nothing to rescore: Qdrant's refusal.
    request.prefetch.clear();
    let Err(Error::InvalidInput(msg)) = c.query(&request) else {
        panic!("a formula without prefetch runs")
    };
    assert!(
        msg.contains("cannot apply Formula without prefetches"),
        "{msg}"
    );
}
