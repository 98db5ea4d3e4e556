//! `points/search`, `points/search/batch`, `points/query` and `points/query/batch`.

use actix_web::{web, HttpResponse};

use std::time::Instant;

use quiver_engine::collection::apply_default_funnel;
use quiver_engine::filter::{Condition, Filter, HasIdCondition, OneOrMany};
use quiver_engine::query::{Deadline, GroupsResponse};
use quiver_engine::query::{MatrixResponse, QueryInput, QueryRequest};
use quiver_engine::{Collection, PointId, Vector, WithPayload, WithVectors};

use super::{blocking_until, resource, respond, search_where_cheap};
use crate::api::common::{ReadParams, ScoredPointOut};
use crate::api::groups::{
    lookup_id, GroupsResult, Lookup, QueryGroupsRequestDto, SearchGroupsRequestDto,
};
use crate::api::matrix::{
    SearchMatrixOffsetsResponse, SearchMatrixPairsResponse, SearchMatrixRequestDto,
};
use crate::api::recommend::{
    DiscoverBatch, DiscoverRequestDto, RecommendBatch, RecommendGroupsRequestDto,
    RecommendRequestDto,
};
use crate::api::search::{
    LookupLocation, QueryBatch, QueryOptions, QueryRequestDto, QueryResponse, QueryTimings,
    SearchBatch, SearchRequestDto, StageTiming,
};
use crate::api::strict_mode::{query_cost, read_cost, StrictMode, Use};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::inference::{self, Input};

/// Total estimated work of several searches: `None` when any of them is unbounded.
fn total_work(each: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    each.into_iter()
        .try_fold(0u64, |sum, work| Some(sum.saturating_add(work?)))
}

/// Registers the search routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/collections/{name}/points/search").route(web::post().to(search_points)))
        .service(
            resource("/collections/{name}/points/search/batch").route(web::post().to(search_batch)),
        )
        .service(resource("/collections/{name}/points/query").route(web::post().to(query_points)))
        .service(
            resource("/collections/{name}/points/query/batch").route(web::post().to(query_batch)),
        )
        .service(
            resource("/collections/{name}/points/search/groups")
                .route(web::post().to(search_groups)),
        )
        .service(
            resource("/collections/{name}/points/query/groups").route(web::post().to(query_groups)),
        )
        .service(resource("/collections/{name}/points/recommend").route(web::post().to(recommend)))
        .service(
            resource("/collections/{name}/points/recommend/batch")
                .route(web::post().to(recommend_batch)),
        )
        .service(
            resource("/collections/{name}/points/recommend/groups")
                .route(web::post().to(recommend_groups)),
        )
        .service(resource("/collections/{name}/points/discover").route(web::post().to(discover)))
        .service(
            resource("/collections/{name}/points/discover/batch")
                .route(web::post().to(discover_batch)),
        )
        .service(
            resource("/collections/{name}/points/search/matrix/pairs")
                .route(web::post().to(matrix_pairs)),
        )
        .service(
            resource("/collections/{name}/points/search/matrix/offsets")
                .route(web::post().to(matrix_offsets)),
        );
}

/// Qdrant's distance matrix as pairs: a random sample of the points that have the vector and pass
/// the filter, each with its `limit` nearest among the other sampled points.
#[utoipa::path(post, path = "/collections/{name}/points/search/matrix/pairs", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = SearchMatrixRequestDto,
    responses(
        (status = 200, description = "Neighbour pairs of the sample", body = inline(super::Envelope<SearchMatrixPairsResponse>)),
        (status = 400, description = "Unknown vector name, bad filter", body = super::ErrorEnvelope),
        (status = 422, description = "`sample` under 2 or `limit` under 1", body = super::ErrorEnvelope)))]
pub async fn matrix_pairs(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<SearchMatrixRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            let answer = search_matrix(&state, &collection, body.into_inner())?;
            Ok::<_, ApiError>(SearchMatrixPairsResponse::from(answer))
        })
        .await
    })
    .await
}

/// Qdrant's distance matrix as a sparse matrix over the sampled ids (the same sample as `pairs`).
#[utoipa::path(post, path = "/collections/{name}/points/search/matrix/offsets", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = SearchMatrixRequestDto,
    responses(
        (status = 200, description = "The sample's neighbour matrix", body = inline(super::Envelope<SearchMatrixOffsetsResponse>)),
        (status = 400, description = "Unknown vector name, bad filter", body = super::ErrorEnvelope),
        (status = 422, description = "`sample` under 2 or `limit` under 1", body = super::ErrorEnvelope)))]
pub async fn matrix_offsets(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<SearchMatrixRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            let answer = search_matrix(&state, &collection, body.into_inner())?;
            Ok::<_, ApiError>(SearchMatrixOffsetsResponse::from(answer))
        })
        .await
    })
    .await
}

/// Checks a matrix request against the server's limits and runs it.
fn search_matrix(
    state: &AppState,
    collection: &Collection,
    body: SearchMatrixRequestDto,
) -> Result<MatrixResponse, ApiError> {
    let request = body.into_request()?;
    state.limits.check_limit(request.sample, 0)?;
    state.limits.check_limit(request.limit, 0)?;
    if let Some(strict) = StrictMode::of(collection) {
        strict.check_limit(request.limit)?;
        strict.check_filter(request.filter.as_ref(), Use::Read)?;
        strict.charge_read(read_cost(request.filter.as_ref()))?;
    }
    Ok(collection.search_matrix(&request)?)
}

/// Nearest neighbours of a vector (Qdrant's legacy search).
#[utoipa::path(post, path = "/collections/{name}/points/search", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = SearchRequestDto,
    responses(
        (status = 200, description = "Hits, best first", body = inline(super::Envelope<Vec<ScoredPointOut>>)),
        (status = 400, description = "Wrong dimension, unknown vector name, bad filter", body = super::ErrorEnvelope)))]
pub async fn search_points(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<SearchRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let collection = state.collection(&name)?;
        let request = prepare_search(&state, &collection, body.into_inner(), deadline)?;
        let work = collection.query_work(&request);
        search_where_cheap(&state, work, deadline, move || {
            search(&collection, &request)
        })
        .await
    })
    .await
}

/// Several searches in one request.
#[utoipa::path(post, path = "/collections/{name}/points/search/batch", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = SearchBatch,
    responses((status = 200, description = "One hit list per search", body = inline(super::Envelope<Vec<Vec<ScoredPointOut>>>))))]
pub async fn search_batch(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<SearchBatch>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let body = body.into_inner();
        state.limits.check_batch(body.searches.len(), "searches")?;
        let collection = state.collection(&name)?;
        let requests = body
            .searches
            .into_iter()
            .map(|body| prepare_search(&state, &collection, body, deadline))
            .collect::<Result<Vec<_>, _>>()?;
        let work = total_work(requests.iter().map(|r| collection.query_work(r)));
        search_where_cheap(&state, work, deadline, move || {
            requests
                .iter()
                .map(|request| search(&collection, request))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
    })
    .await
}

/// The Query API: a vector or multivector query, optionally over prefetched candidates.
#[utoipa::path(post, path = "/collections/{name}/points/query", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams,
        ("timings" = Option<bool>, Query, description = "Add per-stage timings (embedding, each prefetch, the query) to the response")),
    request_body = QueryRequestDto,
    responses(
        (status = 200, description = "Hits, best first", body = inline(super::Envelope<QueryResponse>)),
        (status = 400, description = "Wrong dimension, unknown vector name, unsupported query", body = super::ErrorEnvelope)))]
pub async fn query_points(
    state: web::Data<AppState>,
    name: web::Path<String>,
    options: web::Query<QueryOptions>,
    read: web::Query<ReadParams>,
    body: web::Json<QueryRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let started = Instant::now();
        let collection = state.collection(&name)?;
        let prepared = prepare_query(&state, &collection, body.into_inner(), deadline)?;
        let work = prepared.work(&collection);
        let timings = options.timings;
        let run_state = state.clone();
        search_where_cheap(&state, work, deadline, move || {
            finish_query(
                &run_state,
                &collection,
                prepared,
                timings,
                deadline,
                started,
            )
        })
        .await
    })
    .await
}

/// Several queries in one request.
#[utoipa::path(post, path = "/collections/{name}/points/query/batch", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = QueryBatch,
    responses((status = 200, description = "One response per query", body = inline(super::Envelope<Vec<QueryResponse>>))))]
pub async fn query_batch(
    state: web::Data<AppState>,
    name: web::Path<String>,
    options: web::Query<QueryOptions>,
    read: web::Query<ReadParams>,
    body: web::Json<QueryBatch>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let body = body.into_inner();
        state.limits.check_batch(body.searches.len(), "searches")?;
        let collection = state.collection(&name)?;
        let timings = options.timings;
        let prepared = body
            .searches
            .into_iter()
            .map(|q| {
                let started = Instant::now();
                Ok((prepare_query(&state, &collection, q, deadline)?, started))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let work = total_work(prepared.iter().map(|(p, _)| p.work(&collection)));
        let run_state = state.clone();
        search_where_cheap(&state, work, deadline, move || {
            prepared
                .into_iter()
                .map(|(p, started)| {
                    finish_query(&run_state, &collection, p, timings, deadline, started)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
    })
    .await
}

/// The legacy search, typed and checked: one stage of the Query API.
fn prepare_search(
    state: &AppState,
    collection: &Collection,
    body: SearchRequestDto,
    deadline: Option<Deadline>,
) -> Result<QueryRequest, ApiError> {
    let mut request = body.into_request()?;
    request.deadline = deadline;
    if let Some(strict) = StrictMode::of(collection) {
        strict.check_query(&request, true)?;
        strict.charge_read(query_cost(&request))?;
    }
    state.limits.check_limit(request.limit, request.offset)?;
    Ok(request)
}

/// Runs a prepared legacy search.
fn search(
    collection: &Collection,
    request: &QueryRequest,
) -> Result<Vec<ScoredPointOut>, ApiError> {
    let config = &collection.config();
    Ok(collection
        .query(request)?
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
    deadline: Option<Deadline>,
) -> Result<QueryResponse, ApiError> {
    let started = Instant::now();
    let prepared = prepare_query(state, collection, body, deadline)?;
    finish_query(state, collection, prepared, timings, deadline, started)
}

/// A typed, checked query. Without documents it is resolved at once (there is nothing to embed, so
/// resolving only relabels its inputs) and the engine can estimate its work; with documents the
/// embedding, of unknown cost, is left for [`finish_query`].
enum Prepared {
    Resolved(QueryRequest),
    Documents(QueryRequest<Input<QueryInput>>),
}

impl Prepared {
    /// The engine's estimate of the query's work; `None` for documents and unbounded plans.
    fn work(&self, collection: &Collection) -> Option<u64> {
        match self {
            Prepared::Resolved(request) => collection.query_work(request),
            Prepared::Documents(_) => None,
        }
    }
}

/// Types the query and runs the checks and the default funnel on it (see [`Prepared`]).
fn prepare_query(
    state: &AppState,
    collection: &Collection,
    body: QueryRequestDto,
    deadline: Option<Deadline>,
) -> Result<Prepared, ApiError> {
    let config = &collection.config();
    let mut own = Vec::new();
    let mut request = body.into_request(&mut |at, using, id| {
        lookup_vector(state, collection, at, using, id, &mut own)
    })?;
    request.filter = without_ids(request.filter, own);
    if let Some(strict) = StrictMode::of(collection) {
        strict.check_query(&request, true)?;
        strict.charge_read(query_cost(&request))?;
    }
    apply_default_funnel(
        config,
        &mut request,
        state.limits.max_limit,
        Input::is_document,
    )?;
    state.limits.check_query(&request)?;
    if request
        .inputs()
        .iter()
        .any(|(_, input)| input.is_document())
    {
        return Ok(Prepared::Documents(request));
    }
    let mut request = inference::resolve_query(&state.models, config, request)?;
    request.deadline = deadline;
    Ok(Prepared::Resolved(request))
}

/// Embeds a prepared query's documents (if any) and runs it; with `timings`, says where the time
/// went since `started`.
fn finish_query(
    state: &AppState,
    collection: &Collection,
    prepared: Prepared,
    timings: bool,
    deadline: Option<Deadline>,
    started: Instant,
) -> Result<QueryResponse, ApiError> {
    let config = &collection.config();
    let request = match prepared {
        Prepared::Resolved(request) => request,
        Prepared::Documents(request) => {
            let mut request = inference::resolve_query(&state.models, config, request)?;
            request.deadline = deadline;
            request
        }
    };
    let embed_ms = started.elapsed().as_secs_f64() * 1e3;
    let answer = collection.query(&request)?;
    let total_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(QueryResponse::new(
        config,
        answer,
        timings.then_some((embed_ms, total_ms)),
    ))
}

/// The vector a point id of a stage with `lookup_from` stands for: that point's vector (`vector`, or
/// the stage's `using`) in the other collection. An unknown collection or point is a 404. When the
/// "other" collection is the one searched, the id goes to `own`: Qdrant still leaves such points out
/// of the hits.
fn lookup_vector(
    state: &AppState,
    searched: &Collection,
    at: &LookupLocation,
    using: &str,
    id: PointId,
    own: &mut Vec<PointId>,
) -> Result<QueryInput, ApiError> {
    let other = state.collection(&at.collection)?;
    if other.name() == searched.name() {
        own.push(id);
    }
    let name = at.vector.as_deref().unwrap_or(using);
    let vector = other
        .retrieve(
            &[id],
            &WithPayload::None,
            &WithVectors::Names(vec![name.to_string()]),
        )?
        .into_iter()
        .next()
        .and_then(|r| r.vectors)
        .and_then(|mut v| v.remove(name))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "Not found: no point with id {id} (and vector `{name}`) in lookup collection `{}`",
                at.collection
            ))
        })?;
    Ok(match vector {
        Vector::Dense(v) => QueryInput::Dense(v),
        Vector::Multi(m) => QueryInput::Multi(m),
        Vector::Sparse(v) => QueryInput::Sparse(v),
    })
}

/// `filter`, and not these points.
fn without_ids(filter: Option<Filter>, ids: Vec<PointId>) -> Option<Filter> {
    if ids.is_empty() {
        return filter;
    }
    let not_these = Condition::HasId(HasIdCondition { has_id: ids });
    let mut must = Vec::new();
    must.extend(filter.map(Condition::Filter));
    must.push(Condition::Filter(Filter {
        must: None,
        should: None,
        must_not: Some(OneOrMany::One(Box::new(not_these))),
        min_should: None,
    }));
    Some(Filter {
        must: Some(OneOrMany::Many(must)),
        should: None,
        must_not: None,
        min_should: None,
    })
}

/// The legacy search with its hits grouped by a payload field.
#[utoipa::path(post, path = "/collections/{name}/points/search/groups", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = SearchGroupsRequestDto,
    responses(
        (status = 200, description = "Groups ordered by their best hit", body = inline(super::Envelope<GroupsResult>)),
        (status = 400, description = "Wrong dimension, unknown vector name, bad filter", body = super::ErrorEnvelope),
        (status = 404, description = "Unknown collection, or unknown `with_lookup` collection", body = super::ErrorEnvelope),
        (status = 422, description = "`group_size` or `limit` of 0", body = super::ErrorEnvelope)))]
pub async fn search_groups(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<SearchGroupsRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            let (mut request, lookup) = body.into_inner().into_request(state.limits.max_limit)?;
            request.query.deadline = deadline;
            if let Some(strict) = StrictMode::of(&collection) {
                strict.check_groups(request.groups, &request.group_by)?;
                strict.check_query(&request.query, false)?;
                strict.charge_read(query_cost(&request.query))?;
            }
            state.limits.check_query(&request.query)?;
            let lookup = lookup
                .map(|l| Ok::<_, ApiError>((state.collection(&l.collection)?, l)))
                .transpose()?;
            let answer = collection.query_groups(&request)?;
            groups_result(&collection, answer, lookup)
        })
        .await
    })
    .await
}

/// The Query API with its hits grouped by a payload field.
#[utoipa::path(post, path = "/collections/{name}/points/query/groups", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams,
        ("timings" = Option<bool>, Query, description = "Add per-stage timings (embedding, each stage of each round) to the response")),
    request_body = QueryGroupsRequestDto,
    responses(
        (status = 200, description = "Groups ordered by their best hit", body = inline(super::Envelope<GroupsResult>)),
        (status = 400, description = "Wrong dimension, unknown vector name, unsupported query", body = super::ErrorEnvelope),
        (status = 404, description = "Unknown collection, or unknown `with_lookup` collection", body = super::ErrorEnvelope),
        (status = 422, description = "`group_size` or `limit` of 0", body = super::ErrorEnvelope)))]
pub async fn query_groups(
    state: web::Data<AppState>,
    name: web::Path<String>,
    options: web::Query<QueryOptions>,
    read: web::Query<ReadParams>,
    body: web::Json<QueryGroupsRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let collection = state.collection(&name)?;
        let timings = options.timings;
        blocking_until(deadline, move || {
            run_groups(&state, &collection, body.into_inner(), timings, deadline)
        })
        .await
    })
    .await
}

/// Types a grouped query, runs the default funnel on a plain one, embeds its documents, then runs
/// it in rounds; with `timings`, says where the time went.
fn run_groups(
    state: &AppState,
    collection: &std::sync::Arc<Collection>,
    body: QueryGroupsRequestDto,
    timings: bool,
    deadline: Option<Deadline>,
) -> Result<GroupsResult, ApiError> {
    let started = Instant::now();
    let config = collection.config();
    let mut own = Vec::new();
    let (mut request, lookup) = body
        .into_request(state.limits.max_limit, &mut |at, using, id| {
            lookup_vector(state, collection, at, using, id, &mut own)
        })?;
    request.query.filter = without_ids(request.query.filter, own);
    if let Some(strict) = StrictMode::of(collection) {
        strict.check_groups(request.groups, &request.group_by)?;
        strict.check_query(&request.query, false)?;
        strict.charge_read(query_cost(&request.query))?;
    }
    apply_default_funnel(
        &config,
        &mut request.query,
        state.limits.max_limit,
        Input::is_document,
    )?;
    state.limits.check_query(&request.query)?;
    let lookup = lookup
        .map(|l| Ok::<_, ApiError>((state.collection(&l.collection)?, l)))
        .transpose()?;
    let mut query = inference::resolve_query(&state.models, &config, request.query)?;
    query.deadline = deadline;
    let embed_ms = started.elapsed().as_secs_f64() * 1e3;
    let request = quiver_engine::query::GroupsRequest {
        query,
        group_by: request.group_by,
        group_size: request.group_size,
        groups: request.groups,
    };
    let answer = collection.query_groups(&request)?;
    let stages = timings.then(|| answer.stages.clone());
    let mut result = groups_result(collection, answer, lookup)?;
    result.timings = stages.map(|stages| QueryTimings {
        embed_ms,
        stages: stages.iter().map(StageTiming::from).collect(),
        total_ms: started.elapsed().as_secs_f64() * 1e3,
    });
    Ok(result)
}

/// The groups in Qdrant's shape, each with its record from the lookup collection when asked for.
fn groups_result(
    collection: &Collection,
    answer: GroupsResponse,
    lookup: Option<(std::sync::Arc<Collection>, Lookup)>,
) -> Result<GroupsResult, ApiError> {
    let config = collection.config();
    let Some((other, lookup)) = lookup else {
        return Ok(GroupsResult::new(&config, answer.groups, None));
    };
    let ids: Vec<_> = answer
        .groups
        .iter()
        .filter_map(|g| lookup_id(&g.key))
        .collect();
    let records = other.retrieve(&ids, &lookup.with_payload, &lookup.with_vectors)?;
    Ok(GroupsResult::new(
        &config,
        answer.groups,
        Some((&other.config(), records)),
    ))
}

/// Qdrant's legacy recommendation: points like the positive examples and unlike the negative ones.
#[utoipa::path(post, path = "/collections/{name}/points/recommend", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = RecommendRequestDto,
    responses(
        (status = 200, description = "Hits, best first", body = inline(super::Envelope<Vec<ScoredPointOut>>)),
        (status = 400, description = "No examples, unknown strategy, wrong dimension", body = super::ErrorEnvelope),
        (status = 404, description = "Unknown collection, or an example point that does not exist", body = super::ErrorEnvelope)))]
pub async fn recommend(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<RecommendRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            let query = body.into_inner().into_query();
            Ok::<_, ApiError>(run_query(&state, &collection, query, false, deadline)?.points)
        })
        .await
    })
    .await
}

/// Several recommendations in one request.
#[utoipa::path(post, path = "/collections/{name}/points/recommend/batch", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = RecommendBatch,
    responses((status = 200, description = "One hit list per request", body = inline(super::Envelope<Vec<Vec<ScoredPointOut>>>))))]
pub async fn recommend_batch(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<RecommendBatch>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let body = body.into_inner();
        state.limits.check_batch(body.searches.len(), "searches")?;
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            body.searches
                .into_iter()
                .map(|r| {
                    Ok(run_query(&state, &collection, r.into_query(), false, deadline)?.points)
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await
    })
    .await
}

/// A recommendation with its hits grouped by a payload field.
#[utoipa::path(post, path = "/collections/{name}/points/recommend/groups", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = RecommendGroupsRequestDto,
    responses(
        (status = 200, description = "Groups ordered by their best hit", body = inline(super::Envelope<GroupsResult>)),
        (status = 400, description = "No examples, unknown strategy, wrong dimension", body = super::ErrorEnvelope),
        (status = 422, description = "`group_size` or `limit` of 0", body = super::ErrorEnvelope)))]
pub async fn recommend_groups(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<RecommendGroupsRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            let query = body.into_inner().into_query();
            run_groups(&state, &collection, query, false, deadline)
        })
        .await
    })
    .await
}

/// Qdrant's legacy discovery: with a `target`, points in the zone the context pairs mark out ranked
/// by the target; without one, a context search.
#[utoipa::path(post, path = "/collections/{name}/points/discover", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = DiscoverRequestDto,
    responses(
        (status = 200, description = "Hits, best first", body = inline(super::Envelope<Vec<ScoredPointOut>>)),
        (status = 400, description = "Neither target nor context, wrong dimension", body = super::ErrorEnvelope),
        (status = 404, description = "Unknown collection, or an example point that does not exist", body = super::ErrorEnvelope)))]
pub async fn discover(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<DiscoverRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            let query = body.into_inner().into_query()?;
            Ok::<_, ApiError>(run_query(&state, &collection, query, false, deadline)?.points)
        })
        .await
    })
    .await
}

/// Several discoveries in one request.
#[utoipa::path(post, path = "/collections/{name}/points/discover/batch", tag = "search",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = DiscoverBatch,
    responses((status = 200, description = "One hit list per request", body = inline(super::Envelope<Vec<Vec<ScoredPointOut>>>))))]
pub async fn discover_batch(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<DiscoverBatch>,
) -> HttpResponse {
    let deadline = read.deadline("Search");
    respond(async move {
        let body = body.into_inner();
        state.limits.check_batch(body.searches.len(), "searches")?;
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            body.searches
                .into_iter()
                .map(|d| {
                    Ok(run_query(&state, &collection, d.into_query()?, false, deadline)?.points)
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await
    })
    .await
}
