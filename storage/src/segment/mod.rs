//! Sealed segments: a directory of immutable files written once, then memory-mapped.
//!
//! `segments/seg-<id>/` holds `points.bin` (ids and payloads), one `dense-<i>.vec` per dense named
//! vector, one `multi-<i>.vec` per multi-vector name, `deleted-<generation>.bits` tombstones, and whatever
//! the engine attaches (HNSW graphs, token stores). The manifest lists every file with its checksum.

mod deleted;
mod mapped;
mod points;
mod vectors;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use deleted::{read_deleted, write_deleted};
pub use mapped::{cast, map_file, write_f32s, write_u32s, write_u64s, Mapped, Pod, Residency};
pub use points::{write_points, PointsFile};
pub use vectors::{
    write_dense, write_dense_rows, write_multi, DenseFile, DenseRows, MultiFile, TokenRows,
    TokenSlices,
};

use crate::manifest::{segment_dir_name, FileEntry, SegmentEntry, SegmentFile, SEGMENTS_DIR};
use crate::{fs as qfs, Bitmap, Error, PointId, Result};

/// One dense named vector of a segment being written.
pub struct DenseColumn<'a> {
    /// Vector name.
    pub name: &'a str,
    /// Floats per row.
    pub dim: usize,
    /// Rows of the points that have the vector, in point order.
    pub rows: DenseRows<'a>,
    /// Point offset of each row; `None` when every point has the vector.
    pub row_points: Option<&'a [u32]>,
}

/// One multi-vector name of a segment being written.
pub struct MultiColumn<'a> {
    /// Vector name.
    pub name: &'a str,
    /// Its rows, `points + 1` offsets of them.
    pub rows: &'a dyn TokenRows,
}

/// Everything a new sealed segment holds.
pub struct SegmentContent<'a> {
    /// Ids, strictly ascending (offset order is id order).
    pub ids: &'a [PointId],
    /// JSON payload bytes per point.
    pub payloads: &'a [Vec<u8>],
    /// Dense vectors.
    pub dense: Vec<DenseColumn<'a>>,
    /// Multi-vectors.
    pub multi: Vec<MultiColumn<'a>>,
    /// Tombstones already known at write time.
    pub deleted: &'a Bitmap,
}

/// Absolute directory of segment `id`.
pub fn segment_dir(collection_dir: &Path, id: u64) -> PathBuf {
    collection_dir.join(segment_dir_name(id))
}

/// Relative path (for a [`FileEntry`]) of `file_name` inside segment `id`.
pub fn segment_file_path(id: u64, file_name: &str) -> String {
    format!("{}/{file_name}", segment_dir_name(id))
}

/// Writes every file of a new segment and returns its manifest entry. Nothing refers to the files until
/// a manifest listing them is stored, so a crash here leaves only garbage that the next open removes.
pub fn write_segment(
    collection_dir: &Path,
    id: u64,
    content: &SegmentContent<'_>,
) -> Result<SegmentEntry> {
    let n = content.ids.len();
    if content.deleted.len() != n {
        return Err(Error::Decode(format!(
            "segment {id}: {} tombstone bits for {n} points",
            content.deleted.len()
        )));
    }
    qfs::create_dir_durable(&collection_dir.join(SEGMENTS_DIR))?;
    let dir = segment_dir(collection_dir, id);
    qfs::create_dir_durable(&dir)?;
    let mut files = Vec::new();
    let rel = |name: &str| segment_file_path(id, name);

    let w = write_points(&dir.join("points.bin"), content.ids, content.payloads)?;
    files.push(FileEntry::new(SegmentFile::Points, rel("points.bin"), w));
    for (i, col) in content.dense.iter().enumerate() {
        let name = format!("dense-{i}.vec");
        let w = write_dense_rows(&dir.join(&name), col.dim, col.rows, col.row_points, n)?;
        let file = SegmentFile::Dense {
            vector: col.name.to_string(),
        };
        files.push(FileEntry::new(file, rel(&name), w));
    }
    for (i, col) in content.multi.iter().enumerate() {
        if col.rows.offsets().len() != n + 1 {
            return Err(Error::Decode(format!(
                "segment {id}: multi-vector `{}` has {} offsets for {n} points",
                col.name,
                col.rows.offsets().len()
            )));
        }
        let name = format!("multi-{i}.vec");
        let w = write_multi(&dir.join(&name), col.rows)?;
        let file = SegmentFile::Multi {
            vector: col.name.to_string(),
        };
        files.push(FileEntry::new(file, rel(&name), w));
    }
    files.push(write_deleted_generation(
        collection_dir,
        id,
        0,
        content.deleted,
    )?);
    Ok(SegmentEntry {
        id,
        num_points: n as u64,
        files,
    })
}

/// Writes tombstone generation `generation` of segment `id` and returns its entry (to replace the older
/// generation's entry in the next manifest).
pub fn write_deleted_generation(
    collection_dir: &Path,
    id: u64,
    generation: u64,
    deleted: &Bitmap,
) -> Result<FileEntry> {
    let name = format!("deleted-{generation}.bits");
    let w = write_deleted(&segment_dir(collection_dir, id).join(&name), deleted)?;
    Ok(FileEntry::new(
        SegmentFile::Deleted { generation },
        segment_file_path(id, &name),
        w,
    ))
}

/// A sealed segment's files, opened: vectors and points mapped, tombstones read.
pub struct SegmentFiles {
    /// The manifest entry it was opened from.
    pub entry: SegmentEntry,
    /// Ids and payloads.
    pub points: PointsFile,
    /// Dense vectors by name.
    pub dense: BTreeMap<String, DenseFile>,
    /// Multi-vectors by name.
    pub multi: BTreeMap<String, MultiFile>,
    /// Tombstones as persisted.
    pub deleted: Bitmap,
    /// Generation of the persisted tombstones.
    pub deleted_generation: u64,
}

/// Opens a segment listed in a (verified) manifest. `residency` says, per vector name, where its
/// dense and multi-vector rows are served from; ids and payloads stay mapped.
pub fn open_segment(
    collection_dir: &Path,
    entry: &SegmentEntry,
    residency: &dyn Fn(&str) -> Residency,
) -> Result<SegmentFiles> {
    let n = entry.num_points as usize;
    let points_entry = entry
        .file(&SegmentFile::Points)
        .ok_or_else(|| Error::Corrupt {
            path: segment_dir(collection_dir, entry.id),
            reason: "segment has no points file".into(),
        })?;
    let points = PointsFile::open(&points_entry.full_path(collection_dir))?;
    let mismatch = |path: PathBuf, got: usize| Error::Corrupt {
        path,
        reason: format!("holds {got} points, the manifest says {n}"),
    };
    if points.len() != n {
        return Err(mismatch(
            points_entry.full_path(collection_dir),
            points.len(),
        ));
    }
    let mut dense = BTreeMap::new();
    let mut multi = BTreeMap::new();
    for f in &entry.files {
        let path = f.full_path(collection_dir);
        match &f.file {
            SegmentFile::Dense { vector } => {
                let d = DenseFile::open_as(&path, residency(vector))?;
                if d.num_points() != n {
                    return Err(mismatch(path, d.num_points()));
                }
                dense.insert(vector.clone(), d);
            }
            SegmentFile::Multi { vector } => {
                let m = MultiFile::open_as(&path, residency(vector))?;
                if m.num_points() != n {
                    return Err(mismatch(path, m.num_points()));
                }
                multi.insert(vector.clone(), m);
            }
            SegmentFile::Points
            | SegmentFile::Deleted { .. }
            | SegmentFile::Graph { .. }
            | SegmentFile::Attached { .. } => {}
        }
    }
    let del_entry = entry.deleted_file().ok_or_else(|| Error::Corrupt {
        path: segment_dir(collection_dir, entry.id),
        reason: "segment has no tombstone file".into(),
    })?;
    let deleted = read_deleted(&del_entry.full_path(collection_dir), n)?;
    let deleted_generation = match del_entry.file {
        SegmentFile::Deleted { generation } => generation,
        _ => 0,
    };
    Ok(SegmentFiles {
        entry: entry.clone(),
        points,
        dense,
        multi,
        deleted,
        deleted_generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    fn sample(dir: &Path) -> SegmentEntry {
        let ids = [PointId::Num(1), PointId::Num(2), PointId::Num(9)];
        let payloads = vec![b"{}".to_vec(), br#"{"k":"v"}"#.to_vec(), b"{}".to_vec()];
        let rows = [1.0f32, 0.0, 0.0, 1.0];
        let mut deleted = Bitmap::new(3);
        deleted.set(2);
        let content = SegmentContent {
            ids: &ids,
            payloads: &payloads,
            dense: vec![DenseColumn {
                name: "",
                dim: 2,
                rows: DenseRows::Slice(&rows),
                row_points: Some(&[0, 2]),
            }],
            multi: vec![MultiColumn {
                name: "colbert",
                rows: &TokenSlices {
                    dim: 2,
                    offsets: &[0, 1, 3, 3],
                    data: &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                },
            }],
            deleted: &deleted,
        };
        write_segment(dir, 4, &content).unwrap()
    }

    #[test]
    fn write_open_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let entry = sample(dir.path());
        let seg = open_segment(dir.path(), &entry, &|_| Residency::Mapped).unwrap();
        assert_eq!(seg.points.id(2), PointId::Num(9));
        assert_eq!(seg.points.payload(1), br#"{"k":"v"}"#);
        assert_eq!(seg.dense[""].vector(2).unwrap(), &[0.0, 1.0]);
        assert_eq!(seg.dense[""].vector(1), None);
        assert_eq!(seg.multi["colbert"].rows(1).unwrap(), &[3.0, 4.0, 5.0, 6.0]);
        assert!(seg.multi["colbert"].rows(2).is_none());
        assert!(seg.deleted.get(2) && !seg.deleted.get(0));

        let mut d2 = seg.deleted.clone();
        d2.set(0);
        let mut entry2 = entry.clone();
        let f = write_deleted_generation(dir.path(), 4, 1, &d2).unwrap();
        entry2.files.push(f);
        let seg2 = open_segment(dir.path(), &entry2, &|_| Residency::InMemory).unwrap();
        assert_eq!(seg2.deleted_generation, 1);
        assert_eq!(seg2.deleted.count_ones(), 2);
    }

    #[test]
    fn flipped_byte_is_reported_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let entry = sample(dir.path());
        let m = Manifest {
            generation: 1,
            wal_seq: 0,
            next_segment_id: 5,
            segments: vec![entry.clone()],
        };
        m.store(dir.path()).unwrap();
        m.verify(dir.path()).unwrap();
        for f in &entry.files {
            let p = f.full_path(dir.path());
            let orig = std::fs::read(&p).unwrap();
            let mut bytes = orig.clone();
            let at = bytes.len() - 1;
            bytes[at] ^= 0x10;
            std::fs::write(&p, &bytes).unwrap();
            match m.verify(dir.path()) {
                Err(Error::Corrupt { path, .. }) => assert_eq!(path, p),
                other => panic!("expected corruption of {}, got {other:?}", p.display()),
            }
            std::fs::write(&p, &orig).unwrap();
        }
    }
}
