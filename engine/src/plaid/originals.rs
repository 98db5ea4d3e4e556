//! The originals file of a token store: every token as inserted, rounded to f16, in the store's token
//! order (point `i`'s tokens are the store's rows `doc_offsets[i]..doc_offsets[i + 1]`). Search reads it
//! only for the few candidates its last stage rescores by exact MaxSim ([`super::PlaidSearchParams::rescore`]);
//! it is memory-mapped and never read whole, so it costs disk, not resident memory.
//!
//! A 64-byte header (little-endian, padding zeroed), then `num_tokens · dim` f16 values:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `QVRPLF16` |
//! | 8..12 | format version (1) |
//! | 12..16 | header length (64) |
//! | 16..20 | dim |
//! | 20..24 | zero |
//! | 24..32 | number of points |
//! | 32..40 | number of tokens |
//! | 40..44 | CRC-32 of the body |
//! | 44..64 | zero |
//!
//! Opening checks the header and the size only (a full check would read the file into the page cache);
//! [`TokenOriginals::verify`] checks the body's CRC-32, and a segment's manifest holds the file's own.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use quiver_storage::fs::{atomic_write_with, WrittenFile};
use quiver_storage::segment::Mapped;

use super::TokenRows;
use crate::{Error, Result};

/// Suggested file name of a segment's token originals, beside [`super::DEFAULT_FILE_NAME`].
pub const ORIGINALS_FILE_NAME: &str = "tokens.f16";

const MAGIC: [u8; 8] = *b"QVRPLF16";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 64;

fn header(dim: usize, num_points: usize, num_tokens: usize, crc: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    h[16..20].copy_from_slice(&(dim as u32).to_le_bytes());
    h[24..32].copy_from_slice(&(num_points as u64).to_le_bytes());
    h[32..40].copy_from_slice(&(num_tokens as u64).to_le_bytes());
    h[40..44].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Streams the tokens as little-endian f16, a point at a time, checking each point's row count.
fn write_body(tokens: &dyn TokenRows, w: &mut dyn Write) -> std::io::Result<()> {
    let (mut halves, mut bytes) = (Vec::new(), Vec::new());
    tokens.for_each_point(&mut |rows| {
        halves.clear();
        halves.resize(rows.len(), f16::ZERO);
        halves.convert_from_f32_slice(rows);
        bytes.clear();
        for h in &halves {
            bytes.extend_from_slice(&h.to_bits().to_le_bytes());
        }
        w.write_all(&bytes)
    })
}

/// Writes `tokens` rounded to f16 to `path`, atomically and durably (temp file, fsync, rename, fsync of
/// the directory). Returns the size and CRC-32 of the whole file for the segment manifest. The tokens
/// are read twice, a point at a time (the header holds the body's CRC-32), and never gathered.
pub fn write_originals(tokens: impl TokenRows, path: &Path) -> Result<WrittenFile> {
    let offsets = tokens.offsets();
    super::check_shape(offsets, tokens.dim())
        .map_err(|why| Error::InvalidInput(format!("token originals: {why}")))?;
    let mut crc = crc32fast::Hasher::new();
    write_body(&tokens, &mut HashWriter(&mut crc))
        .map_err(|e| Error::InvalidInput(format!("token originals: {e}")))?;
    let head = header(
        tokens.dim(),
        offsets.len() - 1,
        offsets[offsets.len() - 1] as usize,
        crc.finalize(),
    );
    Ok(atomic_write_with(path, |w| {
        w.write_all(&head)?;
        write_body(&tokens, w)
    })?)
}

struct HashWriter<'a>(&'a mut crc32fast::Hasher);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A mapped originals file. `Send + Sync`.
pub struct TokenOriginals {
    map: Mapped,
    dim: usize,
    num_points: usize,
    num_tokens: usize,
    body_crc32: u32,
}

impl std::fmt::Debug for TokenOriginals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenOriginals")
            .field("points", &self.num_points)
            .field("tokens", &self.num_tokens)
            .field("dim", &self.dim)
            .finish()
    }
}

impl TokenOriginals {
    /// Maps a file written by [`write_originals`], checking its header and size (not its body: see
    /// [`TokenOriginals::verify`]). Reads are advised as random, so that a candidate's tokens do not pull
    /// their neighbours into memory.
    pub fn open(path: &Path) -> Result<TokenOriginals> {
        let corrupt = |reason: String| -> Error {
            quiver_storage::Error::Corrupt {
                path: PathBuf::from(path),
                reason,
            }
            .into()
        };
        let map = Mapped::open(path)?;
        let h: &[u8; HEADER_LEN] = map.header()?;
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        if h[..8] != MAGIC {
            return Err(corrupt("not a token originals file (bad magic)".into()));
        }
        if u32_at(8) != VERSION {
            return Err(corrupt(format!(
                "format version {} is not supported (expected {VERSION})",
                u32_at(8)
            )));
        }
        if u32_at(12) as usize != HEADER_LEN || u32_at(20) != 0 || h[44..].iter().any(|&b| b != 0) {
            return Err(corrupt("header length or padding is wrong".into()));
        }
        let dim = u32_at(16) as usize;
        if dim == 0 || dim > 65_536 {
            return Err(corrupt(format!("dim {dim} is out of range")));
        }
        let (num_points, num_tokens) = (u64_at(24), u64_at(32));
        if num_points > u32::MAX as u64 {
            return Err(corrupt(format!("{num_points} points is too many")));
        }
        let want = usize::try_from(num_tokens)
            .ok()
            .and_then(|n| n.checked_mul(dim))
            .and_then(|n| n.checked_mul(2))
            .and_then(|n| n.checked_add(HEADER_LEN));
        if want != Some(map.len()) {
            return Err(corrupt(format!(
                "size is {} bytes, the header implies {num_tokens} tokens of {dim} f16",
                map.len()
            )));
        }
        let body_crc32 = u32_at(40);
        map.advise_random();
        Ok(TokenOriginals {
            map,
            dim,
            num_points: num_points as usize,
            num_tokens: num_tokens as usize,
            body_crc32,
        })
    }

    /// Checks the body against the header's CRC-32 (reads the whole file).
    pub fn verify(&self) -> Result<()> {
        Ok(self
            .map
            .check_crc(HEADER_LEN, self.body_crc32, "token originals")?)
    }

    /// Floats per token.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of points the file was written for.
    pub fn num_points(&self) -> usize {
        self.num_points
    }

    /// Number of tokens.
    pub fn num_tokens(&self) -> usize {
        self.num_tokens
    }

    /// Token rows `rows` as f16 (the range is checked against the file by the caller).
    pub(crate) fn rows(&self, rows: Range<usize>) -> &[f16] {
        let bits: &[u16] = self
            .map
            .section(
                HEADER_LEN + rows.start * self.dim * 2,
                rows.len() * self.dim,
            )
            .expect("rows checked against the token count on open: this is a bug");
        bits.reinterpret_cast()
    }

    /// Token rows `rows` widened to f32 into `out`.
    pub(crate) fn decode_into(&self, rows: Range<usize>, out: &mut Vec<f32>) {
        crate::kernels::widen_f16(self.rows(rows), out);
    }
}
