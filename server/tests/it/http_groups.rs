//! Grouped searches over HTTP: `points/search/groups` and `points/query/groups` in Qdrant's shapes,
//! with `with_lookup`, payload selection, fusion under a group, and the 4xx cases. (Which hits land in
//! which group is checked against an exhaustive ranking in the engine's tests.)

use serde_json::{json, Value};

use crate::support::{Client, QuiverProcess};

/// Ten points on a line of 2-d vectors: point `i` scores `i` against `[1, 0]` (Dot), so the ranking is
/// 10, 9, …, 1. `doc` is "a" for 10, 9, 8; "b" for 7, 6; "c" below, except 5 and 2, which are 7 (an
/// integer); 1 has no `doc`.
fn setup(c: &Client) {
    c.create_single("chunks", 2, "Dot");
    let doc = |i: u64| -> Value {
        match i {
            8..=10 => json!("a"),
            6 | 7 => json!("b"),
            5 | 2 => json!(7),
            1 => Value::Null,
            _ => json!("c"),
        }
    };
    let points: Vec<Value> = (1..=10u64)
        .map(|i| json!({"id": i, "vector": [i as f32, 1.0], "payload": {"doc": doc(i), "n": i}}))
        .collect();
    c.upsert("chunks", json!(points));
    c.create_single("docs", 2, "Dot");
    c.upsert(
        "docs",
        json!([
            {"id": 7, "vector": [0.5, 0.5], "payload": {"title": "Seven"}},
            {"id": "6e1f6e4a-1c8b-4d65-9a7a-9f3a3f2f0b11", "vector": [0.1, 0.2], "payload": {"title": "U"}}
        ]),
    );
}

fn summary(groups: &Value) -> Vec<(Value, Vec<u64>)> {
    groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let hits = g["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_u64().unwrap())
                .collect();
            (g["id"].clone(), hits)
        })
        .collect()
}

#[test]
fn search_groups_and_query_groups_answer_in_qdrants_shape() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    setup(&c);

    let body = json!({"vector": [1.0, 0.0], "group_by": "doc", "group_size": 2, "limit": 3});
    let r = c.ok(
        "POST",
        "/collections/chunks/points/search/groups",
        Some(&body),
    );
    assert_eq!(
        summary(&r),
        vec![
            (json!("a"), vec![10, 9]),
            (json!("b"), vec![7, 6]),
            (json!(7), vec![5, 2]),
        ]
    );
    let hit = &r["groups"][0]["hits"][0];
    assert_eq!(hit["score"], 10.0);
    assert!(
        hit["payload"].is_null(),
        "search/groups returns no payload by default: {hit}"
    );
    assert!(r["groups"][0].get("lookup").is_none());

    // The Query API form, one hit per group (collapsing chunks to their documents), with payload.
    let body = json!({"query": [1.0, 0.0], "group_by": "doc", "group_size": 1, "limit": 10,
                      "with_payload": ["n"]});
    let r = c.ok(
        "POST",
        "/collections/chunks/points/query/groups",
        Some(&body),
    );
    assert_eq!(
        summary(&r),
        vec![
            (json!("a"), vec![10]),
            (json!("b"), vec![7]),
            (json!(7), vec![5]),
            (json!("c"), vec![4]),
        ]
    );
    assert_eq!(r["groups"][0]["hits"][0]["payload"], json!({"n": 10}));
    assert!(r.get("timings").is_none());
    let timed = c.ok(
        "POST",
        "/collections/chunks/points/query/groups?timings=true",
        Some(&body),
    );
    assert_eq!(summary(&timed), summary(&r));
    let stages = timed["timings"]["stages"].as_array().unwrap();
    // A dozen points sit in the appendable segment, which has no graph: the stage is a scan.
    assert!(
        !stages.is_empty() && stages.iter().all(|s| s["kind"] == "exact"),
        "{timed}"
    );
    assert!(timed["timings"]["total_ms"].as_f64().unwrap() >= 0.0);

    // Qdrant's defaults: 3 hits per group, 10 groups; a filter applies before grouping.
    let body = json!({"query": [1.0, 0.0], "group_by": "doc",
                      "filter": {"must_not": [{"key": "n", "match": {"any": [10, 7]}}]}});
    let r = c.ok(
        "POST",
        "/collections/chunks/points/query/groups",
        Some(&body),
    );
    assert_eq!(
        summary(&r),
        vec![
            (json!("a"), vec![9, 8]),
            (json!("b"), vec![6]),
            (json!(7), vec![5, 2]),
            (json!("c"), vec![4, 3]),
        ]
    );

    // A fusion of two prefetches, grouped.
    let body = json!({
        "prefetch": [{"query": [1.0, 0.0], "limit": 4}, {"query": [-1.0, 0.0], "limit": 4}],
        "query": {"fusion": "rrf"}, "group_by": "doc", "group_size": 1, "limit": 2
    });
    let r = c.ok(
        "POST",
        "/collections/chunks/points/query/groups",
        Some(&body),
    );
    // Point 1 has no `doc`, so the second list starts at 2: both tops score 1 / (0 + k) = 0.5.
    let mut got = summary(&r);
    got.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(
        got,
        vec![(json!("a"), vec![10]), (json!(7), vec![2])],
        "{r}"
    );
    assert_eq!(r["groups"][0]["hits"][0]["score"], 0.5);
}

#[test]
fn with_lookup_brings_each_groups_record_from_another_collection() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    setup(&c);
    let body = json!({"query": [1.0, 0.0], "group_by": "doc", "group_size": 1, "limit": 3,
                      "with_lookup": "docs"});
    let r = c.ok(
        "POST",
        "/collections/chunks/points/query/groups",
        Some(&body),
    );
    // Only the integer group 7 names a point of `docs`; "a" and "b" are not point ids.
    assert!(r["groups"][0].get("lookup").is_none(), "{r}");
    assert_eq!(r["groups"][2]["id"], 7);
    assert_eq!(
        r["groups"][2]["lookup"],
        json!({"id": 7, "payload": {"title": "Seven"}, "vector": null})
    );

    let body = json!({"vector": [1.0, 0.0], "group_by": "doc", "group_size": 1, "limit": 3,
                      "with_lookup": {"collection": "docs", "with_payload": false,
                                      "with_vectors": true}});
    let r = c.ok(
        "POST",
        "/collections/chunks/points/search/groups",
        Some(&body),
    );
    assert_eq!(
        r["groups"][2]["lookup"],
        json!({"id": 7, "payload": null, "vector": [0.5, 0.5]})
    );
}

#[test]
fn bad_group_requests_get_4xx_naming_the_problem() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    setup(&c);
    let path = "/collections/chunks/points/query/groups";
    let msg = c.err(
        "POST",
        path,
        Some(&json!({"query": [1.0, 0.0], "group_by": "doc", "group_size": 0})),
        422,
    );
    assert!(msg.contains("group_size"), "{msg}");
    let msg = c.err(
        "POST",
        "/collections/chunks/points/search/groups",
        Some(&json!({"vector": [1.0, 0.0], "group_by": "doc", "group_size": 1, "limit": 0})),
        422,
    );
    assert!(msg.contains("limit"), "{msg}");
    let msg = c.err(
        "POST",
        path,
        Some(&json!({"query": [1.0, 0.0], "group_by": "doc", "with_lookup": "nowhere"})),
        404,
    );
    assert!(msg.contains("nowhere"), "{msg}");
    let msg = c.err(
        "POST",
        path,
        Some(&json!({"query": [1.0, 0.0, 0.0], "group_by": "doc"})),
        400,
    );
    assert!(msg.contains("dimension") || msg.contains('3'), "{msg}");
    c.err("POST", path, Some(&json!({"query": [1.0, 0.0]})), 400);
    c.err(
        "POST",
        "/collections/missing/points/query/groups",
        Some(&json!({"query": [1.0, 0.0], "group_by": "doc"})),
        404,
    );
}
