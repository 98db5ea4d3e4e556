//! `quiver embed` through the real binary, on the tiny random jina-v4 checkpoint of the test fixtures:
//! the printed vectors are the encoder library's (which the encoder's parity tests hold to
//! transformers' goldens), token counts follow the golden token ids, and bad arguments fail clearly.

use std::path::PathBuf;
use std::process::{Command, Output};

use quiver_encoder::{
    DType, Device, Encoder, LoadOptions, PromptKind, TextOptions, Truncation, DEFAULT_MAX_LENGTH,
};
use serde_json::Value;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/jina-tiny")
}

fn embed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("embed")
        .args(args)
        .env("QUIVER_LOG", "warn")
        .output()
        .expect("spawn quiver")
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "quiver embed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

pub fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-6, "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn embed_prints_the_encoders_vectors() {
    let model = fixture();
    let model = model.to_str().unwrap();
    let goldens: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("goldens.json")).unwrap())
            .unwrap();
    let case = &goldens["e2e"][0];
    let (task, prompt, text) = (
        case["task"].as_str().unwrap(),
        case["prompt"].as_str().unwrap(),
        case["text"].as_str().unwrap(),
    );
    let other = "Berlin is the capital of Germany.";
    let out = embed(&[
        "--model", model, "--task", task, "--prompt", prompt, "--multi", text, other,
    ]);
    let got = lines(&out);
    assert_eq!(got.len(), 2);

    let encoder = Encoder::load_with(
        model,
        &LoadOptions {
            device: Device::Cpu,
            dtype: DType::F32,
            merge_task: None,
            cpu_f16_weights: false,
        },
    )
    .unwrap();
    let opts = TextOptions {
        task: task.into(),
        prompt: prompt.parse::<PromptKind>().unwrap(),
        dims: None,
        truncation: Truncation {
            max_length: DEFAULT_MAX_LENGTH,
            truncate: true,
        },
    };
    let want = encoder.encode_texts_with(&[text, other], &opts).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["index"], serde_json::json!(i));
        close(&floats(&g["dense"]), &w.single, &format!("text {i} dense"));
        let rows: Vec<&[f32]> = w.multi.rows().collect();
        let printed = g["multi"].as_array().unwrap();
        assert_eq!(printed.len(), rows.len(), "text {i} token rows");
        for (r, (p, row)) in printed.iter().zip(rows).enumerate() {
            close(&floats(p), row, &format!("text {i} token {r}"));
        }
        assert_eq!(g["tokens"], serde_json::json!(w.multi.num_tokens()));
    }
    assert_eq!(
        got[0]["tokens"].as_u64().unwrap() as usize,
        case["input_ids"].as_array().unwrap().len(),
        "token count of the golden case"
    );

    // A Matryoshka dimension: shorter, still unit length, and no multi-vectors unless asked.
    let dims = goldens["matryoshka_dims"][0].as_u64().unwrap().to_string();
    let got = lines(&embed(&["--model", model, "--dims", &dims, text]));
    let dense = floats(&got[0]["dense"]);
    assert_eq!(dense.len().to_string(), dims);
    let norm: f32 = dense.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    assert!(got[0].get("multi").is_none());
}

#[test]
fn embed_errors_name_the_problem() {
    let model = fixture();
    let model = model.to_str().unwrap();
    for (args, needle) in [
        (vec!["--model", model, "--task", "poetry", "x"], "poetry"),
        (vec!["--model", model, "--dims", "7", "x"], "7"),
        (
            vec!["--model", model, "--prompt", "question", "x"],
            "question",
        ),
        (
            vec!["--model", "/nonexistent/model/dir", "x"],
            "/nonexistent/model/dir",
        ),
    ] {
        let out = embed(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn embed_images_prints_the_encoders_vectors() {
    let model = fixture();
    let model = model.to_str().unwrap();
    let images = ["a", "c"].map(|n| fixture().join(format!("images/{n}.png")));
    let paths: Vec<&str> = images.iter().map(|p| p.to_str().unwrap()).collect();
    let out = embed(&[
        "--model", model, "--task", "code", "--multi", "--image", paths[0], "--image", paths[1],
    ]);
    let got = lines(&out);
    assert_eq!(got.len(), 2);
    let encoder = Encoder::load(model, &Device::Cpu, DType::F32).unwrap();
    let bytes: Vec<Vec<u8>> = images.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let want = encoder.encode_images(&bytes, "code", None).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["index"], serde_json::json!(i));
        close(&floats(&g["dense"]), &w.single, &format!("image {i} dense"));
        assert_eq!(g["tokens"], serde_json::json!(w.multi.num_tokens()));
        assert_eq!(
            g["multi"].as_array().unwrap().len(),
            w.multi.num_tokens(),
            "image {i} token rows"
        );
    }
}

#[test]
fn embed_image_errors_name_the_file() {
    let model = fixture();
    let model = model.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let not_image = dir.path().join("notes.png");
    std::fs::write(&not_image, "just text").unwrap();
    let missing = dir.path().join("missing.png");
    for path in [&not_image, &missing] {
        let p = path.to_str().unwrap();
        let out = embed(&["--model", model, "--image", p]);
        assert!(!out.status.success(), "{p} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(p), "{p}: {err}");
    }
    let out = embed(&["--model", model, "--image", "x.png", "some text"]);
    assert!(!out.status.success(), "texts and images together succeeded");
}

#[test]
fn embed_runs_a_bert_sentence_encoder() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bert-tiny");
    let model = dir.to_str().unwrap();
    let goldens: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("goldens.json")).unwrap()).unwrap();
    let texts: Vec<&str> = (0..2)
        .map(|i| goldens["texts"][i].as_str().unwrap())
        .collect();
    // The defaults (task retrieval, prompt query) are accepted; BERT ignores both.
    let got = lines(&embed(&["--model", model, texts[0], texts[1]]));
    assert_eq!(got.len(), 2);
    for (i, g) in got.iter().enumerate() {
        close(
            &floats(&g["dense"]),
            &floats(&goldens["embeddings"][i]),
            &format!("text {i}"),
        );
        let ids = goldens["input_ids"][i].as_array().unwrap().len();
        assert_eq!(g["tokens"], serde_json::json!(ids), "[CLS] and [SEP] count");
    }
    for (args, needle) in [
        (vec!["--multi"], "no per-token vectors"),
        (vec!["--dims", "16"], "valid dimensions: 32"),
    ] {
        let mut all = vec!["--model", model];
        all.extend(args);
        all.push(texts[0]);
        let out = embed(&all);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
    }
}
