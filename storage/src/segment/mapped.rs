//! Read-only memory maps of immutable files and typed views into them.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::{Error, Result};

/// A whole file, memory-mapped read-only.
pub struct Mapped {
    mmap: Mmap,
    path: PathBuf,
}

impl Mapped {
    /// Maps `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: Quiver maps only sealed segment files, which are written once through an atomic rename
        // and never modified, truncated or rewritten while any handle to them exists; a changed file
        // always gets a new name. Another process editing our data directory is outside the contract.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(Mapped {
            mmap,
            path: path.to_path_buf(),
        })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.mmap
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
}

macro_rules! cast_fn {
    ($name:ident, $t:ty) => {
        /// Views little-endian bytes as a slice of this type; `None` when misaligned or of a length that is
        /// not a whole number of elements.
        pub fn $name(bytes: &[u8]) -> Option<&[$t]> {
            // SAFETY: every bit pattern is a valid value of this plain numeric type, `align_to` only
            // returns a middle part that is correctly aligned, and the host is little-endian (checked at
            // compile time in lib.rs), so the bytes mean what was written.
            let (head, body, tail) = unsafe { bytes.align_to::<$t>() };
            (head.is_empty() && tail.is_empty()).then_some(body)
        }
    };
}
cast_fn!(as_f32s, f32);
cast_fn!(as_u32s, u32);
cast_fn!(as_u64s, u64);

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
