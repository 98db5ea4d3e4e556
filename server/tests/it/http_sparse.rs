//! Sparse vectors over HTTP in Qdrant's shapes: collection config, upsert beside dense vectors,
//! reads, the Query API (`using`, prefetch), the legacy search with a named sparse vector, IDF,
//! validation errors, sealed segments and snapshots.

use serde_json::{json, Value};

use crate::support::{ids, QuiverProcess};

/// Point `i`'s sparse vector: dimensions `i % 5` and `10 + i % 3`, weights growing with `i`.
fn sparse(i: u64) -> Value {
    json!({"indices": [10 + i % 3, i % 5], "values": [1.0, i as f32 / 10.0]})
}

fn setup(c: &crate::support::Client, name: &str) {
    let body = json!({
        "vectors": {"dense": {"size": 2, "distance": "Dot"}},
        "sparse_vectors": {
            "text": {"index": {"on_disk": true, "full_scan_threshold": 5}},
            "bm": {"modifier": "idf"}
        },
        "optimizers_config": {"segment_max_points": 10}
    });
    c.ok("PUT", &format!("/collections/{name}"), Some(&body));
    let points: Vec<Value> = (0..30u64)
        .map(|i| {
            json!({"id": i, "vector": {"dense": [i as f32, 1.0], "text": sparse(i), "bm": sparse(i)},
                   "payload": {"g": i % 2}})
        })
        .collect();
    c.upsert(name, Value::Array(points));
}

/// Expected top hits of the query {dim 1: 1.0, dim 11: 2.0} on `text` over points 0..30, among
/// those `keep` accepts, best first.
fn expected(keep: impl Fn(u64) -> bool, limit: usize) -> Vec<u64> {
    let mut scored: Vec<(u64, f32)> = (0..30u64)
        .filter(|&i| keep(i))
        .filter_map(|i| {
            let mut s = 0.0;
            let mut shared = false;
            if i % 5 == 1 {
                s += i as f32 / 10.0;
                shared = true;
            }
            if i % 3 == 1 {
                s += 2.0;
                shared = true;
            }
            shared.then_some((i, s))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().take(limit).map(|(i, _)| i).collect()
}

fn query(c: &crate::support::Client, name: &str, body: Value) -> Value {
    c.ok(
        "POST",
        &format!("/collections/{name}/points/query"),
        Some(&body),
    )["points"]
        .clone()
}

#[test]
fn sparse_vectors_in_qdrants_shapes() {
    let p = QuiverProcess::start(&[]);
    let c = p.client();
    setup(&c, "s");
    c.wait_for_seals("s", 3);
    let info = c.ok("GET", "/collections/s", None);
    assert_eq!(
        info["config"]["params"]["sparse_vectors"],
        json!({"text": {"index": {"on_disk": true, "full_scan_threshold": 5}},
               "bm": {"modifier": "idf"}})
    );
    let q = json!({"indices": [11, 1], "values": [2.0, 1.0]});

    // Query API with `using`, bare and under `nearest`.
    let hits = query(&c, "s", json!({"query": q, "using": "text", "limit": 5}));
    assert_eq!(ids(&hits), expected(|_| true, 5));
    let hits = query(
        &c,
        "s",
        json!({"query": {"nearest": q}, "using": "text", "limit": 3,
               "filter": {"must": [{"key": "g", "match": {"value": 1}}]}}),
    );
    assert_eq!(ids(&hits), expected(|i| i % 2 == 1, 3));

    // Legacy search with a NamedSparseVector.
    let hits = c.ok(
        "POST",
        "/collections/s/points/search",
        Some(&json!({"vector": {"name": "text", "vector": q}, "limit": 4})),
    );
    assert_eq!(ids(&hits), expected(|_| true, 4));

    // A sparse prefetch rescored by the dense vector, and a dense prefetch rescored by the sparse one.
    let hits = query(
        &c,
        "s",
        json!({"prefetch": {"query": q, "using": "text", "limit": 5},
               "query": [1.0, 0.0], "using": "dense", "limit": 2}),
    );
    let mut top = expected(|_| true, 5);
    top.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids(&hits), top[..2].to_vec());
    let hits = query(
        &c,
        "s",
        json!({"prefetch": {"query": [1.0, 0.0], "using": "dense", "limit": 10},
               "query": q, "using": "text", "limit": 3}),
    );
    assert_eq!(ids(&hits), expected(|i| i >= 20, 3));

    // IDF: dimension 11 is in a third of the points, dimension 1 in a fifth, so IDF weighs the
    // rarer one up; the scores are the query weights times IDF times the stored weights.
    let hits = query(
        &c,
        "s",
        json!({"query": {"indices": [1], "values": [1.0]}, "using": "bm", "limit": 1,
               "with_vector": ["bm"]}),
    );
    let idf = ((30.0f32 - 6.0 + 0.5) / (6.0 + 0.5) + 1.0).ln();
    let score = hits[0]["score"].as_f64().unwrap() as f32;
    assert_eq!(ids(&hits), vec![26]);
    assert!((score - idf * 2.6).abs() < 1e-4, "{score}");
    assert_eq!(hits[0]["vector"]["bm"]["indices"], json!([1, 12]));
    let stored = hits[0]["vector"]["bm"]["values"][0].as_f64().unwrap();
    assert!((stored - 2.6).abs() < 1e-6, "{stored}");

    // Reads return sparse vectors in Qdrant's shape, beside the dense one.
    let point = c.ok("GET", "/collections/s/points/7", None);
    assert_eq!(point["vector"]["text"]["indices"], json!([2, 11]));
    assert_eq!(point["vector"]["text"]["values"][1], json!(1.0));
    assert_eq!(point["vector"]["dense"], json!([7.0, 1.0]));

    // Partial vectors: a point with only a sparse vector.
    c.upsert(
        "s",
        json!([{"id": 100, "vector": {"text": {"indices": [99], "values": [3.0]}}}]),
    );
    let hits = query(
        &c,
        "s",
        json!({"query": {"indices": [99], "values": [1.0]}, "using": "text"}),
    );
    assert_eq!(ids(&hits), vec![100]);
    let point = c.ok("GET", "/collections/s/points/100", None);
    assert_eq!(
        point["vector"],
        json!({"text": {"indices": [99], "values": [3.0]}})
    );

    // Validation: 400 naming the vector; nothing stored.
    for (bad, words) in [
        (
            json!({"indices": [1, 1], "values": [1.0, 2.0]}),
            "more than once",
        ),
        (json!({"indices": [1, 2], "values": [1.0]}), "same length"),
    ] {
        let e = c.err(
            "PUT",
            "/collections/s/points?wait=true",
            Some(&json!({"points": [{"id": 200, "vector": {"text": bad}}]})),
            400,
        );
        assert!(e.contains("`text`") && e.contains(words), "{e}");
    }
    let e = c.err(
        "POST",
        "/collections/s/points/query",
        Some(&json!({"query": [1.0, 2.0], "using": "text"})),
        400,
    );
    assert!(e.contains("`text`"), "{e}");
    let e = c.err(
        "POST",
        "/collections/s/points/query",
        Some(&json!({"query": {"indices": [1, 1], "values": [1.0, 1.0]}, "using": "text"})),
        400,
    );
    assert!(e.contains("more than once"), "{e}");
    assert_eq!(
        c.ok("POST", "/collections/s/points/count", Some(&json!({})))["count"],
        json!(31)
    );
}

#[test]
fn sealed_sparse_indexes_travel_in_snapshots() {
    let a = QuiverProcess::start(&[]);
    let ca = a.client();
    setup(&ca, "docs");
    ca.wait_for_seals("docs", 3);
    ca.ok(
        "POST",
        "/collections/docs/points/delete",
        Some(&json!({"points": [4, 16]})),
    );
    let q =
        json!({"query": {"indices": [11, 1], "values": [2.0, 1.0]}, "using": "text", "limit": 6});
    let before = query(&ca, "docs", q.clone());
    assert_eq!(ids(&before), expected(|i| i != 4 && i != 16, 6));
    let created = ca.ok("POST", "/collections/docs/snapshots?wait=true", None);
    let name = created["name"].as_str().unwrap().to_string();
    let (status, _, archive) = ca.download(&format!("/collections/docs/snapshots/{name}"));
    assert_eq!(status, 200);
    let b = QuiverProcess::start(&[]);
    let cb = b.client();
    let (status, body) = cb.upload(
        "/collections/restored/snapshots/upload?wait=true",
        "snapshot",
        &archive,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(query(&cb, "restored", q), before);
}

/// LangChain's `QdrantVectorStore` in hybrid mode creates `{"vectors": {"": {...}}}` beside a sparse
/// vector: `""` in the map is the unnamed vector, as in Qdrant, and points carry it under `""`.
#[test]
fn empty_name_in_a_vectors_map_is_the_unnamed_vector() {
    let q = QuiverProcess::start(&[]);
    let c = q.client();
    let body = json!({
        "vectors": {"": {"size": 2, "distance": "Cosine"}},
        "sparse_vectors": {"langchain-sparse": {}}
    });
    c.ok("PUT", "/collections/lc", Some(&body));
    let info = c.ok("GET", "/collections/lc", None);
    assert_eq!(
        info["config"]["params"]["vectors"],
        json!({"size": 2, "distance": "Cosine"}),
        "{info}"
    );
    c.upsert(
        "lc",
        json!([
            {"id": 1, "vector": {"": [1.0, 0.0], "langchain-sparse": {"indices": [7], "values": [2.0]}}},
            {"id": 2, "vector": {"": [0.0, 1.0], "langchain-sparse": {"indices": [8], "values": [1.0]}}}
        ]),
    );
    let dense = query(
        &c,
        "lc",
        json!({"query": [0.1, 1.0], "using": "", "limit": 1}),
    );
    assert_eq!(ids(&dense), vec![2]);
    let sparse = query(
        &c,
        "lc",
        json!({"query": {"indices": [7], "values": [1.0]}, "using": "langchain-sparse", "limit": 2}),
    );
    assert_eq!(ids(&sparse), vec![1]);
    // A second, named dense vector beside `""` keeps both.
    let both = json!({"vectors": {"": {"size": 2, "distance": "Dot"}, "title": {"size": 3, "distance": "Dot"}}});
    c.ok("PUT", "/collections/both", Some(&both));
    let info = c.ok("GET", "/collections/both", None);
    let vectors = &info["config"]["params"]["vectors"];
    assert_eq!(vectors[""]["size"], 2, "{info}");
    assert_eq!(vectors["title"]["size"], 3, "{info}");
}

/// RRF as Qdrant defines it, computed here from the prefetches' own answers.
fn rrf(lists: &[Vec<u64>], k: f32) -> Vec<(u64, f32)> {
    let mut scores: std::collections::BTreeMap<u64, f32> = Default::default();
    for list in lists {
        for (pos, id) in list.iter().enumerate() {
            *scores.entry(*id).or_default() += 1.0 / (pos as f32 + k);
        }
    }
    let mut out: Vec<(u64, f32)> = scores.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[test]
fn fusion_queries_over_dense_and_sparse_prefetches() {
    let p = QuiverProcess::start(&[]);
    let c = p.client();
    setup(&c, "f");
    let sparse_q = json!({"indices": [11, 1], "values": [2.0, 1.0]});
    let dense = json!({"query": [1.0, -20.0], "using": "dense", "limit": 8});
    let sparse = json!({"query": sparse_q, "using": "text", "limit": 8});
    let a = ids(&query(&c, "f", dense.clone()));
    let b = ids(&query(&c, "f", sparse.clone()));
    let want = rrf(&[a.clone(), b.clone()], 2.0);
    let hits = query(
        &c,
        "f",
        json!({"prefetch": [dense, sparse], "query": {"fusion": "rrf"}, "limit": 5,
               "with_payload": true}),
    );
    assert_eq!(
        ids(&hits),
        want.iter().take(5).map(|h| h.0).collect::<Vec<_>>()
    );
    for (h, w) in hits.as_array().unwrap().iter().zip(&want) {
        assert!(
            (h["score"].as_f64().unwrap() as f32 - w.1).abs() < 1e-5,
            "{h}"
        );
        assert!(h["payload"]["g"].is_number(), "{h}");
    }
    // `rrf.k`, offset and score_threshold apply to the fused scores.
    let want60 = rrf(&[a.clone(), b.clone()], 60.0);
    let hits = query(
        &c,
        "f",
        json!({"prefetch": [dense, sparse], "query": {"rrf": {"k": 60}}, "limit": 3, "offset": 2}),
    );
    assert_eq!(
        ids(&hits),
        want60[2..5].iter().map(|h| h.0).collect::<Vec<_>>()
    );
    let threshold = want[3].1;
    let hits = query(
        &c,
        "f",
        json!({"prefetch": [dense, sparse], "query": {"fusion": "rrf"},
               "score_threshold": threshold, "limit": 20}),
    );
    assert_eq!(
        hits.as_array().unwrap().len(),
        want.iter().filter(|w| w.1 >= threshold).count()
    );
    // Nested: a fusion prefetch rescored by the dense vector; DBSF over three lists.
    let hits = query(
        &c,
        "f",
        json!({"prefetch": {"prefetch": [dense, sparse], "query": {"fusion": "rrf"}, "limit": 4},
               "query": [1.0, 0.0], "using": "dense", "limit": 4}),
    );
    let mut top4: Vec<u64> = want.iter().take(4).map(|h| h.0).collect();
    top4.sort_unstable_by(|x, y| y.cmp(x));
    assert_eq!(ids(&hits), top4);
    let hits = query(
        &c,
        "f",
        json!({"prefetch": [dense, sparse, {"query": [0.0, 1.0], "using": "dense", "limit": 3}],
               "query": {"fusion": "dbsf"}, "limit": 30}),
    );
    let fused = ids(&hits);
    let mut all: Vec<u64> = a.iter().chain(&b).copied().collect();
    all.extend(ids(&query(
        &c,
        "f",
        json!({"query": [0.0, 1.0], "using": "dense", "limit": 3}),
    )));
    all.sort_unstable();
    all.dedup();
    let mut sorted = fused.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, all);
    // Errors name the problem.
    for (body, words) in [
        (json!({"query": {"fusion": "rrf"}}), "prefetch"),
        (
            json!({"prefetch": [dense], "query": {"fusion": "max"}}),
            "rrf",
        ),
        (
            json!({"prefetch": [dense], "query": {"rrf": {"k": 0}}}),
            "rrf.k",
        ),
        (
            json!({"prefetch": [dense], "query": {"rrf": {"q": 1}}}),
            "rrf",
        ),
        (
            json!({"prefetch": [dense], "query": {"fusion": "rrf"}, "using": "text"}),
            "using",
        ),
    ] {
        let e = c.err("POST", "/collections/f/points/query", Some(&body), 400);
        assert!(e.contains(words), "{body}: {e}");
    }
}
