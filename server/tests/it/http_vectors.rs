//! Vector routes and batch updates: `PUT points/vectors`, `POST points/vectors/delete` and
//! `POST points/batch`, on points in the appendable segment and in sealed ones, across a restart
//! after a kill, and their errors (nothing written when any part is wrong).

use serde_json::{json, Value};

use crate::support::{ids, Client, QuiverProcess, TestDir};

/// Two dense named vectors and a sparse one; `max` points per segment.
fn create(c: &Client, name: &str, max: usize) {
    let body = json!({
        "vectors": {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}},
        "sparse_vectors": {"s": {}},
        "optimizers_config": {"segment_max_points": max}
    });
    c.ok("PUT", &format!("/collections/{name}"), Some(&body));
}

/// Points `ids` with `a = [i, 1]`, `b = [1, i]`, `s = {i: 1}` and payload `{"k": i}`.
fn fill(c: &Client, name: &str, ids: std::ops::Range<u64>) {
    let points: Vec<Value> = ids
        .map(|i| {
            json!({"id": i, "vector": {"a": [i as f32, 1.0], "b": [1.0, i as f32],
                   "s": {"indices": [i], "values": [1.0]}},
                   "payload": {"k": i}})
        })
        .collect();
    c.upsert(name, Value::Array(points));
}

fn point(c: &Client, name: &str, id: u64) -> Value {
    c.ok("GET", &format!("/collections/{name}/points/{id}"), None)
}

/// Every point with payload and vectors, in id order.
fn everything(c: &Client, name: &str) -> Value {
    c.ok(
        "POST",
        &format!("/collections/{name}/points/scroll"),
        Some(&json!({"limit": 1000, "with_payload": true, "with_vector": true})),
    )["points"]
        .clone()
}

/// Ids a query on vector `using` finds (all of them: the limit passes the point count).
fn found_by(c: &Client, name: &str, using: &str, query: Value) -> Vec<u64> {
    let mut found = ids(&c.ok(
        "POST",
        &format!("/collections/{name}/points/query"),
        Some(&json!({"query": query, "using": using, "limit": 100})),
    )["points"]);
    found.sort_unstable();
    found
}

fn update_vectors(c: &Client, name: &str, body: Value) -> (u16, Value) {
    c.call(
        "PUT",
        &format!("/collections/{name}/points/vectors?wait=true"),
        Some(&body),
    )
}

fn batch(c: &Client, name: &str, operations: Value) -> (u16, Value) {
    c.call(
        "POST",
        &format!("/collections/{name}/points/batch?wait=true"),
        Some(&json!({ "operations": operations })),
    )
}

#[test]
fn updating_one_named_vector_keeps_the_others_and_the_payload() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(&c, "v", 1000);
    fill(&c, "v", 1..4);

    let (status, body) = update_vectors(
        &c,
        "v",
        json!({"points": [{"id": 1, "vector": {"a": [7.0, 8.0]}},
                          {"id": 2, "vector": {"s": {"indices": [9, 4], "values": [0.5, 2.0]}}}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["status"], "completed");
    assert!(body["result"]["operation_id"].is_u64());

    let p = point(&c, "v", 1);
    assert_eq!(p["vector"]["a"], json!([7.0, 8.0]));
    assert_eq!(p["vector"]["b"], json!([1.0, 1.0]));
    assert_eq!(p["vector"]["s"], json!({"indices": [1], "values": [1.0]}));
    assert_eq!(p["payload"], json!({"k": 1}));
    let p = point(&c, "v", 2);
    assert_eq!(p["vector"]["a"], json!([2.0, 1.0]));
    assert_eq!(
        p["vector"]["s"],
        json!({"indices": [4, 9], "values": [2.0, 0.5]})
    );
    assert_eq!(p["payload"], json!({"k": 2}));
    assert_eq!(
        c.ok("POST", "/collections/v/points/count", Some(&json!({}))),
        json!({"count": 3})
    );

    // `update_filter`: a point it does not match is skipped, not an error.
    let (status, body) = update_vectors(
        &c,
        "v",
        json!({"points": [{"id": 3, "vector": {"a": [0.0, 0.0]}}],
               "update_filter": {"must": [{"key": "k", "match": {"value": 99}}]}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(point(&c, "v", 3)["vector"]["a"], json!([3.0, 1.0]));
}

#[test]
fn updating_vectors_of_a_missing_point_is_404_and_writes_nothing() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(&c, "v", 1000);
    fill(&c, "v", 1..3);
    let before = everything(&c, "v");

    let message = c.err(
        "PUT",
        "/collections/v/points/vectors",
        Some(&json!({"points": [{"id": 1, "vector": {"a": [5.0, 5.0]}},
                                {"id": 99, "vector": {"a": [1.0, 1.0]}}]})),
        404,
    );
    assert!(message.contains("No point with id 99 found"), "{message}");
    assert_eq!(everything(&c, "v"), before);

    let message = c.err(
        "PUT",
        "/collections/v/points/vectors",
        Some(&json!({"points": [{"id": 1, "vector": {"zzz": [5.0, 5.0]}}]})),
        400,
    );
    assert!(message.contains("zzz"), "{message}");
    let message = c.err(
        "PUT",
        "/collections/v/points/vectors",
        Some(&json!({"points": [{"id": 1, "vector": {"b": [5.0, 5.0, 5.0]}}]})),
        400,
    );
    assert!(
        message.contains("`b`") && message.contains("expected 2"),
        "{message}"
    );
    assert_eq!(everything(&c, "v"), before);
    c.err(
        "PUT",
        "/collections/nope/points/vectors",
        Some(&json!({"points": [{"id": 1, "vector": {"a": [5.0, 5.0]}}]})),
        404,
    );
}

#[test]
fn a_deleted_vector_is_not_found_by_searches_on_it() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(&c, "v", 1000);
    fill(&c, "v", 1..5);
    assert_eq!(found_by(&c, "v", "b", json!([1.0, 1.0])), [1, 2, 3, 4]);

    let result = c.ok(
        "POST",
        "/collections/v/points/vectors/delete?wait=true",
        Some(&json!({"points": [1, 2], "vector": ["b", "s"]})),
    );
    assert_eq!(result["status"], "completed");
    assert_eq!(found_by(&c, "v", "b", json!([1.0, 1.0])), [3, 4]);
    assert_eq!(found_by(&c, "v", "a", json!([1.0, 1.0])), [1, 2, 3, 4]);
    assert_eq!(
        found_by(
            &c,
            "v",
            "s",
            json!({"indices": [1, 2, 3], "values": [1, 1, 1]})
        ),
        [3]
    );
    let p = point(&c, "v", 1);
    assert_eq!(p["vector"], json!({"a": [1.0, 1.0]}));
    assert_eq!(p["payload"], json!({"k": 1}));

    // By filter.
    c.ok(
        "POST",
        "/collections/v/points/vectors/delete",
        Some(&json!({"filter": {"must": [{"key": "k", "match": {"value": 4}}]}, "vector": ["a"]})),
    );
    assert_eq!(found_by(&c, "v", "a", json!([1.0, 1.0])), [1, 2, 3]);
    assert_eq!(found_by(&c, "v", "b", json!([1.0, 1.0])), [3, 4]);

    let before = everything(&c, "v");
    let message = c.err(
        "POST",
        "/collections/v/points/vectors/delete",
        Some(&json!({"points": [3], "vector": ["a", "zzz"]})),
        400,
    );
    assert!(message.contains("zzz"), "{message}");
    let message = c.err(
        "POST",
        "/collections/v/points/vectors/delete",
        Some(&json!({"points": [3, 77], "vector": ["a"]})),
        404,
    );
    assert!(message.contains("No point with id 77 found"), "{message}");
    assert_eq!(everything(&c, "v"), before);
}

#[test]
fn a_batch_applies_its_operations_in_order() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(&c, "v", 1000);
    fill(&c, "v", 1..5);

    let k_is = |v: u64| json!({"must": [{"key": "k", "match": {"value": v}}]});
    let (status, body) = batch(
        &c,
        "v",
        json!([
            {"upsert": {"points": [{"id": 10, "vector": {"a": [1.0, 0.0], "b": [0.0, 1.0]},
                                    "payload": {"k": 10}}]}},
            // Sees the point the upsert before it wrote.
            {"set_payload": {"payload": {"t": "new"}, "filter": k_is(10)}},
            {"overwrite_payload": {"payload": {"k": 20}, "points": [2]}},
            {"update_vectors": {"points": [{"id": 10, "vector": {"a": [3.0, 3.0]}}]}},
            {"delete_vectors": {"points": [3], "vector": ["b"]}},
            // Sees the payload the overwrite wrote.
            {"delete": {"filter": k_is(20)}},
            {"clear_payload": {"points": [1]}},
            {"delete_payload": {"points": [10], "keys": ["k"]}}
        ]),
    );
    assert_eq!(status, 200, "{body}");
    let results = body["result"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    for r in results {
        assert_eq!(r["status"], "completed");
        assert_eq!(r["operation_id"], results[0]["operation_id"]);
    }

    let p = point(&c, "v", 10);
    assert_eq!(p["payload"], json!({"t": "new"}));
    assert_eq!(p["vector"], json!({"a": [3.0, 3.0], "b": [0.0, 1.0]}));
    c.err("GET", "/collections/v/points/2", None, 404);
    assert_eq!(point(&c, "v", 1)["payload"], json!({}));
    assert_eq!(point(&c, "v", 3)["vector"]["b"], Value::Null);
    assert_eq!(point(&c, "v", 3)["vector"]["a"], json!([3.0, 1.0]));
    assert_eq!(found_by(&c, "v", "b", json!([1.0, 1.0])), [1, 4, 10]);

    // A later operation sees an earlier delete: updating the deleted point's vectors is a 404.
    let (status, body) = batch(
        &c,
        "v",
        json!([{"delete": {"points": [4]}},
               {"update_vectors": {"points": [{"id": 4, "vector": {"a": [1.0, 1.0]}}]}}]),
    );
    assert_eq!(status, 404, "{body}");
    assert!(point(&c, "v", 4)["id"] == 4);
    // An empty batch is an empty list.
    let (status, body) = batch(&c, "v", json!([]));
    assert_eq!((status, body["result"].clone()), (200, json!([])));
}

#[test]
fn a_bad_operation_fails_the_whole_batch_and_is_named() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(&c, "v", 1000);
    fill(&c, "v", 1..4);
    let before = everything(&c, "v");

    let good = json!([
        {"upsert": {"points": [{"id": 20, "vector": {"a": [1.0, 1.0]}}]}},
        {"set_payload": {"payload": {"x": 1}, "points": [1]}}
    ]);
    let with = |bad: Value| {
        let mut ops = good.as_array().unwrap().clone();
        ops.push(bad);
        ops.push(json!({"delete": {"points": [2]}}));
        Value::Array(ops)
    };
    let cases = [
        // Unknown vector name.
        (
            with(json!({"update_vectors": {"points": [{"id": 1, "vector": {"zzz": [1.0, 1.0]}}]}})),
            400,
            "zzz",
        ),
        // Wrong dimension.
        (
            with(json!({"upsert": {"points": [{"id": 21, "vector": {"a": [1.0]}}]}})),
            400,
            "expected 2",
        ),
        // A point that does not exist.
        (
            with(json!({"delete_vectors": {"points": [99], "vector": ["a"]}})),
            404,
            "No point with id 99 found",
        ),
        // Not an operation.
        (with(json!({"frobnicate": {}})), 400, "frobnicate"),
        // A malformed body of a known operation.
        (
            with(json!({"delete_vectors": {"points": [1]}})),
            400,
            "vector",
        ),
    ];
    for (ops, status, needle) in cases {
        let (got, body) = batch(&c, "v", ops.clone());
        assert_eq!(got, status, "{ops}: {body}");
        let message = body["status"]["error"].as_str().unwrap();
        assert!(message.contains("operation 2"), "{message}");
        assert!(message.contains(needle), "{message}");
        assert_eq!(everything(&c, "v"), before, "{ops}");
    }
}

#[test]
fn updates_of_sealed_points_survive_a_restart() {
    let dir = TestDir::new();
    let state = {
        let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
        let c = server.client();
        create(&c, "v", 4);
        fill(&c, "v", 0..12);
        c.wait_for_seals("v", 3);

        let (status, body) = update_vectors(
            &c,
            "v",
            json!({"points": [{"id": 0, "vector": {"a": [9.0, 9.0]}},
                              {"id": 5, "vector": {"b": [-1.0, -1.0]}}]}),
        );
        assert_eq!(status, 200, "{body}");
        c.ok(
            "POST",
            "/collections/v/points/vectors/delete",
            Some(&json!({"points": [6, 7], "vector": ["b"]})),
        );
        let (status, body) = batch(
            &c,
            "v",
            json!([
                {"update_vectors": {"points": [{"id": 8, "vector": {"s": {"indices": [50], "values": [2.0]}}}]}},
                {"delete_vectors": {"filter": {"must": [{"key": "k", "match": {"value": 9}}]}, "vector": ["a"]}},
                {"set_payload": {"payload": {"t": 1}, "points": [10]}},
                {"delete": {"points": [11]}}
            ]),
        );
        assert_eq!(status, 200, "{body}");

        let p = point(&c, "v", 0);
        assert_eq!(p["vector"]["a"], json!([9.0, 9.0]));
        assert_eq!(p["vector"]["b"], json!([1.0, 0.0]));
        assert_eq!(p["payload"], json!({"k": 0}));
        assert_eq!(point(&c, "v", 5)["vector"]["a"], json!([5.0, 1.0]));
        assert_eq!(
            point(&c, "v", 8)["vector"]["s"],
            json!({"indices": [50], "values": [2.0]})
        );
        let with_b: Vec<u64> = (0..11).filter(|i| ![6, 7].contains(i)).collect();
        assert_eq!(found_by(&c, "v", "b", json!([1.0, 1.0])), with_b);
        let with_a: Vec<u64> = (0..11).filter(|&i| i != 9).collect();
        assert_eq!(found_by(&c, "v", "a", json!([1.0, 1.0])), with_a);
        assert_eq!(
            c.ok("POST", "/collections/v/points/count", Some(&json!({}))),
            json!({"count": 11})
        );
        let state = everything(&c, "v");
        // Killed, not stopped: the state comes back from the log.
        drop(server);
        state
    };
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let c = server.client();
    assert_eq!(everything(&c, "v"), state);
    let with_b: Vec<u64> = (0..11).filter(|i| ![6, 7].contains(i)).collect();
    assert_eq!(found_by(&c, "v", "b", json!([1.0, 1.0])), with_b);
    // And through a graceful stop.
    c.ok(
        "POST",
        "/collections/v/points/vectors/delete",
        Some(&json!({"points": [0], "vector": ["s"]})),
    );
    let state = everything(&c, "v");
    assert!(server.terminate().success());
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    assert_eq!(everything(&server.client(), "v"), state);
}

#[test]
fn inference_objects_fill_updated_vectors_as_in_upserts() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(&c, "v", 1000);
    fill(&c, "v", 1..3);
    let doc = |text: &str| json!({"text": text, "model": "qdrant/bm25"});
    let upserted = {
        c.upsert(
            "v",
            json!([{"id": 9, "vector": {"a": [0.0, 0.0], "s": doc("vector search engines")}}]),
        );
        point(&c, "v", 9)["vector"]["s"].clone()
    };
    assert!(
        upserted["indices"].as_array().unwrap().len() == 3,
        "{upserted}"
    );

    let (status, body) = update_vectors(
        &c,
        "v",
        json!({"points": [{"id": 1, "vector": {"s": doc("vector search engines")}}]}),
    );
    assert_eq!(status, 200, "{body}");
    let p = point(&c, "v", 1);
    assert_eq!(p["vector"]["s"], upserted);
    assert_eq!(p["vector"]["a"], json!([1.0, 1.0]));
    assert_eq!(p["payload"], json!({"k": 1}));

    let (status, body) = batch(
        &c,
        "v",
        json!([{"update_vectors": {"points": [{"id": 2, "vector": {"s": doc("vector search engines")}}]}},
               {"update_vectors": {"points": [{"id": 2, "vector": {"a": doc("a bm25 document for a dense vector")}}]}}]),
    );
    assert_eq!(status, 400, "{body}");
    let message = body["status"]["error"].as_str().unwrap();
    assert!(
        message.contains("operation 1") && message.contains("`a`"),
        "{message}"
    );
    assert_eq!(
        point(&c, "v", 2)["vector"]["s"],
        json!({"indices": [2], "values": [1.0]})
    );
}
