//! Search, search/batch, query and query/batch, checked against exact answers computed here.

use serde_json::{json, Value};

use crate::support::{dot, ids, normalized, vector, QuiverProcess};

const N: u64 = 60;
const DIM: usize = 8;

/// Top `k` ids by score (higher first, ties by id).
fn top_k(
    scores: impl IntoIterator<Item = (u64, f32)>,
    k: usize,
    higher_is_better: bool,
) -> Vec<u64> {
    let mut scores: Vec<(u64, f32)> = scores.into_iter().collect();
    scores.sort_by(|a, b| {
        let ord = a.1.partial_cmp(&b.1).unwrap();
        let ord = if higher_is_better { ord.reverse() } else { ord };
        ord.then(a.0.cmp(&b.0))
    });
    scores.into_iter().take(k).map(|(id, _)| id).collect()
}

fn max_sim(query: &[Vec<f32>], doc: &[Vec<f32>]) -> f32 {
    query
        .iter()
        .map(|q| doc.iter().map(|d| dot(q, d)).fold(f32::MIN, f32::max))
        .sum()
}

fn doc_tokens(i: u64) -> Vec<Vec<f32>> {
    (0..(2 + i % 3))
        .map(|t| vector(1000 + i * 10 + t, 4))
        .collect()
}

fn setup(c: &crate::support::Client) {
    c.create_single("dot", DIM, "Dot");
    c.create_single("cos", DIM, "Cosine");
    c.create_single("l2", DIM, "Euclid");
    let named = json!({"vectors": {
        "dense": {"size": DIM, "distance": "Dot"},
        "colbert": {"size": 4, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}
    }});
    c.ok("PUT", "/collections/hybrid", Some(&named));
    let points: Vec<Value> = (0..N)
        .map(|i| json!({"id": i, "vector": vector(i, DIM), "payload": {"group": i % 3, "i": i}}))
        .collect();
    for name in ["dot", "cos", "l2"] {
        c.upsert(name, Value::Array(points.clone()));
    }
    let hybrid: Vec<Value> = (0..N)
        .map(|i| {
            json!({"id": i, "vector": {"dense": vector(i, DIM), "colbert": doc_tokens(i)}, "payload": {"group": i % 3}})
        })
        .collect();
    c.upsert("hybrid", Value::Array(hybrid));
}

#[test]
fn search_and_query_match_exact_answers() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    setup(&c);
    let q = vector(777, DIM);

    // Dot.
    let expected = top_k((0..N).map(|i| (i, dot(&q, &vector(i, DIM)))), 5, true);
    let hits = c.ok(
        "POST",
        "/collections/dot/points/search",
        Some(&json!({"vector": q, "limit": 5})),
    );
    assert_eq!(ids(&hits), expected);
    let first = &hits[0];
    assert!(
        (first["score"].as_f64().unwrap() as f32 - dot(&q, &vector(expected[0], DIM))).abs() < 1e-4
    );
    assert_eq!(first["version"], 0);
    assert!(first["payload"].is_null());
    let res = c.ok(
        "POST",
        "/collections/dot/points/query",
        Some(&json!({"query": q, "limit": 5})),
    );
    assert_eq!(ids(&res["points"]), expected);
    let res = c.ok(
        "POST",
        "/collections/dot/points/query",
        Some(&json!({"query": {"nearest": q}, "limit": 5, "params": {"exact": true}})),
    );
    assert_eq!(ids(&res["points"]), expected);

    // Offset, payload and vectors.
    let res = c.ok(
        "POST",
        "/collections/dot/points/query",
        Some(&json!({"query": q, "limit": 2, "offset": 3, "with_payload": true, "with_vector": true})),
    );
    assert_eq!(ids(&res["points"]), expected[3..5].to_vec());
    assert_eq!(res["points"][0]["payload"]["i"], expected[3]);
    assert_eq!(res["points"][0]["vector"].as_array().unwrap().len(), DIM);

    // Cosine: scores are cosines.
    let qn = normalized(&q);
    let expected = top_k(
        (0..N).map(|i| (i, dot(&qn, &normalized(&vector(i, DIM))))),
        5,
        true,
    );
    let hits = c.ok(
        "POST",
        "/collections/cos/points/search",
        Some(&json!({"vector": q, "limit": 5})),
    );
    assert_eq!(ids(&hits), expected);
    let s = hits[0]["score"].as_f64().unwrap();
    assert!(s <= 1.0 + 1e-5 && s > 0.0);

    // Euclid: scores are distances, ascending.
    let l2 = |v: &[f32]| {
        v.iter()
            .zip(&q)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt()
    };
    let expected = top_k((0..N).map(|i| (i, l2(&vector(i, DIM)))), 5, false);
    let hits = c.ok(
        "POST",
        "/collections/l2/points/search",
        Some(&json!({"vector": q, "limit": 5})),
    );
    assert_eq!(ids(&hits), expected);
    let scores: Vec<f64> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}");

    // Filter and score threshold.
    let filter = json!({"must": [{"key": "group", "match": {"value": 1}}]});
    let expected = top_k(
        (0..N)
            .filter(|i| i % 3 == 1)
            .map(|i| (i, dot(&q, &vector(i, DIM)))),
        4,
        true,
    );
    let res = c.ok(
        "POST",
        "/collections/dot/points/query",
        Some(&json!({"query": q, "limit": 4, "filter": filter})),
    );
    assert_eq!(ids(&res["points"]), expected);
    let threshold = dot(&q, &vector(expected[1], DIM)) - 1e-4;
    let res = c.ok(
        "POST",
        "/collections/dot/points/query",
        Some(&json!({"query": q, "limit": 4, "filter": filter, "score_threshold": threshold})),
    );
    assert_eq!(ids(&res["points"]), expected[..2].to_vec());

    // Query by point id: that point's own vector, the point itself left out (as in Qdrant).
    let own = vector(17, DIM);
    let expected = top_k((0..N).map(|i| (i, dot(&own, &vector(i, DIM)))), 3, true);
    let by_id = top_k(
        (0..N)
            .filter(|&i| i != 17)
            .map(|i| (i, dot(&own, &vector(i, DIM)))),
        3,
        true,
    );
    let res = c.ok(
        "POST",
        "/collections/dot/points/query",
        Some(&json!({"query": 17, "limit": 3})),
    );
    assert_eq!(ids(&res["points"]), by_id);

    // No query: points in id order.
    let res = c.ok(
        "POST",
        "/collections/dot/points/query",
        Some(&json!({"limit": 3, "offset": 1})),
    );
    assert_eq!(ids(&res["points"]), vec![1, 2, 3]);

    // Batches answer in order.
    let batch = json!({"searches": [{"vector": q, "limit": 2}, {"vector": own, "limit": 3}]});
    let res = c.ok("POST", "/collections/dot/points/search/batch", Some(&batch));
    assert_eq!(res.as_array().unwrap().len(), 2);
    assert_eq!(ids(&res[1]), expected);
    let batch = json!({"searches": [{"query": own, "limit": 3}, {"query": q, "limit": 1}]});
    let res = c.ok("POST", "/collections/dot/points/query/batch", Some(&batch));
    assert_eq!(ids(&res[0]["points"]), expected);
    assert_eq!(res[1]["points"].as_array().unwrap().len(), 1);
}

#[test]
fn named_vectors_multivectors_and_prefetch_rerank() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    setup(&c);
    let q = vector(4242, DIM);
    let qt: Vec<Vec<f32>> = (0..3).map(|t| vector(5000 + t, 4)).collect();

    // Named dense vector, legacy and query forms.
    let expected = top_k((0..N).map(|i| (i, dot(&q, &vector(i, DIM)))), 5, true);
    let hits = c.ok(
        "POST",
        "/collections/hybrid/points/search",
        Some(&json!({"vector": {"name": "dense", "vector": q}, "limit": 5})),
    );
    assert_eq!(ids(&hits), expected);
    let res = c.ok(
        "POST",
        "/collections/hybrid/points/query",
        Some(&json!({"query": q, "using": "dense", "limit": 5})),
    );
    assert_eq!(ids(&res["points"]), expected);

    // Multivector MaxSim over the whole collection.
    let expected_ms = top_k((0..N).map(|i| (i, max_sim(&qt, &doc_tokens(i)))), 5, true);
    let res = c.ok(
        "POST",
        "/collections/hybrid/points/query",
        Some(&json!({"query": qt, "using": "colbert", "limit": 5})),
    );
    assert_eq!(ids(&res["points"]), expected_ms);
    let score = res["points"][0]["score"].as_f64().unwrap() as f32;
    assert!((score - max_sim(&qt, &doc_tokens(expected_ms[0]))).abs() < 1e-4);

    // Dense prefetch, MaxSim rerank of its candidates only.
    let candidates = top_k((0..N).map(|i| (i, dot(&q, &vector(i, DIM)))), 12, true);
    let expected = top_k(
        candidates
            .iter()
            .map(|&i| (i, max_sim(&qt, &doc_tokens(i)))),
        4,
        true,
    );
    let body = json!({
        "prefetch": {"query": q, "using": "dense", "limit": 12},
        "query": {"nearest": qt}, "using": "colbert", "limit": 4, "with_payload": true
    });
    let res = c.ok("POST", "/collections/hybrid/points/query", Some(&body));
    assert_eq!(ids(&res["points"]), expected);
    assert!(res["points"][0]["payload"]["group"].is_u64());

    // The top-level filter restricts the prefetch too; nested prefetches narrow further.
    let in_group = |i: &u64| i % 3 == 2;
    let candidates = top_k(
        (0..N)
            .filter(in_group)
            .map(|i| (i, dot(&q, &vector(i, DIM)))),
        8,
        true,
    );
    let expected = top_k(
        candidates
            .iter()
            .map(|&i| (i, max_sim(&qt, &doc_tokens(i)))),
        3,
        true,
    );
    let body = json!({
        "prefetch": [{"prefetch": {"query": q, "using": "dense", "limit": 8}, "query": qt, "using": "colbert", "limit": 8}],
        "query": qt, "using": "colbert", "limit": 3,
        "filter": {"must": [{"key": "group", "match": {"value": 2}}]}
    });
    let res = c.ok("POST", "/collections/hybrid/points/query", Some(&body));
    assert_eq!(ids(&res["points"]), expected);

    // A single vector against a multivector field is a one-row query.
    let one = vec![qt[0].clone()];
    let expected = top_k((0..N).map(|i| (i, max_sim(&one, &doc_tokens(i)))), 3, true);
    let res = c.ok(
        "POST",
        "/collections/hybrid/points/query",
        Some(&json!({"query": qt[0], "using": "colbert", "limit": 3})),
    );
    assert_eq!(ids(&res["points"]), expected);
}

#[test]
fn search_errors_are_4xx() {
    let server = QuiverProcess::start(&["--max-limit", "100"]);
    let c = server.client();
    setup(&c);
    let q = vector(1, DIM);
    let cases: Vec<(&str, Value, u16)> = vec![
        (
            "dot/points/search",
            json!({"vector": [1.0, 2.0], "limit": 3}),
            400,
        ),
        ("dot/points/search", json!({"vector": q, "limit": 0}), 422),
        ("dot/points/search", json!({"vector": q}), 400),
        ("dot/points/search", json!({"vector": q, "limit": 101}), 422),
        (
            "dot/points/search",
            json!({"vector": q, "limit": 50, "offset": 51}),
            422,
        ),
        (
            "dot/points/search",
            json!({"vector": {"name": "nope", "vector": q}, "limit": 3}),
            400,
        ),
        (
            "dot/points/search",
            json!({"vector": q, "limit": 3, "filter": {"must": {"key": 1}}}),
            400,
        ),
        ("dot/points/query", json!({"query": [1.0, 2.0]}), 400),
        (
            "dot/points/query",
            json!({"query": q, "using": "nope"}),
            400,
        ),
        (
            "dot/points/query",
            json!({"query": [vec![1.0f32; DIM]]}),
            400,
        ),
        ("dot/points/query", json!({"query": {"fusion": "rrf"}}), 400),
        (
            "dot/points/query",
            json!({"query": {"recommend": {"positive": [1], "strategy": "nearest"}}}),
            400,
        ),
        (
            "dot/points/query",
            json!({"query": {"indices": [1], "values": [1.0]}}),
            400,
        ),
        (
            "dot/points/query",
            json!({"query": {"text": "hello", "model": "m"}}),
            400,
        ),
        ("dot/points/query", json!({"query": true}), 400),
        ("dot/points/query", json!({"query": ["a"]}), 400),
        ("dot/points/query", json!({"query": 123456}), 404),
        ("dot/points/query", json!({"query": q, "limit": 0}), 422),
        ("dot/points/query", json!({"prefetch": {"query": q}}), 400),
        (
            "dot/points/query",
            json!({"query": q, "prefetch": {"query": q, "limit": 1000}}),
            422,
        ),
        (
            "dot/points/query",
            json!({"query": 0, "lookup_from": {"collection": "x"}}),
            404,
        ),
        (
            "dot/points/query",
            json!({"query": [1e39, 0, 0, 0, 0, 0, 0, 0]}),
            400,
        ),
        ("hybrid/points/query", json!({"query": q}), 400),
        (
            "hybrid/points/query",
            json!({"query": [[1.0, 2.0, 3.0]], "using": "colbert"}),
            400,
        ),
        ("missing/points/query", json!({"query": q}), 404),
        (
            "missing/points/search",
            json!({"vector": q, "limit": 1}),
            404,
        ),
    ];
    for (path, body, status) in cases {
        c.err("POST", &format!("/collections/{path}"), Some(&body), status);
    }
}

/// A Cosine multivector in sealed segments is searched by the token store (PLAID); `params.plaid`
/// overrides its parameters, bad values are a 400, and hits carry exact MaxSim scores (the collection
/// keeps the inserted tokens beside the compressed ones).
#[test]
fn token_store_search_over_http_with_plaid_params() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let body = json!({
        "vectors": {"late": {"size": 4, "distance": "Cosine", "multivector_config": {
            "comparator": "max_sim", "token_store": {"nbits": 4, "keep_originals": true}}}},
        "optimizers_config": {"segment_max_points": 100}
    });
    c.ok("PUT", "/collections/late", Some(&body));
    let docs: Vec<Vec<Vec<f32>>> = (0..300u64)
        .map(|i| doc_tokens(i).iter().map(|t| normalized(t)).collect())
        .collect();
    for chunk in (0..300u64).collect::<Vec<_>>().chunks(100) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"id": i, "vector": {"late": docs[i as usize]}}))
            .collect();
        c.upsert("late", Value::Array(points));
    }
    // Wait for the background seals (each with its token store): three segments of 100 points.
    c.wait_for_seals("late", 3);

    let segments = server.data_dir().join("collections/late/segments");
    let stores = std::fs::read_dir(&segments)
        .unwrap()
        .flatten()
        .flat_map(|seg| std::fs::read_dir(seg.path()).unwrap().flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "plaid"))
        .count();
    assert!(
        stores >= 2,
        "expected token stores in the sealed segments, found {stores}"
    );

    let qt: Vec<Vec<f32>> = (0..3).map(|t| normalized(&vector(5000 + t, 4))).collect();
    let expected = top_k(
        (0..300u64).map(|i| (i, max_sim(&qt, &docs[i as usize]))),
        5,
        true,
    );
    let body = json!({"query": qt, "using": "late", "limit": 5,
                      "params": {"plaid": {"ncells": 8, "ndocs": 300, "n_full_scores": 100}}});
    let res = c.ok("POST", "/collections/late/points/query", Some(&body));
    assert_eq!(ids(&res["points"]), expected);
    let score = res["points"][0]["score"].as_f64().unwrap() as f32;
    assert!((score - max_sim(&qt, &docs[expected[0] as usize])).abs() < 1e-4);
    // PLAID's defaults (one cell per query token) also answer, with exact scores for what they find.
    let res = c.ok(
        "POST",
        "/collections/late/points/query",
        Some(&json!({"query": qt, "using": "late", "limit": 5})),
    );
    for hit in res["points"].as_array().unwrap() {
        let id = hit["id"].as_u64().unwrap();
        let want = max_sim(&qt, &docs[id as usize]);
        assert!((hit["score"].as_f64().unwrap() as f32 - want).abs() < 1e-4);
    }
    for bad in [
        json!({"ndocs": 0}),
        json!({"ncells": 0}),
        json!({"t_cs": "x"}),
    ] {
        let body = json!({"query": qt, "using": "late", "limit": 5, "params": {"plaid": bad}});
        c.err("POST", "/collections/late/points/query", Some(&body), 400);
    }
}

/// By default sealed segments keep the tokens only compressed: reads return the decompressed tokens
/// (close to, not equal to, the inserted ones) and search scores are MaxSim over exactly those.
#[test]
fn compressed_token_store_scores_the_tokens_it_returns() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let body = json!({
        "vectors": {"late": {"size": 4, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}}},
        "optimizers_config": {"segment_max_points": 100}
    });
    c.ok("PUT", "/collections/late", Some(&body));
    let docs: Vec<Vec<Vec<f32>>> = (0..200u64)
        .map(|i| doc_tokens(i).iter().map(|t| normalized(t)).collect())
        .collect();
    let points: Vec<Value> = (0..200u64)
        .map(|i| json!({"id": i, "vector": {"late": docs[i as usize]}}))
        .collect();
    c.upsert("late", Value::Array(points));
    c.wait_for_seals("late", 3);
    let qt: Vec<Vec<f32>> = (0..3).map(|t| normalized(&vector(7000 + t, 4))).collect();
    let body = json!({"query": qt, "using": "late", "limit": 10, "with_vector": true,
                      "params": {"plaid": {"ncells": 8, "ndocs": 200, "n_full_scores": 100}}});
    let res = c.ok("POST", "/collections/late/points/query", Some(&body));
    let hits = res["points"].as_array().unwrap();
    assert_eq!(hits.len(), 10);
    let mut differs = false;
    for hit in hits {
        let id = hit["id"].as_u64().unwrap() as usize;
        let stored: Vec<Vec<f32>> = serde_json::from_value(hit["vector"]["late"].clone()).unwrap();
        assert_eq!(stored.len(), docs[id].len());
        differs |= stored != docs[id];
        let score = hit["score"].as_f64().unwrap() as f32;
        assert!((score - max_sim(&qt, &stored)).abs() < 1e-4, "{score}");
    }
    assert!(differs, "sealed tokens should be the decompressed ones");
}

/// `?timings=true` names the strategy the engine ran. A filter that few points pass is scanned
/// exactly by the filter planner, although the sealed segment has a graph: that stage is `exact`
/// (it used to be reported as `hnsw`), and one without the filter walks the graph.
#[test]
fn timings_report_an_exact_scan_the_filter_planner_chose() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.ok(
        "PUT",
        "/collections/planned",
        Some(&json!({
            "vectors": {"size": DIM, "distance": "Cosine"},
            "hnsw_config": {"full_scan_threshold": 0},
            "optimizers_config": {"segment_max_points": N}
        })),
    );
    let points: Vec<Value> = (0..N)
        .map(|i| json!({"id": i, "vector": vector(i, DIM), "payload": {"g": i % 10}}))
        .collect();
    c.upsert("planned", json!(points));
    c.wait_for_seals("planned", 2);
    let info = c.ok("GET", "/collections/planned", None);
    assert_eq!(info["indexed_vectors_count"], json!(N), "{info}");

    let query = |filter: Option<Value>| {
        let mut body = json!({"query": vector(7, DIM), "limit": 3});
        if let Some(f) = filter {
            body["filter"] = f;
        }
        let res = c.ok(
            "POST",
            "/collections/planned/points/query?timings=true",
            Some(&body),
        );
        res["timings"]["stages"][0].clone()
    };
    let walked = query(None);
    assert_eq!(walked["kind"], json!("hnsw"), "{walked}");
    assert_eq!(walked["segments_indexed"], json!(1), "{walked}");
    let scanned = query(Some(json!({"must": [{"key": "g", "match": {"value": 3}}]})));
    assert_eq!(scanned["kind"], json!("exact"), "{scanned}");
    assert_eq!(scanned["segments_indexed"], json!(0), "{scanned}");
}

/// `hnsw_config.payload_m` is stored and echoed, and with `m: 0` (no graph over the collection) a
/// filter requiring one indexed value walks that value's graph, reported in the stage timings, and
/// returns only points with the value; a filter that pins no value is scanned.
#[test]
fn payload_m_builds_value_graphs_that_pinned_filters_walk() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.ok(
        "PUT",
        "/collections/tenants",
        Some(&json!({
            "vectors": {"size": DIM, "distance": "Dot"},
            "hnsw_config": {"m": 0, "payload_m": 8, "full_scan_threshold": 0},
            "optimizers_config": {"segment_max_points": N}
        })),
    );
    c.ok(
        "PUT",
        "/collections/tenants/index?wait=true",
        Some(&json!({"field_name": "tenant", "field_schema": "keyword"})),
    );
    let points: Vec<Value> = (0..N)
        .map(|i| {
            json!({"id": i, "vector": vector(i, DIM), "payload": {"tenant": format!("t{}", i % 3)}})
        })
        .collect();
    c.upsert("tenants", json!(points));
    c.wait_for_seals("tenants", 2);
    let info = c.ok("GET", "/collections/tenants", None);
    assert_eq!(
        info["config"]["hnsw_config"]["payload_m"],
        json!(8),
        "{info}"
    );
    assert_eq!(info["config"]["hnsw_config"]["m"], json!(0), "{info}");

    let query = |filter: Value| {
        let body = json!({"query": vector(7, DIM), "limit": 5, "filter": filter,
                          "with_payload": true});
        c.ok(
            "POST",
            "/collections/tenants/points/query?timings=true",
            Some(&body),
        )
    };
    let pinned = query(json!({"must": [{"key": "tenant", "match": {"value": "t1"}}]}));
    let stage = &pinned["timings"]["stages"][0];
    assert_eq!(stage["kind"], json!("hnsw"), "{pinned}");
    assert_eq!(stage["segments_value_graph"], json!(1), "{pinned}");
    let hits = pinned["points"].as_array().unwrap();
    assert_eq!(hits.len(), 5, "{pinned}");
    for hit in hits {
        assert_eq!(hit["payload"]["tenant"], json!("t1"), "{pinned}");
    }
    let exact = c.ok(
        "POST",
        "/collections/tenants/points/query",
        Some(
            &json!({"query": vector(7, DIM), "limit": 5, "params": {"exact": true},
                     "filter": {"must": [{"key": "tenant", "match": {"value": "t1"}}]}}),
        ),
    );
    assert_eq!(ids(&exact["points"]), ids(&pinned["points"]));
    let unpinned = query(json!({"must_not": [{"key": "tenant", "match": {"value": "t1"}}]}));
    let stage = &unpinned["timings"]["stages"][0];
    assert_eq!(stage["kind"], json!("exact"), "{unpinned}");
    assert_eq!(stage["segments_value_graph"], json!(0), "{unpinned}");

    let bad = c.call(
        "PUT",
        "/collections/bad",
        Some(&json!({"vectors": {"size": DIM, "distance": "Dot"},
                     "hnsw_config": {"payload_m": 1}})),
    );
    assert_eq!(bad.0, 422, "{:?}", bad.1);
    assert!(bad.1.to_string().contains("payload_m"), "{:?}", bad.1);
}
