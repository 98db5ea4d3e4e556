//! Why the inference layer could not turn a request's documents into vectors. `http/error.rs` gives
//! each variant its status; the CLI prints them.

/// A failure of the inference layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `--model` was given.
    #[error("no embedding model is configured: start the server with --model NAME=DIR_OR_HF_ID")]
    NoModel,
    /// Several models are configured and the request named none.
    #[error("several models are configured ({configured}): name one with `model`")]
    AmbiguousModel {
        /// The configured names.
        configured: String,
    },
    /// The named model is not configured.
    #[error("model `{name}` not found; configured: {configured}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The configured names.
        configured: String,
    },
    /// The model is still loading.
    #[error("model `{name}` is still loading; retry when /readyz says ready")]
    Loading {
        /// The model.
        name: String,
    },
    /// The model failed to load.
    #[error("model `{name}` failed to load: {reason}")]
    LoadFailed {
        /// The model.
        name: String,
        /// Why.
        reason: String,
    },
    /// A document that cannot fill the vector it is given for, or that is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The model refused or failed the request.
    #[error(transparent)]
    Encoder(#[from] quiver_encoder::Error),
    /// The collection refused the request (an unknown vector name, a bad funnel).
    #[error(transparent)]
    Engine(#[from] quiver_engine::Error),
}

/// Shorthand for [`Error::Invalid`].
pub fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}
