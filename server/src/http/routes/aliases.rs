//! Collection aliases in Qdrant's shapes: `POST /collections/aliases` (create, delete and rename,
//! all or none), `GET /aliases` and `GET /collections/{name}/aliases`. Every other route resolves an
//! alias where it takes a collection name (in `Collections::get`).

use actix_web::{guard, web, HttpResponse};

use super::{blocking, resource, respond};
use crate::api::aliases::{AliasesList, ChangeAliases};
use crate::http::state::AppState;

/// Registers the alias routes; they go before `/collections/{name}`, which would otherwise take
/// `/collections/aliases` as a collection's name.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Only POST: other methods fall through to `/collections/{name}` as they do in Qdrant, so a
    // collection named `aliases` stays reachable.
    cfg.service(
        web::resource("/collections/aliases")
            .guard(guard::Post())
            .route(web::post().to(update_aliases)),
    )
    .service(resource("/aliases").route(web::get().to(list_aliases)))
    .service(resource("/collections/{name}/aliases").route(web::get().to(collection_aliases)));
}

/// Create, delete and rename aliases: the actions apply in order, all or none.
#[utoipa::path(post, path = "/collections/aliases", tag = "aliases",
    request_body = ChangeAliases,
    responses(
        (status = 200, description = "Applied", body = inline(super::Envelope<bool>)),
        (status = 400, description = "A malformed body or an invalid alias name", body = super::ErrorEnvelope),
        (status = 404, description = "An unknown collection (create) or alias (rename)", body = super::ErrorEnvelope),
        (status = 409, description = "An alias would take a collection's name", body = super::ErrorEnvelope),
        (status = 422, description = "An alias name of the wrong length", body = super::ErrorEnvelope)))]
pub async fn update_aliases(
    state: web::Data<AppState>,
    body: web::Json<ChangeAliases>,
) -> HttpResponse {
    respond(async move {
        let actions = body.into_inner().into_actions()?;
        let collections = state.collections()?;
        blocking(move || {
            collections.update_aliases(&actions)?;
            Ok(true)
        })
        .await
    })
    .await
}

/// Every alias.
#[utoipa::path(get, path = "/aliases", tag = "aliases",
    responses((status = 200, description = "Every alias, by alias name", body = inline(super::Envelope<AliasesList>))))]
pub async fn list_aliases(state: web::Data<AppState>) -> HttpResponse {
    respond(async move { Ok(AliasesList::from(state.collections()?.list_aliases())) }).await
}

/// The aliases of one collection (named directly or by an alias).
#[utoipa::path(get, path = "/collections/{name}/aliases", tag = "aliases",
    params(("name" = String, Path, description = "Collection name or alias")),
    responses(
        (status = 200, description = "The collection's aliases", body = inline(super::Envelope<AliasesList>)),
        (status = 404, description = "No such collection or alias", body = super::ErrorEnvelope)))]
pub async fn collection_aliases(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> HttpResponse {
    respond(async move {
        Ok(AliasesList::from(
            state.collections()?.collection_aliases(&name)?,
        ))
    })
    .await
}
