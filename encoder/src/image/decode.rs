//! Bytes to an 8-bit RGB raster, as `PIL.Image.open(..).convert("RGB")` gives the reference.
//!
//! Formats: PNG, JPEG, WebP and GIF (first frame), the `image` crate features this crate enables.
//! Alpha is dropped, not composited, and EXIF orientation is not applied: PIL's `convert("RGB")`
//! does neither, and the reference model was trained on what it produces.

use std::io::Cursor;

use ::image::{ImageFormat, ImageReader};

use super::{ImageError, ImageLimits};

/// An 8-bit RGB image, row-major `height × width × 3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Wraps a raw buffer; `data.len()` must be `height·width·3`.
    pub fn from_raw(width: usize, height: usize, data: Vec<u8>) -> Result<Self, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::ZeroSize { width, height });
        }
        if data.len() != width * height * 3 {
            return Err(ImageError::Decode(format!(
                "{} bytes do not hold a {width}x{height} RGB image",
                data.len()
            )));
        }
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }
}

/// Decodes `bytes`, checking the byte and pixel limits before any large allocation.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooManyBytes {
            bytes: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let format = ::image::guess_format(bytes).map_err(|_| ImageError::UnknownFormat)?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif
    ) {
        return Err(ImageError::UnsupportedFormat(format!("{format:?}")));
    }
    // Header first: a small file may declare a huge raster (a decompression bomb).
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    let (w, h) = (w as usize, h as usize);
    if w == 0 || h == 0 {
        return Err(ImageError::ZeroSize {
            width: w,
            height: h,
        });
    }
    if w.saturating_mul(h) > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width: w,
            height: h,
            limit: limits.max_pixels,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = ::image::Limits::default();
    // RGBA16 output plus the decoder's own buffers stays under this for every supported format.
    decoder_limits.max_alloc = Some((w as u64) * (h as u64) * 8 * 2 + (1 << 20));
    reader.limits(decoder_limits);
    let img = reader
        .decode()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    let rgb = img.to_rgb8();
    RgbImage::from_raw(rgb.width() as usize, rgb.height() as usize, rgb.into_raw())
}
