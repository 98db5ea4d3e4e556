//! Resolving a model name to a directory without any network crate.
//!
//! A name is either a local directory or a Hugging Face repo id (`org/name`) that is already
//! in the standard hub cache: `<cache>/models--org--name/snapshots/<rev>/`, where `<rev>` is
//! the commit that `refs/<revision>` (default `main`) names. With the `hf-hub` feature a repo id
//! missing from the cache is downloaded into it (the files the loader reads, nothing else).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The hub cache directories to look in, most specific first.
#[derive(Debug, Clone, Default)]
pub struct HubCache {
    pub dirs: Vec<PathBuf>,
}

impl HubCache {
    /// The cache the `huggingface_hub` library would use: `$HF_HUB_CACHE`, else
    /// `$HF_HOME/hub`, else `~/.cache/huggingface/hub` (honouring `$XDG_CACHE_HOME`).
    pub fn from_env() -> Self {
        let mut dirs = Vec::new();
        if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
            dirs.push(PathBuf::from(p));
        }
        if let Some(p) = std::env::var_os("HF_HOME").filter(|p| !p.is_empty()) {
            dirs.push(PathBuf::from(p).join("hub"));
        }
        if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
            dirs.push(PathBuf::from(p).join("huggingface").join("hub"));
        }
        if let Some(home) = std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            dirs.push(
                PathBuf::from(home)
                    .join(".cache")
                    .join("huggingface")
                    .join("hub"),
            );
        }
        dirs.dedup();
        HubCache { dirs }
    }
}

/// Resolves `source` using the environment's hub cache (see [`HubCache::from_env`]); with the
/// `hf-hub` feature, a repo id that is not cached is downloaded.
pub fn resolve_model_dir(source: &str) -> Result<PathBuf> {
    match resolve_model_dir_in(source, &HubCache::from_env()) {
        #[cfg(feature = "hf-hub")]
        Err(Error::ModelNotFound { .. }) if !Path::new(source).exists() && source.contains('/') => {
            download(source)
        }
        other => other,
    }
}

/// Downloads what the loader reads of `org/name[@revision]` into the hub cache and returns the
/// snapshot directory: configs, tokenizer, the adapters and every shard the index names.
#[cfg(feature = "hf-hub")]
fn download(source: &str) -> Result<PathBuf> {
    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Repo, RepoType};

    let (repo_id, revision) = source.split_once('@').unwrap_or((source, "main"));
    let failed = |e: &dyn std::fmt::Display| Error::ModelNotFound {
        source_name: source.to_string(),
        hint: format!("not in the Hugging Face cache, and downloading it failed: {e}"),
    };
    let api = ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| failed(&e))?;
    let repo = api.repo(Repo::with_revision(
        repo_id.to_string(),
        RepoType::Model,
        revision.to_string(),
    ));
    tracing::info!(
        repo = repo_id,
        revision,
        "downloading the model into the Hugging Face cache"
    );
    let config = repo.get("config.json").map_err(|e| failed(&e))?;
    let index_path = repo
        .get("model.safetensors.index.json")
        .map_err(|e| failed(&e))?;
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).map_err(|e| failed(&e))?)
            .map_err(|e| failed(&e))?;
    let mut shards: Vec<String> = index["weight_map"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    shards.sort();
    shards.dedup();
    if shards.is_empty() {
        return Err(failed(&"model.safetensors.index.json names no shards"));
    }
    let mut files = vec![
        "tokenizer.json".to_string(),
        "adapters/adapter_config.json".to_string(),
        "adapters/adapter_model.safetensors".to_string(),
    ];
    files.extend(shards);
    for file in &files {
        repo.get(file)
            .map_err(|e| failed(&format!("{file}: {e}")))?;
    }
    // Optional: present in jina-embeddings-v4, read for images only.
    let _ = repo.get("preprocessor_config.json");
    config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| failed(&"unexpected cache layout"))
}

/// Resolves `source` (a directory, `org/name` or `org/name@revision`) against `cache`.
pub fn resolve_model_dir_in(source: &str, cache: &HubCache) -> Result<PathBuf> {
    let as_path = Path::new(source);
    if as_path.is_dir() {
        return Ok(as_path.to_path_buf());
    }
    let (repo, revision) = match source.split_once('@') {
        Some((r, rev)) => (r, rev),
        None => (source, "main"),
    };
    let looks_like_id = repo.split('/').count() == 2
        && !repo.starts_with('/')
        && !repo.starts_with('.')
        && repo.split('/').all(|p| !p.is_empty());
    if !looks_like_id {
        return Err(not_found(source, "it is not a directory"));
    }
    let folder = format!("models--{}", repo.replace('/', "--"));
    for dir in &cache.dirs {
        let root = dir.join(&folder);
        if !root.is_dir() {
            continue;
        }
        let snapshots = root.join("snapshots");
        // A revision is a ref name (refs/main holds the commit) or a commit hash itself.
        let refs = root.join("refs").join(revision);
        let commit = match std::fs::read_to_string(&refs) {
            Ok(s) => s.trim().to_string(),
            Err(_) => revision.to_string(),
        };
        let snap = snapshots.join(&commit);
        if snap.join("config.json").is_file() {
            return Ok(snap);
        }
        // No usable ref: accept a lone complete snapshot (caches copied between machines
        // often lose refs/).
        if revision == "main" {
            let complete: Vec<PathBuf> = std::fs::read_dir(&snapshots)
                .map(|it| {
                    it.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.join("config.json").is_file())
                        .collect()
                })
                .unwrap_or_default();
            if complete.len() == 1 {
                return Ok(complete.into_iter().next().expect("one element"));
            }
        }
    }
    let searched = cache
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(not_found(
        source,
        &format!("not in the Hugging Face cache (searched: {searched})"),
    ))
}

fn not_found(source: &str, why: &str) -> Error {
    let repo = source.split('@').next().unwrap_or(source);
    Error::ModelNotFound {
        source_name: source.to_string(),
        hint: format!(
            "{why}; download it first with `huggingface-cli download {repo}` (or `hf download \
             {repo}`), which fills the cache that HF_HUB_CACHE / HF_HOME point to, or pass a \
             local directory holding config.json, tokenizer.json and the safetensors files (a \
             build with `--features hf-hub` downloads missing models itself)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, body: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }

    #[test]
    fn finds_snapshot_through_ref() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("models--org--m");
        write(&root.join("refs/main"), "abc123\n");
        write(&root.join("snapshots/abc123/config.json"), "{}");
        write(&root.join("snapshots/zzz/config.json"), "{}");
        let cache = HubCache {
            dirs: vec![tmp.path().to_path_buf()],
        };
        let dir = resolve_model_dir_in("org/m", &cache).unwrap();
        assert!(dir.ends_with("snapshots/abc123"));
        let dir = resolve_model_dir_in("org/m@zzz", &cache).unwrap();
        assert!(dir.ends_with("snapshots/zzz"));
    }

    #[test]
    fn missing_model_says_how_to_download() {
        let cache = HubCache { dirs: vec![] };
        let err = resolve_model_dir_in("jinaai/jina-embeddings-v4", &cache).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("huggingface-cli download jinaai/jina-embeddings-v4"),
            "{msg}"
        );
        let err = resolve_model_dir_in("./no/such/dir", &cache).unwrap_err();
        assert!(matches!(err, Error::ModelNotFound { .. }));
    }
}
