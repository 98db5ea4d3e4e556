//! Real photos decode and embed: scikit-image samples (RGB, greyscale and RGBA PNG, JPEG, an
//! animated GIF) and RGBA emoji, fetched by `scripts/fetch-test-assets.sh` into
//! `target/test-assets/images/` (override: QUIVER_TEST_IMAGES).

use std::path::PathBuf;

use candle_core::{DType, Device};
use quiver_encoder::image::{decode, smart_resize, ImageLimits};
use quiver_encoder::Encoder;

use crate::common::*;

fn photos() -> Vec<(String, Vec<u8>)> {
    let dir = std::env::var_os("QUIVER_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-assets/images")
        });
    assert!(
        dir.is_dir(),
        "{} is missing: run scripts/fetch-test-assets.sh first (or set QUIVER_TEST_IMAGES)",
        dir.display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let out: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(p).unwrap(),
            )
        })
        .collect();
    assert!(
        out.len() >= 13,
        "expected the 13 fetched images, found {}",
        out.len()
    );
    out
}

#[test]
fn real_photos_decode_and_embed() {
    let photos = photos();
    let enc = Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    let cfg = enc.preprocessor().clone();
    let bytes: Vec<&[u8]> = photos.iter().map(|(_, b)| b.as_slice()).collect();
    // All sizes in one call: the batching pads and segments them together.
    let embs = enc.encode_images(&bytes, "retrieval", Some(32)).unwrap();
    let prompt_len = {
        let m = vision_manifest();
        m.prompt_prefix.len() + m.prompt_suffix.len()
    };
    for ((name, b), e) in photos.iter().zip(&embs) {
        let header = ::image::load_from_memory(b).unwrap();
        let img = decode(b, &ImageLimits::default()).unwrap();
        assert_eq!(
            (img.width, img.height),
            (header.width() as usize, header.height() as usize),
            "{name}"
        );
        let (h, w) =
            smart_resize(img.height, img.width, 28, cfg.min_pixels, cfg.max_pixels).unwrap();
        assert!(
            h * w <= cfg.max_pixels && h * w >= cfg.min_pixels,
            "{name}: {h}x{w}"
        );
        assert_eq!(
            e.multi.num_tokens(),
            prompt_len + h * w / 784,
            "{name}: tokens"
        );
        assert_eq!(e.single.len(), 32);
        let norm: f32 = e.single.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{name}: norm {norm}");
        assert!(e.multi.data.iter().all(|v| v.is_finite()), "{name}");
    }
    // Different photos give different vectors (a constant or broken path would not).
    for i in 0..embs.len() {
        for j in i + 1..embs.len() {
            let c = cosine(&embs[i].single, &embs[j].single);
            assert!(
                c < 0.99999,
                "{} and {}: cosine {c}",
                photos[i].0,
                photos[j].0
            );
        }
    }
}

#[test]
fn rgba_emoji_drop_alpha_without_compositing() {
    // PIL's convert("RGB") keeps the colour channels of transparent pixels as stored; the
    // encoder must do the same (no blending with black or white).
    for (name, b) in photos().iter().filter(|(n, _)| n.starts_with("1f")) {
        let rgba = ::image::load_from_memory(b).unwrap().to_rgba8();
        assert!(
            rgba.pixels().any(|p| p[3] < 255),
            "{name}: has transparency"
        );
        let rgb = decode(b, &ImageLimits::default()).unwrap();
        for (p, q) in rgba.pixels().zip(rgb.data.chunks_exact(3)) {
            assert_eq!(&p.0[..3], q, "{name}");
        }
    }
}
