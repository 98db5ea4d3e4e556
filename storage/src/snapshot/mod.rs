//! Snapshot archives: one ustar file holding a collection's files, then `snapshot-manifest.json`, which
//! lists every other entry with its size and SHA-256, then `snapshot-manifest.json.sha256`, the
//! manifest's own SHA-256. The manifest comes last, so a snapshot is written in one streaming pass.
//!
//! Extraction trusts nothing: every entry must be a regular file with a plain relative path, appear in
//! the manifest once with the listed size and checksum, and the whole archive must stay under a size
//! bound. The first violation stops extraction with [`Error::Invalid`] naming it.

pub mod tar;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fs as qfs;
use tar::{EntryKind, TarReader, TarWriter};

/// Name of the manifest entry.
pub const MANIFEST_ENTRY: &str = "snapshot-manifest.json";
/// Name of the last entry: the manifest's SHA-256 as lowercase hex and a newline, so that no byte of the
/// manifest (a comment-like field, a timestamp) can change unnoticed.
pub const MANIFEST_CHECKSUM_ENTRY: &str = "snapshot-manifest.json.sha256";
/// Version of the archive layout; readers refuse newer ones.
pub const FORMAT_VERSION: u32 = 1;
/// Suffix of snapshot archives.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Suffix of the checksum sidecar written next to each archive (`sha256sum` format).
pub const CHECKSUM_SUFFIX: &str = ".sha256";
/// Largest manifest accepted (it is read into memory).
const MAX_MANIFEST: u64 = 64 << 20;

/// Errors of snapshot archives.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive is malformed, tampered with or not a Quiver snapshot (the caller's input is at fault).
    #[error("invalid snapshot: {0}")]
    Invalid(String),
    /// A storage failure while reading or writing.
    #[error(transparent)]
    Storage(#[from] crate::Error),
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

/// One file of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// Path inside the archive, relative to the collection directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// What a snapshot holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Version of the Quiver that wrote it.
    pub quiver_version: String,
    /// The collection's name when the snapshot was taken.
    pub collection: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// The collection's config (also stored as a file; here so a reader can inspect it cheaply).
    pub config: serde_json::Value,
    /// Sequence number of the first WAL record stored in the snapshot.
    pub wal_first_seq: u64,
    /// Sequence number of the last WAL record stored (the snapshot's point in time).
    pub wal_last_seq: u64,
    /// Every other entry of the archive.
    pub files: Vec<SnapshotFile>,
    /// For a full snapshot (every collection of a data directory): the collections it holds, each as
    /// a nested collection archive `<name>.snapshot`. Empty for a collection snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<String>,
    /// For a full snapshot: the aliases of its collections (alias to collection name), restored with
    /// them. Absent in older archives and in collection snapshots.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, String>,
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that an archive path is a plain relative path: `/`-separated normal components only.
pub fn check_entry_path(path: &str) -> Result<(), Error> {
    if path.is_empty() {
        return Err(invalid("entry with an empty path"));
    }
    if path.starts_with('/') || path.contains('\\') || path.contains(':') {
        return Err(invalid(format!("entry {path:?} has an absolute path")));
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(invalid(format!(
                "entry {path:?} has a `..`, `.` or empty path component"
            )));
        }
    }
    if !Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(invalid(format!(
            "entry {path:?} is not a plain relative path"
        )));
    }
    Ok(())
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A finished archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// Where it lies.
    pub path: PathBuf,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the whole archive, lowercase hex.
    pub sha256: String,
}

/// Writes an archive under a temp name; [`ArchiveWriter::finish`] makes it durable and visible.
pub struct ArchiveWriter {
    path: PathBuf,
    tmp: PathBuf,
    tar: Option<TarWriter<Hashing<BufWriter<File>>>>,
    files: Vec<SnapshotFile>,
}

impl ArchiveWriter {
    /// Starts an archive that will be published at `path`.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(qfs::TEMP_SUFFIX);
        let tmp = path.with_file_name(name);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| crate::Error::io(&tmp, e))?;
        let out = Hashing {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            size: 0,
        };
        Ok(ArchiveWriter {
            path: path.to_path_buf(),
            tmp,
            tar: Some(TarWriter::new(out)),
            files: Vec::new(),
        })
    }

    /// Adds `size` bytes read from `data` as entry `rel`.
    pub fn add(&mut self, rel: &str, size: u64, data: &mut dyn Read) -> Result<(), Error> {
        check_entry_path(rel)?;
        if rel == MANIFEST_ENTRY || self.files.iter().any(|f| f.path == rel) {
            return Err(invalid(format!("duplicate entry {rel:?}")));
        }
        let mut hasher = Sha256::new();
        let mut tee = TeeReader {
            inner: data,
            hasher: &mut hasher,
        };
        let tar = self.tar.as_mut().expect("writer not finished");
        tar.append(rel, size, &mut tee)
            .map_err(|e| crate::Error::io(&self.tmp, e))?;
        self.files.push(SnapshotFile {
            path: rel.to_string(),
            size,
            sha256: hex(&hasher.finalize()),
        });
        Ok(())
    }

    /// Adds a file from disk, hashing it as it is copied.
    pub fn add_file(&mut self, rel: &str, source: &Path) -> Result<(), Error> {
        let file = File::open(source).map_err(|e| crate::Error::io(source, e))?;
        let size = file
            .metadata()
            .map_err(|e| crate::Error::io(source, e))?
            .len();
        self.add(rel, size, &mut BufReader::with_capacity(1 << 20, file))
    }

    /// Appends the manifest (with the file list filled in), fsyncs, renames into place, fsyncs the
    /// directory and writes the checksum sidecar.
    pub fn finish(mut self, mut manifest: SnapshotManifest) -> Result<ArchiveInfo, Error> {
        manifest.files = std::mem::take(&mut self.files);
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        let mut tar = self.tar.take().expect("writer not finished");
        let io_err = |e| crate::Error::io(&self.tmp, e);
        tar.append(MANIFEST_ENTRY, json.len() as u64, &mut &json[..])
            .map_err(io_err)?;
        let manifest_sum = format!("{}\n", hex(&Sha256::digest(&json)));
        tar.append(
            MANIFEST_CHECKSUM_ENTRY,
            manifest_sum.len() as u64,
            &mut manifest_sum.as_bytes(),
        )
        .map_err(io_err)?;
        let mut out = tar.finish().map_err(io_err)?;
        out.flush().map_err(io_err)?;
        let Hashing {
            inner,
            hasher,
            size,
        } = out;
        let file = inner.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| crate::Error::io(&self.path, e))?;
        qfs::sync_parent(&self.path)?;
        let sha256 = hex(&hasher.finalize());
        let name = self
            .path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        qfs::atomic_write(
            &checksum_path(&self.path),
            format!("{sha256}  {name}\n").as_bytes(),
        )?;
        Ok(ArchiveInfo {
            path: self.path.clone(),
            size,
            sha256,
        })
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        if self.tar.is_some() {
            // Abandoned midway: leave no temp file behind.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

struct TeeReader<'a> {
    inner: &'a mut dyn Read,
    hasher: &'a mut Sha256,
}

impl Read for TeeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Path of an archive's checksum sidecar.
pub fn checksum_path(archive: &Path) -> PathBuf {
    let mut name = archive.file_name().unwrap_or_default().to_os_string();
    name.push(CHECKSUM_SUFFIX);
    archive.with_file_name(name)
}

/// The archive's SHA-256 from its sidecar, if the sidecar exists and is well formed.
pub fn read_checksum(archive: &Path) -> Option<String> {
    let text = std::fs::read_to_string(checksum_path(archive)).ok()?;
    let hash = text.split_whitespace().next()?;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hash.to_lowercase())
}

/// SHA-256 of a whole file, lowercase hex.
pub fn file_sha256(path: &Path) -> Result<String, Error> {
    let mut file = File::open(path).map_err(|e| crate::Error::io(path, e))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut HashSink(&mut hasher)).map_err(|e| crate::Error::io(path, e))?;
    Ok(hex(&hasher.finalize()))
}

struct HashSink<'a>(&'a mut Sha256);

impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Bounds on what an archive may unpack to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Total bytes of all entries.
    pub max_total_bytes: u64,
    /// Number of entries.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 1 << 40,
            max_entries: 100_000,
        }
    }
}

/// Unpacks an archive into `dest` (an existing empty directory), validating every entry against the
/// manifest. On error `dest` may hold partial files; the caller removes it.
pub fn extract(archive: &Path, dest: &Path, limits: Limits) -> Result<SnapshotManifest, Error> {
    let file = File::open(archive).map_err(|e| crate::Error::io(archive, e))?;
    let mut reader = TarReader::new(BufReader::with_capacity(1 << 20, file));
    let tar_err = |e: io::Error| -> Error {
        if e.kind() == io::ErrorKind::InvalidData {
            invalid(e.to_string())
        } else {
            crate::Error::io(archive, e).into()
        }
    };
    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut manifest_bytes: Option<Vec<u8>> = None;
    let mut manifest_sum: Option<Vec<u8>> = None;
    let mut total = 0u64;
    let mut entries = 0usize;
    while let Some(entry) = reader.next_entry().map_err(tar_err)? {
        entries += 1;
        if entries > limits.max_entries {
            return Err(invalid(format!("more than {} entries", limits.max_entries)));
        }
        match entry.kind {
            EntryKind::File => {}
            EntryKind::Symlink => {
                return Err(invalid(format!(
                    "entry {:?} is a symbolic link",
                    entry.path
                )))
            }
            EntryKind::HardLink => {
                return Err(invalid(format!("entry {:?} is a hard link", entry.path)))
            }
            EntryKind::Other(t) => {
                return Err(invalid(format!(
                    "entry {:?} is not a regular file (type {:?})",
                    entry.path, t as char
                )))
            }
        }
        check_entry_path(&entry.path)?;
        if manifest_sum.is_some() {
            return Err(invalid(format!(
                "entry {:?} follows the manifest checksum",
                entry.path
            )));
        }
        if let Some(bytes) = &manifest_bytes {
            if entry.path != MANIFEST_CHECKSUM_ENTRY || entry.size > 65 {
                return Err(invalid(format!(
                    "entry {:?} follows the manifest",
                    entry.path
                )));
            }
            let mut got = Vec::with_capacity(65);
            reader.read_data(&mut got).map_err(tar_err)?;
            if got != format!("{}\n", hex(&Sha256::digest(bytes))).as_bytes() {
                return Err(invalid(format!(
                    "{MANIFEST_ENTRY} fails its SHA-256 check (archive damaged or tampered with)"
                )));
            }
            manifest_sum = Some(got);
            continue;
        }
        total = total.saturating_add(entry.size);
        if total > limits.max_total_bytes {
            return Err(invalid(format!(
                "archive unpacks to more than {} bytes",
                limits.max_total_bytes
            )));
        }
        if entry.path == MANIFEST_ENTRY {
            if entry.size > MAX_MANIFEST {
                return Err(invalid("manifest is too large"));
            }
            let mut bytes = Vec::with_capacity(entry.size as usize);
            reader.read_data(&mut bytes).map_err(tar_err)?;
            manifest_bytes = Some(bytes);
            continue;
        }
        if seen.contains_key(&entry.path) {
            return Err(invalid(format!("entry {:?} appears twice", entry.path)));
        }
        let target = dest.join(&entry.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| crate::Error::io(parent, e))?;
        }
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| crate::Error::io(&target, e))?;
        let mut hashing = Hashing {
            inner: BufWriter::with_capacity(1 << 20, out),
            hasher: Sha256::new(),
            size: 0,
        };
        reader.read_data(&mut hashing).map_err(tar_err)?;
        hashing.flush().map_err(|e| crate::Error::io(&target, e))?;
        let Hashing {
            inner,
            hasher,
            size,
        } = hashing;
        let out = inner
            .into_inner()
            .map_err(|e| crate::Error::io(&target, e.into_error()))?;
        out.sync_all().map_err(|e| crate::Error::io(&target, e))?;
        seen.insert(entry.path, (size, hex(&hasher.finalize())));
    }
    reader.finish().map_err(tar_err)?;
    let bytes = manifest_bytes.ok_or_else(|| invalid(format!("no {MANIFEST_ENTRY} entry")))?;
    if manifest_sum.is_none() {
        return Err(invalid(format!("no {MANIFEST_CHECKSUM_ENTRY} entry")));
    }
    let manifest: SnapshotManifest = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("unreadable {MANIFEST_ENTRY}: {e}")))?;
    if manifest.format_version == 0 || manifest.format_version > FORMAT_VERSION {
        return Err(invalid(format!(
            "format version {} is not supported (this Quiver reads up to {FORMAT_VERSION})",
            manifest.format_version
        )));
    }
    for f in &manifest.files {
        check_entry_path(&f.path)?;
        let Some((size, sha)) = seen.remove(&f.path) else {
            return Err(invalid(format!(
                "file {:?} is listed in the manifest but missing",
                f.path
            )));
        };
        if size != f.size {
            return Err(invalid(format!(
                "file {:?} has {size} bytes, the manifest says {}",
                f.path, f.size
            )));
        }
        if !sha.eq_ignore_ascii_case(&f.sha256) {
            return Err(invalid(format!(
                "file {:?} fails its SHA-256 check (archive damaged or tampered with)",
                f.path
            )));
        }
    }
    if let Some(extra) = seen.keys().next() {
        return Err(invalid(format!(
            "entry {extra:?} is not listed in the manifest"
        )));
    }
    sync_tree(dest)?;
    Ok(manifest)
}

/// Fsyncs every directory under `dir` (files were synced as written).
fn sync_tree(dir: &Path) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir).map_err(|e| crate::Error::io(dir, e))? {
        let entry = entry.map_err(|e| crate::Error::io(dir, e))?;
        if entry
            .file_type()
            .map_err(|e| crate::Error::io(dir, e))?
            .is_dir()
        {
            sync_tree(&entry.path())?;
        }
    }
    qfs::sync_dir(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests;
