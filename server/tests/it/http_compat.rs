//! Behaviours where Quiver must answer as Qdrant does (issue "Qdrant compatibility II", "Wrong today").

use serde_json::{json, Value};

use crate::support::{Client, QuiverProcess};

fn payload_of(c: &Client, collection: &str, id: u64) -> Option<Value> {
    let records = c.ok(
        "POST",
        &format!("/collections/{collection}/points"),
        Some(&json!({"ids": [id]})),
    );
    records
        .as_array()
        .unwrap()
        .first()
        .map(|r| r["payload"].clone())
}

#[test]
fn upsert_honours_update_filter_and_update_mode() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("u", 2, "Dot");
    c.upsert(
        "u",
        json!([
            {"id": 1, "vector": [1, 0], "payload": {"version": 1}},
            {"id": 2, "vector": [1, 0], "payload": {"version": 2}}
        ]),
    );
    // Existing points are replaced only when they match `update_filter`; new points are inserted.
    let body = json!({
        "points": [
            {"id": 1, "vector": [0, 1], "payload": {"version": 10}},
            {"id": 2, "vector": [0, 1], "payload": {"version": 20}},
            {"id": 3, "vector": [0, 1], "payload": {"version": 30}}
        ],
        "update_filter": {"must": [{"key": "version", "match": {"value": 1}}]}
    });
    c.ok("PUT", "/collections/u/points?wait=true", Some(&body));
    assert_eq!(payload_of(&c, "u", 1), Some(json!({"version": 10})));
    assert_eq!(payload_of(&c, "u", 2), Some(json!({"version": 2})));
    assert_eq!(payload_of(&c, "u", 3), Some(json!({"version": 30})));

    // insert_only leaves existing points alone; update_only creates nothing.
    let body = json!({
        "points": [
            {"id": 1, "vector": [1, 1], "payload": {"version": 11}},
            {"id": 4, "vector": [1, 1], "payload": {"version": 40}}
        ],
        "update_mode": "insert_only"
    });
    c.ok("PUT", "/collections/u/points?wait=true", Some(&body));
    assert_eq!(payload_of(&c, "u", 1), Some(json!({"version": 10})));
    assert_eq!(payload_of(&c, "u", 4), Some(json!({"version": 40})));
    let body = json!({
        "batch": {"ids": [2, 5], "vectors": [[1, 1], [1, 1]], "payloads": [{"version": 22}, {"version": 50}]},
        "update_mode": "update_only"
    });
    c.ok("PUT", "/collections/u/points?wait=true", Some(&body));
    assert_eq!(payload_of(&c, "u", 2), Some(json!({"version": 22})));
    assert_eq!(payload_of(&c, "u", 5), None);
    let count = c.ok("POST", "/collections/u/points/count", Some(&json!({})));
    assert_eq!(count["count"], 4);

    let body = json!({"points": [{"id": 9, "vector": [1, 1]}], "update_mode": "replace"});
    let (status, _) = c.call("PUT", "/collections/u/points", Some(&body));
    assert!(status == 400 || status == 422, "{status}");
    assert_eq!(payload_of(&c, "u", 9), None);
}

#[test]
fn a_vector_named_image_is_a_vector_not_an_image() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let body = json!({"vectors": {
        "image": {"size": 4, "distance": "Dot"},
        "text": {"size": 2, "distance": "Dot"}
    }});
    c.ok("PUT", "/collections/named", Some(&body));
    let body = json!({"points": [
        {"id": 1, "vector": {"image": [1, 2, 3, 4]}},
        {"id": 2, "vector": {"text": [1, 2]}},
        {"id": 3, "vector": {"image": [4, 3, 2, 1], "text": [2, 1]}}
    ]});
    c.ok("PUT", "/collections/named/points?wait=true", Some(&body));
    let point = c.ok("GET", "/collections/named/points/1", None);
    assert_eq!(point["vector"], json!({"image": [1.0, 2.0, 3.0, 4.0]}));
    let point = c.ok("GET", "/collections/named/points/2", None);
    assert_eq!(point["vector"], json!({"text": [1.0, 2.0]}));
    // A real image object (a string) is still an inference object: no model here, so a 4xx naming it.
    let body = json!({"points": [{"id": 4, "vector": {"image": {"image": "aGk=", "model": "m"}}}]});
    let (status, _) = c.call("PUT", "/collections/named/points", Some(&body));
    assert!((400..500).contains(&status), "{status}");
}

#[test]
fn one_dense_vector_for_a_multivector_field_is_a_one_row_matrix() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let body = json!({"vectors": {"colbert": {
        "size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}
    }}});
    c.ok("PUT", "/collections/multi", Some(&body));
    let body = json!({"points": [{"id": 1, "vector": {"colbert": [0.5, 2.0]}}]});
    c.ok("PUT", "/collections/multi/points?wait=true", Some(&body));
    let point = c.ok("GET", "/collections/multi/points/1", None);
    assert_eq!(point["vector"], json!({"colbert": [[0.5, 2.0]]}));
}

#[test]
fn an_all_zero_vector_under_cosine_is_stored() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("cos", 2, "Cosine");
    c.upsert(
        "cos",
        json!([{"id": 1, "vector": [0, 0]}, {"id": 2, "vector": [3, 4]}]),
    );
    let point = c.ok("GET", "/collections/cos/points/1", None);
    assert_eq!(point["vector"], json!([0.0, 0.0]));
    let res = c.ok(
        "POST",
        "/collections/cos/points/query",
        Some(&json!({"query": [1, 1], "limit": 10})),
    );
    let zero = res["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == 1)
        .unwrap();
    assert_eq!(zero["score"], 0.0);
}

#[test]
fn query_by_id_leaves_the_point_out_and_a_prefetch_without_query_is_a_scroll() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("q", 2, "Dot");
    c.upsert(
        "q",
        json!([
            {"id": 1, "vector": [1, 0]},
            {"id": 2, "vector": [0.9, 0.1]},
            {"id": 3, "vector": [0, 1]},
            {"id": 4, "vector": [0.5, 0.5]}
        ]),
    );
    let res = c.ok(
        "POST",
        "/collections/q/points/query",
        Some(&json!({"query": 1, "limit": 2})),
    );
    let ids: Vec<_> = res["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(2), json!(4)]);
    // The prefetch passes up its first 2 points in id order (1 and 2); the query rescores them.
    let body = json!({"prefetch": {"limit": 2}, "query": [0, 1], "limit": 10});
    let res = c.ok("POST", "/collections/q/points/query", Some(&body));
    let ids: Vec<_> = res["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(2), json!(1)]);
}

#[test]
fn nested_payload_paths_in_with_payload_and_set_payload() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("p", 2, "Dot");
    c.upsert(
        "p",
        json!([{"id": 1, "vector": [1, 0], "payload": {
            "country": {"name": "Japan", "code": "JP"},
            "a": {"arr": [{"b": {"x": 1}}, {"b": {"x": 2}}]}
        }}]),
    );
    let get = |with_payload: Value| {
        let r = c.ok(
            "POST",
            "/collections/p/points",
            Some(&json!({"ids": [1], "with_payload": with_payload})),
        );
        r[0]["payload"].clone()
    };
    assert_eq!(
        get(json!({"include": ["country.name"]})),
        json!({"country": {"name": "Japan"}})
    );
    assert_eq!(
        get(json!({"exclude": ["country.code", "a"]})),
        json!({"country": {"name": "Japan"}})
    );
    let body = json!({"payload": {"y": 3}, "points": [1], "key": "a.arr[0].b"});
    c.ok(
        "POST",
        "/collections/p/points/payload?wait=true",
        Some(&body),
    );
    assert_eq!(
        get(json!(["a"])),
        json!({"a": {"arr": [{"b": {"x": 1, "y": 3}}, {"b": {"x": 2}}]}})
    );
}

#[test]
fn stored_vectors_read_back_as_the_floats_sent() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("f", 3, "Dot");
    c.upsert("f", json!([{"id": 1, "vector": [0.05, 0.1, -0.3]}]));
    let (_, text) = c.try_raw("GET", "/collections/f/points/1", None).unwrap();
    assert!(text.contains("[0.05,0.1,-0.3]"), "{text}");
    let body = json!({"limit": 1, "with_vector": true});
    let (_, text) = c
        .try_raw("POST", "/collections/f/points/scroll", Some(&body))
        .unwrap();
    assert!(text.contains("[0.05,0.1,-0.3]"), "{text}");
}

#[test]
fn with_vectors_is_with_vector() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("w", 2, "Dot");
    c.upsert("w", json!([{"id": 1, "vector": [1, 2]}]));
    let r = c.ok(
        "POST",
        "/collections/w/points",
        Some(&json!({"ids": [1], "with_vectors": true})),
    );
    assert_eq!(r[0]["vector"], json!([1.0, 2.0]));
    let body = json!({"ids": [1], "with_vectors": ["nope"]});
    c.err("POST", "/collections/w/points", Some(&body), 400);
    let body = json!({"query": [1, 2], "with_vectors": ["nope"]});
    c.err("POST", "/collections/w/points/query", Some(&body), 400);
}

#[test]
fn multivector_euclid_scores_as_qdrant() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let body = json!({"vectors": {"m": {
        "size": 3, "distance": "Euclid", "multivector_config": {"comparator": "max_sim"}
    }}});
    c.ok("PUT", "/collections/me", Some(&body));
    let body = json!({"points": [{"id": 1, "vector": {"m": [[3, 3, 3], [4, 2, 1]]}}]});
    c.ok("PUT", "/collections/me/points?wait=true", Some(&body));
    let body = json!({"query": [[1, 2, 3], [3, 3, 3], [4, 5, 6]], "using": "m"});
    let res = c.ok("POST", "/collections/me/points/query", Some(&body));
    let score = res["points"][0]["score"].as_f64().unwrap();
    assert!((score - 4.358899).abs() < 1e-5, "{score}");
}

#[test]
fn a_condition_with_only_a_key_is_422_as_in_qdrant() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("v", 2, "Dot");
    c.upsert(
        "v",
        json!([{"id": 1, "vector": [1, 2], "payload": {"a": 1}}]),
    );
    let key_only = json!({"must": [{"key": "a"}]});
    c.err(
        "POST",
        "/collections/v/points/scroll",
        Some(&json!({"filter": key_only})),
        422,
    );
    c.err(
        "POST",
        "/collections/v/points/count",
        Some(&json!({"filter": {"should": [{"must": [{"key": "a"}]}]}})),
        422,
    );
    c.err(
        "POST",
        "/collections/v/points/delete",
        Some(&json!({"filter": key_only})),
        422,
    );
    assert_eq!(
        c.ok("POST", "/collections/v/points/count", Some(&json!({})))["count"],
        1
    );
}

#[test]
fn out_of_range_params_and_names_are_422_as_in_qdrant() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("v", 2, "Dot");
    c.err(
        "POST",
        "/collections/v/points/query",
        Some(&json!({"query": [1, 2], "params": {"hnsw_ef": 0}})),
        422,
    );
    for field in [
        "shard_number",
        "replication_factor",
        "write_consistency_factor",
    ] {
        let mut body = json!({"vectors": {"size": 2, "distance": "Dot"}});
        body[field] = json!(0);
        c.err("PUT", "/collections/zero", Some(&body), 422);
    }
    let long = "x".repeat(400);
    let body = json!({"vectors": {"size": 2, "distance": "Dot"}});
    c.err("PUT", &format!("/collections/{long}"), Some(&body), 422);
}

#[test]
fn snapshot_with_wait_false_is_accepted() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("s", 2, "Dot");
    let (status, body) = c.call("POST", "/collections/s/snapshots?wait=false", None);
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    let list = c.ok("GET", "/collections/s/snapshots", None);
    assert_eq!(list.as_array().unwrap().len(), 1);
}
