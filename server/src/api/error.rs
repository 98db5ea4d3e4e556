//! Why a body in one of the wire shapes cannot become the typed request it describes. The HTTP layer
//! maps each variant to a status (`http/error.rs`); nothing here knows about HTTP.

/// A body that does not translate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is malformed or asks for something Quiver does not support.
    #[error("{0}")]
    Invalid(String),
    /// The body is well formed but a value is out of its allowed range (Qdrant answers 422 there).
    #[error("validation error: {0}")]
    Validation(String),
    /// The collection's strict mode refuses the request (Qdrant answers 403 there).
    #[error("Forbidden: {0}")]
    Forbidden(String),
    /// The collection's read or write tokens are spent (Qdrant answers 429 there, with
    /// `Retry-After` when waiting helps).
    #[error("Rate limiting exceeded: {message}")]
    RateLimited {
        /// Which bucket, and what the request needed.
        message: String,
        /// Seconds until the bucket holds enough; `None` when it never will.
        retry_after: Option<u64>,
    },
    /// The engine failed while a check read the collection.
    #[error(transparent)]
    Engine(#[from] quiver_engine::Error),
}

/// Shorthand for [`Error::Invalid`].
pub fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}
