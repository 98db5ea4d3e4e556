//! The token-store file: a 128-byte `#[repr(C)]` header, then raw little-endian arrays, each starting on
//! a 64-byte boundary so the mapped file can be read in place as `&[f32]`, `&[u64]`, … :
//!
//! | section | type | count |
//! |---|---|---|
//! | centroids | f32 | `num_centroids · dim` |
//! | bucket cutoffs | f32 | `2^nbits − 1` |
//! | bucket weights | f32 | `2^nbits` |
//! | point token offsets | u64 | `num_points + 1` |
//! | IVF offsets | u64 | `num_centroids + 1` |
//! | IVF points | u32 | `num_ivf_entries` |
//! | token centroid ids | u16 or u32 (`id_width`) | `num_tokens` |
//! | packed residuals | u8 | `num_tokens · ⌈dim · nbits / 8⌉` |
//!
//! The header holds a CRC-32 of everything after it, so a file checks itself without the manifest.

use std::io::Write;
use std::path::Path;

use quiver_storage::fs::{atomic_write_with, WrittenFile};

use super::codec::bytes_per_token;
use super::{CentroidIds, PlaidBuild};
use crate::Result;

pub(crate) const MAGIC: [u8; 8] = *b"QVRPLAID";
pub(crate) const VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 128;
const ALIGN: usize = 64;

/// The file header. Written field by field in little-endian order (so its bytes do not depend on the
/// host), with explicit zeroed padding and room to grow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    /// Length of this header in bytes (128).
    pub header_len: u32,
    pub dim: u32,
    pub nbits: u32,
    /// Bytes per token centroid id: 2 or 4.
    pub id_width: u32,
    pub _pad0: u32,
    pub num_points: u64,
    pub num_tokens: u64,
    pub num_centroids: u64,
    pub num_ivf_entries: u64,
    /// CRC-32 (IEEE) of the file after the header.
    pub body_crc32: u32,
    pub _pad1: u32,
    pub _reserved: [u64; 7],
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_LEN);

impl Header {
    pub(crate) fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = &mut out[..];
        let mut put = |b: &[u8]| {
            w[..b.len()].copy_from_slice(b);
            w = &mut std::mem::take(&mut w)[b.len()..];
        };
        put(&self.magic);
        for v in [
            self.version,
            self.header_len,
            self.dim,
            self.nbits,
            self.id_width,
            self._pad0,
        ] {
            put(&v.to_le_bytes());
        }
        for v in [
            self.num_points,
            self.num_tokens,
            self.num_centroids,
            self.num_ivf_entries,
        ] {
            put(&v.to_le_bytes());
        }
        put(&self.body_crc32.to_le_bytes());
        put(&self._pad1.to_le_bytes());
        for v in self._reserved {
            put(&v.to_le_bytes());
        }
        out
    }

    pub(crate) fn from_bytes(b: &[u8; HEADER_LEN]) -> Header {
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let mut reserved = [0u64; 7];
        for (i, r) in reserved.iter_mut().enumerate() {
            *r = u64_at(72 + 8 * i);
        }
        Header {
            magic: b[..8].try_into().expect("8 bytes"),
            version: u32_at(8),
            header_len: u32_at(12),
            dim: u32_at(16),
            nbits: u32_at(20),
            id_width: u32_at(24),
            _pad0: u32_at(28),
            num_points: u64_at(32),
            num_tokens: u64_at(40),
            num_centroids: u64_at(48),
            num_ivf_entries: u64_at(56),
            body_crc32: u32_at(64),
            _pad1: u32_at(68),
            _reserved: reserved,
        }
    }
}

/// Byte ranges of the sections, derived from the header's counts alone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub centroids: (usize, usize),
    pub cutoffs: (usize, usize),
    pub weights: (usize, usize),
    pub doc_offsets: (usize, usize),
    pub ivf_offsets: (usize, usize),
    pub ivf_docs: (usize, usize),
    pub ids: (usize, usize),
    pub residuals: (usize, usize),
    pub total: usize,
}

impl Layout {
    /// The layout, or `None` when the counts overflow (a corrupt header).
    pub(crate) fn new(h: &Header) -> Option<Layout> {
        let levels = 1usize.checked_shl(h.nbits)?;
        let dim = usize::try_from(h.dim).ok()?;
        let k = usize::try_from(h.num_centroids).ok()?;
        let n = usize::try_from(h.num_tokens).ok()?;
        let mut at = HEADER_LEN;
        let mut section = |bytes: Option<usize>| -> Option<(usize, usize)> {
            let start = at.checked_next_multiple_of(ALIGN)?;
            let end = start.checked_add(bytes?)?;
            at = end;
            Some((start, end))
        };
        let centroids = section(k.checked_mul(dim)?.checked_mul(4))?;
        let cutoffs = section((levels - 1).checked_mul(4))?;
        let weights = section(levels.checked_mul(4))?;
        let doc_offsets = section(
            usize::try_from(h.num_points)
                .ok()?
                .checked_add(1)?
                .checked_mul(8),
        )?;
        let ivf_offsets = section(k.checked_add(1)?.checked_mul(8))?;
        let ivf_docs = section(usize::try_from(h.num_ivf_entries).ok()?.checked_mul(4))?;
        let ids = section(n.checked_mul(h.id_width as usize))?;
        let residuals = section(n.checked_mul(bytes_per_token(dim, h.nbits.min(8))))?;
        Some(Layout {
            centroids,
            cutoffs,
            weights,
            doc_offsets,
            ivf_offsets,
            ivf_docs,
            ids,
            residuals,
            total: at,
        })
    }
}

impl PlaidBuild {
    fn header(&self, body_crc32: u32) -> Header {
        Header {
            magic: MAGIC,
            version: VERSION,
            header_len: HEADER_LEN as u32,
            dim: self.dim as u32,
            nbits: self.nbits,
            id_width: match self.ids {
                CentroidIds::U16(_) => 2,
                CentroidIds::U32(_) => 4,
            },
            _pad0: 0,
            num_points: (self.doc_offsets.len() - 1) as u64,
            num_tokens: self.ids.len() as u64,
            num_centroids: (self.centroids.len() / self.dim) as u64,
            num_ivf_entries: self.ivf_docs.len() as u64,
            body_crc32,
            _pad1: 0,
            _reserved: [0; 7],
        }
    }

    /// Streams the body (everything after the header) into `w`, zero-padding up to each section.
    fn write_body(&self, layout: &Layout, w: &mut dyn Write) -> std::io::Result<()> {
        let mut at = HEADER_LEN;
        let mut buf = Vec::with_capacity(1 << 16);
        pad(w, &mut at, layout.centroids)?;
        le_chunks(&self.centroids, &mut buf, w)?;
        pad(w, &mut at, layout.cutoffs)?;
        le_chunks(&self.cutoffs, &mut buf, w)?;
        pad(w, &mut at, layout.weights)?;
        le_chunks(&self.weights, &mut buf, w)?;
        pad(w, &mut at, layout.doc_offsets)?;
        le_chunks(&self.doc_offsets, &mut buf, w)?;
        pad(w, &mut at, layout.ivf_offsets)?;
        le_chunks(&self.ivf_offsets, &mut buf, w)?;
        pad(w, &mut at, layout.ivf_docs)?;
        le_chunks(&self.ivf_docs, &mut buf, w)?;
        pad(w, &mut at, layout.ids)?;
        match &self.ids {
            CentroidIds::U16(v) => le_chunks(v, &mut buf, w)?,
            CentroidIds::U32(v) => le_chunks(v, &mut buf, w)?,
        }
        pad(w, &mut at, layout.residuals)?;
        w.write_all(&self.residuals)
    }

    /// Writes the store to `path` atomically and durably (temp file, fsync, rename, fsync of the
    /// directory). Returns the size and CRC-32 of the whole file for the segment manifest.
    pub fn write(&self, path: &Path) -> Result<WrittenFile> {
        let header = self.header(0);
        let layout =
            Layout::new(&header).expect("a built store's counts fit in memory: this is a bug");
        let mut crc = CrcWriter(crc32fast::Hasher::new());
        self.write_body(&layout, &mut crc)
            .expect("writing to a hasher cannot fail");
        let header = self.header(crc.0.finalize());
        let written = atomic_write_with(path, |w| {
            w.write_all(&header.to_bytes())?;
            self.write_body(&layout, w)
        })?;
        debug_assert_eq!(written.size as usize, layout.total);
        Ok(written)
    }
}

/// Little-endian bytes of plain numbers, converted through a 64 KiB buffer.
trait LeBytes: Copy {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
}

macro_rules! le_bytes {
    ($($t:ty),*) => {$(
        impl LeBytes for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_bytes!(f32, u16, u32, u64);

/// Zeros from `*at` up to the start of `section`; `*at` moves to its end.
fn pad(w: &mut dyn Write, at: &mut usize, section: (usize, usize)) -> std::io::Result<()> {
    w.write_all(&[0u8; ALIGN][..section.0 - *at])?;
    *at = section.1;
    Ok(())
}

fn le_chunks<T: LeBytes>(
    values: &[T],
    buf: &mut Vec<u8>,
    w: &mut dyn Write,
) -> std::io::Result<()> {
    for chunk in values.chunks((1 << 16) / T::SIZE) {
        buf.clear();
        for &v in chunk {
            v.put(buf);
        }
        w.write_all(buf)?;
    }
    buf.clear();
    Ok(())
}

struct CrcWriter(crc32fast::Hasher);

impl Write for CrcWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
