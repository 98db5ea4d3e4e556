//! Grouped-query attention over packed sequences (`varlen_attention_d{D}` in
//! `kernels/decoder.cu`), causal for the decoder and bidirectional for the vision tower: flash
//! style, so no score matrix is ever stored and memory stays proportional to the tokens.

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Result, Shape, Tensor};
use half::bf16;
use rayon::prelude::*;

use super::{check_dtype, slice, Elem};

/// Queries per block, threads per query and keys per tile: the kernel's `BQ`, `TPQ` and `BK`.
const BQ: usize = 32;
const TPQ: usize = 4;
const BK: usize = 32;
/// Head sizes the kernel is instantiated for.
const HEAD_DIMS: [usize; 5] = [16, 32, 64, 80, 128];

/// Where each sequence of a packed batch starts: `cu_seqlens` on the device (`[B + 1]` u32) and
/// the lengths on the host (for launch sizes).
#[derive(Debug, Clone)]
pub struct VarlenSeqs {
    pub lens: Vec<usize>,
    pub cu_seqlens: Tensor,
}

impl VarlenSeqs {
    pub fn new(lens: &[usize], device: &Device) -> Result<Self> {
        let mut cu = Vec::with_capacity(lens.len() + 1);
        let mut total = 0u32;
        cu.push(0);
        for &l in lens {
            if l == 0 {
                candle_core::bail!("varlen: a sequence of length 0");
            }
            total = total
                .checked_add(
                    u32::try_from(l)
                        .map_err(|_| candle_core::Error::Msg("varlen: sequence too long".into()))?,
                )
                .ok_or_else(|| candle_core::Error::Msg("varlen: batch too long".into()))?;
            cu.push(total);
        }
        Ok(VarlenSeqs {
            lens: lens.to_vec(),
            cu_seqlens: Tensor::from_vec(cu, lens.len() + 1, device)?,
        })
    }

    pub fn tokens(&self) -> usize {
        self.lens.iter().sum()
    }

    pub fn max_len(&self) -> usize {
        self.lens.iter().copied().max().unwrap_or(0)
    }
}

/// Attention of every token over its own sequence's causal prefix. `qkv` is
/// `[tokens, (nh + 2·nkv)·d]` after [`super::rope_qkv`] (query heads, key heads, value heads);
/// query head `h` reads key/value head `h / (nh / nkv)`. Scores are scaled by `scale`, the softmax
/// runs in f32. Returns `[tokens, nh·d]`.
pub fn varlen_attention(
    qkv: &Tensor,
    seqs: &VarlenSeqs,
    nh: usize,
    nkv: usize,
    d: usize,
    scale: f32,
) -> Result<Tensor> {
    attention(qkv, seqs, nh, nkv, d, scale, true)
}

/// As [`varlen_attention`], but every token sees every token of its own sequence (the vision
/// tower: a sequence is a window, or a whole image in the full-attention blocks). One launch
/// covers all sequences of a batch, whatever their lengths.
pub fn varlen_attention_bidirectional(
    qkv: &Tensor,
    seqs: &VarlenSeqs,
    nh: usize,
    nkv: usize,
    d: usize,
    scale: f32,
) -> Result<Tensor> {
    attention(qkv, seqs, nh, nkv, d, scale, false)
}

fn attention(
    qkv: &Tensor,
    seqs: &VarlenSeqs,
    nh: usize,
    nkv: usize,
    d: usize,
    scale: f32,
    causal: bool,
) -> Result<Tensor> {
    let (rows, width) = qkv.dims2()?;
    check_dtype(qkv.dtype(), "varlen-attention")?;
    if width != (nh + 2 * nkv) * d
        || nkv == 0
        || !nh.is_multiple_of(nkv)
        || rows != seqs.tokens()
        || !HEAD_DIMS.contains(&d)
        || seqs.cu_seqlens.dtype() != DType::U32
    {
        candle_core::bail!(
            "varlen-attention: qkv {:?} does not fit {nh} + 2·{nkv} heads of {d} (supported: {HEAD_DIMS:?}) over {} tokens",
            qkv.shape(),
            seqs.tokens()
        );
    }
    qkv.contiguous()?.apply_op2_no_bwd(
        &seqs.cu_seqlens,
        &VarlenAttention {
            rows,
            nseq: seqs.lens.len(),
            tiles_per_seq: seqs.max_len().div_ceil(BQ),
            nh,
            nkv,
            d,
            scale,
            causal,
        },
    )
}

struct VarlenAttention {
    rows: usize,
    nseq: usize,
    tiles_per_seq: usize,
    nh: usize,
    nkv: usize,
    d: usize,
    scale: f32,
    causal: bool,
}

impl VarlenAttention {
    /// The kernel, block by block: for each (sequence, query tile, head), keys and values stream
    /// in tiles of `BK`, each query keeps a running max `m`, sum `l` and output `acc`.
    fn run<T: Elem>(&self, qkv: &[T], cu: &[u32]) -> Vec<T> {
        let (nh, nkv, d) = (self.nh, self.nkv, self.d);
        let width = (nh + 2 * nkv) * d;
        let n_rep = nh / nkv;
        let mut out = vec![T::from_f(0.0); self.rows * nh * d];
        // Blocks write disjoint (token, head) rows: run them in parallel, gather, then scatter.
        let blocks: Vec<(usize, usize, usize)> = (0..self.nseq)
            .flat_map(|s| {
                (0..self.tiles_per_seq).flat_map(move |t| (0..nh).map(move |h| (s, t, h)))
            })
            .collect();
        let results: Vec<Vec<(usize, Vec<T>)>> = blocks
            .par_iter()
            .map(|&(seq, tile, head)| {
                let start = cu[seq] as usize;
                let len = cu[seq + 1] as usize - start;
                let q0 = tile * BQ;
                if q0 >= len {
                    return Vec::new();
                }
                let kv_head = head / n_rep;
                let kend = if self.causal { len.min(q0 + BQ) } else { len };
                let mut rows_out = Vec::new();
                for qi in q0..kend {
                    let q: Vec<f32> = qkv[(start + qi) * width + head * d..][..d]
                        .iter()
                        .map(|x| x.to_f() * self.scale)
                        .collect();
                    let (mut m, mut l) = (f32::NEG_INFINITY, 0f32);
                    let mut acc = vec![0f32; d];
                    let mut k0 = 0;
                    while k0 < kend {
                        let mut s = [f32::NEG_INFINITY; BK];
                        let mut tile_max = f32::NEG_INFINITY;
                        for (j, sj) in s.iter_mut().enumerate() {
                            let key = k0 + j;
                            if (self.causal && key > qi) || key >= kend {
                                continue;
                            }
                            let krow = &qkv[(start + key) * width + (nh + kv_head) * d..][..d];
                            // The kernel sums TPQ partial dot products of d/TPQ values each.
                            let dot: f32 = (0..TPQ)
                                .map(|p| {
                                    (p * d / TPQ..(p + 1) * d / TPQ)
                                        .map(|e| q[e] * krow[e].to_f())
                                        .sum::<f32>()
                                })
                                .sum();
                            *sj = dot;
                            tile_max = tile_max.max(dot);
                        }
                        if tile_max != f32::NEG_INFINITY {
                            let m_new = m.max(tile_max);
                            let correction = (m - m_new).exp();
                            l *= correction;
                            acc.iter_mut().for_each(|a| *a *= correction);
                            for (j, &sj) in s.iter().enumerate() {
                                if sj == f32::NEG_INFINITY {
                                    continue;
                                }
                                let p = (sj - m_new).exp();
                                l += p;
                                let vrow = &qkv
                                    [(start + k0 + j) * width + (nh + nkv + kv_head) * d..][..d];
                                for (a, v) in acc.iter_mut().zip(vrow) {
                                    *a += p * v.to_f();
                                }
                            }
                            m = m_new;
                        }
                        k0 += BK;
                    }
                    let inv = if l > 0.0 { 1.0 / l } else { 0.0 };
                    rows_out.push((
                        ((start + qi) * nh + head) * d,
                        acc.iter().map(|a| T::from_f(a * inv)).collect(),
                    ));
                }
                rows_out
            })
            .collect();
        for (at, vals) in results.into_iter().flatten() {
            out[at..at + d].copy_from_slice(&vals);
        }
        out
    }
}

impl CustomOp2 for VarlenAttention {
    fn name(&self) -> &'static str {
        "varlen-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        const OP: &str = "varlen-attention";
        let cu = slice::<u32>(s2, l2, OP)?;
        if cu.len() != self.nseq + 1 || cu[self.nseq] as usize != self.rows {
            candle_core::bail!("{OP}: cu_seqlens do not cover the {} tokens", self.rows);
        }
        let out = match s1 {
            CpuStorage::F32(_) => CpuStorage::F32(self.run::<f32>(slice(s1, l1, OP)?, cu)),
            CpuStorage::BF16(_) => CpuStorage::BF16(self.run::<bf16>(slice(s1, l1, OP)?, cu)),
            _ => candle_core::bail!("{OP} needs f32 or bf16"),
        };
        Ok((out, Shape::from((self.rows, self.nh * self.d))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
        use candle_core::cuda_backend::WrapErr;

        use super::cuda;

        const OP: &str = "varlen-attention";
        let dtype = cuda::dtype(s1);
        let dev = s1.device.clone();
        let f = cuda::kernel!(dev, &format!("varlen_attention_d{}", self.d), dtype)?;
        let cu = cuda::view::<u32>(s2, l2, OP)?;
        let (nseq, tiles, nh, nkv, causal) = (
            self.nseq as i32,
            self.tiles_per_seq as i32,
            self.nh as i32,
            self.nkv as i32,
            i32::from(self.causal),
        );
        let cfg = LaunchConfig {
            grid_dim: ((self.nseq * self.tiles_per_seq) as u32, self.nh as u32, 1),
            block_dim: ((BQ * TPQ) as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        let n = self.rows * self.nh * self.d;
        macro_rules! launch {
            ($t:ty) => {{
                let qkv = cuda::view::<$t>(s1, l1, OP)?;
                // SAFETY: the kernel writes every (token, head) row of its sequences, and the
                // sequences cover all rows (checked on the host when VarlenSeqs was built).
                let out = unsafe { dev.alloc::<$t>(n)? };
                let mut b = f.builder();
                b.arg(&qkv)
                    .arg(&cu)
                    .arg(&out)
                    .arg(&nseq)
                    .arg(&tiles)
                    .arg(&nh)
                    .arg(&nkv)
                    .arg(&self.scale)
                    .arg(&causal);
                // SAFETY: the arguments match the kernel's signature and the checked shapes.
                unsafe { b.launch(cfg) }.w()?;
                candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = match dtype {
            DType::F32 => launch!(f32),
            DType::BF16 => launch!(bf16),
            other => candle_core::bail!("{OP}: {other:?} is not supported"),
        };
        Ok((out, Shape::from((self.rows, self.nh * self.d))))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{rel_err, values};
    use super::*;

    /// Textbook causal attention per sequence, materialised, in f64.
    fn reference(
        qkv: &[f32],
        lens: &[usize],
        nh: usize,
        nkv: usize,
        d: usize,
        scale: f32,
        causal: bool,
    ) -> Vec<f32> {
        let width = (nh + 2 * nkv) * d;
        let rows: usize = lens.iter().sum();
        let mut out = vec![0f32; rows * nh * d];
        let mut start = 0;
        for &len in lens {
            for h in 0..nh {
                let g = h / (nh / nkv);
                for i in 0..len {
                    let q = &qkv[(start + i) * width + h * d..][..d];
                    let visible = if causal { i + 1 } else { len };
                    let sc: Vec<f64> = (0..visible)
                        .map(|j| {
                            let k = &qkv[(start + j) * width + (nh + g) * d..][..d];
                            q.iter()
                                .zip(k)
                                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                                .sum::<f64>()
                                * f64::from(scale)
                        })
                        .collect();
                    let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = sc.iter().map(|s| (s - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    let o = &mut out[((start + i) * nh + h) * d..][..d];
                    for (j, w) in e.iter().enumerate() {
                        let v = &qkv[(start + j) * width + (nh + nkv + g) * d..][..d];
                        for (o, x) in o.iter_mut().zip(v) {
                            *o += (w / z * f64::from(*x)) as f32;
                        }
                    }
                }
            }
            start += len;
        }
        out
    }

    #[test]
    fn matches_the_formula_across_tiles_sequences_and_head_groups() {
        // Lengths around the 32-wide query and key tiles, and one sequence of a single token.
        let lens = [1, 31, 32, 33, 70];
        let (nh, nkv) = (6, 2);
        for (d, dtype, tol) in [
            (16, DType::F32, 1e-5),
            (32, DType::F32, 1e-5),
            (16, DType::BF16, 2e-2),
        ] {
            let rows: usize = lens.iter().sum();
            let width = (nh + 2 * nkv) * d;
            let raw = values(rows * width, d as u64);
            let qkv = Tensor::from_vec(raw, (rows, width), &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            // The reference reads what the op reads: the values after rounding to the dtype.
            let exact = super::super::testing::to_f32(&qkv);
            let seqs = VarlenSeqs::new(&lens, &Device::Cpu).unwrap();
            let scale = 1.0 / (d as f32).sqrt();
            let got = varlen_attention(&qkv, &seqs, nh, nkv, d, scale).unwrap();
            assert_eq!(got.dims(), &[rows, nh * d]);
            let want = reference(&exact, &lens, nh, nkv, d, scale, true);
            let err = rel_err(&super::super::testing::to_f32(&got), &want);
            assert!(err < tol, "d {d} {dtype:?}: {err}");
        }
    }

    #[test]
    fn bidirectional_matches_the_formula() {
        // Window-like and image-like lengths (64 = a full 4×4 window of 2×2 patches), one
        // sequence shorter than a tile, and the vision tower's head size 80.
        let lens = [64, 48, 7, 100];
        for (nh, d, dtype, tol) in [
            (2, 16, DType::F32, 1e-5),
            (3, 80, DType::F32, 1e-5),
            (2, 80, DType::BF16, 2e-2),
        ] {
            let rows: usize = lens.iter().sum();
            let width = 3 * nh * d;
            let qkv = Tensor::from_vec(
                values(rows * width, 3 + d as u64),
                (rows, width),
                &Device::Cpu,
            )
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
            let exact = super::super::testing::to_f32(&qkv);
            let seqs = VarlenSeqs::new(&lens, &Device::Cpu).unwrap();
            let scale = 1.0 / (d as f32).sqrt();
            let got = varlen_attention_bidirectional(&qkv, &seqs, nh, nh, d, scale).unwrap();
            let want = reference(&exact, &lens, nh, nh, d, scale, false);
            let err = rel_err(&super::super::testing::to_f32(&got), &want);
            assert!(err < tol, "d {d} {dtype:?}: {err}");
            // The causal result differs (the test would pass for a causal kernel otherwise).
            let causal = reference(&exact, &lens, nh, nh, d, scale, true);
            assert!(rel_err(&super::super::testing::to_f32(&got), &causal) > 1e-2);
        }
    }

    #[test]
    fn matches_the_padded_cpu_kernel() {
        // The same sequences through the padded fused CPU attention, one at a time.
        let lens = [5, 40];
        let (nh, nkv, d) = (4, 2, 16);
        let width = (nh + 2 * nkv) * d;
        let rows: usize = lens.iter().sum();
        let qkv = Tensor::from_vec(values(rows * width, 9), (rows, width), &Device::Cpu).unwrap();
        let seqs = VarlenSeqs::new(&lens, &Device::Cpu).unwrap();
        let got = varlen_attention(&qkv, &seqs, nh, nkv, d, 0.25).unwrap();
        let mut start = 0;
        for &len in &lens {
            let part = qkv.narrow(0, start, len).unwrap();
            let heads = |from: usize, n: usize| {
                part.narrow(1, from * d, n * d)
                    .unwrap()
                    .reshape((1, len, n, d))
                    .unwrap()
            };
            let want = crate::layers::causal_attention::causal_attention(
                &heads(0, nh),
                &heads(nh, nkv),
                &heads(nh + nkv, nkv),
                None,
                0.25,
            )
            .unwrap()
            .reshape((len, nh * d))
            .unwrap();
            let diff = crate::layers::max_abs_diff(&got.narrow(0, start, len).unwrap(), &want);
            assert!(diff < 1e-5, "{diff}");
            start += len;
        }
    }

    #[test]
    fn refuses_unsupported_head_sizes_and_token_counts() {
        let seqs = VarlenSeqs::new(&[3], &Device::Cpu).unwrap();
        let qkv = Tensor::zeros((3, 3 * 24), DType::F32, &Device::Cpu).unwrap();
        assert!(varlen_attention(&qkv, &seqs, 1, 1, 24, 1.0).is_err());
        let qkv = Tensor::zeros((4, 3 * 16), DType::F32, &Device::Cpu).unwrap();
        assert!(varlen_attention(&qkv, &seqs, 1, 1, 16, 1.0).is_err());
        assert!(VarlenSeqs::new(&[2, 0], &Device::Cpu).is_err());
    }
}
