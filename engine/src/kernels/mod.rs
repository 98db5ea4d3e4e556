//! The vector kernels every part of the engine scores with: dot product, squared L2, one vector
//! against many rows, nearest row (k-means assignment), MaxSim, and normalisation; [`codes`] holds the
//! integer kernels over quantized codes.
//!
//! On x86_64 an AVX2 + FMA version is chosen at run time, by one CPU-feature check ([`avx2_fma`]);
//! elsewhere, and on CPUs without them, portable loops with independent accumulators, which the
//! compiler vectorises. Each sums in a fixed order, so a given machine always returns the same bits for
//! the same inputs; machines with and without FMA may differ in the last bits.

pub mod codes;
mod portable;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Whether the AVX2 + FMA kernels may run: the one CPU-feature check of the engine.
#[cfg(target_arch = "x86_64")]
#[inline]
fn avx2_fma() -> bool {
    // std caches the CPUID result in an atomic; this is a load and a test after the first call.
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Dot product (over the shorter of the two).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { x86::dot(a, b) };
    }
    portable::dot(a, b)
}

/// Squared Euclidean distance.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { x86::l2_squared(a, b) };
    }
    portable::l2_squared(a, b)
}

/// [`dot`] without SIMD intrinsics (for comparisons in benchmarks).
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    portable::dot(a, b)
}

/// `out[r] = rows[r] · x` for every `dim`-strided row of `rows`.
pub fn dot_rows(rows: &[f32], x: &[f32], dim: usize, out: &mut [f32]) {
    debug_assert_eq!(x.len(), dim);
    debug_assert_eq!(rows.len(), out.len() * dim);
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { x86::dot_rows(rows, x, dim, out) };
    }
    portable::dot_rows(rows, x, dim, out)
}

/// For each `dim`-strided row `x` of `xs`, merges the row of `rows` with the largest dot product into
/// `best[j]` / `ids[j]` (`j` = the row of `xs`): a row replaces the current best only when strictly
/// better, so on ties the first row wins; row numbers are offset by `base`. This is k-means assignment.
pub fn nearest_rows(
    rows: &[f32],
    xs: &[f32],
    dim: usize,
    base: u32,
    best: &mut [f32],
    ids: &mut [u32],
) {
    debug_assert_eq!(xs.len(), best.len() * dim);
    debug_assert_eq!(best.len(), ids.len());
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { x86::nearest_rows(rows, xs, dim, base, best, ids) };
    }
    portable::nearest_rows(rows, xs, dim, base, best, ids)
}

/// Scales `v` to unit length in place. Returns false (and leaves `v` unchanged) for a zero vector, or
/// for one whose norm is not finite.
#[inline]
pub fn normalize(v: &mut [f32]) -> bool {
    let squares = dot(v, v);
    if squares.is_normal() {
        // The common case, in f32 (token decompression runs this for every token it scores); the
        // square root of a normal f32 and its inverse are normal too.
        let scale = 1.0 / squares.sqrt();
        v.iter_mut().for_each(|x| *x *= scale);
        return true;
    }
    // The f32 sum overflowed or underflowed (very large or very small components), or is zero or not
    // finite: sum in f64.
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    let inverse = 1.0 / norm;
    v.iter_mut()
        .for_each(|x| *x = (f64::from(*x) * inverse) as f32);
    true
}

/// MaxSim (ColBERT's late interaction): for every `dim`-strided query row the best dot product against
/// any document row, summed. An empty query or document scores 0.
pub fn max_sim(query: &[f32], doc: &[f32], dim: usize) -> f32 {
    max_sim_with(query, doc, dim, &mut Vec::new())
}

/// [`max_sim`] with caller-owned scratch space (resized to the number of query rows), for loops that
/// score many documents.
pub fn max_sim_with(query: &[f32], doc: &[f32], dim: usize, best: &mut Vec<f32>) -> f32 {
    if dim == 0 || doc.len() < dim || query.len() < dim {
        return 0.0;
    }
    let nq = query.len() / dim;
    best.clear();
    best.resize(nq, f32::NEG_INFINITY);
    max_dots(doc, &query[..nq * dim], dim, best);
    best.iter().sum()
}

/// `src` widened to f32 into `out` (resized to match; only growth is zeroed first). F16C converts
/// eight a time where the CPU has it: `half`'s slice conversion, one checked call per eight, was a
/// quarter of an appendable segment's MaxSim scan in the server.
pub fn widen_f16(src: &[half::f16], out: &mut Vec<f32>) {
    out.truncate(src.len());
    out.resize(src.len(), 0.0);
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() && std::arch::is_x86_feature_detected!("f16c") {
        // SAFETY: the CPU supports AVX2, FMA and F16C (checked just above).
        return unsafe { x86::widen_f16(src, out) };
    }
    for (o, x) in out.iter_mut().zip(src) {
        *o = x.to_f32();
    }
}

/// For each `dim`-strided row `x` of `xs`, raises `best[j]` (`j` = the row of `xs`) to the largest dot
/// product of `x` with any row of `rows`: MaxSim before the sum.
pub fn max_dots(rows: &[f32], xs: &[f32], dim: usize, best: &mut [f32]) {
    debug_assert_eq!(xs.len(), best.len() * dim);
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { x86::max_dots(rows, xs, dim, best) };
    }
    portable::max_dots(rows, xs, dim, best)
}
