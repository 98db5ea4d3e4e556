//! The HTTP API: Qdrant's REST dialect over the engine, with API keys, limits, metrics and an OpenAPI
//! document. [`serve`] binds, opens the collections in the background (so `/healthz` answers at once and
//! `/readyz` says when they are open), serves until SIGINT / SIGTERM, then drains in-flight requests and
//! closes the collections.

mod auth;
pub mod error;
mod limits;
mod metrics;
mod openapi;
mod routes;
mod snapshot_url;
mod state;

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Service, ServiceRequest};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, App, HttpRequest, HttpServer};
use anyhow::Context;
use parking_lot::Mutex;

use quiver_engine::Collections;

pub use limits::Limits;
pub use snapshot_url::UrlPolicy;

use auth::Auth;
use error::{bad_request, ApiError};
use state::AppState;

/// Everything the HTTP server needs, resolved from flags and environment by the CLI.
#[derive(Clone)]
pub struct HttpSettings {
    /// Address to bind (a name or an IP).
    pub host: String,
    /// Port to bind; 0 picks a free one (the chosen port is printed).
    pub port: u16,
    /// Key for every route.
    pub api_key: Option<String>,
    /// Key for reads and searches only.
    pub read_only_api_key: Option<String>,
    /// Allows a non-loopback bind without an API key.
    pub allow_unauthenticated: bool,
    /// Largest accepted request body.
    pub max_request_bytes: usize,
    /// Page, batch and limit bounds.
    pub limits: Limits,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// Embedding models to load, and how.
    pub models: Vec<crate::inference::ModelSpec>,
    /// Where image objects may name files (`--image-dir`); `None`: base64 only.
    pub image_dir: Option<std::path::PathBuf>,
    /// Load and batching options of every model.
    pub model_options: crate::inference::ModelOptions,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |k: &Option<String>| k.as_ref().map(|_| "<redacted>");
        f.debug_struct("HttpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &redact(&self.api_key))
            .field("read_only_api_key", &redact(&self.read_only_api_key))
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("limits", &self.limits)
            .field("workers", &self.workers)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("models", &self.models)
            .field("model_options", &self.model_options)
            .finish()
    }
}

impl HttpSettings {
    /// Refuses settings that would expose data: a non-loopback bind with no key, or a read-only key
    /// without an admin key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let has_admin = self.api_key.as_deref().is_some_and(|k| !k.is_empty());
        let has_read_only = self
            .read_only_api_key
            .as_deref()
            .is_some_and(|k| !k.is_empty());
        if has_read_only && !has_admin {
            anyhow::bail!(
                "--read-only-api-key needs --api-key as well (nobody could write otherwise)"
            );
        }
        if !has_admin && !self.allow_unauthenticated && !is_loopback(&self.host) {
            anyhow::bail!(
                "refusing to serve {} without an API key: set --api-key (or QUIVER_API_KEY), bind to \
                 127.0.0.1, or pass --allow-unauthenticated",
                self.host
            );
        }
        if self.max_request_bytes == 0 {
            anyhow::bail!("--max-request-size-mb must be at least 1");
        }
        let service = &self.model_options.service;
        if service.max_batch_tokens == 0
            || service.max_batch_requests == 0
            || service.queue_capacity == 0
        {
            anyhow::bail!(
                "--max-batch-tokens, --max-batch-requests and --max-concurrent-requests must be at least 1"
            );
        }
        Ok(())
    }
}

/// Whether every address the host resolves to is a loopback address.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    match (bare, 0).to_socket_addrs() {
        Ok(mut addrs) => {
            let addrs: Vec<_> = addrs.by_ref().collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// Binds, serves until SIGINT / SIGTERM, then closes the collections. `open` runs on its own thread
/// after the bind; until it returns, data routes answer 503 and `/readyz` is not ready.
pub fn serve<F>(settings: HttpSettings, open: F) -> anyhow::Result<()>
where
    F: FnOnce() -> anyhow::Result<Collections> + Send + 'static,
{
    settings.validate()?;
    actix_web::rt::System::new().block_on(run(settings, open))
}

async fn run<F>(settings: HttpSettings, open: F) -> anyhow::Result<()>
where
    F: FnOnce() -> anyhow::Result<Collections> + Send + 'static,
{
    let auth = Auth::new(
        settings.api_key.as_deref(),
        settings.read_only_api_key.as_deref(),
    );
    if !auth.enabled() {
        tracing::warn!("no API key configured: every client can read and write");
    }
    let models = crate::inference::Models::new(&settings.models)
        .map_err(anyhow::Error::msg)?
        .with_image_dir(settings.image_dir.as_deref())?;
    let models = Arc::new(models);
    let state = web::Data::new(AppState::new(settings.limits, auth, models.clone()));
    let max_bytes = settings.max_request_bytes;
    let app_state = state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(json_config(max_bytes))
            .app_data(web::PayloadConfig::new(max_bytes))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
            .wrap_fn(strict_timeout)
            .wrap_fn(authenticate)
            .wrap_fn(measure)
    })
    .shutdown_timeout(settings.shutdown_timeout.as_secs());
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    let server = server
        .bind((settings.host.as_str(), settings.port))
        .with_context(|| format!("cannot bind {}:{}", settings.host, settings.port))?;
    for addr in server.addrs() {
        // Printed (not only logged) so scripts and tests learn the port of `--port 0`.
        eprintln!("quiver: listening on http://{addr}");
        tracing::info!(%addr, "listening");
    }
    let server = server.run();
    let handle = server.handle();

    let fatal: Arc<Mutex<Option<anyhow::Error>>> = Arc::default();
    let opener = {
        let state = state.clone();
        let fatal = fatal.clone();
        std::thread::Builder::new()
            .name("quiver-open".into())
            .spawn(move || {
                let start = Instant::now();
                match open() {
                    Ok(collections) => {
                        for (name, reason) in collections.failed() {
                            tracing::error!(collection = %name, %reason, "collection failed to open; serving the others");
                        }
                        tracing::info!(
                            collections = collections.list().len(),
                            seconds = start.elapsed().as_secs_f64(),
                            "collections open, ready"
                        );
                        state.set_ready(Arc::new(collections));
                    }
                    Err(err) => {
                        *fatal.lock() = Some(err);
                        // The stop command is sent when `stop` is called; the returned future only
                        // waits for it to finish.
                        drop(handle.stop(false));
                    }
                }
            })
            .context("cannot start the thread that opens collections")?
    };

    if !models.is_empty() {
        let options = settings.model_options;
        // Detached: a model that is still loading at shutdown holds nothing that needs closing.
        std::thread::Builder::new()
            .name("quiver-models".into())
            .spawn(move || models.load_all(options))
            .context("cannot start the thread that loads models")?;
    }

    server.await.context("HTTP server failed")?;
    tracing::info!("stopped accepting requests; closing collections");
    // Opening holds no locks the server needs, so waiting for it here cannot deadlock.
    let _ = opener.join();
    if let Some(err) = fatal.lock().take() {
        return Err(err.context("cannot open the data directory"));
    }
    if let Ok(collections) = state.collections() {
        collections.close().context("closing collections")?;
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .content_type_required(false)
        // Any declared type is parsed as JSON (curl -d sends a form type), as bodies are always JSON.
        .content_type(|_| true)
        .error_handler(|err, _req| json_error(err).into())
}

/// Body errors: too large is 413, anything else 400 with the parser's message.
fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::Payload(actix_web::error::PayloadError::Overflow) => {
            ApiError::PayloadTooLarge { limit: 0 }
        }
        JsonPayloadError::Deserialize(e) => bad_request(format!("format error in JSON body: {e}")),
        JsonPayloadError::ContentType => {
            bad_request("the body must be JSON (Content-Type: application/json)")
        }
        other => bad_request(format!("cannot read the body: {other}")),
    }
}

fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    bad_request(format!("invalid path: {err}")).into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    bad_request(format!("invalid query string: {err}")).into()
}

/// Middleware: rejects requests without the key their route needs.
fn authenticate<S>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse, actix_web::Error>>
where
    S: Service<
        ServiceRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    S::Future: 'static,
{
    let verdict = match req.app_data::<web::Data<AppState>>() {
        Some(state) => state.auth.check(req.request()),
        None => Ok(()),
    };
    let call = match verdict {
        Ok(()) => Ok(srv.call(req)),
        Err(err) => Err(req.into_response(err.to_response(0.0))),
    };
    async move {
        match call {
            Ok(fut) => fut.await,
            Err(rejected) => Ok(rejected),
        }
    }
}

/// Middleware: a `timeout` query parameter above the collection's strict-mode `max_timeout` is
/// Qdrant's 403. Here rather than in each handler because Qdrant accepts `timeout` on every point
/// route (searches, queries, updates); the read handlers then honour it (`ReadParams`), writes
/// have nothing to wait out.
fn strict_timeout<S>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse, actix_web::Error>>
where
    S: Service<
        ServiceRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    S::Future: 'static,
{
    let refusal = timeout_refusal(&req);
    let call = match refusal {
        None => Ok(srv.call(req)),
        Some(err) => Err(req.into_response(err.to_response(0.0))),
    };
    async move {
        match call {
            Ok(fut) => fut.await,
            Err(rejected) => Ok(rejected),
        }
    }
}

/// The refusal of a request whose `timeout` its collection's strict mode does not allow.
fn timeout_refusal(req: &ServiceRequest) -> Option<ApiError> {
    let mut segments = req.path().strip_prefix("/collections/")?.split('/');
    let name = segments.next()?;
    if !matches!(segments.next(), Some("points" | "facet")) {
        return None;
    }
    // A value that is not a number is left to the handler's own parsing.
    let timeout: usize = req
        .query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeout="))?
        .parse()
        .ok()?;
    let state = req.app_data::<web::Data<AppState>>()?;
    let collection = state.collection(name).ok()?;
    let strict = crate::api::strict_mode::StrictMode::of(&collection)?;
    strict.check_timeout(timeout).err().map(ApiError::from)
}

/// Middleware: counts requests and their latency per method, route pattern and status.
fn measure<S>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse, actix_web::Error>>
where
    S: Service<
        ServiceRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    S::Future: 'static,
{
    let start = Instant::now();
    let method = req.method().to_string();
    // Patterns, not paths, so the series count stays bounded.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let fut = srv.call(req);
    async move {
        let result = fut.await;
        let status = match &result {
            Ok(res) => res.status().as_u16(),
            Err(err) => err.as_response_error().status_code().as_u16(),
        };
        if let Some(state) = state {
            state
                .metrics
                .observe(&method, &route, status, start.elapsed().as_secs_f64());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: &str, key: Option<&str>, allow: bool) -> HttpSettings {
        HttpSettings {
            host: host.into(),
            port: 0,
            api_key: key.map(String::from),
            read_only_api_key: None,
            allow_unauthenticated: allow,
            max_request_bytes: 1024,
            limits: Limits {
                max_limit: 10,
                max_batch: 10,
                max_snapshot_upload_bytes: 1024,
                snapshot_urls: UrlPolicy::default(),
            },
            workers: 1,
            shutdown_timeout: Duration::from_secs(1),
            models: Vec::new(),
            image_dir: None,
            model_options: crate::inference::ModelOptions {
                device: quiver_encoder::DeviceChoice::Cpu,
                dtype: None,
                service: Default::default(),
                cpu_f16_weights: false,
            },
        }
    }

    #[test]
    fn refuses_public_bind_without_key() {
        assert!(settings("127.0.0.1", None, false).validate().is_ok());
        assert!(settings("localhost", None, false).validate().is_ok());
        assert!(settings("::1", None, false).validate().is_ok());
        assert!(settings("0.0.0.0", None, false).validate().is_err());
        assert!(settings("0.0.0.0", Some("k"), false).validate().is_ok());
        assert!(settings("0.0.0.0", None, true).validate().is_ok());
        let mut ro_only = settings("127.0.0.1", None, false);
        ro_only.read_only_api_key = Some("r".into());
        assert!(ro_only.validate().is_err());
    }

    #[test]
    fn settings_debug_redacts_keys() {
        let s = settings("127.0.0.1", Some("secret-key"), false);
        assert!(!format!("{s:?}").contains("secret-key"));
    }
}
