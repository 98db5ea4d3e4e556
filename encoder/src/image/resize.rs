//! `smart_resize` and the antialiased bicubic resize of torchvision's uint8 CPU path.
//!
//! jina-embeddings-v4 loads the fast (torchvision) Qwen2-VL image processor, which resizes the
//! uint8 image with `resize(BICUBIC, antialias=True)`. On CPU that runs ATen's separable uint8
//! kernel (`UpSampleKernel.cpp`, `_upsample_bicubic2d_aa` with int16 weights), a port of
//! Pillow-SIMD: Keys cubic with a = −0.5, support widened by the scale when downsampling,
//! weights normalised per output pixel then quantised to int16 with a precision chosen from the
//! largest weight, horizontal pass first, each pass rounded and clamped to uint8. It is
//! reproduced here step by step so the result is bit-identical: the `image` crate's CatmullRom
//! differs by one level on many pixels, which the ViT amplifies.

use super::decode::RgbImage;
use super::ImageError;

/// Largest allowed `max(h, w) / min(h, w)` (transformers raises above it).
pub const MAX_ASPECT_RATIO: f64 = 200.0;

/// Target `(height, width)`: both multiples of `factor`, area within `[min_pixels, max_pixels]`,
/// aspect ratio kept as well as possible. Mirrors transformers 5.x `smart_resize`, including
/// Python's round-half-to-even (70 → 56 with factor 28) and the `max(factor, …)` clamp.
pub fn smart_resize(
    height: usize,
    width: usize,
    factor: usize,
    min_pixels: usize,
    max_pixels: usize,
) -> Result<(usize, usize), ImageError> {
    if height == 0 || width == 0 {
        return Err(ImageError::ZeroSize { width, height });
    }
    let (h, w, f) = (height as f64, width as f64, factor as f64);
    let ratio = h.max(w) / h.min(w);
    if ratio > MAX_ASPECT_RATIO {
        return Err(ImageError::AspectRatio {
            width,
            height,
            limit: MAX_ASPECT_RATIO,
        });
    }
    let mut h_bar = (h / f).round_ties_even() as usize * factor;
    let mut w_bar = (w / f).round_ties_even() as usize * factor;
    if h_bar * w_bar > max_pixels {
        let beta = (h * w / max_pixels as f64).sqrt();
        h_bar = factor.max((h / beta / f).floor() as usize * factor);
        w_bar = factor.max((w / beta / f).floor() as usize * factor);
    } else if h_bar * w_bar < min_pixels {
        let beta = (min_pixels as f64 / (h * w)).sqrt();
        h_bar = (h * beta / f).ceil() as usize * factor;
        w_bar = (w * beta / f).ceil() as usize * factor;
    }
    Ok((h_bar, w_bar))
}

/// Keys cubic convolution with a = −0.5, written as ATen's `aa_filter` evaluates it.
fn cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

/// Per output pixel along one axis: the first input index and the int16 weights of its taps.
struct AxisWeights {
    starts: Vec<usize>,
    /// Taps actually used by each output pixel (≤ `taps`).
    lens: Vec<usize>,
    /// `taps` weights per output pixel (zero past a pixel's own tap count).
    weights: Vec<i32>,
    taps: usize,
    precision: u32,
}

impl AxisWeights {
    fn of(&self, o: usize) -> (usize, &[i32]) {
        let w = &self.weights[o * self.taps..o * self.taps + self.lens[o]];
        (self.starts[o], w)
    }
}

/// ATen `_compute_indices_min_size_weights_aa` in f64, then `compute_index_ranges_int16_weights`.
fn axis_weights(in_size: usize, out_size: usize) -> AxisWeights {
    let scale = in_size as f64 / out_size as f64;
    let (support, inv_scale) = if scale >= 1.0 {
        (2.0 * scale, 1.0 / scale)
    } else {
        (2.0, 1.0)
    };
    let taps = support.ceil() as usize * 2 + 1;
    let mut starts = Vec::with_capacity(out_size);
    let mut lens = Vec::with_capacity(out_size);
    let mut float_w = vec![0f64; out_size * taps];
    let mut w_max = 0f64;
    for i in 0..out_size {
        let center = scale * (i as f64 + 0.5);
        // `as i64` truncates toward zero like the C++ static_cast.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xend = ((center + support + 0.5) as i64).min(in_size as i64);
        let xsize = (xend - xmin).clamp(0, taps as i64) as usize;
        let row = &mut float_w[i * taps..i * taps + xsize];
        let mut total = 0f64;
        for (j, w) in row.iter_mut().enumerate() {
            *w = cubic((j as f64 + xmin as f64 - center + 0.5) * inv_scale);
            total += *w;
        }
        if total != 0.0 {
            for w in row.iter_mut() {
                *w /= total;
                w_max = w_max.max(*w);
            }
        }
        starts.push(xmin as usize);
        lens.push(xsize);
    }
    // The largest precision (< 22 bits) at which the biggest weight still fits in int16.
    let mut precision = 0u32;
    while precision < 22 {
        let next = (0.5 + w_max * (1u64 << (precision + 1)) as f64) as i64;
        if next >= 1 << 15 {
            break;
        }
        precision += 1;
    }
    let unit = (1u64 << precision) as f64;
    let weights = float_w
        .iter()
        .map(|&w| {
            let v = w * unit;
            (if v < 0.0 { v - 0.5 } else { v + 0.5 }) as i16 as i32
        })
        .collect();
    AxisWeights {
        starts,
        lens,
        weights,
        taps,
        precision,
    }
}

/// Rounds and clamps a fixed-point accumulator to u8, as ATen does after each pass.
fn to_u8(acc: i32, precision: u32) -> u8 {
    (acc >> precision).clamp(0, 255) as u8
}

/// Resamples the columns of an interleaved `rows × cols × 3` raster to `out_cols`.
fn resample_horizontal(src: &[u8], rows: usize, cols: usize, out_cols: usize) -> Vec<u8> {
    let aw = axis_weights(cols, out_cols);
    let round = 1i32 << aw.precision.saturating_sub(1);
    let mut dst = vec![0u8; rows * out_cols * 3];
    for (src_row, dst_row) in src
        .chunks_exact(cols * 3)
        .zip(dst.chunks_exact_mut(out_cols * 3))
    {
        for (c, out) in dst_row.chunks_exact_mut(3).enumerate() {
            let (start, ws) = aw.of(c);
            let taps = &src_row[start * 3..(start + ws.len()) * 3];
            let mut acc = [round; 3];
            for (px, &w) in taps.chunks_exact(3).zip(ws) {
                acc[0] += px[0] as i32 * w;
                acc[1] += px[1] as i32 * w;
                acc[2] += px[2] as i32 * w;
            }
            for ch in 0..3 {
                out[ch] = to_u8(acc[ch], aw.precision);
            }
        }
    }
    dst
}

/// Resamples the rows of an interleaved `rows × cols × 3` raster to `out_rows`.
fn resample_vertical(src: &[u8], rows: usize, cols: usize, out_rows: usize) -> Vec<u8> {
    let aw = axis_weights(rows, out_rows);
    let round = 1i32 << aw.precision.saturating_sub(1);
    let width = cols * 3;
    let mut dst = vec![0u8; out_rows * width];
    let mut acc = vec![0i32; width];
    for (r, dst_row) in dst.chunks_exact_mut(width).enumerate() {
        let (start, ws) = aw.of(r);
        acc.fill(round);
        // Whole rows at a time: the inner loop is a plain multiply-add over a contiguous row.
        for (j, &w) in ws.iter().enumerate() {
            let src_row = &src[(start + j) * width..(start + j + 1) * width];
            for (a, &v) in acc.iter_mut().zip(src_row) {
                *a += v as i32 * w;
            }
        }
        for (o, &a) in dst_row.iter_mut().zip(&acc) {
            *o = to_u8(a, aw.precision);
        }
    }
    dst
}

/// Antialiased bicubic resize to `(height, width)`, bit-identical to torchvision's
/// `resize(uint8, BICUBIC, antialias=True)` on CPU. The identity when the size is unchanged.
pub fn resize_bicubic_aa(img: &RgbImage, height: usize, width: usize) -> RgbImage {
    let mut data = img.data.clone();
    let (mut rows, mut cols) = (img.height, img.width);
    // Horizontal first, then vertical, each rounded to u8: the reference's order.
    if width != cols {
        data = resample_horizontal(&data, rows, cols, width);
        cols = width;
    }
    if height != rows {
        data = resample_vertical(&data, rows, cols, height);
        rows = height;
    }
    RgbImage {
        width: cols,
        height: rows,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_resize_rounds_half_to_even() {
        // 70/28 = 2.5 → 2, 42/28 = 1.5 → 2, 98/28 = 3.5 → 4.
        assert_eq!(smart_resize(70, 100, 28, 3136, 602112).unwrap(), (56, 112));
        assert_eq!(smart_resize(42, 98, 28, 3136, 602112).unwrap(), (56, 112));
        assert_eq!(
            smart_resize(168, 224, 28, 3136, 602112).unwrap(),
            (168, 224)
        );
    }

    #[test]
    fn smart_resize_clamps_area() {
        // Tiny images grow to at least min_pixels.
        let (h, w) = smart_resize(10, 10, 28, 3136, 602112).unwrap();
        assert_eq!((h, w), (56, 56));
        // Large images shrink under max_pixels and stay multiples of the factor.
        let (h, w) = smart_resize(3000, 4000, 28, 3136, 602112).unwrap();
        assert!(h * w <= 602112 && h % 28 == 0 && w % 28 == 0, "{h}x{w}");
        assert_eq!((h, w), (672, 896));
        // A thin strip keeps at least one factor on its short side.
        // (Values checked against transformers' smart_resize; 3990/28 = 142.5 rounds to 142.)
        assert_eq!(
            smart_resize(20, 3990, 28, 3136, 602112).unwrap(),
            (28, 3976)
        );
        assert_eq!(smart_resize(10, 2000, 28, 3136, 602112).unwrap(), (28, 812));
    }

    #[test]
    fn smart_resize_rejects_extreme_aspect_and_zero() {
        assert!(matches!(
            smart_resize(10, 2001, 28, 3136, 602112),
            Err(ImageError::AspectRatio { .. })
        ));
        assert!(smart_resize(10, 2000, 28, 3136, 602112).is_ok());
        assert!(matches!(
            smart_resize(0, 10, 28, 3136, 602112),
            Err(ImageError::ZeroSize { .. })
        ));
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(100, 112), (70, 56), (1000, 28), (3, 300)] {
            let aw = axis_weights(i, o);
            for k in 0..o {
                let s: i32 = aw.weights[k * aw.taps..(k + 1) * aw.taps].iter().sum();
                let unit = 1i32 << aw.precision;
                assert!(
                    (s - unit).abs() <= aw.taps as i32,
                    "{i}->{o} pixel {k}: {s} vs {unit}"
                );
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_raw(37, 23, vec![200; 37 * 23 * 3]).unwrap();
        let out = resize_bicubic_aa(&img, 56, 84);
        assert_eq!((out.height, out.width), (56, 84));
        assert!(out.data.iter().all(|&v| v == 200));
    }
}
