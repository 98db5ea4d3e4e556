//! The real all-MiniLM-L6-v2 (fetched with sha256 checks by `scripts/fetch-test-assets.sh` into
//! `target/test-assets/all-MiniLM-L6-v2`) served by `quiver serve --model minilm=DIR`: the reference
//! cosines of the design notes through `/embed`, and a labelled query → document set
//! (`tests/fixtures/retrieval_set.json`) through a collection bound to the model, whose recall@1 must
//! reach 0.8 (sentence-transformers itself gets 1.0 on it).

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::support::{Client, QuiverProcess};

pub fn minilm_dir() -> String {
    let dir = std::env::var_os("QUIVER_MINILM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-assets/all-MiniLM-L6-v2")
        });
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run scripts/fetch-test-assets.sh first (or set QUIVER_MINILM)",
        dir.display()
    );
    dir.to_string_lossy().into_owned()
}

fn retrieval_set() -> (Vec<String>, Vec<(String, usize)>) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/retrieval_set.json");
    let set: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let docs = serde_json::from_value(set["documents"].clone()).unwrap();
    let queries = serde_json::from_value(set["queries"].clone()).unwrap();
    (docs, queries)
}

fn embed(c: &Client, texts: &[&str]) -> Vec<Vec<f32>> {
    let (status, text) = c
        .send(
            "POST",
            "/embed",
            &[],
            Some(json!({"inputs": texts}).to_string().into_bytes()),
        )
        .unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn minilm_matches_the_reference_and_finds_the_labelled_documents() {
    let server = QuiverProcess::start(&["--model", &format!("minilm={}", minilm_dir())]);
    let c = server.client();
    let v = embed(
        &c,
        &[
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The girl is carrying a baby.",
        ],
    );
    assert_eq!(v[0].len(), 384);
    let (near, far) = (cos(&v[0], &v[1]), cos(&v[0], &v[2]));
    assert!((near - 0.7553).abs() < 1e-3, "{near}");
    assert!((far + 0.1050).abs() < 1e-3, "{far}");

    c.ok(
        "PUT",
        "/collections/facts",
        Some(
            &json!({"vectors": {"dense": {"size": 384, "distance": "Cosine"}},
                     "embedding": {"dense": {"model": "minilm"}}}),
        ),
    );
    let (docs, queries) = retrieval_set();
    let points: Vec<Value> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"id": i, "vector": {"text": d}}))
        .collect();
    c.upsert("facts", json!(points));
    let mut hits = 0;
    for (q, want) in &queries {
        let res = c.ok(
            "POST",
            "/collections/facts/points/query",
            Some(&json!({"query": {"text": q}, "limit": 1, "with_payload": true})),
        );
        let top = &res["points"][0];
        if top["id"] == json!(want) {
            hits += 1;
            assert_eq!(top["payload"]["text"], json!(docs[*want]));
        }
    }
    let recall = hits as f64 / queries.len() as f64;
    eprintln!("all-MiniLM-L6-v2 recall@1 over HTTP: {recall:.2}");
    assert!(recall >= 0.8, "recall@1 = {recall}");

    // What MiniLM cannot give is a clear 400: token vectors, other sizes, images.
    for (path, body) in [
        ("/embed_all", json!({"inputs": "x"})),
        ("/embed", json!({"inputs": "x", "dimensions": 128})),
    ] {
        let (status, text) = c
            .send("POST", path, &[], Some(body.to_string().into_bytes()))
            .unwrap();
        assert!(status == 400 || status == 422, "{path}: {status} {text}");
    }
    let msg = c.err(
        "PUT",
        "/collections/bad",
        Some(&json!({"vectors": {"t": {"size": 384, "distance": "Cosine",
                                        "multivector_config": {"comparator": "max_sim"}}},
                     "embedding": {"t": {"model": "minilm"}}})),
        400,
    );
    assert!(msg.contains("minilm"), "{msg}");
}
