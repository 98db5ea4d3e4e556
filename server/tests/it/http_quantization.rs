//! `quantization_config` over HTTP: validated (what Quiver does not build is a 400 naming it),
//! echoed in the collection info, and `params.quantization` honoured by search and query.

use serde_json::{json, Value};

use crate::support::{dot, normalized, vector, QuiverProcess};

const DIM: usize = 16;
const N: u64 = 600;

#[test]
fn quantization_config_is_validated_echoed_and_searched() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let bad = [
        (json!({"scalar": {"type": "int4"}}), "`int4`"),
        (
            json!({"scalar": {"type": "int8", "quantile": 0.4}}),
            "quantile",
        ),
        (
            json!({"binary": {"encoding": "three_bits"}}),
            "`three_bits`",
        ),
        (
            json!({"binary": {"query_encoding": "scalar2bits"}}),
            "`scalar2bits`",
        ),
        (json!({"product": {"compression": "x16"}}), "product"),
    ];
    for (q, named) in bad {
        let body =
            json!({"vectors": {"size": DIM, "distance": "Cosine"}, "quantization_config": q});
        let msg = c.err("PUT", "/collections/bad", Some(&body), 400);
        assert!(msg.contains(named), "{msg}");
        let body = json!({"vectors": {"v": {"size": DIM, "distance": "Cosine", "quantization_config": q}}});
        let msg = c.err("PUT", "/collections/bad", Some(&body), 400);
        assert!(msg.contains(named) && msg.contains("vectors.v"), "{msg}");
    }
    assert_eq!(
        c.ok("GET", "/collections", None),
        json!({"collections": []})
    );

    let scalar = json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}});
    let binary = json!({"binary": {"always_ram": true, "encoding": "one_bit"}});
    let body = json!({
        "vectors": {
            "s": {"size": DIM, "distance": "Cosine", "on_disk": true},
            "b": {"size": DIM, "distance": "Cosine", "quantization_config": binary},
        },
        "quantization_config": scalar,
        "hnsw_config": {"full_scan_threshold": 0},
        "optimizers_config": {"segment_max_points": N},
    });
    assert_eq!(c.ok("PUT", "/collections/q", Some(&body)), json!(true));
    let info = c.ok("GET", "/collections/q", None);
    assert_eq!(info["config"]["quantization_config"], scalar);
    assert_eq!(
        info["config"]["params"]["vectors"]["b"]["quantization_config"],
        binary
    );
    assert!(info["config"]["params"]["vectors"]["s"]
        .get("quantization_config")
        .is_none());

    let points: Vec<Value> = (0..N)
        .map(|i| json!({"id": i, "vector": {"s": vector(i, DIM), "b": vector(i, DIM)}}))
        .collect();
    c.upsert("q", json!(points));
    c.wait_for_seals("q", 2);
    let q = vector(10_000, DIM);
    let uq = normalized(&q);
    let exact = |id: u64| dot(&uq, &normalized(&vector(id, DIM)));
    for using in ["s", "b"] {
        let search = |params: Value| {
            let body =
                json!({"vector": {"name": using, "vector": q}, "limit": 5, "params": params});
            c.ok("POST", "/collections/q/points/search", Some(&body))
        };
        // Rescored (the default, and with oversampling): exact scores.
        for params in [
            json!({}),
            json!({"quantization": {"oversampling": 3.0, "rescore": true}}),
        ] {
            for h in search(params).as_array().unwrap() {
                let id = h["id"].as_u64().unwrap();
                let score = h["score"].as_f64().unwrap() as f32;
                assert!(
                    (score - exact(id)).abs() < 1e-5,
                    "{using}: {score} vs {}",
                    exact(id)
                );
            }
        }
        // `rescore: false` returns the codes' estimates; `ignore` walks the originals.
        let raw = search(json!({"quantization": {"rescore": false}}));
        let differ = raw.as_array().unwrap().iter().any(|h| {
            (h["score"].as_f64().unwrap() as f32 - exact(h["id"].as_u64().unwrap())).abs() > 1e-6
        });
        assert!(differ, "{using}: codes' scores are estimates: {raw}");
        for h in search(json!({"quantization": {"ignore": true}}))
            .as_array()
            .unwrap()
        {
            let score = h["score"].as_f64().unwrap() as f32;
            assert!((score - exact(h["id"].as_u64().unwrap())).abs() < 1e-5);
        }
        // The Query API takes the same params.
        let body = json!({"query": q, "using": using, "limit": 5,
                          "params": {"quantization": {"rescore": false}}});
        let hits = c.ok("POST", "/collections/q/points/query", Some(&body));
        assert_eq!(hits["points"], raw, "{using}: query and search agree");
    }
    let msg = c.err(
        "POST",
        "/collections/q/points/search",
        Some(&json!({"vector": {"name": "s", "vector": q}, "limit": 5,
                     "params": {"quantization": {"oversampling": 0.5}}})),
        400,
    );
    assert!(msg.contains("oversampling"), "{msg}");
}

#[test]
fn every_binary_encoding_is_echoed_and_searched() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    let encodings = [
        json!({"binary": {"encoding": "one_bit", "query_encoding": "default"}}),
        json!({"binary": {"encoding": "two_bits"}}),
        json!({"binary": {"encoding": "one_and_half_bits", "query_encoding": "binary"}}),
        json!({"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}}),
        json!({"binary": {"encoding": "one_and_half_bits", "query_encoding": "scalar4bits"}}),
    ];
    let points: Vec<Value> = (0..N)
        .map(|i| json!({"id": i, "vector": vector(i, DIM)}))
        .collect();
    let q = vector(10_000, DIM);
    let uq = normalized(&q);
    let exact = |id: u64| dot(&uq, &normalized(&vector(id, DIM)));
    let mut want: Vec<(u64, f32)> = (0..N).map(|id| (id, exact(id))).collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (i, quantization) in encodings.iter().enumerate() {
        let name = format!("b{i}");
        let body = json!({
            "vectors": {"size": DIM, "distance": "Cosine"},
            "quantization_config": quantization,
            "hnsw_config": {"full_scan_threshold": 0},
            "optimizers_config": {"segment_max_points": N},
        });
        assert_eq!(
            c.ok("PUT", &format!("/collections/{name}"), Some(&body)),
            json!(true)
        );
        let info = c.ok("GET", &format!("/collections/{name}"), None);
        assert_eq!(&info["config"]["quantization_config"], quantization);
        c.upsert(&name, json!(points));
        c.wait_for_seals(&name, 2);
        let search = |params: Value| {
            let body = json!({"vector": q, "limit": 5, "params": params});
            c.ok(
                "POST",
                &format!("/collections/{name}/points/search"),
                Some(&body),
            )
        };
        // Rescored from a wide candidate set: (nearly) the exact top 5, with exact scores. 16
        // components give coarse codes, so one neighbour may be missed.
        let hits = search(json!({"quantization": {"oversampling": 10.0}}));
        let top: Vec<u64> = want[..5].iter().map(|w| w.0).collect();
        let found = hits
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| top.contains(&h["id"].as_u64().unwrap()))
            .count();
        assert!(found >= 4, "{quantization}: {hits} vs {top:?}");
        for h in hits.as_array().unwrap() {
            let score = h["score"].as_f64().unwrap() as f32;
            assert!((score - exact(h["id"].as_u64().unwrap())).abs() < 1e-5);
        }
        // The codes' own estimates are in [-1, 1] and not the exact scores.
        let raw = search(json!({"quantization": {"rescore": false}}));
        let raw = raw.as_array().unwrap();
        assert_eq!(raw.len(), 5);
        assert!(raw
            .iter()
            .all(|h| h["score"].as_f64().unwrap().abs() <= 1.0));
        assert!(
            raw.iter().any(|h| (h["score"].as_f64().unwrap() as f32
                - exact(h["id"].as_u64().unwrap()))
            .abs()
                > 1e-6),
            "{quantization}: {raw:?}"
        );
    }
}
