//! ColBERTv2 residual compression: a token is stored as its centroid id plus the residual
//! `token − centroid`, each dimension quantised to `nbits` with bucket cutoffs and weights taken from the
//! residual distribution (shared by all dimensions, as ColBERTv2's `ResidualCodec`; the weights are
//! bucket means rather than ColBERTv2's mid-quantiles, see [`bucket_params`]).
//!
//! Packing: dimension `j`'s code sits at bits `(j % per_byte) · nbits ..` of byte `j / per_byte` of the
//! token's residual, least significant bits first; a token's residual takes `⌈dim · nbits / 8⌉` bytes.
//! Decompression is `normalize(centroid + weights[code])`: ColBERTv2 L2-normalises decompressed
//! embeddings (`ResidualCodec.decompress`), and so does this codec.

/// Bytes of one packed residual.
pub(crate) fn bytes_per_token(dim: usize, nbits: u32) -> usize {
    (dim * nbits as usize).div_ceil(8)
}

/// Bucket index of `x`: the number of cutoffs strictly below it (`torch.bucketize`, `right=False`).
#[inline]
pub(crate) fn bucketize(x: f32, cutoffs: &[f32]) -> u8 {
    cutoffs.iter().map(|&c| u8::from(c < x)).sum()
}

/// Quantises `residual` (one token, `dim` values) with `cutoffs` and packs the codes into `out`
/// (`bytes_per_token` bytes, overwritten).
pub(crate) fn quantize_into(residual: &[f32], cutoffs: &[f32], nbits: u32, out: &mut [u8]) {
    let per_byte = 8 / nbits as usize;
    out.fill(0);
    for (j, &r) in residual.iter().enumerate() {
        let code = bucketize(r, cutoffs);
        out[j / per_byte] |= code << ((j % per_byte) as u32 * nbits);
    }
}

/// The codes of one packed token (inverse of the packing in [`quantize_into`]). Decompression reads
/// whole bytes through [`ResidualDecoder`]; this is the reference it is tested against.
#[cfg(test)]
pub(crate) fn unpack_into(packed: &[u8], nbits: u32, out: &mut [u8]) {
    let per_byte = 8 / nbits as usize;
    let mask = ((1u16 << nbits) - 1) as u8;
    for (j, o) in out.iter_mut().enumerate() {
        *o = (packed[j / per_byte] >> ((j % per_byte) as u32 * nbits)) & mask;
    }
}

/// Quantile `q` ∈ [0, 1] of sorted values with linear interpolation (what `torch.quantile` does).
pub(crate) fn quantile(sorted: &[f32], q: f64) -> f32 {
    debug_assert!(!sorted.is_empty());
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = (pos - lo as f64) as f32;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Buckets from a sample of residual values: `2^nbits − 1` cutoffs at quantiles `i / 2^nbits`, as
/// ColBERTv2, and `2^nbits` weights (reconstruction values), each the mean of the sample values that fall
/// in its bucket.
///
/// ColBERTv2 takes the mid-quantiles `(i + 0.5) / 2^nbits` as weights. The bucket mean is the
/// reconstruction with the least squared error for these cutoffs, and residuals have heavy tails, so the
/// outer mid-quantiles sit well inside their buckets. On all-MiniLM-L6-v2 token vectors, exhaustive MaxSim
/// over decompressed tokens found 0.90 of the exact top 10 with means against 0.87 with mid-quantiles at
/// 2 bits, and 0.976 against 0.960 at 4 bits (`docs/bench/analysis.md`). A bucket the sample leaves empty
/// keeps its mid-quantile. Sorts `values` in place; non-finite values must not be present.
pub(crate) fn bucket_params(values: &mut [f32], nbits: u32) -> (Vec<f32>, Vec<f32>) {
    let levels = 1usize << nbits;
    if values.is_empty() {
        return (vec![0.0; levels - 1], vec![0.0; levels]);
    }
    values.sort_unstable_by(f32::total_cmp);
    let cutoffs: Vec<f32> = (1..levels)
        .map(|i| quantile(values, i as f64 / levels as f64))
        .collect();
    // Values are sorted, so bucket i is a contiguous run: above cutoff i − 1, at most cutoff i
    // (`bucketize`'s rule).
    let mut weights = Vec::with_capacity(levels);
    let mut start = 0;
    for i in 0..levels {
        let end = match cutoffs.get(i) {
            Some(&c) => start + values[start..].partition_point(|&v| v <= c),
            None => values.len(),
        };
        let run = &values[start..end];
        weights.push(if run.is_empty() {
            quantile(values, (i as f64 + 0.5) / levels as f64)
        } else {
            (run.iter().map(|&v| f64::from(v)).sum::<f64>() / run.len() as f64) as f32
        });
        start = end;
    }
    (cutoffs, weights)
}

/// Decoding tables for one store: for every byte value, the weights of the codes it packs.
#[derive(Clone, Debug)]
pub(crate) struct ResidualDecoder {
    dim: usize,
    per_byte: usize,
    /// `256 × per_byte` weights: entry `b · per_byte + i` is the weight of the `i`-th code in byte `b`.
    byte_table: Vec<f32>,
}

impl ResidualDecoder {
    pub(crate) fn new(dim: usize, nbits: u32, weights: &[f32]) -> Self {
        let per_byte = 8 / nbits as usize;
        let mask = (1usize << nbits) - 1;
        let mut byte_table = Vec::with_capacity(256 * per_byte);
        for b in 0..256usize {
            for i in 0..per_byte {
                byte_table.push(weights[(b >> (i * nbits as usize)) & mask]);
            }
        }
        ResidualDecoder {
            dim,
            per_byte,
            byte_table,
        }
    }

    /// Writes the decompressed, unit-length token into `out` (`dim` values).
    pub(crate) fn decompress_into(&self, centroid: &[f32], packed: &[u8], out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.dim);
        match self.per_byte {
            2 => self.add_weights::<2>(centroid, packed, out),
            4 => self.add_weights::<4>(centroid, packed, out),
            _ => self.add_weights::<8>(centroid, packed, out),
        }
        // A zero sum (centroid and residual cancelling) stays zero.
        crate::kernels::normalize(out);
    }

    /// `out = centroid + weights[codes]`, one packed byte (`PB` dimensions) at a time; fixed-size
    /// arrays let the compiler vectorise the inner loop.
    fn add_weights<const PB: usize>(&self, centroid: &[f32], packed: &[u8], out: &mut [f32]) {
        let full = self.dim / PB;
        let entry = |byte: u8| -> &[f32; PB] {
            let start = byte as usize * PB;
            self.byte_table[start..start + PB]
                .try_into()
                .expect("table entries are PB long")
        };
        for ((o, c), &byte) in out
            .chunks_exact_mut(PB)
            .zip(centroid.chunks_exact(PB))
            .zip(&packed[..full])
        {
            let o: &mut [f32; PB] = o.try_into().expect("exact chunk");
            let c: &[f32; PB] = c.try_into().expect("exact chunk");
            let w = entry(byte);
            for i in 0..PB {
                o[i] = c[i] + w[i];
            }
        }
        let rest = self.dim - full * PB;
        if rest > 0 {
            let w = entry(packed[full]);
            for i in 0..rest {
                out[full * PB + i] = centroid[full * PB + i] + w[i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_is_exact_for_every_nbits_and_odd_dims() {
        for nbits in [1u32, 2, 4] {
            let levels = 1u8 << nbits;
            for dim in [1usize, 3, 8, 13, 128] {
                let codes: Vec<u8> = (0..dim)
                    .map(|j| ((j * 7 + 3) % levels as usize) as u8)
                    .collect();
                // Cutoffs at k + 0.5 so the value k lands in bucket k.
                let cutoffs: Vec<f32> = (1..levels).map(|k| k as f32 - 0.5).collect();
                let residual: Vec<f32> = codes.iter().map(|&c| c as f32).collect();
                let mut packed = vec![0xAAu8; bytes_per_token(dim, nbits)];
                quantize_into(&residual, &cutoffs, nbits, &mut packed);
                let mut back = vec![0u8; dim];
                unpack_into(&packed, nbits, &mut back);
                assert_eq!(back, codes, "nbits {nbits} dim {dim}");
            }
        }
    }

    #[test]
    fn bucketize_follows_torch_right_false() {
        let cutoffs = [-1.0, 0.0, 1.0];
        assert_eq!(bucketize(-2.0, &cutoffs), 0);
        assert_eq!(bucketize(-1.0, &cutoffs), 0);
        assert_eq!(bucketize(-0.5, &cutoffs), 1);
        assert_eq!(bucketize(0.0, &cutoffs), 1);
        assert_eq!(bucketize(0.5, &cutoffs), 2);
        assert_eq!(bucketize(3.0, &cutoffs), 3);
    }

    #[test]
    fn quantile_cutoffs_and_bucket_means_on_a_uniform_distribution() {
        // 0, 1, …, 1000: quantile q is exactly 1000·q.
        let mut values: Vec<f32> = (0..=1000).rev().map(|v| v as f32).collect();
        let (cutoffs, weights) = bucket_params(&mut values, 2);
        assert_eq!(cutoffs, vec![250.0, 500.0, 750.0]);
        // Means of 0..=250, 251..=500, 501..=750, 751..=1000 (a value on a cutoff is in the lower bucket).
        assert_eq!(weights, vec![125.0, 375.5, 625.5, 875.5]);
        let (cutoffs, weights) = bucket_params(&mut values, 1);
        assert_eq!(cutoffs, vec![500.0]);
        assert_eq!(weights, vec![250.0, 750.5]);
        // Interpolation between neighbours, as torch.quantile.
        assert_eq!(quantile(&[0.0, 10.0], 0.25), 2.5);
    }

    #[test]
    fn quantile_cutoffs_and_bucket_means_on_a_gaussian_sample() {
        // Standard normal quartiles are ±0.6745 and 0. The mean of a quartile bucket is ±4·φ(0.6745) =
        // ±1.2711 outside and ±4·(φ(0) − φ(0.6745)) = ±0.3247 inside, where the mid-quantiles would be
        // ±1.1503 and ±0.3186.
        let mut rng = super::super::rng::SplitMix64::new(7);
        let mut values: Vec<f32> = (0..200_000).map(|_| rng.gaussian()).collect();
        let (cutoffs, weights) = bucket_params(&mut values, 2);
        let want_c = [-0.6745, 0.0, 0.6745];
        let want_w = [-1.2711, -0.3247, 0.3247, 1.2711];
        for (g, w) in cutoffs.iter().zip(want_c).chain(weights.iter().zip(want_w)) {
            assert!((g - w).abs() < 0.01, "{g} vs {w}");
        }
    }

    #[test]
    fn decompress_adds_weights_and_normalises() {
        let nbits = 2;
        let weights = [-0.3, -0.1, 0.1, 0.3];
        let decoder = ResidualDecoder::new(6, nbits, &weights);
        let centroid = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let codes = [3u8, 0, 1, 2, 3, 0];
        let mut packed = [0u8; 2];
        let residual: Vec<f32> = codes.iter().map(|&c| weights[c as usize]).collect();
        quantize_into(&residual, &[-0.2, 0.0, 0.2], nbits, &mut packed);
        let mut out = [0.0f32; 6];
        decoder.decompress_into(&centroid, &packed, &mut out);
        let raw: Vec<f32> = centroid.iter().zip(&residual).map(|(c, r)| c + r).collect();
        let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
        for (o, r) in out.iter().zip(&raw) {
            assert!((o - r / norm).abs() < 1e-6);
        }
    }
}
