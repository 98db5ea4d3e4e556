//! The collection manifest: which sealed segments exist, every file each one owns (with size and CRC-32),
//! and how far the write-ahead log is folded into them. It is the single commit point of a seal or a
//! vacuum: files not listed by the current manifest are garbage, files listed must match exactly.
//!
//! On disk: the common header (field 0 generation, 1 body length, 2 body CRC-32), then the rkyv archive
//! of [`Manifest`]. Written atomically; loaded and validated once on open.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use crate::{fs as qfs, header, Error, Result};

const MAGIC: &[u8; 8] = b"QVMANIF\0";
/// Format version of the manifest and of the segment file layout it describes.
pub const FORMAT_VERSION: u32 = 1;
/// File name of the manifest inside a collection directory.
pub const MANIFEST_FILE: &str = "manifest.bin";
/// Directory (inside a collection directory) that holds one sub-directory per sealed segment.
pub const SEGMENTS_DIR: &str = "segments";

/// Every kind of file a sealed segment may own. Snapshot, garbage collection and validation walk this
/// one list.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum SegmentFile {
    /// Ids (offset -> point id, ascending) and JSON payloads (rkyv).
    Points,
    /// Raw `f32` rows of one dense named vector.
    Dense {
        /// The vector name (`""` for the unnamed one).
        vector: String,
    },
    /// Row offsets and raw `f32` rows of one multi-vector name.
    Multi {
        /// The vector name.
        vector: String,
    },
    /// Tombstones; a new generation is written whenever deletes change, the older ones become garbage.
    Deleted {
        /// Increasing per segment.
        generation: u64,
    },
    /// The HNSW graph of one dense named vector (written by the engine).
    Graph {
        /// The vector name.
        vector: String,
    },
    /// Any other file the engine attaches (e.g. token-store files), by a name unique in the segment.
    Attached {
        /// Engine-chosen name.
        name: String,
    },
}

/// One file of a segment.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct FileEntry {
    /// What the file holds.
    pub file: SegmentFile,
    /// Path relative to the collection directory (`/`-separated, no `..`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC-32 (IEEE) of the whole file.
    pub crc32: u32,
}

impl FileEntry {
    /// Builds an entry from a written file.
    pub fn new(file: SegmentFile, path: String, written: qfs::WrittenFile) -> Self {
        FileEntry {
            file,
            path,
            size: written.size,
            crc32: written.crc32,
        }
    }

    /// The file's absolute path under `collection_dir`.
    pub fn full_path(&self, collection_dir: &Path) -> PathBuf {
        collection_dir.join(&self.path)
    }
}

/// One sealed segment.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SegmentEntry {
    /// Unique (never reused) within the collection.
    pub id: u64,
    /// Points stored (live and tombstoned).
    pub num_points: u64,
    /// Every file the segment owns.
    pub files: Vec<FileEntry>,
}

impl SegmentEntry {
    /// The first file of this kind.
    pub fn file(&self, kind: &SegmentFile) -> Option<&FileEntry> {
        self.files.iter().find(|f| &f.file == kind)
    }

    /// The newest tombstone file.
    pub fn deleted_file(&self) -> Option<&FileEntry> {
        self.files
            .iter()
            .filter(|f| matches!(f.file, SegmentFile::Deleted { .. }))
            .max_by_key(|f| match f.file {
                SegmentFile::Deleted { generation } => generation,
                _ => 0,
            })
    }

    /// Directory of this segment relative to the collection directory.
    pub fn dir_name(&self) -> String {
        segment_dir_name(self.id)
    }
}

/// Relative directory of segment `id` (`segments/seg-<id>`).
pub fn segment_dir_name(id: u64) -> String {
    format!("{SEGMENTS_DIR}/seg-{id}")
}

/// The manifest of one collection.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct Manifest {
    /// Increases by one on every write.
    pub generation: u64,
    /// Every WAL record with a sequence number `<=` this is folded into the listed segments.
    pub wal_seq: u64,
    /// Id the next new segment gets.
    pub next_segment_id: u64,
    /// Sealed segments, oldest first.
    pub segments: Vec<SegmentEntry>,
}

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn check_relative(manifest_path: &Path, rel: &str) -> Result<()> {
    let p = Path::new(rel);
    let ok = !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if !ok {
        return Err(corrupt(
            manifest_path,
            format!("file path {rel:?} is not a plain relative path"),
        ));
    }
    Ok(())
}

impl Manifest {
    /// Reads the manifest of `collection_dir`; `None` when there is none yet.
    pub fn load(collection_dir: &Path) -> Result<Option<Manifest>> {
        let path = collection_dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let fields = header::decode(&path, &bytes, MAGIC, FORMAT_VERSION)?;
        let body = &bytes[header::HEADER_LEN..];
        if body.len() as u64 != fields[1] {
            return Err(corrupt(
                &path,
                format!("body is {} bytes, header says {}", body.len(), fields[1]),
            ));
        }
        if crc32fast::hash(body) as u64 != fields[2] {
            return Err(corrupt(&path, "checksum mismatch"));
        }
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(body.len());
        aligned.extend_from_slice(body);
        let manifest = rkyv::from_bytes::<Manifest, rkyv::rancor::Error>(&aligned)
            .map_err(|e| corrupt(&path, format!("undecodable: {e}")))?;
        if manifest.generation != fields[0] {
            return Err(corrupt(&path, "generation differs from its header"));
        }
        let mut ids = BTreeSet::new();
        for seg in &manifest.segments {
            if !ids.insert(seg.id) || seg.id >= manifest.next_segment_id {
                return Err(corrupt(&path, format!("segment id {} is invalid", seg.id)));
            }
            for f in &seg.files {
                check_relative(&path, &f.path)?;
            }
        }
        Ok(Some(manifest))
    }

    /// Writes the manifest atomically into `collection_dir` (the commit point of a seal or vacuum).
    pub fn store(&self, collection_dir: &Path) -> Result<()> {
        let body = rkyv::to_bytes::<rkyv::rancor::Error>(self)
            .map_err(|e| Error::Decode(format!("manifest does not serialise: {e}")))?;
        let head = header::encode(
            MAGIC,
            FORMAT_VERSION,
            [
                self.generation,
                body.len() as u64,
                crc32fast::hash(&body) as u64,
                0,
                0,
                0,
            ],
        );
        qfs::atomic_write_with(&collection_dir.join(MANIFEST_FILE), |w| {
            w.write_all(&head)?;
            w.write_all(&body)
        })?;
        Ok(())
    }

    /// Checks that every listed file exists with the listed size and checksum. The error names the first
    /// file that does not.
    pub fn verify(&self, collection_dir: &Path) -> Result<()> {
        for seg in &self.segments {
            for f in &seg.files {
                let path = f.full_path(collection_dir);
                let got = match qfs::file_crc32(&path) {
                    Ok(g) => g,
                    Err(Error::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        return Err(corrupt(&path, "listed in the manifest but missing"));
                    }
                    Err(e) => return Err(e),
                };
                if got.size != f.size {
                    return Err(corrupt(
                        &path,
                        format!("size {} differs from the manifest's {}", got.size, f.size),
                    ));
                }
                if got.crc32 != f.crc32 {
                    return Err(corrupt(
                        &path,
                        format!(
                            "checksum {:08x} differs from the manifest's {:08x}",
                            got.crc32, f.crc32
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Removes what a crash or an earlier generation left behind: temp files, segment directories and
    /// segment files the manifest does not list. Call on open, before anything is mapped.
    pub fn remove_unlisted(&self, collection_dir: &Path) -> Result<usize> {
        let mut removed = qfs::remove_temp_files(collection_dir)?;
        let seg_root = collection_dir.join(SEGMENTS_DIR);
        if !seg_root.exists() {
            return Ok(removed);
        }
        let listed: BTreeSet<String> = self.segments.iter().map(|s| s.dir_name()).collect();
        let files: BTreeSet<&str> = self
            .segments
            .iter()
            .flat_map(|s| s.files.iter().map(|f| f.path.as_str()))
            .collect();
        for entry in std::fs::read_dir(&seg_root).map_err(|e| Error::io(&seg_root, e))? {
            let entry = entry.map_err(|e| Error::io(&seg_root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{SEGMENTS_DIR}/{name}");
            let path = entry.path();
            if !listed.contains(&rel) {
                tracing::info!(dir = %path.display(), "removing segment not in the manifest");
                if path.is_dir() {
                    std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                } else {
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                }
                removed += 1;
                continue;
            }
            for file in std::fs::read_dir(&path).map_err(|e| Error::io(&path, e))? {
                let file = file.map_err(|e| Error::io(&path, e))?;
                let frel = format!("{rel}/{}", file.file_name().to_string_lossy());
                if !files.contains(frel.as_str()) {
                    let fp = file.path();
                    tracing::info!(file = %fp.display(), "removing file not in the manifest");
                    std::fs::remove_file(&fp).map_err(|e| Error::io(&fp, e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Total bytes of every listed file.
    pub fn files_size(&self) -> u64 {
        self.segments
            .iter()
            .flat_map(|s| s.files.iter().map(|f| f.size))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_load_verify_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Manifest::load(dir.path()).unwrap().is_none());
        std::fs::create_dir_all(dir.path().join("segments/seg-0")).unwrap();
        let w =
            qfs::atomic_write(&dir.path().join("segments/seg-0/points.bin"), b"abcdef").unwrap();
        let m = Manifest {
            generation: 3,
            wal_seq: 17,
            next_segment_id: 1,
            segments: vec![SegmentEntry {
                id: 0,
                num_points: 2,
                files: vec![FileEntry::new(
                    SegmentFile::Points,
                    "segments/seg-0/points.bin".into(),
                    w,
                )],
            }],
        };
        m.store(dir.path()).unwrap();
        let back = Manifest::load(dir.path()).unwrap().unwrap();
        assert_eq!(back, m);
        back.verify(dir.path()).unwrap();

        std::fs::write(dir.path().join("segments/seg-0/points.bin"), b"abcdeF").unwrap();
        let err = back.verify(dir.path()).unwrap_err();
        assert!(err.to_string().contains("points.bin"), "{err}");

        let mp = dir.path().join(MANIFEST_FILE);
        let mut bytes = std::fs::read(&mp).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0xff;
        std::fs::write(&mp, &bytes).unwrap();
        assert!(matches!(
            Manifest::load(dir.path()).unwrap_err(),
            Error::Corrupt { .. }
        ));
    }

    #[test]
    fn unlisted_files_and_segments_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("segments/seg-0")).unwrap();
        std::fs::create_dir_all(dir.path().join("segments/seg-1")).unwrap();
        let w = qfs::atomic_write(&dir.path().join("segments/seg-0/a"), b"a").unwrap();
        std::fs::write(dir.path().join("segments/seg-0/old"), b"o").unwrap();
        std::fs::write(dir.path().join("segments/seg-1/x"), b"x").unwrap();
        let m = Manifest {
            generation: 1,
            wal_seq: 0,
            next_segment_id: 2,
            segments: vec![SegmentEntry {
                id: 0,
                num_points: 0,
                files: vec![FileEntry::new(
                    SegmentFile::Points,
                    "segments/seg-0/a".into(),
                    w,
                )],
            }],
        };
        assert_eq!(m.remove_unlisted(dir.path()).unwrap(), 2);
        assert!(dir.path().join("segments/seg-0/a").exists());
        assert!(!dir.path().join("segments/seg-0/old").exists());
        assert!(!dir.path().join("segments/seg-1").exists());
    }
}
