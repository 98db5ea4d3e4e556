//! `GET /image-files?path=…`: an image file under `--image-dir`, for the search page's thumbnails of
//! image hits (ingest stores an image's path in its payload). Read access; without `--image-dir` the
//! route answers 404, and a path outside the directory is a 400, as in image objects.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{blocking, resource};
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/image-files").route(web::get().to(image_file)));
}

/// The query string.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ImageFileQuery {
    /// A path relative to `--image-dir`, or absolute inside it.
    pub path: String,
}

/// The content type of an image file, from its first bytes (the formats the decoder reads).
fn content_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

/// An image file under `--image-dir`.
#[utoipa::path(get, path = "/image-files", tag = "embeddings", params(ImageFileQuery),
    responses(
        (status = 200, description = "The file (PNG, JPEG, GIF or WebP)"),
        (status = 400, description = "Outside --image-dir, missing, or not an image", body = super::ErrorEnvelope),
        (status = 404, description = "The server runs without --image-dir", body = super::ErrorEnvelope)))]
pub async fn image_file(
    state: web::Data<AppState>,
    query: web::Query<ImageFileQuery>,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let result = async {
        let root = state
            .models
            .image_dir()
            .map(ToOwned::to_owned)
            .ok_or_else(|| {
                ApiError::NotFound(
                    "the server serves image files only when it runs with --image-dir".into(),
                )
            })?;
        let path = query.into_inner().path;
        let bytes = blocking(move || Ok(crate::inference::read_image_file(&root, &path)?)).await?;
        let kind = content_type(&bytes).ok_or_else(|| {
            ApiError::BadRequest("the file is not a PNG, JPEG, GIF or WebP image".into())
        })?;
        Ok::<_, ApiError>((bytes, kind))
    }
    .await;
    match result {
        Ok((bytes, kind)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, kind))
            .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(bytes),
        Err(err) => err.to_response(started.elapsed().as_secs_f64()),
    }
}
