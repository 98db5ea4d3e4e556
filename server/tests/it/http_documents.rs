//! Qdrant's inference objects (`{"text", "model", "options"}`) in upserts and the Query API, embedded
//! by the server's model (the tiny random jina-v4 fixture): stored vectors equal the encoder library's
//! passage embeddings, and query answers equal a reference computed here from the library's query and
//! passage embeddings (cosine for the dense stage, MaxSim for the multivector stage).

use serde_json::{json, Value};

use crate::http_embed::{encoder, fixture, library};
use crate::support::{Client, QuiverProcess};

pub const DOCS: [&str; 6] = [
    "Berlin is the capital of Germany.",
    "Paris is the capital of France.",
    "The quick brown fox jumps over the lazy dog.",
    "def sort(xs): return sorted(xs)",
    "Rain is expected in Berlin tomorrow.",
    "Bread is baked in an oven.",
];

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn max_sim(q: &[Vec<f32>], d: &[Vec<f32>]) -> f32 {
    q.iter()
        .map(|r| {
            d.iter()
                .map(|s| dot(r, s))
                .fold(f32::NEG_INFINITY, f32::max)
        })
        .sum()
}

pub fn rows(e: &quiver_encoder::Embedding) -> Vec<Vec<f32>> {
    e.multi.rows().map(<[f32]>::to_vec).collect()
}

fn create(c: &Client) {
    let body = json!({"vectors": {
        "dense": {"size": 32, "distance": "Cosine"},
        "colbert": {"size": 16, "distance": "Cosine", "multivector_config": {
            "comparator": "max_sim", "token_store": {"keep_originals": true}}}
    }});
    c.ok("PUT", "/collections/docs", Some(&body));
}

/// `quiver_encoder_inline_batches_total` of the tiny model.
pub fn inline_passes(c: &Client) -> f64 {
    let (_, metrics) = c.send("GET", "/metrics", &[], None).unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("quiver_encoder_inline_batches_total{model=\"tiny\"} "))
        .expect("the inline counter")
        .parse()
        .unwrap()
}

fn doc(text: &str) -> Value {
    json!({"text": text, "model": "tiny"})
}

#[test]
fn documents_are_embedded_on_upsert_and_query() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    create(&c);
    // Half as points, half as a column batch.
    let points: Vec<Value> = (0..3)
        .map(|i| {
            json!({"id": i, "vector": {"dense": doc(DOCS[i]), "colbert": doc(DOCS[i])},
                        "payload": {"text": DOCS[i]}})
        })
        .collect();
    c.upsert("docs", json!(points));
    let batch = json!({"batch": {"ids": [3, 4, 5], "vectors": {
        "dense": (3..6).map(|i| doc(DOCS[i])).collect::<Vec<_>>(),
        "colbert": (3..6).map(|i| doc(DOCS[i])).collect::<Vec<_>>()},
        "payloads": (3..6).map(|i| json!({"text": DOCS[i]})).collect::<Vec<_>>()}});
    c.ok("PUT", "/collections/docs/points?wait=true", Some(&batch));

    // Stored: the library's passage embeddings (dense truncated to 32 and renormalised).
    let passages = library(&DOCS, "retrieval", "passage", Some(32));
    let got = c.ok(
        "POST",
        "/collections/docs/points",
        Some(&json!({"ids": [0, 1, 2, 3, 4, 5], "with_vector": true})),
    );
    for (i, record) in got.as_array().unwrap().iter().enumerate() {
        let dense: Vec<f32> = serde_json::from_value(record["vector"]["dense"].clone()).unwrap();
        let multi: Vec<Vec<f32>> =
            serde_json::from_value(record["vector"]["colbert"].clone()).unwrap();
        let want = &passages[i];
        assert_eq!(dense.len(), 32);
        assert!(
            dense
                .iter()
                .zip(&want.single)
                .all(|(a, b)| (a - b).abs() < 1e-5),
            "point {i}"
        );
        let want_rows = rows(want);
        assert_eq!(multi.len(), want_rows.len());
        for (g, w) in multi.iter().zip(&want_rows) {
            assert!(
                g.iter().zip(w).all(|(a, b)| (a - b).abs() < 1e-5),
                "point {i} tokens"
            );
        }
    }

    // Query: dense by cosine against the query embedding.
    let question = "Which city is the capital of Germany?";
    let query = &library(&[question], "retrieval", "query", Some(32))[0];
    let mut dense_ranked: Vec<(usize, f32)> = passages
        .iter()
        .enumerate()
        .map(|(i, p)| (i, dot(&query.single, &p.single)))
        .collect();
    dense_ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let inline_before = inline_passes(&c);
    let res = c.ok(
        "POST",
        "/collections/docs/points/query",
        Some(&json!({"query": doc(question), "using": "dense", "limit": 3})),
    );
    // Nothing else was queued: the query's text ran on its request's thread, with the same answer.
    assert_eq!(inline_passes(&c), inline_before + 1.0);
    let hits = res["points"].as_array().unwrap();
    for (hit, (id, score)) in hits.iter().zip(&dense_ranked) {
        assert_eq!(hit["id"], json!(id));
        assert!((hit["score"].as_f64().unwrap() as f32 - score).abs() < 1e-4);
    }
    // `{"nearest": document}` is the same query.
    let nearest = c.ok(
        "POST",
        "/collections/docs/points/query",
        Some(&json!({"query": {"nearest": doc(question)}, "using": "dense", "limit": 3})),
    );
    assert_eq!(nearest["points"], res["points"]);

    // A funnel: dense prefetch of 4, then MaxSim over token vectors, top 2.
    let query_tokens = rows(query);
    let candidates: Vec<usize> = dense_ranked.iter().take(4).map(|(i, _)| *i).collect();
    let mut reranked: Vec<(usize, f32)> = candidates
        .iter()
        .map(|&i| (i, max_sim(&query_tokens, &rows(&passages[i]))))
        .collect();
    reranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let res = c.ok(
        "POST",
        "/collections/docs/points/query",
        Some(&json!({
            "prefetch": {"query": doc(question), "using": "dense", "limit": 4},
            "query": doc(question), "using": "colbert", "limit": 2, "with_payload": true
        })),
    );
    let hits = res["points"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    for (hit, (id, score)) in hits.iter().zip(&reranked) {
        assert_eq!(hit["id"], json!(id));
        assert!((hit["score"].as_f64().unwrap() as f32 - score).abs() < 1e-4);
        assert_eq!(hit["payload"]["text"], json!(DOCS[*id]));
    }

    // Options: the code task with the query prompt on upsert changes the stored vector.
    c.upsert(
        "docs",
        json!([{"id": 9, "vector": {
            "dense": {"text": DOCS[3], "model": "tiny", "options": {"task": "code", "prompt": "query"}},
            "colbert": doc(DOCS[3])}}]),
    );
    let code = &library(&[DOCS[3]], "code", "query", Some(32))[0];
    let got = c.ok(
        "POST",
        "/collections/docs/points",
        Some(&json!({"ids": [9], "with_vector": ["dense"]})),
    );
    let dense: Vec<f32> = serde_json::from_value(got[0]["vector"]["dense"].clone()).unwrap();
    assert!(dense
        .iter()
        .zip(&code.single)
        .all(|(a, b)| (a - b).abs() < 1e-5));
}

#[test]
fn bad_documents_are_refused_and_store_nothing() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    create(&c);
    c.ok(
        "PUT",
        "/collections/odd",
        Some(&json!({"vectors": {"size": 20, "distance": "Cosine"}})),
    );
    let cases = [
        (
            "docs",
            json!({"dense": {"text": "a", "model": "tiny", "options": {"dimensions": 16}}}),
            400,
            "32",
        ),
        (
            "docs",
            json!({"dense": {"text": "a", "model": "tiny", "options": {"colour": 1}}}),
            400,
            "colour",
        ),
        (
            "docs",
            json!({"dense": {"text": "a", "model": "tiny", "options": {"task": "poetry"}}}),
            400,
            "retrieval",
        ),
        (
            "docs",
            json!({"dense": {"text": "  ", "model": "tiny"}}),
            400,
            "empty",
        ),
        (
            "docs",
            json!({"dense": {"text": "a", "model": "other"}}),
            404,
            "tiny",
        ),
        (
            "docs",
            json!({"dense": {"image": "aGVsbG8=", "model": "tiny"}}),
            400,
            "image",
        ),
        (
            "odd",
            json!({"text": "a", "model": "tiny"}),
            400,
            "16, 32, 64",
        ),
    ];
    for (collection, vector, status, needle) in cases {
        let body = json!({"points": [{"id": 1, "vector": vector}]});
        let message = c.err(
            "PUT",
            &format!("/collections/{collection}/points?wait=true"),
            Some(&body),
            status,
        );
        assert!(message.contains(needle), "{vector}: {message}");
    }
    for collection in ["docs", "odd"] {
        let count = c.ok(
            "POST",
            &format!("/collections/{collection}/points/count"),
            Some(&json!({"exact": true})),
        );
        assert_eq!(count["count"], 0);
    }
    // The legacy search API takes vectors only.
    let message = c.err(
        "POST",
        "/collections/odd/points/search",
        Some(&json!({"vector": {"text": "a", "model": "tiny"}, "limit": 1})),
        400,
    );
    assert!(message.contains("Query API"), "{message}");

    // A server without a model says how to get one.
    let bare = QuiverProcess::start(&[]);
    let cb = bare.client();
    cb.ok(
        "PUT",
        "/collections/t",
        Some(&json!({"vectors": {"size": 32, "distance": "Cosine"}})),
    );
    let message = cb.err(
        "POST",
        "/collections/t/points/query",
        Some(&json!({"query": {"text": "a", "model": "x"}})),
        400,
    );
    assert!(message.contains("--model"), "{message}");
}

/// The Matryoshka funnel: a small vector with a graph finds candidates, the full-size vector (no graph:
/// `m: 0`) rescores them, and MaxSim over token vectors orders the last few; every vector is filled
/// from one document by one forward pass.
#[test]
fn a_funnel_of_small_full_and_token_vectors() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    let body = json!({
        "vectors": {
            "small": {"size": 16, "distance": "Cosine"},
            "full": {"size": 64, "distance": "Cosine", "hnsw_config": {"m": 0}},
            "colbert": {"size": 16, "distance": "Cosine", "multivector_config": {
                "comparator": "max_sim", "token_store": {"keep_originals": true}}}
        },
        "hnsw_config": {"full_scan_threshold": 0},
        "optimizers_config": {"segment_max_points": 3}
    });
    c.ok("PUT", "/collections/funnel", Some(&body));
    let points: Vec<Value> = DOCS
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": i, "vector": {"small": doc(t), "full": doc(t), "colbert": doc(t)}}))
        .collect();
    c.upsert("funnel", json!(points));
    // Wait for the seals: two sealed segments, each with a graph for `small` only.
    let segments = server.data_dir().join("collections/funnel/segments");
    c.wait_for_seals("funnel", 3);
    let graphs = std::fs::read_dir(&segments)
        .unwrap()
        .flatten()
        .flat_map(|seg| std::fs::read_dir(seg.path()).unwrap().flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "hnsw"))
        .count();
    assert_eq!(graphs, 2, "one graph per sealed segment, for `small` only");

    let question = "Which city is the capital of Germany?";
    let passages16 = library(&DOCS, "retrieval", "passage", Some(16));
    let passages64 = library(&DOCS, "retrieval", "passage", None);
    let q16 = &library(&[question], "retrieval", "query", Some(16))[0];
    let q64 = &library(&[question], "retrieval", "query", None)[0];
    let rank = |scores: Vec<(usize, f32)>, k: usize| {
        let mut s = scores;
        s.sort_by(|a, b| b.1.total_cmp(&a.1));
        s.truncate(k);
        s
    };
    let stage1 = rank(
        (0..6)
            .map(|i| (i, dot(&q16.single, &passages16[i].single)))
            .collect(),
        5,
    );
    let stage2 = rank(
        stage1
            .iter()
            .map(|&(i, _)| (i, dot(&q64.single, &passages64[i].single)))
            .collect(),
        3,
    );
    let stage3 = rank(
        stage2
            .iter()
            .map(|&(i, _)| (i, max_sim(&rows(q64), &rows(&passages64[i]))))
            .collect(),
        2,
    );
    let res = c.ok(
        "POST",
        "/collections/funnel/points/query?timings=true",
        Some(&json!({
            "prefetch": {
                "prefetch": {"query": doc(question), "using": "small", "limit": 5},
                "query": doc(question), "using": "full", "limit": 3
            },
            "query": doc(question), "using": "colbert", "limit": 2
        })),
    );
    let hits = res["points"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    for (hit, (id, score)) in hits.iter().zip(&stage3) {
        assert_eq!(hit["id"], json!(id), "{res}");
        assert!((hit["score"].as_f64().unwrap() as f32 - score).abs() < 1e-4);
    }
    // Timings, deepest stage first.
    let timings = &res["timings"];
    let stages = timings["stages"].as_array().unwrap();
    let shape: Vec<(Value, Value, Value)> = stages
        .iter()
        .map(|s| (s["using"].clone(), s["depth"].clone(), s["limit"].clone()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (json!("small"), json!(2), json!(5)),
            (json!("full"), json!(1), json!(3)),
            (json!("colbert"), json!(0), json!(2))
        ]
    );
    assert_eq!(stages[0]["candidates"], Value::Null);
    assert_eq!(stages[1]["candidates"], json!(5));
    assert_eq!(stages[2]["candidates"], json!(3));
    let embed_ms = timings["embed_ms"].as_f64().unwrap();
    let total_ms = timings["total_ms"].as_f64().unwrap();
    assert!(embed_ms > 0.0 && total_ms >= embed_ms, "{timings}");
    // Without the flag the response is Qdrant's shape.
    let plain = c.ok(
        "POST",
        "/collections/funnel/points/query",
        Some(&json!({"query": doc(question), "using": "small", "limit": 1})),
    );
    assert!(plain.get("timings").is_none(), "{plain}");
}

/// Standard base64, written here independently of the server's.
fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[test]
fn images_are_embedded_like_the_library_does() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    create(&c);
    let dir = std::path::PathBuf::from(fixture()).join("images");
    let images: Vec<Vec<u8>> = ["a.png", "b.png", "c.png"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let image = |i: usize| json!({"image": b64(&images[i]), "model": "tiny"});
    let points: Vec<Value> = (0..3)
        .map(|i| json!({"id": i, "vector": {"dense": image(i), "colbert": image(i)}}))
        .collect();
    // One point mixes text and an image: both kinds in one request.
    let mut all = points.clone();
    all.push(json!({"id": 3, "vector": {"dense": doc(DOCS[0]), "colbert": image(2)}}));
    c.upsert("docs", json!(all));

    let encoder = encoder();
    let want = encoder
        .encode_images(&images, "retrieval", Some(32))
        .unwrap();
    let got = c.ok(
        "POST",
        "/collections/docs/points",
        Some(&json!({"ids": [0, 1, 2, 3], "with_vector": true})),
    );
    for i in 0..3 {
        let dense: Vec<f32> = serde_json::from_value(got[i]["vector"]["dense"].clone()).unwrap();
        assert!(
            dense
                .iter()
                .zip(&want[i].single)
                .all(|(a, b)| (a - b).abs() < 1e-5),
            "image {i}"
        );
        let tokens: Vec<Vec<f32>> =
            serde_json::from_value(got[i]["vector"]["colbert"].clone()).unwrap();
        let want_rows = rows(&want[i]);
        assert_eq!(tokens.len(), want_rows.len(), "image {i} tokens");
        for (g, w) in tokens.iter().zip(&want_rows) {
            assert!(
                g.iter().zip(w).all(|(a, b)| (a - b).abs() < 1e-5),
                "image {i} token"
            );
        }
    }
    let tokens3: Vec<Vec<f32>> =
        serde_json::from_value(got[3]["vector"]["colbert"].clone()).unwrap();
    assert_eq!(tokens3.len(), want[2].multi.num_tokens());

    // Search by image: cosine against the stored vectors, best first.
    let mut expected: Vec<(usize, f32)> = (0..3)
        .map(|i| (i, dot(&want[1].single, &want[i].single)))
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    let res = c.ok(
        "POST",
        "/collections/docs/points/query",
        Some(&json!({"query": image(1), "using": "dense", "limit": 3,
                     "filter": {"must_not": [{"has_id": [3]}]}})),
    );
    let ids: Vec<u64> = res["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, expected.iter().map(|e| e.0 as u64).collect::<Vec<_>>());

    for (value, needle) in [
        (
            json!({"image": "https://example.com/cat.png", "model": "tiny"}),
            "base64",
        ),
        (json!({"image": "not base64!", "model": "tiny"}), "base64"),
        (
            json!({"image": b64(b"hello, not an image"), "model": "tiny"}),
            "not an image",
        ),
        (json!({"image": 42, "model": "tiny"}), "string"),
    ] {
        let body = json!({"points": [{"id": 9, "vector": {"dense": value, "colbert": doc("x")}}]});
        let message = c.err("PUT", "/collections/docs/points", Some(&body), 400);
        assert!(message.contains(needle), "{message}");
    }
}

/// With `--image-dir`, an image object may name a file under it instead of carrying base64; paths
/// that leave the directory (`..`, absolute, a link pointing out) and missing files are 400s, and a
/// server without the flag refuses paths.
#[test]
fn image_files_are_read_only_under_image_dir() {
    let images = std::path::PathBuf::from(fixture()).join("images");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::copy(images.join("a.png"), root.join("sub/a.png")).unwrap();
    std::fs::copy(images.join("b.png"), tmp.path().join("secret.png")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret.png"), root.join("link.png")).unwrap();
    let server = QuiverProcess::start(&[
        "--model",
        &format!("tiny={}", fixture()),
        "--image-dir",
        root.to_str().unwrap(),
    ]);
    let c = server.client();
    create(&c);
    let image = |value: String| json!({"image": value, "model": "tiny"});
    let a = std::fs::read(images.join("a.png")).unwrap();
    let absolute = format!("file://{}", root.join("sub/a.png").display());
    let points = json!([
        {"id": 0, "vector": {"dense": image("sub/a.png".into())}},
        {"id": 1, "vector": {"dense": image(absolute)}},
        {"id": 2, "vector": {"dense": image(b64(&a))}}
    ]);
    c.upsert("docs", points);
    let got = c.ok(
        "POST",
        "/collections/docs/points",
        Some(&json!({"ids": [0, 1, 2], "with_vector": true})),
    );
    let dense = |i: usize| got[i]["vector"]["dense"].clone();
    assert_eq!(dense(0), dense(2), "a path reads the same bytes as base64");
    assert_eq!(dense(1), dense(2));

    let refused = |value: &str, want: &str| {
        let body = json!({"points": [{"id": 9, "vector": {"dense": image(value.into())}}]});
        let msg = c.err(
            "PUT",
            "/collections/docs/points?wait=true",
            Some(&body),
            400,
        );
        assert!(msg.contains(want), "{value}: {msg}");
    };
    refused("../secret.png", "outside --image-dir");
    refused("link.png", "outside --image-dir");
    refused(
        &format!("file://{}", tmp.path().join("secret.png").display()),
        "outside --image-dir",
    );
    refused("sub/missing.png", "no file");
    refused("file://sub", "no file");
    let count = c.ok("POST", "/collections/docs/points/count", Some(&json!({})));
    assert_eq!(count["count"], 3);

    // The same files for the search page's thumbnails, under the same rule.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let fetch = |base: &str, path: &str| {
        let mut r = agent
            .get(format!("{base}/image-files"))
            .query("path", path)
            .call()
            .unwrap();
        let kind = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        (
            r.status().as_u16(),
            kind,
            r.body_mut().read_to_vec().unwrap(),
        )
    };
    let (status, kind, body) = fetch(c.base(), "sub/a.png");
    assert_eq!((status, kind.as_deref()), (200, Some("image/png")));
    assert_eq!(body, a);
    assert_eq!(fetch(c.base(), "../secret.png").0, 400);
    assert_eq!(fetch(c.base(), "link.png").0, 400);

    let plain = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = plain.client();
    create(&c);
    let body = json!({"points": [{"id": 1, "vector": {"dense": image("sub/a.png".into())}}]});
    let msg = c.err(
        "PUT",
        "/collections/docs/points?wait=true",
        Some(&body),
        400,
    );
    assert!(msg.contains("only when it runs with --image-dir"), "{msg}");
    assert_eq!(fetch(c.base(), "sub/a.png").0, 404);
}
