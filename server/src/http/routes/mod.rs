//! Routes, one file per family, and the helpers every handler uses: the response envelope and running
//! engine calls on the blocking pool.

pub mod aliases;
pub mod collections;
pub mod documents;
pub mod embeddings;
pub mod image_files;
pub mod optimizations;
pub mod payload_index;
pub mod points;
pub mod search;
pub mod service;
pub mod snapshots;
pub mod telemetry;
pub mod ui;
pub mod updates;

use std::future::Future;
use std::time::Instant;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::metrics::SearchThread;
use super::state::AppState;

/// Qdrant's success envelope.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T> {
    /// The result.
    pub result: T,
    /// Always `ok`.
    pub status: &'static str,
    /// Seconds the request took.
    pub time: f64,
}

/// Qdrant's error envelope: `{"status": {"error": "…"}, "time": s}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub status: ErrorStatus,
    /// Seconds the request took.
    pub time: f64,
}

/// `{"error": "message"}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorStatus {
    /// What went wrong.
    pub error: String,
}

/// Runs a handler body and wraps its result (or error) in Qdrant's envelope, with the elapsed time.
pub async fn respond<T, F>(body: F) -> HttpResponse
where
    T: Serialize,
    F: Future<Output = Result<T, ApiError>>,
{
    let start = Instant::now();
    let result = body.await;
    let time = start.elapsed().as_secs_f64();
    match result {
        Ok(result) => HttpResponse::Ok().json(Envelope {
            result,
            status: "ok",
            time,
        }),
        Err(err) => err.to_response(time),
    }
}

/// Runs CPU- or IO-heavy engine work on the blocking pool, so slow searches never stall the async
/// workers (and with them health checks).
pub async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    match web::block(work).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::Internal(
            "the operation panicked or was cancelled".into(),
        )),
    }
}

/// Runs work that computes on the rayon pool anyway (an idle CPU encoder's forward pass) on one of
/// its workers: the pass then forks its projections from there in place, where through
/// [`blocking`] it would hop from the blocking pool into rayon and back (two more thread wake-ups
/// per request, a tenth of a short query's time over HTTP). `work` must never block waiting for
/// other pool work (the encoder's [`quiver_encoder::EncoderService::try_inline`] does not).
pub async fn on_compute_pool<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        // A panic must reach the caller as an error, not take the pool's handler (abort) path.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        // The request may have been dropped (client gone): nobody to tell.
        let _ = tx.send(result);
    });
    match rx.await {
        Ok(Ok(result)) => result,
        _ => Err(ApiError::Internal(
            "the operation panicked or was cancelled".into(),
        )),
    }
}

/// [`blocking`] under a read's deadline (Qdrant's `timeout`): past it the answer is the timeout
/// error, as Qdrant answers, while the engine, which checks the same deadline, stops the work.
pub async fn blocking_until<T, F>(
    deadline: Option<quiver_engine::query::Deadline>,
    work: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    let Some(deadline) = deadline else {
        return blocking(work).await;
    };
    match tokio::time::timeout(deadline.remaining(), blocking(work)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(ApiError::Engine(deadline.error())),
    }
}

/// Estimated work (vector components scored, see `Collection::query_work`) up to which a search runs
/// on the async worker that received it instead of the blocking pool. The hop to the pool and back
/// (a futex wake, an eventfd wake, two context switches) costs tens of microseconds a request; a
/// search run in place holds the worker's other connections, health checks included, for as long
/// as it runs, so only searches of a fraction of a millisecond stay. 2 M components is a graph walk
/// at ef 64 over Fashion-MNIST's 784-d vectors (64 × 32 links × 784 ≈ 1.6 M, 0.17 ms in process)
/// with room for a second small segment, or an exact scan of 2,500 such rows: at the 5–10 G
/// components per second an exact scan reaches on one core here, 0.2–0.4 ms at worst.
pub const INLINE_WORK_MAX: u64 = 2_000_000;

/// Runs a search where its estimated `work` says: in place when the engine bounded it within
/// [`INLINE_WORK_MAX`] (the engine checks the request's deadline itself), else on the blocking pool
/// under `deadline` as [`blocking_until`]. Counts where it ran in the metrics.
pub async fn search_where_cheap<T, F>(
    state: &AppState,
    work: Option<u64>,
    deadline: Option<quiver_engine::query::Deadline>,
    run: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    if work.is_some_and(|w| w <= INLINE_WORK_MAX) {
        state.metrics.count_search(SearchThread::Inline);
        // A panic answers 500 as it does from the pool, instead of taking the worker and its other
        // connections down with it.
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|_| {
            Err(ApiError::Internal(
                "the operation panicked or was cancelled".into(),
            ))
        });
    }
    state.metrics.count_search(SearchThread::Pool);
    blocking_until(deadline, run).await
}

/// 405 with a JSON body, for a known path asked with another method.
pub async fn method_not_allowed() -> HttpResponse {
    ApiError::MethodNotAllowed.to_response(0.0)
}

/// 404 with a JSON body, for unknown paths.
pub async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).to_response(0.0)
}

/// A resource whose other methods answer 405 in JSON.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Registers every route. Specific `points/…` paths come before `points/{id}`, which would otherwise
/// shadow them, and `/collections/aliases` before `/collections/{name}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    service::configure(cfg);
    telemetry::configure(cfg);
    aliases::configure(cfg);
    collections::configure(cfg);
    optimizations::configure(cfg);
    search::configure(cfg);
    points::configure(cfg);
    payload_index::configure(cfg);
    documents::configure(cfg);
    snapshots::configure(cfg);
    embeddings::configure(cfg);
    image_files::configure(cfg);
    ui::configure(cfg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn compute_pool_work_runs_on_a_rayon_worker_and_a_panic_is_an_error() {
        let on_worker = on_compute_pool(|| Ok(rayon::current_thread_index().is_some()))
            .await
            .unwrap();
        assert!(on_worker);
        let err = on_compute_pool(|| -> Result<(), ApiError> { panic!("boom") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        // The pool survived the panic.
        assert_eq!(on_compute_pool(|| Ok(7)).await.unwrap(), 7);
    }
}
