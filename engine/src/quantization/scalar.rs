//! Scalar (int8) quantization, as Qdrant does it: one offset and scale per segment, chosen so that the
//! range of the component values ([`bounds`]) maps onto `0..=127` (values outside are clamped); each
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

/// At most this many component values are sampled (in whole rows) to find trimmed bounds: Qdrant's
/// sample size.
const SAMPLE_VALUES: usize = 100_000;

/// Below this many rows a quantile does not trim (Qdrant's rule: nothing to estimate).
const MIN_ROWS_TO_TRIM: usize = 127;

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

/// Scale and offset that map the values of `slab` onto `0..=127`, as Qdrant chooses them. Without a
/// quantile (or at 1) the range spans every value. With one, and at least 127 rows, a sample of
/// whole rows (`100,000 / dim` of them) is sorted and `rows_sampled × (1 − quantile) / 2` values (at
/// least one) are cut from each end: Qdrant counts the cut in sampled *rows*, not values, so at 384
/// dimensions and 0.99 it trims one value of about 100,000 at each end. (Trimming that share of the
/// values instead clamped so many components that int8 recall@10 at ×1 oversampling fell from
/// 0.971 to 0.943 on all-MiniLM-L6-v2 embeddings; docs/benchmarks.md.)
pub fn bounds(slab: VectorSlab<'_>, quantile: Option<f32>) -> (f32, f32) {
    let rows = slab.len();
    let (low, high) = match quantile.filter(|&q| q < 1.0 && rows >= MIN_ROWS_TO_TRIM) {
        Some(q) => {
            // Whole rows, evenly spread, so a segment sorted by some payload is sampled fairly.
            let take = (SAMPLE_VALUES / slab.dim.max(1)).clamp(1, rows);
            let mut values: Vec<f32> = Vec::with_capacity(take * slab.dim);
            for i in 0..take {
                let row = (i as u64 * rows as u64 / take as u64) as u32;
                values.extend(slab.row(row).iter().copied().filter(|x| x.is_finite()));
            }
            let n = values.len();
            if n < 4 {
                min_max(&slab.data[..rows * slab.dim])
            } else {
                // In f32, as Qdrant computes it, so a quantile gives the same cut.
                let cut = ((take as f32 * (1.0 - q) / 2.0) as usize).clamp(1, (n - 1) / 2);
                let (_, low, _) = values.select_nth_unstable_by(cut, f32::total_cmp);
                let low = *low;
                let (_, high, _) = values.select_nth_unstable_by(n - 1 - cut, f32::total_cmp);
                (low, *high)
            }
        }
        None => min_max(&slab.data[..rows * slab.dim]),
    };
    if !(low.is_finite() && high.is_finite()) {
        return (1.0, 0.0);
    }
    let alpha = (high - low) / MAX_CODE;
    // Constant data: any positive step encodes it exactly (every code 0).
    let alpha = if alpha > 0.0 && alpha.is_finite() {
        alpha
    } else {
        1.0
    };
    (alpha, low)
}

/// The smallest and largest finite value of `values` (infinite when there is none).
fn min_max(values: &[f32]) -> (f32, f32) {
    values
        .iter()
        .filter(|x| x.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
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
    pub fn build(slab: VectorSlab<'_>, quantile: Option<f32>) -> Self {
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
