//! Atomic file writes, for every file that is written once and then only read (segment files, graphs,
//! token stores, manifests, configs, a new WAL chunk's header): write a temp file in the same directory,
//! fsync it, rename it over the final name, fsync the directory. A reader never sees a half file, and a
//! file that is memory-mapped is never rewritten in place (that would be SIGBUS). The WAL appends to its
//! open chunk, a snapshot archive streams to a temp name that is renamed when complete, and a restore
//! extracts into a staging directory; none of those is ever mapped.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Suffix of temp files; [`remove_temp_files`] clears leftovers of a crash on open.
pub const TEMP_SUFFIX: &str = ".quiver-tmp";

/// Size and CRC-32 of a file as written, for the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrittenFile {
    /// Bytes written.
    pub size: u64,
    /// CRC-32 (IEEE) of the bytes.
    pub crc32: u32,
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically and durably.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<WrittenFile> {
    atomic_write_with(path, |w| w.write_all(bytes))
}

/// Streams a file to `path` atomically and durably: `fill` writes the content into a buffered writer
/// that also computes the size and checksum.
pub fn atomic_write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<WrittenFile> {
    let tmp = temp_path(path);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    let mut writer = ChecksumWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: crc32fast::Hasher::new(),
        size: 0,
    };
    fill(&mut writer).map_err(|e| Error::io(&tmp, e))?;
    let ChecksumWriter {
        inner,
        hasher,
        size,
    } = writer;
    let file = inner
        .into_inner()
        .map_err(|e| Error::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_parent(path)?;
    Ok(WrittenFile {
        size,
        crc32: hasher.finalize(),
    })
}

/// Fsyncs the directory that holds `path`, so a rename or create in it survives power loss.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sync_dir(dir)
}

/// Fsyncs a directory.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Creates a directory (and parents) and fsyncs its parent so the entry is durable.
pub fn create_dir_durable(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    sync_parent(dir)
}

/// Removes temp files left in `dir` by a crash mid-write. Returns how many were removed.
pub fn remove_temp_files(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_string_lossy().ends_with(TEMP_SUFFIX) {
            let p = entry.path();
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// CRC-32 of a whole file, read in chunks (for verifying manifest entries).
pub fn file_crc32(path: &Path) -> Result<WrittenFile> {
    use std::io::Read;
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(WrittenFile {
        size,
        crc32: hasher.finalize(),
    })
}

struct ChecksumWriter<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
    size: u64,
}

impl<W: Write> Write for ChecksumWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        let first = atomic_write(&p, b"hello").unwrap();
        assert_eq!(first.size, 5);
        let second = atomic_write(&p, b"world!").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"world!");
        assert_eq!(file_crc32(&p).unwrap(), second);
        assert_ne!(first.crc32, second.crc32);
        assert!(!temp_path(&p).exists());
    }

    #[test]
    fn leftover_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(format!("x{TEMP_SUFFIX}")), b"junk").unwrap();
        fs::write(dir.path().join("keep"), b"ok").unwrap();
        assert_eq!(remove_temp_files(dir.path()).unwrap(), 1);
        assert!(dir.path().join("keep").exists());
    }
}
