//! Dot-product kernels of the token store, in the shapes it needs: one vector against many rows (k-means
//! assignment, centroid scores) and MaxSim (every query row against every document row). AVX2 + FMA is
//! picked at runtime on x86_64; elsewhere a portable loop with independent accumulators, which LLVM
//! vectorises in optimised builds.

/// `a · b` over the shorter of the two.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at runtime just above).
        return unsafe { avx2::dot(a, b) };
    }
    portable::dot(a, b)
}

/// `out[r] = rows[r] · x` for every `dim`-strided row of `rows`.
pub(crate) fn dot_rows(rows: &[f32], x: &[f32], dim: usize, out: &mut [f32]) {
    debug_assert_eq!(x.len(), dim);
    debug_assert_eq!(rows.len(), out.len() * dim);
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at runtime just above).
        return unsafe { avx2::dot_rows(rows, x, dim, out) };
    }
    portable::dot_rows(rows, x, dim, out)
}

/// For each `dim`-strided row `x` of `xs`, merges the row of `rows` with the largest dot product into
/// `best[j]` / `ids[j]` (`j` = the row of `xs`): a row replaces the current best only when strictly
/// better, so on ties the first row wins; row numbers are offset by `base`. This is k-means assignment.
pub(crate) fn nearest_rows(
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
        // SAFETY: the CPU supports AVX2 and FMA (checked at runtime just above).
        return unsafe { avx2::nearest_rows(rows, xs, dim, base, best, ids) };
    }
    for ((x, b), id) in xs
        .chunks_exact(dim)
        .zip(best.iter_mut())
        .zip(ids.iter_mut())
    {
        for (r, row) in rows.chunks_exact(dim).enumerate() {
            let s = portable::dot(row, x);
            if s > *b {
                *b = s;
                *id = base + r as u32;
            }
        }
    }
}

/// ColBERT's MaxSim: for every query row the best dot product against any document row, summed. An
/// empty document scores 0. `best` is scratch space (resized to the number of query rows).
pub(crate) fn max_sim(query: &[f32], doc: &[f32], dim: usize, best: &mut Vec<f32>) -> f32 {
    let nq = query.len() / dim;
    if doc.len() < dim || nq == 0 {
        return 0.0;
    }
    best.clear();
    best.resize(nq, f32::NEG_INFINITY);
    let mut scores = [0.0f32; 64];
    // Query rows in blocks of 64 keep the per-row products on the stack; each document row is read once
    // per block.
    for (block, best_block) in query.chunks(64 * dim).zip(best.chunks_mut(64)) {
        let out = &mut scores[..best_block.len()];
        for row in doc.chunks_exact(dim) {
            dot_rows(block, row, dim, out);
            for (b, &s) in best_block.iter_mut().zip(out.iter()) {
                *b = b.max(s);
            }
        }
    }
    best.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn avx2_fma() -> bool {
    // std caches the CPUID result; this is one relaxed load after the first call.
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

mod portable {
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0.0f32; 8];
        let mut ca = a.chunks_exact(8);
        let mut cb = b.chunks_exact(8);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for i in 0..8 {
                acc[i] += x[i] * y[i];
            }
        }
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| x * y)
            .sum();
        acc.iter().sum::<f32>() + tail
    }

    pub(super) fn dot_rows(rows: &[f32], x: &[f32], dim: usize, out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(rows.chunks_exact(dim)) {
            *o = dot(row, x);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Sum of the 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY (loads): every load reads 8 floats at `i..i + 8` or `i + 8..i + 16`, below `n`.
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                acc1,
            );
            i += 16;
        }
        if i + 8 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(acc0, acc1));
        while i < n {
            s += a[i] * b[i];
            i += 1;
        }
        s
    }

    /// Four rows against one vector: `x` is loaded once per 8 lanes for all four.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `rows` holds at least `4 * x.len()` floats.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot4(rows: &[f32], x: &[f32]) -> [f32; 4] {
        let dim = x.len();
        debug_assert!(rows.len() >= 4 * dim);
        let (p0, px) = (rows.as_ptr(), x.as_ptr());
        let (p1, p2, p3) = (p0.add(dim), p0.add(2 * dim), p0.add(3 * dim));
        let mut a0 = _mm256_setzero_ps();
        let mut a1 = _mm256_setzero_ps();
        let mut a2 = _mm256_setzero_ps();
        let mut a3 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY (loads): each row is `dim` floats long and every load stays below `dim`.
        while i + 8 <= dim {
            let v = _mm256_loadu_ps(px.add(i));
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(p0.add(i)), v, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(p1.add(i)), v, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(p2.add(i)), v, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(p3.add(i)), v, a3);
            i += 8;
        }
        let mut out = [hsum(a0), hsum(a1), hsum(a2), hsum(a3)];
        while i < dim {
            let v = x[i];
            out[0] += rows[i] * v;
            out[1] += rows[dim + i] * v;
            out[2] += rows[2 * dim + i] * v;
            out[3] += rows[3 * dim + i] * v;
            i += 1;
        }
        out
    }

    /// Four rows against two vectors: eight products per pass, each row and vector lane loaded once.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `rows` holds at least `4 * x0.len()` floats and
    /// `x1.len() == x0.len()`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot4x2(rows: &[f32], x0: &[f32], x1: &[f32]) -> ([f32; 4], [f32; 4]) {
        let dim = x0.len();
        debug_assert!(rows.len() >= 4 * dim && x1.len() == dim);
        let p = [
            rows.as_ptr(),
            rows.as_ptr().add(dim),
            rows.as_ptr().add(2 * dim),
            rows.as_ptr().add(3 * dim),
        ];
        let (q0, q1) = (x0.as_ptr(), x1.as_ptr());
        let mut a = [_mm256_setzero_ps(); 4];
        let mut b = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY (loads): rows and vectors are `dim` floats long and every load stays below `dim`.
        while i + 8 <= dim {
            let v0 = _mm256_loadu_ps(q0.add(i));
            let v1 = _mm256_loadu_ps(q1.add(i));
            for r in 0..4 {
                let row = _mm256_loadu_ps(p[r].add(i));
                a[r] = _mm256_fmadd_ps(row, v0, a[r]);
                b[r] = _mm256_fmadd_ps(row, v1, b[r]);
            }
            i += 8;
        }
        let mut s0 = [hsum(a[0]), hsum(a[1]), hsum(a[2]), hsum(a[3])];
        let mut s1 = [hsum(b[0]), hsum(b[1]), hsum(b[2]), hsum(b[3])];
        while i < dim {
            for r in 0..4 {
                let row = rows[r * dim + i];
                s0[r] += row * x0[i];
                s1[r] += row * x1[i];
            }
            i += 1;
        }
        (s0, s1)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn nearest_rows(
        rows: &[f32],
        xs: &[f32],
        dim: usize,
        base: u32,
        best: &mut [f32],
        ids: &mut [u32],
    ) {
        let n_rows = rows.len() / dim;
        let mut update = |j: usize, r: usize, s: f32| {
            if s > best[j] {
                best[j] = s;
                ids[j] = base + r as u32;
            }
        };
        let n_x = xs.len() / dim;
        let mut j = 0;
        while j < n_x {
            let x0 = &xs[j * dim..(j + 1) * dim];
            let mut r = 0;
            if j + 1 < n_x {
                let x1 = &xs[(j + 1) * dim..(j + 2) * dim];
                while r + 4 <= n_rows {
                    let (s0, s1) = dot4x2(&rows[r * dim..(r + 4) * dim], x0, x1);
                    for t in 0..4 {
                        update(j, r + t, s0[t]);
                        update(j + 1, r + t, s1[t]);
                    }
                    r += 4;
                }
                for r in r..n_rows {
                    let row = &rows[r * dim..(r + 1) * dim];
                    update(j, r, dot(row, x0));
                    update(j + 1, r, dot(row, x1));
                }
                j += 2;
            } else {
                while r + 4 <= n_rows {
                    let s = dot4(&rows[r * dim..(r + 4) * dim], x0);
                    for (t, &s) in s.iter().enumerate() {
                        update(j, r + t, s);
                    }
                    r += 4;
                }
                for r in r..n_rows {
                    update(j, r, dot(&rows[r * dim..(r + 1) * dim], x0));
                }
                j += 1;
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_rows(rows: &[f32], x: &[f32], dim: usize, out: &mut [f32]) {
        let n = out.len().min(rows.len() / dim);
        let mut r = 0;
        while r + 4 <= n {
            let s = dot4(&rows[r * dim..(r + 4) * dim], x);
            out[r..r + 4].copy_from_slice(&s);
            r += 4;
        }
        while r < n {
            out[r] = dot(&rows[r * dim..(r + 1) * dim], x);
            r += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn kernels_match_naive_for_every_tail_length() {
        for dim in [1usize, 3, 7, 8, 9, 15, 16, 17, 31, 128, 130] {
            let rows: Vec<f32> = (0..dim * 7)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0)
                .collect();
            let x: Vec<f32> = (0..dim)
                .map(|i| ((i * 13 % 5) as f32 - 2.0) / 3.0)
                .collect();
            let mut out = vec![0.0; 7];
            dot_rows(&rows, &x, dim, &mut out);
            for (r, o) in out.iter().enumerate() {
                let want = naive(&rows[r * dim..(r + 1) * dim], &x);
                assert!((o - want).abs() < 1e-4, "dim {dim} row {r}: {o} vs {want}");
                assert!((portable::dot(&rows[r * dim..(r + 1) * dim], &x) - want).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn nearest_rows_matches_naive_argmax() {
        for dim in [3usize, 8, 12, 64] {
            // 11 rows (not a multiple of 4), 5 vectors (odd), in two blocks to exercise `base`.
            let rows: Vec<f32> = (0..dim * 11)
                .map(|i| ((i * 29 % 23) as f32 - 11.0) / 9.0)
                .collect();
            let xs: Vec<f32> = (0..dim * 5)
                .map(|i| ((i * 17 % 7) as f32 - 3.0) / 4.0)
                .collect();
            let (mut best, mut ids) = (vec![f32::NEG_INFINITY; 5], vec![0u32; 5]);
            nearest_rows(&rows[..6 * dim], &xs, dim, 0, &mut best, &mut ids);
            nearest_rows(&rows[6 * dim..], &xs, dim, 6, &mut best, &mut ids);
            for (j, x) in xs.chunks(dim).enumerate() {
                let scores: Vec<f32> = rows.chunks(dim).map(|r| naive(r, x)).collect();
                let max = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                assert!((best[j] - max).abs() < 1e-4, "dim {dim} x {j}");
                assert!((scores[ids[j] as usize] - max).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn max_sim_sums_best_matches_and_handles_many_query_rows() {
        let dim = 5;
        // 70 query rows cross the 64-row block boundary.
        let query: Vec<f32> = (0..70 * dim)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let doc: Vec<f32> = (0..9 * dim)
            .map(|i| ((i * 5 % 17) as f32 - 8.0) / 9.0)
            .collect();
        let want: f32 = query
            .chunks(dim)
            .map(|q| {
                doc.chunks(dim)
                    .map(|d| naive(q, d))
                    .fold(f32::NEG_INFINITY, f32::max)
            })
            .sum();
        let got = max_sim(&query, &doc, dim, &mut Vec::new());
        assert!((got - want).abs() < 1e-3, "{got} vs {want}");
        assert_eq!(max_sim(&query, &[], dim, &mut Vec::new()), 0.0);
    }
}
