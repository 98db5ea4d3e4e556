//! `quiver ingest` against a real server running the tiny jina-v4 fixture: files, JSON Lines and images
//! become points whose vectors are the library's embeddings of them; a second run adds nothing.

use std::process::{Command, Output};

use serde_json::json;

use crate::http_embed::{encoder, fixture, library};
use crate::support::{quiver_bin, QuiverProcess, TestDir};

fn ingest(base: &str, args: &[&str]) -> Output {
    Command::new(quiver_bin())
        .args(["ingest", "--url", base])
        .args(args)
        .env("QUIVER_LOG", "warn")
        .output()
        .expect("spawn quiver")
}

/// Asserts that a stored dense vector is the library's 32-d passage embedding of `text`, and
/// returns that embedding.
fn passage_matches(stored: &serde_json::Value, text: &str) -> quiver_encoder::Embedding {
    let want = library(&[text], "retrieval", "passage", Some(32)).remove(0);
    let dense: Vec<f32> = serde_json::from_value(stored.clone()).unwrap();
    assert!(dense
        .iter()
        .zip(&want.single)
        .all(|(a, b)| (a - b).abs() < 1e-5));
    want
}

#[test]
fn ingest_loads_files_and_jsonl_once() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    c.ok(
        "PUT",
        "/collections/docs",
        Some(&json!({"vectors": {
            "dense": {"size": 32, "distance": "Cosine"},
            "colbert": {"size": 16, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}}
        }})),
    );
    let dir = TestDir::new();
    let root = dir.path();
    std::fs::create_dir_all(root.join("notes/.git")).unwrap();
    std::fs::write(root.join("a.txt"), "Berlin is the capital of Germany.").unwrap();
    std::fs::write(
        root.join("notes/b.md"),
        "# Bread\nBread is baked in an oven.",
    )
    .unwrap();
    std::fs::write(root.join("notes/.git/config"), "not a document").unwrap();
    std::fs::write(root.join("notes/empty.txt"), "   ").unwrap();
    let picture = std::path::PathBuf::from(fixture()).join("images/b.png");
    std::fs::copy(&picture, root.join("picture.png")).unwrap();
    std::fs::write(
        root.join("more.jsonl"),
        "{\"id\": 7, \"body\": \"Paris is the capital of France.\", \"lang\": \"en\"}\n\
         {\"body\": \"The quick brown fox.\"}\n",
    )
    .unwrap();
    let base = server.client().base().to_string();
    let root_str = root.to_str().unwrap();

    let out = ingest(
        &base,
        &["--collection", "docs", "--text-field", "body", root_str],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("ingested 5 new points"), "{stderr}");
    let count = |c: &crate::support::Client| {
        c.ok(
            "POST",
            "/collections/docs/points/count",
            Some(&json!({"exact": true})),
        )["count"]
            .clone()
    };
    assert_eq!(count(&c), json!(5));

    // The JSONL id is kept; the payload is the line; vectors are the passage embeddings of the text.
    let got = c.ok(
        "POST",
        "/collections/docs/points",
        Some(&json!({"ids": [7], "with_vector": true, "with_payload": true})),
    );
    assert_eq!(got[0]["payload"]["lang"], "en");
    let want = passage_matches(
        &got[0]["vector"]["dense"],
        "Paris is the capital of France.",
    );
    let tokens = got[0]["vector"]["colbert"].as_array().unwrap().len();
    assert_eq!(tokens, want.multi.num_tokens());
    // Files carry their path and text.
    let page = c.ok(
        "POST",
        "/collections/docs/points/scroll",
        Some(&json!({"limit": 10, "with_payload": true})),
    );
    let texts: Vec<&str> = page["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["payload"]["text"].as_str())
        .collect();
    assert!(
        texts.contains(&"Berlin is the capital of Germany."),
        "{texts:?}"
    );
    // The image is a point too, embedded by the image path.
    let image = page["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["payload"]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("picture.png"))
        })
        .expect("the image became a point");
    let got = c.ok(
        "POST",
        "/collections/docs/points",
        Some(&json!({"ids": [image["id"]], "with_vector": ["dense"]})),
    );
    let encoder = encoder();
    let want = encoder
        .encode_images(&[std::fs::read(&picture).unwrap()], "retrieval", Some(32))
        .unwrap();
    let dense: Vec<f32> = serde_json::from_value(got[0]["vector"]["dense"].clone()).unwrap();
    assert!(dense
        .iter()
        .zip(&want[0].single)
        .all(|(a, b)| (a - b).abs() < 1e-5));

    // A second run finds every point and adds none.
    let out = ingest(
        &base,
        &["--collection", "docs", "--text-field", "body", root_str],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("ingested 0 new points"), "{stderr}");
    assert!(stderr.contains("5 already present"), "{stderr}");
    assert_eq!(count(&c), json!(5));

    // Errors name the problem.
    for (args, needle) in [
        (vec!["--collection", "nope", root_str], "nope"),
        (
            vec!["--collection", "docs", "--vector", "sparse", root_str],
            "sparse",
        ),
        (vec!["--collection", "docs", root_str], "--text-field"),
    ] {
        let out = ingest(&base, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn ingest_in_process_writes_the_data_directory() {
    let data = TestDir::new();
    let config = data.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"vectors": {"dense": {"size": 32, "distance": "Cosine"}}}"#,
    )
    .unwrap();
    let quiver = |args: &[&str]| {
        Command::new(quiver_bin())
            .arg("--data-dir")
            .arg(data.path().join("db"))
            .args(args)
            .env("QUIVER_LOG", "warn")
            .output()
            .expect("spawn quiver")
    };
    let out = quiver(&[
        "collection",
        "create",
        "docs",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = TestDir::new();
    std::fs::write(
        docs.path().join("a.txt"),
        "Berlin is the capital of Germany.",
    )
    .unwrap();
    std::fs::write(docs.path().join("b.txt"), "Bread is baked in an oven.").unwrap();
    let fixture = fixture();
    let args = [
        "ingest",
        "--collection",
        "docs",
        "--model-source",
        fixture.as_str(),
        docs.path().to_str().unwrap(),
    ];
    let out = quiver(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("ingested 2 new points"), "{stderr}");
    let out = quiver(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ingested 0 new points"), "{stderr}");

    // A server on that directory finds them, with the library's passage vectors.
    let server = QuiverProcess::start_in(&data.path().join("db"), &[]).unwrap();
    let c = server.client();
    let page = c.ok(
        "POST",
        "/collections/docs/points/scroll",
        Some(&json!({"limit": 10, "with_payload": true, "with_vector": true})),
    );
    let points = page["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for p in points {
        let text = p["payload"]["text"].as_str().unwrap();
        let want = &library(&[text], "retrieval", "passage", Some(32))[0];
        let got: Vec<f32> = serde_json::from_value(p["vector"]["dense"].clone()).unwrap();
        assert!(
            got.iter()
                .zip(&want.single)
                .all(|(a, b)| (a - b).abs() < 1e-5),
            "{text}"
        );
    }
}

#[test]
fn ingest_reads_pdf_html_and_csv() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    c.ok(
        "PUT",
        "/collections/docs",
        Some(&json!({"vectors": {"size": 32, "distance": "Cosine"}})),
    );
    let dir = TestDir::new();
    let root = dir.path();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/documents/sample.pdf");
    std::fs::copy(&sample, root.join("sample.pdf")).unwrap();
    std::fs::write(
        root.join("page.html"),
        "<html><head><title>Bread</title><script>var x;</script></head>\
         <body><p>Bread is baked in an oven.</p></body></html>",
    )
    .unwrap();
    std::fs::write(
        root.join("rows.csv"),
        "id,body,lang\n3,Paris is the capital of France.,en\n,A row without an id.,fr\n",
    )
    .unwrap();
    let out = ingest(
        c.base(),
        &[
            "--collection",
            "docs",
            "--text-field",
            "body",
            root.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("ingested 4 new points"), "{stderr}");

    let page = c.ok(
        "POST",
        "/collections/docs/points/scroll",
        Some(&json!({"limit": 10, "with_payload": true})),
    );
    let points = page["points"].as_array().unwrap();
    let by_path = |suffix: &str| {
        points
            .iter()
            .find(|p| {
                p["payload"]["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(suffix))
            })
            .unwrap_or_else(|| panic!("no point for {suffix}: {points:?}"))
    };
    let pdf = &by_path("sample.pdf")["payload"];
    assert_eq!(pdf["pages"], 2);
    assert!(pdf["text"].as_str().unwrap().contains("A naïve café owner"));
    let html = &by_path("page.html")["payload"];
    assert_eq!(html["title"], "Bread");
    assert_eq!(html["text"], "Bread is baked in an oven.");

    // A row is a point whose payload is its columns; its id column is kept, and its text is
    // embedded as a passage.
    let got = c.ok(
        "POST",
        "/collections/docs/points",
        Some(&json!({"ids": [3], "with_vector": true, "with_payload": true})),
    );
    assert_eq!(got[0]["payload"]["lang"], "en");
    passage_matches(&got[0]["vector"], "Paris is the capital of France.");

    // A file that cannot be read stops the run, naming it and the line.
    std::fs::write(root.join("bad.csv"), "id,body\n1,ok\n2,ok,extra\n").unwrap();
    let out = ingest(
        c.base(),
        &[
            "--collection",
            "docs",
            "--text-field",
            "body",
            root.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("bad.csv:3: 3 fields"), "{stderr}");
}
