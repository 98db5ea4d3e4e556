//! Building a token store from raw tokens: spherical k-means on a sample (ColBERTv2's centroid count,
//! deterministic seed), assignment of every token, residual bucket cutoffs and weights from quantiles,
//! packed residual codes, and PLAID's passage-level inverted lists (centroid → sorted unique points).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::codec::{bucket_params, bytes_per_token, quantize_into};
use super::rng::SplitMix64;
use super::{CentroidIds, PlaidBuild, PlaidBuildParams, TokenRows};
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
    tokens: &dyn TokenRows,
    params: &PlaidBuildParams,
    stop: &AtomicBool,
) -> Result<PlaidBuild> {
    params.validate()?;
    let started = Instant::now();
    let dim = tokens.dim();
    let offsets = tokens.offsets();
    let n_tokens = offsets[offsets.len() - 1] as usize;
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
        let sample = Sample {
            tokens,
            idx: sample_indices(n_tokens, sample_cap, &mut rng),
        };
        kmeans(&sample, k, params.kmeans_iters, &mut rng, stop)?
    };

    // The buckets come from the residuals of a sample of tokens against their nearest centroids, so
    // one pass over all tokens then assigns and encodes them.
    let (cutoffs, weights) = {
        let quantile = Sample {
            tokens,
            idx: sample_indices(n_tokens, QUANTILE_SAMPLE_TOKENS, &mut rng),
        };
        let mut values = Vec::with_capacity(quantile.len() * dim);
        let (mut rows, mut buf) = (Vec::new(), Vec::new());
        let mut nearest = [0u32; ASSIGN_CHUNK];
        for first in (0..quantile.len()).step_by(ASSIGN_CHUNK) {
            let end = (first + ASSIGN_CHUNK).min(quantile.len());
            rows.clear();
            quantile.read(first..end, &mut rows, &mut buf)?;
            let nearest = &mut nearest[..end - first];
            nearest_of_chunk(&centroids, &rows, dim, nearest);
            for (row, &c) in rows.chunks_exact(dim).zip(&*nearest) {
                let c = c as usize;
                values.extend(
                    row.iter()
                        .zip(&centroids[c * dim..(c + 1) * dim])
                        .map(|(x, c)| x - c),
                );
            }
        }
        bucket_params(&mut values, nbits)
    };

    // At least one byte: `dim` and `nbits` are at least 1.
    let bpt = bytes_per_token(dim, nbits);
    // No centroids only for no tokens (`num_centroids` is at least 1): a pass over none.
    let mut assigned = vec![0u32; n_tokens];
    let mut residuals = vec![0u8; n_tokens * bpt];
    assigned
        .par_chunks_mut(ASSIGN_CHUNK)
        .zip(residuals.par_chunks_mut(bpt * ASSIGN_CHUNK))
        .enumerate()
        .try_for_each_init(
            || (Vec::new(), Vec::new(), vec![0.0f32; dim]),
            |(rows, buf, residual), (chunk, (ids, out))| {
                if stop.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                let first = chunk * ASSIGN_CHUNK;
                rows.clear();
                read_tokens(tokens, first..first + ids.len(), rows, buf)?;
                nearest_of_chunk(&centroids, rows, dim, ids);
                for ((o, row), &c) in out.chunks_mut(bpt).zip(rows.chunks(dim)).zip(&*ids) {
                    let centroid = &centroids[c as usize * dim..(c as usize + 1) * dim];
                    for ((r, x), c) in residual.iter_mut().zip(row).zip(centroid) {
                        *r = x - c;
                    }
                    quantize_into(residual, &cutoffs, nbits, o);
                }
                Ok(())
            },
        )?;
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }

    let (ivf_offsets, ivf_docs) = inverted_lists(offsets, &assigned, k);
    let ids = if k <= 1 << 16 {
        CentroidIds::U16(assigned.iter().map(|&c| c as u16).collect())
    } else {
        CentroidIds::U32(assigned)
    };
    tracing::info!(
        docs = offsets.len() - 1,
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
        doc_offsets: offsets.to_vec(),
        ids,
        residuals,
        ivf_offsets,
        ivf_docs,
    })
}

/// Appends the rows of `tokens` (ascending token indices) to `out`, reading each point they fall in
/// once. Errors where a point's rows are not as many as its offsets say, or a value read is not finite.
fn read_tokens(
    source: &dyn TokenRows,
    tokens: impl IntoIterator<Item = usize>,
    out: &mut Vec<f32>,
    buf: &mut Vec<f32>,
) -> Result<()> {
    let (dim, offsets) = (source.dim(), source.offsets());
    let mut tokens = tokens.into_iter().peekable();
    while let Some(&t) = tokens.peek() {
        let point = offsets.partition_point(|&o| o as usize <= t) - 1;
        let (start, end) = (offsets[point] as usize, offsets[point + 1] as usize);
        let rows = source.point_rows(point, buf);
        if rows.len() != (end - start) * dim {
            return Err(Error::InvalidInput(format!(
                "token store: point {point} has {} floats of tokens, not {}",
                rows.len(),
                (end - start) * dim
            )));
        }
        while let Some(t) = tokens.next_if(|&t| t < end) {
            let row = &rows[(t - start) * dim..(t - start + 1) * dim];
            if !row.iter().all(|v| v.is_finite()) {
                return Err(Error::InvalidInput(format!(
                    "token store: token {t} holds a non-finite value"
                )));
            }
            out.extend_from_slice(row);
        }
    }
    Ok(())
}

/// The tokens k-means trains on: ascending token indices of a source, read from it as often as
/// training passes over them instead of gathered into a copy.
struct Sample<'a> {
    tokens: &'a dyn TokenRows,
    idx: Vec<usize>,
}

impl Sample<'_> {
    fn len(&self) -> usize {
        self.idx.len()
    }

    /// Appends the rows of sample positions `at` to `out`.
    fn read(
        &self,
        at: std::ops::Range<usize>,
        out: &mut Vec<f32>,
        buf: &mut Vec<f32>,
    ) -> Result<()> {
        read_tokens(self.tokens, self.idx[at].iter().copied(), out, buf)
    }

    /// Sample position `i`'s row into `out` (`dim` floats).
    fn row_into(&self, i: usize, out: &mut [f32], scratch: &mut Vec<f32>) -> Result<()> {
        scratch.clear();
        self.read(i..i + 1, scratch, &mut Vec::new())?;
        out.copy_from_slice(scratch);
        Ok(())
    }
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

/// Spherical k-means: assign by largest dot product, move each centroid to its members' mean and
/// L2-normalise it (ColBERT normalises its centroids). A centroid left empty is re-seeded with a random
/// sample point. `k` must be at most the number of sample rows.
fn kmeans(
    sample: &Sample<'_>,
    k: usize,
    iters: usize,
    rng: &mut SplitMix64,
    stop: &AtomicBool,
) -> Result<Vec<f32>> {
    let dim = sample.tokens.dim();
    let n = sample.len();
    debug_assert!(k >= 1 && k <= n);
    let mut scratch = Vec::with_capacity(dim);
    // Initial centroids: k distinct sample rows (partial Fisher–Yates).
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + rng.below(n - i);
        order.swap(i, j);
    }
    let mut centroids = vec![0.0f32; k * dim];
    for (c, &i) in centroids.chunks_mut(dim).zip(&order[..k]) {
        sample.row_into(i, c, &mut scratch)?;
        normalize(c);
    }
    drop(order);
    let mut sums = vec![0.0f32; k * dim];
    let mut counts = vec![0u32; k];
    let (mut rows, mut buf) = (Vec::new(), Vec::new());
    for _ in 0..iters {
        let assigned = assign_sample(sample, &centroids, stop)?;
        sums.fill(0.0);
        counts.fill(0);
        // In sample order, so the sums (and the centroids) do not depend on the thread count.
        for (chunk, ids) in assigned.chunks(ASSIGN_CHUNK).enumerate() {
            rows.clear();
            let first = chunk * ASSIGN_CHUNK;
            sample.read(first..first + ids.len(), &mut rows, &mut buf)?;
            for (row, &c) in rows.chunks_exact(dim).zip(ids) {
                let c = c as usize;
                counts[c] += 1;
                for (s, x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row) {
                    *s += x;
                }
            }
        }
        for (c, &count) in counts.iter().enumerate() {
            let out = &mut centroids[c * dim..(c + 1) * dim];
            if count == 0 {
                sample.row_into(rng.below(n), out, &mut scratch)?;
            } else {
                out.copy_from_slice(&sums[c * dim..(c + 1) * dim]);
            }
            normalize(out);
        }
    }
    Ok(centroids)
}

/// The nearest centroid (largest dot product, lowest id on ties) of every sample row, in parallel, the
/// rows read from the source a chunk at a time. The result does not depend on the number of threads.
fn assign_sample(sample: &Sample<'_>, centroids: &[f32], stop: &AtomicBool) -> Result<Vec<u32>> {
    let dim = sample.tokens.dim();
    let mut out = vec![0u32; sample.len()];
    out.par_chunks_mut(ASSIGN_CHUNK)
        .enumerate()
        .try_for_each_init(
            || (Vec::new(), Vec::new()),
            |(rows, buf), (chunk, ids)| {
                if stop.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                rows.clear();
                let first = chunk * ASSIGN_CHUNK;
                sample.read(first..first + ids.len(), rows, buf)?;
                nearest_of_chunk(centroids, rows, dim, ids);
                Ok(())
            },
        )?;
    Ok(out)
}

/// The nearest centroid of each of a chunk's rows (at most [`ASSIGN_CHUNK`]) into `ids`, the centroids
/// walked in blocks of [`CENTROID_BLOCK`] so a block stays in cache for all the rows.
fn nearest_of_chunk(centroids: &[f32], rows: &[f32], dim: usize, ids: &mut [u32]) {
    let mut best = [f32::NEG_INFINITY; ASSIGN_CHUNK];
    let best = &mut best[..ids.len()];
    for (b, block) in centroids.chunks(dim * CENTROID_BLOCK).enumerate() {
        let base = (b * CENTROID_BLOCK) as u32;
        nearest_rows(block, rows, dim, base, best, ids);
    }
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
    use crate::plaid::TokenMatrices;

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
        let offsets = [0, 200];
        let sample = Sample {
            tokens: &TokenMatrices::new(&offsets, &data, dim).unwrap(),
            idx: (0..200).collect(),
        };
        let centroids = kmeans(&sample, 4, 10, &mut SplitMix64::new(9), &stop).unwrap();
        let ids = assign_sample(&sample, &centroids, &stop).unwrap();
        for i in 0..200 {
            assert_eq!(ids[i], ids[i % 4], "point {i}");
        }
        let mut distinct = ids[..4].to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4);
        stop.store(true, Ordering::Relaxed);
        assert!(matches!(
            assign_sample(&sample, &centroids, &stop),
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
