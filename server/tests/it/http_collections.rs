//! Collection routes and the generic error cases (malformed JSON, unknown routes and methods).

use serde_json::json;

use crate::support::QuiverProcess;

#[test]
fn create_inspect_list_and_delete_collections() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();

    assert_eq!(
        c.ok("GET", "/collections", None),
        json!({"collections": []})
    );
    // qdrant-client sends fields Quiver ignores; they must not be rejected. `on_disk` (vectors and
    // graphs served from their mapped files) is kept and shown.
    let body = json!({
        "vectors": {"size": 4, "distance": "Cosine", "on_disk": true},
        "shard_number": 1, "replication_factor": 1, "write_consistency_factor": 1,
        "sharding_method": "auto",
        "on_disk_payload": true, "wal_config": {"wal_capacity_mb": 8, "wal_segments_ahead": 0},
        "quantization_config": null, "sparse_vectors": null,
        "hnsw_config": {"m": 8, "ef_construct": 64, "on_disk": true},
        "optimizers_config": {"deleted_threshold": 0.3, "default_segment_number": 2}
    });
    assert_eq!(c.ok("PUT", "/collections/single", Some(&body)), json!(true));
    let named = json!({"vectors": {
        "dense": {"size": 3, "distance": "Dot"},
        "colbert": {"size": 2, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}},
        "kept": {"size": 2, "distance": "Cosine", "multivector_config": {
            "comparator": "max_sim", "token_store": {"keep_originals": true}}},
        "rescored": {"size": 2, "distance": "Cosine", "multivector_config": {
            "comparator": "max_sim", "token_store": {"nbits": 4, "rescore": true}}}
    }});
    assert_eq!(
        c.ok("PUT", "/collections/named?wait=true", Some(&named)),
        json!(true)
    );

    let list = c.ok("GET", "/collections", None);
    assert_eq!(
        list,
        json!({"collections": [{"name": "named"}, {"name": "single"}]})
    );

    let info = c.ok("GET", "/collections/single", None);
    assert_eq!(info["status"], "green");
    assert_eq!(info["optimizer_status"], "ok");
    assert_eq!(info["points_count"], 0);
    assert!(info["segments_count"].is_u64());
    assert!(info["indexed_vectors_count"].is_u64());
    assert_eq!(info["payload_schema"], json!({}));
    let config = &info["config"];
    assert_eq!(
        config["params"]["vectors"],
        json!({"size": 4, "distance": "Cosine", "on_disk": true})
    );
    assert_eq!(config["hnsw_config"]["on_disk"], true);
    assert_eq!(config["hnsw_config"]["m"], 8);
    assert_eq!(config["hnsw_config"]["ef_construct"], 64);
    assert!(config["hnsw_config"]["full_scan_threshold"].is_u64());
    assert_eq!(config["optimizer_config"]["deleted_threshold"], 0.3);
    assert!(config["optimizer_config"]["default_segment_number"].is_u64());
    assert!(config["optimizer_config"]["flush_interval_sec"].is_u64());
    assert_eq!(
        config["wal_config"],
        json!({"wal_capacity_mb": 8, "wal_segments_ahead": 0})
    );

    let info = c.ok("GET", "/collections/named", None);
    let vectors = &info["config"]["params"]["vectors"];
    assert_eq!(vectors["dense"], json!({"size": 3, "distance": "Dot"}));
    assert_eq!(info["config"]["hnsw_config"]["on_disk"], false);
    assert_eq!(
        vectors["colbert"]["multivector_config"],
        json!({"comparator": "max_sim"})
    );
    assert_eq!(
        vectors["kept"]["multivector_config"],
        json!({"comparator": "max_sim", "token_store": {"nbits": 2, "keep_originals": true, "rescore": false}})
    );
    assert_eq!(
        vectors["rescored"]["multivector_config"],
        json!({"comparator": "max_sim", "token_store": {"nbits": 4, "keep_originals": false, "rescore": true}})
    );

    assert_eq!(
        c.ok("GET", "/collections/single/exists", None),
        json!({"exists": true})
    );
    assert_eq!(
        c.ok("GET", "/collections/nope/exists", None),
        json!({"exists": false})
    );

    assert_eq!(c.ok("DELETE", "/collections/single", None), json!(true));
    assert_eq!(c.ok("DELETE", "/collections/single", None), json!(false));
    assert_eq!(
        c.ok("GET", "/collections/single/exists", None),
        json!({"exists": false})
    );
    assert_eq!(
        c.ok("GET", "/collections", None),
        json!({"collections": [{"name": "named"}]})
    );
}

#[test]
fn collections_survive_a_restart() {
    let dir = crate::support::TestDir::new();
    {
        let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
        server.client().create_single("kept", 2, "Dot");
        server.client().upsert(
            "kept",
            json!([{"id": 1, "vector": [1.0, 2.0], "payload": {"a": 1}}]),
        );
        assert!(server.terminate().success());
    }
    let server = QuiverProcess::start_in(dir.path(), &[]).unwrap();
    let c = server.client();
    assert_eq!(c.ok("GET", "/collections/kept", None)["points_count"], 1);
    let point = c.ok("GET", "/collections/kept/points/1", None);
    assert_eq!(point["payload"], json!({"a": 1}));
    assert_eq!(point["vector"], json!([1.0, 2.0]));
}

#[test]
fn collection_errors_are_clear_4xx() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("dup", 4, "Dot");

    let msg = c.err(
        "PUT",
        "/collections/dup",
        Some(&json!({"vectors": {"size": 4, "distance": "Dot"}})),
        409,
    );
    assert!(msg.contains("already exists"), "{msg}");
    let msg = c.err("GET", "/collections/missing", None, 404);
    assert!(msg.contains("missing"), "{msg}");

    let bad = [
        (json!({}), 400),
        (
            json!({"vectors": {"size": 4, "distance": "Manhattan"}}),
            400,
        ),
        (json!({"vectors": {"size": 4, "distance": "Hamming"}}), 400),
        (
            json!({"vectors": {"size": 4, "distance": "Dot", "datatype": "uint8"}}),
            400,
        ),
        (json!({"vectors": {"size": -1, "distance": "Dot"}}), 400),
        (json!({"vectors": {"size": "four", "distance": "Dot"}}), 400),
        (
            json!({"vectors": {"size": 4, "distance": "Dot"}, "sparse_vectors": {"s": {"modifier": "bm42"}}}),
            400,
        ),
        (json!({"vectors": {}}), 400),
        (
            json!({"vectors": {"size": 4, "distance": "Dot"}, "sharding_method": "custom"}),
            400,
        ),
        (
            json!({"vectors": {"size": 4, "distance": "Dot"}, "sharding_method": "random"}),
            400,
        ),
        (json!({"vectors": {"size": 0, "distance": "Dot"}}), 422),
        (
            json!({"vectors": {"size": 10_000_000, "distance": "Dot"}}),
            422,
        ),
        (
            json!({"vectors": {"size": 4, "distance": "Dot"}, "hnsw_config": {"m": 1}}),
            422,
        ),
        (
            json!({"vectors": {"size": 4, "distance": "Dot"}, "optimizers_config": {"deleted_threshold": 2.0}}),
            422,
        ),
        (
            json!({"vectors": {"size": 4, "distance": "Dot", "multivector_config": {"comparator": "min_sim"}}}),
            400,
        ),
        (
            json!({"vectors": {"size": 4, "distance": "Cosine", "multivector_config": {"comparator": "max_sim", "token_store": {"nbits": 3}}}}),
            422,
        ),
        (
            json!({"vectors": {"size": 4, "distance": "Cosine", "multivector_config": {"comparator": "max_sim", "token_store": {"keep_originals": true, "rescore": true}}}}),
            422,
        ),
        (
            json!({"vectors": {"size": 4, "distance": "Dot", "multivector_config": {"comparator": "max_sim", "token_store": {"nbits": 2}}}}),
            422,
        ),
        (
            json!({"vectors": {"size": 4, "distance": "Cosine", "multivector_config": {"comparator": "max_sim", "token_store": {"bits": 2}}}}),
            400,
        ),
    ];
    for (i, (body, status)) in bad.iter().enumerate() {
        c.err("PUT", &format!("/collections/bad{i}"), Some(body), *status);
        assert_eq!(
            c.ok("GET", &format!("/collections/bad{i}/exists"), None),
            json!({"exists": false})
        );
    }
    // Each wal_config refusal names its field; Qdrant's defaults and nulls are taken.
    for (wal, field) in [
        (json!({"wal_capacity_mb": 0}), "wal_config.wal_capacity_mb"),
        (
            json!({"wal_capacity_mb": 4096}),
            "wal_config.wal_capacity_mb",
        ),
        (
            json!({"wal_capacity_mb": "big"}),
            "wal_config.wal_capacity_mb",
        ),
        (
            json!({"wal_segments_ahead": 2}),
            "wal_config.wal_segments_ahead",
        ),
        (
            json!({"wal_retain_closed": 3}),
            "wal_config.wal_retain_closed",
        ),
        (json!({"wal_capacity": 8}), "wal_config.wal_capacity"),
        (json!(32), "wal_config"),
    ] {
        let body = json!({"vectors": {"size": 4, "distance": "Dot"}, "wal_config": wal});
        let msg = c.err("PUT", "/collections/badwal", Some(&body), 400);
        assert!(msg.contains(field), "{wal}: {msg}");
    }
    let body = json!({"vectors": {"size": 4, "distance": "Dot"}, "wal_config": {
        "wal_capacity_mb": null, "wal_segments_ahead": 0, "wal_retain_closed": 1}});
    assert_eq!(c.ok("PUT", "/collections/wal", Some(&body)), json!(true));
    let info = c.ok("GET", "/collections/wal", None);
    assert_eq!(
        info["config"]["wal_config"],
        json!({"wal_capacity_mb": 32, "wal_segments_ahead": 0})
    );
    c.err(
        "PUT",
        "/collections/.hidden",
        Some(&json!({"vectors": {"size": 4, "distance": "Dot"}})),
        400,
    );
}

#[test]
fn malformed_requests_get_json_errors() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("c", 2, "Dot");

    for body in [&b"{not json"[..], b"", b"[1, 2", b"null", b"\"str\""] {
        let (status, text) = c
            .send("PUT", "/collections/c/points", &[], Some(body.to_vec()))
            .unwrap();
        assert_eq!(status, 400, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["status"]["error"].is_string(), "{v}");
    }
    // curl's default form content type is accepted as JSON, like Qdrant.
    let (status, text) = c
        .send(
            "POST",
            "/collections/c/points/count",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"{}".to_vec()),
        )
        .unwrap();
    assert_eq!(status, 200, "{text}");

    let msg = c.err("GET", "/no/such/route", None, 404);
    assert!(msg.contains("/no/such/route"), "{msg}");
    c.err("PATCH", "/collections", None, 405);
    c.err("GET", "/collections/c/points/search", None, 405);
    c.err(
        "PUT",
        "/collections/c/points?wait=maybe",
        Some(&json!({"points": []})),
        400,
    );
    let msg = c.err("GET", "/collections/c/points/not-an-id", None, 400);
    assert!(msg.contains("not-an-id"), "{msg}");
}
