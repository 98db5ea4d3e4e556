//! Residual add and RMSNorm in one pass (`add_rms_norm` in `kernels/decoder.cu`).

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use half::bf16;
use rayon::prelude::*;

use super::{check_dtype, slice, Elem};

/// `residual = x + delta` (rounded to the storage type, as the reference adds in the model dtype)
/// and `normed = weight · residual / √(mean(residual²) + eps)`, per row of `[rows, n]` tensors.
/// Without `delta` the residual is `x`. Returns `(residual, normed)`: two halves of one buffer
/// written by one kernel.
pub fn add_rms_norm(
    x: &Tensor,
    delta: Option<&Tensor>,
    weight: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor)> {
    let (rows, n) = x.dims2()?;
    check_dtype(x.dtype(), "add-rms-norm")?;
    if weight.dims1()? != n
        || weight.dtype() != x.dtype()
        || delta.is_some_and(|d| d.dims() != x.dims() || d.dtype() != x.dtype())
    {
        candle_core::bail!(
            "add-rms-norm: x {:?}, delta {:?}, weight {:?} do not fit",
            x.shape(),
            delta.map(|d| d.shape().clone()),
            weight.shape()
        );
    }
    let op = AddRmsNorm { rows, n, eps };
    let both = match delta {
        Some(d) => {
            x.contiguous()?
                .apply_op3_no_bwd(&d.contiguous()?, &weight.contiguous()?, &op)?
        }
        None => x
            .contiguous()?
            .apply_op2_no_bwd(&weight.contiguous()?, &op)?,
    };
    Ok((both.get(0)?, both.get(1)?))
}

struct AddRmsNorm {
    rows: usize,
    n: usize,
    eps: f32,
}

impl AddRmsNorm {
    /// The kernel's math, one row at a time (a block per row there).
    fn run<T: Elem>(&self, x: &[T], delta: Option<&[T]>, w: &[T]) -> Vec<T> {
        let n = self.n;
        let mut out = vec![T::from_f(0.0); 2 * self.rows * n];
        let (res, normed) = out.split_at_mut(self.rows * n);
        res.par_chunks_mut(n)
            .zip(normed.par_chunks_mut(n))
            .enumerate()
            .for_each(|(r, (res, normed))| {
                let xr = &x[r * n..(r + 1) * n];
                let mut ss = 0f32;
                for i in 0..n {
                    let d = delta.map_or(0.0, |d| d[r * n + i].to_f());
                    res[i] = T::from_f(xr[i].to_f() + d);
                    let v = res[i].to_f();
                    ss += v * v;
                }
                let inv = 1.0 / (ss / n as f32 + self.eps).sqrt();
                for i in 0..n {
                    normed[i] = T::from_f(res[i].to_f() * inv * w[i].to_f());
                }
            });
        out
    }

    fn cpu(
        &self,
        x: (&CpuStorage, &Layout),
        d: Option<(&CpuStorage, &Layout)>,
        w: (&CpuStorage, &Layout),
    ) -> Result<(CpuStorage, Shape)> {
        const OP: &str = "add-rms-norm";
        let out = match x.0 {
            CpuStorage::F32(_) => CpuStorage::F32(self.run::<f32>(
                slice(x.0, x.1, OP)?,
                d.map(|(s, l)| slice(s, l, OP)).transpose()?,
                slice(w.0, w.1, OP)?,
            )),
            CpuStorage::BF16(_) => CpuStorage::BF16(self.run::<bf16>(
                slice(x.0, x.1, OP)?,
                d.map(|(s, l)| slice(s, l, OP)).transpose()?,
                slice(w.0, w.1, OP)?,
            )),
            _ => candle_core::bail!("{OP} needs f32 or bf16"),
        };
        Ok((out, Shape::from((2, self.rows, self.n))))
    }

    #[cfg(feature = "cuda")]
    fn cuda(
        &self,
        x: (&candle_core::CudaStorage, &Layout),
        d: Option<(&candle_core::CudaStorage, &Layout)>,
        w: (&candle_core::CudaStorage, &Layout),
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        use candle_core::cuda_backend::{CudaDType, WrapErr};

        use super::cuda;

        fn go<T: CudaDType + candle_core::cuda_backend::cudarc::driver::DeviceRepr>(
            op: &AddRmsNorm,
            x: (&candle_core::CudaStorage, &Layout),
            d: Option<(&candle_core::CudaStorage, &Layout)>,
            w: (&candle_core::CudaStorage, &Layout),
        ) -> Result<candle_core::CudaStorage> {
            const OP: &str = "add-rms-norm";
            let dev = &x.0.device;
            let xs = cuda::view::<T>(x.0, x.1, OP)?;
            let ws = cuda::view::<T>(w.0, w.1, OP)?;
            let ds = d.map(|(s, l)| cuda::view::<T>(s, l, OP)).transpose()?;
            // SAFETY: every element is written by the kernel before it is read.
            let out = unsafe { dev.alloc::<T>(2 * op.rows * op.n)? };
            let f = cuda::kernel!(dev, "add_rms_norm", cuda::dtype(x.0))?;
            let (rows, n) = (op.rows as i32, op.n as i32);
            let null = 0u64;
            let mut b = f.builder();
            b.arg(&xs);
            match &ds {
                Some(ds) => b.arg(ds),
                None => b.arg(&null),
            };
            b.arg(&ws).arg(&out).arg(&rows).arg(&n).arg(&op.eps);
            // SAFETY: the arguments match the kernel's signature; `out` holds 2·rows·n values and
            // the inputs rows·n (checked by `add_rms_norm`).
            unsafe { b.launch(cuda::grid((op.rows as u32, 1), 256)) }.w()?;
            Ok(candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone()))
        }
        let out = match cuda::dtype(x.0) {
            candle_core::DType::F32 => go::<f32>(self, x, d, w)?,
            candle_core::DType::BF16 => go::<bf16>(self, x, d, w)?,
            other => candle_core::bail!("add-rms-norm: {other:?} is not supported"),
        };
        Ok((out, Shape::from((2, self.rows, self.n))))
    }
}

impl CustomOp3 for AddRmsNorm {
    fn name(&self) -> &'static str {
        "add-rms-norm"
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
        self.cpu((s1, l1), Some((s2, l2)), (s3, l3))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        self.cuda((s1, l1), Some((s2, l2)), (s3, l3))
    }
}

impl CustomOp2 for AddRmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.cpu((s1, l1), None, (s2, l2))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        self.cuda((s1, l1), None, (s2, l2))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::DType;

    use super::super::testing::{rel_err, tensor, to_f32};
    use super::*;

    /// Textbook RMSNorm in f64 over `x + delta`.
    fn reference(x: &[f32], d: &[f32], w: &[f32], n: usize, eps: f64) -> (Vec<f32>, Vec<f32>) {
        let res: Vec<f32> = x.iter().zip(d).map(|(a, b)| a + b).collect();
        let mut normed = Vec::new();
        for row in res.chunks(n) {
            let ms = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n as f64;
            let inv = 1.0 / (ms + eps).sqrt();
            normed.extend(
                row.iter()
                    .zip(w)
                    .map(|(&v, &w)| (f64::from(v) * inv) as f32 * w),
            );
        }
        (res, normed)
    }

    #[test]
    fn matches_the_formula_with_and_without_delta() {
        let (rows, n) = (5, 300);
        for (dtype, tol) in [(DType::F32, 1e-5), (DType::BF16, 2e-2)] {
            let x = tensor(&[rows, n], 1, dtype);
            let d = tensor(&[rows, n], 2, dtype);
            let w = tensor(&[n], 3, dtype);
            let (res, normed) = add_rms_norm(&x, Some(&d), &w, 1e-6).unwrap();
            assert_eq!(normed.dims(), &[rows, n]);
            let (want_res, want_normed) = reference(&to_f32(&x), &to_f32(&d), &to_f32(&w), n, 1e-6);
            assert!(rel_err(&to_f32(&res), &want_res) < tol, "{dtype:?}");
            assert!(rel_err(&to_f32(&normed), &want_normed) < tol, "{dtype:?}");
            let (res, normed) = add_rms_norm(&x, None, &w, 1e-6).unwrap();
            let zeros = vec![0f32; rows * n];
            let (want_res, want_normed) = reference(&to_f32(&x), &zeros, &to_f32(&w), n, 1e-6);
            assert_eq!(to_f32(&res), want_res, "{dtype:?}: x passes through");
            assert!(rel_err(&to_f32(&normed), &want_normed) < tol, "{dtype:?}");
        }
    }

    #[test]
    fn matches_candle_rms_norm() {
        let x = tensor(&[7, 64], 4, DType::F32);
        let w = tensor(&[64], 5, DType::F32);
        let (_, normed) = add_rms_norm(&x, None, &w, 1e-6).unwrap();
        let want = candle_nn::ops::rms_norm(&x, &w, 1e-6).unwrap();
        assert!(rel_err(&to_f32(&normed), &to_f32(&want)) < 1e-6);
    }

    #[test]
    fn refuses_mismatched_shapes() {
        let x = tensor(&[2, 8], 1, DType::F32);
        assert!(add_rms_norm(&x, None, &tensor(&[7], 1, DType::F32), 1e-6).is_err());
        assert!(add_rms_norm(
            &x,
            Some(&tensor(&[2, 7], 1, DType::F32)),
            &tensor(&[8], 1, DType::F32),
            1e-6
        )
        .is_err());
    }
}
