//! Snapshot shapes for the OpenAPI document (the engine's `SnapshotDescription` serialises the same).

use utoipa::ToSchema;

/// One snapshot archive, as Qdrant describes it. (Documentation type.)
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SnapshotDescriptionDoc {
    /// File name of the archive.
    name: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SS`.
    creation_time: Option<String>,
    /// Bytes.
    size: u64,
    /// SHA-256 of the archive, lowercase hex.
    checksum: Option<String>,
}
