//! Raw vector files: dense rows (`f32`, row-major) and multi-vector rows with per-point offsets.
//!
//! Dense file: header fields `[dim, rows, points, sparse]`; then `rows · dim` floats; when `sparse` is 1
//! (some points lack this vector) then `rows` ascending `u32` point offsets, one per row. Rows hold only
//! points that have the vector, so an index built over them never sees a placeholder.
//!
//! Multi file: header fields `[dim, points, total rows]`; then `points + 1` `u64` row offsets (point `i`
//! owns rows `offsets[i]..offsets[i+1]`, none when it lacks the vector), then `total rows · dim` floats.

use std::path::Path;

use super::mapped::{cast, write_f32s, write_u32s, write_u64s, Mapped, Residency};
use crate::fs::{atomic_write_with, WrittenFile};
use crate::{header, Error, Result};

const DENSE_MAGIC: &[u8; 8] = b"QVDENSE\0";
const MULTI_MAGIC: &[u8; 8] = b"QVMULTI\0";
const VERSION: u32 = 1;
const H: usize = header::HEADER_LEN;

/// The rows of a dense vector file being written.
#[derive(Clone, Copy)]
pub enum DenseRows<'a> {
    /// Row-major, `dim` floats a row.
    Slice(&'a [f32]),
    /// `count` rows, row `i` read from wherever it already is (an appendable segment's memory,
    /// other segments' maps): a seal or merge writes them without first gathering a copy of them all.
    Each {
        /// Rows to write.
        count: usize,
        /// Row `i` (`dim` floats).
        row: &'a (dyn Fn(usize) -> &'a [f32] + 'a),
    },
}

impl DenseRows<'_> {
    fn count(&self, dim: usize) -> usize {
        match self {
            DenseRows::Slice(rows) => rows.len() / dim.max(1),
            DenseRows::Each { count, .. } => *count,
        }
    }
}

/// Writes a dense vector file. `row_points` lists the point offset of each row (ascending); `None` means
/// row `i` is point `i` and every point has the vector.
pub fn write_dense(
    path: &Path,
    dim: usize,
    rows: &[f32],
    row_points: Option<&[u32]>,
    num_points: usize,
) -> Result<WrittenFile> {
    write_dense_rows(path, dim, DenseRows::Slice(rows), row_points, num_points)
}

/// [`write_dense`] with the rows as [`DenseRows`] says; the bytes written are the same either way.
pub fn write_dense_rows(
    path: &Path,
    dim: usize,
    rows: DenseRows<'_>,
    row_points: Option<&[u32]>,
    num_points: usize,
) -> Result<WrittenFile> {
    let num_rows = rows.count(dim);
    // Rows handed out one at a time are checked as they are written.
    let floats = match rows {
        DenseRows::Slice(r) => r.len(),
        DenseRows::Each { count, .. } => count * dim,
    };
    if dim == 0 || !floats.is_multiple_of(dim) {
        return Err(Error::Decode(format!(
            "{}: {floats} floats are not whole rows of {dim}",
            path.display(),
        )));
    }
    if let Some(rp) = row_points {
        let ok = rp.len() == num_rows
            && rp.windows(2).all(|w| w[0] < w[1])
            && rp.last().is_none_or(|&l| (l as usize) < num_points);
        if !ok {
            return Err(Error::Decode(format!(
                "{}: row point offsets are not ascending offsets below {num_points}",
                path.display()
            )));
        }
    } else if num_rows != num_points {
        return Err(Error::Decode(format!(
            "{}: {num_rows} rows for {num_points} points without row offsets",
            path.display()
        )));
    }
    let head = header::encode(
        DENSE_MAGIC,
        VERSION,
        [
            dim as u64,
            num_rows as u64,
            num_points as u64,
            row_points.is_some() as u64,
            0,
            0,
        ],
    );
    atomic_write_with(path, |w| {
        w.write_all(&head)?;
        match rows {
            DenseRows::Slice(rows) => write_f32s(w, rows)?,
            DenseRows::Each { count, row } => {
                for i in 0..count {
                    let r = row(i);
                    if r.len() != dim {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("row {i} has {} floats, not {dim}", r.len()),
                        ));
                    }
                    write_f32s(w, r)?;
                }
            }
        }
        if let Some(rp) = row_points {
            write_u32s(w, rp)?;
        }
        Ok(())
    })
}

/// A dense vector file, memory-mapped.
pub struct DenseFile {
    map: Mapped,
    dim: usize,
    num_rows: usize,
    num_points: usize,
    sparse: bool,
}

impl DenseFile {
    /// Maps and validates the layout (not the checksum: the manifest does that).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_as(path, Residency::Mapped)
    }

    /// [`DenseFile::open`] with the rows served as `residency` says.
    pub fn open_as(path: &Path, residency: Residency) -> Result<Self> {
        let map = Mapped::open_as(path, residency)?;
        let f = header::decode(path, map.bytes(), DENSE_MAGIC, VERSION)?;
        let (dim, num_rows, num_points, sparse) =
            (f[0] as usize, f[1] as usize, f[2] as usize, f[3] == 1);
        let want = dim
            .checked_mul(num_rows)
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| n.checked_add(H + if sparse { num_rows * 4 } else { 0 }));
        if dim == 0 || want != Some(map.bytes().len()) || f[3] > 1 {
            return Err(map.corrupt(format!(
                "{} bytes do not fit dim {dim}, {num_rows} rows, sparse {}",
                map.bytes().len(),
                f[3]
            )));
        }
        let file = DenseFile {
            map,
            dim,
            num_rows,
            num_points,
            sparse,
        };
        if file.rows().len() != dim * num_rows {
            return Err(file.map.corrupt("vector data is misaligned"));
        }
        // Rows served from the map (`on_disk`) are read a few at a time, by a graph walk or by
        // rescoring: read-ahead and fault-around would map whole neighbourhoods of rows nobody asked
        // for (200 rescored searches of a quantized Fashion-MNIST collection mapped 177 of its
        // 179 MiB of rows). Qdrant advises its mapped vectors the same way.
        file.map.advise_random();
        if sparse {
            let rp = file.row_points();
            let ok = rp.len() == num_rows
                && rp.windows(2).all(|w| w[0] < w[1])
                && rp.last().is_none_or(|&l| (l as usize) < num_points);
            if !ok {
                return Err(file.map.corrupt("row point offsets are not ascending"));
            }
        } else if num_rows != num_points {
            return Err(file.map.corrupt("row count differs from point count"));
        }
        Ok(file)
    }

    /// Floats per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows stored (points that have the vector).
    pub fn num_rows(&self) -> usize {
        self.num_rows
    }

    /// Points in the segment.
    pub fn num_points(&self) -> usize {
        self.num_points
    }

    /// All rows, row-major.
    pub fn rows(&self) -> &[f32] {
        let end = H + self.dim * self.num_rows * 4;
        cast(&self.map.bytes()[H..end]).unwrap_or(&[])
    }

    fn row_points(&self) -> &[u32] {
        if !self.sparse {
            return &[];
        }
        let start = H + self.dim * self.num_rows * 4;
        cast(&self.map.bytes()[start..]).unwrap_or(&[])
    }

    /// The point offset that row `row` belongs to.
    pub fn row_to_point(&self, row: u32) -> u32 {
        if self.sparse {
            self.row_points()[row as usize]
        } else {
            row
        }
    }

    /// The row of point `point`, or `None` when the point lacks this vector.
    pub fn point_to_row(&self, point: u32) -> Option<u32> {
        if self.sparse {
            self.row_points()
                .binary_search(&point)
                .ok()
                .map(|r| r as u32)
        } else {
            ((point as usize) < self.num_rows).then_some(point)
        }
    }

    /// The vector of point `point`.
    pub fn vector(&self, point: u32) -> Option<&[f32]> {
        let row = self.point_to_row(point)? as usize;
        Some(&self.rows()[row * self.dim..(row + 1) * self.dim])
    }
}

/// The token rows of a multi-vector, read a point at a time: a seal writes them (and builds a token
/// store from them) where they already are, an appendable segment's memory or other segments' files,
/// without first gathering one copy of them all.
pub trait TokenRows: Sync {
    /// Floats per row.
    fn dim(&self) -> usize;
    /// `points + 1` row offsets: point `i` holds rows `offsets[i]..offsets[i + 1]`.
    fn offsets(&self) -> &[u64];
    /// Point `i`'s rows (`dim`-strided), borrowed, or written into `buf` where they are not kept as
    /// `f32`. Whoever reads them checks that there are `offsets[i + 1] − offsets[i]` of them.
    fn point_rows<'s>(&'s self, i: usize, buf: &'s mut Vec<f32>) -> &'s [f32];

    /// Hands `f` every point's rows in order, each checked against its offsets: a point with more or
    /// fewer rows than they say stops the walk with an `InvalidData` error naming it.
    fn for_each_point(
        &self,
        f: &mut dyn FnMut(&[f32]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let dim = self.dim();
        let mut buf = Vec::new();
        for (i, span) in self.offsets().windows(2).enumerate() {
            let want = (span[1] - span[0]) as usize * dim;
            let rows = self.point_rows(i, &mut buf);
            if rows.len() != want {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("point {i} has {} floats of rows, not {want}", rows.len()),
                ));
            }
            f(rows)?;
        }
        Ok(())
    }
}

impl<T: TokenRows + ?Sized> TokenRows for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn offsets(&self) -> &[u64] {
        (**self).offsets()
    }

    fn point_rows<'s>(&'s self, i: usize, buf: &'s mut Vec<f32>) -> &'s [f32] {
        (**self).point_rows(i, buf)
    }
}

/// Token rows in one `dim`-strided slice: [`TokenRows`] over memory already laid out as a file holds it.
#[derive(Clone, Copy, Debug)]
pub struct TokenSlices<'a> {
    /// Floats per row.
    pub dim: usize,
    /// `points + 1` row offsets.
    pub offsets: &'a [u64],
    /// All rows.
    pub data: &'a [f32],
}

impl TokenRows for TokenSlices<'_> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn offsets(&self) -> &[u64] {
        self.offsets
    }

    fn point_rows<'s>(&'s self, i: usize, _buf: &'s mut Vec<f32>) -> &'s [f32] {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        self.data.get(a * self.dim..b * self.dim).unwrap_or(&[])
    }
}

/// Writes a multi-vector file of `rows`, read a point at a time.
pub fn write_multi(path: &Path, rows: &dyn TokenRows) -> Result<WrittenFile> {
    let (dim, offsets) = (rows.dim(), rows.offsets());
    let total_rows = offsets.last().copied().unwrap_or(0) as usize;
    let ok = dim > 0 && offsets.first() == Some(&0) && offsets.windows(2).all(|w| w[0] <= w[1]);
    if !ok {
        return Err(Error::Decode(format!(
            "{}: multi-vector offsets do not describe {total_rows} rows",
            path.display()
        )));
    }
    let head = header::encode(
        MULTI_MAGIC,
        VERSION,
        [
            dim as u64,
            (offsets.len() - 1) as u64,
            total_rows as u64,
            0,
            0,
            0,
        ],
    );
    atomic_write_with(path, |w| {
        w.write_all(&head)?;
        write_u64s(w, offsets)?;
        rows.for_each_point(&mut |r| write_f32s(w, r))
    })
}

/// A multi-vector file, memory-mapped.
pub struct MultiFile {
    map: Mapped,
    dim: usize,
    num_points: usize,
    total_rows: usize,
}

impl MultiFile {
    /// Maps and validates the layout.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_as(path, Residency::Mapped)
    }

    /// [`MultiFile::open`] with the rows served as `residency` says.
    pub fn open_as(path: &Path, residency: Residency) -> Result<Self> {
        let map = Mapped::open_as(path, residency)?;
        let f = header::decode(path, map.bytes(), MULTI_MAGIC, VERSION)?;
        let (dim, num_points, total_rows) = (f[0] as usize, f[1] as usize, f[2] as usize);
        let want = (num_points + 1)
            .checked_mul(8)
            .and_then(|o| dim.checked_mul(total_rows)?.checked_mul(4)?.checked_add(o))
            .and_then(|n| n.checked_add(H));
        if dim == 0 || want != Some(map.bytes().len()) {
            return Err(map.corrupt(format!(
                "{} bytes do not fit dim {dim}, {num_points} points, {total_rows} rows",
                map.bytes().len()
            )));
        }
        let file = MultiFile {
            map,
            dim,
            num_points,
            total_rows,
        };
        let off = file.offsets();
        let ok = off.len() == num_points + 1
            && off[0] == 0
            && off.windows(2).all(|w| w[0] <= w[1])
            && off[num_points] == total_rows as u64
            && file.data().len() == total_rows * dim;
        if !ok {
            return Err(file.map.corrupt("row offsets are inconsistent"));
        }
        Ok(file)
    }

    fn offsets(&self) -> &[u64] {
        cast(&self.map.bytes()[H..H + (self.num_points + 1) * 8]).unwrap_or(&[])
    }

    fn data(&self) -> &[f32] {
        cast(&self.map.bytes()[H + (self.num_points + 1) * 8..]).unwrap_or(&[])
    }

    /// Floats per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Points in the segment.
    pub fn num_points(&self) -> usize {
        self.num_points
    }

    /// Rows of all points.
    pub fn total_rows(&self) -> usize {
        self.total_rows
    }

    /// The rows of point `point` (`dim`-strided), or `None` when it lacks this vector.
    pub fn rows(&self, point: u32) -> Option<&[f32]> {
        let off = self.offsets();
        let (a, b) = (
            off[point as usize] as usize,
            off[point as usize + 1] as usize,
        );
        (b > a).then(|| &self.data()[a * self.dim..b * self.dim])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_round_trip_dense_and_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d");
        write_dense(&p, 2, &[1.0, 2.0, 3.0, 4.0], None, 2).unwrap();
        let f = DenseFile::open(&p).unwrap();
        assert_eq!(f.vector(1).unwrap(), &[3.0, 4.0]);
        assert_eq!(f.point_to_row(2), None);

        write_dense(&p, 2, &[1.0, 2.0, 3.0, 4.0], Some(&[1, 3]), 4).unwrap();
        let f = DenseFile::open(&p).unwrap();
        assert_eq!(f.num_rows(), 2);
        assert_eq!(f.vector(3).unwrap(), &[3.0, 4.0]);
        assert_eq!(f.vector(0), None);
        assert_eq!(f.row_to_point(1), 3);
        assert!(write_dense(&p, 2, &[1.0, 2.0, 3.0, 4.0], Some(&[3, 1]), 4).is_err());
    }

    #[test]
    fn rows_one_at_a_time_write_the_same_bytes_as_a_slice() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let wa = write_dense(&a, 2, &data, Some(&[0, 2, 5]), 6).unwrap();
        let row = |i: usize| &data[i * 2..i * 2 + 2];
        let each = DenseRows::Each {
            count: 3,
            row: &row,
        };
        let wb = write_dense_rows(&b, 2, each, Some(&[0, 2, 5]), 6).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!((wa.size, wa.crc32), (wb.size, wb.crc32));
        // A row of the wrong length fails the write instead of shifting every later row.
        let short = |i: usize| &data[i..i + 1];
        let each = DenseRows::Each {
            count: 3,
            row: &short,
        };
        assert!(write_dense_rows(&b, 2, each, None, 3).is_err());
    }

    #[test]
    fn multi_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let rows = TokenSlices {
            dim: 2,
            offsets: &[0, 2, 2, 3],
            data: &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        write_multi(&p, &rows).unwrap();
        let f = MultiFile::open(&p).unwrap();
        assert_eq!(f.rows(0).unwrap(), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(f.rows(1), None);
        assert_eq!(f.rows(2).unwrap(), &[5.0, 6.0]);
    }

    #[test]
    fn multi_rows_short_of_their_offsets_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let short = TokenSlices {
            dim: 2,
            offsets: &[0, 2, 3],
            data: &[1.0, 2.0, 3.0, 4.0],
        };
        let err = write_multi(&p, &short).unwrap_err().to_string();
        assert!(err.contains("point 1 has 0 floats of rows, not 2"), "{err}");
        assert!(!p.exists());
    }

    #[test]
    fn truncated_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d");
        write_dense(&p, 2, &[1.0, 2.0, 3.0, 4.0], None, 2).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
        assert!(matches!(DenseFile::open(&p), Err(Error::Corrupt { .. })));
    }
}
