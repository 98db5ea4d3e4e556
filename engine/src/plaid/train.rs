//! Building a token store from raw tokens: spherical k-means on a sample (ColBERTv2's centroid count,
//! deterministic seed), assignment of every token, residual bucket cutoffs and weights from quantiles,
//! packed residual codes, and PLAID's passage-level inverted lists (centroid → sorted unique points).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::codec::{bucket_params, bytes_per_token, quantize_into};
use super::rng::SplitMix64;
use super::{CentroidIds, PlaidBuild, PlaidBuildParams, TokenMatrices};
use crate::kernels::{nearest_rows, normalize};
use crate::{Error, Result};

/// Tokens whose residuals give the bucket cutoffs: 8192 × 128 d is a million values, plenty for 16
/// quantiles, and sorts in well under a second.
const QUANTILE_SAMPLE_TOKENS: usize = 8_192;

/// Tokens per parallel work item in assignment; centroids are walked in blocks of [`CENTROID_BLOCK`]
/// rows so a block stays in cache while all the item's tokens are scored against it.
const ASSIGN_CHUNK: usize = 64;
const CENTROID_BLOCK: usize = 256;

/// ColBERTv2's centroid count: `2^⌊log2(16·√n_tokens)⌋`, clamped to `[1, min(n_tokens, 65536)]`
/// (0 for no tokens).
pub fn default_num_centroids(n_tokens: usize) -> usize {
    if n_tokens == 0 {
        return 0;
    }
    let target = 16.0 * (n_tokens as f64).sqrt();
    let pow = 1usize << (target.log2().floor() as u32).min(16);
    pow.clamp(1, n_tokens.min(1 << 16))
}

pub(crate) fn build(
    tokens: TokenMatrices<'_>,
    params: &PlaidBuildParams,
    stop: &AtomicBool,
) -> Result<PlaidBuild> {
    params.validate()?;
    let started = Instant::now();
    let dim = tokens.dim();
    let n_tokens = tokens.num_tokens();
    if let Some(i) = tokens.data().iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidInput(format!(
            "token store: token {} holds a non-finite value",
            i / dim
        )));
    }
    let k = match params.num_centroids {
        Some(k) => k.min(n_tokens),
        None => default_num_centroids(n_tokens),
    };
    let nbits = u32::from(params.nbits);
    let mut rng = SplitMix64::new(params.seed);

    let centroids = if k == 0 {
        Vec::new()
    } else {
        let sample_cap = k.saturating_mul(params.max_points_per_centroid).max(k);
        let sample = sample_rows(tokens.data(), dim, sample_cap, &mut rng);
        kmeans(&sample, dim, k, params.kmeans_iters, &mut rng, stop)?
    };
    let assigned = if k == 0 {
        Vec::new()
    } else {
        assign(tokens.data(), &centroids, dim, stop)?
    };

    let quantile_rows = sample_indices(n_tokens, QUANTILE_SAMPLE_TOKENS, &mut rng);
    let mut values = Vec::with_capacity(quantile_rows.len() * dim);
    for &t in &quantile_rows {
        let c = assigned[t] as usize;
        let row = &tokens.data()[t * dim..(t + 1) * dim];
        values.extend(
            row.iter()
                .zip(&centroids[c * dim..(c + 1) * dim])
                .map(|(x, c)| x - c),
        );
    }
    let (cutoffs, weights) = bucket_params(&mut values, nbits);

    let bpt = bytes_per_token(dim, nbits);
    let mut residuals = vec![0u8; n_tokens * bpt];
    if bpt > 0 {
        residuals
            .par_chunks_mut(bpt * ASSIGN_CHUNK)
            .zip(tokens.data().par_chunks(dim * ASSIGN_CHUNK))
            .zip(assigned.par_chunks(ASSIGN_CHUNK))
            .for_each_init(
                || vec![0.0f32; dim],
                |residual, ((out, rows), ids)| {
                    for ((o, row), &c) in out.chunks_mut(bpt).zip(rows.chunks(dim)).zip(ids) {
                        let centroid = &centroids[c as usize * dim..(c as usize + 1) * dim];
                        for ((r, x), c) in residual.iter_mut().zip(row).zip(centroid) {
                            *r = x - c;
                        }
                        quantize_into(residual, &cutoffs, nbits, o);
                    }
                },
            );
    }
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }

    let (ivf_offsets, ivf_docs) = inverted_lists(tokens.offsets(), &assigned, k);
    let ids = if k <= 1 << 16 {
        CentroidIds::U16(assigned.iter().map(|&c| c as u16).collect())
    } else {
        CentroidIds::U32(assigned)
    };
    tracing::info!(
        docs = tokens.len(),
        tokens = n_tokens,
        centroids = k,
        nbits,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "token store built"
    );
    Ok(PlaidBuild {
        dim,
        nbits,
        centroids,
        cutoffs,
        weights,
        doc_offsets: tokens.offsets().to_vec(),
        ids,
        residuals,
        ivf_offsets,
        ivf_docs,
    })
}

/// Up to `cap` distinct indices of `0..n`, sorted, uniformly at random (Knuth's selection sampling).
fn sample_indices(n: usize, cap: usize, rng: &mut SplitMix64) -> Vec<usize> {
    if n <= cap {
        return (0..n).collect();
    }
    let mut needed = cap;
    let mut out = Vec::with_capacity(cap);
    for i in 0..n {
        if rng.below(n - i) < needed {
            out.push(i);
            needed -= 1;
            if needed == 0 {
                break;
            }
        }
    }
    out
}

fn sample_rows(data: &[f32], dim: usize, cap: usize, rng: &mut SplitMix64) -> Vec<f32> {
    let idx = sample_indices(data.len() / dim, cap, rng);
    let mut out = Vec::with_capacity(idx.len() * dim);
    for i in idx {
        out.extend_from_slice(&data[i * dim..(i + 1) * dim]);
    }
    out
}

/// Spherical k-means: assign by largest dot product, move each centroid to its members' mean and
/// L2-normalise it (ColBERT normalises its centroids). A centroid left empty is re-seeded with a random
/// sample point. `k` must be at most the number of sample rows.
fn kmeans(
    sample: &[f32],
    dim: usize,
    k: usize,
    iters: usize,
    rng: &mut SplitMix64,
    stop: &AtomicBool,
) -> Result<Vec<f32>> {
    let n = sample.len() / dim;
    debug_assert!(k >= 1 && k <= n);
    // Initial centroids: k distinct sample rows (partial Fisher–Yates).
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + rng.below(n - i);
        order.swap(i, j);
    }
    let mut centroids = Vec::with_capacity(k * dim);
    for &i in &order[..k] {
        centroids.extend_from_slice(&sample[i * dim..(i + 1) * dim]);
    }
    for c in centroids.chunks_mut(dim) {
        normalize(c);
    }
    let mut sums = vec![0.0f32; k * dim];
    let mut counts = vec![0u32; k];
    for _ in 0..iters {
        let assigned = assign(sample, &centroids, dim, stop)?;
        sums.fill(0.0);
        counts.fill(0);
        for (row, &c) in sample.chunks_exact(dim).zip(&assigned) {
            let c = c as usize;
            counts[c] += 1;
            for (s, x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row) {
                *s += x;
            }
        }
        for (c, &count) in counts.iter().enumerate() {
            let out = &mut centroids[c * dim..(c + 1) * dim];
            if count == 0 {
                let i = rng.below(n);
                out.copy_from_slice(&sample[i * dim..(i + 1) * dim]);
            } else {
                out.copy_from_slice(&sums[c * dim..(c + 1) * dim]);
            }
            normalize(out);
        }
    }
    Ok(centroids)
}

/// The nearest centroid (largest dot product, lowest id on ties) of every row, in parallel. The result
/// does not depend on the number of threads.
fn assign(rows: &[f32], centroids: &[f32], dim: usize, stop: &AtomicBool) -> Result<Vec<u32>> {
    let n = rows.len() / dim;
    let mut out = vec![0u32; n];
    out.par_chunks_mut(ASSIGN_CHUNK)
        .zip(rows.par_chunks(dim * ASSIGN_CHUNK))
        .try_for_each_init(
            || vec![f32::NEG_INFINITY; ASSIGN_CHUNK],
            |best, (ids, chunk)| {
                if stop.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                let best = &mut best[..ids.len()];
                best.fill(f32::NEG_INFINITY);
                for (b, block) in centroids.chunks(dim * CENTROID_BLOCK).enumerate() {
                    let base = (b * CENTROID_BLOCK) as u32;
                    nearest_rows(block, chunk, dim, base, best, ids);
                }
                Ok(())
            },
        )?;
    Ok(out)
}

/// PLAID's passage-level IVF in CSR form: `offsets[c]..offsets[c + 1]` of `docs` are the points with at
/// least one token in centroid `c`, ascending.
fn inverted_lists(doc_offsets: &[u64], assigned: &[u32], k: usize) -> (Vec<u64>, Vec<u32>) {
    let mut counts = vec![0u64; k + 1];
    let mut scratch: Vec<u32> = Vec::new();
    let unique = |d: usize, scratch: &mut Vec<u32>| {
        scratch.clear();
        scratch.extend_from_slice(&assigned[doc_offsets[d] as usize..doc_offsets[d + 1] as usize]);
        scratch.sort_unstable();
        scratch.dedup();
    };
    let n_docs = doc_offsets.len().saturating_sub(1);
    for d in 0..n_docs {
        unique(d, &mut scratch);
        for &c in scratch.iter() {
            counts[c as usize + 1] += 1;
        }
    }
    for c in 0..k {
        counts[c + 1] += counts[c];
    }
    let mut cursor = counts.clone();
    let mut docs = vec![0u32; counts[k] as usize];
    for d in 0..n_docs {
        unique(d, &mut scratch);
        for &c in scratch.iter() {
            docs[cursor[c as usize] as usize] = d as u32;
            cursor[c as usize] += 1;
        }
    }
    (counts, docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centroid_count_follows_colbert() {
        assert_eq!(default_num_centroids(0), 0);
        assert_eq!(default_num_centroids(1), 1);
        assert_eq!(default_num_centroids(3), 3);
        // 16·√10000 = 1600 → 1024.
        assert_eq!(default_num_centroids(10_000), 1024);
        // 16·√1e6 = 16000 → 8192.
        assert_eq!(default_num_centroids(1_000_000), 8192);
        assert_eq!(default_num_centroids(usize::MAX / 2), 65536);
    }

    #[test]
    fn selection_sampling_is_distinct_sorted_and_sized() {
        let mut rng = SplitMix64::new(1);
        let s = sample_indices(1000, 100, &mut rng);
        assert_eq!(s.len(), 100);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample_indices(5, 100, &mut rng), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn kmeans_finds_separated_clusters() {
        // Four orthogonal directions, 50 noisy points each: every cluster gets its own centroid.
        let dim = 8;
        let mut rng = SplitMix64::new(3);
        let mut data = Vec::new();
        for i in 0..200 {
            let mut v: Vec<f32> = (0..dim).map(|_| 0.05 * rng.gaussian()).collect();
            v[i % 4] += 1.0;
            normalize(&mut v);
            data.extend(v);
        }
        let stop = AtomicBool::new(false);
        let centroids = kmeans(&data, dim, 4, 10, &mut SplitMix64::new(9), &stop).unwrap();
        let ids = assign(&data, &centroids, dim, &stop).unwrap();
        for i in 0..200 {
            assert_eq!(ids[i], ids[i % 4], "point {i}");
        }
        let mut distinct = ids[..4].to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4);
        stop.store(true, Ordering::Relaxed);
        assert!(matches!(
            assign(&data, &centroids, dim, &stop),
            Err(Error::Cancelled)
        ));
    }

    #[test]
    fn inverted_lists_are_sorted_unique_points() {
        // Doc 0: cells 2, 0, 2; doc 1: empty; doc 2: cell 0.
        let (offsets, docs) = inverted_lists(&[0, 3, 3, 4], &[2, 0, 2, 0], 3);
        assert_eq!(offsets, vec![0, 2, 2, 3]);
        assert_eq!(docs, vec![0, 2, 0]);
    }
}
