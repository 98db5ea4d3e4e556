//! Where errors become HTTP statuses. Every error a handler can return is an [`ApiError`], which
//! wraps the errors of the layers below (wire conversion, inference, engine, encoder);
//! [`ApiError::status`] matches every variant of each without a wildcard, so a new variant forces a
//! decision here.
//!
//! Bodies are Qdrant's: `{"status": {"error": "message"}, "time": seconds}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The engine refused or failed the operation.
    #[error(transparent)]
    Engine(#[from] quiver_engine::Error),
    /// A body that does not translate into the request it describes.
    #[error(transparent)]
    Api(#[from] crate::api::Error),
    /// The request is malformed or asks for something Quiver does not support.
    #[error("{0}")]
    BadRequest(String),
    /// The request is well formed but a value is out of its allowed range (Qdrant answers 422 there).
    #[error("validation error: {0}")]
    Validation(String),
    /// A point (or route) that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No API key, or a wrong one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid key without the rights for this route (the read-only key on a write).
    #[error(
        "forbidden: the read-only API key cannot change data or use snapshots; use the admin key"
    )]
    Forbidden,
    /// The request asks the server to reach something its settings do not allow (a snapshot URL
    /// on a private address).
    #[error("{0}")]
    Refused(String),
    /// The body is larger than the configured limit.
    #[error("payload too large: the body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The embedding model refused or failed the request.
    #[error(transparent)]
    Encoder(#[from] quiver_encoder::Error),
    /// The inference layer could not embed the request's documents.
    #[error(transparent)]
    Inference(#[from] crate::inference::Error),
    /// Collections are still opening.
    #[error("service is starting: collections are still opening")]
    NotReady,
    /// One operation of a batch update failed before reaching the engine (its body, or inference);
    /// nothing of the batch was applied.
    #[error("operation {index} ({kind}) of the batch: {source}")]
    InOperation {
        /// The operation's position in the batch, from 0.
        index: usize,
        /// Its name in the batch body (`upsert`, …; `unknown` when it did not parse).
        kind: &'static str,
        /// Why it failed.
        source: Box<ApiError>,
    },
    /// A failure inside the server (a panicked or cancelled blocking task).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error: the single status table of the API.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Engine(err) => engine_status(err),
            ApiError::Api(err) => match err {
                crate::api::Error::Invalid(_) => StatusCode::BAD_REQUEST,
                crate::api::Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
                crate::api::Error::Forbidden(_) => StatusCode::FORBIDDEN,
                crate::api::Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                crate::api::Error::Engine(err) => engine_status(err),
            },
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Refused(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Encoder(err) => encoder_status(err),
            ApiError::Inference(err) => {
                use crate::inference::Error as I;
                match err {
                    I::NoModel | I::AmbiguousModel { .. } | I::Invalid(_) => {
                        StatusCode::BAD_REQUEST
                    }
                    I::UnknownModel { .. } => StatusCode::NOT_FOUND,
                    I::Loading { .. } | I::LoadFailed { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    I::Encoder(err) => encoder_status(err),
                    I::Engine(err) => engine_status(err),
                }
            }
            ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InOperation { source, .. } => source.status(),
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error as a response, with the handler's elapsed time.
    pub fn to_response(&self, time: f64) -> HttpResponse {
        self.response_with(json!({
            "status": { "error": self.to_string() },
            "time": time,
        }))
    }

    /// The error's status (and `Retry-After` on a 429) with a body in the caller's dialect.
    pub fn response_with(&self, body: serde_json::Value) -> HttpResponse {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = HttpResponse::build(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            match self.retry_after() {
                Some(seconds) => {
                    response.insert_header(("Retry-After", seconds.to_string()));
                }
                // A request larger than the bucket: retrying the same request never helps.
                None if self.is_rate_limit() => {}
                None => {
                    response.insert_header(("Retry-After", "1"));
                }
            }
        }
        response.json(body)
    }
}

impl ApiError {
    /// Seconds a strict-mode rate limit asks the client to wait.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Api(crate::api::Error::RateLimited { retry_after, .. }) => *retry_after,
            ApiError::InOperation { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    fn is_rate_limit(&self) -> bool {
        match self {
            ApiError::Api(crate::api::Error::RateLimited { .. }) => true,
            ApiError::InOperation { source, .. } => source.is_rate_limit(),
            _ => false,
        }
    }
}

fn engine_status(err: &quiver_engine::Error) -> StatusCode {
    use quiver_engine::Error as E;
    match err {
        E::CollectionNotFound(_)
        | E::AliasNotFound(_)
        | E::PointNotFound { .. }
        | E::NoSuchPoint(_) => StatusCode::NOT_FOUND,
        E::InOperation { source, .. } => engine_status(source),
        // Qdrant answers 400 to both name clashes of aliases; Quiver answers every name clash 409.
        E::CollectionExists(_) | E::AliasShadowsCollection(_) | E::AliasExists(_) => {
            StatusCode::CONFLICT
        }
        E::VectorNameNotFound(_) | E::DimensionMismatch { .. } | E::InvalidInput(_) => {
            StatusCode::BAD_REQUEST
        }
        E::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        E::CollectionUnavailable { .. } | E::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
        // Qdrant's status for a request that ran past its `timeout`.
        E::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
        E::Storage(storage) => match storage {
            quiver_storage::Error::Io { .. }
            | quiver_storage::Error::Corrupt { .. }
            | quiver_storage::Error::Decode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

fn encoder_status(err: &quiver_encoder::Error) -> StatusCode {
    use quiver_encoder::Error as X;
    match err {
        X::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        X::TooLong { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        X::EmptyText { .. }
        | X::UnknownTask { .. }
        | X::UnknownPrompt { .. }
        | X::InvalidDimension { .. }
        | X::Image { .. }
        | X::InvalidInput(_) => StatusCode::BAD_REQUEST,
        X::WorkerGone => StatusCode::SERVICE_UNAVAILABLE,
        X::Io { .. }
        | X::Config { .. }
        | X::ModelNotFound { .. }
        | X::Unsupported(_)
        | X::Weights(_)
        | X::Tokenizer(_)
        | X::Inference(_)
        | X::Candle(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response(0.0)
    }
}

/// Shorthand for a 400 with a message.
pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_never_a_server_error() {
        let user_errors = [
            ApiError::Engine(quiver_engine::Error::DimensionMismatch {
                name: String::new(),
                expected: 4,
                got: 3,
            }),
            ApiError::Engine(quiver_engine::Error::VectorNameNotFound("x".into())),
            ApiError::Engine(quiver_engine::Error::InvalidInput("x".into())),
            ApiError::Engine(quiver_engine::Error::CollectionNotFound("x".into())),
            ApiError::Engine(quiver_engine::Error::CollectionExists("x".into())),
            ApiError::Engine(quiver_engine::Error::AliasNotFound("x".into())),
            ApiError::Engine(quiver_engine::Error::AliasShadowsCollection("x".into())),
            ApiError::Engine(quiver_engine::Error::AliasExists("x".into())),
            ApiError::BadRequest("x".into()),
            ApiError::Validation("x".into()),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::Api(crate::api::Error::RateLimited {
                message: "x".into(),
                retry_after: None,
            }),
        ];
        for err in user_errors {
            assert!(
                err.status().is_client_error(),
                "{err:?} -> {}",
                err.status()
            );
        }
    }
}
