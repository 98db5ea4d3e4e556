//! `/collections…`: create, list, inspect, update and delete collections, and add or delete their
//! named vectors.

use actix_web::{web, HttpResponse};

use super::{blocking, resource, respond};
use crate::api::collection_update::{UpdateCollection, VectorNameConfig};
use crate::api::collections::{
    validate_name, CollectionDescription, CollectionExistence, CollectionInfoOut, CollectionsList,
    CreateCollection,
};
use crate::api::common::{UpdateResult, WaitParams};
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Registers the collection routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/collections").route(web::get().to(list_collections)))
        .service(
            resource("/collections/{name}")
                .route(web::get().to(get_collection))
                .route(web::put().to(create_collection))
                .route(web::patch().to(update_collection))
                .route(web::delete().to(delete_collection)),
        )
        .service(resource("/collections/{name}/exists").route(web::get().to(collection_exists)))
        .service(
            resource("/collections/{name}/vectors/{vector}")
                .route(web::put().to(create_vector))
                .route(web::delete().to(delete_vector)),
        );
}

/// List collections.
#[utoipa::path(get, path = "/collections", tag = "collections",
    responses((status = 200, description = "The open collections", body = inline(super::Envelope<CollectionsList>))))]
pub async fn list_collections(state: web::Data<AppState>) -> HttpResponse {
    respond(async move {
        let collections = state.collections()?;
        Ok(CollectionsList {
            collections: collections
                .list()
                .into_iter()
                .map(|name| CollectionDescription { name })
                .collect(),
        })
    })
    .await
}

/// Create a collection.
#[utoipa::path(put, path = "/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = CreateCollection,
    responses(
        (status = 200, description = "Created", body = inline(super::Envelope<bool>)),
        (status = 400, description = "Invalid or unsupported config", body = super::ErrorEnvelope),
        (status = 409, description = "A collection of that name exists", body = super::ErrorEnvelope),
        (status = 422, description = "A value out of range", body = super::ErrorEnvelope)))]
pub async fn create_collection(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<CreateCollection>,
) -> HttpResponse {
    respond(async move {
        let name = name.into_inner();
        validate_name(&name)?;
        let config = body.into_inner().into_config()?;
        crate::inference::check_bindings(&state.models, &config)?;
        let collections = state.collections()?;
        blocking(move || {
            collections.create(&name, config)?;
            Ok(true)
        })
        .await
    })
    .await
}

/// Change a collection's settings (Qdrant's update collection). HNSW, quantization and `on_disk`
/// changes apply to segments sealed or rewritten from then on; the rest at once.
#[utoipa::path(patch, path = "/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    request_body = UpdateCollection,
    responses(
        (status = 200, description = "Updated", body = inline(super::Envelope<bool>)),
        (status = 400, description = "Unknown field, a setting that cannot change, or an unsupported one", body = super::ErrorEnvelope),
        (status = 404, description = "No such collection", body = super::ErrorEnvelope)))]
pub async fn update_collection(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
    body: web::Json<UpdateCollection>,
) -> HttpResponse {
    respond(async move {
        let update = body.into_inner().parse()?;
        let collection = state.collection(&name)?;
        blocking(move || {
            collection.update_config(|config| update.apply(config))?;
            Ok(true)
        })
        .await
    })
    .await
}

/// Add a named vector to a collection (dense or sparse). Existing points have no vector of that
/// name until they are written with one.
#[utoipa::path(put, path = "/collections/{name}/vectors/{vector}", tag = "collections",
    params(("name" = String, Path, description = "Collection name"),
           ("vector" = String, Path, description = "The new vector's name"), WaitParams),
    request_body = VectorNameConfig,
    responses(
        (status = 200, description = "Added durably", body = inline(super::Envelope<UpdateResult>)),
        (status = 400, description = "The name exists, or an invalid or unsupported config", body = super::ErrorEnvelope),
        (status = 404, description = "No such collection", body = super::ErrorEnvelope)))]
pub async fn create_vector(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    _wait: web::Query<WaitParams>,
    body: web::Json<VectorNameConfig>,
) -> HttpResponse {
    respond(async move {
        let (name, vector) = path.into_inner();
        let new = body.into_inner().into_new_vector(&vector)?;
        let collection = state.collection(&name)?;
        blocking(move || {
            Ok(UpdateResult::completed(
                collection.create_vector(&vector, new)?,
            ))
        })
        .await
    })
    .await
}

/// Delete a named vector: its data is no longer returned or searchable; its files go when their
/// segments are rewritten.
#[utoipa::path(delete, path = "/collections/{name}/vectors/{vector}", tag = "collections",
    params(("name" = String, Path, description = "Collection name"),
           ("vector" = String, Path, description = "The vector's name"), WaitParams),
    responses(
        (status = 200, description = "Deleted durably", body = inline(super::Envelope<UpdateResult>)),
        (status = 400, description = "No such vector, a vector bound to a model, or the last vector", body = super::ErrorEnvelope),
        (status = 404, description = "No such collection", body = super::ErrorEnvelope)))]
pub async fn delete_vector(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    _wait: web::Query<WaitParams>,
) -> HttpResponse {
    respond(async move {
        let (name, vector) = path.into_inner();
        let collection = state.collection(&name)?;
        blocking(move || Ok(UpdateResult::completed(collection.delete_vector(&vector)?))).await
    })
    .await
}

/// Collection config and counters.
#[utoipa::path(get, path = "/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "Collection name")),
    responses(
        (status = 200, description = "Config and counters", body = inline(super::Envelope<CollectionInfoOut>)),
        (status = 404, description = "No such collection", body = super::ErrorEnvelope)))]
pub async fn get_collection(state: web::Data<AppState>, name: web::Path<String>) -> HttpResponse {
    respond(async move {
        let collection = state.collection(&name)?;
        blocking(move || {
            Ok(CollectionInfoOut::new(
                &collection.config(),
                collection.info(),
            ))
        })
        .await
    })
    .await
}

/// Delete a collection; the result is false when it did not exist.
#[utoipa::path(delete, path = "/collections/{name}", tag = "collections",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    responses((status = 200, description = "Whether it existed", body = inline(super::Envelope<bool>))))]
pub async fn delete_collection(
    state: web::Data<AppState>,
    name: web::Path<String>,
    _wait: web::Query<WaitParams>,
) -> HttpResponse {
    respond(async move {
        // Names that could never have been created are refused before they reach the filesystem.
        validate_name(&name)?;
        let collections = state.collections()?;
        blocking(move || Ok(collections.delete(&name)?)).await
    })
    .await
}

/// Whether a collection exists.
#[utoipa::path(get, path = "/collections/{name}/exists", tag = "collections",
    params(("name" = String, Path, description = "Collection name")),
    responses((status = 200, description = "Existence", body = inline(super::Envelope<CollectionExistence>))))]
pub async fn collection_exists(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> HttpResponse {
    respond(async move {
        let exists = match state.collection(&name) {
            Ok(_) => true,
            Err(ApiError::Engine(quiver_engine::Error::CollectionNotFound(_))) => false,
            Err(other) => return Err(other),
        };
        Ok(CollectionExistence { exists })
    })
    .await
}
