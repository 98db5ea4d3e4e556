//! Binary quantization in Qdrant's three encodings, compared by counting differing bits (Hamming
//! distance, through the `popcnt` kernel).
//!
//! - `one_bit`: bit `d` of a row is set when its component `d` is above the segment's mean of that
//!   component.
//! - `two_bits`: component `d` is `00` at or below `mean − 2/3·stddev`, `10` between, `11` at or above
//!   `mean + 2/3·stddev` (first bits in the row's first plane, second bits in its second plane), so
//!   the differing bits of two components are 0, 1 or 2, an L1 distance on three levels.
//! - `one_and_half_bits`: the first plane of `two_bits`; second bits are ORed by pairs of
//!   components (`d` and `d + 1` for even `d`), so the second plane is half as long.
//!
//! Each plane starts on a `u64` word (Qdrant packs the planes back to back; the count of differing
//! bits is the same, since padding bits are zero on both sides).
//!
//! Qdrant thresholds `one_bit` at zero (and `two_bits` at the mean, as here). At zero a centred
//! embedding gets the same bits; data that is all positive (pixels, counts, some embedding models'
//! outputs) gets every bit set and no ranking at all, which thresholding at the mean avoids (the
//! `one_bit_mean_threshold_…` test measures both). The statistics travel in the codes file, so a
//! query is encoded exactly as the rows were.
//!
//! A query can instead keep 4 or 8 bits per code bit (`query_encoding` `scalar4bits` /
//! `scalar8bits`, Qdrant's asymmetric scoring): the query's value for each code bit (component `d`
//! for both planes of `two_bits`; the larger of a pair for the shared plane of `one_and_half_bits`)
//! is quantized to `0..=L` (`L = 2^bits − 1`) over `[−max|q|, max|q|]`, stored as `bits` bit planes,
//! and a row's key is `Σ_b 2^b · popcount(row XOR plane_b) / L`: per code bit `q̂` where the row's bit
//! is 0 and `1 − q̂` where it is 1 (`q̂` the query value scaled to `[0, 1]`), so the key falls as
//! `q · sign(row bit)` grows. The query is not centred: `q · (x − mean)` ranks rows as `q · x` does.

use crate::index::VectorSlab;
use crate::quantization::BinaryEncoding;

/// Half-width, in standard deviations, of the middle level of `two_bits`.
pub const SIGMAS: f32 = 2.0 / 3.0;

/// The codes of one segment's rows.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryCodes {
    /// Components per row.
    pub dim: usize,
    /// How each component is encoded.
    pub encoding: BinaryEncoding,
    /// Bits per code bit of an encoded query: 1 (encoded as the rows are), 4 or 8.
    pub query_bits: u8,
    /// Per-component mean (the `one_bit` threshold).
    pub means: Vec<f32>,
    /// Per-component sample standard deviation (empty for `one_bit`).
    pub stddevs: Vec<f32>,
    /// `rows · words_per_row(dim, encoding)` words: the first plane's bit `d % 64` of word `d / 64`
    /// for component `d`, then the second plane's words.
    pub words: Vec<u64>,
}

/// `u64` words of a row's first plane and of its second plane.
pub fn plane_words(dim: usize, encoding: BinaryEncoding) -> (usize, usize) {
    let first = dim.div_ceil(64);
    let second = match encoding {
        BinaryEncoding::OneBit => 0,
        BinaryEncoding::TwoBits => first,
        BinaryEncoding::OneAndHalfBits => dim.div_ceil(2).div_ceil(64),
    };
    (first, second)
}

/// `u64` words per row.
pub fn words_per_row(dim: usize, encoding: BinaryEncoding) -> usize {
    let (first, second) = plane_words(dim, encoding);
    first + second
}

/// Code bits per row (the most bits two rows can differ in).
pub fn code_bits(dim: usize, encoding: BinaryEncoding) -> usize {
    match encoding {
        BinaryEncoding::OneBit => dim,
        BinaryEncoding::TwoBits => 2 * dim,
        BinaryEncoding::OneAndHalfBits => dim + dim.div_ceil(2),
    }
}

/// The two bits of a value with the component's `mean` and `stddev`: `(false, false)` at or below
/// `−SIGMAS` standard deviations, `(true, false)` strictly between, `(true, true)` at or above
/// `SIGMAS`. Without spread the first bit says whether the value is above the mean.
pub fn two_bits(x: f32, mean: f32, stddev: f32) -> (bool, bool) {
    if stddev.is_nan() || stddev < f32::EPSILON {
        return (x > mean, false);
    }
    let z = (x - mean) / stddev;
    if z <= -SIGMAS {
        (false, false)
    } else if z < SIGMAS {
        (true, false)
    } else {
        (true, true)
    }
}

/// Encodes `row` into `out` (cleared first; `words_per_row` words). `stddevs` is unused by
/// `one_bit`.
pub fn encode(
    encoding: BinaryEncoding,
    means: &[f32],
    stddevs: &[f32],
    row: &[f32],
    out: &mut [u64],
) {
    out.iter_mut().for_each(|w| *w = 0);
    let (first, _) = plane_words(row.len(), encoding);
    let (plane1, plane2) = out.split_at_mut(first);
    let set = |plane: &mut [u64], bit: usize| plane[bit / 64] |= 1 << (bit % 64);
    match encoding {
        BinaryEncoding::OneBit => {
            for (d, (&x, &t)) in row.iter().zip(means).enumerate() {
                if x > t {
                    set(plane1, d);
                }
            }
        }
        BinaryEncoding::TwoBits | BinaryEncoding::OneAndHalfBits => {
            let shared = encoding == BinaryEncoding::OneAndHalfBits;
            for (d, ((&x, &m), &s)) in row.iter().zip(means).zip(stddevs).enumerate() {
                let (b1, b2) = two_bits(x, m, s);
                if b1 {
                    set(plane1, d);
                }
                if b2 {
                    set(plane2, if shared { d / 2 } else { d });
                }
            }
        }
    }
}

/// The query's value for every code bit, in the rows' bit order (plane by plane, each plane padded
/// to whole words with `None`).
fn extended_query(encoding: BinaryEncoding, query: &[f32]) -> Vec<Option<f32>> {
    let dim = query.len();
    let (first, second) = plane_words(dim, encoding);
    let mut out = vec![None; (first + second) * 64];
    for (d, &x) in query.iter().enumerate() {
        out[d] = Some(x);
    }
    let plane2 = &mut out[first * 64..];
    match encoding {
        BinaryEncoding::OneBit => {}
        BinaryEncoding::TwoBits => {
            for (d, &x) in query.iter().enumerate() {
                plane2[d] = Some(x);
            }
        }
        BinaryEncoding::OneAndHalfBits => {
            for (j, pair) in query.chunks(2).enumerate() {
                plane2[j] = Some(pair.iter().copied().fold(f32::NEG_INFINITY, f32::max));
            }
        }
    }
    out
}

/// A query quantized to `bits` (4 or 8) bits per code bit: for each word of a row, `bits` words,
/// the `b`-th holding bit `b` of each code bit's level (see the module docs).
pub fn encode_scalar_query(encoding: BinaryEncoding, query: &[f32], bits: u8) -> Vec<u64> {
    let bits = usize::from(bits);
    let levels = (1u32 << bits) - 1;
    let extended = extended_query(encoding, query);
    let max = query
        .iter()
        .map(|x| x.abs())
        .filter(|x| x.is_finite())
        .fold(0f32, f32::max);
    let delta = 2.0 * max / levels as f32;
    let mut planes = vec![0u64; extended.len() / 64 * bits];
    for (i, value) in extended.iter().enumerate() {
        let Some(x) = value else { continue };
        let level = if delta > f32::EPSILON {
            ((x + max) / delta).round().clamp(0.0, levels as f32) as u32
        } else {
            0
        };
        let (word, bit) = (i / 64, i % 64);
        for b in 0..bits {
            if (level >> b) & 1 == 1 {
                planes[word * bits + b] |= 1 << bit;
            }
        }
    }
    planes
}

/// Per-component mean and sample standard deviation of the rows of `slab` (0 without rows; a
/// standard deviation of 0 with fewer than two).
pub fn stats(slab: VectorSlab<'_>) -> (Vec<f32>, Vec<f32>) {
    let rows = slab.len();
    let mut sums = vec![0f64; slab.dim];
    for r in 0..rows as u32 {
        for (s, &x) in sums.iter_mut().zip(slab.row(r)) {
            *s += f64::from(x);
        }
    }
    let means: Vec<f64> = sums.iter().map(|&s| s / rows.max(1) as f64).collect();
    let mut squares = vec![0f64; slab.dim];
    for r in 0..rows as u32 {
        for ((s, &x), &m) in squares.iter_mut().zip(slab.row(r)).zip(&means) {
            let d = f64::from(x) - m;
            *s += d * d;
        }
    }
    let stddevs = squares
        .iter()
        .map(|&s| {
            if rows > 1 {
                (s / (rows - 1) as f64).sqrt() as f32
            } else {
                0.0
            }
        })
        .collect();
    (means.iter().map(|&m| m as f32).collect(), stddevs)
}

impl BinaryCodes {
    /// The segment's statistics, then every row's bits.
    pub fn build(slab: VectorSlab<'_>, encoding: BinaryEncoding, query_bits: u8) -> Self {
        let (means, mut stddevs) = stats(slab);
        if encoding == BinaryEncoding::OneBit {
            stddevs.clear();
        }
        let w = words_per_row(slab.dim, encoding);
        let mut words = vec![0u64; slab.len() * w];
        if w > 0 {
            for (r, out) in words.chunks_exact_mut(w).enumerate() {
                encode(encoding, &means, &stddevs, slab.row(r as u32), out);
            }
        }
        BinaryCodes {
            dim: slab.dim,
            encoding,
            query_bits,
            means,
            stddevs,
            words,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.words.len() / words_per_row(self.dim, self.encoding).max(1)
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}
