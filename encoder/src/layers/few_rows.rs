//! A BERT layer's steps between its projections (attention over packed sequences, residual +
//! LayerNorm, GELU) on plain row-major slices, for a forward pass of a few rows.
//!
//! For a 7-token query each of these steps is a few thousand multiply-adds, and as candle ops they
//! cost far more than that: every op allocates its output, checks layouts, and the threaded ones
//! fork onto the pool. Here they run in place on the calling thread. Sums (the attention's dot
//! products, LayerNorm's mean and variance) run in eight interleaved partial sums, so that they
//! vectorise; candle sums in another order, so the last bits can differ from its ops (well
//! within the model's f32 tolerance). The softmax and GELU are candle's arithmetic.

use super::gelu::gelu_scalar;

/// Attention of each packed sequence over itself (bidirectional, no mask: packed rows hold no
/// padding). `qkv` is `[T, 3·H]` (query heads, key heads, value heads, each `heads × head_dim`),
/// sequence `i` the next `lens[i]` rows; returns the context `[T, H]`. Scores are scaled by
/// `1/√head_dim` before the softmax, as BERT's self-attention does.
pub fn packed_attention(qkv: &[f32], lens: &[usize], heads: usize, head_dim: usize) -> Vec<f32> {
    let h = heads * head_dim;
    let t: usize = lens.iter().sum();
    assert_eq!(qkv.len(), t * 3 * h, "qkv is not [T, 3·H]");
    let scale = 1.0 / (head_dim as f64).sqrt();
    let scale = scale as f32;
    let mut ctx = vec![0f32; t * h];
    let longest = lens.iter().copied().max().unwrap_or(0);
    let mut probs = vec![0f32; longest];
    let mut start = 0;
    for &len in lens {
        for head in 0..heads {
            let col = head * head_dim;
            for i in start..start + len {
                let q = &qkv[i * 3 * h + col..i * 3 * h + col + head_dim];
                let p = &mut probs[..len];
                for (j, p) in (start..start + len).zip(p.iter_mut()) {
                    let k = &qkv[j * 3 * h + h + col..j * 3 * h + h + col + head_dim];
                    *p = dot(q, k) * scale;
                }
                softmax_in_place(p);
                let out = &mut ctx[i * h + col..i * h + col + head_dim];
                for (j, &pj) in (start..start + len).zip(p.iter()) {
                    let v = &qkv[j * 3 * h + 2 * h + col..j * 3 * h + 2 * h + col + head_dim];
                    for (o, &vv) in out.iter_mut().zip(v) {
                        *o += pj * vv;
                    }
                }
            }
        }
        start += len;
    }
    ctx
}

/// Lanes of the partial sums in [`dot`] and [`add_layer_norm`]: one 256-bit register of f32.
const LANES: usize = 8;

/// `Σ a[i]·b[i]` in [`LANES`] interleaved partial sums (a fixed order, so fixed bits).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, at) = a.split_at(a.len() - a.len() % LANES);
    let (bc, bt) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(LANES).zip(bc.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = at.iter().zip(bt).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// candle's `softmax_last_dim` on the CPU, for one row: subtract the max, exponentiate, divide
/// by the sum.
fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// `x ← LayerNorm(x + residual)` row by row (`x` and `residual` `[rows, weight.len()]`), as
/// candle's CPU op computes it: f32 sums of the values and their squares, variance as
/// E[x²] − mean².
pub fn add_layer_norm(x: &mut [f32], residual: &[f32], weight: &[f32], bias: &[f32], eps: f32) {
    let n = weight.len();
    assert_eq!(bias.len(), n, "LayerNorm bias and weight differ in size");
    assert_eq!(x.len(), residual.len(), "residual is not the input's shape");
    assert!(
        n > 0 && x.len().is_multiple_of(n),
        "rows are not [rows, {n}]"
    );
    for (row, res) in x.chunks_mut(n).zip(residual.chunks(n)) {
        for (v, &r) in row.iter_mut().zip(res) {
            *v += r;
        }
        let (mut sum, mut sum2) = ([0f32; LANES], [0f32; LANES]);
        let whole = n - n % LANES;
        for c in row[..whole].chunks_exact(LANES) {
            for l in 0..LANES {
                sum[l] += c[l];
                sum2[l] += c[l] * c[l];
            }
        }
        let tail = &row[whole..];
        let sum = sum.iter().sum::<f32>() + tail.iter().sum::<f32>();
        let sum2 = sum2.iter().sum::<f32>() + tail.iter().map(|v| v * v).sum::<f32>();
        let mean = sum / n as f32;
        let var = sum2 / n as f32 - mean * mean;
        let inv_std = (var + eps).sqrt().recip();
        for ((v, &a), &b) in row.iter_mut().zip(weight).zip(bias) {
            *v = (*v - mean) * inv_std * a + b;
        }
    }
}

/// Exact (erf) GELU in place, with [`super::gelu_erf`]'s arithmetic.
pub fn gelu_in_place(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = gelu_scalar(*v);
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// Pseudo-random values in [-2, 2): past GELU's bend and LayerNorm's unit scale.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        super::super::pseudo_random(n, seed)
            .into_iter()
            .map(|v| v * 2.0)
            .collect()
    }

    #[test]
    fn layer_norm_and_gelu_match_the_candle_ops() {
        let dev = Device::Cpu;
        // 46: a tail past the eight-lane sums.
        let (rows, n) = (5, 46);
        let x = values(rows * n, 1);
        let r = values(rows * n, 2);
        let w = values(n, 3);
        let b = values(n, 4);
        let mut got = x.clone();
        add_layer_norm(&mut got, &r, &w, &b, 1e-12);
        let t = |v: &[f32], s: &[usize]| Tensor::from_slice(v, s, &dev).unwrap();
        let sum = (t(&x, &[rows, n]) + t(&r, &[rows, n])).unwrap();
        let want = candle_nn::ops::layer_norm(&sum, &t(&w, &[n]), &t(&b, &[n]), 1e-12)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (i, (a, e)) in got.iter().zip(&want).enumerate() {
            assert!((a - e).abs() < 1e-5, "value {i}: {a} vs {e}");
        }

        let mut g = x.clone();
        gelu_in_place(&mut g);
        let want = super::super::gelu_erf(&t(&x, &[rows, n]))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(g, want);
    }

    /// Against candle's ops on each sequence alone (the padded layer's math without padding).
    #[test]
    fn attention_matches_the_candle_ops_per_sequence() {
        let dev = Device::Cpu;
        // 12: a tail past the eight-lane sums.
        let (heads, d) = (3, 12);
        let h = heads * d;
        let lens = [4usize, 1, 7];
        let t: usize = lens.iter().sum();
        let qkv = values(t * 3 * h, 9);
        let got = packed_attention(&qkv, &lens, heads, d);
        let all = Tensor::from_slice(&qkv, (t, 3 * h), &dev).unwrap();
        let mut start = 0;
        for &len in &lens {
            let seq = all
                .narrow(0, start, len)
                .unwrap()
                .reshape((len, 3, heads, d))
                .unwrap();
            let part = |i: usize| {
                seq.narrow(1, i, 1)
                    .unwrap()
                    .squeeze(1)
                    .unwrap()
                    .transpose(0, 1)
                    .unwrap()
                    .contiguous()
                    .unwrap()
            };
            let (q, k, v) = (part(0), part(1), part(2));
            let scores = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
            let probs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
            let want = probs
                .matmul(&v)
                .unwrap()
                .transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let mine = &got[start * h..(start + len) * h];
            for (i, (a, e)) in mine.iter().zip(&want).enumerate() {
                assert!(
                    (a - e).abs() < 1e-5,
                    "sequence at {start}, value {i}: {a} vs {e}"
                );
            }
            start += len;
        }
    }
}
