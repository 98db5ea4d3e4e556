//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the request and
//! response types' `ToSchema` derives, so it cannot drift from the code.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes;
use crate::api::{collection_update, collections, common, points, search, updates};

/// The whole API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Quiver",
        description = "Quiver's HTTP API: Qdrant's REST dialect for collections, points, search and the \
                       Query API. Successes are `{\"result\": …, \"status\": \"ok\", \"time\": s}`, errors \
                       `{\"status\": {\"error\": \"…\"}, \"time\": s}`."
    ),
    paths(
        routes::service::root,
        routes::service::healthz,
        routes::service::livez,
        routes::service::readyz,
        routes::service::metrics,
        routes::telemetry::telemetry,
        routes::service::openapi_json,
        routes::service::docs,
        routes::collections::list_collections,
        routes::collections::create_collection,
        routes::collections::update_collection,
        routes::collections::create_vector,
        routes::collections::delete_vector,
        routes::collections::get_collection,
        routes::collections::delete_collection,
        routes::collections::collection_exists,
        routes::optimizations::get_optimizations,
        routes::aliases::update_aliases,
        routes::aliases::list_aliases,
        routes::aliases::collection_aliases,
        routes::points::upsert_points,
        routes::points::retrieve_points,
        routes::points::get_point,
        routes::points::delete_points,
        routes::points::scroll_points,
        routes::points::facet,
        routes::points::count_points,
        routes::points::set_payload,
        routes::points::overwrite_payload,
        routes::points::delete_payload,
        routes::points::clear_payload,
        routes::updates::update_vectors,
        routes::updates::delete_vectors,
        routes::updates::batch_update,
        routes::payload_index::create_field_index,
        routes::payload_index::delete_field_index,
        routes::documents::upsert_documents,
        routes::search::search_points,
        routes::search::search_batch,
        routes::search::query_points,
        routes::search::query_batch,
        routes::search::search_groups,
        routes::search::query_groups,
        routes::search::recommend,
        routes::search::recommend_batch,
        routes::search::recommend_groups,
        routes::search::discover,
        routes::search::discover_batch,
        routes::search::matrix_pairs,
        routes::search::matrix_offsets,
        routes::snapshots::create_snapshot,
        routes::snapshots::list_snapshots,
        routes::snapshots::download_snapshot,
        routes::snapshots::delete_snapshot,
        routes::snapshots::recover_snapshot,
        routes::snapshots::upload_snapshot,
        routes::snapshots::create_full_snapshot,
        routes::snapshots::list_full_snapshots,
        routes::snapshots::download_full_snapshot,
        routes::snapshots::delete_full_snapshot,
        routes::embeddings::embed,
        routes::embeddings::embed_all,
        routes::embeddings::openai_embeddings,
        routes::embeddings::openai_models,
        routes::image_files::image_file,
    ),
    components(schemas(
        routes::ErrorEnvelope,
        common::ExtendedPointId,
        common::FilterDoc,
        collections::CreateCollection,
        collection_update::UpdateCollection,
        collection_update::VectorNameConfig,
        points::UpsertPoints,
        updates::UpdateOperationDto,
        search::QueryRequestDto,
    )),
    modifiers(&Security),
    security(("api-key" = []), ("bearer" = [])),
    tags(
        (name = "service", description = "Health, metrics, telemetry and this document"),
        (name = "collections", description = "Create, inspect, update and delete collections"),
        (name = "aliases", description = "Second names of collections, switched atomically"),
        (name = "points", description = "Write and read points"),
        (name = "payload", description = "Change payloads"),
        (name = "search", description = "Search and the Query API"),
        (name = "snapshots", description = "Back up and restore collections (admin key)"),
        (name = "embeddings", description = "Embed texts with a served model (TEI and OpenAI dialects)"),
    )
)]
pub struct ApiDoc;

/// Declares the two ways to send an API key.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api-key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("api-key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
