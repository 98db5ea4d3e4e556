//! `POST /collections/{c}/documents` with the tiny jina-v4 fixture: whole documents are chunked with
//! the model's tokens, each chunk embedded with the collection's bindings (dense and per-token
//! vectors equal the library's passage embeddings of the chunk's text), the answer lists each
//! document's points, a changed document replaces its chunks, and bad requests are 4xx naming the
//! problem with nothing written. Late chunking (on by default for this long-context model) pools
//! each chunk from one pass over its whole document, as the library's `embed_spans` does.

use serde_json::{json, Value};

use crate::http_embed::{encoder, fixture, library};
use crate::support::{Client, QuiverProcess};

fn text(paragraphs: usize) -> String {
    (0..paragraphs)
        .map(|p| format!("Section {p}. Rivers run to the sea. Ovens warm the bakery at dawn."))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn count(c: &Client) -> u64 {
    c.ok(
        "POST",
        "/collections/bound/points/count",
        Some(&json!({"exact": true})),
    )["count"]
        .as_u64()
        .unwrap()
}

fn retrieve(c: &Client, ids: &Value) -> Vec<Value> {
    c.ok(
        "POST",
        "/collections/bound/points",
        Some(&json!({"ids": ids, "with_payload": true, "with_vector": true})),
    )
    .as_array()
    .unwrap()
    .clone()
}

#[test]
fn documents_are_chunked_embedded_and_replaced() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    c.ok(
        "PUT",
        "/collections/bound",
        Some(&json!({
            "vectors": {
                "dense": {"size": 32, "distance": "Cosine"},
                "colbert": {"size": 16, "distance": "Cosine",
                            "multivector_config": {"comparator": "max_sim"}}
            },
            "embedding": {"dense": {"model": "tiny"}, "colbert": {"model": "tiny"}}
        })),
    );
    let long = text(5);
    let body = json!({
        "documents": [
            {"id": "report", "text": long, "payload": {"source": "notes"},
             "pages": [{"number": 1, "start": 0}, {"number": 2, "start": 60}]},
            {"id": 42, "text": "Bread is baked in an oven."}
        ],
        "chunking": {"max_tokens": 20, "overlap": 3, "late": false}
    });
    let answer = c.ok("POST", "/collections/bound/documents", Some(&body));
    let docs = answer["documents"].as_array().unwrap();
    assert_eq!(docs[0]["id"], "report");
    assert_eq!(docs[1], json!({"id": 42, "points": [42], "upserted": 1}));
    let ids = docs[0]["points"].clone();
    let n = ids.as_array().unwrap().len();
    assert!(n >= 5, "{n} chunks");
    assert_eq!(docs[0]["upserted"], n);
    assert_eq!(count(&c), n as u64 + 1);

    let chars: Vec<char> = long.chars().collect();
    for (i, p) in retrieve(&c, &ids).iter().enumerate() {
        let payload = &p["payload"];
        assert_eq!(payload["doc_id"], "report");
        assert_eq!(payload["chunk"], i);
        assert_eq!(payload["source"], "notes");
        let (start, end) = (
            payload["start"].as_u64().unwrap() as usize,
            payload["end"].as_u64().unwrap() as usize,
        );
        let piece: String = chars[start..end].iter().collect();
        assert_eq!(payload["text"], piece.as_str());
        assert_eq!(payload["page"], if start < 60 { 1 } else { 2 }, "{payload}");
        let want = library(&[piece.as_str()], "retrieval", "passage", Some(32)).remove(0);
        let dense: Vec<f32> = serde_json::from_value(p["vector"]["dense"].clone()).unwrap();
        assert!(dense
            .iter()
            .zip(&want.single)
            .all(|(a, b)| (a - b).abs() < 1e-5));
        let rows = p["vector"]["colbert"].as_array().unwrap();
        assert_eq!(rows.len(), want.multi.num_tokens());
        let tokens = encoder().tokenizer().encode_raw(&piece).unwrap().len();
        assert!(tokens <= 20, "chunk {i}: {tokens} tokens");
    }
    let single = &retrieve(&c, &json!([42]))[0];
    assert_eq!(single["payload"]["doc_id"], 42);
    assert_eq!(single["payload"]["text"], "Bread is baked in an oven.");

    // Sent again unchanged with skip_unchanged, nothing is embedded; the ids are the same.
    let mut again = body.clone();
    again["skip_unchanged"] = json!(true);
    let answer = c.ok("POST", "/collections/bound/documents", Some(&again));
    assert_eq!(answer["documents"][0]["points"], ids);
    assert_eq!(answer["documents"][0]["upserted"], 0);
    assert_eq!(answer["documents"][1]["upserted"], 0);

    // A changed document replaces all its chunks.
    let answer = c.ok(
        "POST",
        "/collections/bound/documents",
        Some(&json!({"documents": [{"id": "report", "text": "Only one short line now."}]})),
    );
    let now = answer["documents"][0]["points"].as_array().unwrap().clone();
    assert_eq!(now.len(), 1);
    assert_eq!(count(&c), 2);
    let page = c.ok(
        "POST",
        "/collections/bound/points/scroll",
        Some(
            &json!({"filter": {"must": [{"key": "doc_id", "match": {"value": "report"}}]},
                     "with_payload": true}),
        ),
    );
    assert_eq!(page["points"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["points"][0]["payload"]["text"],
        "Only one short line now."
    );

    // Chunking off: one point per document.
    let answer = c.ok(
        "POST",
        "/collections/bound/documents",
        Some(&json!({"documents": [{"id": "whole", "text": long}],
                     "chunking": {"enabled": false}})),
    );
    assert_eq!(
        answer["documents"][0]["points"].as_array().unwrap().len(),
        1
    );
    assert_eq!(count(&c), 3);

    // Bad requests: 4xx naming the problem, nothing written.
    for (body, status, needle) in [
        (
            json!({"documents": [{"id": [1], "text": "x"}]}),
            400,
            "documents[0].id",
        ),
        (
            json!({"documents": [{"id": "a", "text": "x", "image": "y"}]}),
            400,
            "either `text` or `image`",
        ),
        (
            json!({"documents": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}),
            400,
            "given twice",
        ),
        (
            json!({"documents": [{"id": "a", "text": "  "}]}),
            400,
            "document `a`: its text is empty",
        ),
        (
            json!({"documents": [{"id": u64::MAX, "text": "x"}]}),
            400,
            "give it as a string",
        ),
        (
            json!({"documents": [{"id": "a", "text": "x"}], "chunking": {"truncate": true}}),
            400,
            "chunking.truncate",
        ),
        (
            json!({"documents": [{"id": "a", "text": "x"}], "chunking": {"enabled": false, "overlap": 2}}),
            400,
            "chunking.overlap",
        ),
        (
            json!({"documents": [{"id": "a", "text": "x"}], "chunking": {"enabled": false, "late": true}}),
            400,
            "chunking.late",
        ),
        (
            json!({"documents": [{"id": "a", "text": "x"}], "chunking": {"max_tokens": 8, "overlap": 4}}),
            400,
            "overlap of 4 tokens",
        ),
        (
            json!({"documents": [{"id": "a", "text": "x"}], "chunking": {"max_tokens": 1000000}}),
            400,
            "more than model `tiny` takes",
        ),
        (
            json!({"documents": [{"id": "a", "text": "x"}], "vectors": ["sparse"]}),
            400,
            "vector `sparse` does not exist",
        ),
        (
            json!({"documents": [{"id": "a", "text": "x", "pages": [{"number": 1, "start": 5}]}]}),
            400,
            "past the text's end",
        ),
        (
            json!({"documents": [{"id": "a", "text": "x"}], "chunk": {}}),
            400,
            "chunk",
        ),
    ] {
        let message = c.err("POST", "/collections/bound/documents", Some(&body), status);
        assert!(message.contains(needle), "{body}: {message}");
    }
    // One bad document among good ones: nothing is written.
    c.err(
        "POST",
        "/collections/bound/documents",
        Some(&json!({"documents": [{"id": "fine", "text": text(3)}, {"id": "bad", "text": ""}]})),
        400,
    );
    assert_eq!(count(&c), 3);
    let message = c.err(
        "POST",
        "/collections/nope/documents",
        Some(&json!({"documents": [{"id": "a", "text": "x"}]})),
        404,
    );
    assert!(message.contains("nope"), "{message}");
}

/// Late chunking, the default for a model of 8192 tokens or more: the same chunks as plain chunking,
/// with vectors pooled from one pass over the document (the library's `embed_spans`), which are
/// not the chunks' own plain vectors; a changed document embeds all its chunks again.
#[test]
fn late_chunking_pools_chunks_from_the_whole_document() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    c.ok(
        "PUT",
        "/collections/bound",
        Some(&json!({
            "vectors": {
                "dense": {"size": 32, "distance": "Cosine"},
                "colbert": {"size": 16, "distance": "Cosine",
                            "multivector_config": {"comparator": "max_sim"}}
            },
            "embedding": {"dense": {"model": "tiny"}, "colbert": {"model": "tiny"}}
        })),
    );
    let long = text(5);
    let send_text = |id: &str, text: &str, late: Option<bool>| {
        let mut chunking = json!({"max_tokens": 20, "overlap": 3});
        if let Some(late) = late {
            chunking["late"] = json!(late);
        }
        let body = json!({"documents": [{"id": id, "text": text}], "chunking": chunking,
                          "skip_unchanged": true});
        let answer = c.ok("POST", "/collections/bound/documents", Some(&body));
        answer["documents"][0].clone()
    };
    let send = |id: &str, late: Option<bool>| send_text(id, &long, late);
    let late = send("late", None);
    let plain = send("plain", Some(false));
    let late_points = retrieve(&c, &late["points"]);
    let plain_points = retrieve(&c, &plain["points"]);
    assert!(late_points.len() >= 5, "{} chunks", late_points.len());
    assert_eq!(late_points.len(), plain_points.len());

    let enc = encoder();
    let spans: Vec<std::ops::Range<usize>> = late_points
        .iter()
        .map(|p| {
            let payload = &p["payload"];
            payload["start"].as_u64().unwrap() as usize..payload["end"].as_u64().unwrap() as usize
        })
        .collect();
    let want = enc
        .embed_spans(
            &long,
            &spans,
            &quiver_encoder::LateChunkOptions {
                dims: Some(32),
                ..quiver_encoder::LateChunkOptions::passage("retrieval")
            },
        )
        .unwrap();
    let dense =
        |p: &Value| -> Vec<f32> { serde_json::from_value(p["vector"]["dense"].clone()).unwrap() };
    let close = |a: &[f32], b: &[f32]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    };
    for (i, (lp, pp)) in late_points.iter().zip(&plain_points).enumerate() {
        // The same chunk either way.
        assert_eq!(lp["payload"]["text"], pp["payload"]["text"]);
        assert_eq!(lp["payload"]["start"], pp["payload"]["start"]);
        assert!(
            close(&dense(lp), &want[i].single),
            "chunk {i}: not embed_spans' vector"
        );
        let rows: Vec<Vec<f32>> = serde_json::from_value(lp["vector"]["colbert"].clone()).unwrap();
        let want_rows: Vec<Vec<f32>> = want[i].multi.rows().map(<[f32]>::to_vec).collect();
        assert_eq!(rows.len(), want_rows.len(), "chunk {i} token vectors");
        // Multivectors are stored in f16: their rows match to f16's precision.
        let close_f16 = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-3)
        };
        assert!(
            rows.iter().zip(&want_rows).all(|(a, b)| close_f16(a, b)),
            "chunk {i} token vectors"
        );
        // Plain chunking gives each chunk its own vector, which late chunking does not.
        let piece = pp["payload"]["text"].as_str().unwrap();
        let alone = library(&[piece], "retrieval", "passage", Some(32)).remove(0);
        assert!(close(&dense(pp), &alone.single), "chunk {i}: plain vector");
        assert!(
            !close(&dense(lp), &dense(pp)),
            "chunk {i}: late equals plain"
        );
    }

    // Unchanged: nothing embedded. Changed at the end: every chunk is embedded again, since each
    // chunk's vector reads the whole document.
    assert_eq!(send("late", None)["upserted"], 0);
    let changed = send_text("late", &format!("{long}\n\nA new closing paragraph."), None);
    let n = changed["points"].as_array().unwrap().len();
    assert!(n > late_points.len());
    assert_eq!(changed["upserted"], n, "{changed}");
}

#[test]
fn without_a_model_the_server_says_how_to_add_one() {
    let server = QuiverProcess::start(&[]);
    let c = server.client();
    c.create_single("plain", 4, "Cosine");
    let message = c.err(
        "POST",
        "/collections/plain/documents",
        Some(&json!({"documents": [{"id": "a", "text": "x"}]})),
        400,
    );
    assert!(message.contains("--model"), "{message}");
    let log = server.log();
    assert!(
        log.contains("--model minilm=sentence-transformers/all-MiniLM-L6-v2"),
        "{log}"
    );
}
