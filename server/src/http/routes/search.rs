//! `points/search`, `points/search/batch`, `points/query` and `points/query/batch`.

use actix_web::{web, HttpResponse};

use super::{blocking, resource, respond};
use crate::api::common::ScoredPointOut;
use std::time::Instant;

use crate::api::search::{
    QueryBatch, QueryOptions, QueryRequestDto, QueryResponse, QueryTimings, SearchBatch,
    SearchRequestDto,
};
use crate::http::planner;
use crate::http::state::AppState;

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
        let limits = state.limits;
        blocking(move || {
            let hits = planner::search(&collection, body.into_inner(), &limits)?;
            let config = collection.config();
            Ok(hits
                .into_iter()
                .map(|h| ScoredPointOut::new(config, h))
                .collect::<Vec<_>>())
        })
        .await
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
        let limits = state.limits;
        blocking(move || {
            let config = collection.config();
            body.searches
                .into_iter()
                .map(|search| {
                    let hits = planner::search(&collection, search, &limits)?;
                    Ok(hits
                        .into_iter()
                        .map(|h| ScoredPointOut::new(config, h))
                        .collect::<Vec<_>>())
                })
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

/// Embeds the query's documents (if any), then runs it; with `timings`, says where the time went.
fn run_query(
    state: &AppState,
    collection: &quiver_engine::Collection,
    mut body: QueryRequestDto,
    timings: bool,
) -> Result<QueryResponse, crate::http::error::ApiError> {
    let started = Instant::now();
    crate::http::funnel::apply_default_funnel(
        collection.config(),
        &mut body,
        state.limits.max_limit,
    )?;
    crate::http::documents::embed_query(state, collection.config(), &mut body)?;
    let embed_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut stages = Vec::new();
    let hits = planner::query(collection, body, &state.limits, &mut stages)?;
    let config = collection.config();
    Ok(QueryResponse {
        points: hits
            .into_iter()
            .map(|h| ScoredPointOut::new(config, h))
            .collect(),
        timings: timings.then(|| QueryTimings {
            embed_ms,
            stages,
            total_ms: started.elapsed().as_secs_f64() * 1e3,
        }),
    })
}
