//! Downloads from a stand-in hub on loopback (`tests/support/fake_hub.rs`, the hub's URLs and
//! headers): what is fetched and where it lands in the cache, that the downloaded model embeds
//! exactly as the fixture it came from, resuming (within a run and across runs), checksum
//! mismatches, the token, offline mode.

use std::path::{Path, PathBuf};

use quiver_encoder::loading::hub::{self, HubConfig, HubError, NoProgress, Progress};
use quiver_encoder::loading::{resolve_model_dir_in, HubCache};
use quiver_encoder::{DType, Device, Encoder, PromptKind};

use crate::fake_hub::{sha256_hex, FakeHub, FakeRepo};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const BERT: &str = "quiver-test/bert-tiny";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// bert-tiny as a repository, with a PyTorch copy of the weights that must not be fetched.
fn bert_repo() -> FakeRepo {
    let mut repo = FakeRepo::from_dir(BERT, COMMIT, &fixture("bert-tiny"));
    repo.files
        .insert("pytorch_model.bin".into(), vec![7u8; 100_000]);
    repo
}

fn config(hub: &FakeHub, cache: &Path) -> HubConfig {
    HubConfig {
        endpoint: hub.endpoint.clone(),
        cache_dir: Some(cache.to_path_buf()),
        token: None,
        offline: false,
        retries: 3,
    }
}

fn embed(dir: &Path) -> Vec<f32> {
    let enc = Encoder::load(dir.to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    let out = enc
        .encode_texts(
            &["a tiny model from the hub"],
            "retrieval",
            PromptKind::Query,
            None,
        )
        .unwrap();
    out[0].single.clone()
}

fn model_bytes() -> Vec<u8> {
    std::fs::read(fixture("bert-tiny/model.safetensors")).unwrap()
}

/// The partial file of bert-tiny's weights in `cache`.
fn partial(cache: &Path) -> PathBuf {
    cache
        .join("models--quiver-test--bert-tiny/blobs")
        .join(format!("{}.incomplete", sha256_hex(&model_bytes())))
}

#[derive(Default)]
struct Recorded(Vec<(String, u64, u64)>);

impl Progress for Recorded {
    fn start(&mut self, file: &str, size: u64, done: u64) {
        self.0.push((file.to_string(), size, done));
    }
    fn advance(&mut self, _bytes: u64) {}
    fn finish(&mut self) {}
}

#[test]
fn downloads_what_the_loader_reads_into_the_standard_cache_and_the_model_works() {
    let hub = FakeHub::start(vec![bert_repo()]);
    let cache = tempfile::tempdir().unwrap();
    let mut progress = Recorded::default();
    let snapshot = hub::download(BERT, "main", &config(&hub, cache.path()), &mut progress).unwrap();

    let root = cache.path().join("models--quiver-test--bert-tiny");
    assert_eq!(snapshot, root.join("snapshots").join(COMMIT));
    assert_eq!(
        std::fs::read_to_string(root.join("refs/main")).unwrap(),
        COMMIT
    );
    for file in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
        "model.safetensors",
    ] {
        let got = std::fs::read(snapshot.join(file)).unwrap();
        assert_eq!(
            got,
            std::fs::read(fixture("bert-tiny").join(file)).unwrap(),
            "{file}"
        );
        assert!(snapshot.join(file).is_symlink(), "{file} links into blobs/");
    }
    assert!(!snapshot.join("pytorch_model.bin").exists());
    assert!(!snapshot.join("goldens.json").exists());
    let blob = root.join("blobs").join(sha256_hex(&model_bytes()));
    assert_eq!(std::fs::read(blob).unwrap(), model_bytes());
    assert!(progress
        .0
        .contains(&("model.safetensors".into(), model_bytes().len() as u64, 0)));

    let log = hub.log();
    assert!(log.iter().all(|r| !r.path.contains("pytorch_model.bin")));
    assert!(
        log.iter().any(|r| r.host == "storage" && r.method == "GET"),
        "the weights came from the storage host: {log:?}"
    );

    // The cache lookup finds it, and it embeds exactly as the directory it was served from.
    let cache_dirs = HubCache {
        dirs: vec![cache.path().to_path_buf()],
    };
    assert_eq!(resolve_model_dir_in(BERT, &cache_dirs).unwrap(), snapshot);
    assert_eq!(embed(&snapshot), embed(&fixture("bert-tiny")));

    // A second download of a complete snapshot only asks for the revision.
    hub.clear_log();
    hub::download(BERT, "main", &config(&hub, cache.path()), &mut NoProgress).unwrap();
    let log = hub.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].path.starts_with("/api/models/"));
}

#[test]
fn a_sharded_checkpoint_with_adapters_downloads_and_embeds() {
    let repo = FakeRepo::from_dir("quiver-test/jina-tiny", COMMIT, &fixture("jina-tiny"));
    let hub = FakeHub::start(vec![repo]);
    let cache = tempfile::tempdir().unwrap();
    let snapshot = hub::download(
        "quiver-test/jina-tiny",
        COMMIT,
        &config(&hub, cache.path()),
        &mut NoProgress,
    )
    .unwrap();
    for file in [
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "adapters/adapter_config.json",
        "adapters/adapter_model.safetensors",
        "preprocessor_config.json",
    ] {
        assert!(snapshot.join(file).is_file(), "{file}");
    }
    assert!(!snapshot.join("goldens.safetensors").exists());
    assert!(!snapshot.join("images").exists());
    // Asked by commit: no ref to write.
    assert!(!cache
        .path()
        .join("models--quiver-test--jina-tiny/refs")
        .exists());
    assert_eq!(embed(&snapshot), embed(&fixture("jina-tiny")));
}

#[test]
fn a_transfer_cut_short_resumes_with_a_range_request() {
    let hub = FakeHub::start(vec![bert_repo()]);
    let cache = tempfile::tempdir().unwrap();
    hub.cut_after("model.safetensors", 1000);
    let snapshot =
        hub::download(BERT, "main", &config(&hub, cache.path()), &mut NoProgress).unwrap();
    assert_eq!(
        std::fs::read(snapshot.join("model.safetensors")).unwrap(),
        model_bytes()
    );
    let ranges: Vec<Option<String>> = hub
        .log()
        .into_iter()
        .filter(|r| r.host == "storage")
        .map(|r| r.range)
        .collect();
    assert_eq!(ranges, [None, Some("bytes=1000-".to_string())]);
}

#[test]
fn a_partial_file_left_by_an_earlier_run_is_resumed() {
    let hub = FakeHub::start(vec![bert_repo()]);
    let cache = tempfile::tempdir().unwrap();
    let mut no_retries = config(&hub, cache.path());
    no_retries.retries = 0;
    hub.cut_after("model.safetensors", 4096);
    let err = hub::download(BERT, "main", &no_retries, &mut NoProgress).unwrap_err();
    assert!(
        matches!(err, HubError::Incomplete { got: 4096, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    assert_eq!(
        std::fs::metadata(partial(cache.path())).unwrap().len(),
        4096
    );
    // Not complete, so not found in the cache.
    let cache_dirs = HubCache {
        dirs: vec![cache.path().to_path_buf()],
    };
    assert!(resolve_model_dir_in(BERT, &cache_dirs).is_err());

    hub.clear_log();
    let mut progress = Recorded::default();
    let snapshot = hub::download(BERT, "main", &no_retries, &mut progress).unwrap();
    assert_eq!(
        std::fs::read(snapshot.join("model.safetensors")).unwrap(),
        model_bytes()
    );
    assert!(!partial(cache.path()).exists());
    let storage: Vec<_> = hub
        .log()
        .into_iter()
        .filter(|r| r.host == "storage")
        .collect();
    assert_eq!(storage.len(), 1);
    assert_eq!(storage[0].range.as_deref(), Some("bytes=4096-"));
    assert!(progress
        .0
        .contains(&("model.safetensors".into(), model_bytes().len() as u64, 4096)));
    // Files fetched by the first run were not fetched again.
    assert!(hub
        .log()
        .iter()
        .all(|r| !r.path.ends_with("/tokenizer.json")));
    assert_eq!(resolve_model_dir_in(BERT, &cache_dirs).unwrap(), snapshot);
}

#[test]
fn a_checksum_mismatch_is_an_error_and_keeps_nothing() {
    let hub = FakeHub::start(vec![bert_repo()]);
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(&hub, cache.path());
    let cache_dirs = HubCache {
        dirs: vec![cache.path().to_path_buf()],
    };
    hub.corrupt("model.safetensors");
    let err = hub::download(BERT, "main", &cfg, &mut NoProgress).unwrap_err();
    let HubError::Checksum {
        file, algorithm, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!((file.as_str(), *algorithm), ("model.safetensors", "sha256"));
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(!partial(cache.path()).exists());
    let blob = cache
        .path()
        .join("models--quiver-test--bert-tiny/blobs")
        .join(sha256_hex(&model_bytes()));
    assert!(!blob.exists());
    assert!(resolve_model_dir_in(BERT, &cache_dirs).is_err());

    // A plain file is checked against its git blob id.
    hub.heal("model.safetensors");
    hub.corrupt("tokenizer.json");
    let other = tempfile::tempdir().unwrap();
    let err =
        hub::download(BERT, "main", &config(&hub, other.path()), &mut NoProgress).unwrap_err();
    assert!(
        matches!(&err, HubError::Checksum { file, algorithm: "git sha1", .. } if file == "tokenizer.json"),
        "{err}"
    );

    hub.heal("tokenizer.json");
    let snapshot = hub::download(BERT, "main", &cfg, &mut NoProgress).unwrap();
    assert_eq!(resolve_model_dir_in(BERT, &cache_dirs).unwrap(), snapshot);
}

#[test]
fn a_gated_repository_needs_the_token_which_stays_on_the_hub() {
    let mut repo = bert_repo();
    repo.token = Some("hf_test_token".into());
    let hub = FakeHub::start(vec![repo]);
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = config(&hub, cache.path());
    let err = hub::download(BERT, "main", &cfg, &mut NoProgress).unwrap_err();
    assert!(matches!(err, HubError::Denied { status: 401, .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("HF_TOKEN") && msg.contains("restricted"),
        "{msg}"
    );

    hub.clear_log();
    cfg.token = Some("hf_test_token".into());
    hub::download(BERT, "main", &cfg, &mut NoProgress).unwrap();
    let log = hub.log();
    assert!(log.iter().any(|r| r.host == "storage"));
    for r in &log {
        let want = (r.host == "hub").then(|| "Bearer hf_test_token".to_string());
        assert_eq!(r.authorization, want, "{r:?}");
    }
}

#[test]
fn unknown_repositories_and_revisions_name_what_was_asked() {
    let hub = FakeHub::start(vec![bert_repo()]);
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(&hub, cache.path());
    let err = hub::download("quiver-test/nope", "main", &cfg, &mut NoProgress).unwrap_err();
    assert!(matches!(err, HubError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("quiver-test/nope"), "{err}");
    let err = hub::download(BERT, "v9", &cfg, &mut NoProgress).unwrap_err();
    assert!(err.to_string().contains("v9"), "{err}");
}

#[test]
fn offline_mode_sends_nothing() {
    let hub = FakeHub::start(vec![bert_repo()]);
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = config(&hub, cache.path());
    cfg.offline = true;
    let err = hub::download(BERT, "main", &cfg, &mut NoProgress).unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err}");
    assert!(err.to_string().contains("HF_HUB_OFFLINE"), "{err}");
    assert!(hub.log().is_empty());
}
