//! `/collections/{name}/points/vectors…` (update and delete named vectors) and `/points/batch` (many
//! update operations applied in order as one logged write).

use actix_web::{web, HttpResponse};

use quiver_engine::{PointsSelector, UpdateOperation};

use super::{blocking, resource, respond};
use crate::api::common::{UpdateResult, WaitParams};
use crate::api::strict_mode::{StrictMode, Use};
use crate::api::updates::{
    point_vectors, DeleteVectors, OperationDraft, UpdateOperationDto, UpdateOperations,
    UpdateVectors,
};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::inference;

/// Registers the vector and batch routes (before `points/{id}`, which would shadow them).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/collections/{name}/points/vectors").route(web::put().to(update_vectors)),
    )
    .service(
        resource("/collections/{name}/points/vectors/delete").route(web::post().to(delete_vectors)),
    )
    .service(resource("/collections/{name}/points/batch").route(web::post().to(batch_update)));
}

/// Replace named vectors of existing points; their other vectors and payloads stay.
#[utoipa::path(put, path = "/collections/{name}/points/vectors", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = UpdateVectors,
    responses(
        (status = 200, description = "Durable", body = inline(super::Envelope<UpdateResult>)),
        (status = 400, description = "Wrong dimension, unknown vector name, non-finite value", body = super::ErrorEnvelope),
        (status = 404, description = "No such point or collection; nothing was written", body = super::ErrorEnvelope)))]
pub async fn update_vectors(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<UpdateVectors>,
) -> HttpResponse {
    respond(async move {
        let body = body.into_inner();
        state.limits.check_batch(body.points.len(), "points")?;
        let collection = state.collection(&name)?;
        blocking(move || {
            let strict = StrictMode::of(&collection);
            if let Some(strict) = &strict {
                strict.check_batch(body.points.len(), "update limit")?;
            }
            let (drafts, update_filter) = body.into_drafts()?;
            if let Some(strict) = &strict {
                strict.check_filter(update_filter.as_ref(), Use::Write)?;
            }
            let inserts = inference::resolve_points(&state.models, &collection.config(), drafts)?;
            if let Some(strict) = &strict {
                strict.check_vectors(&collection, inserts.iter().map(|p| &p.vectors))?;
                strict.charge_write(inserts.len().max(1))?;
            }
            Ok(UpdateResult::completed(
                collection.update_vectors(point_vectors(inserts), update_filter)?,
            ))
        })
        .await
    })
    .await
}

/// Remove named vectors from points, which keep their other vectors and payloads.
#[utoipa::path(post, path = "/collections/{name}/points/vectors/delete", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = DeleteVectors,
    responses(
        (status = 200, description = "Durable", body = inline(super::Envelope<UpdateResult>)),
        (status = 400, description = "Unknown vector name", body = super::ErrorEnvelope),
        (status = 404, description = "No such point or collection; nothing was written", body = super::ErrorEnvelope)))]
pub async fn delete_vectors(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<DeleteVectors>,
) -> HttpResponse {
    respond(async move {
        let (selector, names) = body.into_inner().into_parts()?;
        if let PointsSelector::Ids(ids) = &selector {
            state.limits.check_batch(ids.len(), "ids")?;
        }
        let collection = state.collection(&name)?;
        blocking(move || {
            if let Some(strict) = StrictMode::of(&collection) {
                strict.check_selector(&selector)?;
                strict.charge_write(strict.selector_cost(&collection, &selector)?)?;
            }
            Ok(UpdateResult::completed(
                collection.delete_vectors(selector, names)?,
            ))
        })
        .await
    })
    .await
}

/// Apply update operations in order, all or none: one logged write, so a crash keeps every
/// operation or none. The first bad operation is named by its position and nothing is written.
#[utoipa::path(post, path = "/collections/{name}/points/batch", tag = "points",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = UpdateOperations,
    responses(
        (status = 200, description = "Durable; one result per operation, all with the batch's operation id", body = inline(super::Envelope<Vec<UpdateResult>>)),
        (status = 400, description = "A bad operation, named by its position (from 0); nothing was written", body = super::ErrorEnvelope),
        (status = 404, description = "No such collection, or an operation names a point that does not exist", body = super::ErrorEnvelope)))]
pub async fn batch_update(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<UpdateOperations>,
) -> HttpResponse {
    respond(async move {
        let in_op = |index: usize, kind: &'static str| {
            move |e: ApiError| ApiError::InOperation {
                index,
                kind,
                source: Box::new(e),
            }
        };
        let mut parsed = Vec::new();
        for (i, value) in body.into_inner().operations.into_iter().enumerate() {
            parsed
                .push(UpdateOperationDto::parse(value).map_err(|e| in_op(i, "unknown")(e.into()))?);
        }
        let total = parsed.iter().map(UpdateOperationDto::len).sum();
        state.limits.check_batch(total, "points and ids")?;
        let collection = state.collection(&name)?;
        blocking(move || {
            let config = collection.config();
            let mut ops = Vec::with_capacity(parsed.len());
            for (i, dto) in parsed.into_iter().enumerate() {
                let kind = dto.kind();
                let op = draft(&state, &config, dto).map_err(in_op(i, kind))?;
                ops.push(op);
            }
            if let Some(strict) = StrictMode::of(&collection) {
                strict.check_operations(&collection, &ops)?;
            }
            let n = ops.len();
            let seq = collection.update_batch(ops)?;
            Ok((0..n)
                .map(|_| UpdateResult::completed(seq))
                .collect::<Vec<_>>())
        })
        .await
    })
    .await
}

/// One batch operation for the engine, its documents embedded.
fn draft(
    state: &AppState,
    config: &quiver_engine::CollectionConfig,
    dto: UpdateOperationDto,
) -> Result<UpdateOperation, ApiError> {
    Ok(match dto.into_draft()? {
        OperationDraft::Ready(op) => op,
        OperationDraft::Upsert(mut upsert) => {
            let conditions = upsert.take_conditions();
            let points = upsert.into_drafts()?;
            UpdateOperation::Upsert {
                points: inference::resolve_points(&state.models, config, points)?,
                conditions,
            }
        }
        OperationDraft::UpdateVectors(update) => {
            let (drafts, update_filter) = update.into_drafts()?;
            let inserts = inference::resolve_points(&state.models, config, drafts)?;
            UpdateOperation::UpdateVectors {
                points: point_vectors(inserts),
                update_filter,
            }
        }
    })
}
