//! The checked primitive every sealed file is read through: an immutable file mapped read-only (or read
//! into memory), its header, CRC-checked byte ranges and typed sections, each failure an error that
//! names the file. Vector files, points, prefix rows, HNSW graphs and token stores all open this way;
//! their header layouts differ (each is versioned on its own) but the reading does not.

use std::fs::File;
use std::path::{Path, PathBuf};

use std::io::Read;

use memmap2::{Mmap, MmapMut};

use crate::{Error, Result};

/// Where the bytes of a sealed file are served from once it is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Residency {
    /// Mapped from the file: pages come in as they are touched and the page cache may drop them
    /// again (Qdrant's `on_disk: true`).
    #[default]
    Mapped,
    /// Read whole into anonymous memory at open, on transparent huge pages where the kernel grants
    /// them (Qdrant's default, `on_disk: false`). An HNSW search touches rows all over the file, and
    /// with 4 KiB file pages most of those touches also missed the TLB.
    InMemory,
}

/// The bytes of the immutable file `path`, served as `residency` says. Files are never rewritten in
/// place, so both forms stay equal to the file for as long as they live.
pub fn map_file(path: &Path, residency: Residency) -> Result<Mmap> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if residency == Residency::InMemory && len > 0 {
        let len = usize::try_from(len).map_err(|_| Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{len} bytes do not fit in memory"),
        })?;
        let mut anon = MmapMut::map_anon(len).map_err(|e| Error::io(path, e))?;
        #[cfg(target_os = "linux")]
        {
            // Advice only: without transparent huge pages the copy is still in memory.
            let _ = anon.advise(memmap2::Advice::HugePage);
        }
        file.read_exact(&mut anon).map_err(|e| Error::io(path, e))?;
        return anon.make_read_only().map_err(|e| Error::io(path, e));
    }
    // SAFETY: Quiver maps only sealed segment files, which are written once through an atomic rename
    // and never modified, truncated or rewritten while any handle to them exists; a changed file
    // always gets a new name. Another process editing our data directory is outside the contract.
    unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))
}

/// A whole file, memory-mapped read-only (or read into memory, see [`Residency`]).
pub struct Mapped {
    mmap: Mmap,
    path: PathBuf,
    residency: Residency,
}

impl Mapped {
    /// Maps `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_as(path, Residency::Mapped)
    }

    /// Opens `path` with the given residency.
    pub fn open_as(path: &Path, residency: Residency) -> Result<Self> {
        Ok(Mapped {
            mmap: map_file(path, residency)?,
            path: path.to_path_buf(),
            residency,
        })
    }

    /// `bytes` copied into anonymous read-only memory and read like a file named `label` (errors
    /// name it): for an index built in memory that has no file (yet), read through the same checks.
    pub fn from_bytes(label: &Path, bytes: &[u8]) -> Result<Self> {
        let mmap = if bytes.is_empty() {
            MmapMut::map_anon(0)
        } else {
            MmapMut::map_anon(bytes.len()).map(|mut anon| {
                anon.copy_from_slice(bytes);
                anon
            })
        }
        .and_then(MmapMut::make_read_only)
        .map_err(|e| Error::io(label, e))?;
        Ok(Mapped {
            mmap,
            path: label.to_path_buf(),
            residency: Residency::InMemory,
        })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.mmap
    }

    /// The file's length in bytes.
    pub fn len(&self) -> usize {
        self.mmap.len()
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.mmap.is_empty()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A corruption error naming this file.
    pub fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The first `N` bytes (the file's header), or an error when the file is shorter.
    pub fn header<const N: usize>(&self) -> Result<&[u8; N]> {
        self.mmap
            .get(..N)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                self.corrupt(format!(
                    "file is {} bytes, shorter than its {N}-byte header",
                    self.len()
                ))
            })
    }

    /// `count` values of `T` starting at byte `at`, or an error when they are out of the file or
    /// misaligned.
    pub fn section<T: Pod>(&self, at: usize, count: usize) -> Result<&[T]> {
        let bytes = count
            .checked_mul(std::mem::size_of::<T>())
            .and_then(|n| at.checked_add(n))
            .and_then(|end| self.mmap.get(at..end))
            .ok_or_else(|| {
                self.corrupt(format!(
                    "a section of {count} values at byte {at} does not fit in {} bytes",
                    self.len()
                ))
            })?;
        cast(bytes).ok_or_else(|| self.corrupt(format!("the section at byte {at} is misaligned")))
    }

    /// Checks the CRC-32 of everything from byte `from` on against `expected`; `what` names the
    /// checksum in the error.
    pub fn check_crc(&self, from: usize, expected: u32, what: &str) -> Result<()> {
        let body = self.mmap.get(from..).unwrap_or(&[]);
        let crc = crc32fast::hash(body);
        if crc == expected {
            Ok(())
        } else {
            Err(self.corrupt(format!(
                "{what} checksum {crc:08x} differs from the header's {expected:08x}"
            )))
        }
    }

    /// Tells the kernel that reads jump around the file (a graph walk), so read-ahead would only pull
    /// in pages nobody asked for. No effect on files read into memory.
    pub fn advise_random(&self) {
        #[cfg(unix)]
        if self.residency == Residency::Mapped {
            // Advice only: a refusal changes nothing but speed.
            let _ = self.mmap.advise(memmap2::Advice::Random);
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Plain numbers for which every bit pattern is a valid value: what a typed section may hold.
pub trait Pod: Copy + sealed::Sealed {}

macro_rules! pod {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Pod for $t {}
    )*};
}
pod!(u8, u16, u32, u64, f32);

/// Views little-endian bytes as a slice of `T`; `None` when misaligned or of a length that is not a
/// whole number of elements. The one byte-to-typed cast of Quiver's files.
#[inline]
pub fn cast<T: Pod>(bytes: &[u8]) -> Option<&[T]> {
    // SAFETY: `T` is a plain number type (sealed `Pod`) for which every bit pattern is valid,
    // `align_to` only returns a middle part that is correctly aligned, and the host is little-endian
    // (checked at compile time in lib.rs), so the bytes mean what was written.
    let (head, body, tail) = unsafe { bytes.align_to::<T>() };
    (head.is_empty() && tail.is_empty()).then_some(body)
}

/// Writes values as little-endian bytes through a bounded buffer, so large arrays never need a second
/// full-size copy.
fn write_le<T: Copy, const N: usize>(
    w: &mut dyn std::io::Write,
    values: &[T],
    to_le: fn(T) -> [u8; N],
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    for chunk in values.chunks(16 * 1024 / N) {
        buf.clear();
        for &v in chunk {
            buf.extend_from_slice(&to_le(v));
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Writes `f32`s as little-endian bytes.
pub fn write_f32s(w: &mut dyn std::io::Write, values: &[f32]) -> std::io::Result<()> {
    write_le(w, values, f32::to_le_bytes)
}

/// Writes `u32`s as little-endian bytes.
pub fn write_u32s(w: &mut dyn std::io::Write, values: &[u32]) -> std::io::Result<()> {
    write_le(w, values, u32::to_le_bytes)
}

/// Writes `u64`s as little-endian bytes.
pub fn write_u64s(w: &mut dyn std::io::Write, values: &[u64]) -> std::io::Result<()> {
    write_le(w, values, u64::to_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_holds_the_same_bytes_as_the_map() {
        let dir = tempfile::tempdir().unwrap();
        // Over one 2 MiB huge page, and not a multiple of the page size.
        let bytes: Vec<u8> = (0..(5 << 20) + 13).map(|i| (i * 31 % 251) as u8).collect();
        let path = dir.path().join("rows.bin");
        std::fs::write(&path, &bytes).unwrap();
        let mapped = Mapped::open(&path).unwrap();
        let resident = Mapped::open_as(&path, Residency::InMemory).unwrap();
        assert_eq!(mapped.bytes(), &bytes[..]);
        assert_eq!(resident.bytes(), &bytes[..]);
        // An empty file opens either way.
        let empty = dir.path().join("empty.bin");
        std::fs::write(&empty, b"").unwrap();
        assert!(Mapped::open_as(&empty, Residency::InMemory)
            .unwrap()
            .bytes()
            .is_empty());
        // A missing file names its path.
        let err = Mapped::open_as(&dir.path().join("gone.bin"), Residency::InMemory)
            .err()
            .unwrap();
        assert!(err.to_string().contains("gone.bin"), "{err}");
    }

    #[test]
    fn sections_headers_and_checksums_are_checked_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sections.bin");
        let mut bytes = b"HEADER!!".to_vec();
        for v in [1u32, 2, 3, 4] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(&path, &bytes).unwrap();
        let map = Mapped::open(&path).unwrap();
        assert_eq!(map.header::<8>().unwrap(), b"HEADER!!");
        assert_eq!(map.section::<u32>(8, 4).unwrap(), &[1, 2, 3, 4]);
        assert_eq!(map.section::<u64>(8, 2).unwrap().len(), 2);
        for err in [
            map.header::<64>().err().unwrap(),
            map.section::<u32>(8, 5).err().unwrap(),
            map.section::<u32>(9, 1).err().unwrap(),
            map.section::<u64>(usize::MAX, 2).err().unwrap(),
        ] {
            assert!(
                matches!(&err, Error::Corrupt { path: p, .. } if *p == path),
                "{err}"
            );
        }
        let crc = crc32fast::hash(&bytes[8..]);
        map.check_crc(8, crc, "body").unwrap();
        let err = map.check_crc(8, crc ^ 1, "body").unwrap_err();
        assert!(err.to_string().contains("body checksum"), "{err}");
        assert_eq!(cast::<u32>(&bytes[8..12]), Some(&[1u32][..]));
        assert_eq!(cast::<u32>(&bytes[8..11]), None);
    }
}
