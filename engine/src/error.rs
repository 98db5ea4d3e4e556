/// Errors of the engine. Variants that are the caller's fault (bad input, unknown names) are separate from
/// those that are the server's (storage, corruption), so the HTTP layer maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No collection of that name.
    #[error("collection `{0}` not found")]
    CollectionNotFound(String),
    /// A collection of that name exists already.
    #[error("collection `{0}` already exists")]
    CollectionExists(String),
    /// No alias of that name (renaming one that does not exist).
    #[error("alias `{0}` not found")]
    AliasNotFound(String),
    /// An alias would take the name of an existing collection.
    #[error("collection `{0}` already exists: an alias cannot take a collection's name")]
    AliasShadowsCollection(String),
    /// A collection would take the name of an existing alias (Qdrant refuses it too).
    #[error(
        "can't create collection `{0}`: an alias with the same name already exists (delete or \
         rename the alias first)"
    )]
    AliasExists(String),
    /// A collection exists on disk but failed to open.
    #[error("collection `{name}` is unavailable: {reason}")]
    CollectionUnavailable {
        /// The collection.
        name: String,
        /// Why it did not open.
        reason: String,
    },
    /// The named vector is not part of the collection's config.
    #[error("vector name `{0}` is not configured in this collection")]
    VectorNameNotFound(String),
    /// A vector's length differs from the configured size.
    #[error("wrong vector dimension for `{name}`: expected {expected}, got {got}")]
    DimensionMismatch {
        /// The named vector ("" for the unnamed one).
        name: String,
        /// The configured size.
        expected: usize,
        /// The size received.
        got: usize,
    },
    /// A query names a point (or a vector of it) that does not exist.
    #[error("no point with id {id} (and vector `{vector}`)")]
    PointNotFound {
        /// The point id.
        id: crate::PointId,
        /// The vector the query needed from it.
        vector: String,
    },
    /// A write names a point that does not exist (Qdrant's wording and 404).
    #[error("No point with id {0} found")]
    NoSuchPoint(crate::PointId),
    /// One operation of a batch update failed; nothing of the batch was applied.
    #[error("operation {index} ({kind}) of the batch: {source}")]
    InOperation {
        /// The operation's position in the batch, from 0.
        index: usize,
        /// Its name in the batch body (`upsert`, `delete_vectors`, ...).
        kind: &'static str,
        /// Why it failed.
        source: Box<Error>,
    },
    /// Any other invalid input, with a message that says what to change.
    #[error("{0}")]
    InvalidInput(String),
    /// Well-formed input with a value Qdrant's validation refuses (the HTTP layer answers 422).
    #[error("validation error: {0}")]
    Validation(String),
    /// A storage failure (IO, corruption).
    #[error(transparent)]
    Storage(#[from] quiver_storage::Error),
    /// A long operation was stopped because the collection is closing.
    #[error("operation cancelled: the collection is closing")]
    Cancelled,
    /// A read ran past its [`crate::query::Deadline`] (Qdrant's `timeout`) and stopped; Qdrant's
    /// wording (the HTTP layer answers its 408).
    #[error("Timeout error: Operation '{operation}' timed out after {} seconds", .after.as_secs())]
    Timeout {
        /// What timed out, in Qdrant's words (`Search`, `Scroll`, ...).
        operation: &'static str,
        /// The time limit it was given.
        after: std::time::Duration,
    },
}

/// Result alias of the engine.
pub type Result<T> = std::result::Result<T, Error>;
