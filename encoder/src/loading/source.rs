//! Resolving a model name to a directory without any network crate.
//!
//! A name is either a local directory or a Hugging Face repo id (`org/name`) that is already
//! in the standard hub cache: `<cache>/models--org--name/snapshots/<rev>/`, where `<rev>` is
//! the commit that `refs/<revision>` (default `main`) names. With the `download` feature (on by
//! default) a repo id missing from the cache is downloaded into it by [`super::hub`].

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
        Self::from_vars(&|name| std::env::var(name).ok())
    }

    /// As [`HubCache::from_env`], with `var` as the environment; empty values count as unset.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let mut dirs = Vec::new();
        if let Some(p) = var("HF_HUB_CACHE") {
            dirs.push(PathBuf::from(p));
        }
        if let Some(p) = var("HF_HOME") {
            dirs.push(PathBuf::from(p).join("hub"));
        }
        if let Some(p) = var("XDG_CACHE_HOME") {
            dirs.push(PathBuf::from(p).join("huggingface").join("hub"));
        }
        if let Some(home) = var("HOME") {
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
/// `download` feature (on by default), a repo id that is not cached is downloaded into it,
/// honouring `HF_ENDPOINT`, `HF_TOKEN` and `HF_HUB_OFFLINE` (see [`super::hub`]).
pub fn resolve_model_dir(source: &str) -> Result<PathBuf> {
    let cache = HubCache::from_env();
    let found = resolve_model_dir_in(source, &cache);
    #[cfg(feature = "download")]
    if let Err(Error::ModelNotFound { .. }) = &found {
        if let Some((repo, revision)) = split_repo_id(source) {
            if !Path::new(source).exists() {
                return download(source, repo, revision, &cache);
            }
        }
    }
    found
}

/// Downloads `org/name[@revision]` with the environment's settings and a progress bar.
#[cfg(feature = "download")]
fn download(source: &str, repo: &str, revision: &str, cache: &HubCache) -> Result<PathBuf> {
    use super::hub::{self, HubConfig, HubError, TerminalProgress};

    let config = HubConfig::from_env();
    hub::download(repo, revision, &config, &mut TerminalProgress::default()).map_err(|e| {
        let not_cached = format!(
            "not in the Hugging Face cache (searched: {})",
            searched(cache)
        );
        let why = match e {
            HubError::Offline { .. } => format!("{not_cached} and HF_HUB_OFFLINE is set"),
            e => format!("{not_cached}, and downloading it failed: {e}"),
        };
        not_found(source, &why)
    })
}

/// `org/name` and the revision (`main` unless `@revision` follows), if `source` has that shape.
fn split_repo_id(source: &str) -> Option<(&str, &str)> {
    let (repo, revision) = source.split_once('@').unwrap_or((source, "main"));
    let looks_like_id = repo.split('/').count() == 2
        && !repo.starts_with('.')
        && repo.split('/').all(|p| !p.is_empty())
        && !revision.is_empty();
    looks_like_id.then_some((repo, revision))
}

/// Resolves `source` (a directory, `org/name` or `org/name@revision`) against `cache`.
pub fn resolve_model_dir_in(source: &str, cache: &HubCache) -> Result<PathBuf> {
    let as_path = Path::new(source);
    if as_path.is_dir() {
        return Ok(as_path.to_path_buf());
    }
    let Some((repo, revision)) = split_repo_id(source) else {
        return Err(not_found(source, "it is not a directory"));
    };
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
    Err(not_found(
        source,
        &format!(
            "not in the Hugging Face cache (searched: {})",
            searched(cache)
        ),
    ))
}

fn searched(cache: &HubCache) -> String {
    cache
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn not_found(source: &str, why: &str) -> Error {
    let repo = source.split('@').next().unwrap_or(source);
    Error::ModelNotFound {
        source_name: source.to_string(),
        hint: format!(
            "{why}; download it first with `huggingface-cli download {repo}` (or `hf download \
             {repo}`), which fills the cache that HF_HUB_CACHE / HF_HOME point to, or pass a \
             local directory holding config.json, tokenizer.json and the safetensors files"
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
