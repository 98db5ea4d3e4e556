//! The SwiGLU product `silu(gate) · up` in one pass on CPU.
//!
//! candle computes it as three tensor ops (sigmoid through libm's `expf`, a multiply, another
//! multiply), each a full pass over the `[tokens, intermediate]` activations, which in the
//! Qwen2.5 decoder are the widest tensors of a layer. One fused, vectorised pass replaces them.

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_f32s;
use super::exp::exp;

/// `silu(gate) * up`, elementwise, for tensors of one shape.
pub fn silu_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if matches!(gate.device(), Device::Cpu)
        && gate.dtype() == DType::F32
        && up.dtype() == DType::F32
        && gate.shape() == up.shape()
    {
        gate.contiguous()?
            .apply_op2_no_bwd(&up.contiguous()?, &SiluMul)
    } else {
        candle_nn::ops::silu(gate)? * up
    }
}

struct SiluMul;

impl CustomOp2 for SiluMul {
    fn name(&self) -> &'static str {
        "silu-mul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (gate, up) = (cpu_f32s(s1, l1, "silu-mul")?, cpu_f32s(s2, l2, "silu-mul")?);
        if gate.len() != up.len() {
            candle_core::bail!(
                "silu-mul: {} gate values, {} up values",
                gate.len(),
                up.len()
            );
        }
        let mut out = vec![0f32; gate.len()];
        // Chunks of 16K values keep the per-task overhead small next to the work.
        const CHUNK: usize = 1 << 14;
        out.par_chunks_mut(CHUNK)
            .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)))
            .for_each(|(o, (g, u))| {
                for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                    *o = g * u / (1.0 + exp(-g));
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_candle() {
        let dev = Device::Cpu;
        let g: Vec<f32> = (-3000..3000).map(|i| i as f32 / 100.0).collect();
        let u: Vec<f32> = (0..6000)
            .map(|i| ((i * 37) % 101) as f32 / 25.0 - 2.0)
            .collect();
        let g = Tensor::from_vec(g, (60, 100), &dev).unwrap();
        let u = Tensor::from_vec(u, (60, 100), &dev).unwrap();
        let want = (candle_nn::ops::silu(&g).unwrap() * &u).unwrap();
        // The transposed pair checks that strided inputs are read in logical order.
        for (g, u, want) in [
            (g.clone(), u.clone(), want.clone()),
            (g.t().unwrap(), u.t().unwrap(), want.t().unwrap()),
        ] {
            let diff = crate::layers::max_abs_diff(&silu_mul(&g, &u).unwrap(), &want);
            assert!(diff < 1e-5, "{diff}");
        }
    }
}
