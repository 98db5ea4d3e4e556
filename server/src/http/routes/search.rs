//! `points/search`, `points/search/batch`, `points/query` and `points/query/batch`.

use actix_web::{web, HttpResponse};

use std::time::Instant;

use quiver_engine::collection::apply_default_funnel;
use quiver_engine::Collection;

use super::{blocking, resource, respond};
use crate::api::common::ScoredPointOut;
use crate::api::search::{
    QueryBatch, QueryOptions, QueryRequestDto, QueryResponse, SearchBatch, SearchRequestDto,
};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::inference::{self, Input};

/// Registers the search routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/collections/{name}/points/search").route(web::post().to(search_points)))
        .service(
            resource("/collections/{name}/points/search/batch").route(web::post().to(search_batch)),
        )
        .service(resource("/collections/{name}/points/query").route(web::post().to(query_points)))
        .service(
            resource("/collections/{name}/points/query/batch").route(web::post().to(query_batch)),
        );
}

/// Nearest neighbours of a vector (Qdrant's legacy search).
#[utoipa::path(post, path = "/collections/{name}/points/search", tag = "search",
    params(("name" = String, Path, description = "Collection name")),
    request_body = SearchRequestDto,
    responses(
        (status = 200, description = "Hits, best first", body = inline(super::Envelope<Vec<ScoredPointOut>>)),
        (status = 400, description = "Wrong dimension, unknown vector name, bad filter", body = super::ErrorEnvelope)))]
pub async fn search_points(
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<SearchRequestDto>,
) -> HttpResponse {
    respond(async move {
        let collection = state.collection(&name)?;
        blocking(move || search(&state, &collection, body.into_inner())).await
    })
    .await
}

/// Several searches in one request.
#[utoipa::path(post, path = "/collections/{name}/points/search/batch", tag = "search",
    params(("name" = String, Path, description = "Collection name")),
    request_body = SearchBatch,
    responses((status = 200, description = "One hit list per search", body = inline(super::Envelope<Vec<Vec<ScoredPointOut>>>))))]
pub async fn search_batch(
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<SearchBatch>,
) -> HttpResponse {
    respond(async move {
        let body = body.into_inner();
        state.limits.check_batch(body.searches.len(), "searches")?;
        let collection = state.collection(&name)?;
        blocking(move || {
            body.searches
                .into_iter()
                .map(|body| search(&state, &collection, body))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
    })
    .await
}

/// The Query API: a vector or multivector query, optionally over prefetched candidates.
#[utoipa::path(post, path = "/collections/{name}/points/query", tag = "search",
    params(("name" = String, Path, description = "Collection name"),
        ("timings" = Option<bool>, Query, description = "Add per-stage timings (embedding, each prefetch, the query) to the response")),
    request_body = QueryRequestDto,
    responses(
        (status = 200, description = "Hits, best first", body = inline(super::Envelope<QueryResponse>)),
        (status = 400, description = "Wrong dimension, unknown vector name, unsupported query", body = super::ErrorEnvelope)))]
pub async fn query_points(
    state: web::Data<AppState>,
    name: web::Path<String>,
    options: web::Query<QueryOptions>,
    body: web::Json<QueryRequestDto>,
) -> HttpResponse {
    respond(async move {
        let body = body.into_inner();
        let collection = state.collection(&name)?;
        let timings = options.timings;
        blocking(move || run_query(&state, &collection, body, timings)).await
    })
    .await
}

/// Several queries in one request.
#[utoipa::path(post, path = "/collections/{name}/points/query/batch", tag = "search",
    params(("name" = String, Path, description = "Collection name")),
    request_body = QueryBatch,
    responses((status = 200, description = "One response per query", body = inline(super::Envelope<Vec<QueryResponse>>))))]
pub async fn query_batch(
    state: web::Data<AppState>,
    name: web::Path<String>,
    options: web::Query<QueryOptions>,
    body: web::Json<QueryBatch>,
) -> HttpResponse {
    respond(async move {
        let body = body.into_inner();
        state.limits.check_batch(body.searches.len(), "searches")?;
        let collection = state.collection(&name)?;
        let timings = options.timings;
        blocking(move || {
            body.searches
                .into_iter()
                .map(|q| run_query(&state, &collection, q, timings))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
    })
    .await
}

/// The legacy search: one stage of the Query API.
fn search(
    state: &AppState,
    collection: &Collection,
    body: SearchRequestDto,
) -> Result<Vec<ScoredPointOut>, ApiError> {
    let request = body.into_request()?;
    state.limits.check_limit(request.limit, request.offset)?;
    let config = &collection.config();
    Ok(collection
        .query(&request)?
        .hits
        .into_iter()
        .map(|h| ScoredPointOut::new(config, h))
        .collect())
}

/// Types the query, runs the default funnel on a plain one, embeds its documents (if any), then runs
/// it; with `timings`, says where the time went.
fn run_query(
    state: &AppState,
    collection: &Collection,
    body: QueryRequestDto,
    timings: bool,
) -> Result<QueryResponse, ApiError> {
    let started = Instant::now();
    let config = &collection.config();
    let mut request = body.into_request()?;
    apply_default_funnel(
        config,
        &mut request,
        state.limits.max_limit,
        Input::is_document,
    )?;
    state.limits.check_query(&request)?;
    let request = inference::resolve_query(&state.models, config, request)?;
    let embed_ms = started.elapsed().as_secs_f64() * 1e3;
    let answer = collection.query(&request)?;
    let total_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(QueryResponse::new(
        config,
        answer,
        timings.then_some((embed_ms, total_ms)),
    ))
}
