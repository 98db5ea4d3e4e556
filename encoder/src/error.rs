//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running the encoder.
///
/// Variants split into caller mistakes (`InvalidInput`, `Image`, `UnknownTask`, `InvalidDimension`,
/// `TooLong`, `EmptyText`), which a server answers with 4xx, and load or runtime failures,
/// which are the operator's or a bug.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read; the path says which.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A JSON config file did not parse or lacks a required field.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    /// The model named by the caller is neither a directory nor in the local Hugging Face cache.
    #[error("model {source_name:?} not found: {hint}")]
    ModelNotFound { source_name: String, hint: String },
    /// The checkpoint is readable but not something this encoder can run.
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// A weight is missing or has the wrong shape.
    #[error("weights: {0}")]
    Weights(String),
    /// The tokenizer file could not be loaded or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An input text is empty (after trimming nothing is left to embed).
    #[error("input {index}: text is empty")]
    EmptyText { index: usize },
    /// The task is not one of the checkpoint's adapters.
    #[error("unknown task {got:?}; valid tasks: {}", valid.join(", "))]
    UnknownTask { got: String, valid: Vec<String> },
    /// The prompt kind is not `query` or `passage`.
    #[error("unknown prompt {got:?}; valid prompts: query, passage")]
    UnknownPrompt { got: String },
    /// A Matryoshka dimension that the model was not trained for.
    #[error(
        "dimension {got} is not supported; valid dimensions: {}",
        fmt_dims(valid)
    )]
    InvalidDimension { got: usize, valid: Vec<usize> },
    /// A text is longer than the limit and truncation was disabled.
    #[error("input {index}: {tokens} tokens exceed the limit of {max_length}")]
    TooLong {
        index: usize,
        tokens: usize,
        max_length: usize,
    },
    /// An input image could not be used (not an image, corrupt, too large, bad shape).
    #[error("input {index}: {source}")]
    Image {
        index: usize,
        #[source]
        source: crate::image::ImageError,
    },
    /// Any other malformed request.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The request queue is full; the caller should retry later (HTTP 429).
    #[error("encoder queue is full")]
    Overloaded,
    /// A forward pass failed inside the worker; every request in that batch gets this.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The encoder worker has stopped (it panicked or was shut down).
    #[error("encoder worker is not running")]
    WorkerGone,
    /// A tensor operation failed inside candle.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

fn fmt_dims(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// True when the error is the caller's fault (maps to a 4xx status).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::EmptyText { .. }
                | Error::UnknownTask { .. }
                | Error::UnknownPrompt { .. }
                | Error::InvalidDimension { .. }
                | Error::TooLong { .. }
                | Error::InvalidInput(_)
                | Error::Image { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Config {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;
