//! `quiver ingest` against a real server running the tiny jina-v4 fixture (and in process with the real
//! all-MiniLM-L6-v2): files, JSON Lines and images become points whose vectors are the library's
//! embeddings of them; long texts become chunks within the model's tokens; a second run adds nothing,
//! a changed file replaces its chunks, and what cannot be read is skipped and named.

use std::process::{Command, Output};

use serde_json::json;

use crate::http_embed::{encoder, fixture, library};
use crate::http_minilm::minilm_dir;
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
    assert!(
        stderr.contains("ingested 4 files into `docs`: 5 points, 5 new or changed, 0 unchanged; 0 skipped, 1 ignored"),
        "{stderr}"
    );
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
    assert!(
        stderr.contains("5 points, 0 new or changed, 5 unchanged"),
        "{stderr}"
    );
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
    assert!(stderr.contains("2 points, 2 new or changed"), "{stderr}");
    let out = quiver(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("2 points, 0 new or changed"), "{stderr}");

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
    assert!(
        stderr.contains("ingested 3 files into `docs`: 4 points"),
        "{stderr}"
    );

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
    assert_eq!(pdf["page"], 1);
    assert_eq!(pdf["chunk"], 0);
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

    // A file that cannot be read is skipped, named with its line; the others are written, and the
    // run fails.
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
    assert!(
        stderr.contains("4 points, 0 new or changed, 4 unchanged; 1 skipped"),
        "{stderr}"
    );
}

/// Paragraphs of a few sentences each, long enough for several chunks of a small budget.
fn long_text(paragraphs: usize, tag: &str) -> String {
    (0..paragraphs)
        .map(|p| {
            format!(
                "Paragraph {p} of {tag}. The river runs past the old mill at dawn. Bakers in \
                 town {p} light their ovens before the market opens."
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Every point whose `doc_id` is `doc`, in chunk order.
fn chunks_of(c: &crate::support::Client, collection: &str, doc: &str) -> Vec<serde_json::Value> {
    let page = c.ok(
        "POST",
        &format!("/collections/{collection}/points/scroll"),
        Some(
            &json!({"limit": 1000, "with_payload": true, "with_vector": true,
                     "filter": {"must": [{"key": "doc_id", "match": {"value": doc}}]}}),
        ),
    );
    let mut points = page["points"].as_array().unwrap().clone();
    points.sort_by_key(|p| p["payload"]["chunk"].as_u64().unwrap());
    points
}

#[test]
fn ingest_chunks_long_files_and_replaces_changed_ones() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    c.ok(
        "PUT",
        "/collections/docs",
        Some(&json!({"vectors": {"dense": {"size": 32, "distance": "Cosine"}}})),
    );
    let dir = TestDir::new();
    let file = dir.path().join("long.md");
    let text = long_text(6, "the first draft");
    std::fs::write(&file, &text).unwrap();
    let run = || {
        ingest(
            c.base(),
            &[
                "--collection",
                "docs",
                "--chunk-tokens",
                "24",
                "--chunk-overlap",
                "4",
                // Each chunk embedded on its own, as the library embeds its text (late chunking,
                // the default for this long-context model, is the documents route's test).
                "--no-late-chunking",
                dir.path().to_str().unwrap(),
            ],
        )
    };
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc = file.to_str().unwrap();
    let points = chunks_of(&c, "docs", doc);
    assert!(points.len() >= 6, "{} chunks", points.len());
    assert!(stderr.contains(&format!(
        "{} points, {} new or changed",
        points.len(),
        points.len()
    )));
    let tokenizer = encoder();
    let chars: Vec<char> = text.chars().collect();
    let mut covered = 0;
    for (i, p) in points.iter().enumerate() {
        let payload = &p["payload"];
        assert_eq!(payload["chunk"], i);
        assert_eq!(payload["path"], doc);
        let (start, end) = (
            payload["start"].as_u64().unwrap() as usize,
            payload["end"].as_u64().unwrap() as usize,
        );
        let piece: String = chars[start..end].iter().collect();
        assert_eq!(payload["text"], piece.as_str());
        // Chunks follow each other, overlapping a little, and cover the whole text but the
        // whitespace between them.
        if start > covered {
            let gap: String = chars[covered..start].iter().collect();
            assert!(gap.trim().is_empty(), "chunk {i} leaves out {gap:?}");
        }
        covered = end;
        let tokens = tokenizer.tokenizer().encode_raw(&piece).unwrap().len();
        assert!(tokens <= 24, "chunk {i}: {tokens} tokens");
        passage_matches(&p["vector"]["dense"], &piece);
    }
    assert_eq!(covered, chars.len());
    // Chunks end between words.
    for p in &points {
        let end = p["payload"]["end"].as_u64().unwrap() as usize;
        assert!(end == chars.len() || chars[end].is_whitespace(), "{p}");
    }

    // A second run embeds nothing.
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{} points, 0 new or changed", points.len())),
        "{stderr}"
    );

    // A changed file replaces all its chunks: the unchanged beginning keeps its points, the rest
    // are new, and none of the old ones stays.
    let changed = format!(
        "{}\n\nA new closing paragraph.",
        long_text(4, "the first draft")
    );
    std::fs::write(&file, &changed).unwrap();
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let now = chunks_of(&c, "docs", doc);
    let texts: String = now
        .iter()
        .map(|p| p["payload"]["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(texts.contains("A new closing paragraph."));
    assert!(!texts.contains("Paragraph 5"), "{texts}");
    let kept = now
        .iter()
        .filter(|p| points.iter().any(|o| o["id"] == p["id"]))
        .count();
    assert!(kept >= 1, "the unchanged first chunks keep their ids");
    let total = c.ok(
        "POST",
        "/collections/docs/points/count",
        Some(&json!({"exact": true})),
    )["count"]
        .as_u64()
        .unwrap();
    assert_eq!(total as usize, now.len());
    assert!(
        stderr.contains(&format!(
            "{} points, {} new or changed",
            now.len(),
            now.len() - kept
        )),
        "{stderr}"
    );

    // Bad chunk sizes are refused before anything is written.
    let out = ingest(
        c.base(),
        &[
            "--collection",
            "docs",
            "--chunk-tokens",
            "8",
            "--chunk-overlap",
            "4",
            doc,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("overlap of 4 tokens"), "{stderr}");
}

/// In process with the real all-MiniLM-L6-v2 (256 tokens): by default chunks fill the model's limit
/// and each is embedded as the library embeds it; with chunking off, a long file is skipped and
/// named, and the message says to chunk or truncate.
#[test]
fn ingest_in_process_chunks_to_the_models_limit() {
    let data = TestDir::new();
    let quiver = |args: &[&str]| {
        Command::new(quiver_bin())
            .arg("--data-dir")
            .arg(data.path().join("db"))
            .args(args)
            .env("QUIVER_LOG", "warn")
            .output()
            .expect("spawn quiver")
    };
    for name in ["docs", "whole"] {
        let out = quiver(&[
            "collection",
            "create",
            name,
            "--size",
            "384",
            "--distance",
            "cosine",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let docs = TestDir::new();
    let long = long_text(40, "a long report");
    std::fs::write(docs.path().join("long.txt"), &long).unwrap();
    std::fs::write(docs.path().join("short.txt"), "Bread is baked in an oven.").unwrap();
    let model = minilm_dir();
    let dir = docs.path().to_str().unwrap();
    let out = quiver(&[
        "ingest",
        "--collection",
        "docs",
        "--model-source",
        &model,
        dir,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let out = quiver(&[
        "ingest",
        "--collection",
        "whole",
        "--model-source",
        &model,
        "--no-chunking",
        dir,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("long.txt"), "{stderr}");
    assert!(stderr.contains("exceed the limit of 256"), "{stderr}");
    assert!(stderr.contains("chunk it, or truncate it"), "{stderr}");
    assert!(
        stderr.contains("1 files into `whole`: 1 points"),
        "{stderr}"
    );
    assert!(stderr.contains("1 skipped"), "{stderr}");

    let server = QuiverProcess::start_in(&data.path().join("db"), &[]).unwrap();
    let c = server.client();
    let points = chunks_of(&c, "docs", docs.path().join("long.txt").to_str().unwrap());
    assert!(points.len() >= 3, "{} chunks", points.len());
    let enc = quiver_encoder::Encoder::load(
        &model,
        &quiver_encoder::Device::Cpu,
        quiver_encoder::DType::F32,
    )
    .unwrap();
    let pieces: Vec<String> = points
        .iter()
        .map(|p| p["payload"]["text"].as_str().unwrap().to_string())
        .collect();
    let want = enc
        .encode_texts(
            &pieces,
            "retrieval",
            quiver_encoder::PromptKind::Passage,
            None,
        )
        .unwrap();
    let mut sizes = Vec::new();
    for ((p, piece), want) in points.iter().zip(&pieces).zip(&want) {
        let tokens = enc.tokenizer().encode_raw(piece).unwrap().len();
        assert!(tokens + 2 <= 256, "{tokens} tokens");
        sizes.push(tokens);
        let got: Vec<f32> = serde_json::from_value(p["vector"].clone()).unwrap();
        assert!(got
            .iter()
            .zip(&want.single)
            .all(|(a, b)| (a - b).abs() < 1e-4));
    }
    // The default budget is the model's: chunks are mostly full.
    assert!(
        sizes.iter().sum::<usize>() / sizes.len() > 254 / 2,
        "{sizes:?}"
    );
}
