//! Service routes: root (JSON, or a redirect to the search page for browsers), health, readiness, metrics, the OpenAPI document and its docs page.

use actix_web::http::header::{self, ContentType};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::{blocking, resource};
use crate::http::openapi::ApiDoc;
use crate::http::state::AppState;
use crate::inference::ModelState;

/// Registers the service routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/").route(web::get().to(root)))
        .service(resource("/healthz").route(web::get().to(healthz)))
        .service(resource("/livez").route(web::get().to(livez)))
        .service(resource("/readyz").route(web::get().to(readyz)))
        .service(resource("/metrics").route(web::get().to(metrics)))
        .service(resource("/openapi.json").route(web::get().to(openapi_json)))
        .service(resource("/docs").route(web::get().to(docs)));
}

/// The Qdrant REST API version Quiver answers `GET /` with. Qdrant's clients compare it with their own
/// (same major, minor at most one apart) and warn on every connection otherwise; Quiver's own
/// version is `quiver_version`.
pub const QDRANT_API_VERSION: &str = "1.20.0";

/// `GET /`, as Qdrant's root.
#[derive(Serialize, ToSchema)]
pub struct VersionInfo {
    /// Always `quiver`.
    pub title: &'static str,
    /// The Qdrant API version this server speaks (what Qdrant's clients check).
    pub version: &'static str,
    /// The git commit the binary was built from (`QUIVER_GIT_COMMIT` at build time), else null.
    pub commit: Option<&'static str>,
    /// Quiver's own version.
    pub quiver_version: &'static str,
}

/// Name and version; a browser (`Accept: text/html`) is sent to the search page at `/ui/`.
#[utoipa::path(get, path = "/", tag = "service",
    responses(
        (status = 200, description = "Name and version", body = VersionInfo),
        (status = 303, description = "To the search page, when the client accepts HTML")))]
pub async fn root(req: HttpRequest) -> HttpResponse {
    if super::ui::wants_page(&req) {
        return super::ui::redirect_to_page();
    }
    HttpResponse::Ok()
        .insert_header((header::VARY, "Accept"))
        .json(VersionInfo {
            title: "quiver",
            version: QDRANT_API_VERSION,
            commit: option_env!("QUIVER_GIT_COMMIT"),
            quiver_version: env!("CARGO_PKG_VERSION"),
        })
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "Up", body = String, content_type = "text/plain")))]
pub async fn healthz() -> HttpResponse {
    text(HttpResponse::Ok(), "healthz check passed")
}

/// The process is alive.
#[utoipa::path(get, path = "/livez", tag = "service",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain")))]
pub async fn livez() -> HttpResponse {
    text(HttpResponse::Ok(), "livez check passed")
}

/// Every collection on disk has been opened (or reported as failed) and every model has loaded.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "Ready", body = String, content_type = "text/plain"),
        (status = 503, description = "Collections still opening, or a model loading or failed", body = String, content_type = "text/plain")))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if !state.is_ready() {
        return text(
            HttpResponse::ServiceUnavailable(),
            "collections are still opening",
        );
    }
    for name in state.models.names() {
        match state.models.state(name) {
            Some(ModelState::Ready(_)) | None => {}
            Some(ModelState::Loading) => {
                return text(
                    HttpResponse::ServiceUnavailable(),
                    &format!("model `{name}` is still loading"),
                )
            }
            Some(ModelState::Failed(reason)) => {
                return text(
                    HttpResponse::ServiceUnavailable(),
                    &format!("model `{name}` failed to load: {reason}"),
                )
            }
        }
    }
    text(
        HttpResponse::Ok(),
        "all collections are open and all models loaded",
    )
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let state = state.into_inner();
    let rendered = blocking(move || {
        let collections = state.collections().ok();
        Ok(state.metrics.render(
            collections.as_deref(),
            &state.models,
            state.started.elapsed().as_secs_f64(),
        ))
    })
    .await;
    match rendered {
        Ok(body) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(body),
        Err(err) => err.to_response(0.0),
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// A page that renders the OpenAPI document (no external scripts).
#[utoipa::path(get, path = "/docs", tag = "service",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html")))]
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::html())
        .body(include_str!("../docs.html"))
}

fn text(mut builder: actix_web::HttpResponseBuilder, body: &str) -> HttpResponse {
    builder
        .insert_header(ContentType::plaintext())
        .body(body.to_owned())
}
