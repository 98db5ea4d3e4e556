//! What can go wrong while fetching a model from the hub.

use std::path::PathBuf;

/// A download that did not produce a complete, verified snapshot. The cache is left as it was,
/// apart from partial files (`blobs/<etag>.incomplete`) that the next run resumes.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// `HF_HUB_OFFLINE` forbids network access.
    #[error("{repo} is not in the Hugging Face cache and HF_HUB_OFFLINE is set")]
    Offline { repo: String },
    /// Neither `HF_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME` nor `HOME` names a directory.
    #[error("no Hugging Face cache directory: set HF_HUB_CACHE or HF_HOME")]
    NoCacheDir,
    /// The hub could not be reached or the connection broke.
    #[error("{url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// 401 or 403: the repository is gated or private, or the token is wrong.
    #[error(
        "{url}: access denied ({status}{}); the repository is gated or private: accept its terms \
         on the hub and set HF_TOKEN to a token that may read it",
        fmt_message(message)
    )]
    Denied {
        url: String,
        status: u16,
        message: String,
    },
    /// 404: no such repository, revision or file.
    #[error("{url}: not found{}", fmt_message(message))]
    NotFound { url: String, message: String },
    /// Any other unexpected status.
    #[error("{url}: HTTP {status}{}", fmt_message(message))]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    /// The hub answered something this client cannot use (a missing header, bad JSON).
    #[error("{url}: {message}")]
    Protocol { url: String, message: String },
    /// The repository lacks what Quiver's loader needs.
    #[error("{repo}: {message}")]
    Repo { repo: String, message: String },
    /// The downloaded bytes do not hash to the hub's checksum; the partial file was removed.
    #[error(
        "{file}: checksum mismatch ({algorithm} expected {expected}, got {actual}); the download \
         was discarded"
    )]
    Checksum {
        file: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    /// The transfer ended early (or ran long) and retries did not finish it; the partial file is
    /// kept, so the next run resumes.
    #[error("{file}: got {got} of {expected} bytes; run again to resume")]
    Incomplete {
        file: String,
        got: u64,
        expected: u64,
    },
    /// A cache file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn fmt_message(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HubError::Io {
            path: path.into(),
            source,
        }
    }
}
