//! `/collections/{name}/snapshots…` and `/snapshots…` in Qdrant's shapes: create, list, download
//! (streamed with a Content-Length), delete, recover and upload. Recovery reads only snapshots inside
//! this server's snapshot directory: a snapshot name, or a `file://` path that resolves inside it.
//! An `http(s)://` location is downloaded only when the server runs with `--snapshot-url-recovery`,
//! and never from a private or loopback address unless `--snapshot-url-allow-private` says so (see
//! [`crate::http::snapshot_url`]). Uploads stream to a temporary file inside
//! the collection's snapshot directory under a name the server picks, bounded in size, and are removed
//! once restored.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_multipart::Multipart;
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use futures_util::StreamExt;
use quiver_engine::collection::SnapshotDescription;
use quiver_storage::snapshot::Limits;
use serde::Deserialize;

use super::{blocking, resource, respond};
use crate::api::collections::validate_name;
use crate::api::common::WaitParams;
use crate::api::snapshots::SnapshotDescriptionDoc;
use crate::http::error::{bad_request, ApiError};
use crate::http::snapshot_url;
use crate::http::state::AppState;

/// Registers the snapshot routes (`recover` and `upload` before `{snapshot}`, which would otherwise
/// shadow them).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/collections/{name}/snapshots")
            .route(web::get().to(list_snapshots))
            .route(web::post().to(create_snapshot)),
    )
    .service(
        resource("/collections/{name}/snapshots/recover").route(web::put().to(recover_snapshot)),
    )
    .service(
        resource("/collections/{name}/snapshots/upload").route(web::post().to(upload_snapshot)),
    )
    .service(
        resource("/collections/{name}/snapshots/{snapshot}")
            .route(web::get().to(download_snapshot))
            .route(web::delete().to(delete_snapshot)),
    )
    .service(
        resource("/snapshots")
            .route(web::get().to(list_full_snapshots))
            .route(web::post().to(create_full_snapshot)),
    )
    .service(
        resource("/snapshots/{snapshot}")
            .route(web::get().to(download_full_snapshot))
            .route(web::delete().to(delete_full_snapshot)),
    );
}

/// Create a snapshot of a collection; answers with its description.
#[utoipa::path(post, path = "/collections/{name}/snapshots", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name"), WaitParams),
    responses((status = 200, description = "The new snapshot", body = inline(super::Envelope<SnapshotDescriptionDoc>)),
        (status = 202, description = "`wait=false`: made, answered without its description")))]
pub async fn create_snapshot(
    state: web::Data<AppState>,
    name: web::Path<String>,
    wait: web::Query<WaitParams>,
) -> HttpResponse {
    let work = async move {
        let name = name.into_inner();
        validate_name(&name)?;
        let collections = state.collections()?;
        blocking(move || Ok(collections.create_snapshot(&name)?)).await
    };
    respond_waited(wait.wait, work).await
}

/// List a collection's snapshots: name, creation_time, size, checksum.
#[utoipa::path(get, path = "/collections/{name}/snapshots", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name")),
    responses((status = 200, description = "Oldest first", body = inline(super::Envelope<Vec<SnapshotDescriptionDoc>>))))]
pub async fn list_snapshots(state: web::Data<AppState>, name: web::Path<String>) -> HttpResponse {
    respond(async move {
        let name = name.into_inner();
        validate_name(&name)?;
        let collections = state.collections()?;
        blocking(move || -> Result<Vec<SnapshotDescription>, ApiError> {
            Ok(collections.list_snapshots(&name)?)
        })
        .await
    })
    .await
}

/// Delete a snapshot; 404 when it does not exist.
#[utoipa::path(delete, path = "/collections/{name}/snapshots/{snapshot}", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name"), ("snapshot" = String, Path, description = "Snapshot file name")),
    responses((status = 200, description = "Deleted", body = inline(super::Envelope<bool>)),
        (status = 404, description = "No such snapshot", body = super::ErrorEnvelope)))]
pub async fn delete_snapshot(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    respond(async move {
        let (name, snapshot) = path.into_inner();
        validate_name(&name)?;
        let collections = state.collections()?;
        blocking(move || {
            if collections.delete_snapshot(&name, &snapshot)? {
                Ok(true)
            } else {
                Err(ApiError::NotFound(format!(
                    "snapshot `{snapshot}` of collection `{name}` not found"
                )))
            }
        })
        .await
    })
    .await
}

/// A file sent in 256 KiB chunks, with its size known up front (so the response has a Content-Length).
struct FileBody {
    file: File,
    remaining: u64,
}

impl MessageBody for FileBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.remaining)
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = self.remaining.min(256 << 10) as usize;
        let mut buf = vec![0u8; want];
        // Snapshot files are immutable once published, so a short read means the file was deleted
        // and truncated under us: end the body with an error rather than send a short file.
        match self.file.read_exact(&mut buf) {
            Ok(()) => {
                self.remaining -= want as u64;
                Poll::Ready(Some(Ok(Bytes::from(buf))))
            }
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

/// Streams the archive at `path` (404 naming `what` when it does not exist).
fn stream_file(path: Result<PathBuf, ApiError>, snapshot: &str, what: String) -> HttpResponse {
    let opened = path.and_then(|file_path| {
        let file = match File::open(&file_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::NotFound(format!("{what} not found")))
            }
            Err(e) => {
                return Err(ApiError::Engine(
                    quiver_storage::Error::io(&file_path, e).into(),
                ))
            }
        };
        let len = file
            .metadata()
            .map_err(|e| ApiError::Engine(quiver_storage::Error::io(&file_path, e).into()))?
            .len();
        Ok((file, len))
    });
    match opened {
        Ok((file, len)) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .insert_header((
                "content-disposition",
                format!("attachment; filename=\"{snapshot}\""),
            ))
            .body(FileBody {
                file,
                remaining: len,
            }),
        Err(e) => e.to_response(0.0),
    }
}

/// Download a snapshot archive.
#[utoipa::path(get, path = "/collections/{name}/snapshots/{snapshot}", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name"), ("snapshot" = String, Path, description = "Snapshot file name")),
    responses((status = 200, description = "The archive, with a Content-Length", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such snapshot", body = super::ErrorEnvelope)))]
pub async fn download_snapshot(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (name, snapshot) = path.into_inner();
    let file = validate_name(&name)
        .map_err(ApiError::from)
        .and_then(|()| state.collections())
        .and_then(|c| Ok(c.snapshot_path(&name, &snapshot)?));
    stream_file(
        file,
        &snapshot,
        format!("snapshot `{snapshot}` of collection `{name}`"),
    )
}

/// Create a full snapshot: every collection in one archive.
#[utoipa::path(post, path = "/snapshots", tag = "snapshots", params(WaitParams),
    responses((status = 200, description = "The new full snapshot", body = inline(super::Envelope<SnapshotDescriptionDoc>)),
        (status = 202, description = "`wait=false`: made, answered without its description")))]
pub async fn create_full_snapshot(
    state: web::Data<AppState>,
    wait: web::Query<WaitParams>,
) -> HttpResponse {
    let work = async move {
        let collections = state.collections()?;
        blocking(move || Ok(collections.create_full_snapshot()?)).await
    };
    respond_waited(wait.wait, work).await
}

/// Qdrant's answer to `?wait=false`: 202 with `{"status": "accepted"}` and no result. The snapshot is
/// still made before the answer (an error is still reported), so a client never polls for it.
async fn respond_waited<T: serde::Serialize>(
    wait: Option<bool>,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> HttpResponse {
    if wait != Some(false) {
        return respond(work).await;
    }
    let start = std::time::Instant::now();
    match work.await {
        Ok(_) => HttpResponse::Accepted().json(serde_json::json!({
            "status": "accepted",
            "time": start.elapsed().as_secs_f64(),
        })),
        Err(err) => err.to_response(start.elapsed().as_secs_f64()),
    }
}

/// List full snapshots.
#[utoipa::path(get, path = "/snapshots", tag = "snapshots",
    responses((status = 200, description = "Oldest first", body = inline(super::Envelope<Vec<SnapshotDescriptionDoc>>))))]
pub async fn list_full_snapshots(state: web::Data<AppState>) -> HttpResponse {
    respond(async move {
        let collections = state.collections()?;
        blocking(move || -> Result<Vec<SnapshotDescription>, ApiError> {
            Ok(collections.list_full_snapshots()?)
        })
        .await
    })
    .await
}

/// Download a full snapshot.
#[utoipa::path(get, path = "/snapshots/{snapshot}", tag = "snapshots",
    params(("snapshot" = String, Path, description = "Snapshot file name")),
    responses((status = 200, description = "The archive, with a Content-Length", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such snapshot", body = super::ErrorEnvelope)))]
pub async fn download_full_snapshot(
    state: web::Data<AppState>,
    snapshot: web::Path<String>,
) -> HttpResponse {
    let snapshot = snapshot.into_inner();
    let file = state
        .collections()
        .and_then(|c| Ok(c.full_snapshot_path(&snapshot)?));
    stream_file(file, &snapshot, format!("full snapshot `{snapshot}`"))
}

/// Delete a full snapshot; 404 when it does not exist.
#[utoipa::path(delete, path = "/snapshots/{snapshot}", tag = "snapshots",
    params(("snapshot" = String, Path, description = "Snapshot file name")),
    responses((status = 200, description = "Deleted", body = inline(super::Envelope<bool>)),
        (status = 404, description = "No such snapshot", body = super::ErrorEnvelope)))]
pub async fn delete_full_snapshot(
    state: web::Data<AppState>,
    snapshot: web::Path<String>,
) -> HttpResponse {
    respond(async move {
        let snapshot = snapshot.into_inner();
        let collections = state.collections()?;
        blocking(move || {
            if collections.delete_full_snapshot(&snapshot)? {
                Ok(true)
            } else {
                Err(ApiError::NotFound(format!(
                    "full snapshot `{snapshot}` not found"
                )))
            }
        })
        .await
    })
    .await
}

/// Body of `PUT /collections/{name}/snapshots/recover`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RecoverRequest {
    /// A snapshot name (of this collection, or of another one on this server), `file://` + a path
    /// inside the snapshot directory, or an `http(s)://` URL when the server allows downloads.
    pub location: String,
    /// Expected SHA-256 of the archive.
    #[serde(default)]
    pub checksum: Option<String>,
    /// Accepted for compatibility; a single node has only one source of truth.
    #[serde(default)]
    #[allow(dead_code)]
    pub priority: Option<String>,
}

/// Resolves a recover location to a snapshot file inside `snapshots_dir`.
fn resolve_location(
    collections: &quiver_engine::Collections,
    name: &str,
    location: &str,
) -> Result<PathBuf, ApiError> {
    let Some(raw) = location.strip_prefix("file://") else {
        if location.contains("://") {
            return Err(bad_request(format!("unsupported location {location:?}")));
        }
        // A bare snapshot name: this collection's own, or else another collection's (restoring a copy
        // of `a` as `b`). Names carry their collection and a timestamp, so at most one matches.
        let own = collections.snapshot_path(name, location)?;
        if own.is_file() {
            return Ok(own);
        }
        let found = std::fs::read_dir(collections.snapshots_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join(location))
            .find(|path| path.is_file());
        return Ok(found.unwrap_or(own));
    };
    let root = collections.snapshots_dir();
    let not_inside = || {
        bad_request(format!(
            "location {location:?} is not a snapshot file inside the snapshot directory"
        ))
    };
    // Resolve symlinks and `..` before the containment check, so neither can escape the directory.
    let root = root.canonicalize().map_err(|_| not_inside())?;
    let path = Path::new(raw).canonicalize().map_err(|_| not_inside())?;
    if !path.starts_with(&root) || !path.is_file() {
        return Err(not_inside());
    }
    Ok(path)
}

/// Restore a collection from a snapshot of this server (created or replaced).
#[utoipa::path(put, path = "/collections/{name}/snapshots/recover", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name")),
    request_body = RecoverRequest,
    responses((status = 200, description = "Restored", body = inline(super::Envelope<bool>)),
        (status = 400, description = "Archive rejected (named reason); the collection is unchanged", body = super::ErrorEnvelope),
        (status = 404, description = "No such snapshot", body = super::ErrorEnvelope)))]
pub async fn recover_snapshot(
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<RecoverRequest>,
) -> HttpResponse {
    respond(async move {
        let name = name.into_inner();
        validate_name(&name)?;
        let body = body.into_inner();
        let collections = state.collections()?;
        let urls = state.limits.snapshot_urls;
        let limit = state.limits.max_snapshot_upload_bytes;
        blocking(move || {
            if snapshot_url::is_url(&body.location) {
                let dir = collections.collection_snapshots_dir(&name)?;
                std::fs::create_dir_all(&dir)
                    .map_err(|e| ApiError::Engine(quiver_storage::Error::io(&dir, e).into()))?;
                let download = TempUpload {
                    path: snapshot_url::download(&body.location, urls, &temp_name(&dir), limit)?,
                };
                collections.restore_snapshot(
                    &name,
                    &download.path,
                    body.checksum.as_deref(),
                    Limits::default(),
                )?;
                return Ok(true);
            }
            let path = resolve_location(&collections, &name, &body.location)?;
            if !path.is_file() {
                return Err(ApiError::NotFound(format!(
                    "snapshot {:?} not found",
                    body.location
                )));
            }
            collections.restore_snapshot(
                &name,
                &path,
                body.checksum.as_deref(),
                Limits::default(),
            )?;
            Ok(true)
        })
        .await
    })
    .await
}

/// Query of `POST /collections/{name}/snapshots/upload`.
#[derive(Deserialize)]
pub struct UploadQuery {
    /// Expected SHA-256 of the uploaded archive.
    #[serde(default)]
    pub checksum: Option<String>,
}

/// Restore a collection from an uploaded snapshot (multipart form, field `snapshot`).
#[utoipa::path(post, path = "/collections/{name}/snapshots/upload", tag = "snapshots",
    params(("name" = String, Path, description = "Collection name"), ("checksum" = Option<String>, Query, description = "Expected SHA-256 of the archive")),
    request_body(content = Vec<u8>, content_type = "multipart/form-data", description = "Form field `snapshot`: the archive"),
    responses((status = 200, description = "Restored", body = inline(super::Envelope<bool>)),
        (status = 400, description = "Archive rejected (named reason); the collection is unchanged", body = super::ErrorEnvelope),
        (status = 413, description = "Larger than --max-snapshot-upload-mb", body = super::ErrorEnvelope)))]
pub async fn upload_snapshot(
    state: web::Data<AppState>,
    name: web::Path<String>,
    query: web::Query<UploadQuery>,
    payload: Multipart,
) -> HttpResponse {
    respond(async move {
        let name = name.into_inner();
        validate_name(&name)?;
        let collections = state.collections()?;
        let limit = state.limits.max_snapshot_upload_bytes;
        let dir = collections.collection_snapshots_dir(&name)?;
        let upload = receive_upload(payload, &dir, limit).await?;
        let checksum = query.into_inner().checksum;
        let path = upload.path.clone();
        blocking(move || {
            collections.restore_snapshot(&name, &path, checksum.as_deref(), Limits::default())?;
            Ok(true)
        })
        .await
    })
    .await
}

/// A file that is removed when dropped (the uploaded archive, once restored or refused).
struct TempUpload {
    path: PathBuf,
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A fresh hidden name in `dir` for an incoming archive; the client's file name is never used.
fn temp_name(dir: &Path) -> PathBuf {
    dir.join(format!(
        ".upload-{:016x}{}",
        rand::random::<u64>(),
        quiver_storage::snapshot::SNAPSHOT_SUFFIX
    ))
}

/// Streams the `snapshot` field of a multipart body into a new file in `dir`, refusing more than
/// `limit` bytes.
async fn receive_upload(
    mut payload: Multipart,
    dir: &Path,
    limit: u64,
) -> Result<TempUpload, ApiError> {
    let io_err = |path: &Path, e: std::io::Error| -> ApiError {
        ApiError::Engine(quiver_storage::Error::io(path, e).into())
    };
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut upload: Option<TempUpload> = None;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| bad_request(format!("malformed multipart body: {e}")))?;
        if field.name() != Some("snapshot") {
            // Drain fields we do not use; Qdrant's clients send only `snapshot`.
            while let Some(chunk) = field.next().await {
                chunk.map_err(|e| bad_request(format!("malformed multipart body: {e}")))?;
            }
            continue;
        }
        if upload.is_some() {
            return Err(bad_request("the form holds more than one `snapshot` field"));
        }
        // The client's file name is never used: the server names the file, inside `dir`.
        let path = temp_name(dir);
        let mut file = File::create_new(&path).map_err(|e| io_err(&path, e))?;
        let guard = TempUpload { path: path.clone() };
        let mut written = 0u64;
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| bad_request(format!("malformed multipart body: {e}")))?;
            written += chunk.len() as u64;
            if written > limit {
                return Err(ApiError::PayloadTooLarge {
                    limit: limit.try_into().unwrap_or(usize::MAX),
                });
            }
            file = web::block(move || file.write_all(&chunk).map(|()| file))
                .await
                .map_err(|_| ApiError::Internal("upload writer was cancelled".into()))?
                .map_err(|e| io_err(&path, e))?;
        }
        web::block(move || file.sync_all())
            .await
            .map_err(|_| ApiError::Internal("upload writer was cancelled".into()))?
            .map_err(|e| io_err(&path, e))?;
        upload = Some(guard);
    }
    upload.ok_or_else(|| {
        bad_request("the multipart form has no `snapshot` field holding the archive")
    })
}
