//! Why a file gave no documents.

use std::path::PathBuf;

/// A file that could not be read as its format; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The file could not be read at all.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The extension is not one of the formats.
    #[error(
        "{path}: not a supported document (.txt, .md, .html, .htm, .pdf, .jsonl, .csv or .tsv)"
    )]
    Unsupported { path: PathBuf },
    /// A text format whose bytes are not UTF-8.
    #[error("{path}:{line}: not UTF-8 text (convert it, e.g. with iconv)")]
    NotUtf8 { path: PathBuf, line: u64 },
    /// One line or row of a JSONL or CSV file is unusable.
    #[error("{path}:{line}: {message}")]
    Record {
        path: PathBuf,
        line: u64,
        message: String,
    },
    /// A PDF that does not parse, is encrypted, or has a page whose text cannot be decoded.
    #[error("{path}: {message}")]
    Pdf { path: PathBuf, message: String },
}

impl DocumentError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DocumentError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn record(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        DocumentError::Record {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}
