//! Binary (one bit per component) quantization: bit `d` of a row is set when its component `d` is
//! above the segment's mean of that component, and rows are compared by the number of differing bits
//! (Hamming distance, through the `popcnt` kernel).
//!
//! Qdrant thresholds at zero, which suits centred embeddings; thresholding at the per-component mean
//! gives the same bits for those and still separates rows of data that is all positive (pixels, for
//! instance), where a zero threshold sets every bit. The means travel in the codes file, so a query
//! is encoded exactly as the rows were.

use crate::index::VectorSlab;

/// The codes of one segment's rows.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryCodes {
    /// Components per row.
    pub dim: usize,
    /// Per-component threshold (the segment's mean).
    pub thresholds: Vec<f32>,
    /// `rows · words_per_row(dim)` words, bit `d % 64` of word `d / 64` for component `d`.
    pub words: Vec<u64>,
}

/// `u64` words per row of `dim` bits.
pub fn words_per_row(dim: usize) -> usize {
    dim.div_ceil(64)
}

/// Sets the bits of `row` above `thresholds` in `out` (cleared first).
pub fn encode(thresholds: &[f32], row: &[f32], out: &mut [u64]) {
    out.iter_mut().for_each(|w| *w = 0);
    for (d, (&x, &t)) in row.iter().zip(thresholds).enumerate() {
        if x > t {
            out[d / 64] |= 1 << (d % 64);
        }
    }
}

impl BinaryCodes {
    /// Means of `slab`'s components, then every row's bits.
    pub fn build(slab: VectorSlab<'_>) -> Self {
        let rows = slab.len();
        let mut sums = vec![0f64; slab.dim];
        for r in 0..rows as u32 {
            for (s, &x) in sums.iter_mut().zip(slab.row(r)) {
                *s += f64::from(x);
            }
        }
        let thresholds: Vec<f32> = sums
            .iter()
            .map(|&s| {
                if rows == 0 {
                    0.0
                } else {
                    (s / rows as f64) as f32
                }
            })
            .collect();
        let w = words_per_row(slab.dim);
        let mut words = vec![0u64; rows * w];
        if w > 0 {
            for (r, out) in words.chunks_exact_mut(w).enumerate() {
                encode(&thresholds, slab.row(r as u32), out);
            }
        }
        BinaryCodes {
            dim: slab.dim,
            thresholds,
            words,
        }
    }
}
