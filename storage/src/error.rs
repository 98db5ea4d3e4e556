use std::path::PathBuf;

/// Errors of the storage layer. IO errors always name the file they came from.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation touched.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file failed its magic, version, size or checksum check.
    #[error("{path}: corrupt: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// Bytes that should decode did not (a bug or a corrupt record).
    #[error("decode: {0}")]
    Decode(String),
}

/// Result alias of the storage layer.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wrap an IO error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
