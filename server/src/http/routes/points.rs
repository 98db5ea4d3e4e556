//! `/collections/{name}/points…`: upsert, retrieve, delete, scroll, count and payload updates.

use actix_web::{web, HttpResponse};

use quiver_engine::point::{PayloadOp, ScrollRequest};
use quiver_engine::query::FacetRequest;
use quiver_engine::{PointId, PointsSelector, WithPayload, WithVectors};

use super::{blocking, blocking_until, resource, respond};
use crate::api::common::{
    selector_from, with_payload, with_vectors, PointsSelectorDto, ReadParams, RecordOut,
    UpdateResult, WaitParams,
};
use crate::api::points::{
    parse_order_by, CountRequest, CountResult, DeletePayload, FacetHitOut, FacetRequestDto,
    FacetResponseOut, PointRequest, ScrollRequestDto, ScrollResultOut, SetPayload, UpsertPoints,
};
use crate::api::strict_mode::{payload_op_bytes, read_cost, StrictMode, Use};
use crate::http::error::{bad_request, ApiError};
use crate::http::state::AppState;
use crate::inference;

/// Registers the point routes (after the search routes, before nothing: `points/{id}` comes last).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/collections/{name}/points")
            .route(web::put().to(upsert_points))
            .route(web::post().to(retrieve_points)),
    )
    .service(resource("/collections/{name}/points/delete").route(web::post().to(delete_points)))
    .service(resource("/collections/{name}/points/scroll").route(web::post().to(scroll_points)))
    .service(resource("/collections/{name}/facet").route(web::post().to(facet)))
    .service(resource("/collections/{name}/points/count").route(web::post().to(count_points)))
    .service(
        resource("/collections/{name}/points/payload")
            .route(web::post().to(set_payload))
            .route(web::put().to(overwrite_payload)),
    )
    .service(
        resource("/collections/{name}/points/payload/delete").route(web::post().to(delete_payload)),
    )
    .service(
        resource("/collections/{name}/points/payload/clear").route(web::post().to(clear_payload)),
    );
    super::updates::configure(cfg);
    cfg.service(resource("/collections/{name}/points/{id}").route(web::get().to(get_point)));
}

/// Insert or replace points.
#[utoipa::path(put, path = "/collections/{name}/points", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = UpsertPoints,
    responses(
        (status = 200, description = "Durable", body = inline(super::Envelope<UpdateResult>)),
        (status = 400, description = "Wrong dimension, unknown vector name, non-finite value", body = super::ErrorEnvelope),
        (status = 404, description = "No such collection", body = super::ErrorEnvelope)))]
pub async fn upsert_points(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<UpsertPoints>,
) -> HttpResponse {
    respond(async move {
        let mut body = body.into_inner();
        state.limits.check_batch(body.len(), "points")?;
        let collection = state.collection(&name)?;
        blocking(move || {
            let strict = StrictMode::of(&collection);
            if let Some(strict) = &strict {
                strict.check_batch(body.len(), "upsert limit")?;
            }
            let conditions = body.take_conditions();
            let points = body.into_drafts()?;
            let inserts = inference::resolve_points(&state.models, &collection.config(), points)?;
            if let Some(strict) = &strict {
                strict.check_filter(conditions.update_filter.as_ref(), Use::Write)?;
                strict.check_growth(&collection, &inserts)?;
                strict.check_upsert(&collection, &inserts)?;
                // Qdrant charges one write token per point.
                strict.charge_write(inserts.len().max(1))?;
            }
            Ok(UpdateResult::completed(
                collection.upsert_if(inserts, &conditions)?,
            ))
        })
        .await
    })
    .await
}

/// Retrieve points by id.
#[utoipa::path(post, path = "/collections/{name}/points", tag = "points",
    params(("name" = String, Path, description = "Collection name")),
    request_body = PointRequest,
    responses((status = 200, description = "The points that exist, in the order asked", body = inline(super::Envelope<Vec<RecordOut>>))))]
pub async fn retrieve_points(
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<PointRequest>,
) -> HttpResponse {
    respond(async move {
        let body = body.into_inner();
        state.limits.check_batch(body.ids.len(), "ids")?;
        let collection = state.collection(&name)?;
        blocking(move || {
            if let Some(strict) = StrictMode::of(&collection) {
                strict.charge_read(body.ids.len().max(1))?;
            }
            let config = &collection.config();
            let with_vectors = with_vectors(body.with_vector, false);
            let records = collection.retrieve(
                &body.ids,
                &with_payload(body.with_payload, true),
                &with_vectors,
            )?;
            Ok(records
                .into_iter()
                .map(|r| RecordOut::new(config, r))
                .collect::<Vec<_>>())
        })
        .await
    })
    .await
}

/// One point with its payload and vectors.
#[utoipa::path(get, path = "/collections/{name}/points/{id}", tag = "points",
    params(("name" = String, Path, description = "Collection name"),
           ("id" = String, Path, description = "Unsigned integer or UUID")),
    responses(
        (status = 200, description = "The point", body = inline(super::Envelope<RecordOut>)),
        (status = 404, description = "No such point or collection", body = super::ErrorEnvelope)))]
pub async fn get_point(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    respond(async move {
        let (name, id) = path.into_inner();
        let id: PointId = id.parse().map_err(bad_request)?;
        let collection = state.collection(&name)?;
        blocking(move || {
            if let Some(strict) = StrictMode::of(&collection) {
                strict.charge_read(1)?;
            }
            let record = collection
                .retrieve(&[id], &WithPayload::All, &WithVectors::All)?
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::NotFound(format!("point {id} does not exist")))?;
            Ok(RecordOut::new(&collection.config(), record))
        })
        .await
    })
    .await
}

/// Delete points by ids or filter.
#[utoipa::path(post, path = "/collections/{name}/points/delete", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = PointsSelectorDto,
    responses((status = 200, description = "Durable", body = inline(super::Envelope<UpdateResult>))))]
pub async fn delete_points(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<PointsSelectorDto>,
) -> HttpResponse {
    respond(async move {
        let selector: PointsSelector = body.into_inner().into();
        if let PointsSelector::Ids(ids) = &selector {
            state.limits.check_batch(ids.len(), "ids")?;
        }
        let collection = state.collection(&name)?;
        blocking(move || {
            if let Some(strict) = StrictMode::of(&collection) {
                strict.check_selector(&selector)?;
                strict.charge_write(strict.selector_cost(&collection, &selector)?)?;
            }
            Ok(UpdateResult::completed(collection.delete(selector)?))
        })
        .await
    })
    .await
}

/// A page of points in id order.
#[utoipa::path(post, path = "/collections/{name}/points/scroll", tag = "points",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = ScrollRequestDto,
    responses((status = 200, description = "A page", body = inline(super::Envelope<ScrollResultOut>))))]
pub async fn scroll_points(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<ScrollRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("Scroll");
    respond(async move {
        let mut body = body.into_inner();
        let order_by = parse_order_by(body.order_by.take().unwrap_or_default())?;
        let limit = body.limit.unwrap_or(10);
        state.limits.check_limit(limit, 0)?;
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            if let Some(strict) = StrictMode::of(&collection) {
                // As Qdrant: only a limit the request sets (the default page is 10).
                if let Some(limit) = body.limit {
                    strict.check_limit(limit)?;
                }
                strict.check_filter(body.filter.as_ref(), Use::Read)?;
                strict.charge_read(read_cost(body.filter.as_ref()))?;
            }
            let config = &collection.config();
            let request = ScrollRequest {
                filter: body.filter,
                offset: body.offset,
                limit,
                with_payload: with_payload(body.with_payload, true),
                with_vectors: with_vectors(body.with_vector, false),
            };
            let page = match &order_by {
                Some(order_by) => collection.scroll_ordered(&request, order_by)?,
                None => collection.scroll(&request)?,
            };
            Ok(ScrollResultOut {
                points: page
                    .points
                    .into_iter()
                    .map(|r| RecordOut::new(config, r))
                    .collect(),
                next_page_offset: page.next_page_offset,
            })
        })
        .await
    })
    .await
}

/// Points per value of a payload field, most frequent first (Qdrant's facet).
#[utoipa::path(post, path = "/collections/{name}/facet", tag = "points",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = FacetRequestDto,
    responses((status = 200, description = "The counts", body = inline(super::Envelope<FacetResponseOut>))))]
pub async fn facet(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<FacetRequestDto>,
) -> HttpResponse {
    let deadline = read.deadline("facet");
    respond(async move {
        let body = body.into_inner();
        let limit = body.limit.unwrap_or(10);
        state.limits.check_limit(limit, 0)?;
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            if let Some(strict) = StrictMode::of(&collection) {
                // As Qdrant: only a limit the request sets (the default page is 10).
                if let Some(limit) = body.limit {
                    strict.check_limit(limit)?;
                }
                strict.check_filter(body.filter.as_ref(), Use::Read)?;
                strict.charge_read(read_cost(body.filter.as_ref()))?;
            }
            let hits = collection.facet(&FacetRequest {
                key: body.key,
                limit,
                filter: body.filter,
            })?;
            Ok(FacetResponseOut {
                hits: hits
                    .into_iter()
                    .map(|h| FacetHitOut {
                        value: h.value,
                        count: h.count,
                    })
                    .collect(),
            })
        })
        .await
    })
    .await
}

/// Count points (matching a filter).
#[utoipa::path(post, path = "/collections/{name}/points/count", tag = "points",
    params(("name" = String, Path, description = "Collection name"), ReadParams),
    request_body = CountRequest,
    responses((status = 200, description = "The count", body = inline(super::Envelope<CountResult>))))]
pub async fn count_points(
    state: web::Data<AppState>,
    name: web::Path<String>,
    read: web::Query<ReadParams>,
    body: web::Json<CountRequest>,
) -> HttpResponse {
    let deadline = read.deadline("Count");
    respond(async move {
        let body = body.into_inner();
        let collection = state.collection(&name)?;
        blocking_until(deadline, move || {
            if let Some(strict) = StrictMode::of(&collection) {
                strict.check_exact(body.exact == Some(true))?;
                strict.check_filter(body.filter.as_ref(), Use::Read)?;
                strict.charge_read(read_cost(body.filter.as_ref()))?;
            }
            Ok(CountResult {
                count: collection.count(body.filter.as_ref())?,
            })
        })
        .await
    })
    .await
}

/// Merge keys into the payload of the selected points.
#[utoipa::path(post, path = "/collections/{name}/points/payload", tag = "payload",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = SetPayload,
    responses((status = 200, description = "Durable", body = inline(super::Envelope<UpdateResult>))))]
pub async fn set_payload(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<SetPayload>,
) -> HttpResponse {
    let body = body.into_inner();
    let op = PayloadOp::Set {
        payload: body.payload,
        key: body.key,
    };
    update_payload(state, name.into_inner(), body.points, body.filter, op).await
}

/// Replace the whole payload of the selected points.
#[utoipa::path(put, path = "/collections/{name}/points/payload", tag = "payload",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = SetPayload,
    responses((status = 200, description = "Durable", body = inline(super::Envelope<UpdateResult>))))]
pub async fn overwrite_payload(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<SetPayload>,
) -> HttpResponse {
    let body = body.into_inner();
    if body.key.is_some() {
        return ApiError::BadRequest("`key` applies to set payload, not overwrite".into())
            .to_response(0.0);
    }
    let op = PayloadOp::Overwrite(body.payload);
    update_payload(state, name.into_inner(), body.points, body.filter, op).await
}

/// Remove keys from the payload of the selected points.
#[utoipa::path(post, path = "/collections/{name}/points/payload/delete", tag = "payload",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = DeletePayload,
    responses((status = 200, description = "Durable", body = inline(super::Envelope<UpdateResult>))))]
pub async fn delete_payload(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<DeletePayload>,
) -> HttpResponse {
    let body = body.into_inner();
    let op = PayloadOp::DeleteKeys(body.keys);
    update_payload(state, name.into_inner(), body.points, body.filter, op).await
}

/// Remove every payload key of the selected points.
#[utoipa::path(post, path = "/collections/{name}/points/payload/clear", tag = "payload",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = PointsSelectorDto,
    responses((status = 200, description = "Durable", body = inline(super::Envelope<UpdateResult>))))]
pub async fn clear_payload(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<PointsSelectorDto>,
) -> HttpResponse {
    let (points, filter) = match body.into_inner() {
        PointsSelectorDto::Ids { points } => (Some(points), None),
        PointsSelectorDto::Filter { filter } => (None, Some(filter)),
    };
    update_payload(state, name.into_inner(), points, filter, PayloadOp::Clear).await
}

async fn update_payload(
    state: web::Data<AppState>,
    name: String,
    points: Option<Vec<PointId>>,
    filter: Option<quiver_engine::Filter>,
    op: PayloadOp,
) -> HttpResponse {
    respond(async move {
        let selector = selector_from(points, filter)?;
        if let PointsSelector::Ids(ids) = &selector {
            state.limits.check_batch(ids.len(), "ids")?;
        }
        let collection = state.collection(&name)?;
        blocking(move || {
            if let Some(strict) = StrictMode::of(&collection) {
                strict.check_selector(&selector)?;
                let selected = strict.selector_cost(&collection, &selector)?;
                strict.check_payload_bytes(&collection, selected * payload_op_bytes(&op))?;
                strict.charge_write(selected)?;
            }
            Ok(UpdateResult::completed(
                collection.update_payload(selector, op)?,
            ))
        })
        .await
    })
    .await
}
