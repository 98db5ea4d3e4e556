//! The fused operations of the packed decoder pass (the GPU's text path): residual add with
//! RMSNorm, projection bias with rotary embedding, causal varlen attention with grouped KV heads,
//! SwiGLU, and the pooling heads. Each is one candle custom op that launches one kernel.
//!
//! On CUDA each op runs its kernel from `encoder/kernels/decoder.cu` (compiled to PTX by the crate's
//! build script under the `cuda` feature, loaded through candle's CUDA device). On the CPU the same
//! op runs a Rust twin of that kernel, written in the kernel's own structure (blocks, tiles, the
//! online softmax) and rounding to the storage type where the kernel does, so the CPU test suite
//! checks the math the GPU runs against textbook formulas and against transformers.

mod add_rms_norm;
mod attention;
mod heads;
mod rotary;
mod swiglu;

#[cfg(feature = "cuda")]
pub(crate) mod cuda;

pub use add_rms_norm::add_rms_norm;
pub use attention::{varlen_attention, varlen_attention_bidirectional, VarlenSeqs};
pub use heads::{l2_normalize_rows, segment_mean};
pub use rotary::rope_qkv;
pub use swiglu::swiglu;

use candle_core::{CpuStorage, DType, Layout, Result};
use half::bf16;

/// A storage type the fused ops take: f32 or bf16, computed in f32.
pub(crate) trait Elem: Copy + Send + Sync + 'static {
    fn to_f(self) -> f32;
    fn from_f(x: f32) -> Self;
}

impl Elem for f32 {
    #[inline(always)]
    fn to_f(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f(x: f32) -> Self {
        x
    }
}

impl Elem for bf16 {
    #[inline(always)]
    fn to_f(self) -> f32 {
        self.to_f32()
    }
    /// Round to nearest even, as CUDA's `__float2bfloat16`.
    #[inline(always)]
    fn from_f(x: f32) -> Self {
        bf16::from_f32(x)
    }
}

/// `x` rounded to `T` and back: where the kernels store an intermediate in the model dtype.
#[inline(always)]
pub(crate) fn round<T: Elem>(x: f32) -> f32 {
    T::from_f(x).to_f()
}

/// The contiguous values of a CPU tensor of element type `T` (`op` names the caller in errors).
pub(crate) fn slice<'a, T: candle_core::WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<T>()?[a..b]),
        None => candle_core::bail!("{op} needs contiguous tensors"),
    }
}

/// Refuses storage types the kernels are not built for.
pub(crate) fn check_dtype(dtype: DType, op: &str) -> Result<()> {
    match dtype {
        DType::F32 | DType::BF16 => Ok(()),
        other => candle_core::bail!("{op}: {other:?} is not supported (f32 or bf16)"),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Deterministic inputs and tolerances shared by the fused ops' tests.

    use candle_core::{DType, Device, Tensor};

    /// `n` values in [-2, 2) from a fixed LCG.
    pub fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    pub fn tensor(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(values(n, seed), shape, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    pub fn to_f32(t: &Tensor) -> Vec<f32> {
        t.to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    }

    /// Largest |a − b| relative to the largest |b| (1 when b is all zeros).
    pub fn rel_err(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1.0);
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
            / scale
    }
}
