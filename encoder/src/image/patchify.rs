//! CLIP normalisation and the Qwen2-VL patch layout.
//!
//! One row per 14×14 patch, rows in merge-unit order: merged-row block, merged-column block, then
//! the 2×2 patches inside the unit row-major, so four consecutive rows are what the PatchMerger
//! concatenates. Each row holds `channel × temporal × 14 × 14` values; a still image fills the
//! temporal axis with two copies of itself. Reference: transformers 5.x
//! `Qwen2VLImageProcessor.patchify` (permute `(0, 2, 5, 3, 6, 1, 4, 7)`).

use super::decode::RgbImage;
use super::PreprocessorConfig;

/// Normalised patches of one image: `num_patches × patch_dim` f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Patches {
    pub data: Vec<f32>,
    /// `[t, h, w]` in patches (`t` = 1 for a still image).
    pub grid_thw: [usize; 3],
    pub patch_dim: usize,
}

impl Patches {
    pub fn num_patches(&self) -> usize {
        self.grid_thw.iter().product()
    }

    /// Tokens the image becomes in the prompt: patches / merge_size².
    pub fn num_tokens(&self, merge_size: usize) -> usize {
        self.num_patches() / (merge_size * merge_size)
    }
}

/// Normalises and patchifies an image whose sides are multiples of `patch_size · merge_size`.
///
/// The torchvision processor fuses rescale and normalise as `(x − 255·mean) / (255·std)` in f32;
/// doing the same keeps the values bit-identical rather than within 1e-7.
pub fn patchify(img: &RgbImage, cfg: &PreprocessorConfig) -> Patches {
    let p = cfg.patch_size;
    let m = cfg.merge_size;
    let t = cfg.temporal_patch_size;
    let (gh, gw) = (img.height / p, img.width / p);
    debug_assert!(
        gh % m == 0 && gw % m == 0,
        "sides must be multiples of the factor"
    );
    let inv_rescale = (1.0 / cfg.rescale_factor) as f32;
    let mean: Vec<f32> = cfg.image_mean.iter().map(|&v| v * inv_rescale).collect();
    let std: Vec<f32> = cfg.image_std.iter().map(|&v| v * inv_rescale).collect();
    let patch_dim = 3 * t * p * p;
    let mut data = vec![0f32; gh * gw * patch_dim];
    let mut row = 0;
    for bh in 0..gh / m {
        for bw in 0..gw / m {
            for ih in 0..m {
                for iw in 0..m {
                    let (r, c) = (bh * m + ih, bw * m + iw);
                    let out = &mut data[row * patch_dim..(row + 1) * patch_dim];
                    for ch in 0..3 {
                        for py in 0..p {
                            for px in 0..p {
                                let (y, x) = (r * p + py, c * p + px);
                                let v = img.data[(y * img.width + x) * 3 + ch] as f32;
                                let v = (v - mean[ch]) / std[ch];
                                for ti in 0..t {
                                    out[((ch * t + ti) * p + py) * p + px] = v;
                                }
                            }
                        }
                    }
                    row += 1;
                }
            }
        }
    }
    Patches {
        data,
        grid_thw: [1, gh, gw],
        patch_dim,
    }
}
