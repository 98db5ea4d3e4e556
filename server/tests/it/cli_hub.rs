//! Models named by a Hugging Face repo id, downloaded by the real binary from a stand-in hub on
//! loopback (`tests/support/fake_hub.rs`) into the cache that `HF_HOME` names: `quiver embed` and
//! `quiver serve --model`, `HF_HUB_OFFLINE`, and what `serve` says without a model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quiver_encoder::{DType, Device, Encoder, PromptKind};
use serde_json::{json, Value};

use crate::cli_embed::{close, floats};
use crate::fake_hub::{FakeHub, FakeRepo};
use crate::support::{QuiverProcess, TestDir};

const COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";
const REPO: &str = "quiver-test/bert-tiny";
const TEXT: &str = "a model fetched on first use";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bert-tiny")
}

fn hub() -> FakeHub {
    FakeHub::start(vec![FakeRepo::from_dir(REPO, COMMIT, &fixture())])
}

/// The hub variables for a run against `hub` with `hf_home` as the cache; the rest of the
/// test's environment is blanked (empty counts as unset), so a developer's own settings do not
/// leak in.
fn hub_env<'a>(hub: &'a FakeHub, hf_home: &'a Path, offline: bool) -> Vec<(&'a str, &'a str)> {
    vec![
        ("HF_ENDPOINT", hub.endpoint.as_str()),
        ("HF_HOME", hf_home.to_str().unwrap()),
        ("HF_HUB_CACHE", ""),
        ("HF_TOKEN", ""),
        ("HUGGING_FACE_HUB_TOKEN", ""),
        ("HF_TOKEN_PATH", ""),
        ("HF_HUB_OFFLINE", if offline { "1" } else { "" }),
        ("QUIVER_LOG", "warn"),
    ]
}

fn embed(model: &str, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["embed", "--model", model, TEXT])
        .envs(env.iter().copied())
        .output()
        .expect("spawn quiver")
}

fn dense(out: &Output) -> Vec<f32> {
    assert!(
        out.status.success(),
        "quiver embed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    floats(&line["dense"])
}

fn library() -> Vec<f32> {
    let enc = Encoder::load(fixture().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    enc.encode_texts(&[TEXT], "retrieval", PromptKind::Query, None)
        .unwrap()
        .remove(0)
        .single
}

#[test]
fn embed_downloads_a_repo_id_into_hf_home_then_runs_offline() {
    let hub = hub();
    let home = TestDir::new();
    let got = dense(&embed(REPO, &hub_env(&hub, home.path(), false)));
    close(&got, &library(), "downloaded vs fixture");
    let snapshot = home
        .path()
        .join("hub/models--quiver-test--bert-tiny/snapshots")
        .join(COMMIT);
    assert!(snapshot.join("config.json").is_file());
    assert!(snapshot.join("model.safetensors").is_file());

    // Cached now: offline works and asks nothing.
    hub.clear_log();
    let again = dense(&embed(REPO, &hub_env(&hub, home.path(), true)));
    assert_eq!(again, got);
    assert!(hub.log().is_empty(), "{:?}", hub.log());
}

#[test]
fn offline_without_the_model_says_so_and_asks_nothing() {
    let hub = hub();
    let home = TestDir::new();
    let out = embed(REPO, &hub_env(&hub, home.path(), true));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err}");
    assert!(
        err.contains(REPO) && err.contains("HF_HUB_OFFLINE"),
        "{err}"
    );
    assert!(err.contains(&format!("hf download {REPO}")), "{err}");
    assert!(hub.log().is_empty(), "{:?}", hub.log());
}

#[test]
fn a_failed_download_names_the_model_and_the_reason() {
    let hub = hub();
    let home = TestDir::new();
    let out = embed("quiver-test/missing", &hub_env(&hub, home.path(), false));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err}");
    assert!(
        err.contains("quiver-test/missing") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn serve_downloads_its_model_and_embeds_with_it() {
    let hub = hub();
    let home = TestDir::new();
    let data = TestDir::new();
    let server = QuiverProcess::start_in_with_env(
        data.path(),
        &["--model", &format!("tiny={REPO}")],
        &hub_env(&hub, home.path(), false),
    )
    .expect("quiver serve starts");
    let (status, body) = server
        .client()
        .call("POST", "/embed", Some(&json!({"inputs": [TEXT]})));
    assert_eq!(status, 200, "{body}");
    close(&floats(&body[0]), &library(), "served vs fixture");
}

#[test]
fn serve_without_a_model_says_how_to_add_one() {
    let server = QuiverProcess::start(&[]);
    let log = server.log();
    assert!(
        log.contains("no embedding model") && log.contains("--model"),
        "{log}"
    );
}
