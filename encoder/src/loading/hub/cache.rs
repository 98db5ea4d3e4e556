//! Writing the hub cache's layout, as `huggingface_hub` does, so that either tool finds what the
//! other downloaded: `models--org--name/blobs/<etag>` holds each file's bytes once,
//! `snapshots/<commit>/<path>` links to them, `refs/<revision>` holds the commit a branch or tag
//! named. A blob is only ever created by renaming a verified, fsynced temporary file, and is
//! never written again (the encoder memory-maps it).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::HubError;

/// One repository's folder in the cache.
pub(crate) struct RepoDir {
    root: PathBuf,
}

impl RepoDir {
    pub(crate) fn new(cache_dir: &Path, repo: &str) -> Self {
        RepoDir {
            root: cache_dir.join(format!("models--{}", repo.replace('/', "--"))),
        }
    }

    pub(crate) fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub(crate) fn snapshot(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    /// Points `refs/<revision>` at `commit`.
    pub(crate) fn write_ref(&self, revision: &str, commit: &str) -> Result<(), HubError> {
        let path = self.root.join("refs").join(revision);
        let dir = path.parent().expect("a ref path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .expect("a ref path has a name")
                .to_string_lossy()
        ));
        std::fs::write(&tmp, commit).map_err(|e| HubError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| HubError::io(&path, e))?;
        sync_dir(dir)
    }
}

/// Makes `snapshot/<file>` a relative link to `blob` (a copy where links are not available).
pub(crate) fn link(snapshot: &Path, file: &str, blob: &Path) -> Result<(), HubError> {
    let dest = snapshot.join(file);
    let dir = dest.parent().expect("a snapshot file has a parent");
    std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, e))?;
    let name = dest
        .file_name()
        .expect("a snapshot file has a name")
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    {
        // From snapshots/<commit>/<dirs of file>/ up to the repository folder.
        let up = "../".repeat(2 + file.matches('/').count());
        let blob_name = blob
            .file_name()
            .expect("a blob has a name")
            .to_string_lossy();
        let target = format!("{up}blobs/{blob_name}");
        std::os::unix::fs::symlink(&target, &tmp).map_err(|e| HubError::io(&tmp, e))?;
    }
    #[cfg(not(unix))]
    std::fs::copy(blob, &tmp).map_err(|e| HubError::io(&tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| HubError::io(&dest, e))?;
    sync_dir(dir)
}

/// Makes a rename or new entry in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), HubError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| HubError::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_from_nested_paths_and_refs_name_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = RepoDir::new(tmp.path(), "org/name");
        std::fs::create_dir_all(repo.blobs()).unwrap();
        let blob = repo.blobs().join("abc");
        std::fs::write(&blob, "pooling").unwrap();
        let snap = repo.snapshot("c0ffee");
        link(&snap, "1_Pooling/config.json", &blob).unwrap();
        link(&snap, "config.json", &blob).unwrap();
        // Linking again replaces the link.
        link(&snap, "config.json", &blob).unwrap();
        for f in ["1_Pooling/config.json", "config.json"] {
            assert_eq!(std::fs::read_to_string(snap.join(f)).unwrap(), "pooling");
        }
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_link(snap.join("1_Pooling/config.json")).unwrap(),
            Path::new("../../../blobs/abc")
        );
        repo.write_ref("main", "c0ffee").unwrap();
        assert!(tmp
            .path()
            .join("models--org--name/snapshots/c0ffee")
            .is_dir());
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("models--org--name/refs/main")).unwrap(),
            "c0ffee"
        );
    }
}
