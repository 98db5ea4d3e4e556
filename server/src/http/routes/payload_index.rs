//! `/collections/{name}/index…`: create and delete payload indexes (Qdrant's field index routes).

use actix_web::{web, HttpResponse};

use super::{blocking, resource, respond};
use crate::api::common::{UpdateResult, WaitParams};
use crate::api::payload_index::CreateFieldIndex;
use crate::api::strict_mode::StrictMode;
use crate::http::state::AppState;

/// Registers the payload index routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/collections/{name}/index").route(web::put().to(create_field_index)))
        .service(
            resource("/collections/{name}/index/{field_name}")
                .route(web::delete().to(delete_field_index)),
        );
}

/// Create (or replace) the index of a payload field. The schema is stored with the collection's
/// config; `GET /collections/{name}` lists it under `payload_schema`.
#[utoipa::path(put, path = "/collections/{name}/index", tag = "collections",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = CreateFieldIndex,
    responses(
        (status = 200, description = "Stored durably", body = inline(super::Envelope<UpdateResult>)),
        (status = 400, description = "Missing field_name or field_schema, unknown type or param", body = super::ErrorEnvelope),
        (status = 404, description = "No such collection", body = super::ErrorEnvelope),
        (status = 422, description = "Params Qdrant refuses (integer lookup and range both false)", body = super::ErrorEnvelope)))]
pub async fn create_field_index(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<CreateFieldIndex>,
) -> HttpResponse {
    respond(async move {
        let (field, schema) = body.into_inner().into_parts()?;
        let collection = state.collection(&name)?;
        blocking(move || {
            if let Some(strict) = StrictMode::of(&collection) {
                strict.check_index_count(&field)?;
            }
            Ok(UpdateResult::completed(
                collection.create_payload_index(&field, schema)?,
            ))
        })
        .await
    })
    .await
}

/// Delete the index of a payload field (deleting one that does not exist succeeds, as in Qdrant).
#[utoipa::path(delete, path = "/collections/{name}/index/{field_name}", tag = "collections",
    params(("name" = String, Path, description = "Collection name"),
           ("field_name" = String, Path, description = "The indexed payload key"), WaitParams),
    responses(
        (status = 200, description = "Stored durably", body = inline(super::Envelope<UpdateResult>)),
        (status = 404, description = "No such collection", body = super::ErrorEnvelope)))]
pub async fn delete_field_index(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    _wait: web::Query<WaitParams>,
) -> HttpResponse {
    respond(async move {
        let (name, field) = path.into_inner();
        let collection = state.collection(&name)?;
        blocking(move || {
            Ok(UpdateResult::completed(
                collection.delete_payload_index(&field)?,
            ))
        })
        .await
    })
    .await
}
