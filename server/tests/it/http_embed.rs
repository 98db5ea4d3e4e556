//! `/embed`, `/embed_all`, `/v1/embeddings` and `/v1/models` through the real binary on the tiny random
//! jina-v4 checkpoint of the test fixtures: the vectors are the encoder library's (which the encoder's
//! parity tests hold to transformers' goldens), both dialects agree, errors are 4xx in each dialect's
//! shape, and a full queue answers 429 with Retry-After.

use std::path::PathBuf;

use quiver_encoder::{
    DType, Device, Embedding, Encoder, LoadOptions, PromptKind, TextOptions, Truncation,
    DEFAULT_MAX_LENGTH,
};
use serde_json::{json, Value};

use crate::cli_embed::{close, floats};
use crate::support::{Client, QuiverProcess};

pub fn fixture() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/jina-tiny")
        .to_str()
        .unwrap()
        .to_string()
}

/// The tiny fixture loaded by the encoder library: the reference the server is compared with.
pub fn encoder() -> Encoder {
    Encoder::load_with(
        &fixture(),
        &LoadOptions {
            device: Device::Cpu,
            dtype: DType::F32,
            merge_task: None,
            cpu_f16_weights: false,
        },
    )
    .unwrap()
}

pub fn library(texts: &[&str], task: &str, prompt: &str, dims: Option<usize>) -> Vec<Embedding> {
    let encoder = encoder();
    let opts = TextOptions {
        task: task.into(),
        prompt: prompt.parse::<PromptKind>().unwrap(),
        dims,
        truncation: Truncation {
            max_length: DEFAULT_MAX_LENGTH,
            truncate: false,
        },
    };
    encoder.encode_texts_with(texts, &opts).unwrap()
}

/// Decodes standard base64 of little-endian f32s (written here, independently of the server's).
fn decode_base64_f32(s: &str) -> Vec<f32> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut bytes = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let n = chunk
            .iter()
            .map(|&c| if c == b'=' { 0 } else { value(c) })
            .fold(0u32, |acc, v| (acc << 6) | v);
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        bytes.extend_from_slice(&three[..3 - pad]);
    }
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn post(c: &Client, path: &str, body: &Value) -> (u16, Value) {
    let (status, text) = c
        .send("POST", path, &[], Some(body.to_string().into_bytes()))
        .unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

#[test]
fn embeddings_equal_the_encoders_in_both_dialects() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    let texts = [
        "What is the weather like in Berlin today?",
        "Berlin is the capital of Germany.",
    ];

    // TEI: single vectors, query prompt and retrieval task by default.
    let want = library(&texts, "retrieval", "query", None);
    let (status, got) = post(&c, "/embed", &json!({"inputs": texts}));
    assert_eq!(status, 200, "{got}");
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), 2);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        close(&floats(g), &w.single, &format!("/embed text {i}"));
    }
    // One string is one vector too.
    let (_, one) = post(&c, "/embed", &json!({"inputs": texts[0], "truncate": true}));
    close(&floats(&one[0]), &want[0].single, "/embed one string");

    // Task, prompt and a Matryoshka dimension.
    let want_code = library(&texts, "code", "passage", Some(32));
    let (status, got) = post(
        &c,
        "/embed",
        &json!({"inputs": texts, "task": "code", "prompt_name": "passage", "dimensions": 32}),
    );
    assert_eq!(status, 200, "{got}");
    for (i, w) in want_code.iter().enumerate() {
        close(
            &floats(&got[i]),
            &w.single,
            &format!("/embed code passage {i}"),
        );
    }

    // Per-token vectors.
    let (status, got) = post(&c, "/embed_all", &json!({"inputs": texts}));
    assert_eq!(status, 200, "{got}");
    for (i, w) in want.iter().enumerate() {
        let rows: Vec<&[f32]> = w.multi.rows().collect();
        let matrix = got[i].as_array().unwrap();
        assert_eq!(matrix.len(), rows.len(), "text {i}: token rows");
        for (r, (g, row)) in matrix.iter().zip(rows).enumerate() {
            close(&floats(g), row, &format!("/embed_all text {i} token {r}"));
        }
    }

    // OpenAI: floats, then base64 of the same vectors; usage counts tokens with the prompt.
    let (status, got) = post(
        &c,
        "/v1/embeddings",
        &json!({"model": "tiny", "input": texts}),
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["object"], "list");
    assert_eq!(got["model"], "tiny");
    let tokens: usize = want.iter().map(|w| w.multi.num_tokens()).sum();
    assert_eq!(
        got["usage"],
        json!({"prompt_tokens": tokens, "total_tokens": tokens})
    );
    for (i, w) in want.iter().enumerate() {
        assert_eq!(got["data"][i]["object"], "embedding");
        assert_eq!(got["data"][i]["index"], i);
        close(
            &floats(&got["data"][i]["embedding"]),
            &w.single,
            "openai float",
        );
    }
    let (status, got) = post(
        &c,
        "/v1/embeddings",
        &json!({"model": "tiny", "input": texts[1], "encoding_format": "base64", "dimensions": 16}),
    );
    assert_eq!(status, 200, "{got}");
    let want16 = library(&texts[1..], "retrieval", "query", Some(16));
    let decoded = decode_base64_f32(got["data"][0]["embedding"].as_str().unwrap());
    close(&decoded, &want16[0].single, "openai base64");

    let models = c.ok_raw("GET", "/v1/models");
    assert_eq!(
        models,
        json!({"object": "list", "data": [{"id": "tiny", "object": "model", "created": 0, "owned_by": "quiver"}]})
    );
    let (_, metrics) = c.send("GET", "/metrics", &[], None).unwrap();
    let inputs: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("quiver_encoder_inputs_total{model=\"tiny\"} "))
        .expect("encoder metrics")
        .parse()
        .unwrap();
    assert!(inputs >= 9.0, "{inputs}");
    // One request at a time on an idle encoder: each ran on its own request's thread.
    assert!(crate::http_documents::inline_passes(&c) >= 5.0);
    assert!(metrics.contains("quiver_model_ready{model=\"tiny\"} 1"));
}

#[test]
fn embedding_errors_are_clear_in_each_dialect() {
    let server = QuiverProcess::start(&["--model", &format!("tiny={}", fixture())]);
    let c = server.client();
    let tei_bad = [
        (json!({"inputs": []}), 400, "no input"),
        (json!({"inputs": [""]}), 400, "empty"),
        (json!({"inputs": "a", "task": "poetry"}), 400, "retrieval"),
        (json!({"inputs": "a", "prompt_name": "doc"}), 400, "passage"),
        (json!({"inputs": "a", "dimensions": 7}), 400, "16"),
        (
            json!({"inputs": "a", "normalize": false}),
            400,
            "normalised",
        ),
        (
            json!({"inputs": "a", "truncation_direction": "Left"}),
            400,
            "Right",
        ),
        (json!({"inputs": "a", "dimension": 16}), 400, "dimension"),
        (json!({"inputs": "a", "model": "other"}), 404, "tiny"),
        (
            json!({"inputs": "word ".repeat(70_000)}),
            413,
            "tokens exceed",
        ),
    ];
    for (body, status, needle) in tei_bad {
        let (got_status, got) = post(&c, "/embed", &body);
        let shown: String = body.to_string().chars().take(120).collect();
        assert_eq!(got_status, status, "{shown}: {got}");
        let message = got["error"].as_str().unwrap_or_else(|| panic!("{got}"));
        assert!(message.contains(needle), "{shown}: {message}");
        assert_eq!(got["error_type"], "Validation");
    }
    let (status, got) = post(&c, "/embed_all", &json!({"inputs": "a", "dimensions": 16}));
    assert_eq!(status, 400, "{got}");

    let openai_bad = [
        (
            json!({"model": "nope", "input": "a"}),
            404,
            Some("model_not_found"),
        ),
        (json!({"model": "tiny", "input": [1, 2, 3]}), 400, None),
        (
            json!({"model": "tiny", "input": "a", "encoding_format": "hex"}),
            400,
            None,
        ),
        (json!({"input": "a"}), 400, None),
    ];
    for (body, status, code) in openai_bad {
        let (got_status, got) = post(&c, "/v1/embeddings", &body);
        assert_eq!(got_status, status, "{body}: {got}");
        let error = &got["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{got}"
        );
        assert_eq!(error["type"], "invalid_request_error", "{got}");
        assert_eq!(error["code"], json!(code), "{got}");
    }

    // Without --model the routes say how to configure one.
    let bare = QuiverProcess::start(&[]);
    let (status, got) = post(&bare.client(), "/embed", &json!({"inputs": "a"}));
    assert_eq!(status, 400);
    assert!(got["error"].as_str().unwrap().contains("--model"), "{got}");
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let server = QuiverProcess::start(&[
        "--model",
        &format!("tiny={}", fixture()),
        "--max-concurrent-requests",
        "1",
        "--max-batch-requests",
        "1",
    ]);
    let base = server.client().base().to_string();
    // One slow request holds the only slot: many long texts, one per forward pass.
    let long: Vec<String> = (0..400)
        .map(|i| format!("document {i} ") + &"many words in a long text ".repeat(40))
        .collect();
    let slow = {
        let base = base.clone();
        std::thread::spawn(move || {
            // The probes below may hold the slot when this arrives: retry until admitted.
            let c = Client::new(&base, None);
            loop {
                let status = post(&c, "/embed", &json!({"inputs": long})).0;
                if status != 429 {
                    return status;
                }
            }
        })
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut refused = None;
    while !slow.is_finished() {
        let mut response = agent
            .post(&format!("{base}/embed"))
            .header("content-type", "application/json")
            .send(json!({"inputs": "short"}).to_string())
            .unwrap();
        if response.status() == 429 {
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value =
                serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
            refused = Some((retry, body));
            break;
        }
    }
    assert_eq!(
        slow.join().unwrap(),
        200,
        "the slow request itself succeeds"
    );
    let (retry, body) = refused.expect("no 429 while the only slot was taken");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(body["error_type"], "Overloaded", "{body}");
    let (_, metrics) = server.client().send("GET", "/metrics", &[], None).unwrap();
    assert!(
        !metrics.contains("quiver_encoder_rejected_total{model=\"tiny\"} 0"),
        "rejections are counted"
    );
}

/// `serve --config FILE`: the file's settings apply, and flags on the command line override them.
#[test]
fn a_config_file_names_models_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quiver.toml");
    std::fs::write(
        &file,
        format!(
            "# the test's flags set --port 0, which overrides this\nport = 1\n\
             max_limit = 50\nmodel = [\"tiny={}\"]\n",
            fixture()
        ),
    )
    .unwrap();
    let server = QuiverProcess::start(&["--config", file.to_str().unwrap()]);
    let c = server.client();
    let models = c.ok_raw("GET", "/v1/models");
    assert_eq!(models["data"][0]["id"], "tiny", "{models}");
    c.ok(
        "PUT",
        "/collections/c",
        Some(&json!({"vectors": {"size": 4, "distance": "Dot"}})),
    );
    let msg = c.err(
        "POST",
        "/collections/c/points/query",
        Some(&json!({"query": [1.0, 0.0, 0.0, 0.0], "limit": 51})),
        422,
    );
    assert!(msg.contains("must not exceed 50"), "{msg}");
}

#[test]
fn tei_normalize_follows_the_model() {
    // A plain transformers checkpoint (no modules.json): mean pooling without Normalize, so its raw
    // vectors are not unit length. TEI's default normalises them; normalize=false returns them raw.
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bert-tiny");
    let plain = tempfile::tempdir().unwrap();
    for name in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(fixture.join(name), plain.path().join(name)).unwrap();
    }
    let server = QuiverProcess::start(&[
        "--model",
        &format!("plain={}", plain.path().display()),
        "--model",
        &format!("st={}", fixture.display()),
    ]);
    let c = server.client();
    let norm = |v: &Value| -> f32 {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
    };
    let text = "the cat sat on the mat";
    let embed = |body: Value| {
        let (status, v) = c.call("POST", "/embed", Some(&body));
        assert_eq!(status, 200, "{v}");
        v
    };
    let default = embed(json!({"inputs": text, "model": "plain"}));
    let raw = embed(json!({"inputs": text, "model": "plain", "normalize": false}));
    let (d, r) = (&default[0], &raw[0]);
    assert!((norm(d) - 1.0).abs() < 1e-4, "default: norm {}", norm(d));
    assert!((norm(r) - 1.0).abs() > 1e-2, "raw: norm {}", norm(r));
    // Same direction: the default is the raw vector divided by its norm.
    let nr = norm(r);
    for (a, b) in d.as_array().unwrap().iter().zip(r.as_array().unwrap()) {
        let (a, b) = (a.as_f64().unwrap() as f32, b.as_f64().unwrap() as f32);
        assert!((a - b / nr).abs() < 1e-5);
    }
    // The sentence-transformers pipeline ends in Normalize: nothing raw to return.
    let (status, v) = c.call(
        "POST",
        "/embed",
        Some(&json!({"inputs": text, "model": "st", "normalize": false})),
    );
    let err = v["error"].as_str().unwrap_or_default();
    assert_eq!(status, 400, "{v}");
    assert!(err.contains("`st`") && err.contains("normalised"), "{v}");
    assert_eq!(v["error_type"], "Validation");
}
