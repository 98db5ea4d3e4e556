//! Server-side BM25 (`qdrant/bm25`) over HTTP: inference objects naming the built-in model fill a
//! sparse vector in upserts, queries and prefetches, without any `--model`; documents are stored
//! with BM25 term weights, queries carry unit weights, and the collection's IDF modifier completes
//! the score. Misrouted documents are 400s naming the vector.

use quiver_encoder::bm25::{token_id, Bm25, Bm25Config};
use serde_json::{json, Value};

use crate::support::{ids, Client, QuiverProcess};

const TEXTS: [&str; 4] = [
    "Rust is a systems programming language focused on safety and speed.",
    "The quick brown fox jumps over the lazy dog.",
    "Vector databases store embeddings for semantic search.",
    "Cooking pasta: boil water, add salt, cook the noodles.",
];
const DENSE: [[f32; 2]; 4] = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.9, 0.1]];

fn bm25(text: &str) -> Value {
    json!({"text": text, "model": "qdrant/bm25"})
}

fn setup(c: &Client) {
    let body = json!({
        "vectors": {"dense": {"size": 2, "distance": "Dot"}},
        "sparse_vectors": {"bm25": {"modifier": "idf"}}
    });
    c.ok("PUT", "/collections/h", Some(&body));
    let points: Vec<Value> = (0..4)
        .map(|i| json!({"id": i, "vector": {"dense": DENSE[i], "bm25": bm25(TEXTS[i])}}))
        .collect();
    c.upsert("h", Value::Array(points));
}

fn query(c: &Client, body: Value) -> Value {
    c.ok("POST", "/collections/h/points/query", Some(&body))["points"].clone()
}

#[test]
fn bm25_documents_fill_sparse_vectors_and_rank_by_bm25() {
    let p = QuiverProcess::start(&[]);
    let c = p.client();
    setup(&c);

    // Stored: the document weights Qdrant's BM25 gives, under its token ids.
    let stored = c.ok(
        "POST",
        "/collections/h/points",
        Some(&json!({"ids": [1], "with_vector": true})),
    )[0]["vector"]["bm25"]
        .clone();
    let expected = Bm25::new(Bm25Config::default()).embed_document(TEXTS[1]);
    assert_eq!(stored["indices"], json!(expected.indices));
    let values: Vec<f32> = serde_json::from_value(stored["values"].clone()).unwrap();
    assert_eq!(values, expected.values);

    // A query by text ranks the matching document first; the score is IDF times the stored
    // weights of the shared tokens ("lazi", "dog", each in 1 of 4 documents).
    let hits = query(
        &c,
        json!({"query": bm25("a lazy dog"), "using": "bm25", "limit": 4}),
    );
    assert_eq!(ids(&hits), vec![1]);
    let idf = ((4.0f32 - 1.0 + 0.5) / (1.0 + 0.5) + 1.0).ln();
    let weight = |t: &str| {
        let at = expected
            .indices
            .iter()
            .position(|&i| i == token_id(t))
            .unwrap();
        expected.values[at]
    };
    let score = hits[0]["score"].as_f64().unwrap() as f32;
    let want = idf * (weight("lazi") + weight("dog"));
    assert!((score - want).abs() < 1e-4, "{score} vs {want}");
    // Stemming matches other word forms; the model name is case-insensitive, as in Qdrant.
    let hits = query(
        &c,
        json!({"query": {"text": "searching vectors", "model": "Qdrant/BM25"}, "using": "bm25"}),
    );
    assert_eq!(ids(&hits), vec![2]);

    // As a prefetch: RRF of the dense ranking (0, 3, 2, 1) and the BM25 one (1) puts 1 first.
    let fused = query(
        &c,
        json!({
            "prefetch": [
                {"query": [1.0, 0.0], "using": "dense", "limit": 4},
                {"query": bm25("lazy dogs"), "using": "bm25", "limit": 4}
            ],
            "query": {"fusion": "rrf"},
            "limit": 2
        }),
    );
    assert_eq!(ids(&fused), vec![1, 0]);
    // A BM25 prefetch rescored by the dense vector.
    let hits = query(
        &c,
        json!({
            "prefetch": {"query": bm25("noodles and rust"), "using": "bm25", "limit": 10},
            "query": [0.0, 1.0], "using": "dense"
        }),
    );
    assert_eq!(ids(&hits), vec![3, 0]);

    // Options reach the model: without stop words "the" is a token, in documents and queries.
    c.upsert(
        "h",
        json!([{"id": 9, "vector": {"dense": [0.0, 0.0], "bm25": {
            "text": "The the THE", "model": "qdrant/bm25", "options": {"language": "none"}}}}]),
    );
    let the = json!({"text": "the", "model": "qdrant/bm25", "options": {"language": "none"}});
    assert_eq!(
        ids(&query(&c, json!({"query": the, "using": "bm25"}))),
        vec![9]
    );
    // The multilingual tokenizer: a Chinese word inside a sentence, a Latin word without accents.
    let multilingual = |text: &str| json!({"text": text, "model": "qdrant/bm25", "options": {"tokenizer": "multilingual"}});
    c.upsert(
        "h",
        json!([
            {"id": 10, "vector": {"dense": [0.0, 0.0], "bm25": multilingual("我们在北京大学学习")}},
            {"id": 11, "vector": {"dense": [0.0, 0.0], "bm25": multilingual("Größere Äpfel")}}
        ]),
    );
    for (text, want) in [("北京大学", 10), ("größere", 11), ("apfel", 11)] {
        let hits = query(&c, json!({"query": multilingual(text), "using": "bm25"}));
        assert_eq!(ids(&hits), vec![want], "{text}");
    }
    // Folded to ASCII, "Größere" is "grossere", as the query's "GROSSERE" is.
    let folded = |text: &str| json!({"text": text, "model": "qdrant/bm25", "options": {"ascii_folding": true}});
    c.upsert(
        "h",
        json!([{"id": 12, "vector": {"dense": [0.0, 0.0], "bm25": folded("Größere Bäume")}}]),
    );
    let hits = query(&c, json!({"query": folded("GROSSERE"), "using": "bm25"}));
    assert_eq!(ids(&hits), vec![12]);
    assert_eq!(
        ids(&query(&c, json!({"query": bm25("the"), "using": "bm25"}))),
        Vec::<u64>::new()
    );
}

#[test]
fn misrouted_bm25_documents_are_refused_by_name() {
    let p = QuiverProcess::start(&[]);
    let c = p.client();
    setup(&c);
    let upsert = |vector: Value| {
        c.err(
            "PUT",
            "/collections/h/points?wait=true",
            Some(&json!({"points": [{"id": 50, "vector": vector}]})),
            400,
        )
    };
    let e = upsert(json!({"dense": bm25("some text")}));
    assert!(e.contains("`dense`") && e.contains("sparse"), "{e}");
    let e = upsert(json!({"bm25": {"text": "some text", "model": "jina"}}));
    assert!(e.contains("`bm25`") && e.contains("qdrant/bm25"), "{e}");
    let e = upsert(json!({"bm25": {"image": "aGVsbG8=", "model": "qdrant/bm25"}}));
    assert!(e.contains("text only"), "{e}");
    for (option, value) in [
        ("ascii_folding", json!("yes")),
        ("tokenizer", json!("letters")),
        ("task", json!("retrieval")),
        ("b", json!(2.0)),
    ] {
        let e = upsert(json!({"bm25": {
            "text": "some text", "model": "qdrant/bm25", "options": {option: value}}}));
        assert!(e.contains(&format!("`{option}`")), "{e}");
    }

    let query = |body: Value| c.err("POST", "/collections/h/points/query", Some(&body), 400);
    let e = query(json!({"query": bm25("fox"), "using": "dense"}));
    assert!(e.contains("`dense`") && e.contains("sparse"), "{e}");
    let e = query(json!({"query": bm25("fox")}));
    assert!(e.contains("sparse vector"), "{e}");
    let e = query(json!({
        "prefetch": {"query": {"text": "fox", "model": "minilm"}, "using": "bm25"},
        "query": [1.0, 0.0], "using": "dense"
    }));
    assert!(e.contains("`bm25`") && e.contains("sparse"), "{e}");
    let e = query(
        json!({"query": {"text": "fox", "model": "bm25", "options": {"language": "klingon"}},
                         "using": "bm25"}),
    );
    assert!(e.contains("`language`"), "{e}");

    assert_eq!(
        c.ok("POST", "/collections/h/points/count", Some(&json!({})))["count"],
        json!(4)
    );
}
