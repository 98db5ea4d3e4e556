//! SwiGLU over a fused gate/up projection (`swiglu` in `kernels/decoder.cu`).

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use half::bf16;
use rayon::prelude::*;

use super::{check_dtype, round, slice, Elem};
use crate::layers::exp::exp;

/// `silu(gate) · up` for rows of `[gate (inter values) | up (inter values)]`, with silu's result
/// rounded to the storage type first, as the reference stores it. `[rows, 2·inter]` → `[rows, inter]`.
pub fn swiglu(gate_up: &Tensor) -> Result<Tensor> {
    let (rows, width) = gate_up.dims2()?;
    check_dtype(gate_up.dtype(), "swiglu")?;
    if width % 2 != 0 {
        candle_core::bail!("swiglu: {width} columns are not gate and up halves");
    }
    gate_up.contiguous()?.apply_op1_no_bwd(&Swiglu {
        rows,
        inter: width / 2,
    })
}

struct Swiglu {
    rows: usize,
    inter: usize,
}

impl Swiglu {
    fn run<T: Elem>(&self, gu: &[T]) -> Vec<T> {
        let inter = self.inter;
        let mut out = vec![T::from_f(0.0); self.rows * inter];
        out.par_chunks_mut(inter)
            .zip(gu.par_chunks(2 * inter))
            .for_each(|(o, row)| {
                let (gate, up) = row.split_at(inter);
                for ((o, g), u) in o.iter_mut().zip(gate).zip(up) {
                    let g = g.to_f();
                    *o = T::from_f(round::<T>(g / (1.0 + exp(-g))) * u.to_f());
                }
            });
        out
    }
}

impl CustomOp1 for Swiglu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = match s {
            CpuStorage::F32(_) => CpuStorage::F32(self.run::<f32>(slice(s, l, "swiglu")?)),
            CpuStorage::BF16(_) => CpuStorage::BF16(self.run::<bf16>(slice(s, l, "swiglu")?)),
            _ => candle_core::bail!("swiglu needs f32 or bf16"),
        };
        Ok((out, Shape::from((self.rows, self.inter))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        use candle_core::cuda_backend::WrapErr;

        use super::cuda;

        let dtype = cuda::dtype(s);
        let dev = s.device.clone();
        let f = cuda::kernel!(dev, "swiglu", dtype)?;
        let n = self.rows * self.inter;
        let (rows, inter) = (self.rows as i32, self.inter as i32);
        // A grid-stride loop: enough blocks to fill the GPU, no more than the work.
        let cfg = cuda::grid((n.div_ceil(256).clamp(1, 65_535) as u32, 1), 256);
        macro_rules! launch {
            ($t:ty) => {{
                let gu = cuda::view::<$t>(s, l, "swiglu")?;
                // SAFETY: the grid-stride loop writes all rows·inter values.
                let out = unsafe { dev.alloc::<$t>(n)? };
                let mut b = f.builder();
                b.arg(&gu).arg(&out).arg(&rows).arg(&inter);
                // SAFETY: the arguments match the kernel's signature and the checked shape.
                unsafe { b.launch(cfg) }.w()?;
                candle_core::CudaStorage::wrap_cuda_slice(out, dev.clone())
            }};
        }
        let out = match dtype {
            candle_core::DType::F32 => launch!(f32),
            candle_core::DType::BF16 => launch!(bf16),
            other => candle_core::bail!("swiglu: {other:?} is not supported"),
        };
        Ok((out, Shape::from((self.rows, self.inter))))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::DType;

    use super::super::testing::{rel_err, tensor, to_f32};
    use super::*;

    #[test]
    fn matches_candle_silu_times_up() {
        for (dtype, tol) in [(DType::F32, 1e-5), (DType::BF16, 1e-2)] {
            let gu = tensor(&[9, 2 * 50], 11, dtype);
            let gate = gu.narrow(1, 0, 50).unwrap().to_dtype(DType::F32).unwrap();
            let up = gu.narrow(1, 50, 50).unwrap().to_dtype(DType::F32).unwrap();
            let want = (candle_nn::ops::silu(&gate).unwrap() * up).unwrap();
            let got = swiglu(&gu).unwrap();
            assert_eq!(got.dims(), &[9, 50]);
            let err = rel_err(&to_f32(&got), &to_f32(&want));
            assert!(err < tol, "{dtype:?}: {err}");
        }
        assert!(swiglu(&tensor(&[2, 5], 1, DType::F32)).is_err());
    }
}
