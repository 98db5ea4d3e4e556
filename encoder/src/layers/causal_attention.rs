//! Causal grouped-query attention on CPU in f32, one block of queries at a time.
//!
//! The generic path (candle matmul, additive mask, softmax, matmul) scores every query against
//! every key, the masked upper triangle included, materialises the whole score tensor and walks
//! it three more times, with libm exponentials. Here each (sequence, head, block of queries)
//! scores only its causal prefix of keys with one small GEMM, takes the softmax in place with a
//! vectorised exp, and multiplies by V with a second GEMM straight into the output rows: the
//! fused attention PyTorch's sdpa runs on CPU. About half the score work of the square, and
//! the scores of a block stay in cache.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_f32s;
use super::exp::exp;

/// Queries per block: one block's scores (64 × keys) stay in L2 for any length we run.
const BLOCK: usize = 64;

/// Attention of `q [B, L, H, D]` over `k`, `v [B, L, KVH, D]` (H a multiple of KVH), causal,
/// with keys where `key_valid[b·L + j]` is false left out (padding). Returns `[B, L, H·D]`.
/// A query with no visible key (a left-pad slot) gets a zero output.
///
/// For f32 tensors on the CPU only; [`supported`] says when it applies.
pub fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    key_valid: Option<Arc<Vec<bool>>>,
    scale: f32,
) -> Result<Tensor> {
    let (b, l, h, d) = q.dims4()?;
    let (kb, kl, kvh, kd) = k.dims4()?;
    if (kb, kl, kd) != (b, l, d) || v.dims4()? != (b, l, kvh, d) || kvh == 0 || h % kvh != 0 {
        candle_core::bail!(
            "causal attention: q {:?}, k {:?}, v {:?} do not fit together",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    if key_valid.as_ref().is_some_and(|m| m.len() != b * l) {
        candle_core::bail!("causal attention: key mask is not B·L long");
    }
    q.contiguous()?.apply_op3_no_bwd(
        &k.contiguous()?,
        &v.contiguous()?,
        &CausalAttention {
            dims: Dims { b, l, h, kvh, d },
            key_valid,
            scale,
        },
    )
}

/// True when [`causal_attention`] can run these tensors.
pub fn supported(q: &Tensor) -> bool {
    matches!(q.device(), Device::Cpu) && q.dtype() == DType::F32
}

#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    l: usize,
    h: usize,
    kvh: usize,
    d: usize,
}

struct CausalAttention {
    dims: Dims,
    key_valid: Option<Arc<Vec<bool>>>,
    scale: f32,
}

/// The output buffer, written by many tasks at disjoint rows × heads.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every task writes a distinct (sequence, query, head) slice of the buffer (see
// `cpu_fwd`), and the buffer outlives the parallel loop.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// A method, not a field access, so closures capture the Sync wrapper and not the raw pointer.
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

impl CustomOp3 for CausalAttention {
    fn name(&self) -> &'static str {
        "causal-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Dims { b, l, h, kvh, d } = self.dims;
        let (q, k, v) = (
            cpu_f32s(s1, l1, "causal attention")?,
            cpu_f32s(s2, l2, "causal attention")?,
            cpu_f32s(s3, l3, "causal attention")?,
        );
        if q.len() != b * l * h * d || k.len() != b * l * kvh * d || v.len() != k.len() {
            candle_core::bail!("causal attention: tensor sizes do not match their shapes");
        }
        let mut out = vec![0f32; b * l * h * d];
        let out_ptr = OutPtr(out.as_mut_ptr());
        let blocks = l.div_ceil(BLOCK);
        let (q_rs, kv_rs, o_rs) = (h * d, kvh * d, h * d);
        let n_rep = h / kvh;
        let valid = self.key_valid.as_deref().map(Vec::as_slice);
        // Longest blocks (the last ones, with the most keys) first, for a balanced pool.
        (0..b * h * blocks)
            .into_par_iter()
            .map(|t| b * h * blocks - 1 - t)
            .for_each_init(Vec::new, |scores: &mut Vec<f32>, task| {
                let (seq, rest) = (task / (h * blocks), task % (h * blocks));
                let (blk, head) = (rest / h, rest % h);
                let q0 = blk * BLOCK;
                let cq = BLOCK.min(l - q0);
                let kend = q0 + cq;
                let kv_head = head / n_rep;
                let q_at = (seq * l + q0) * q_rs + head * d;
                let kv_at = seq * l * kv_rs + kv_head * d;
                scores.clear();
                scores.resize(cq * kend, 0.0);
                // SAFETY (both GEMMs): every (row, column) the strides reach is inside the
                // slices, by the size checks above: rows q0..kend of one sequence, columns
                // 0..d of one head. The output rows are this task's own (see OutPtr).
                unsafe {
                    // scores[cq × kend] = scale · Q[q0.., head] · K[..kend, kv_head]ᵀ
                    gemm::gemm(
                        cq,
                        kend,
                        d,
                        scores.as_mut_ptr(),
                        1,
                        kend as isize,
                        false,
                        q.as_ptr().add(q_at),
                        1,
                        q_rs as isize,
                        k.as_ptr().add(kv_at),
                        kv_rs as isize,
                        1,
                        0.0,
                        self.scale,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                let key_ok = valid.map(|m| &m[seq * l..seq * l + kend]);
                for (i, row) in scores.chunks_exact_mut(kend).enumerate() {
                    softmax_causal(row, q0 + i + 1, key_ok);
                }
                unsafe {
                    // out[q0.., head] = P[cq × kend] · V[..kend, kv_head]
                    gemm::gemm(
                        cq,
                        d,
                        kend,
                        out_ptr.at((seq * l + q0) * o_rs + head * d),
                        1,
                        o_rs as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        kend as isize,
                        v.as_ptr().add(kv_at),
                        1,
                        kv_rs as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b, l, h * d))))
    }
}

/// Softmax of `row[..visible]` over the keys `key_ok` lets through, in place; every other entry
/// becomes 0. A row with no visible key becomes all zeros.
fn softmax_causal(row: &mut [f32], visible: usize, key_ok: Option<&[bool]>) {
    let (live, hidden) = row.split_at_mut(visible);
    hidden.fill(0.0);
    if let Some(ok) = key_ok {
        let mut any = false;
        for (s, &ok) in live.iter_mut().zip(ok) {
            if ok {
                any = true;
            } else {
                *s = f32::NEG_INFINITY;
            }
        }
        if !any {
            live.fill(0.0);
            return;
        }
    }
    let max = max(live);
    for s in live.iter_mut() {
        // exp clamps at -87, so a masked -inf becomes ~1e-38: zero it exactly.
        *s = if *s == f32::NEG_INFINITY {
            0.0
        } else {
            exp(*s - max)
        };
    }
    let inv = 1.0 / sum(live);
    for s in live.iter_mut() {
        *s *= inv;
    }
}

/// Eight running lanes, so the reduction vectorises (a plain fold is a serial dependency).
fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = if x > *m { x } else { *m };
        }
    }
    let mut m = lanes.into_iter().fold(f32::NEG_INFINITY, f32::max);
    for &x in chunks.remainder() {
        m = m.max(x);
    }
    m
}

fn sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (s, &x) in lanes.iter_mut().zip(c) {
            *s += x;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: the textbook formula, materialised, in f64.
    fn reference(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        dims: Dims,
        valid: Option<&[bool]>,
        scale: f32,
    ) -> Vec<f32> {
        let Dims { b, l, h, kvh, d } = dims;
        let mut out = vec![0f32; b * l * h * d];
        for s in 0..b {
            for hd in 0..h {
                let g = hd / (h / kvh);
                for i in 0..l {
                    let qi = &q[((s * l + i) * h + hd) * d..][..d];
                    let keys: Vec<usize> = (0..=i)
                        .filter(|&j| valid.is_none_or(|m| m[s * l + j]))
                        .collect();
                    if keys.is_empty() {
                        continue;
                    }
                    let sc: Vec<f64> = keys
                        .iter()
                        .map(|&j| {
                            let kj = &k[((s * l + j) * kvh + g) * d..][..d];
                            qi.iter()
                                .zip(kj)
                                .map(|(a, b)| f64::from(a * b))
                                .sum::<f64>()
                                * f64::from(scale)
                        })
                        .collect();
                    let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = sc.iter().map(|s| (s - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for (w, &j) in e.iter().zip(&keys) {
                        let vj = &v[((s * l + j) * kvh + g) * d..][..d];
                        let o = &mut out[((s * l + i) * h + hd) * d..][..d];
                        for (o, &x) in o.iter_mut().zip(vj) {
                            *o += (w / z * f64::from(x)) as f32;
                        }
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn matches_the_formula_across_blocks_heads_and_padding() {
        let dev = Device::Cpu;
        // 150 tokens: two full blocks and a partial one; 6 heads over 2 KV heads.
        let dims = Dims {
            b: 2,
            l: 150,
            h: 6,
            kvh: 2,
            d: 16,
        };
        let Dims { b, l, h, kvh, d } = dims;
        let (q, k, v) = (
            values(b * l * h * d, 1),
            values(b * l * kvh * d, 2),
            values(b * l * kvh * d, 3),
        );
        // Sequence 0 right-padded after 100 tokens, sequence 1 left-padded by 30.
        let mut valid = vec![true; b * l];
        valid[100..l].fill(false);
        valid[l..l + 30].fill(false);
        let qt = Tensor::from_vec(q.clone(), (b, l, h, d), &dev).unwrap();
        let kt = Tensor::from_vec(k.clone(), (b, l, kvh, d), &dev).unwrap();
        let vt = Tensor::from_vec(v.clone(), (b, l, kvh, d), &dev).unwrap();
        for mask in [None, Some(valid)] {
            let got = causal_attention(&qt, &kt, &vt, mask.clone().map(Arc::new), 0.25)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let want = reference(&q, &k, &v, dims, mask.as_deref(), 0.25);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "mask {}: {worst}", mask.is_some());
        }
    }

    #[test]
    fn refuses_shapes_that_do_not_fit() {
        let dev = Device::Cpu;
        let q = Tensor::zeros((1, 4, 3, 8), DType::F32, &dev).unwrap();
        let kv = Tensor::zeros((1, 4, 2, 8), DType::F32, &dev).unwrap();
        assert!(causal_attention(&q, &kv, &kv, None, 1.0).is_err());
    }
}
