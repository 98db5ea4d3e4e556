//! A sealed segment's sparse vector: an immutable inverted index and the forward rows, in one file
//! written once (temp file, fsync, rename, fsync dir) and read through the mapped-file primitive,
//! mapped (`index.on_disk`) or read into memory.
//!
//! Layout after the 64-byte header (`points`, `entries`, `dims`, body CRC-32):
//!
//! ```text
//! u64 × (points + 1)   forward offsets: point p's entries are [off[p], off[p + 1])
//! u64 × (dims + 1)     posting offsets: dimension dims[d]'s postings are [post[d], post[d + 1])
//! u32 × entries        forward indices (ascending within a point)
//! f32 × entries        forward values
//! u32 × dims           the dimensions that occur, ascending
//! u32 × entries        posting points (ascending within a dimension)
//! f32 × entries        posting values
//! u8  × points         1 where the point has the vector (an empty vector counts)
//! ```
//!
//! Scoring walks only the posting lists of the query's dimensions, so its cost follows the postings
//! touched, not the segment size; the result is the exact dot product.

use std::io::Write;
use std::path::{Path, PathBuf};

use quiver_storage::fs::{atomic_write_with, WrittenFile};
use quiver_storage::header::{self, HEADER_LEN};
use quiver_storage::segment::{write_f32s, write_u32s, write_u64s, Mapped, Residency};

use super::rows::SparseRows;
use super::SparseRef;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"QVSPARSE";
const VERSION: u32 = 1;

/// Where each section starts, from the three counts.
#[derive(Clone, Copy, Debug)]
struct Layout {
    points: usize,
    entries: usize,
    dims: usize,
    fwd_offsets: usize,
    post_offsets: usize,
    fwd_indices: usize,
    fwd_values: usize,
    dim_ids: usize,
    post_points: usize,
    post_values: usize,
    present: usize,
    end: usize,
}

impl Layout {
    fn new(points: usize, entries: usize, dims: usize) -> Option<Layout> {
        let mut at = HEADER_LEN;
        let mut take = |count: usize, size: usize| -> Option<usize> {
            let start = at;
            at = at.checked_add(count.checked_mul(size)?)?;
            Some(start)
        };
        let fwd_offsets = take(points.checked_add(1)?, 8)?;
        let post_offsets = take(dims.checked_add(1)?, 8)?;
        let fwd_indices = take(entries, 4)?;
        let fwd_values = take(entries, 4)?;
        let dim_ids = take(dims, 4)?;
        let post_points = take(entries, 4)?;
        let post_values = take(entries, 4)?;
        let present = take(points, 1)?;
        Some(Layout {
            points,
            entries,
            dims,
            fwd_offsets,
            post_offsets,
            fwd_indices,
            fwd_values,
            dim_ids,
            post_points,
            post_values,
            present,
            end: at,
        })
    }
}

/// Writes the inverted index of `rows` (one row per point offset of the segment) atomically.
pub fn write_index(path: &Path, rows: &SparseRows) -> Result<WrittenFile> {
    let points = rows.len();
    let entries = rows.indices.len();
    // Postings in dimension order, points ascending within each: entries are pushed in point order
    // and the sort is stable.
    let mut order: Vec<u32> = (0..entries as u32).collect();
    order.sort_by_key(|&e| rows.indices[e as usize]);
    let mut entry_point = Vec::with_capacity(entries);
    for p in 0..points {
        let (a, b) = (rows.offsets[p], rows.offsets[p + 1]);
        entry_point.extend(std::iter::repeat_n(p as u32, (b - a) as usize));
    }
    let mut dim_ids: Vec<u32> = Vec::new();
    let mut post_offsets: Vec<u64> = vec![0];
    let mut post_points = Vec::with_capacity(entries);
    let mut post_values = Vec::with_capacity(entries);
    for (k, &e) in order.iter().enumerate() {
        let dim = rows.indices[e as usize];
        if dim_ids.last() != Some(&dim) {
            if !dim_ids.is_empty() {
                post_offsets.push(k as u64);
            }
            dim_ids.push(dim);
        }
        post_points.push(entry_point[e as usize]);
        post_values.push(rows.values[e as usize]);
    }
    post_offsets.push(entries as u64);
    if dim_ids.is_empty() {
        post_offsets.truncate(1);
    }
    let present: Vec<u8> = rows.present.iter().map(|&p| p as u8).collect();

    let mut body: Vec<u8> = Vec::new();
    let fill = |w: &mut dyn Write| -> std::io::Result<()> {
        write_u64s(w, &rows.offsets)?;
        write_u64s(w, &post_offsets)?;
        write_u32s(w, &rows.indices)?;
        write_f32s(w, &rows.values)?;
        write_u32s(w, &dim_ids)?;
        write_u32s(w, &post_points)?;
        write_f32s(w, &post_values)?;
        w.write_all(&present)
    };
    fill(&mut body).map_err(|e| quiver_storage::Error::io(path, e))?;
    let crc = crc32fast::hash(&body);
    let head = header::encode(
        MAGIC,
        VERSION,
        [
            points as u64,
            entries as u64,
            dim_ids.len() as u64,
            crc as u64,
            0,
            0,
        ],
    );
    Ok(atomic_write_with(path, |w: &mut dyn Write| {
        w.write_all(&head)?;
        w.write_all(&body)
    })?)
}

/// A sealed segment's sparse vector, opened and checked.
pub struct SparseIndexFile {
    map: Mapped,
    layout: Layout,
}

impl std::fmt::Debug for SparseIndexFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparseIndexFile")
            .field("points", &self.layout.points)
            .field("entries", &self.layout.entries)
            .field("dims", &self.layout.dims)
            .finish()
    }
}

fn corrupt(path: &Path, reason: String) -> Error {
    Error::Storage(quiver_storage::Error::Corrupt {
        path: PathBuf::from(path),
        reason,
    })
}

impl SparseIndexFile {
    /// Opens the file served as `residency` says, checking header, length, checksum and that every
    /// offset stays in bounds, so that reads afterwards cannot fail.
    pub fn open_as(path: &Path, residency: Residency) -> Result<Self> {
        // Written once through `atomic_write_with` and never modified afterwards.
        let map = Mapped::open_as(path, residency)?;
        let fields = header::decode(path, map.bytes(), MAGIC, VERSION)?;
        let (points, entries, dims) = (fields[0] as usize, fields[1] as usize, fields[2] as usize);
        let layout = Layout::new(points, entries, dims)
            .filter(|l| l.end == map.len())
            .ok_or_else(|| {
                corrupt(
                    path,
                    format!(
                        "sparse index of {points} points, {entries} entries and {dims} dimensions \
                         is {} bytes long",
                        map.len()
                    ),
                )
            })?;
        map.check_crc(HEADER_LEN, fields[3] as u32, "sparse index")?;
        let file = SparseIndexFile { map, layout };
        let bounded = |offs: &[u64]| {
            offs.first() == Some(&0)
                && offs.last() == Some(&(entries as u64))
                && offs.windows(2).all(|w| w[0] <= w[1])
        };
        if !bounded(file.fwd_offsets()?) || !bounded(file.post_offsets()?) {
            return Err(corrupt(path, "sparse index offsets out of order".into()));
        }
        if file.post_points()?.iter().any(|&p| p as usize >= points) {
            return Err(corrupt(path, "a posting names a point past the end".into()));
        }
        file.section::<u32>(file.layout.dim_ids, dims)?;
        file.section::<f32>(file.layout.fwd_values, entries)?;
        file.section::<u32>(file.layout.fwd_indices, entries)?;
        file.section::<f32>(file.layout.post_values, entries)?;
        Ok(file)
    }

    fn section<T: quiver_storage::segment::Pod>(&self, at: usize, count: usize) -> Result<&[T]> {
        Ok(self.map.section::<T>(at, count)?)
    }

    fn fwd_offsets(&self) -> Result<&[u64]> {
        self.section(self.layout.fwd_offsets, self.layout.points + 1)
    }

    fn post_offsets(&self) -> Result<&[u64]> {
        self.section(self.layout.post_offsets, self.layout.dims + 1)
    }

    fn post_points(&self) -> Result<&[u32]> {
        self.section(self.layout.post_points, self.layout.entries)
    }

    // The sections below were checked at open; an empty slice can only mean a bug, never bad input.
    fn u64s(&self, at: usize, count: usize) -> &[u64] {
        self.section(at, count).unwrap_or(&[])
    }

    fn u32s(&self, at: usize, count: usize) -> &[u32] {
        self.section(at, count).unwrap_or(&[])
    }

    fn f32s(&self, at: usize, count: usize) -> &[f32] {
        self.section(at, count).unwrap_or(&[])
    }

    /// Point offsets in the segment.
    pub fn points(&self) -> usize {
        self.layout.points
    }

    /// Point `p`'s vector, if it has one.
    pub fn row(&self, p: u32) -> Option<SparseRef<'_>> {
        let l = &self.layout;
        let p = p as usize;
        let present = self.map.bytes().get(l.present + p).copied()?;
        if present == 0 {
            return None;
        }
        let offs = self.u64s(l.fwd_offsets, l.points + 1);
        let (a, b) = (offs[p] as usize, offs[p + 1] as usize);
        Some(SparseRef {
            indices: &self.u32s(l.fwd_indices, l.entries)[a..b],
            values: &self.f32s(l.fwd_values, l.entries)[a..b],
        })
    }

    /// The posting list of `dim`: points ascending, with their weights.
    pub fn postings(&self, dim: u32) -> (&[u32], &[f32]) {
        let l = &self.layout;
        let dims = self.u32s(l.dim_ids, l.dims);
        let Ok(d) = dims.binary_search(&dim) else {
            return (&[], &[]);
        };
        let offs = self.u64s(l.post_offsets, l.dims + 1);
        let (a, b) = (offs[d] as usize, offs[d + 1] as usize);
        (
            &self.u32s(l.post_points, l.entries)[a..b],
            &self.f32s(l.post_values, l.entries)[a..b],
        )
    }

    /// Whether point `p` has the vector.
    pub fn has(&self, p: u32) -> bool {
        self.map
            .bytes()
            .get(self.layout.present + p as usize)
            .is_some_and(|&b| b != 0)
    }

    /// The exact dot product of `query` with every point sharing a dimension with it, walking only
    /// the query's posting lists; points in ascending offset order.
    pub fn scores(&self, query: SparseRef<'_>) -> Vec<(u32, f32)> {
        let mut acc = vec![0.0f32; self.layout.points];
        let mut touched = vec![false; self.layout.points];
        let mut hit: Vec<u32> = Vec::new();
        for (&dim, &weight) in query.indices.iter().zip(query.values) {
            let (points, values) = self.postings(dim);
            for (&p, &v) in points.iter().zip(values) {
                let i = p as usize;
                acc[i] += weight * v;
                if !touched[i] {
                    touched[i] = true;
                    hit.push(p);
                }
            }
        }
        hit.sort_unstable();
        hit.into_iter().map(|p| (p, acc[p as usize])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::SparseVector;

    fn rows(vs: &[Option<(&[u32], &[f32])>]) -> SparseRows {
        let mut r = SparseRows::default();
        for v in vs {
            r.push_vector(
                v.map(|(i, x)| SparseVector {
                    indices: i.to_vec(),
                    values: x.to_vec(),
                })
                .as_ref(),
            );
        }
        r
    }

    #[test]
    fn index_round_trips_and_scores_equal_forward_dot_products() {
        let dir = tempfile::tempdir().unwrap();
        let r = rows(&[
            Some((&[1, 5, 9], &[1.0, 2.0, 3.0])),
            None,
            Some((&[], &[])),
            Some((&[5, 7], &[0.5, 4.0])),
            Some((&[9, 1000], &[2.0, 1.0])),
        ]);
        let path = dir.path().join("s.sparse");
        write_index(&path, &r).unwrap();
        for residency in [Residency::Mapped, Residency::InMemory] {
            let f = SparseIndexFile::open_as(&path, residency).unwrap();
            assert_eq!(f.points(), 5);
            for p in 0..5u32 {
                let a = f.row(p).map(|x| x.to_vector());
                let b = r.row(p).map(|x| x.to_vector());
                assert_eq!(a, b, "row {p}");
                assert_eq!(f.has(p), r.present[p as usize]);
            }
            assert_eq!(f.postings(5), (&[0u32, 3][..], &[2.0f32, 0.5][..]));
            assert_eq!(f.postings(6), (&[][..], &[][..]));
            let q = SparseVector {
                indices: vec![5, 9, 42],
                values: vec![1.0, 10.0, 7.0],
            };
            let got = f.scores(q.as_ref());
            let want: Vec<(u32, f32)> = (0..5u32)
                .filter_map(|p| Some((p, r.row(p)?.dot(&q.as_ref())?)))
                .collect();
            assert_eq!(got, want);
            assert_eq!(got, vec![(0, 32.0), (3, 0.5), (4, 20.0)]);
        }
    }

    #[test]
    fn damaged_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sparse");
        write_index(&path, &rows(&[Some((&[1, 2], &[1.0, 2.0]))])).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let e = SparseIndexFile::open_as(&path, Residency::Mapped).unwrap_err();
        assert!(e.to_string().contains("s.sparse"), "{e}");
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(SparseIndexFile::open_as(&path, Residency::Mapped).is_err());
    }

    #[test]
    fn an_empty_segment_writes_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sparse");
        write_index(&path, &rows(&[None, None])).unwrap();
        let f = SparseIndexFile::open_as(&path, Residency::InMemory).unwrap();
        assert!(f.row(0).is_none());
        assert!(f
            .scores(
                SparseVector {
                    indices: vec![1],
                    values: vec![1.0]
                }
                .as_ref()
            )
            .is_empty());
    }
}
