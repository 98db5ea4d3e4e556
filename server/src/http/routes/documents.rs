//! `POST /collections/{name}/documents` (Quiver's extension): whole documents, chunked, embedded
//! with the collection's bindings and upserted by the inference layer, one WAL record per document.

use actix_web::{web, HttpResponse};

use super::{blocking, resource, respond};
use crate::api::documents::{DocumentOut, DocumentsRequest, DocumentsResult};
use crate::http::state::AppState;
use crate::inference;

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/collections/{name}/documents").route(web::post().to(upsert_documents)));
}

/// Chunk, embed and upsert whole documents.
#[utoipa::path(post, path = "/collections/{name}/documents", tag = "points",
    params(("name" = String, Path, description = "Collection name")),
    request_body = DocumentsRequest,
    responses(
        (status = 200, description = "Durable; the point ids of each document", body = inline(super::Envelope<DocumentsResult>)),
        (status = 400, description = "A malformed document, a text over the limit with chunking off, an unknown vector", body = super::ErrorEnvelope),
        (status = 404, description = "No such collection", body = super::ErrorEnvelope),
        (status = 503, description = "The model is still loading", body = super::ErrorEnvelope)))]
pub async fn upsert_documents(
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<DocumentsRequest>,
) -> HttpResponse {
    respond(async move {
        let body = body.into_inner();
        state
            .limits
            .check_batch(body.documents.len(), "documents")?;
        let collection = state.collection(&name)?;
        blocking(move || {
            let (docs, opts) = body.into_parts()?;
            let written = inference::write_documents(&state.models, &collection, docs, &opts)?;
            Ok(DocumentsResult {
                documents: written.into_iter().map(DocumentOut::from).collect(),
            })
        })
        .await
    })
    .await
}
