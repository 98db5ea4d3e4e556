//! Image preprocessing for jina-embeddings-v4 (Qwen2-VL image processor, spec §2.4):
//! decode → RGB → `smart_resize` → antialiased bicubic resize → CLIP normalisation → patches.
//!
//! Nothing here knows the model; the output is the `pixel_values` / `image_grid_thw` pair the
//! vision tower takes.

mod decode;
mod patchify;
mod resize;

use std::path::Path;

use serde::Deserialize;

pub use decode::{decode, RgbImage};
pub use patchify::{patchify, Patches};
pub use resize::{resize_bicubic_aa, smart_resize, MAX_ASPECT_RATIO};

/// Why an image was refused. Every variant is the caller's input, never a bug.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageError {
    #[error("image is empty (0 bytes)")]
    Empty,
    #[error("not an image (unrecognised format)")]
    UnknownFormat,
    #[error("image format {0} is not supported (png, jpeg, webp, gif)")]
    UnsupportedFormat(String),
    #[error("corrupt image: {0}")]
    Decode(String),
    #[error("image has zero size ({width}x{height})")]
    ZeroSize { width: usize, height: usize },
    #[error("image aspect ratio of {width}x{height} exceeds {limit}")]
    AspectRatio {
        width: usize,
        height: usize,
        limit: f64,
    },
    #[error("image of {bytes} bytes exceeds the limit of {limit} bytes")]
    TooManyBytes { bytes: usize, limit: usize },
    #[error("image of {width}x{height} pixels exceeds the limit of {limit} pixels")]
    TooManyPixels {
        width: usize,
        height: usize,
        limit: usize,
    },
}

/// Input limits checked before decoding allocates (resizing then bounds what the model sees).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest encoded file.
    pub max_bytes: usize,
    /// Largest decoded raster, `width · height` (PIL's decompression-bomb limit is ~89 M).
    pub max_pixels: usize,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_bytes: 32 << 20,
            max_pixels: 64 << 20,
        }
    }
}

/// `preprocessor_config.json`: the fields that change the pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessorConfig {
    pub min_pixels: usize,
    pub max_pixels: usize,
    pub patch_size: usize,
    pub temporal_patch_size: usize,
    pub merge_size: usize,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
    pub rescale_factor: f64,
}

/// OpenAI CLIP statistics, the Qwen2-VL defaults. Written as f64 and narrowed, the path a value
/// parsed from JSON takes (and the one torch takes from Python floats).
const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

impl Default for PreprocessorConfig {
    /// jina-embeddings-v4's published values (min 56², max 768·28² pixels).
    fn default() -> Self {
        PreprocessorConfig {
            min_pixels: 3136,
            max_pixels: 602_112,
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
            image_mean: CLIP_MEAN.map(|v| v as f32),
            image_std: CLIP_STD.map(|v| v as f32),
            rescale_factor: 1.0 / 255.0,
        }
    }
}

#[derive(Deserialize)]
struct RawSize {
    shortest_edge: Option<usize>,
    longest_edge: Option<usize>,
}

#[derive(Deserialize)]
struct RawPreprocessor {
    min_pixels: Option<usize>,
    max_pixels: Option<usize>,
    size: Option<RawSize>,
    patch_size: Option<usize>,
    temporal_patch_size: Option<usize>,
    merge_size: Option<usize>,
    image_mean: Option<[f32; 3]>,
    image_std: Option<[f32; 3]>,
    rescale_factor: Option<f64>,
    do_normalize: Option<bool>,
    do_rescale: Option<bool>,
    do_resize: Option<bool>,
}

impl PreprocessorConfig {
    /// Parses `preprocessor_config.json`. Top-level `min_pixels`/`max_pixels` win over
    /// `size.{shortest,longest}_edge`, as the transformers processor's constructor does.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let raw: RawPreprocessor = serde_json::from_str(json).map_err(|e| e.to_string())?;
        for (name, v) in [
            ("do_normalize", raw.do_normalize),
            ("do_rescale", raw.do_rescale),
            ("do_resize", raw.do_resize),
        ] {
            if v == Some(false) {
                return Err(format!("{name}=false is not supported"));
            }
        }
        let d = PreprocessorConfig::default();
        let size = raw.size.as_ref();
        let c = PreprocessorConfig {
            min_pixels: raw
                .min_pixels
                .or(size.and_then(|s| s.shortest_edge))
                .unwrap_or(d.min_pixels),
            max_pixels: raw
                .max_pixels
                .or(size.and_then(|s| s.longest_edge))
                .unwrap_or(d.max_pixels),
            patch_size: raw.patch_size.unwrap_or(d.patch_size),
            temporal_patch_size: raw.temporal_patch_size.unwrap_or(d.temporal_patch_size),
            merge_size: raw.merge_size.unwrap_or(d.merge_size),
            image_mean: raw.image_mean.unwrap_or(d.image_mean),
            image_std: raw.image_std.unwrap_or(d.image_std),
            rescale_factor: raw.rescale_factor.unwrap_or(d.rescale_factor),
        };
        if c.patch_size == 0 || c.merge_size == 0 || c.temporal_patch_size == 0 {
            return Err("patch_size, merge_size and temporal_patch_size must be positive".into());
        }
        if c.min_pixels > c.max_pixels {
            return Err(format!(
                "min_pixels {} exceeds max_pixels {}",
                c.min_pixels, c.max_pixels
            ));
        }
        if c.image_std.contains(&0.0) || c.rescale_factor <= 0.0 {
            return Err("image_std and rescale_factor must be non-zero".into());
        }
        Ok(c)
    }

    /// Reads the file; a checkpoint without one gets [`PreprocessorConfig::default`].
    pub fn from_dir(dir: &Path) -> crate::Result<Self> {
        let path = dir.join("preprocessor_config.json");
        if !path.is_file() {
            return Ok(PreprocessorConfig::default());
        }
        let json = std::fs::read_to_string(&path).map_err(|e| crate::Error::io(&path, e))?;
        PreprocessorConfig::from_json(&json).map_err(|m| crate::Error::config(&path, m))
    }

    /// Side lengths are rounded to multiples of this (28 for Qwen2-VL).
    pub fn factor(&self) -> usize {
        self.patch_size * self.merge_size
    }
}

/// Decode, resize, normalise and patchify one encoded image.
pub fn preprocess(
    bytes: &[u8],
    cfg: &PreprocessorConfig,
    limits: &ImageLimits,
) -> Result<Patches, ImageError> {
    let img = decode(bytes, limits)?;
    preprocess_rgb(&img, cfg)
}

/// Resize, normalise and patchify an already decoded image.
pub fn preprocess_rgb(img: &RgbImage, cfg: &PreprocessorConfig) -> Result<Patches, ImageError> {
    let (h, w) = smart_resize(
        img.height,
        img.width,
        cfg.factor(),
        cfg.min_pixels,
        cfg.max_pixels,
    )?;
    tracing::trace!(
        from_h = img.height,
        from_w = img.width,
        h,
        w,
        "image resized"
    );
    if (h, w) == (img.height, img.width) {
        Ok(patchify(img, cfg))
    } else {
        Ok(patchify(&resize_bicubic_aa(img, h, w), cfg))
    }
}
