//! Vectors bound to the server's model at creation (`embedding`): bare documents fill every bound
//! vector and keep their text, a plain query runs the default funnel (HNSW on the Matryoshka prefix →
//! full-vector rescore → MaxSim), and its answers equal a reference computed here from the encoder
//! library's embeddings.

use serde_json::{json, Value};

use crate::http_documents::{dot, max_sim, rows, DOCS};
use crate::http_embed::{fixture, library};
use crate::support::{Client, QuiverProcess};

fn start() -> QuiverProcess {
    QuiverProcess::start(&["--model", &format!("tiny={}", fixture())])
}

fn create_bound(c: &Client, name: &str) {
    c.ok("PUT", &format!("/collections/{name}"), Some(&bound_body()));
}

fn bound_body() -> Value {
    json!({
        "vectors": {
            "dense": {"size": 64, "distance": "Cosine"},
            "colbert": {"size": 16, "distance": "Cosine", "multivector_config": {
                "comparator": "max_sim", "token_store": {"keep_originals": true}}}
        },
        "embedding": {"dense": {"model": "tiny", "dims": 16}, "colbert": {"model": "tiny"}},
        "hnsw_config": {"full_scan_threshold": 0},
        "optimizers_config": {"segment_max_points": 3}
    })
}

fn ranked(mut scores: Vec<(usize, f32)>, k: usize) -> Vec<(usize, f32)> {
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    scores.truncate(k);
    scores
}

fn assert_hits(res: &Value, want: &[(usize, f32)]) {
    let hits = res["points"].as_array().unwrap();
    assert_eq!(hits.len(), want.len(), "{res}");
    for (hit, (id, score)) in hits.iter().zip(want) {
        assert_eq!(hit["id"], json!(id), "{res}");
        let got = hit["score"].as_f64().unwrap() as f32;
        assert!((got - score).abs() < 1e-4, "{got} vs {score}: {res}");
    }
}

#[test]
fn a_bound_collection_embeds_bare_documents_and_runs_the_default_funnel() {
    let server = start();
    let c = server.client();
    create_bound(&c, "bound");
    let info = c.ok("GET", "/collections/bound", None);
    assert_eq!(
        info["config"]["embedding"],
        json!({
            "dense": {"model": "tiny", "task": "retrieval", "dims": 16, "store_text": true},
            "colbert": {"model": "tiny", "task": "retrieval", "store_text": true}
        })
    );

    // Bare documents: one per point fills both vectors; point 5 sets its own `text`, which is kept.
    // Three points per request, so each seal takes three (the threshold triggers a seal, it does not
    // split a request).
    let points: Vec<Value> = (0..5)
        .map(|i| json!({"id": i, "vector": {"text": DOCS[i]}, "payload": {"n": i}}))
        .collect();
    c.upsert("bound", json!(points[..3]));
    c.upsert("bound", json!(points[3..]));
    let batch = json!({"batch": {"ids": [5], "vectors": [{"text": DOCS[5]}],
        "payloads": [{"text": "kept as given"}]}});
    c.ok("PUT", "/collections/bound/points?wait=true", Some(&batch));
    c.wait_for_seals("bound", 3);
    let segments = server.data_dir().join("collections/bound/segments");
    let prefix_files = std::fs::read_dir(&segments)
        .unwrap()
        .flatten()
        .flat_map(|seg| std::fs::read_dir(seg.path()).unwrap().flatten())
        .filter(|f| f.file_name().to_string_lossy().starts_with("prefix-"))
        .count();
    assert_eq!(
        prefix_files, 2,
        "each sealed segment keeps the 16-d prefix rows"
    );

    let passages = library(&DOCS, "retrieval", "passage", None);
    let stored = c.ok(
        "POST",
        "/collections/bound/points",
        Some(&json!({"ids": [0, 5], "with_vector": true, "with_payload": true})),
    );
    let stored = stored.as_array().unwrap();
    assert_eq!(stored[0]["payload"], json!({"n": 0, "text": DOCS[0]}));
    assert_eq!(stored[1]["payload"], json!({"text": "kept as given"}));
    let dense: Vec<f32> = serde_json::from_value(stored[0]["vector"]["dense"].clone()).unwrap();
    assert_eq!(dense.len(), 64);
    assert!(dense
        .iter()
        .zip(&passages[0].single)
        .all(|(a, b)| (a - b).abs() < 1e-5));

    // The funnel by hand: prefix cosine → full cosine → MaxSim.
    let question = "Which city is the capital of Germany?";
    let q = &library(&[question], "retrieval", "query", None)[0];
    let q16 = &library(&[question], "retrieval", "query", Some(16))[0];
    let p16 = library(&DOCS, "retrieval", "passage", Some(16));
    let stage1 = ranked(
        (0..6)
            .map(|i| (i, dot(&q16.single, &p16[i].single)))
            .collect(),
        5,
    );
    let stage2 = ranked(
        stage1
            .iter()
            .map(|&(i, _)| (i, dot(&q.single, &passages[i].single)))
            .collect(),
        3,
    );
    let stage3 = ranked(
        stage2
            .iter()
            .map(|&(i, _)| (i, max_sim(&rows(q), &rows(&passages[i]))))
            .collect(),
        2,
    );
    let res = c.ok(
        "POST",
        "/collections/bound/points/query?timings=true",
        Some(&json!({"query": {"text": question}, "limit": 2,
                     "funnel": {"hnsw_limit": 5, "rescore_limit": 3}})),
    );
    assert_hits(&res, &stage3);
    let stages: Vec<Value> = res["timings"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            json!([
                s["using"],
                s["kind"],
                s["dims"],
                s["limit"],
                s["candidates"]
            ])
        })
        .collect();
    assert_eq!(
        stages,
        vec![
            json!(["dense", "hnsw", 16, 5, null]),
            json!(["dense", "rescore", 64, 3, 5]),
            json!(["colbert", "maxsim", 16, 2, 3]),
        ]
    );

    // Default depths (100 and 30) cover all six points: MaxSim over everything.
    let all = ranked(
        (0..6)
            .map(|i| (i, max_sim(&rows(q), &rows(&passages[i]))))
            .collect(),
        3,
    );
    let res = c.ok(
        "POST",
        "/collections/bound/points/query",
        Some(&json!({"query": {"text": question}, "limit": 3})),
    );
    assert_hits(&res, &all);

    // One stage of the funnel by Qdrant's vocabulary: prefix scores as they are.
    let res = c.ok(
        "POST",
        "/collections/bound/points/query",
        Some(
            &json!({"query": {"text": question}, "using": "dense", "limit": 5,
                     "params": {"quantization": {"rescore": false}}}),
        ),
    );
    assert_hits(&res, &stage1);
    // A plain search of the bound dense vector walks the prefix graph and rescores with full vectors.
    let full = ranked(
        (0..6)
            .map(|i| (i, dot(&q.single, &passages[i].single)))
            .collect(),
        2,
    );
    let res = c.ok(
        "POST",
        "/collections/bound/points/query",
        Some(&json!({"query": {"text": question}, "using": "dense", "limit": 2})),
    );
    assert_hits(&res, &full);
}

/// Names of the files of the collection's sealed segments that start with `prefix`.
fn segment_files(server: &QuiverProcess, collection: &str, prefix: &str) -> usize {
    let segments = server
        .data_dir()
        .join(format!("collections/{collection}/segments"));
    std::fs::read_dir(&segments)
        .unwrap()
        .flatten()
        .flat_map(|seg| std::fs::read_dir(seg.path()).unwrap().flatten())
        .filter(|f| f.file_name().to_string_lossy().starts_with(prefix))
        .count()
}

#[test]
fn quantization_on_a_matryoshka_binding_codes_the_prefix_and_answers_as_the_rows_do() {
    let server = start();
    let c = server.client();
    create_bound(&c, "plain");
    for (name, q) in [
        ("binary", json!({"binary": {"always_ram": true}})),
        (
            "scalar",
            json!({"scalar": {"type": "int8", "always_ram": true}}),
        ),
    ] {
        let mut body = bound_body();
        body["quantization_config"] = q.clone();
        c.ok("PUT", &format!("/collections/{name}"), Some(&body));
        let info = c.ok("GET", &format!("/collections/{name}"), None);
        assert_eq!(info["config"]["quantization_config"], q);
    }
    let points: Vec<Value> = (0..6)
        .map(|i| json!({"id": i, "vector": {"text": DOCS[i]}}))
        .collect();
    for name in ["plain", "binary", "scalar"] {
        c.upsert(name, json!(points[..3]));
        c.upsert(name, json!(points[3..]));
        c.wait_for_seals(name, 3);
    }
    assert_eq!(segment_files(&server, "plain", "codes-"), 0);
    for name in ["binary", "scalar"] {
        assert_eq!(segment_files(&server, name, "prefix-"), 2, "{name}");
        assert_eq!(segment_files(&server, name, "codes-"), 2, "{name}");
    }
    // Segments of three points: the codes' walk reaches every point, so the answers are the
    // unquantized collection's, scores included (the full rows, or the prefix rows, score them).
    let question = "Which city is the capital of Germany?";
    let requests = [
        json!({"query": {"text": question}, "limit": 3}),
        json!({"query": {"text": question}, "using": "dense", "limit": 4}),
        json!({"query": {"text": question}, "using": "dense", "limit": 5,
               "params": {"quantization": {"rescore": false}}}),
        json!({"query": {"text": question}, "using": "dense", "limit": 4,
               "params": {"quantization": {"oversampling": 2.0}}}),
    ];
    for req in &requests {
        let want = c.ok("POST", "/collections/plain/points/query", Some(req));
        let want: Vec<(usize, f32)> = want["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["id"].as_u64().unwrap() as usize,
                    h["score"].as_f64().unwrap() as f32,
                )
            })
            .collect();
        assert!(!want.is_empty());
        for name in ["binary", "scalar"] {
            let got = c.ok(
                "POST",
                &format!("/collections/{name}/points/query"),
                Some(req),
            );
            assert_hits(&got, &want);
        }
    }
}

#[test]
fn bindings_and_funnels_are_validated() {
    let server = start();
    let c = server.client();
    let vectors = json!({"dense": {"size": 64, "distance": "Cosine"}});
    let create = |embedding: Value| json!({"vectors": vectors, "embedding": embedding});

    let msg = c.err(
        "PUT",
        "/collections/a",
        Some(&create(json!({"dense": {"model": "nope"}}))),
        400,
    );
    assert!(
        msg.contains("model `nope` is not configured; configured: tiny"),
        "{msg}"
    );
    let msg = c.err(
        "PUT",
        "/collections/a",
        Some(&create(json!({"dense": {"model": "tiny", "task": "nope"}}))),
        400,
    );
    assert!(msg.contains("nope"), "{msg}");
    let msg = c.err(
        "PUT",
        "/collections/a",
        Some(&create(json!({"dense": {"model": "tiny", "dims": 65}}))),
        422,
    );
    assert!(
        msg.contains("dims must be between 1 and the vector size 64"),
        "{msg}"
    );
    let msg = c.err(
        "PUT",
        "/collections/a",
        Some(&create(json!({"dense": {"model": "tiny", "dims": 20}}))),
        400,
    );
    assert!(msg.contains("dims 20 is not a Matryoshka size"), "{msg}");
    let msg = c.err(
        "PUT",
        "/collections/a",
        Some(&create(json!({"other": {"model": "tiny"}}))),
        422,
    );
    assert!(msg.contains("`other` is not a vector"), "{msg}");
    let msg = c.err(
        "PUT",
        "/collections/a",
        Some(
            &json!({"vectors": {"dense": {"size": 48, "distance": "Cosine"}},
                     "embedding": {"dense": {"model": "tiny"}}}),
        ),
        400,
    );
    assert!(msg.contains("size 48"), "{msg}");
    let listed = c.ok("GET", "/collections", None);
    assert_eq!(listed["collections"], json!([]), "nothing was created");

    create_bound(&c, "b");
    let msg = c.err(
        "PUT",
        "/collections/b/points?wait=true",
        Some(&json!({"points": [{"id": 1, "vector": {"dense": {"text": "x", "model": "other"}}}]})),
        400,
    );
    assert!(msg.contains("bound to model `tiny`"), "{msg}");
    let msg = c.err(
        "POST",
        "/collections/b/points/query",
        Some(&json!({"query": {"text": "x"}, "using": "dense", "funnel": {"hnsw_limit": 10}})),
        400,
    );
    assert!(msg.contains("`funnel` applies to a plain query"), "{msg}");
    let msg = c.err(
        "POST",
        "/collections/b/points/query",
        Some(&json!({"query": {"text": "x"}, "funnel": {"hnsw_limit": 10, "rescore_limit": 20}})),
        400,
    );
    assert!(msg.contains("must not exceed funnel.hnsw_limit"), "{msg}");
    let msg = c.err(
        "POST",
        "/collections/b/points/query",
        Some(&json!({"query": {"text": "x"}, "limit": 20, "funnel": {"hnsw_limit": 10}})),
        400,
    );
    assert!(msg.contains("at least limit + offset"), "{msg}");
    let msg = c.err(
        "POST",
        "/collections/b/points/query",
        Some(&json!({"query": {"text": "x"}, "using": "dense",
                     "params": {"quantization": {"oversampling": 0.5}}})),
        400,
    );
    assert!(
        msg.contains("oversampling must be between 1 and 100"),
        "{msg}"
    );
    let count = c.ok("POST", "/collections/b/points/count", Some(&json!({})));
    assert_eq!(count["count"], 0, "nothing was stored");
}
