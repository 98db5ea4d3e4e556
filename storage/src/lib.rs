//! Quiver storage: bytes and files. The write-ahead log, immutable memory-mapped segment files, the
//! manifest that lists them with checksums, and the atomic-file helpers every writer goes through.
//!
//! This crate knows nothing of HNSW, filters or models: vectors are raw little-endian `f32` arrays and
//! payloads are opaque JSON bytes.
#![warn(missing_docs)]

#[cfg(target_endian = "big")]
compile_error!(
    "Quiver's files are little-endian and memory-mapped in place; big-endian hosts are unsupported"
);

mod bitmap;
mod error;
pub mod fs;
pub mod header;
// rkyv derives undocumented archived twins of the manifest types; the originals are documented.
#[allow(missing_docs)]
pub mod manifest;
mod point_id;
pub mod segment;
pub mod snapshot;
pub mod wal;

pub use bitmap::Bitmap;
pub use error::{Error, Result};
pub use manifest::{FileEntry, Manifest, SegmentEntry, SegmentFile};
pub use point_id::PointId;
pub use wal::{Wal, WalOptions};
