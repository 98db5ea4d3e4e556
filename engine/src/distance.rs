//! Distance kernels. The one place vectors are normalised and scored.
//!
//! The portable kernels keep 16 independent accumulators so the compiler can keep them in vector
//! registers without reassociating float additions (which it may not do on its own). On x86_64 an
//! AVX2+FMA version is chosen at run time. Both sum in a fixed order, so a given machine always returns
//! the same bits for the same inputs; machines with and without FMA may differ in the last bits.

use crate::config::Distance;

/// Accumulator lanes of the portable kernels.
const LANES: usize = 16;

/// Dot product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if x86::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
            return unsafe { x86::dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

/// Squared Euclidean distance.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if x86::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
            return unsafe { x86::l2_squared_avx2(a, b) };
        }
    }
    l2_squared_portable(a, b)
}

/// Scales `v` to unit length in place. Returns false (and leaves `v` unchanged) for a zero vector, or for
/// one whose norm is not finite.
pub fn normalize(v: &mut [f32]) -> bool {
    // Accumulate in f64: the norm decides every later cosine, and long vectors of large values would
    // otherwise lose precision or overflow.
    let sum: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    let norm = sum.sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
    true
}

/// The score Qdrant reports: similarity for Cosine (inputs already unit length) and Dot, distance for Euclid.
#[inline]
pub fn score(distance: Distance, a: &[f32], b: &[f32]) -> f32 {
    match distance {
        Distance::Cosine | Distance::Dot => dot(a, b),
        Distance::Euclid => l2_squared(a, b).sqrt(),
    }
}

/// True when score `a` ranks before score `b` under this distance.
pub fn is_better(distance: Distance, a: f32, b: f32) -> bool {
    if distance.higher_is_better() {
        a > b
    } else {
        a < b
    }
}

/// MaxSim: for each query row, the best dot product against any document row, summed.
/// Rows are `dim`-strided in both slices. An empty query or document scores 0.
pub fn max_sim(query: &[f32], doc: &[f32], dim: usize) -> f32 {
    if dim == 0 || query.len() < dim || doc.len() < dim {
        return 0.0;
    }
    query
        .chunks_exact(dim)
        .map(|q| {
            doc.chunks_exact(dim)
                .map(|d| dot(q, d))
                .fold(f32::NEG_INFINITY, f32::max)
        })
        .sum()
}

/// Lower-is-better key used inside the indexes: `-dot` for similarities, squared L2 for Euclid (its
/// square root is taken only for reported scores).
#[inline]
pub(crate) fn order_key(distance: Distance, a: &[f32], b: &[f32]) -> f32 {
    match distance {
        Distance::Cosine | Distance::Dot => -dot(a, b),
        Distance::Euclid => l2_squared(a, b),
    }
}

/// Turns an [`order_key`] back into the score Qdrant reports.
#[inline]
pub(crate) fn key_to_score(distance: Distance, key: f32) -> f32 {
    match distance {
        Distance::Cosine | Distance::Dot => -key,
        Distance::Euclid => key.sqrt(),
    }
}

/// Portable dot product with 16 independent accumulators.
// Indexing fixed-size lanes is what lets the compiler keep `acc` in vector registers.
#[allow(clippy::needless_range_loop)]
#[inline]
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    reduce(&acc) + tail
}

/// Portable squared L2 with 16 independent accumulators.
#[allow(clippy::needless_range_loop)]
#[inline]
pub fn l2_squared_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        tail += d * d;
    }
    reduce(&acc) + tail
}

/// Pairwise sum of the lanes, in a fixed order.
#[inline]
fn reduce(acc: &[f32; LANES]) -> f32 {
    let mut v = *acc;
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            v[i] += v[i + width];
        }
        width /= 2;
    }
    v[0]
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[inline]
    pub(super) fn has_avx2_fma() -> bool {
        // The std macro caches the CPUID result in an atomic; this is a load and a test.
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// Horizontal sum of 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0b01));
        _mm_cvtss_f32(s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): `i + 32 <= n` / `i + 8 <= n` keep every unaligned load inside both slices.
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = _mm256_loadu_ps(pa.add(i));
            let y = _mm256_loadu_ps(pb.add(i));
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut total = hsum(sum);
        while i < n {
            total += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        total
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn l2_squared_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (all loads): `i + 32 <= n` / `i + 8 <= n` keep every unaligned load inside both slices.
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                let d = _mm256_sub_ps(x, y);
                *acc = _mm256_fmadd_ps(d, d, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = _mm256_loadu_ps(pa.add(i));
            let y = _mm256_loadu_ps(pb.add(i));
            let d = _mm256_sub_ps(x, y);
            acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut total = hsum(sum);
        while i < n {
            let d = *pa.add(i) - *pb.add(i);
            total += d * d;
            i += 1;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn dot_ref(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    fn l2_ref(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum()
    }

    fn random(rng: &mut rand::rngs::StdRng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn close(got: f32, want: f64, n: usize) -> bool {
        // Rounding error of an n-term f32 sum of products of values in [-1, 1].
        (f64::from(got) - want).abs() <= 1e-6 * (n as f64 + 1.0) + 1e-6 * want.abs()
    }

    #[test]
    fn kernels_match_reference_for_awkward_lengths() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in [
            0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 100, 127, 768, 1023,
        ] {
            let a = random(&mut rng, n);
            let b = random(&mut rng, n);
            let (d, l) = (dot_ref(&a, &b), l2_ref(&a, &b));
            assert!(close(dot(&a, &b), d, n), "dot n={n}");
            assert!(close(dot_portable(&a, &b), d, n), "dot_portable n={n}");
            assert!(close(l2_squared(&a, &b), l, n), "l2 n={n}");
            assert!(
                close(l2_squared_portable(&a, &b), l, n),
                "l2_portable n={n}"
            );
        }
    }

    #[test]
    fn kernels_are_exact_on_small_integers() {
        // Small integers are exact in f32, so every summation order gives the same answer.
        let a: Vec<f32> = (0..37).map(|i| (i % 5) as f32 - 2.0).collect();
        let b: Vec<f32> = (0..37).map(|i| (i % 3) as f32).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), want);
        assert_eq!(dot_portable(&a, &b), want);
        let want_l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert_eq!(l2_squared(&a, &b), want_l2);
        assert_eq!(dot(&[3.0], &[-2.0]), -6.0);
        assert_eq!(l2_squared(&[3.0], &[-2.0]), 25.0);
    }

    #[test]
    fn normalize_gives_unit_length_and_rejects_zero() {
        let mut v = vec![3.0, 4.0];
        assert!(normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        let mut z = vec![0.0; 5];
        assert!(!normalize(&mut z));
        assert_eq!(z, vec![0.0; 5]);
        let mut big = vec![1e30f32; 100];
        assert!(normalize(&mut big));
        assert!((dot(&big, &big) - 1.0).abs() < 1e-5);
        let mut inf = vec![f32::INFINITY, 1.0];
        assert!(!normalize(&mut inf));
    }

    #[test]
    fn scores_follow_qdrant_conventions() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        assert_eq!(score(Distance::Cosine, &a, &a), 1.0);
        assert_eq!(score(Distance::Dot, &[2.0, 0.0], &a), 2.0);
        assert!((score(Distance::Euclid, &a, &b) - 2f32.sqrt()).abs() < 1e-7);
        assert!(is_better(Distance::Cosine, 0.9, 0.1));
        assert!(is_better(Distance::Euclid, 0.1, 0.9));
        for d in [Distance::Cosine, Distance::Dot, Distance::Euclid] {
            let k = order_key(d, &a, &b);
            assert_eq!(key_to_score(d, k), score(d, &a, &b));
        }
    }

    #[test]
    fn max_sim_sums_best_row_per_query_row() {
        let q = [1.0, 0.0, 0.0, 1.0];
        let d = [0.5, 0.5, 1.0, 0.0, 0.0, 0.25];
        // Row 1 of q: best is 1.0 (doc row 1); row 2: best is 0.5 (doc row 0).
        assert_eq!(max_sim(&q, &d, 2), 1.5);
        assert_eq!(max_sim(&q, &[], 2), 0.0);
        assert_eq!(max_sim(&[], &d, 2), 0.0);
        assert_eq!(max_sim(&[2.0], &[-1.0, -3.0], 1), -2.0);
    }
}
