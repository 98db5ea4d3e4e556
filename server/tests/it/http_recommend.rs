//! Recommend, discover and context over HTTP (the Query API forms and Qdrant's legacy routes),
//! checked against rankings computed here from Qdrant's formulas, under Dot, Cosine and Euclid.

use serde_json::{json, Value};

use crate::support::{dot, ids, normalized, vector, Client, QuiverProcess};

const N: u64 = 40;
const DIM: usize = 4;
const DISTANCES: [(&str, &str); 3] = [("dot", "Dot"), ("cos", "Cosine"), ("euc", "Euclid")];

fn setup(c: &Client) {
    let vectors: serde_json::Map<String, Value> = DISTANCES
        .iter()
        .map(|(name, d)| (name.to_string(), json!({"size": DIM, "distance": d})))
        .collect();
    c.ok(
        "PUT",
        "/collections/reco",
        Some(&json!({ "vectors": vectors })),
    );
    let points: Vec<Value> = (0..N)
        .map(|i| {
            let v = vector(i + 1, DIM);
            json!({"id": i, "vector": {"dot": v, "cos": v, "euc": v}, "payload": {"k": i % 4}})
        })
        .collect();
    c.upsert("reco", json!(points));
}

/// The vector a point holds under `name` (Cosine stores unit vectors).
fn stored(name: &str, i: u64) -> Vec<f32> {
    let v = vector(i + 1, DIM);
    if name == "cos" {
        normalized(&v)
    } else {
        v
    }
}

/// Qdrant's internal similarity.
fn sim(name: &str, a: &[f32], b: &[f32]) -> f32 {
    match name {
        "euc" => -a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>(),
        _ => dot(a, b),
    }
}

fn sigmoid(x: f32) -> f32 {
    x / (1.0 + x.abs())
}

fn scaled(x: f32) -> f32 {
    0.5 * (sigmoid(x) + 1.0)
}

/// Every point but `exclude`, scored by `score` (higher first), best `k`.
fn ranked(exclude: &[u64], k: usize, score: impl Fn(&[f32]) -> f32, name: &str) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = (0..N)
        .filter(|i| !exclude.contains(i))
        .map(|i| (i, score(&stored(name, i))))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

fn assert_hits(hits: &Value, expected: &[(u64, f32)], what: &str) {
    assert_eq!(
        ids(hits),
        expected.iter().map(|e| e.0).collect::<Vec<_>>(),
        "{what}: {hits}"
    );
    for (h, (_, s)) in hits.as_array().unwrap().iter().zip(expected) {
        let got = h["score"].as_f64().unwrap() as f32;
        assert!((got - s).abs() < 1e-4, "{what}: score {got} != {s}");
    }
}

fn query(c: &Client, body: Value) -> Value {
    c.ok("POST", "/collections/reco/points/query", Some(&body))["points"].clone()
}

#[test]
fn recommend_strategies_follow_qdrants_formulas() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    setup(&c);
    let raw = vector(101, DIM);
    for (name, _) in DISTANCES {
        let pos = [stored(name, 0), stored(name, 1)];
        let neg_raw = if name == "cos" {
            normalized(&raw)
        } else {
            raw.clone()
        };
        let neg = [neg_raw];
        // Examples: two point ids and one raw vector.
        let examples = json!({"positive": [0, 1], "negative": [raw]});

        let best = ranked(
            &[0, 1],
            5,
            |v| {
                let p = pos
                    .iter()
                    .map(|e| sim(name, v, e))
                    .fold(f32::NEG_INFINITY, f32::max);
                let n = neg
                    .iter()
                    .map(|e| sim(name, v, e))
                    .fold(f32::NEG_INFINITY, f32::max);
                if p > n {
                    scaled(p)
                } else {
                    -scaled(n)
                }
            },
            name,
        );
        let mut body = examples.clone();
        body["strategy"] = json!("best_score");
        let hits = query(
            &c,
            json!({"query": {"recommend": body}, "using": name, "limit": 5}),
        );
        assert_hits(&hits, &best, &format!("best_score {name}"));

        let sum = ranked(
            &[0, 1],
            5,
            |v| {
                pos.iter().map(|e| sim(name, v, e)).sum::<f32>()
                    - neg.iter().map(|e| sim(name, v, e)).sum::<f32>()
            },
            name,
        );
        let mut body = examples.clone();
        body["strategy"] = json!("sum_scores");
        let hits = query(
            &c,
            json!({"query": {"recommend": body}, "using": name, "limit": 5}),
        );
        assert_hits(&hits, &sum, &format!("sum_scores {name}"));

        // average_vector: one nearest search with 2·avg(positive) − avg(negative).
        let mut q: Vec<f32> = (0..DIM)
            .map(|d| (pos[0][d] + pos[1][d]) - neg[0][d])
            .collect();
        if name == "cos" {
            q = normalized(&q);
        }
        let avg = ranked(&[0, 1], 5, |v| sim(name, v, &q), name);
        let avg: Vec<(u64, f32)> = avg
            .into_iter()
            .map(|(i, s)| (i, if name == "euc" { (-s).sqrt() } else { s }))
            .collect();
        let hits = query(
            &c,
            json!({"query": {"recommend": examples}, "using": name, "limit": 5}),
        );
        assert_hits(&hits, &avg, &format!("average_vector {name}"));
    }
}

#[test]
fn discover_and_context_follow_qdrants_formulas() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    setup(&c);
    for (name, _) in DISTANCES {
        let target = stored(name, 5);
        let pairs = [
            (stored(name, 6), stored(name, 7)),
            (stored(name, 8), stored(name, 9)),
        ];
        let context = json!([{"positive": 6, "negative": 7}, {"positive": 8, "negative": 9}]);
        let exclude = [5, 6, 7, 8, 9];

        let expected = ranked(
            &exclude,
            6,
            |v| {
                let rank: i32 = pairs
                    .iter()
                    .map(|(p, n)| {
                        if sim(name, v, p) > sim(name, v, n) {
                            1
                        } else {
                            -1
                        }
                    })
                    .sum();
                rank as f32 + scaled(sim(name, v, &target))
            },
            name,
        );
        let body = json!({"query": {"discover": {"target": 5, "context": context}}, "using": name,
                          "limit": 6});
        assert_hits(&query(&c, body), &expected, &format!("discover {name}"));
        let legacy = c.ok(
            "POST",
            "/collections/reco/points/discover",
            Some(&json!({"target": 5, "context": context, "using": name, "limit": 6})),
        );
        assert_hits(&legacy, &expected, &format!("legacy discover {name}"));

        let expected = ranked(
            &exclude[1..],
            6,
            |v| {
                pairs
                    .iter()
                    .map(|(p, n)| {
                        sigmoid((sim(name, v, p) - sim(name, v, n) - f32::EPSILON).min(0.0))
                    })
                    .sum()
            },
            name,
        );
        let hits = query(
            &c,
            json!({"query": {"context": context}, "using": name, "limit": 6}),
        );
        // Every point inside the zone scores 0; compare the scores, and the ids where they differ.
        let got: Vec<f32> = hits
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["score"].as_f64().unwrap() as f32)
            .collect();
        let want: Vec<f32> = expected.iter().map(|e| e.1).collect();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "context {name}: {got:?} != {want:?}");
        }
    }
}

#[test]
fn legacy_routes_filters_prefetch_and_errors() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    setup(&c);
    // The legacy route is the Query API's recommend; a filter applies, the examples are left out.
    let body = json!({"positive": [0, 1], "negative": [2], "strategy": "best_score", "using": "dot",
                      "limit": 5, "filter": {"must": [{"key": "k", "match": {"value": 3}}]},
                      "with_payload": true});
    let legacy = c.ok("POST", "/collections/reco/points/recommend", Some(&body));
    let query_form = query(
        &c,
        json!({"query": {"recommend": {"positive": [0, 1], "negative": [2], "strategy": "best_score"}},
               "using": "dot", "limit": 5, "with_payload": true,
               "filter": {"must": [{"key": "k", "match": {"value": 3}}]}}),
    );
    assert_eq!(legacy, query_form);
    assert!(legacy
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["payload"]["k"] == 3));
    let batch = c.ok(
        "POST",
        "/collections/reco/points/recommend/batch",
        Some(&json!({"searches": [body, {"positive": [3], "using": "euc", "limit": 2}]})),
    );
    assert_eq!(batch[0], legacy);
    assert_eq!(batch[1].as_array().unwrap().len(), 2);
    let groups = c.ok(
        "POST",
        "/collections/reco/points/recommend/groups",
        Some(
            &json!({"positive": [0], "using": "dot", "group_by": "k", "group_size": 2, "limit": 4}),
        ),
    );
    assert_eq!(groups["groups"].as_array().unwrap().len(), 4);

    // Over prefetched candidates only.
    let hits = query(
        &c,
        json!({"prefetch": {"query": [1.0, 0.0, 0.0, 0.0], "using": "dot", "limit": 8},
               "query": {"recommend": {"positive": [0], "strategy": "sum_scores"}}, "using": "dot",
               "limit": 20}),
    );
    let candidates = ids(&query(
        &c,
        json!({"query": [1.0, 0.0, 0.0, 0.0], "using": "dot", "limit": 9}),
    ));
    let got = ids(&hits);
    assert!(
        got.len() <= 8 && got.iter().all(|i| candidates.contains(i)),
        "{got:?} {candidates:?}"
    );

    for (body, needle) in [
        (
            json!({"query": {"recommend": {}}, "using": "dot"}),
            "positive or negative",
        ),
        (
            json!({"query": {"recommend": {"positive": [0], "strategy": "best"}}, "using": "dot"}),
            "strategy",
        ),
        (
            json!({"query": {"recommend": {"negative": [0]}}, "using": "dot"}),
            "positive",
        ),
        (
            json!({"query": {"discover": {"context": []}}, "using": "dot"}),
            "target",
        ),
        (
            json!({"query": {"context": [{"positive": 1}]}, "using": "dot"}),
            "negative",
        ),
        (
            json!({"query": {"recommend": {"positive": [[1.0, 2.0]]}}, "using": "dot"}),
            "dimension",
        ),
    ] {
        let msg = c.err("POST", "/collections/reco/points/query", Some(&body), 400);
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let msg = c.err(
        "POST",
        "/collections/reco/points/query",
        Some(&json!({"query": {"recommend": {"positive": [999]}}, "using": "dot"})),
        404,
    );
    assert!(msg.contains("999"), "{msg}");
    let msg = c.err(
        "POST",
        "/collections/reco/points/discover",
        Some(&json!({"limit": 3, "using": "dot"})),
        400,
    );
    assert!(msg.contains("target"), "{msg}");
}
