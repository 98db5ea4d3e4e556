//! Tombstone files: header fields `[points, deleted count]`, then the bitmap as little-endian `u64`
//! words. Small (one bit per point), so they are read into memory rather than mapped.

use std::path::Path;

use super::mapped::write_u64s;
use crate::fs::{atomic_write_with, WrittenFile};
use crate::{header, Bitmap, Error, Result};

const MAGIC: &[u8; 8] = b"QVDELETE";
const VERSION: u32 = 1;

/// Writes a tombstone file.
pub fn write_deleted(path: &Path, deleted: &Bitmap) -> Result<WrittenFile> {
    let head = header::encode(
        MAGIC,
        VERSION,
        [
            deleted.len() as u64,
            deleted.count_ones() as u64,
            0,
            0,
            0,
            0,
        ],
    );
    atomic_write_with(path, |w| {
        w.write_all(&head)?;
        write_u64s(w, deleted.words())
    })
}

/// Reads a tombstone file of a segment with `num_points` points.
pub fn read_deleted(path: &Path, num_points: usize) -> Result<Bitmap> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let f = header::decode(path, &bytes, MAGIC, VERSION)?;
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let body = &bytes[header::HEADER_LEN..];
    if f[0] as usize != num_points || body.len() != num_points.div_ceil(64) * 8 {
        return Err(corrupt(format!(
            "{} bytes of tombstones for {} points, expected {num_points}",
            body.len(),
            f[0]
        )));
    }
    let words = body
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    let bitmap = Bitmap::from_words(words, num_points);
    if bitmap.count_ones() as u64 != f[1] {
        return Err(corrupt("tombstone count differs from the header".into()));
    }
    Ok(bitmap)
}
