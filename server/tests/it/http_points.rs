//! Point routes: upsert (both forms), retrieve, delete, scroll, count, payload updates, and their errors.

use serde_json::{json, Value};

use crate::support::{vector, QuiverProcess};

const UUID: &str = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";

#[test]
fn upsert_retrieve_and_delete_with_int_and_uuid_ids() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("p", 3, "Dot");

    let result = c.upsert(
        "p",
        json!([
            {"id": 1, "vector": [1.0, 0.0, 0.0], "payload": {"color": "red", "n": 1}},
            {"id": UUID, "vector": [0.0, 1.0, 0.0], "payload": {"color": "blue", "n": 2}},
            {"id": 3, "vector": [0.0, 0.0, 1.0]}
        ]),
    );
    assert_eq!(result["status"], "completed");
    assert!(result["operation_id"].is_u64());

    // Batch (column) form; `wait` absent.
    let batch = json!({"batch": {
        "ids": [4, 5],
        "vectors": [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]],
        "payloads": [{"color": "red", "n": 4}, null]
    }});
    c.ok("PUT", "/collections/p/points", Some(&batch));

    let point = c.ok("GET", "/collections/p/points/1", None);
    assert_eq!(point["id"], 1);
    assert_eq!(point["payload"], json!({"color": "red", "n": 1}));
    assert_eq!(point["vector"], json!([1.0, 0.0, 0.0]));
    let point = c.ok("GET", &format!("/collections/p/points/{UUID}"), None);
    assert_eq!(point["id"], UUID);
    assert_eq!(point["payload"]["color"], "blue");
    let point = c.ok("GET", "/collections/p/points/4", None);
    assert_eq!(point["vector"], json!([1.0, 1.0, 0.0]));
    c.err("GET", "/collections/p/points/99", None, 404);

    // Retrieve keeps the asked order, skips missing ids, defaults to payload without vectors.
    let records = c.ok(
        "POST",
        "/collections/p/points",
        Some(&json!({"ids": [4, 99, UUID]})),
    );
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["id"], 4);
    assert_eq!(records[1]["id"], UUID);
    assert_eq!(records[0]["payload"]["n"], 4);
    assert!(records[0]["vector"].is_null());
    let records = c.ok(
        "POST",
        "/collections/p/points",
        Some(&json!({"ids": [1], "with_payload": ["n"], "with_vector": true})),
    );
    assert_eq!(records[0]["payload"], json!({"n": 1}));
    assert_eq!(records[0]["vector"], json!([1.0, 0.0, 0.0]));
    let records = c.ok(
        "POST",
        "/collections/p/points",
        Some(&json!({"ids": [1], "with_payload": {"exclude": ["n"]}})),
    );
    assert_eq!(records[0]["payload"], json!({"color": "red"}));

    // Upsert of an existing id replaces it.
    c.upsert(
        "p",
        json!([{"id": 1, "vector": [0.5, 0.5, 0.5], "payload": {"color": "green"}}]),
    );
    let point = c.ok("GET", "/collections/p/points/1", None);
    assert_eq!(point["payload"], json!({"color": "green"}));
    assert_eq!(
        c.ok("POST", "/collections/p/points/count", Some(&json!({}))),
        json!({"count": 5})
    );

    // Delete by ids, then by filter.
    let r = c.ok(
        "POST",
        "/collections/p/points/delete?wait=true",
        Some(&json!({"points": [1, UUID]})),
    );
    assert_eq!(r["status"], "completed");
    assert_eq!(
        c.ok("POST", "/collections/p/points/count", Some(&json!({}))),
        json!({"count": 3})
    );
    let filter = json!({"filter": {"must": [{"key": "color", "match": {"value": "red"}}]}});
    c.ok("POST", "/collections/p/points/delete", Some(&filter));
    let left = c.ok("POST", "/collections/p/points/scroll", Some(&json!({})));
    let ids: Vec<Value> = left["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(3), json!(5)]);
    assert_eq!(c.ok("GET", "/collections/p", None)["points_count"], 2);
}

#[test]
fn named_and_multivector_points() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let body = json!({"vectors": {
        "dense": {"size": 2, "distance": "Dot"},
        "colbert": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}
    }});
    c.ok("PUT", "/collections/n", Some(&body));
    c.upsert(
        "n",
        json!([{"id": 1, "vector": {"dense": [1.0, 2.0], "colbert": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]}}]),
    );
    let batch = json!({"batch": {"ids": [2], "vectors": {"dense": [[3.0, 4.0]], "colbert": [[[0.5, 0.5]]]}}});
    c.ok("PUT", "/collections/n/points", Some(&batch));

    let p = c.ok("GET", "/collections/n/points/1", None);
    assert_eq!(p["vector"]["dense"], json!([1.0, 2.0]));
    assert_eq!(
        p["vector"]["colbert"],
        json!([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    );
    let r = c.ok(
        "POST",
        "/collections/n/points",
        Some(&json!({"ids": [2], "with_vector": ["dense"]})),
    );
    assert_eq!(r[0]["vector"], json!({"dense": [3.0, 4.0]}));

    // Unnamed vector into a named collection, unknown name, wrong dimensions: all 400.
    let msg = c.err(
        "PUT",
        "/collections/n/points",
        Some(&json!({"points": [{"id": 3, "vector": [1.0, 2.0]}]})),
        400,
    );
    assert!(msg.contains("named vectors"), "{msg}");
    let msg = c.err(
        "PUT",
        "/collections/n/points",
        Some(&json!({"points": [{"id": 3, "vector": {"sparse": [1.0, 2.0]}}]})),
        400,
    );
    assert!(msg.contains("sparse"), "{msg}");
    c.err(
        "PUT",
        "/collections/n/points",
        Some(&json!({"points": [{"id": 3, "vector": {"colbert": [[1.0, 2.0, 3.0]]}}]})),
        400,
    );
    c.err(
        "POST",
        "/collections/n/points",
        Some(&json!({"ids": [1], "with_vector": ["nope"]})),
        400,
    );
    assert_eq!(
        c.ok("POST", "/collections/n/points/count", Some(&json!({}))),
        json!({"count": 2})
    );
}

#[test]
fn scroll_pages_through_every_point_with_filters() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("s", 4, "Cosine");
    let points: Vec<Value> = (0..25u64)
        .map(|i| {
            let tag = if i % 2 == 0 { "a" } else { "b" };
            json!({"id": i, "vector": vector(i + 1, 4), "payload": {"i": i, "even": i % 2 == 0, "tag": tag}})
        })
        .collect();
    c.upsert("s", Value::Array(points));

    let mut seen = Vec::new();
    let mut offset = Value::Null;
    loop {
        let page = c.ok(
            "POST",
            "/collections/s/points/scroll",
            Some(&json!({"limit": 7, "offset": offset, "with_payload": false})),
        );
        for p in page["points"].as_array().unwrap() {
            assert!(p["payload"].is_null());
            seen.push(p["id"].as_u64().unwrap());
        }
        offset = page["next_page_offset"].clone();
        if offset.is_null() {
            break;
        }
    }
    assert_eq!(seen, (0..25).collect::<Vec<_>>());

    let even = json!({"filter": {"must": [{"key": "even", "match": {"value": true}}]}});
    assert_eq!(
        c.ok("POST", "/collections/s/points/count", Some(&even)),
        json!({"count": 13})
    );
    let range = json!({"filter": {"must": [{"key": "i", "range": {"gte": 5, "lt": 10}}], "must_not": [{"has_id": [7]}]}, "exact": true});
    assert_eq!(
        c.ok("POST", "/collections/s/points/count", Some(&range)),
        json!({"count": 4})
    );
    let any = json!({"filter": {"should": [{"key": "tag", "match": {"any": ["b"]}}, {"has_id": [0]}]}, "limit": 100});
    let page = c.ok("POST", "/collections/s/points/scroll", Some(&any));
    assert_eq!(page["points"].as_array().unwrap().len(), 13);
    assert!(page["next_page_offset"].is_null());

    // Bad filters, ordering by an unindexed field and a zero limit are refused.
    c.err(
        "POST",
        "/collections/s/points/count",
        Some(&json!({"filter": {"must": [{"nonsense": 1}]}})),
        400,
    );
    c.err(
        "POST",
        "/collections/s/points/count",
        Some(&json!({"filter": {"must": [{"key": "i", "range": {"gt": "x"}}]}})),
        400,
    );
    c.err(
        "POST",
        "/collections/s/points/scroll",
        Some(&json!({"order_by": "i"})),
        400,
    );
    c.err(
        "POST",
        "/collections/s/points/scroll",
        Some(&json!({"limit": 0})),
        422,
    );
}

#[test]
fn payload_updates() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("pl", 2, "Dot");
    c.upsert(
        "pl",
        json!([
            {"id": 1, "vector": [1.0, 0.0], "payload": {"a": 1, "b": 2}},
            {"id": 2, "vector": [0.0, 1.0], "payload": {"a": 2}}
        ]),
    );
    let payload =
        |id: u64| c.ok("GET", &format!("/collections/pl/points/{id}"), None)["payload"].clone();

    let r = c.ok(
        "POST",
        "/collections/pl/points/payload?wait=true",
        Some(&json!({"payload": {"c": 3}, "points": [1]})),
    );
    assert_eq!(r["status"], "completed");
    assert_eq!(payload(1), json!({"a": 1, "b": 2, "c": 3}));
    c.ok("POST", "/collections/pl/points/payload", Some(&json!({"payload": {"x": true}, "filter": {"must": [{"key": "a", "match": {"value": 2}}]}})));
    assert_eq!(payload(2), json!({"a": 2, "x": true}));
    c.ok(
        "PUT",
        "/collections/pl/points/payload",
        Some(&json!({"payload": {"only": 1}, "points": [1]})),
    );
    assert_eq!(payload(1), json!({"only": 1}));
    c.ok(
        "POST",
        "/collections/pl/points/payload/delete",
        Some(&json!({"keys": ["x"], "points": [2]})),
    );
    assert_eq!(payload(2), json!({"a": 2}));
    c.ok(
        "POST",
        "/collections/pl/points/payload/clear",
        Some(&json!({"points": [1, 2]})),
    );
    assert_eq!(payload(1), json!({}));
    assert_eq!(payload(2), json!({}));

    c.err(
        "POST",
        "/collections/pl/points/payload",
        Some(&json!({"payload": {"c": 3}})),
        400,
    );
    c.err(
        "POST",
        "/collections/pl/points/payload",
        Some(&json!({"payload": {"c": 3}, "points": [1], "filter": {}})),
        400,
    );
    c.err(
        "POST",
        "/collections/pl/points/payload",
        Some(&json!({"payload": 5, "points": [1]})),
        400,
    );
    c.err(
        "POST",
        "/collections/missing/points/payload",
        Some(&json!({"payload": {}, "points": [1]})),
        404,
    );
}

#[test]
fn bad_points_are_rejected_and_nothing_is_written() {
    let server = QuiverProcess::start(&["--max-batch", "50"]);
    let c = server.client();
    c.create_single("b", 3, "Dot");
    let cases = [
        (json!({"points": [{"id": 1, "vector": [1.0, 2.0]}]}), 400),
        (
            json!({"points": [{"id": 1, "vector": [1.0, 2.0, 1e39]}]}),
            400,
        ),
        (
            json!({"points": [{"id": -1, "vector": [1.0, 2.0, 3.0]}]}),
            400,
        ),
        (
            json!({"points": [{"id": "not-a-uuid", "vector": [1.0, 2.0, 3.0]}]}),
            400,
        ),
        (
            json!({"points": [{"id": 1.5, "vector": [1.0, 2.0, 3.0]}]}),
            400,
        ),
        (
            json!({"points": [{"id": 1, "vector": ["a", "b", "c"]}]}),
            400,
        ),
        (
            json!({"points": [{"id": 1, "vector": [1.0, 2.0, 3.0], "payload": [1]}]}),
            400,
        ),
        (json!({"points": [{"id": 1}]}), 400),
        (
            json!({"batch": {"ids": [1, 2], "vectors": [[1.0, 2.0, 3.0]]}}),
            400,
        ),
        (
            json!({"batch": {"ids": [1], "vectors": [[1.0, 2.0, 3.0]], "payloads": [{}, {}]}}),
            400,
        ),
        (json!({"pointz": []}), 400),
    ];
    for (body, status) in &cases {
        c.err("PUT", "/collections/b/points", Some(body), *status);
    }
    let too_many: Vec<Value> = (0..51)
        .map(|i| json!({"id": i, "vector": [1.0, 2.0, 3.0]}))
        .collect();
    let msg = c.err(
        "PUT",
        "/collections/b/points",
        Some(&json!({"points": too_many})),
        422,
    );
    assert!(msg.contains("50"), "{msg}");
    c.err(
        "PUT",
        "/collections/missing/points",
        Some(&json!({"points": []})),
        404,
    );
    assert_eq!(
        c.ok("POST", "/collections/b/points/count", Some(&json!({}))),
        json!({"count": 0})
    );
}

#[test]
fn body_size_limit_is_413() {
    let server = QuiverProcess::start(&["--max-request-size-mb", "1"]);
    let c = server.client();
    c.create_single("big", 256, "Dot");
    // ~2 MiB of vectors.
    let points: Vec<Value> = (0..1000u64)
        .map(|i| json!({"id": i, "vector": vector(i, 256)}))
        .collect();
    let body = json!({"points": points});
    let msg = c.err("PUT", "/collections/big/points", Some(&body), 413);
    assert!(msg.contains("too large"), "{msg}");
    // Under the limit is fine.
    let small: Vec<Value> = (0..100u64)
        .map(|i| json!({"id": i, "vector": vector(i, 256)}))
        .collect();
    c.upsert("big", Value::Array(small));
    assert_eq!(
        c.ok("POST", "/collections/big/points/count", Some(&json!({}))),
        json!({"count": 100})
    );
}
