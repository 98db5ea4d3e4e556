//! Downloading a model from the Hugging Face hub into the standard cache.
//!
//! Only the files the loader reads are fetched (see [`files`]): the revision's commit and file
//! list come from `GET {endpoint}/api/models/{repo}/revision/{revision}`, then each file from
//! `{endpoint}/{repo}/resolve/{commit}/{path}`, so every file is of the same commit. A partial
//! file (`blobs/<etag>.incomplete`) is resumed with `Range`, within a run (a few retries) and
//! across runs; the finished bytes must hash to the ETag (SHA-256 for LFS files, the git blob
//! id otherwise) before they become a blob. The snapshot's `config.json` is linked last, so a
//! snapshot that has one is complete: that is what [`super::resolve_model_dir_in`] looks for.

mod cache;
mod checksum;
mod client;
mod config;
mod error;
mod files;
mod progress;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use config::{HubConfig, DEFAULT_ENDPOINT};
pub use error::HubError;
pub use progress::{NoProgress, Progress, TerminalProgress};

use cache::RepoDir;
use checksum::Expected;
use client::{Client, FileMeta};

/// Downloads what the loader reads of `repo` (`org/name`) at `revision` (a branch, tag or
/// commit) into `config.cache_dir` and returns the snapshot directory. Files already in the
/// snapshot are not fetched again.
pub fn download(
    repo: &str,
    revision: &str,
    config: &HubConfig,
    progress: &mut dyn Progress,
) -> Result<PathBuf, HubError> {
    if config.offline {
        return Err(HubError::Offline {
            repo: repo.to_string(),
        });
    }
    let cache_dir = config.cache_dir.as_ref().ok_or(HubError::NoCacheDir)?;
    let client = Client::new(config);
    let info = client.repo_info(repo, revision)?;
    if info.sha.len() != 40 || !info.sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HubError::Protocol {
            url: config.endpoint.clone(),
            message: format!("{repo}@{revision}: {:?} is not a commit id", info.sha),
        });
    }
    let dir = RepoDir::new(cache_dir, repo);
    let snapshot = dir.snapshot(&info.sha);
    let present: BTreeSet<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    tracing::info!(
        repo,
        revision,
        commit = %info.sha,
        cache = %cache_dir.display(),
        "downloading the model into the Hugging Face cache"
    );

    // Each file is linked into the snapshot once it is complete, so that a run after a failed
    // one fetches only what is missing; config.json is linked last: its presence marks the
    // snapshot complete.
    let mut config_blob = None;
    let mut fetch = |file: &str| -> Result<PathBuf, HubError> {
        let in_snapshot = snapshot.join(file);
        if in_snapshot.is_file() {
            return Ok(in_snapshot);
        }
        if let Some(blob) = config_blob.as_ref().filter(|_| file == "config.json") {
            return Ok(PathBuf::clone(blob));
        }
        let url = client.file_url(repo, &info.sha, file);
        let blob = fetch_file(&client, &url, &dir.blobs(), file, config.retries, progress)?;
        if file == "config.json" {
            config_blob = Some(blob.clone());
        } else {
            cache::link(&snapshot, file, &blob)?;
        }
        Ok(blob)
    };
    let files = files::needed(repo, &present, &mut |file| {
        let path = fetch(file)?;
        std::fs::read_to_string(&path).map_err(|e| HubError::io(&path, e))
    })?;
    for file in &files {
        fetch(file)?;
    }
    if let Some(blob) = config_blob {
        cache::link(&snapshot, "config.json", &blob)?;
    }
    if revision != info.sha {
        dir.write_ref(revision, &info.sha)?;
    }
    tracing::info!(repo, snapshot = %snapshot.display(), files = files.len(), "model downloaded");
    Ok(snapshot)
}

/// Fetches one file into `blobs/<etag>` (unless that blob exists) and returns the blob's path.
fn fetch_file(
    client: &Client,
    url: &str,
    blobs: &Path,
    file: &str,
    retries: u32,
    progress: &mut dyn Progress,
) -> Result<PathBuf, HubError> {
    let meta = client.head(url)?;
    // The ETag becomes a file name: nothing but a plain name may come through.
    if meta.etag.is_empty()
        || !meta
            .etag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(HubError::Protocol {
            url: url.to_string(),
            message: format!("unusable ETag {:?}", meta.etag),
        });
    }
    let blob = blobs.join(&meta.etag);
    if blob.is_file() {
        return Ok(blob);
    }
    std::fs::create_dir_all(blobs).map_err(|e| HubError::io(blobs, e))?;
    let part_path = blobs.join(format!("{}.incomplete", meta.etag));
    let mut part = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&part_path)
        .map_err(|e| HubError::io(&part_path, e))?;
    // Another process fetching the same file holds this lock until its blob exists.
    part.lock().map_err(|e| HubError::io(&part_path, e))?;
    if blob.is_file() {
        return Ok(blob);
    }
    let expected = Expected::from_etag(&meta.etag);
    if expected.is_none() {
        tracing::warn!(file, etag = %meta.etag, "no checksum in the ETag: only the size is checked");
    }
    tracing::info!(file, bytes = meta.size, "downloading");
    let mut attempt = 0;
    loop {
        let result = transfer(
            client,
            url,
            &mut part,
            &part_path,
            &meta,
            expected.as_ref(),
            file,
            progress,
        );
        progress.finish();
        match result {
            Ok(()) => break,
            Err(e @ (HubError::Transport { .. } | HubError::Incomplete { .. }))
                if attempt < retries =>
            {
                attempt += 1;
                tracing::warn!(file, attempt, error = %e, "download interrupted; resuming");
                std::thread::sleep(Duration::from_millis(250 << attempt.min(5)));
            }
            Err(e) => return Err(e),
        }
    }
    std::fs::rename(&part_path, &blob).map_err(|e| HubError::io(&blob, e))?;
    cache::sync_dir(blobs)?;
    Ok(blob)
}

/// Appends the missing bytes of `url` to `part`, then checks size and checksum. On a checksum
/// mismatch the partial file is removed; on a short transfer it is kept for the next attempt.
#[allow(clippy::too_many_arguments)]
fn transfer(
    client: &Client,
    url: &str,
    part: &mut File,
    part_path: &Path,
    meta: &FileMeta,
    expected: Option<&Expected>,
    file: &str,
    progress: &mut dyn Progress,
) -> Result<(), HubError> {
    let io = |e| HubError::io(part_path, e);
    let mut done = part.metadata().map_err(io)?.len();
    if done > meta.size {
        // Not a prefix of this file: start over.
        part.set_len(0).map_err(io)?;
        done = 0;
    }
    if done < meta.size {
        let response = client.get(url, done)?;
        match response.status().as_u16() {
            206 => {
                let range = response
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !range.starts_with(&format!("bytes {done}-")) {
                    return Err(HubError::Protocol {
                        url: url.to_string(),
                        message: format!(
                            "asked for bytes from {done}, got Content-Range {range:?}"
                        ),
                    });
                }
            }
            416 => {
                // The server disowns the partial file's length: start over next attempt.
                part.set_len(0).map_err(io)?;
                return Err(HubError::Incomplete {
                    file: file.to_string(),
                    got: 0,
                    expected: meta.size,
                });
            }
            _ if done > 0 => {
                // The whole file came back instead of the rest (the server ignores Range).
                part.set_len(0).map_err(io)?;
                done = 0;
            }
            _ => {}
        }
        part.seek(SeekFrom::Start(done)).map_err(io)?;
        progress.start(file, meta.size, done);
        let mut body = response.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(file, error = %e, "transfer broke off");
                    break;
                }
            };
            part.write_all(&buf[..n]).map_err(io)?;
            done += n as u64;
            progress.advance(n as u64);
            if done > meta.size {
                break;
            }
        }
        part.flush().map_err(io)?;
    }
    if done < meta.size {
        return Err(HubError::Incomplete {
            file: file.to_string(),
            got: done,
            expected: meta.size,
        });
    }
    if done > meta.size {
        part.set_len(0).map_err(io)?;
        return Err(HubError::Protocol {
            url: url.to_string(),
            message: format!(
                "{file}: more than the announced {} bytes came; discarded",
                meta.size
            ),
        });
    }
    part.sync_all().map_err(io)?;
    if let Some(expected) = expected {
        // Hashed from the file, so a resumed download is checked whole.
        let mut hasher = expected.hasher(meta.size);
        part.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = part.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let actual = hasher.finish_hex();
        if actual != expected.hex() {
            let _ = std::fs::remove_file(part_path);
            return Err(HubError::Checksum {
                file: file.to_string(),
                algorithm: expected.algorithm(),
                expected: expected.hex().to_string(),
                actual,
            });
        }
    }
    Ok(())
}
