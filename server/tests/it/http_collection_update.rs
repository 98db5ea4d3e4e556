//! `PATCH /collections/{name}`: settings changed after creation are shown by GET, survive a restart
//! and travel in snapshots; `indexing_threshold` seals (and indexes) a segment before
//! `segment_max_points`; a lower `default_segment_number` merges sealed segments; fields that cannot
//! change or are unknown are refused by name. Also what GET shows of `on_disk_payload` and of a
//! vector's own `hnsw_config` (only the fields set).

use serde_json::{json, Value};

use crate::support::{vector, QuiverProcess, TestDir};

fn points(n: u64, dim: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"id": i, "vector": vector(i, dim), "payload": {"i": i}}))
            .collect(),
    )
}

#[test]
fn patched_settings_are_shown_survive_a_restart_and_travel_in_snapshots() {
    let dir = TestDir::new();
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let c = server.client();
    let create = json!({
        "vectors": {
            "dense": {"size": 4, "distance": "Cosine"},
            "other": {"size": 8, "distance": "Dot", "hnsw_config": {"m": 8}}
        },
        "sparse_vectors": {"text": {}},
        "metadata": {"owner": "team-a", "stage": "draft"}
    });
    assert_eq!(c.ok("PUT", "/collections/u", Some(&create)), json!(true));
    c.upsert(
        "u",
        json!([{"id": 1, "vector": {"dense": [1.0, 0.0, 0.0, 0.0]}}]),
    );

    let patch = json!({
        "params": {"on_disk_payload": false},
        "hnsw_config": {"m": 24, "ef_construct": 200},
        "optimizers_config": {"deleted_threshold": 0.5, "indexing_threshold": 20000},
        "vectors": {
            "dense": {"hnsw_config": {"m": 32}, "on_disk": true,
                      "quantization_config": {"scalar": {"type": "int8", "always_ram": true}}},
            "other": {"hnsw_config": {"ef_construct": 64}}
        },
        "quantization_config": {"binary": {"always_ram": false}},
        "sparse_vectors": {"text": {"modifier": "idf", "index": {"full_scan_threshold": 100}}},
        "metadata": {"stage": "live", "owner": null, "version": 2}
    });
    let (status, body) = c.call("PATCH", "/collections/u?wait=true", Some(&patch));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["result"], true);
    assert!(body["time"].is_number(), "{body}");

    let check = |info: &Value| {
        let config = &info["config"];
        assert_eq!(config["params"]["on_disk_payload"], false);
        assert_eq!(config["hnsw_config"]["m"], 24);
        assert_eq!(config["hnsw_config"]["ef_construct"], 200);
        assert_eq!(config["optimizer_config"]["deleted_threshold"], 0.5);
        assert_eq!(config["optimizer_config"]["indexing_threshold"], 20000);
        let vectors = &config["params"]["vectors"];
        // Per-vector HNSW: the fields set, merged across updates, and nothing else.
        assert_eq!(vectors["dense"]["hnsw_config"], json!({"m": 32}));
        assert_eq!(
            vectors["other"]["hnsw_config"],
            json!({"m": 8, "ef_construct": 64})
        );
        assert_eq!(vectors["dense"]["on_disk"], true);
        assert_eq!(
            vectors["dense"]["quantization_config"]["scalar"]["always_ram"],
            true
        );
        assert!(
            config["quantization_config"]["binary"].is_object(),
            "{config}"
        );
        assert_eq!(
            config["params"]["sparse_vectors"]["text"],
            json!({"modifier": "idf", "index": {"full_scan_threshold": 100}})
        );
        // Qdrant's merge: keys set one by one, null removes.
        assert_eq!(config["metadata"], json!({"stage": "live", "version": 2}));
    };
    check(&c.ok("GET", "/collections/u", None));

    // The point written before the change is still there and searchable.
    let hits = c.ok(
        "POST",
        "/collections/u/points/query",
        Some(&json!({"query": [1.0, 0.0, 0.0, 0.0], "using": "dense", "limit": 1})),
    );
    assert_eq!(hits["points"][0]["id"], 1, "{hits}");

    // A snapshot taken now carries the changed config.
    let created = c.ok("POST", "/collections/u/snapshots?wait=true", None);
    let name = created["name"].as_str().unwrap().to_string();
    let (status, _, archive) = c.download(&format!("/collections/u/snapshots/{name}"));
    assert_eq!(status, 200);

    let other = QuiverProcess::start(&[]);
    let co = other.client();
    let (status, body) = co.upload(
        "/collections/restored/snapshots/upload?wait=true",
        "snapshot",
        &archive,
    );
    assert_eq!(status, 200, "{body}");
    check(&co.ok("GET", "/collections/restored", None));
    drop(other);

    // And a restart reads it back from config.json.
    server.terminate();
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let c = server.client();
    check(&c.ok("GET", "/collections/u", None));

    // "Disabled" removes a quantization; the vector then takes the collection's.
    let patch = json!({"vectors": {"dense": {"quantization_config": "Disabled"}},
                       "quantization_config": "Disabled"});
    c.ok("PATCH", "/collections/u", Some(&patch));
    let info = c.ok("GET", "/collections/u", None);
    assert!(info["config"]["quantization_config"].is_null(), "{info}");
    assert!(info["config"]["params"]["vectors"]["dense"]
        .get("quantization_config")
        .is_none());
}

#[test]
fn indexing_threshold_seals_and_indexes_a_small_segment() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    // 64 points of 4 dims are 1 KiB of vectors; full_scan_threshold 1 KiB is 64 points, so a sealed
    // segment of 100 points gets its graph. segment_max_points alone would never seal.
    let create = json!({
        "vectors": {"size": 4, "distance": "Cosine"},
        "hnsw_config": {"full_scan_threshold": 1},
        "optimizers_config": {"segment_max_points": 100000}
    });
    c.ok("PUT", "/collections/small", Some(&create));
    c.upsert("small", points(100, 4));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let info = c.ok("GET", "/collections/small", None);
    assert_eq!(info["indexed_vectors_count"], 0, "{info}");
    assert_eq!(info["segments_count"], 1, "{info}");

    // The change alone wakes the optimizer: the 1.6 KiB already written pass the new threshold.
    c.ok(
        "PATCH",
        "/collections/small",
        Some(&json!({"optimizers_config": {"indexing_threshold": 1}})),
    );
    c.wait_for_seals("small", 2);
    let mut info = Value::Null;
    for _ in 0..200 {
        info = c.ok("GET", "/collections/small", None);
        if info["indexed_vectors_count"] == 100 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(info["indexed_vectors_count"], 100, "{info}");
    assert_eq!(info["config"]["optimizer_config"]["indexing_threshold"], 1);

    // Set at creation, it seals as writes arrive.
    let create = json!({
        "vectors": {"size": 4, "distance": "Cosine"},
        "hnsw_config": {"full_scan_threshold": 1},
        "optimizers_config": {"segment_max_points": 100000, "indexing_threshold": 1}
    });
    c.ok("PUT", "/collections/eager", Some(&create));
    c.upsert("eager", points(100, 4));
    c.wait_for_seals("eager", 2);
    let mut info = Value::Null;
    for _ in 0..200 {
        info = c.ok("GET", "/collections/eager", None);
        if info["indexed_vectors_count"] == 100 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(info["indexed_vectors_count"], 100, "{info}");
}

#[test]
fn default_segment_number_merges_sealed_segments() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    // 60 points in segments of at most 10: six sealed segments, kept apart by a target of 100.
    let create = json!({
        "vectors": {"size": 4, "distance": "Cosine"},
        "optimizers_config": {
            "segment_max_points": 10,
            "default_segment_number": 100,
            "max_segment_size": 100000
        }
    });
    c.ok("PUT", "/collections/many", Some(&create));
    let info = c.ok("GET", "/collections/many", None);
    assert_eq!(
        info["config"]["optimizer_config"]["default_segment_number"],
        100
    );
    assert_eq!(
        info["config"]["optimizer_config"]["max_segment_size"],
        100000
    );
    c.upsert("many", points(60, 4));
    c.wait_for_seals("many", 7);
    let before = c.ok(
        "POST",
        "/collections/many/points/search",
        Some(&json!({"vector": vector(3, 4), "limit": 5, "params": {"exact": true}})),
    );

    // A lower target wakes the optimizer: the six merge into two (plus the appendable one).
    c.ok(
        "PATCH",
        "/collections/many",
        Some(&json!({"optimizers_config": {"default_segment_number": 2}})),
    );
    let mut info = Value::Null;
    for _ in 0..600 {
        info = c.ok("GET", "/collections/many", None);
        if info["segments_count"] == 3 && info["optimizer_status"] == "ok" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(info["segments_count"], 3, "{info}");
    assert_eq!(info["points_count"], 60, "{info}");
    assert_eq!(
        info["config"]["optimizer_config"]["default_segment_number"],
        2
    );
    let after = c.ok(
        "POST",
        "/collections/many/points/search",
        Some(&json!({"vector": vector(3, 4), "limit": 5, "params": {"exact": true}})),
    );
    assert_eq!(after, before);

    // 0 asks for the automatic choice; 0 is what GET shows for it.
    c.ok(
        "PATCH",
        "/collections/many",
        Some(&json!({"optimizers_config": {"default_segment_number": 0}})),
    );
    let info = c.ok("GET", "/collections/many", None);
    assert_eq!(
        info["config"]["optimizer_config"]["default_segment_number"],
        0
    );
    c.err(
        "PATCH",
        "/collections/many",
        Some(&json!({"optimizers_config": {"max_segment_size": 0}})),
        400,
    );
}

#[test]
fn fields_that_cannot_change_or_are_unknown_are_refused_by_name() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("r", 4, "Dot");
    for (body, names) in [
        (json!({"vectors": {"": {"size": 8}}}), "size"),
        (json!({"vectors": {"": {"distance": "Cosine"}}}), "distance"),
        (json!({"shard_number": 2}), "shard_number"),
        (json!({"hnsw_config": {"mm": 3}}), "mm"),
        (json!({"optimizers_config": {"bogus": 1}}), "bogus"),
        (
            json!({"params": {"replication_factor": 3}}),
            "replication_factor",
        ),
        (
            json!({"params": {"read_fan_out_factor": 2}}),
            "read_fan_out_factor",
        ),
        (
            json!({"strict_mode_config": {"search_max_batchsize": 10}}),
            "search_max_batchsize",
        ),
        (
            json!({"vectors": {"missing": {"on_disk": true}}}),
            "missing",
        ),
        (
            json!({"quantization_config": {"product": {"compression": "x16"}}}),
            "product",
        ),
        (json!({"metadata": [1, 2]}), "metadata"),
        (json!({"hnsw_config": {"m": 1}}), "m"),
    ] {
        let (status, reply) = c.call("PATCH", "/collections/r", Some(&body));
        assert!((400..500).contains(&status), "{body}: {status} {reply}");
        let error = reply["status"]["error"].as_str().unwrap_or_default();
        assert!(error.contains(names), "{body}: {reply}");
    }
    // Nothing of the refused updates was applied.
    let info = c.ok("GET", "/collections/r", None);
    assert_eq!(info["config"]["hnsw_config"]["m"], 16);
    assert_eq!(
        c.call("PATCH", "/collections/nope", Some(&json!({}))).0,
        404
    );
}

#[test]
fn get_shows_on_disk_payload_and_vector_hnsw_as_set() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let body = json!({
        "vectors": {"a": {"size": 4, "distance": "Dot", "hnsw_config": {"m": 0}},
                    "b": {"size": 4, "distance": "Dot"}},
        "hnsw_config": {"m": 12},
        "on_disk_payload": false
    });
    c.ok("PUT", "/collections/echo", Some(&body));
    let info = c.ok("GET", "/collections/echo", None);
    let config = &info["config"];
    assert_eq!(config["params"]["on_disk_payload"], false);
    assert_eq!(
        config["params"]["vectors"]["a"]["hnsw_config"],
        json!({"m": 0})
    );
    assert!(config["params"]["vectors"]["b"]
        .get("hnsw_config")
        .is_none());
    // Default: true.
    c.create_single("plain", 4, "Dot");
    let info = c.ok("GET", "/collections/plain", None);
    assert_eq!(info["config"]["params"]["on_disk_payload"], true);
    assert!(info["config"].get("metadata").is_none());
}

fn vector_names(c: &crate::support::Client, collection: &str, id: u64) -> Vec<String> {
    let got = c.ok(
        "POST",
        &format!("/collections/{collection}/points"),
        Some(&json!({"ids": [id], "with_vector": true})),
    );
    let mut names: Vec<String> = got[0]["vector"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn query_ids(c: &crate::support::Client, collection: &str, body: Value) -> Vec<u64> {
    let hits = c.ok(
        "POST",
        &format!("/collections/{collection}/points/query"),
        Some(&body),
    );
    crate::support::ids(&hits["points"])
}

#[test]
fn named_vectors_are_added_and_deleted_on_an_existing_collection() {
    let dir = TestDir::new();
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let c = server.client();
    let create = json!({"vectors": {"a": {"size": 4, "distance": "Dot"}},
                        "optimizers_config": {"segment_max_points": 2}});
    c.ok("PUT", "/collections/v", Some(&create));
    c.upsert(
        "v",
        json!([{"id": 1, "vector": {"a": [1.0, 0.0, 0.0, 0.0]}},
               {"id": 2, "vector": {"a": [0.0, 1.0, 0.0, 0.0]}},
               {"id": 3, "vector": {"a": [0.0, 0.0, 1.0, 0.0]}}]),
    );

    // Add a dense vector: existing points have none of it; new writes may set it.
    let added = c.ok(
        "PUT",
        "/collections/v/vectors/b?wait=true",
        Some(&json!({"dense": {"size": 2, "distance": "Cosine"}})),
    );
    assert_eq!(added["status"], "completed", "{added}");
    let info = c.ok("GET", "/collections/v", None);
    assert_eq!(
        info["config"]["params"]["vectors"]["b"],
        json!({"size": 2, "distance": "Cosine"})
    );
    assert_eq!(vector_names(&c, "v", 1), ["a"]);
    c.upsert(
        "v",
        json!([{"id": 10, "vector": {"a": [1.0, 1.0, 0.0, 0.0], "b": [1.0, 0.0]}},
               {"id": 11, "vector": {"a": [1.0, 0.0, 1.0, 0.0], "b": [0.0, 1.0]}}]),
    );
    assert_eq!(vector_names(&c, "v", 10), ["a", "b"]);
    assert_eq!(
        query_ids(
            &c,
            "v",
            json!({"query": [1.0, 0.1], "using": "b", "limit": 10})
        ),
        [10, 11]
    );

    // And a sparse one.
    c.ok(
        "PUT",
        "/collections/v/vectors/s",
        Some(&json!({"sparse": {"modifier": "idf"}})),
    );
    c.upsert(
        "v",
        json!([{"id": 20, "vector": {"a": [0.0, 0.0, 0.0, 1.0],
                "s": {"indices": [3, 7], "values": [1.0, 2.0]}}}]),
    );
    assert_eq!(
        query_ids(
            &c,
            "v",
            json!({"query": {"indices": [7], "values": [1.0]}, "using": "s", "limit": 10})
        ),
        [20]
    );
    let info = c.ok("GET", "/collections/v", None);
    assert_eq!(
        info["config"]["params"]["sparse_vectors"]["s"],
        json!({"modifier": "idf"})
    );

    // Refusals: an existing name, a bad body, an unknown collection.
    for (body, expected) in [
        (
            json!({"dense": {"size": 2, "distance": "Dot"}}),
            "already exists",
        ),
        (json!({}), "exactly one"),
        (
            json!({"dense": {"size": 2, "distance": "Dot", "on_disk": true}}),
            "on_disk",
        ),
    ] {
        let message = c.err("PUT", "/collections/v/vectors/b", Some(&body), 400);
        assert!(message.contains(expected), "{body}: {message}");
    }
    assert_eq!(
        c.call(
            "PUT",
            "/collections/nope/vectors/b",
            Some(&json!({"sparse": {}}))
        )
        .0,
        404
    );

    // Let the points written with `b` be sealed, then delete it: its data is no longer returned
    // or searchable.
    c.wait_for_seals("v", 3);
    c.ok("DELETE", "/collections/v/vectors/b?wait=true", None);
    assert_eq!(vector_names(&c, "v", 10), ["a"]);
    let message = c.err(
        "POST",
        "/collections/v/points/query",
        Some(&json!({"query": [1.0, 0.0], "using": "b"})),
        400,
    );
    assert!(message.contains('b'), "{message}");
    let message = c.err("DELETE", "/collections/v/vectors/b", None, 400);
    assert!(message.contains('b'), "{message}");

    // The name comes back with another size: the old rows, still in sealed segments, are not its.
    c.ok(
        "PUT",
        "/collections/v/vectors/b",
        Some(&json!({"dense": {"size": 3, "distance": "Dot"}})),
    );
    assert_eq!(vector_names(&c, "v", 10), ["a"]);
    assert!(query_ids(&c, "v", json!({"query": [1.0, 0.0, 0.0], "using": "b"})).is_empty());
    c.upsert(
        "v",
        json!([{"id": 30, "vector": {"a": [0.0, 0.0, 0.0, 1.0], "b": [0.0, 0.0, 1.0]}}]),
    );
    assert_eq!(
        query_ids(&c, "v", json!({"query": [0.0, 0.0, 1.0], "using": "b"})),
        [30]
    );
    let before: Vec<Value> = [1, 10, 20, 30]
        .iter()
        .map(|&id| json!(vector_names(&c, "v", id)))
        .collect();

    // All of it survives a restart.
    server.terminate();
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let c = server.client();
    let after: Vec<Value> = [1, 10, 20, 30]
        .iter()
        .map(|&id| json!(vector_names(&c, "v", id)))
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        after,
        [
            json!(["a"]),
            json!(["a"]),
            json!(["a", "s"]),
            json!(["a", "b"])
        ]
    );
    assert_eq!(
        query_ids(&c, "v", json!({"query": [0.0, 0.0, 1.0], "using": "b"})),
        [30]
    );
    assert_eq!(c.ok("GET", "/collections/v", None)["points_count"], 7);

    // The last vector cannot go.
    c.ok(
        "PUT",
        "/collections/one",
        Some(&json!({"vectors": {"x": {"size": 2, "distance": "Dot"}}})),
    );
    let message = c.err("DELETE", "/collections/one/vectors/x", None, 400);
    assert!(message.contains("at least one vector"), "{message}");
}

/// Issue 22: Qdrant's optimizer fields are applied, not accepted and ignored: each is shown as set
/// at creation and after a PATCH; `max_optimization_threads: 0` stops seals until a PATCH back to
/// `"auto"`; a PATCH of `m` rebuilds the sealed segment (`config_mismatch`); a bad thread count is
/// refused by name.
#[test]
fn optimizer_fields_are_shown_as_set_and_applied() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let create = json!({
        "vectors": {"size": 4, "distance": "Dot"},
        "hnsw_config": {"full_scan_threshold": 1},
        "optimizers_config": {
            "segment_max_points": 100,
            "default_segment_number": 10,
            "vacuum_min_vector_number": 10,
            "memmap_threshold": 20000,
            "flush_interval_sec": 7,
            "max_optimization_threads": 0,
            "prevent_unoptimized": false
        }
    });
    c.ok("PUT", "/collections/o", Some(&create));
    let opt = |c: &crate::support::Client| {
        c.ok("GET", "/collections/o", None)["config"]["optimizer_config"].clone()
    };
    let shown = opt(&c);
    assert_eq!(shown["vacuum_min_vector_number"], 10, "{shown}");
    assert_eq!(shown["memmap_threshold"], 20000, "{shown}");
    assert_eq!(shown["flush_interval_sec"], 7, "{shown}");
    assert_eq!(shown["max_optimization_threads"], 0, "{shown}");
    assert_eq!(shown["prevent_unoptimized"], false, "{shown}");

    // Optimizations are off: 300 points stay in the appendable segment, searchable.
    c.upsert("o", points(300, 4));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let info = c.ok("GET", "/collections/o", None);
    assert_eq!(info["segments_count"], 1, "{info}");
    assert_eq!(info["points_count"], 300, "{info}");

    let patch = json!({"optimizers_config": {
        "vacuum_min_vector_number": 500,
        "memmap_threshold": 0,
        "flush_interval_sec": 1,
        "max_optimization_threads": "auto",
        "prevent_unoptimized": true
    }});
    c.ok("PATCH", "/collections/o", Some(&patch));
    let shown = opt(&c);
    assert_eq!(shown["vacuum_min_vector_number"], 500, "{shown}");
    assert_eq!(shown["memmap_threshold"], 0, "{shown}");
    assert_eq!(shown["flush_interval_sec"], 1, "{shown}");
    assert_eq!(shown["max_optimization_threads"], Value::Null, "{shown}");
    assert_eq!(shown["prevent_unoptimized"], true, "{shown}");
    // Back to automatic: the backlog is sealed into segments of 100, each with a graph.
    c.wait_for_seals("o", 4);

    // A number above 0 keeps them on; null too.
    for threads in [json!(2), Value::Null] {
        let body = json!({"optimizers_config": {"max_optimization_threads": threads}});
        c.ok("PATCH", "/collections/o", Some(&body));
        assert_eq!(opt(&c)["max_optimization_threads"], threads);
    }

    // A new `m` rebuilds the three sealed segments in the background.
    c.ok(
        "PATCH",
        "/collections/o",
        Some(&json!({"hnsw_config": {"m": 8}})),
    );
    let mut report = Value::Null;
    for _ in 0..400 {
        report = c.ok("GET", "/collections/o/optimizations?with=completed", None);
        let rebuilt = report["completed"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|o| o["optimizer"] == "config_mismatch" && o["status"] == "done")
                .count()
        });
        if rebuilt >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let rebuilt = report["completed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["optimizer"] == "config_mismatch")
        .count();
    assert!(rebuilt >= 3, "{report}");
    let info = c.ok("GET", "/collections/o", None);
    assert_eq!(info["points_count"], 300, "{info}");

    let (status, reply) = c.call(
        "PATCH",
        "/collections/o",
        Some(&json!({"optimizers_config": {"max_optimization_threads": "many"}})),
    );
    assert_eq!(status, 400, "{reply}");
    assert!(reply["status"]["error"]
        .as_str()
        .unwrap()
        .contains("max_optimization_threads"));
}
