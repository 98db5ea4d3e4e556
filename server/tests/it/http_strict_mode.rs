//! `strict_mode_config`: stored at creation, merged by PATCH, shown by GET, kept across a restart
//! and in snapshots;
//! when enabled, each limit Quiver enforces refuses a request over it with Qdrant's 403 (a full
//! collection with Qdrant's 400) and lets one at the limit through; disabled, nothing is checked;
//! Qdrant fields Quiver does not enforce are a 400 naming them.

use serde_json::{json, Value};

use crate::support::{vector, Client, QuiverProcess, TestDir};

fn points(ids: std::ops::Range<u64>) -> Value {
    Value::Array(
        ids.map(|i| json!({"id": i, "vector": vector(i, 4), "payload": {"color": "red", "n": i}}))
            .collect(),
    )
}

fn create(c: &Client, name: &str, strict: Value) {
    let body = json!({"vectors": {"size": 4, "distance": "Dot"}, "strict_mode_config": strict});
    assert_eq!(
        c.ok("PUT", &format!("/collections/{name}"), Some(&body)),
        json!(true)
    );
}

/// Expects a 403 whose message names `needle`.
fn forbidden(c: &Client, method: &str, path: &str, body: Value, needle: &str) {
    let message = c.err(method, path, Some(&body), 403);
    assert!(message.contains(needle), "{path} {body}: {message}");
}

#[test]
fn strict_mode_is_stored_merged_shown_and_survives_a_restart() {
    let dir = TestDir::new();
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let c = server.client();
    create(&c, "s", json!({"enabled": true, "max_query_limit": 10}));
    let info = c.ok("GET", "/collections/s", None);
    assert_eq!(
        info["config"]["strict_mode_config"],
        json!({"enabled": true, "max_query_limit": 10})
    );
    // A collection without one shows none.
    c.create_single("plain", 4, "Dot");
    let info = c.ok("GET", "/collections/plain", None);
    assert!(info["config"]["strict_mode_config"].is_null(), "{info}");

    // PATCH: the fields given replace, the others stay.
    let patch = json!({"strict_mode_config": {"max_query_limit": 5, "search_allow_exact": false}});
    assert_eq!(c.ok("PATCH", "/collections/s", Some(&patch)), json!(true));
    let expected = json!({"enabled": true, "max_query_limit": 5, "search_allow_exact": false});
    let info = c.ok("GET", "/collections/s", None);
    assert_eq!(info["config"]["strict_mode_config"], expected);

    // A snapshot carries it.
    let created = c.ok("POST", "/collections/s/snapshots?wait=true", None);
    let name = created["name"].as_str().unwrap().to_string();
    let (status, _, archive) = c.download(&format!("/collections/s/snapshots/{name}"));
    assert_eq!(status, 200);
    let other = QuiverProcess::start(&[]);
    let (status, body) = other.client().upload(
        "/collections/restored/snapshots/upload?wait=true",
        "snapshot",
        &archive,
    );
    assert_eq!(status, 200, "{body}");
    let info = other.client().ok("GET", "/collections/restored", None);
    assert_eq!(info["config"]["strict_mode_config"], expected);
    drop(other);

    server.terminate();
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let c = server.client();
    let info = c.ok("GET", "/collections/s", None);
    assert_eq!(info["config"]["strict_mode_config"], expected);
    // And it is still enforced after the restart.
    forbidden(
        &c,
        "POST",
        "/collections/s/points/scroll",
        json!({"limit": 6}),
        "Limit exceeded 6 > 5 for \"limit\"",
    );
}

#[test]
fn unsupported_strict_mode_fields_are_refused_by_name() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("u", 4, "Dot");
    for field in [
        "max_timeout",
        "read_rate_limit",
        "write_rate_limit",
        "max_collection_vector_size_bytes",
        "max_collection_payload_size_bytes",
        "max_payload_index_count",
        "bogus",
    ] {
        let strict = json!({"enabled": true, field: 3});
        let body = json!({"vectors": {"size": 4, "distance": "Dot"}, "strict_mode_config": strict});
        let message = c.err("PUT", "/collections/new", Some(&body), 400);
        assert!(message.contains(field), "{field}: {message}");
        let patch = json!({ "strict_mode_config": strict });
        let message = c.err("PATCH", "/collections/u", Some(&patch), 400);
        assert!(message.contains(field), "{field}: {message}");
    }
    for field in ["multivector_config", "sparse_config"] {
        let patch = json!({"strict_mode_config": {field: {}}});
        let message = c.err("PATCH", "/collections/u", Some(&patch), 400);
        assert!(message.contains(field), "{field}: {message}");
    }
    let (status, _) = c.call("GET", "/collections/new", None);
    assert_eq!(status, 404);
    let info = c.ok("GET", "/collections/u", None);
    assert!(info["config"]["strict_mode_config"].is_null(), "{info}");
}

#[test]
fn each_enforced_limit_refuses_over_it_and_passes_at_it() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(
        &c,
        "l",
        json!({
            "enabled": true,
            "max_query_limit": 5,
            "search_max_hnsw_ef": 32,
            "search_allow_exact": false,
            "search_max_oversampling": 2.0,
            "upsert_max_batchsize": 3,
            "max_points_count": 6,
            "filter_max_conditions": 2,
            "condition_max_size": 3
        }),
    );
    let q = [1.0, 0.0, 0.0, 0.0];

    // upsert_max_batchsize, and max_points_count (Qdrant answers 400 there).
    forbidden(
        &c,
        "PUT",
        "/collections/l/points?wait=true",
        json!({"points": points(0..4)}),
        "Limit exceeded 4 > 3 for \"upsert limit\"",
    );
    c.upsert("l", points(0..3));
    c.upsert("l", points(3..6));
    let message = c.err(
        "PUT",
        "/collections/l/points",
        Some(&json!({"points": points(6..7)})),
        400,
    );
    assert!(
        message.contains("Max points count limit of 6 reached"),
        "{message}"
    );
    // Replacing existing points does not grow the collection.
    c.upsert("l", points(0..2));
    let update = json!({"points": [
        {"id": 0, "vector": q}, {"id": 1, "vector": q}, {"id": 2, "vector": q}, {"id": 3, "vector": q}
    ]});
    forbidden(
        &c,
        "PUT",
        "/collections/l/points/vectors",
        update,
        "\"update limit\"",
    );
    forbidden(
        &c,
        "POST",
        "/collections/l/points/batch",
        json!({"operations": [{"upsert": {"points": points(0..4)}}]}),
        "\"upsert limit\"",
    );

    // max_query_limit on search, query, scroll, recommend, groups, facet.
    for (path, over, at) in [
        (
            "/collections/l/points/search",
            json!({"vector": q, "limit": 6}),
            json!({"vector": q, "limit": 5}),
        ),
        (
            "/collections/l/points/query",
            json!({"query": q, "limit": 6}),
            json!({"query": q, "limit": 5}),
        ),
        (
            "/collections/l/points/query",
            json!({"prefetch": {"query": q, "limit": 6}, "query": q, "limit": 2}),
            json!({"prefetch": {"query": q, "limit": 5}, "query": q, "limit": 2}),
        ),
        (
            "/collections/l/points/scroll",
            json!({"limit": 6}),
            json!({"limit": 5}),
        ),
        (
            "/collections/l/points/recommend",
            json!({"positive": [1], "limit": 6}),
            json!({"positive": [1], "limit": 5}),
        ),
        (
            "/collections/l/points/search/groups",
            json!({"vector": q, "group_by": "color", "group_size": 2, "limit": 6}),
            json!({"vector": q, "group_by": "color", "group_size": 2, "limit": 5}),
        ),
        (
            "/collections/l/points/query/groups",
            json!({"query": q, "group_by": "color", "limit": 6}),
            json!({"query": q, "group_by": "color", "limit": 5}),
        ),
    ] {
        forbidden(&c, "POST", path, over, "Limit exceeded 6 > 5 for \"limit\"");
        c.ok("POST", path, Some(&at));
    }

    // search_max_hnsw_ef, search_allow_exact, search_max_oversampling.
    let params = |p: Value| json!({"query": q, "limit": 2, "params": p});
    let path = "/collections/l/points/query";
    forbidden(
        &c,
        "POST",
        path,
        params(json!({"hnsw_ef": 33})),
        "Limit exceeded 33 > 32 for \"hnsw_ef\"",
    );
    c.ok("POST", path, Some(&params(json!({"hnsw_ef": 32}))));
    forbidden(
        &c,
        "POST",
        path,
        params(json!({"exact": true})),
        "Exact search disabled!",
    );
    c.ok("POST", path, Some(&params(json!({"exact": false}))));
    forbidden(
        &c,
        "POST",
        path,
        params(json!({"quantization": {"oversampling": 3.0}})),
        "for \"oversampling\"",
    );
    c.ok(
        "POST",
        path,
        Some(&params(json!({"quantization": {"oversampling": 2.0}}))),
    );

    // filter_max_conditions and condition_max_size, in reads and writes.
    let three = json!({"must": [
        {"key": "n", "range": {"gte": 0}}, {"key": "n", "range": {"lte": 9}},
        {"key": "color", "match": {"value": "red"}}
    ]});
    let two =
        json!({"must": [{"key": "n", "range": {"gte": 0}}, {"key": "n", "range": {"lte": 9}}]});
    forbidden(
        &c,
        "POST",
        "/collections/l/points/count",
        json!({ "filter": three }),
        "Filter condition limit reached (3 > 2)",
    );
    c.ok(
        "POST",
        "/collections/l/points/count",
        Some(&json!({ "filter": two })),
    );
    let big = json!({"must": [{"key": "n", "match": {"any": [1, 2, 3, 4]}}]});
    let small = json!({"must": [{"has_id": [1, 2, 3]}]});
    forbidden(
        &c,
        "POST",
        "/collections/l/points/delete",
        json!({ "filter": big }),
        "Condition size limit reached (4 > 3)",
    );
    c.ok(
        "POST",
        "/collections/l/points/scroll",
        Some(&json!({ "filter": small })),
    );
}

#[test]
fn unindexed_filtering_needs_a_payload_index() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(
        &c,
        "f",
        json!({"enabled": true, "unindexed_filtering_retrieve": false,
               "unindexed_filtering_update": false}),
    );
    c.upsert("f", points(0..4));
    let by_color = json!({"must": [{"key": "color", "match": {"value": "red"}}]});
    let by_n = json!({"must": [{"key": "n", "range": {"gte": 1}}]});
    let q = [1.0, 0.0, 0.0, 0.0];
    let search = |filter: &Value| json!({"query": q, "limit": 2, "filter": filter});
    forbidden(
        &c,
        "POST",
        "/collections/f/points/query",
        search(&by_color),
        "Index required but not found for \"color\"",
    );
    forbidden(
        &c,
        "POST",
        "/collections/f/points/delete",
        json!({ "filter": by_color }),
        "Index required but not found for \"color\"",
    );
    forbidden(
        &c,
        "POST",
        "/collections/f/points/payload",
        json!({"payload": {"x": 1}, "filter": by_color}),
        "\"color\"",
    );
    forbidden(
        &c,
        "POST",
        "/collections/f/points/search/matrix/pairs",
        json!({"sample": 3, "limit": 1, "filter": by_color}),
        "Index required but not found for \"color\"",
    );
    // Searching by id stays allowed.
    c.ok(
        "POST",
        "/collections/f/points/scroll",
        Some(&json!({"filter": {"must": [{"has_id": [1]}]}})),
    );

    c.ok(
        "PUT",
        "/collections/f/index?wait=true",
        Some(&json!({"field_name": "color", "field_schema": "keyword"})),
    );
    c.ok(
        "POST",
        "/collections/f/points/query",
        Some(&search(&by_color)),
    );
    // A keyword index does not answer a range on another key, nor a range on itself.
    forbidden(
        &c,
        "POST",
        "/collections/f/points/count",
        json!({ "filter": by_n }),
        "Index required but not found for \"n\"",
    );
    c.ok(
        "PUT",
        "/collections/f/index?wait=true",
        Some(&json!({"field_name": "n", "field_schema": "integer"})),
    );
    c.ok(
        "POST",
        "/collections/f/points/count",
        Some(&json!({ "filter": by_n })),
    );
    c.ok(
        "POST",
        "/collections/f/points/delete?wait=true",
        Some(&json!({ "filter": by_color })),
    );
    // Only reads: with retrieve allowed again, writes are still checked.
    c.ok(
        "PATCH",
        "/collections/f",
        Some(&json!({"strict_mode_config": {"unindexed_filtering_retrieve": true}})),
    );
    let by_other = json!({"must": [{"key": "other", "match": {"value": "x"}}]});
    c.ok(
        "POST",
        "/collections/f/points/scroll",
        Some(&json!({ "filter": by_other })),
    );
    forbidden(
        &c,
        "POST",
        "/collections/f/points/delete",
        json!({ "filter": by_other }),
        "\"other\"",
    );
}

#[test]
fn disabled_strict_mode_enforces_nothing() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(
        &c,
        "d",
        json!({"enabled": false, "max_query_limit": 1, "upsert_max_batchsize": 1,
               "max_points_count": 1, "unindexed_filtering_retrieve": false,
               "search_allow_exact": false}),
    );
    c.upsert("d", points(0..3));
    c.ok(
        "POST",
        "/collections/d/points/query",
        Some(
            &json!({"query": [1.0, 0.0, 0.0, 0.0], "limit": 3, "params": {"exact": true},
                     "filter": {"must": [{"key": "color", "match": {"value": "red"}}]}}),
        ),
    );
    // Enabling it by PATCH turns the stored limits on.
    c.ok(
        "PATCH",
        "/collections/d",
        Some(&json!({"strict_mode_config": {"enabled": true}})),
    );
    forbidden(
        &c,
        "POST",
        "/collections/d/points/scroll",
        json!({"limit": 2}),
        "Limit exceeded 2 > 1 for \"limit\"",
    );
}

#[test]
fn formula_keys_need_a_payload_index_when_unindexed_reads_are_off() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(
        &c,
        "f",
        json!({"enabled": true, "unindexed_filtering_retrieve": false}),
    );
    c.upsert("f", points(0..4));
    let query = |formula: Value| {
        json!({"prefetch": {"query": [1.0, 0.0, 0.0, 0.0], "limit": 4},
               "query": {"formula": formula}, "limit": 2})
    };
    // The payload number and the condition are read for every candidate: each needs its index,
    // in the root query as in a prefetch's.
    let by_n = json!({"sum": ["$score", "n"]});
    forbidden(
        &c,
        "POST",
        "/collections/f/points/query",
        query(by_n.clone()),
        "Index required but not found for \"n\" of one of the following types: [integer, float]",
    );
    forbidden(
        &c,
        "POST",
        "/collections/f/points/query",
        json!({"prefetch": {"prefetch": {"query": [1.0, 0.0, 0.0, 0.0], "limit": 4},
                            "query": {"formula": by_n}, "limit": 4},
               "query": [1.0, 0.0, 0.0, 0.0]}),
        "\"n\"",
    );
    let by_color = json!({"mult": [2, {"key": "color", "match": {"value": "red"}}]});
    forbidden(
        &c,
        "POST",
        "/collections/f/points/query",
        query(by_color.clone()),
        "Index required but not found for \"color\"",
    );
    // Scores need no index.
    c.ok(
        "POST",
        "/collections/f/points/query",
        Some(&query(json!({"mult": ["$score", 2]}))),
    );
    for (field, schema) in [("n", "integer"), ("color", "keyword")] {
        c.ok(
            "PUT",
            "/collections/f/index?wait=true",
            Some(&json!({"field_name": field, "field_schema": schema})),
        );
    }
    c.ok("POST", "/collections/f/points/query", Some(&query(by_n)));
    c.ok(
        "POST",
        "/collections/f/points/query",
        Some(&query(by_color)),
    );
}
