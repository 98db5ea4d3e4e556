//! Pooling shared by the sentence encoders: masked mean and L2 normalisation, in f32.

use candle_core::{DType, Result, Tensor, D};

/// Masked mean over the sequence, in f32: `Σ h·m / Σ m`. `hidden` `[B, L, H]`, `mask` `[B, L]`.
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.to_dtype(DType::F32)?;
    let summed = hidden
        .to_dtype(DType::F32)?
        .broadcast_mul(&m.unsqueeze(D::Minus1)?)?
        .sum(1)?;
    let counts = m.sum_keepdim(1)?;
    summed.broadcast_div(&counts)
}

/// `x / max(‖x‖₂, 1e-12)` over the last axis (torch `F.normalize`).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
    x.broadcast_div(&norm)
}
