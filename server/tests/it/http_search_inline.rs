//! Where searches run: a search whose work the engine bounds under the server's budget runs on the
//! async worker that received it, anything else on the blocking pool; the answers are the same
//! either way. `quiver_search_requests_total{thread=…}` in `/metrics` says which path each took.

use serde_json::{json, Value};

use crate::support::{dot, ids, vector, Client, QuiverProcess};

const DIM: usize = 512;

/// (inline, pool) search request counts from `/metrics`.
fn search_counts(c: &Client) -> (u64, u64) {
    let (status, text) = c.try_raw("GET", "/metrics", None).unwrap();
    assert_eq!(status, 200);
    let count = |thread: &str| {
        let prefix = format!("quiver_search_requests_total{{thread=\"{thread}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
            .parse()
            .unwrap()
    };
    (count("inline"), count("pool"))
}

/// Sends one request and says which path it took.
fn path_of(c: &Client, route: &str, body: &Value) -> (&'static str, Value) {
    let (inline, pool) = search_counts(c);
    let answer = c.ok("POST", route, Some(body));
    match search_counts(c) {
        (i, p) if i == inline + 1 && p == pool => ("inline", answer),
        (i, p) if i == inline && p == pool + 1 => ("pool", answer),
        other => panic!("counts went from {:?} to {other:?}", (inline, pool)),
    }
}

fn points(range: std::ops::Range<u64>) -> Value {
    range
        .map(|id| json!({"id": id, "vector": vector(id, DIM), "payload": {"k": 1}}))
        .collect()
}

/// The 5 best ids by dot product, by brute force.
fn nearest(q: &[f32], range: std::ops::Range<u64>) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> = range.map(|id| (dot(q, &vector(id, DIM)), id)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.iter().take(5).map(|&(_, id)| id).collect()
}

#[test]
fn bounded_searches_run_inline_and_answer_as_the_pool_does() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    // 300 points seal into one segment with a graph (a threshold of 1 KiB is under one 2 KiB row).
    let body = json!({"vectors": {"size": DIM, "distance": "Dot"},
                      "optimizers_config": {"segment_max_points": 300},
                      "hnsw_config": {"full_scan_threshold": 1}});
    c.ok("PUT", "/collections/small", Some(&body));
    c.upsert("small", points(0..300));
    c.wait_for_seals("small", 2);
    assert_eq!(
        c.ok("GET", "/collections/small", None)["indexed_vectors_count"],
        300
    );

    let q = vector(7_777, DIM);
    let query = json!({"query": q, "limit": 5, "params": {"hnsw_ef": 16}});
    let (path, single) = path_of(&c, "/collections/small/points/query", &query);
    assert_eq!(path, "inline", "a graph walk of 300 points is cheap");
    assert_eq!(single["points"].as_array().unwrap().len(), 5);

    // A batch runs inline while its total stays within the budget; 14 walks over the 300 rows
    // (each capped at 300 × 512 components) pass 2 M and go to the pool, with the same hits.
    let two = json!({"searches": [query, query]});
    let (path, answer) = path_of(&c, "/collections/small/points/query/batch", &two);
    assert_eq!(path, "inline");
    assert_eq!(answer[0], single);
    let many = json!({"searches": vec![query.clone(); 14]});
    let (path, answer) = path_of(&c, "/collections/small/points/query/batch", &many);
    assert_eq!(path, "pool");
    for each in answer.as_array().unwrap() {
        assert_eq!(each, &single);
    }

    // A filter leaves the plan to the engine at run time (here it scans the 300 points, as every
    // point passes): pooled, with the exact hits.
    let filtered = json!({"query": q, "limit": 5, "params": {"hnsw_ef": 16},
                          "filter": {"must": [{"key": "k", "match": {"value": 1}}]}});
    let (path, answer) = path_of(&c, "/collections/small/points/query", &filtered);
    assert_eq!(path, "pool");
    assert_eq!(ids(&answer["points"]), nearest(&q, 0..300));

    // The legacy search takes the same decision.
    let legacy = json!({"vector": q, "limit": 5, "params": {"hnsw_ef": 16}});
    let (path, answer) = path_of(&c, "/collections/small/points/search", &legacy);
    assert_eq!(path, "inline");
    assert_eq!(ids(&answer), ids(&single["points"]));
}

#[test]
fn a_scan_of_a_large_appendable_segment_goes_to_the_pool() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("big", DIM, "Dot");
    // 5,000 unindexed rows of 512: 2.56 M components to scan, over the 2 M budget.
    let n = 5_000;
    for start in (0..n).step_by(500) {
        c.upsert("big", points(start..start + 500));
    }
    let q = vector(4_242, DIM);
    let expected = nearest(&q, 0..n);

    let query = json!({"query": q, "limit": 5});
    let (path, answer) = path_of(&c, "/collections/big/points/query", &query);
    assert_eq!(path, "pool");
    assert_eq!(ids(&answer["points"]), expected);
    let legacy = json!({"vector": q, "limit": 5});
    let (path, answer) = path_of(&c, "/collections/big/points/search", &legacy);
    assert_eq!(path, "pool");
    assert_eq!(ids(&answer), expected);
}
