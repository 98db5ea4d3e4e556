//! Building blocks shared by the models.

pub mod causal_attention;
pub mod exp;
pub mod few_rows;
pub mod fused;
pub mod gelu;
pub mod lora;
pub mod norm;
pub mod pool;
pub mod small_gemm;
pub mod weight_region;

pub use gelu::gelu_erf;
pub use lora::{LoraLinear, TaskAdapters};
pub use norm::RmsNorm;
pub use pool::{l2_normalize, mean_pool};

/// The f32 values of a contiguous CPU tensor, for the fused CPU kernels (`op` names the caller in
/// the error).
pub(crate) fn cpu_f32s<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<f32>()?[start..end]),
        None => candle_core::bail!("{op} needs contiguous tensors"),
    }
}

/// A reproducible pseudo-random sequence in [-1, 1) (unit tests).
#[cfg(test)]
pub(crate) fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Largest absolute elementwise difference of two tensors of one shape (unit tests).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
