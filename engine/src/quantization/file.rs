//! The codes file of one dense vector of one sealed segment, and the scorer a graph walk uses on it.
//!
//! Layout (after the 64-byte header, whose fields are: kind, rows, dim, then for scalar codes
//! `alpha` and `offset` as `f32` bits, for binary codes the query's bits per code bit (0 or 1: the
//! query encoded as the rows are; 4 or 8), then 0s): for scalar codes the per-row `f32`
//! corrections, padded to 8 bytes, then `rows · dim` code bytes; for binary codes the per-component
//! `f32` means (and for `two_bits` and `one_and_half_bits` the standard deviations after them),
//! padded to 8 bytes, then `rows · words_per_row` little-endian `u64` words. Written once,
//! atomically; read through [`Mapped`], which checks every section's bounds and alignment.
//!
//! Version 2 added the binary kinds `two_bits` and `one_and_half_bits` and the query encoding;
//! version 1 files (scalar and `one_bit` codes, the query field 0) read as they always did.

use std::io::Write;
use std::path::Path;

use quiver_storage::fs::{atomic_write_with, WrittenFile};
use quiver_storage::header::{self, HEADER_LEN};
use quiver_storage::segment::{cast, write_f32s, write_u64s, Mapped, Residency};

use super::binary::{self, BinaryCodes};
use super::scalar::{self, ScalarCodes};
use super::{BinaryEncoding, QuantizationConfig};
use crate::config::Distance;
use crate::index::{RowScorer, VectorSlab};
use crate::kernels::codes::{hamming, u8_dot, u8_l2, weighted_hamming};
use crate::Result;

const MAGIC: &[u8; 8] = b"QVCODES\0";
const VERSION: u32 = 2;
/// Versions this build reads.
const READS: [u32; 2] = [1, VERSION];
const KIND_SCALAR_INT8: u64 = 1;
const KIND_BINARY_ONE_BIT: u64 = 2;
const KIND_BINARY_TWO_BITS: u64 = 3;
const KIND_BINARY_ONE_AND_HALF_BITS: u64 = 4;

fn binary_kind(encoding: BinaryEncoding) -> u64 {
    match encoding {
        BinaryEncoding::OneBit => KIND_BINARY_ONE_BIT,
        BinaryEncoding::TwoBits => KIND_BINARY_TWO_BITS,
        BinaryEncoding::OneAndHalfBits => KIND_BINARY_ONE_AND_HALF_BITS,
    }
}

/// `f32`s before the binary codes: the means, and the standard deviations where the encoding uses
/// them.
fn binary_stats_len(dim: usize, encoding: BinaryEncoding) -> usize {
    match encoding {
        BinaryEncoding::OneBit => dim,
        BinaryEncoding::TwoBits | BinaryEncoding::OneAndHalfBits => 2 * dim,
    }
}

/// Codes built in memory, ready to be written.
#[derive(Clone, Debug, PartialEq)]
pub enum Codes {
    /// int8 codes.
    Scalar(ScalarCodes),
    /// One, one and a half or two bits per component.
    Binary(BinaryCodes),
}

fn pad8(bytes: usize) -> usize {
    bytes.div_ceil(8) * 8
}

/// Header fields of a scalar codes file.
fn scalar_fields(rows: usize, dim: usize, alpha: f32, offset: f32) -> [u64; 6] {
    [
        KIND_SCALAR_INT8,
        rows as u64,
        dim as u64,
        u64::from(alpha.to_bits()),
        u64::from(offset.to_bits()),
        0,
    ]
}

/// Header fields of a binary codes file.
fn binary_fields(encoding: BinaryEncoding, rows: usize, dim: usize, query_bits: u8) -> [u64; 6] {
    [
        binary_kind(encoding),
        rows as u64,
        dim as u64,
        u64::from(query_bits),
        0,
        0,
    ]
}

/// Writes a codes file atomically: the header, the `f32` sections (corrections, or means and standard
/// deviations) padded to 8 bytes, then whatever `codes` writes.
fn write_file(
    path: &Path,
    fields: [u64; 6],
    first: &[&[f32]],
    codes: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<WrittenFile> {
    let head = header::encode(MAGIC, VERSION, fields);
    let first_len: usize = first.iter().map(|s| s.len() * 4).sum();
    let padding = vec![0u8; pad8(first_len) - first_len];
    Ok(atomic_write_with(path, |w: &mut dyn Write| {
        w.write_all(&head)?;
        for section in first {
            write_f32s(w, section)?;
        }
        w.write_all(&padding)?;
        codes(w)
    })?)
}

/// Writes `codes` to `path` atomically.
pub fn write_codes(path: &Path, codes: &Codes) -> Result<WrittenFile> {
    match codes {
        Codes::Scalar(s) => write_file(
            path,
            scalar_fields(s.len(), s.dim, s.alpha, s.offset),
            &[&s.corrections],
            |w| w.write_all(&s.codes),
        ),
        Codes::Binary(b) => write_file(
            path,
            binary_fields(b.encoding, b.len(), b.dim, b.query_bits),
            &[&b.means, &b.stddevs],
            |w| write_u64s(w, &b.words),
        ),
    }
}

/// Encodes every row of `slab` as `config` says and writes the codes to `path`: the bytes of
/// [`write_codes`] of [`super::build_codes`], encoded a row at a time straight into the file, so a seal
/// never holds all of a segment's codes in memory besides the copy the opened segment reads.
pub fn write_codes_of(
    path: &Path,
    config: &QuantizationConfig,
    slab: VectorSlab<'_>,
) -> Result<WrittenFile> {
    let (rows, dim) = (slab.len(), slab.dim);
    match config {
        QuantizationConfig::Scalar(q) => {
            let (alpha, offset) = scalar::bounds(slab, q.quantile());
            // The corrections come first in the file, so rows are encoded twice: once for them,
            // once for the codes.
            let mut out = vec![0u8; dim];
            let corrections: Vec<f32> = (0..rows as u32)
                .map(|r| scalar::encode(alpha, offset, slab.row(r), &mut out))
                .collect();
            let fields = scalar_fields(rows, dim, alpha, offset);
            write_file(path, fields, &[&corrections], |w| {
                for r in 0..rows as u32 {
                    scalar::encode(alpha, offset, slab.row(r), &mut out);
                    w.write_all(&out)?;
                }
                Ok(())
            })
        }
        QuantizationConfig::Binary(b) => {
            let encoding = b.encoding();
            let (means, mut stddevs) = binary::stats(slab);
            if encoding == BinaryEncoding::OneBit {
                stddevs.clear();
            }
            let mut out = vec![0u64; binary::words_per_row(dim, encoding)];
            let fields = binary_fields(encoding, rows, dim, b.query_bits());
            write_file(path, fields, &[&means, &stddevs], |w| {
                for r in 0..rows as u32 {
                    binary::encode(encoding, &means, &stddevs, slab.row(r), &mut out);
                    write_u64s(w, &out)?;
                }
                Ok(())
            })
        }
    }
}

/// What kind of codes a file holds, with the numbers to use them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Scalar {
        alpha: f32,
        offset: f32,
    },
    Binary {
        encoding: BinaryEncoding,
        /// Bits per code bit of an encoded query: 1, 4 or 8.
        query_bits: u8,
    },
}

/// A codes file, mapped or read into memory.
pub struct CodesFile {
    map: Mapped,
    kind: Kind,
    rows: usize,
    dim: usize,
    /// Byte offset of the codes (after the corrections or thresholds).
    codes_at: usize,
}

impl std::fmt::Debug for CodesFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodesFile")
            .field("path", &self.map.path())
            .field("kind", &self.kind)
            .field("rows", &self.rows)
            .field("dim", &self.dim)
            .finish()
    }
}

impl CodesFile {
    /// Opens a codes file, checking its header and that its sections fill it exactly.
    pub fn open_as(path: &Path, residency: Residency) -> Result<Self> {
        // Codes files are written once through `atomic_write_with` and never modified afterwards
        // (`map_file`'s contract).
        let map = Mapped::open_as(path, residency)?;
        map.advise_random();
        let (version, f) = header::decode_versions(path, map.bytes(), MAGIC, &READS, VERSION)?;
        let (rows, dim) = (f[1] as usize, f[2] as usize);
        if dim == 0 {
            return Err(map.corrupt("codes file with dimension 0").into());
        }
        let (kind, first, body) = match f[0] {
            KIND_SCALAR_INT8 => {
                let alpha = f32::from_bits(f[3] as u32);
                let offset = f32::from_bits(f[4] as u32);
                if !(alpha > 0.0 && alpha.is_finite() && offset.is_finite()) {
                    return Err(map
                        .corrupt(format!("scale {alpha} / offset {offset}"))
                        .into());
                }
                (Kind::Scalar { alpha, offset }, rows, rows.checked_mul(dim))
            }
            KIND_BINARY_ONE_BIT | KIND_BINARY_TWO_BITS | KIND_BINARY_ONE_AND_HALF_BITS => {
                let encoding = match f[0] {
                    KIND_BINARY_ONE_BIT => BinaryEncoding::OneBit,
                    KIND_BINARY_TWO_BITS => BinaryEncoding::TwoBits,
                    _ => BinaryEncoding::OneAndHalfBits,
                };
                if version == 1 && encoding != BinaryEncoding::OneBit {
                    return Err(map
                        .corrupt(format!("codes kind {} in a version 1 file", f[0]))
                        .into());
                }
                let query_bits = match f[3] {
                    0 | 1 => 1,
                    4 => 4,
                    8 => 8,
                    other => {
                        return Err(map
                            .corrupt(format!("query encoding of {other} bits"))
                            .into())
                    }
                };
                (
                    Kind::Binary {
                        encoding,
                        query_bits,
                    },
                    binary_stats_len(dim, encoding),
                    rows.checked_mul(binary::words_per_row(dim, encoding) * 8),
                )
            }
            other => return Err(map.corrupt(format!("unknown codes kind {other}")).into()),
        };
        let codes_at = HEADER_LEN + pad8(first * 4);
        let want = body.and_then(|b| b.checked_add(codes_at));
        if want != Some(map.len()) {
            return Err(map
                .corrupt(format!(
                    "codes file of {rows} rows × {dim} is {} bytes long",
                    map.len()
                ))
                .into());
        }
        map.section::<f32>(HEADER_LEN, first)?;
        if let Kind::Binary { encoding, .. } = kind {
            map.section::<u64>(codes_at, rows * binary::words_per_row(dim, encoding))?;
        }
        Ok(CodesFile {
            map,
            kind,
            rows,
            dim,
            codes_at,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Components per row the codes stand for.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes held (what the codes cost in memory when kept there).
    pub fn bytes(&self) -> usize {
        self.map.len()
    }

    /// The corrections (scalar) or the means then standard deviations (binary).
    fn first(&self) -> &[f32] {
        let n = match self.kind {
            Kind::Scalar { .. } => self.rows,
            Kind::Binary { encoding, .. } => binary_stats_len(self.dim, encoding),
        };
        // `open_as` checked this section.
        cast(&self.map.bytes()[HEADER_LEN..HEADER_LEN + n * 4]).unwrap_or(&[])
    }

    /// The codes of row `r` as bytes (binary rows are their words' little-endian bytes).
    #[inline]
    fn row_bytes(&self, r: u32) -> &[u8] {
        let width = self.row_width();
        let at = self.codes_at + r as usize * width;
        self.map.bytes().get(at..at + width).unwrap_or(&[])
    }

    fn row_width(&self) -> usize {
        match self.kind {
            Kind::Scalar { .. } => self.dim,
            Kind::Binary { encoding, .. } => binary::words_per_row(self.dim, encoding) * 8,
        }
    }

    /// The query an asymmetric (`scalar4bits` / `scalar8bits`) binary scorer encodes. The codes
    /// stand for the rows' offsets from the segment's means. A dot product ranks rows by
    /// `q · (x − μ)` as by `q · x` (`q · μ` is the same for every row), but a Euclidean distance
    /// `‖(q − μ) − (x − μ)‖²` needs the centred query: uncentred, rows of all-positive data (pixels)
    /// were ranked by their dot product, recall@10 0.003 on Fashion-MNIST (0.19–0.46 centred).
    fn asymmetric_query(&self, distance: Distance, query: &[f32]) -> Vec<f32> {
        match distance {
            Distance::Euclid => {
                let means = &self.first()[..self.dim];
                query.iter().zip(means).map(|(q, m)| q - m).collect()
            }
            Distance::Cosine | Distance::Dot => query.to_vec(),
        }
    }

    /// A scorer of every row against `query` (as stored: normalised already for Cosine).
    pub fn scorer<'a>(&'a self, distance: Distance, query: &[f32]) -> CodesScorer<'a> {
        match self.kind {
            Kind::Scalar { alpha, offset } => {
                let mut codes = vec![0u8; self.dim];
                let correction = scalar::encode(alpha, offset, query, &mut codes);
                CodesScorer {
                    file: self,
                    corrections: self.first(),
                    distance,
                    query: QueryCodes::Scalar {
                        codes,
                        correction,
                        alpha2: alpha * alpha,
                    },
                }
            }
            Kind::Binary {
                encoding,
                query_bits,
            } => {
                let query = match query_bits {
                    4 | 8 => QueryCodes::BinaryScalar {
                        planes: binary::encode_scalar_query(
                            encoding,
                            &self.asymmetric_query(distance, query),
                            query_bits,
                        ),
                        bits: query_bits,
                        levels: ((1u32 << query_bits) - 1) as f32,
                    },
                    _ => {
                        let (means, stddevs) = self.first().split_at(self.dim);
                        let mut words = vec![0u64; binary::words_per_row(self.dim, encoding)];
                        binary::encode(encoding, means, stddevs, query, &mut words);
                        QueryCodes::Binary { words }
                    }
                };
                CodesScorer {
                    file: self,
                    corrections: &[],
                    distance,
                    query,
                }
            }
        }
    }
}

enum QueryCodes {
    Scalar {
        codes: Vec<u8>,
        correction: f32,
        alpha2: f32,
    },
    Binary {
        words: Vec<u64>,
    },
    /// A query of `bits` bit planes against binary rows (asymmetric scoring).
    BinaryScalar {
        planes: Vec<u64>,
        bits: u8,
        /// `2^bits − 1`: the weighted count of differing bits divided by it is in code bits.
        levels: f32,
    },
}

/// One query against the rows of a codes file: the lower-is-better keys a graph walk orders by, and
/// the estimated scores of those keys.
pub struct CodesScorer<'a> {
    file: &'a CodesFile,
    /// The per-row corrections of scalar codes (empty for binary ones).
    corrections: &'a [f32],
    distance: Distance,
    query: QueryCodes,
}

impl CodesScorer<'_> {
    /// The estimate of the Qdrant score that `key` stands for: the dot product (Cosine, Dot) or the
    /// distance (Euclid) of the decoded rows for scalar codes; for binary codes the fraction of agreeing
    /// code bits scaled to `[-1, 1]` (Cosine, Dot) or the number of differing bits (Euclid), both
    /// weighted by the query's levels when the query keeps 4 or 8 bits.
    pub fn key_to_score(&self, key: f32) -> f32 {
        match (&self.query, self.distance) {
            (QueryCodes::Scalar { correction, .. }, Distance::Cosine | Distance::Dot) => {
                correction - key
            }
            (QueryCodes::Scalar { .. }, Distance::Euclid) => key.sqrt(),
            (
                QueryCodes::Binary { .. } | QueryCodes::BinaryScalar { .. },
                Distance::Cosine | Distance::Dot,
            ) => 1.0 - 2.0 * key / self.code_bits() as f32,
            (QueryCodes::Binary { .. } | QueryCodes::BinaryScalar { .. }, Distance::Euclid) => key,
        }
    }
}

impl CodesScorer<'_> {
    fn code_bits(&self) -> usize {
        match self.file.kind {
            Kind::Scalar { .. } => self.file.dim,
            Kind::Binary { encoding, .. } => binary::code_bits(self.file.dim, encoding),
        }
    }
}

impl RowScorer for CodesScorer<'_> {
    fn len(&self) -> usize {
        self.file.rows
    }

    #[inline]
    fn key(&self, row: u32) -> f32 {
        let bytes = self.file.row_bytes(row);
        match &self.query {
            QueryCodes::Scalar { codes, alpha2, .. } => match self.distance {
                Distance::Cosine | Distance::Dot => {
                    let c = self.corrections.get(row as usize).copied().unwrap_or(0.0);
                    -(alpha2 * u8_dot(codes, bytes) as f32 + c)
                }
                Distance::Euclid => alpha2 * u8_l2(codes, bytes) as f32,
            },
            QueryCodes::Binary { words } => {
                // `open_as` checked the words are an aligned section, so every row is too.
                let row: &[u64] = cast(bytes).unwrap_or(&[]);
                hamming(words, row) as f32
            }
            QueryCodes::BinaryScalar {
                planes,
                bits,
                levels,
            } => {
                let row: &[u64] = cast(bytes).unwrap_or(&[]);
                let weighted = match bits {
                    4 => weighted_hamming::<4>(row, planes),
                    _ => weighted_hamming::<8>(row, planes),
                };
                weighted as f32 / levels
            }
        }
    }

    // The first two lines of every fresh neighbour up front, the rest of a row while the one before it
    // is scored, as for the rows: every line of every row at once (784 bytes of int8 codes are 13
    // lines, a dozen rows an expansion) made the Fashion-MNIST walk 12–15 % slower.
    #[inline]
    fn prefetch(&self, row: u32) {
        crate::index::prefetch_head(self.file.row_bytes(row));
    }

    #[inline]
    fn prefetch_rest(&self, row: u32) {
        crate::index::prefetch_rest(self.file.row_bytes(row));
    }
}
