//! Matryoshka prefixes: a vector bound to a model with `dims` shorter than its size gets its HNSW graph
//! over the first `dims` components of each row (renormalised for Cosine), so the walk touches a
//! fraction of the bytes; the full rows stay in the segment and rescore the walk's candidates.
//!
//! A sealed segment keeps the prefix rows in their own file (header + `f32` rows, in the dense column's
//! row order), written once and memory-mapped like the graph that indexes them.

use std::io::Write;
use std::path::{Path, PathBuf};

use quiver_storage::fs::{atomic_write_with, WrittenFile};
use quiver_storage::header::{self, HEADER_LEN};
use quiver_storage::segment::{cast, Mapped, Residency};

use super::VectorSlab;
use crate::config::Distance;
use crate::distance;
use crate::kernels;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"QVPREFIX";
const VERSION: u32 = 1;

/// The first `dims` components of `v`, as the prefix graph compares them: unit length for Cosine (a
/// zero prefix stays zero), as they are for Dot and Euclid.
pub fn prefix_of(distance: Distance, v: &[f32], dims: usize) -> Vec<f32> {
    let mut p = v[..dims.min(v.len())].to_vec();
    if distance == Distance::Cosine {
        kernels::normalize(&mut p);
    }
    p
}

/// Prefixes of every row of `slab`, in row order.
pub fn prefix_rows(distance: Distance, slab: VectorSlab<'_>, dims: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(slab.len() * dims);
    for row in 0..slab.len() as u32 {
        out.extend(prefix_of(distance, slab.row(row), dims));
    }
    out
}

/// The score of a full row against a query prefix (from [`prefix_of`]), computed without a prefix file:
/// the appendable segment and graphless segments rank on the same scale as a prefix graph this way.
pub fn prefix_score(distance: Distance, query_prefix: &[f32], row: &[f32]) -> f32 {
    let p = &row[..query_prefix.len().min(row.len())];
    match distance {
        Distance::Cosine => {
            let norm = kernels::dot(p, p).sqrt();
            if norm > 0.0 && norm.is_finite() {
                kernels::dot(query_prefix, p) / norm
            } else {
                0.0
            }
        }
        Distance::Dot | Distance::Euclid => distance::score(distance, query_prefix, p),
    }
}

/// Writes prefix rows of width `dims` atomically.
pub fn write_prefix_file(path: &Path, rows: &[f32], dims: usize) -> Result<WrittenFile> {
    let n = rows.len().checked_div(dims).unwrap_or(0);
    let head = header::encode(MAGIC, VERSION, [n as u64, dims as u64, 0, 0, 0, 0]);
    Ok(atomic_write_with(path, |w: &mut dyn Write| {
        w.write_all(&head)?;
        for x in rows {
            w.write_all(&x.to_le_bytes())?;
        }
        Ok(())
    })?)
}

/// A mapped prefix file.
pub struct PrefixFile {
    map: Mapped,
    rows: usize,
    dims: usize,
}

impl std::fmt::Debug for PrefixFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixFile")
            .field("rows", &self.rows)
            .field("dims", &self.dims)
            .finish()
    }
}

fn corrupt(path: &Path, reason: String) -> Error {
    Error::Storage(quiver_storage::Error::Corrupt {
        path: PathBuf::from(path),
        reason,
    })
}

impl PrefixFile {
    /// Maps the file and checks its header and length.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_as(path, Residency::Mapped)
    }

    /// [`PrefixFile::open`], with the rows served as `residency` says.
    pub fn open_as(path: &Path, residency: Residency) -> Result<Self> {
        // Prefix files are written once through `atomic_write_with` (temp file, rename) and never
        // modified or truncated afterwards (`map_file`'s contract).
        let map = Mapped::open_as(path, residency)?;
        // A graph walk reads rows in no order.
        map.advise_random();
        let fields = header::decode(path, map.bytes(), MAGIC, VERSION)?;
        let (rows, dims) = (fields[0] as usize, fields[1] as usize);
        let want = rows
            .checked_mul(dims)
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| n.checked_add(HEADER_LEN));
        if dims == 0 || want != Some(map.len()) {
            return Err(corrupt(
                path,
                format!(
                    "prefix file of {rows} rows × {dims} is {} bytes long",
                    map.len()
                ),
            ));
        }
        map.section::<f32>(HEADER_LEN, rows * dims)?;
        Ok(PrefixFile { map, rows, dims })
    }

    /// The prefix rows.
    pub fn slab(&self) -> VectorSlab<'_> {
        // `open` checked that the rows are a whole, aligned section.
        let data = cast(&self.map.bytes()[HEADER_LEN..]).unwrap_or(&[]);
        VectorSlab {
            data,
            dim: self.dims,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trips_and_scores_match_the_prefix_rows() {
        let dir = tempfile::tempdir().unwrap();
        let full: Vec<f32> = (0..40).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
        let slab = VectorSlab {
            data: &full,
            dim: 8,
        };
        let rows = prefix_rows(Distance::Cosine, slab, 3);
        let path = dir.path().join("p");
        write_prefix_file(&path, &rows, 3).unwrap();
        let file = PrefixFile::open(&path).unwrap();
        assert_eq!(file.slab().data, rows.as_slice());
        let q = prefix_of(Distance::Cosine, &[1.0, 2.0, -1.0, 9.0], 3);
        for r in 0..5u32 {
            let stored = kernels::dot(&q, file.slab().row(r));
            let on_the_fly = prefix_score(Distance::Cosine, &q, slab.row(r));
            assert!((stored - on_the_fly).abs() < 1e-6, "{stored} {on_the_fly}");
        }
        std::fs::write(&path, &std::fs::read(&path).unwrap()[..HEADER_LEN + 4]).unwrap();
        assert!(PrefixFile::open(&path).is_err());
    }
}
