//! `strict_mode_config`: stored at creation, merged by PATCH, shown by GET, kept across a restart
//! and in snapshots;
//! when enabled, each limit refuses a request over it with Qdrant's status (403; 400 for a full
//! collection, too many bytes, too large a vector; 429 for a spent rate limit) and lets one at the
//! limit through; disabled, nothing is checked; an unknown field is a 400 naming it.

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
fn every_qdrant_field_is_stored_and_unknown_ones_are_refused_by_name() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let strict = json!({
        "enabled": true,
        "max_timeout": 3,
        "read_rate_limit": 100,
        "write_rate_limit": 50,
        "max_collection_vector_size_bytes": 1000000,
        "max_collection_payload_size_bytes": 2000000,
        "max_payload_index_count": 4,
        "multivector_config": {"m": {"max_vectors": 8}},
        "sparse_config": {"s": {"max_length": 16}}
    });
    create(&c, "u", strict.clone());
    let info = c.ok("GET", "/collections/u", None);
    assert_eq!(info["config"]["strict_mode_config"], strict);
    // A PATCH replaces the maps it gives and keeps the other fields.
    let patch = json!({"strict_mode_config": {"sparse_config": {"t": {"max_length": 2}}}});
    assert_eq!(c.ok("PATCH", "/collections/u", Some(&patch)), json!(true));
    let info = c.ok("GET", "/collections/u", None);
    let mut expected = strict.clone();
    expected["sparse_config"] = json!({"t": {"max_length": 2}});
    assert_eq!(info["config"]["strict_mode_config"], expected);

    for field in ["bogus", "search_max_batchsize"] {
        let strict = json!({"enabled": true, field: 3});
        let body = json!({"vectors": {"size": 4, "distance": "Dot"}, "strict_mode_config": strict});
        let message = c.err("PUT", "/collections/new", Some(&body), 400);
        assert!(message.contains(field), "{field}: {message}");
        let patch = json!({ "strict_mode_config": strict });
        let message = c.err("PATCH", "/collections/u", Some(&patch), 400);
        assert!(message.contains(field), "{field}: {message}");
    }
    let message = c.err(
        "PATCH",
        "/collections/u",
        Some(&json!({"strict_mode_config": {"multivector_config": {"m": {"max_rows": 2}}}})),
        400,
    );
    assert!(message.contains("max_rows"), "{message}");
    // A bucket of no tokens would refuse everything: Qdrant's validation refuses it.
    let message = c.err(
        "PATCH",
        "/collections/u",
        Some(&json!({"strict_mode_config": {"write_rate_limit": 0}})),
        422,
    );
    assert!(message.contains("write_rate_limit"), "{message}");
    let (status, _) = c.call("GET", "/collections/new", None);
    assert_eq!(status, 404);
    let info = c.ok("GET", "/collections/u", None);
    assert_eq!(info["config"]["strict_mode_config"], expected);
}

/// Status, `Retry-After` and body of a request (the test client hides headers).
fn with_headers(c: &Client, method: &str, path: &str, body: Value) -> (u16, Option<u64>, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{}", c.base(), path);
    let mut response = match method {
        "PUT" => agent.put(&url).send_json(&body),
        _ => agent.post(&url).send_json(&body),
    }
    .expect("transport");
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let value: Value = response.body_mut().read_json().expect("JSON body");
    (response.status().as_u16(), retry, value)
}

#[test]
fn rate_limits_refuse_with_429_and_count_reads_and_writes_apart() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(
        &c,
        "r",
        json!({"enabled": true, "read_rate_limit": 3, "write_rate_limit": 4}),
    );
    // Writes: one token per point; a minute's worth passes at once.
    c.upsert("r", points(0..3));
    c.upsert("r", points(3..4));
    let (status, retry, body) = with_headers(
        &c,
        "PUT",
        "/collections/r/points?wait=true",
        json!({"points": points(4..5)}),
    );
    assert_eq!(status, 429, "{body}");
    let message = body["status"]["error"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Rate limiting exceeded: Write rate limit exceeded: Operation requires 1 tokens but \
             only 0.0 were available. Retry after "
        ),
        "{message}"
    );
    // 4 tokens a minute: one comes back in about 15 s.
    let retry = retry.expect("Retry-After");
    assert!((14..=15).contains(&retry), "{retry}");
    assert!(
        message.ends_with(&format!("Retry after {retry}s")),
        "{message}"
    );
    // A write larger than the bucket never passes: no Retry-After.
    let (status, retry, body) = with_headers(
        &c,
        "POST",
        "/collections/r/points/batch",
        json!({"operations": [{"upsert": {"points": points(10..15)}}]}),
    );
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry, None);
    assert!(
        body["status"]["error"].as_str().unwrap().contains(
            "Write rate limit exceeded, request larger than rate limiter capacity, please try to \
             split your request"
        ),
        "{body}"
    );

    // Reads have their own bucket, untouched by the writes: a filter costs one token per
    // condition on top of the request's one.
    let two = json!({"filter": {"must": [
        {"key": "color", "match": {"value": "red"}}, {"key": "n", "range": {"gte": 0}}
    ]}});
    let page = c.ok("POST", "/collections/r/points/scroll", Some(&two));
    assert_eq!(page["points"].as_array().unwrap().len(), 4);
    let (status, retry, body) = with_headers(&c, "POST", "/collections/r/points/count", json!({}));
    assert_eq!(status, 429, "{body}");
    assert!(
        body["status"]["error"]
            .as_str()
            .unwrap()
            .starts_with("Rate limiting exceeded: Read rate limit exceeded: Operation requires 1"),
        "{body}"
    );
    assert!(retry.is_some());
    for (method, path, body) in [
        (
            "POST",
            "/collections/r/points/search",
            json!({"vector": [1.0, 0.0, 0.0, 0.0], "limit": 1}),
        ),
        ("POST", "/collections/r/points", json!({"ids": [0]})),
    ] {
        c.err(method, path, Some(&body), 429);
    }

    // A new limit starts with full buckets (Qdrant builds new limiters on a config change).
    let patch = json!({"strict_mode_config": {"read_rate_limit": 2}});
    assert_eq!(c.ok("PATCH", "/collections/r", Some(&patch)), json!(true));
    assert_eq!(
        c.ok("POST", "/collections/r/points/count", Some(&json!({})))["count"],
        4
    );
    c.ok("POST", "/collections/r/points", Some(&json!({"ids": [0]})));
    c.err(
        "POST",
        "/collections/r/points",
        Some(&json!({"ids": [0]})),
        429,
    );
    // Refused writes stored nothing; with strict mode off nothing is counted.
    let off = json!({"strict_mode_config": {"enabled": false}});
    assert_eq!(c.ok("PATCH", "/collections/r", Some(&off)), json!(true));
    for _ in 0..5 {
        let count = c.ok("POST", "/collections/r/points/count", Some(&json!({})));
        assert_eq!(count["count"], 4);
    }
}

#[test]
fn max_timeout_refuses_a_longer_timeout() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(&c, "t", json!({"enabled": true, "max_timeout": 10}));
    c.upsert("t", points(0..2));
    let search = json!({"vector": [1.0, 0.0, 0.0, 0.0], "limit": 1});
    c.ok(
        "POST",
        "/collections/t/points/search?timeout=10",
        Some(&search),
    );
    c.ok("POST", "/collections/t/points/search", Some(&search));
    for (path, body) in [
        ("/collections/t/points/search?timeout=11", search.clone()),
        (
            "/collections/t/points/query?timeout=60",
            json!({"limit": 1}),
        ),
        ("/collections/t/points/scroll?timeout=11", json!({})),
        (
            "/collections/t/points/delete?timeout=11",
            json!({"points": [0]}),
        ),
    ] {
        let message = c.err("POST", path, Some(&body), 403);
        assert!(
            message.contains(
                "> 10 for \"timeout\". Help: Reduce the \"timeout\" parameter to or below 10."
            ),
            "{path}: {message}"
        );
    }
    assert_eq!(
        c.ok("POST", "/collections/t/points/count", Some(&json!({})))["count"],
        2
    );
}

#[test]
fn storage_size_limits_refuse_writes_past_them() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    // 4 dimensions: 16 bytes of vector per point; `{"k":"0123456789"}` is 18 bytes of payload.
    create(
        &c,
        "v",
        json!({"enabled": true, "max_collection_vector_size_bytes": 64}),
    );
    let point = |i: u64| json!({"id": i, "vector": vector(i, 4), "payload": {"k": "0123456789"}});
    c.upsert("v", json!([point(0), point(1), point(2)]));
    c.upsert("v", json!([point(3)]));
    let message = c.err(
        "PUT",
        "/collections/v/points",
        Some(&json!({"points": [point(4)]})),
        400,
    );
    assert!(
        message.starts_with("Max vector storage size limit of 0.0000610")
            && message.ends_with("MB reached!"),
        "{message}"
    );
    c.err(
        "PUT",
        "/collections/v/points/vectors",
        Some(&json!({"points": [{"id": 0, "vector": vector(9, 4)}]})),
        400,
    );
    c.err(
        "POST",
        "/collections/v/points/batch",
        Some(&json!({"operations": [{"upsert": {"points": [point(4)]}}]})),
        400,
    );
    assert_eq!(
        c.ok("POST", "/collections/v/points/count", Some(&json!({})))["count"],
        4
    );
    let kept = c.ok(
        "POST",
        "/collections/v/points",
        Some(&json!({"ids": [0], "with_vector": true})),
    );
    let kept: Vec<f32> = serde_json::from_value(kept[0]["vector"].clone()).unwrap();
    assert_eq!(kept, vector(0, 4));

    create(
        &c,
        "p",
        json!({"enabled": true, "max_collection_payload_size_bytes": 36}),
    );
    c.upsert("p", json!([point(0), point(1)]));
    // No payload adds no payload bytes.
    c.upsert("p", json!([{"id": 2, "vector": vector(2, 4)}]));
    let message = c.err(
        "PUT",
        "/collections/p/points",
        Some(&json!({"points": [point(3)]})),
        400,
    );
    assert!(
        message.starts_with("Max payload storage size limit of")
            && message.ends_with("MB reached!"),
        "{message}"
    );
    let message = c.err(
        "POST",
        "/collections/p/points/payload",
        Some(&json!({"payload": {"z": 1}, "points": [2]})),
        400,
    );
    assert!(
        message.contains("Max payload storage size limit"),
        "{message}"
    );
    c.err(
        "POST",
        "/collections/p/points/batch",
        Some(&json!({"operations": [{"set_payload": {"payload": {"z": 1}, "points": [2]}}]})),
        400,
    );
    let kept = c.ok(
        "POST",
        "/collections/p/points",
        Some(&json!({"ids": [0, 2]})),
    );
    assert_eq!(kept[0]["payload"], json!({"k": "0123456789"}));
    assert_eq!(kept[1]["payload"], json!({}));
    // Removing payload is always allowed, and makes room.
    let clear = json!({"points": [1]});
    c.ok("POST", "/collections/p/points/payload/clear", Some(&clear));
    c.ok(
        "POST",
        "/collections/p/points/payload",
        Some(&json!({"payload": {"z": 1}, "points": [2]})),
    );
}

#[test]
fn multivector_and_sparse_limits_refuse_larger_vectors() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let body = json!({
        "vectors": {"m": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}},
        "sparse_vectors": {"s": {}},
        "strict_mode_config": {
            "enabled": true,
            "multivector_config": {"m": {"max_vectors": 2}},
            "sparse_config": {"s": {"max_length": 3}}
        }
    });
    assert_eq!(c.ok("PUT", "/collections/mv", Some(&body)), json!(true));
    let sparse =
        |n: u32| json!({"indices": (0..n).collect::<Vec<_>>(), "values": vec![1.0; n as usize]});
    let rows = |n: usize| json!(vec![[1.0, 0.0]; n]);
    c.upsert(
        "mv",
        json!([{"id": 1, "vector": {"m": rows(2), "s": sparse(3)}}]),
    );
    for (path, method, body, needle) in [
        (
            "/collections/mv/points",
            "PUT",
            json!({"points": [{"id": 2, "vector": {"m": rows(3)}}]}),
            "Multivector 'm' has a limit of 2 vectors, but 3 were provided!",
        ),
        (
            "/collections/mv/points",
            "PUT",
            json!({"points": [{"id": 2, "vector": {"s": sparse(4)}}]}),
            "Sparse vector 's' has a limit of 3 indices, but 4 were provided!",
        ),
        (
            "/collections/mv/points/vectors",
            "PUT",
            json!({"points": [{"id": 1, "vector": {"m": rows(3)}}]}),
            "Multivector 'm' has a limit of 2 vectors",
        ),
        (
            "/collections/mv/points/batch",
            "POST",
            json!({"operations": [{"update_vectors": {"points": [{"id": 1, "vector": {"s": sparse(5)}}]}}]}),
            "Sparse vector 's' has a limit of 3 indices, but 5 were provided!",
        ),
    ] {
        let message = c.err(method, path, Some(&body), 400);
        assert!(message.contains(needle), "{path}: {message}");
    }
    let kept = c.ok(
        "POST",
        "/collections/mv/points",
        Some(&json!({"ids": [1, 2], "with_vector": true})),
    );
    assert_eq!(kept.as_array().unwrap().len(), 1, "{kept}");
    assert_eq!(kept[0]["vector"]["m"], rows(2));
}

#[test]
fn max_payload_index_count_refuses_one_index_more() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    create(
        &c,
        "i",
        json!({"enabled": true, "max_payload_index_count": 1}),
    );
    let index = |field: &str| json!({"field_name": field, "field_schema": "keyword"});
    c.ok("PUT", "/collections/i/index?wait=true", Some(&index("a")));
    // Replacing the index of a field already indexed adds none.
    c.ok("PUT", "/collections/i/index?wait=true", Some(&index("a")));
    forbidden(
        &c,
        "PUT",
        "/collections/i/index",
        index("b"),
        "Collection already has the maximum number of payload indices (1). Help: Please delete an \
         existing index before creating a new one.",
    );
    let info = c.ok("GET", "/collections/i", None);
    let schema = info["payload_schema"].as_object().unwrap();
    assert_eq!(schema.keys().collect::<Vec<_>>(), ["a"]);
    c.ok("DELETE", "/collections/i/index/a?wait=true", None);
    c.ok("PUT", "/collections/i/index?wait=true", Some(&index("b")));
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
