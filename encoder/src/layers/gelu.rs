//! Exact (erf) GELU on CPU through a rational approximation of erf.
//!
//! candle's `gelu_erf` calls libm's `erff` per element, which does not vectorise: on
//! all-MiniLM-L6-v2 at batch 32 it was an eighth of all CPU time, next to the GEMMs. The rational
//! function below (the one Eigen and XLA use for f32 erf) is a handful of multiply-adds and one
//! division (plain multiply and add: `mul_add` would call libm's `fmaf` on baseline x86-64), so the
//! loop vectorises; its error against erf is below 1e-6, under f32 rounding of the
//! model's activations.

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `0.5 · x · (1 + erf(x / √2))`, as `torch.nn.functional.gelu` with `approximate="none"`.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1_no_bwd(&RationalGeluErf)
    } else {
        x.gelu_erf()
    }
}

/// erf(x) for f32: odd rational function of degree 13 over 8, exact to f32 beyond |x| = 4.
#[inline(always)]
fn erf(x: f32) -> f32 {
    const A: [f32; 7] = [
        -1.609_603_3e-2,
        -2.954_6e-3,
        -7.349_906_3e-4,
        -5.692_506_4e-5,
        -2.101_024e-6,
        2.770_681_4e-8,
        -2.726_142_3e-10,
    ];
    const B: [f32; 5] = [
        -1.426_473_9e-2,
        -7.373_329e-3,
        -1.682_827e-3,
        -2.133_740_6e-4,
        -1.456_607_2e-5,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = A[6];
    for &a in A[..6].iter().rev() {
        p = p * x2 + a;
    }
    let mut q = B[4];
    for &b in B[..4].iter().rev() {
        q = q * x2 + b;
    }
    x * p / q
}

#[inline(always)]
pub(crate) fn gelu_scalar(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

struct RationalGeluErf;

impl CustomOp1 for RationalGeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-rational"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let data = storage.as_slice::<f32>()?;
        let data = match layout.contiguous_offsets() {
            Some((start, end)) => &data[start..end],
            None => candle_core::bail!("gelu-erf-rational needs a contiguous tensor"),
        };
        let mut out = vec![0f32; data.len()];
        // Chunks of 16K values keep the per-task overhead small next to the work.
        out.par_chunks_mut(1 << 14)
            .zip(data.par_chunks(1 << 14))
            .for_each(|(o, i)| {
                for (o, &x) in o.iter_mut().zip(i) {
                    *o = gelu_scalar(x);
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rational_erf_matches_libm() {
        let mut worst = 0.0f32;
        for i in -60_000..=60_000 {
            let x = i as f32 / 10_000.0;
            worst = worst.max((erf(x) - libm_erf(x)).abs());
        }
        assert!(worst < 1e-6, "{worst}");
        assert!((erf(10.0) - 1.0).abs() < 1e-6 && (erf(-10.0) + 1.0).abs() < 1e-6);
        assert_eq!(erf(0.0), 0.0);
    }

    /// erf in f64 from its series and continued fraction, the reference for the f32 approximation.
    fn libm_erf(x: f32) -> f32 {
        let x = f64::from(x);
        let erf = if x.abs() < 3.0 {
            // Maclaurin series: 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1)).
            let (mut term, mut sum, mut n) = (x, x, 0.0f64);
            while term.abs() > 1e-17 * sum.abs().max(1e-300) {
                n += 1.0;
                term *= -x * x / n;
                sum += term / (2.0 * n + 1.0);
                if n > 200.0 {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc continued fraction (Lentz), accurate for |x| ≥ 3.
            let ax = x.abs();
            let mut f = 0.0f64;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (ax + f);
            }
            let erfc = (-ax * ax).exp() / (std::f64::consts::PI.sqrt() * (ax + f));
            (1.0 - erfc) * x.signum()
        };
        erf as f32
    }

    #[test]
    fn matches_candles_gelu_erf() {
        let dev = Device::Cpu;
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 200.0).collect();
        let x = Tensor::from_vec(xs, (4001,), &dev).unwrap();
        let want = x.gelu_erf().unwrap();
        let diff = crate::layers::max_abs_diff(&gelu_erf(&x).unwrap(), &want);
        assert!(diff < 1e-5, "{diff}");
        // A transposed (strided) input is read in its logical order.
        let m = Tensor::from_vec((0..12).map(|v| v as f32 - 6.0).collect(), (3, 4), &dev).unwrap();
        let t = m.t().unwrap();
        let got = gelu_erf(&t).unwrap().to_vec2::<f32>().unwrap();
        let want = t.gelu_erf().unwrap().to_vec2::<f32>().unwrap();
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
    }
}
