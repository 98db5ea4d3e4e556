//! Qdrant's formula queries over HTTP: the candidates of two prefetches rescored by a formula over
//! both prefetches' scores, a condition and a payload number with a default; the order and scores
//! are computed here from the vectors and payloads. Then threshold, offset and payload, a decay, the
//! batch route, and the 400s (a variable with no value, no prefetch, a malformed formula).

use serde_json::{json, Value};

use crate::support::{ids, QuiverProcess};

/// (id, vector, payload). With a Dot collection and the queries [1, 0] and [0, 1], a point's score
/// in each prefetch is its first or second component.
fn points() -> Vec<(u64, [f32; 2], Value)> {
    vec![
        (
            1,
            [0.9, 0.1],
            json!({"tag": "h1", "price": 10, "meta": {"boost": 2}}),
        ),
        (2, [0.8, 0.2], json!({"tag": "h3", "price": 5})),
        (3, [0.7, 0.3], json!({"tag": "h2"})),
        (4, [0.6, 0.4], json!({"tag": ["x", "h2"], "price": 1})),
        (5, [0.1, 0.9], json!({"tag": "h1", "price": 100})),
    ]
}

fn prefetches() -> Value {
    json!([
        {"query": [1.0, 0.0], "limit": 4},
        {"query": [0.0, 1.0], "limit": 2}
    ])
}

/// `$score + 0.5·[tag ∈ {h1, h2}] + 2·$score[1] + price / 10`, price 0 by default.
fn boost() -> Value {
    json!({
        "formula": {"sum": [
            "$score",
            {"mult": [0.5, {"key": "tag", "match": {"any": ["h1", "h2"]}}]},
            {"mult": ["$score[1]", 2]},
            {"div": {"left": "price", "right": 10}}
        ]},
        "defaults": {"price": 0}
    })
}

/// The same formula, by hand: prefetch 0 finds the 4 points with the largest first component,
/// prefetch 1 the 2 with the largest second; a point a prefetch did not find scores 0 there.
fn expected() -> Vec<(u64, f32)> {
    let pts = points();
    let top = |dim: usize, n: usize| -> Vec<(u64, f32)> {
        let mut v: Vec<(u64, f32)> = pts.iter().map(|(id, vec, _)| (*id, vec[dim])).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.truncate(n);
        v
    };
    let (first, second) = (top(0, 4), top(1, 2));
    let score_in = |list: &[(u64, f32)], id: u64| {
        list.iter()
            .find(|(i, _)| *i == id)
            .map_or(0.0, |(_, s)| f64::from(*s))
    };
    let mut out: Vec<(u64, f32)> = pts
        .iter()
        .filter(|(id, _, _)| score_in(&first, *id) != 0.0 || score_in(&second, *id) != 0.0)
        .map(|(id, _, payload)| {
            let tags: Vec<&str> = match &payload["tag"] {
                Value::Array(a) => a.iter().map(|t| t.as_str().unwrap()).collect(),
                t => vec![t.as_str().unwrap()],
            };
            let tagged = if tags.iter().any(|t| *t == "h1" || *t == "h2") {
                0.5
            } else {
                0.0
            };
            let price = payload["price"].as_f64().unwrap_or(0.0);
            let s = score_in(&first, *id) + tagged + 2.0 * score_in(&second, *id) + price / 10.0;
            (*id, s as f32)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

fn setup() -> QuiverProcess {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("f", 2, "Dot");
    let body: Vec<Value> = points()
        .into_iter()
        .map(|(id, v, p)| json!({"id": id, "vector": v, "payload": p}))
        .collect();
    c.upsert("f", Value::Array(body));
    server
}

fn scores(hits: &Value) -> Vec<(u64, f32)> {
    hits.as_array()
        .unwrap_or_else(|| panic!("{hits}"))
        .iter()
        .map(|h| {
            (
                h["id"].as_u64().unwrap(),
                h["score"].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

fn assert_scores(got: &[(u64, f32)], want: &[(u64, f32)]) {
    assert_eq!(
        got.iter().map(|h| h.0).collect::<Vec<_>>(),
        want.iter().map(|h| h.0).collect::<Vec<_>>(),
        "order: got {got:?}, want {want:?}"
    );
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.1 - w.1).abs() <= 1e-5,
            "score of {}: got {}, want {}",
            g.0,
            g.1,
            w.1
        );
    }
}

#[test]
fn formula_rescores_the_union_of_the_prefetches() {
    let server = setup();
    let c = server.client();
    let want = expected();
    // By hand: 5 = 0 + 0.5 + 1.8 + 10, 1 = 0.9 + 0.5 + 0 + 1, 4 = 0.6 + 0.5 + 0.8 + 0.1,
    // 2 = 0.8 + 0 + 0 + 0.5, 3 = 0.7 + 0.5 + 0 + 0 (no price: the default).
    assert_eq!(
        want.iter().map(|h| h.0).collect::<Vec<_>>(),
        [5, 1, 4, 2, 3]
    );
    let res = c.ok(
        "POST",
        "/collections/f/points/query",
        Some(&json!({"prefetch": prefetches(), "query": boost(), "limit": 10})),
    );
    assert_scores(&scores(&res["points"]), &want);

    // Threshold, offset and limit apply to the formula's scores; payloads come along.
    let res = c.ok(
        "POST",
        "/collections/f/points/query",
        Some(
            &json!({"prefetch": prefetches(), "query": boost(), "score_threshold": 1.25,
                     "offset": 1, "limit": 2, "with_payload": true}),
        ),
    );
    assert_scores(&scores(&res["points"]), &want[1..3]);
    assert_eq!(res["points"][0]["payload"]["meta"]["boost"], 2);

    // A decay of a nested payload number, whose default covers the points without it:
    // lin_decay λ = (1 − 0.5) / 4, so boost 2 → 1 − 0.125·|2 − 4| = 0.75, default 0 → 0.5.
    let res = c.ok(
        "POST",
        "/collections/f/points/query",
        Some(&json!({"prefetch": {"query": [1.0, 0.0], "limit": 2},
                     "query": {"formula": {"lin_decay": {"x": "meta.boost", "target": 4, "scale": 4}},
                               "defaults": {"meta.boost": 0}}})),
    );
    assert_scores(&scores(&res["points"]), &[(1, 0.75), (2, 0.5)]);

    // The batch route parses the same way.
    let res = c.ok(
        "POST",
        "/collections/f/points/query/batch",
        Some(&json!({"searches": [
            {"prefetch": prefetches(), "query": boost(), "limit": 1},
            {"query": [1.0, 0.0], "limit": 1}
        ]})),
    );
    assert_eq!(ids(&res[0]["points"]), [5]);
    assert_eq!(ids(&res[1]["points"]), [1]);
}

#[test]
fn formula_errors_are_400s_that_say_why() {
    let server = setup();
    let c = server.client();
    let query = |q: Value, prefetch: Value| {
        c.err(
            "POST",
            "/collections/f/points/query",
            Some(&json!({"prefetch": prefetch, "query": q})),
            400,
        )
    };
    // Point 3 has no price and the request gives no default: Qdrant's error, not a silent 0.
    let msg = query(
        json!({"formula": {"sum": ["$score", "price"]}}),
        prefetches(),
    );
    assert!(
        msg.contains(
            "Expected number value for price in the payload and/or in the formula defaults. \
             Error: No value found in a payload nor defaults"
        ),
        "{msg}"
    );
    let msg = query(json!({"formula": {"ln": {"neg": "$score"}}}), prefetches());
    assert!(msg.contains("produced a non-finite number"), "{msg}");
    let msg = query(boost(), Value::Null);
    assert!(
        msg.contains("cannot apply Formula without prefetches"),
        "{msg}"
    );
    let msg = query(
        json!({"formula": {"sum": [1, {"div": {"left": 1}}]}}),
        prefetches(),
    );
    assert!(msg.contains("`formula.sum[1].div` needs `right`"), "{msg}");
    let msg = query(
        json!({"formula": {"gauss_decay": {"x": "$score", "midpoint": 1.5}}}),
        prefetches(),
    );
    assert!(
        msg.contains("`formula.gauss_decay`: Decay midpoint"),
        "{msg}"
    );
    let msg = query(json!({"formula": 1, "defaults": [1]}), prefetches());
    assert!(msg.contains("`defaults`"), "{msg}");
}
