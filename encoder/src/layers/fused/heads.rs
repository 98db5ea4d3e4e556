//! The pooling heads over a packed batch: per-sequence mean and row-wise L2 normalisation
//! (`segment_mean` and `l2_normalize_rows` in `kernels/decoder.cu`).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use half::bf16;

use super::{check_dtype, round, slice, Elem, VarlenSeqs};

/// The mean of each sequence's rows of a packed `[tokens, n]` activation, in f32: `[B, n]`.
pub fn segment_mean(x: &Tensor, seqs: &VarlenSeqs) -> Result<Tensor> {
    let (rows, n) = x.dims2()?;
    check_dtype(x.dtype(), "segment-mean")?;
    if rows != seqs.tokens() {
        candle_core::bail!("segment-mean: {rows} rows for {} tokens", seqs.tokens());
    }
    x.contiguous()?.apply_op2_no_bwd(
        &seqs.cu_seqlens,
        &SegmentMean {
            nseq: seqs.lens.len(),
            n,
        },
    )
}

/// Rows (plus `bias`, rounded to the storage type as a projection's output is) divided by their
/// L2 norm, floored at 1e-12 as torch's `F.normalize`; f32 out.
pub fn l2_normalize_rows(x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (rows, n) = x.dims2()?;
    check_dtype(x.dtype(), "l2-normalize")?;
    let op = L2Normalize { rows, n };
    match bias {
        Some(b) => {
            if b.dims1()? != n || b.dtype() != x.dtype() {
                candle_core::bail!("l2-normalize: bias {:?} for rows of {n}", b.shape());
            }
            x.contiguous()?.apply_op2_no_bwd(&b.contiguous()?, &op)
        }
        None => x.contiguous()?.apply_op1_no_bwd(&op),
    }
}

struct SegmentMean {
    nseq: usize,
    n: usize,
}

impl SegmentMean {
    fn run<T: Elem>(&self, x: &[T], cu: &[u32]) -> Vec<f32> {
        let n = self.n;
        let mut out = vec![0f32; self.nseq * n];
        for (s, o) in out.chunks_mut(n).enumerate() {
            let (a, b) = (cu[s] as usize, cu[s + 1] as usize);
            for (c, o) in o.iter_mut().enumerate() {
                let sum: f32 = (a..b).map(|r| x[r * n + c].to_f()).sum();
                *o = if b > a { sum / (b - a) as f32 } else { 0.0 };
            }
        }
        out
    }
}

impl CustomOp2 for SegmentMean {
    fn name(&self) -> &'static str {
        "segment-mean"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        const OP: &str = "segment-mean";
        let cu = slice::<u32>(s2, l2, OP)?;
        if cu.len() != self.nseq + 1 {
            candle_core::bail!("{OP}: {} offsets for {} sequences", cu.len(), self.nseq);
        }
        let out = match s1 {
            CpuStorage::F32(_) => self.run::<f32>(slice(s1, l1, OP)?, cu),
            CpuStorage::BF16(_) => self.run::<bf16>(slice(s1, l1, OP)?, cu),
            _ => candle_core::bail!("{OP} needs f32 or bf16"),
        };
        Ok((CpuStorage::F32(out), Shape::from((self.nseq, self.n))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        use candle_core::cuda_backend::WrapErr;

        use super::cuda;

        const OP: &str = "segment-mean";
        let dtype = cuda::dtype(s1);
        let dev = s1.device.clone();
        let f = cuda::kernel!(dev, "segment_mean", dtype)?;
        let cu = cuda::view::<u32>(s2, l2, OP)?;
        // SAFETY: one thread per (sequence, column) writes every output value.
        let out = unsafe { dev.alloc::<f32>(self.nseq * self.n)? };
        let (nseq, n) = (self.nseq as i32, self.n as i32);
        let cfg = cuda::grid((self.nseq as u32, self.n.div_ceil(256) as u32), 256);
        macro_rules! launch {
            ($t:ty) => {{
                let x = cuda::view::<$t>(s1, l1, OP)?;
                let mut b = f.builder();
                b.arg(&x).arg(&cu).arg(&out).arg(&nseq).arg(&n);
                // SAFETY: the arguments match the kernel's signature and the checked shapes.
                unsafe { b.launch(cfg) }.w()?;
            }};
        }
        match dtype {
            candle_core::DType::F32 => launch!(f32),
            candle_core::DType::BF16 => launch!(bf16),
            other => candle_core::bail!("{OP}: {other:?} is not supported"),
        }
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev),
            Shape::from((self.nseq, self.n)),
        ))
    }
}

struct L2Normalize {
    rows: usize,
    n: usize,
}

impl L2Normalize {
    fn run<T: Elem>(&self, x: &[T], bias: Option<&[T]>) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.n];
        for (o, xr) in out.chunks_mut(self.n).zip(x.chunks(self.n)) {
            let mut ss = 0f32;
            for (i, (o, v)) in o.iter_mut().zip(xr).enumerate() {
                *o = match bias {
                    Some(b) => round::<T>(v.to_f() + b[i].to_f()),
                    None => v.to_f(),
                };
                ss += *o * *o;
            }
            let inv = 1.0 / ss.sqrt().max(1e-12);
            o.iter_mut().for_each(|v| *v *= inv);
        }
        out
    }

    fn cpu(
        &self,
        x: (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        const OP: &str = "l2-normalize";
        let out = match x.0 {
            CpuStorage::F32(_) => self.run::<f32>(
                slice(x.0, x.1, OP)?,
                bias.map(|(s, l)| slice(s, l, OP)).transpose()?,
            ),
            CpuStorage::BF16(_) => self.run::<bf16>(
                slice(x.0, x.1, OP)?,
                bias.map(|(s, l)| slice(s, l, OP)).transpose()?,
            ),
            _ => candle_core::bail!("{OP} needs f32 or bf16"),
        };
        Ok((CpuStorage::F32(out), Shape::from((self.rows, self.n))))
    }

    #[cfg(feature = "cuda")]
    fn cuda(
        &self,
        x: (&candle_core::CudaStorage, &Layout),
        bias: Option<(&candle_core::CudaStorage, &Layout)>,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        use candle_core::cuda_backend::WrapErr;

        use super::cuda;

        const OP: &str = "l2-normalize";
        let dtype = cuda::dtype(x.0);
        let dev = x.0.device.clone();
        let f = cuda::kernel!(dev, "l2_normalize_rows", dtype)?;
        // SAFETY: one block per row writes all of it.
        let out = unsafe { dev.alloc::<f32>(self.rows * self.n)? };
        let (rows, n) = (self.rows as i32, self.n as i32);
        let cfg = cuda::grid((self.rows as u32, 1), 256);
        let null = 0u64;
        macro_rules! launch {
            ($t:ty) => {{
                let xs = cuda::view::<$t>(x.0, x.1, OP)?;
                let bs = bias.map(|(s, l)| cuda::view::<$t>(s, l, OP)).transpose()?;
                let mut b = f.builder();
                b.arg(&xs);
                match &bs {
                    Some(bs) => b.arg(bs),
                    None => b.arg(&null),
                };
                b.arg(&out).arg(&rows).arg(&n);
                // SAFETY: the arguments match the kernel's signature and the checked shapes.
                unsafe { b.launch(cfg) }.w()?;
            }};
        }
        match dtype {
            candle_core::DType::F32 => launch!(f32),
            candle_core::DType::BF16 => launch!(bf16),
            other => candle_core::bail!("{OP}: {other:?} is not supported"),
        }
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev),
            Shape::from((self.rows, self.n)),
        ))
    }
}

impl CustomOp1 for L2Normalize {
    fn name(&self) -> &'static str {
        "l2-normalize"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        self.cpu((s, l), None)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        self.cuda((s, l), None)
    }
}

impl CustomOp2 for L2Normalize {
    fn name(&self) -> &'static str {
        "l2-normalize-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.cpu((s1, l1), Some((s2, l2)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        self.cuda((s1, l1), Some((s2, l2)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::super::testing::{rel_err, tensor, to_f32};
    use super::*;
    use crate::layers::{l2_normalize, mean_pool};

    #[test]
    fn segment_mean_matches_the_masked_mean_of_the_padded_rows() {
        let lens = [3, 1, 5];
        let n = 12;
        let seqs = VarlenSeqs::new(&lens, &Device::Cpu).unwrap();
        for dtype in [DType::F32, DType::BF16] {
            let x = tensor(&[9, n], 21, dtype);
            let got = segment_mean(&x, &seqs).unwrap();
            // The same rows right-padded into [3, 5, n] with a mask.
            let xf = x.to_dtype(DType::F32).unwrap();
            let mut rows = Vec::new();
            let mut mask = Vec::new();
            let mut start = 0;
            for &l in &lens {
                rows.push(
                    xf.narrow(0, start, l)
                        .unwrap()
                        .pad_with_zeros(0, 0, 5 - l)
                        .unwrap(),
                );
                mask.extend((0..5).map(|i| u32::from(i < l)));
                start += l;
            }
            let padded = Tensor::stack(&rows, 0).unwrap();
            let mask = Tensor::from_vec(mask, (3, 5), &Device::Cpu).unwrap();
            let want = mean_pool(&padded, &mask).unwrap();
            assert!(rel_err(&to_f32(&got), &to_f32(&want)) < 1e-6, "{dtype:?}");
        }
    }

    #[test]
    fn normalisation_with_and_without_bias() {
        let x = tensor(&[4, 10], 31, DType::F32);
        let b = tensor(&[10], 32, DType::F32);
        let want = l2_normalize(&x).unwrap();
        assert!(
            rel_err(
                &to_f32(&l2_normalize_rows(&x, None).unwrap()),
                &to_f32(&want)
            ) < 1e-6
        );
        let want = l2_normalize(&x.broadcast_add(&b).unwrap()).unwrap();
        let got = l2_normalize_rows(&x, Some(&b)).unwrap();
        assert!(rel_err(&to_f32(&got), &to_f32(&want)) < 1e-6);
        // A zero row stays zero instead of dividing by zero.
        let z = Tensor::zeros((1, 10), DType::BF16, &Device::Cpu).unwrap();
        assert_eq!(
            to_f32(&l2_normalize_rows(&z, None).unwrap()),
            vec![0f32; 10]
        );
    }
}
