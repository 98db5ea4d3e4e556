//! `exp` for f32 in plain arithmetic, so that loops over it vectorise.
//!
//! libm's `expf` is a call per element: in the decoder's softmax and SiLU it kept the CPU
//! encoder scalar where PyTorch runs vectorised exponentials. This is Cephes' `expf` (range
//! reduction by ln 2, a degree-5 polynomial), with the rounding and the power of two done by
//! the float bit tricks instead of `floor` and `powi`, which on baseline x86-64 are calls too.
//! The error is within 2 ulp of `f32::exp` over the whole clamped range.

/// 1.5 · 2^23: adding it rounds a float of magnitude below 2^22 to an integer, kept in the
/// low mantissa bits.
const ROUND: f32 = 12_582_912.0;

/// e^x for x in [-87, 88]; inputs outside are clamped (e^-87 ≈ 1.6e-38, e^88 ≈ 1.65e38), and
/// NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two, so that n · ln 2 is subtracted without losing r's low bits.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let ni = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((ni + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_two_ulp_of_libm() {
        let mut worst = 0.0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 / 10_000.0;
            let want = f64::from(x).exp();
            let rel = ((f64::from(exp(x)) - want) / want).abs();
            worst = worst.max(rel);
        }
        // 2 ulp of f32 is 2.4e-7 relative.
        assert!(worst < 2.4e-7, "{worst}");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn clamps_and_keeps_nan() {
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-37);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
        assert!(exp(f32::NAN).is_nan());
    }
}
