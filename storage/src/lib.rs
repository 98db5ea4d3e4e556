//! Quiver storage: bytes and files. The write-ahead log, immutable memory-mapped segment files, the
//! manifest that lists them with checksums, and the atomic-file helpers every writer goes through.
//!
//! This crate knows nothing of HNSW, filters or models: vectors are raw little-endian `f32` arrays and
//! payloads are opaque JSON bytes.
#![warn(missing_docs)]

mod error;
pub mod fs;
mod point_id;

pub use error::{Error, Result};
pub use point_id::PointId;
