//! The kernels against plain reference loops, for every tail length the SIMD paths split on.

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
        assert!(close(portable::dot(&a, &b), d, n), "dot_portable n={n}");
        assert!(close(l2_squared(&a, &b), l, n), "l2 n={n}");
        assert!(
            close(portable::l2_squared(&a, &b), l, n),
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
    assert_eq!(portable::dot(&a, &b), want);
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
fn max_sim_sums_best_row_per_query_row() {
    let q = [1.0, 0.0, 0.0, 1.0];
    let d = [0.5, 0.5, 1.0, 0.0, 0.0, 0.25];
    // Row 1 of q: best is 1.0 (doc row 1); row 2: best is 0.5 (doc row 0).
    assert_eq!(max_sim(&q, &d, 2), 1.5);
    assert_eq!(max_sim(&q, &[], 2), 0.0);
    assert_eq!(max_sim(&[], &d, 2), 0.0);
    assert_eq!(max_sim(&[2.0], &[-1.0, -3.0], 1), -2.0);
}

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
    // 70 query rows: many pairs of them against the document's rows.
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
    let got = max_sim(&query, &doc, dim);
    assert!((got - want).abs() < 1e-3, "{got} vs {want}");
    assert_eq!(max_sim(&query, &[], dim), 0.0);
}

#[test]
fn max_dots_matches_naive_for_odd_shapes() {
    // Query rows in pairs and a last single one, document rows in fours and a tail, lanes in eights
    // and a tail; SIMD and portable agree with the plain maximum.
    for dim in [1usize, 5, 8, 13, 128, 384] {
        for (n_x, n_rows) in [(1usize, 1usize), (2, 4), (3, 5), (19, 18), (4, 3)] {
            let rows: Vec<f32> = (0..dim * n_rows)
                .map(|i| ((i * 31 % 19) as f32 - 9.0) / 8.0)
                .collect();
            let xs: Vec<f32> = (0..dim * n_x)
                .map(|i| ((i * 11 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let want: Vec<f32> = xs
                .chunks(dim)
                .map(|x| {
                    rows.chunks(dim)
                        .map(|r| naive(r, x))
                        .fold(f32::NEG_INFINITY, f32::max)
                })
                .collect();
            let mut best = vec![f32::NEG_INFINITY; n_x];
            max_dots(&rows, &xs, dim, &mut best);
            let mut portable_best = vec![f32::NEG_INFINITY; n_x];
            portable::max_dots(&rows, &xs, dim, &mut portable_best);
            for j in 0..n_x {
                let tol = 1e-5 * dim as f32;
                assert!(
                    (best[j] - want[j]).abs() <= tol,
                    "dim {dim} x {j}/{n_x} rows {n_rows}"
                );
                assert!((portable_best[j] - want[j]).abs() <= tol);
            }
            // A best already above every product stays.
            let mut high = vec![1e9f32; n_x];
            max_dots(&rows, &xs, dim, &mut high);
            assert!(high.iter().all(|&b| b == 1e9));
        }
    }
}

#[test]
fn widen_f16_matches_the_scalar_conversion_at_every_tail_length() {
    for n in [0usize, 1, 7, 8, 9, 17, 384] {
        let mut src: Vec<half::f16> = (0..n)
            .map(|i| half::f16::from_f32((i as f32 - 40.0) / 7.0))
            .collect();
        if n >= 2 {
            src[n - 1] = half::f16::INFINITY;
            src[n - 2] = half::f16::MIN_POSITIVE_SUBNORMAL;
        }
        // A longer buffer with stale values: it is cut to length and every element written.
        let mut out = vec![9.0f32; n + 5];
        widen_f16(&src, &mut out);
        let want: Vec<f32> = src.iter().map(|x| x.to_f32()).collect();
        assert_eq!(out, want, "n = {n}");
    }
}
