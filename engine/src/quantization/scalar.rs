//! Scalar (int8) quantization, as Qdrant does it: one offset and scale per segment, chosen so that the
//! central `quantile` of all component values maps onto `0..=127` (values outside are clamped); each
//! component becomes `round((x − offset) / alpha)`.
//!
//! With `x ≈ alpha·c + offset`, a dot product of two rows is
//! `alpha²·Σ cq·cv + alpha·offset·(Σ cq + Σ cv) + dim·offset²`: the integer dot product of the codes
//! plus one correction per row (`alpha·offset·Σ c + dim·offset²/2`), stored beside its codes. The
//! squared L2 distance is `alpha²·Σ (cq − cv)²` and needs no correction. Codes stay at most 127 so
//! that the AVX2 kernel's pair sums of products fit in 16 bits.

use crate::index::VectorSlab;

/// Largest code.
pub const MAX_CODE: f32 = 127.0;

/// At most this many component values are sorted to find the quantile bounds.
const SAMPLE_VALUES: usize = 1 << 20;

/// The codes of one segment's rows.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarCodes {
    /// Components per row.
    pub dim: usize,
    /// Value of one code step.
    pub alpha: f32,
    /// Value of code 0.
    pub offset: f32,
    /// Per-row correction of the dot product (see the module docs).
    pub corrections: Vec<f32>,
    /// `rows · dim` codes.
    pub codes: Vec<u8>,
}

/// Offset and scale that map the central `quantile` of the values of `slab` onto `0..=127`.
pub fn bounds(slab: VectorSlab<'_>, quantile: f32) -> (f32, f32) {
    let rows = slab.len();
    if rows == 0 {
        return (1.0, 0.0);
    }
    // Whole rows, evenly spread, so a segment sorted by some payload is still sampled fairly.
    let take = (SAMPLE_VALUES / slab.dim.max(1)).clamp(1, rows);
    let mut values: Vec<f32> = Vec::with_capacity(take * slab.dim);
    for i in 0..take {
        let row = (i as u64 * rows as u64 / take as u64) as u32;
        values.extend(slab.row(row).iter().copied().filter(|x| x.is_finite()));
    }
    if values.is_empty() {
        return (1.0, 0.0);
    }
    let n = values.len();
    let cut = ((n as f64) * f64::from(1.0 - quantile) / 2.0) as usize;
    let cut = cut.min((n - 1) / 2);
    let (_, low, _) = values.select_nth_unstable_by(cut, f32::total_cmp);
    let low = *low;
    let (_, high, _) = values.select_nth_unstable_by(n - 1 - cut, f32::total_cmp);
    let high = *high;
    let alpha = (high - low) / MAX_CODE;
    // Constant data: any positive step encodes it exactly (every code 0).
    let alpha = if alpha > 0.0 && alpha.is_finite() {
        alpha
    } else {
        1.0
    };
    (alpha, low)
}

/// Encodes `row` into `out` and returns its dot-product correction.
pub fn encode(alpha: f32, offset: f32, row: &[f32], out: &mut [u8]) -> f32 {
    let mut sum = 0u32;
    for (c, &x) in out.iter_mut().zip(row) {
        let q = ((x - offset) / alpha).round();
        // NaN (never stored: inputs are validated) would become 0 through `as`.
        *c = q.clamp(0.0, MAX_CODE) as u8;
        sum += u32::from(*c);
    }
    correction(alpha, offset, sum, row.len())
}

/// `alpha·offset·Σ c + dim·offset²/2`.
pub fn correction(alpha: f32, offset: f32, code_sum: u32, dim: usize) -> f32 {
    alpha * offset * code_sum as f32 + dim as f32 * offset * offset / 2.0
}

impl ScalarCodes {
    /// Trains the bounds on `slab` and encodes every row.
    pub fn build(slab: VectorSlab<'_>, quantile: f32) -> Self {
        let (alpha, offset) = bounds(slab, quantile);
        let rows = slab.len();
        let mut codes = vec![0u8; rows * slab.dim];
        let mut corrections = Vec::with_capacity(rows);
        for (r, out) in codes.chunks_exact_mut(slab.dim.max(1)).enumerate() {
            corrections.push(encode(alpha, offset, slab.row(r as u32), out));
        }
        ScalarCodes {
            dim: slab.dim,
            alpha,
            offset,
            corrections,
            codes,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.corrections.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.corrections.is_empty()
    }

    /// The decoded value of every component of row `r` (for tests and checks).
    pub fn decode(&self, r: usize) -> Vec<f32> {
        self.codes[r * self.dim..(r + 1) * self.dim]
            .iter()
            .map(|&c| self.alpha * f32::from(c) + self.offset)
            .collect()
    }
}
