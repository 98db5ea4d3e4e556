//! Projection bias plus rotary embedding of a packed QKV activation, in place (`rope_qkv` in
//! `kernels/decoder.cu`).

use candle_core::{CpuStorage, DType, InplaceOp3, Layout, Result, Tensor};
use half::bf16;

use super::{check_dtype, round, slice, Elem};

/// Adds `bias` to every head of `qkv` (`[tokens, (nh + 2·nkv)·d]`: query heads, key heads, value
/// heads) and rotates the query and key heads by the angles of `cos_sin` (`[tokens, 2, d/2]` f32:
/// each token's cosines, then its sines), in the rotate-half layout of Qwen2 (value `j` pairs with
/// `j + d/2`). Value heads get the bias only.
pub fn rope_qkv(
    qkv: &Tensor,
    bias: &Tensor,
    cos_sin: &Tensor,
    nh: usize,
    nkv: usize,
    d: usize,
) -> Result<()> {
    let (rows, width) = qkv.dims2()?;
    check_dtype(qkv.dtype(), "rope-qkv")?;
    if width != (nh + 2 * nkv) * d
        || !d.is_multiple_of(2)
        || bias.dims1()? != width
        || bias.dtype() != qkv.dtype()
        || cos_sin.dims3()? != (rows, 2, d / 2)
        || cos_sin.dtype() != DType::F32
        || !qkv.is_contiguous()
    {
        candle_core::bail!(
            "rope-qkv: qkv {:?} (contiguous: {}), bias {:?}, cos_sin {:?} do not fit {nh} + 2·{nkv} \
             heads of {d}",
            qkv.shape(),
            qkv.is_contiguous(),
            bias.shape(),
            cos_sin.shape()
        );
    }
    qkv.inplace_op3(
        &bias.contiguous()?,
        &cos_sin.contiguous()?,
        &RopeQkv { rows, nh, nkv, d },
    )
}

struct RopeQkv {
    rows: usize,
    nh: usize,
    nkv: usize,
    d: usize,
}

impl RopeQkv {
    /// The kernel's math: one (row, head) block, one thread per rotation pair `j`.
    fn run<T: Elem>(&self, qkv: &mut [T], bias: &[T], cos_sin: &[f32]) {
        let (nh, nkv, d) = (self.nh, self.nkv, self.d);
        let half = d / 2;
        let width = (nh + 2 * nkv) * d;
        for row in 0..self.rows {
            for head in 0..nh + 2 * nkv {
                let h = &mut qkv[row * width + head * d..][..d];
                let b = &bias[head * d..][..d];
                for j in 0..half {
                    // The biased projection output is a T in the reference.
                    let x1 = round::<T>(h[j].to_f() + b[j].to_f());
                    let x2 = round::<T>(h[j + half].to_f() + b[j + half].to_f());
                    if head >= nh + nkv {
                        h[j] = T::from_f(x1);
                        h[j + half] = T::from_f(x2);
                        continue;
                    }
                    let c = cos_sin[row * d + j];
                    let s = cos_sin[row * d + half + j];
                    h[j] = T::from_f(x1 * c - x2 * s);
                    h[j + half] = T::from_f(x2 * c + x1 * s);
                }
            }
        }
    }
}

impl InplaceOp3 for RopeQkv {
    fn name(&self) -> &'static str {
        "rope-qkv"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        const OP: &str = "rope-qkv";
        let Some((a, b)) = l1.contiguous_offsets() else {
            candle_core::bail!("{OP} needs a contiguous qkv");
        };
        let cos_sin = slice::<f32>(s3, l3, OP)?;
        match s1 {
            CpuStorage::F32(v) => self.run(&mut v[a..b], slice::<f32>(s2, l2, OP)?, cos_sin),
            CpuStorage::BF16(v) => self.run(&mut v[a..b], slice::<bf16>(s2, l2, OP)?, cos_sin),
            _ => candle_core::bail!("{OP} needs f32 or bf16"),
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &mut candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<()> {
        use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
        use candle_core::cuda_backend::WrapErr;

        use super::cuda;

        const OP: &str = "rope-qkv";
        let dtype = cuda::dtype(s1);
        let dev = s1.device.clone();
        let f = cuda::kernel!(dev, "rope_qkv", dtype)?;
        let Some((a, b)) = l1.contiguous_offsets() else {
            candle_core::bail!("{OP} needs a contiguous qkv");
        };
        let cos_sin = cuda::view::<f32>(s3, l3, OP)?;
        let (rows, nh, nkv, d) = (
            self.rows as i32,
            self.nh as i32,
            self.nkv as i32,
            self.d as i32,
        );
        let cfg = cuda::grid(
            (self.rows as u32, (self.nh + 2 * self.nkv) as u32),
            (self.d / 2) as u32,
        );
        macro_rules! launch {
            ($t:ty) => {{
                let bias = cuda::view::<$t>(s2, l2, OP)?;
                let mut qkv = s1.as_cuda_slice_mut::<$t>()?.slice_mut(a..b);
                let mut builder = f.builder();
                builder
                    .arg(&mut qkv)
                    .arg(&bias)
                    .arg(&cos_sin)
                    .arg(&rows)
                    .arg(&nh)
                    .arg(&nkv)
                    .arg(&d);
                // SAFETY: the arguments match the kernel's signature; the grid covers rows ×
                // heads × d/2 pairs of the checked shapes.
                unsafe { builder.launch(cfg) }.w()?;
            }};
        }
        match dtype {
            DType::F32 => launch!(f32),
            DType::BF16 => launch!(bf16),
            other => candle_core::bail!("{OP}: {other:?} is not supported"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::super::testing::{rel_err, tensor, to_f32};
    use super::*;

    #[test]
    fn matches_candle_rope_plus_bias() {
        // Two query heads over one KV head, d = 8, five tokens at positions 0..5.
        let (rows, nh, nkv, d) = (5, 2, 1, 8);
        let width = (nh + 2 * nkv) * d;
        let half = d / 2;
        let dev = Device::Cpu;
        let mut cos = Vec::new();
        let mut sin = Vec::new();
        let mut cos_sin: Vec<f32> = Vec::new();
        for p in 0..rows {
            let (c, s): (Vec<f32>, Vec<f32>) = (0..half)
                .map(|j| {
                    let a = p as f32 / 10f32.powf(j as f32 / half as f32);
                    (a.cos(), a.sin())
                })
                .unzip();
            cos_sin.extend(&c);
            cos_sin.extend(&s);
            cos.extend(c);
            sin.extend(s);
        }
        let cos = Tensor::from_vec(cos, (rows, half), &dev).unwrap();
        let sin = Tensor::from_vec(sin, (rows, half), &dev).unwrap();
        let cos_sin = Tensor::from_vec(cos_sin, (rows, 2, half), &dev).unwrap();
        for (dtype, tol) in [(DType::F32, 1e-6), (DType::BF16, 1e-2)] {
            let qkv = tensor(&[rows, width], 7, dtype);
            let bias = tensor(&[width], 8, dtype);
            let biased = qkv
                .broadcast_add(&bias)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap();
            // candle's rope over [B=1, heads, T, d] (rotate-half layout).
            let heads = |from: usize, n: usize| {
                biased
                    .narrow(1, from * d, n * d)
                    .unwrap()
                    .reshape((1, rows, n, d))
                    .unwrap()
                    .transpose(1, 2)
                    .unwrap()
                    .contiguous()
                    .unwrap()
            };
            let back =
                |t: Tensor, n: usize| t.transpose(1, 2).unwrap().reshape((rows, n * d)).unwrap();
            let q = back(
                candle_nn::rotary_emb::rope(&heads(0, nh), &cos, &sin).unwrap(),
                nh,
            );
            let k = back(
                candle_nn::rotary_emb::rope(&heads(nh, nkv), &cos, &sin).unwrap(),
                nkv,
            );
            let v = biased.narrow(1, (nh + nkv) * d, nkv * d).unwrap();
            let want = Tensor::cat(&[q, k, v], 1).unwrap();
            rope_qkv(&qkv, &bias, &cos_sin, nh, nkv, d).unwrap();
            let err = rel_err(&to_f32(&qkv), &to_f32(&want));
            assert!(err < tol, "{dtype:?}: {err}");
        }
    }

    #[test]
    fn refuses_a_width_that_is_not_the_heads() {
        let qkv = tensor(&[2, 30], 1, DType::F32);
        let bias = tensor(&[30], 1, DType::F32);
        let cs = tensor(&[2, 2, 4], 1, DType::F32);
        assert!(rope_qkv(&qkv, &bias, &cs, 2, 1, 8).is_err());
    }
}
