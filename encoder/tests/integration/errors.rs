//! Bad input gives clear errors, never a panic.

use candle_core::{DType, Device};
use quiver_encoder::{Encoder, Error, PromptKind, TextOptions, Truncation};

use crate::common::*;

fn encoder() -> Encoder {
    Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap()
}

#[test]
fn bad_inputs_are_user_errors() {
    let enc = encoder();
    let err = enc
        .encode_texts(&["ok", "  "], "retrieval", PromptKind::Query, None)
        .unwrap_err();
    assert!(matches!(err, Error::EmptyText { index: 1 }), "{err}");
    assert!(err.is_user_error());

    let err = enc
        .encode_texts(&["hi"], "classification", PromptKind::Query, None)
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("retrieval, text-matching, code"), "{msg}");
    assert!(err.is_user_error());

    let err = enc
        .encode_texts(&["hi"], "retrieval", PromptKind::Query, Some(48))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidDimension { got: 48, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("16, 32, 64"), "{err}");

    let long = "word ".repeat(200);
    let strict = TextOptions {
        task: "retrieval".into(),
        prompt: PromptKind::Passage,
        dims: None,
        truncation: Truncation {
            max_length: 16,
            truncate: false,
        },
    };
    let err = enc
        .encode_texts_with(&[long.as_str()], &strict)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLong {
                index: 0,
                max_length: 16,
                ..
            }
        ),
        "{err}"
    );

    let err = "summary".parse::<PromptKind>().unwrap_err();
    assert!(err.to_string().contains("query, passage"), "{err}");
}

#[test]
fn truncation_keeps_the_prefix_and_cuts_right() {
    let enc = encoder();
    let long = "word ".repeat(200);
    let trunc = Truncation {
        max_length: 16,
        truncate: true,
    };
    let ids = enc
        .tokenize(&[long.as_str()], "retrieval", PromptKind::Passage, trunc)
        .unwrap();
    assert_eq!(ids[0].len(), 16);
    let prefix = enc.tokenizer().encode_raw("Passage: word").unwrap();
    assert_eq!(&ids[0][..prefix.len()], &prefix[..]);
    let full = enc
        .tokenize(
            &[long.as_str()],
            "retrieval",
            PromptKind::Passage,
            Truncation::default(),
        )
        .unwrap();
    assert_eq!(&full[0][..16], &ids[0][..]);
    let opts = TextOptions {
        task: "retrieval".into(),
        prompt: PromptKind::Passage,
        dims: Some(16),
        truncation: trunc,
    };
    let e = enc.encode_texts_with(&[long.as_str()], &opts).unwrap();
    assert_eq!(e[0].multi.num_tokens(), 16);
    assert_eq!(e[0].single.len(), 16);
}

#[test]
fn merged_encoder_serves_only_its_task() {
    let opts = quiver_encoder::LoadOptions {
        merge_task: Some("code".into()),
        ..Default::default()
    };
    let enc = Encoder::load_with(fixture_dir().to_str().unwrap(), &opts).unwrap();
    assert_eq!(enc.tasks(), vec!["code".to_string()]);
    let err = enc
        .encode_texts(&["x"], "retrieval", PromptKind::Query, None)
        .unwrap_err();
    assert!(matches!(err, Error::UnknownTask { .. }), "{err}");
    let unmerged = encoder();
    let a = enc
        .encode_texts(&["sort a list"], "code", PromptKind::Query, None)
        .unwrap();
    let b = unmerged
        .encode_texts(&["sort a list"], "code", PromptKind::Query, None)
        .unwrap();
    assert_vec_close("merged encoder", &a[0].single, &b[0].single, 1e-5);
}

#[test]
fn missing_model_explains_how_to_get_it() {
    // The cache lookup alone: `Encoder::load` would go on to download the repo id, and tests
    // stay off the network (`server/tests/it/cli_hub.rs` runs that path against a stand-in hub).
    let cache = quiver_encoder::loading::HubCache { dirs: vec![] };
    let err = quiver_encoder::loading::resolve_model_dir_in("nobody-org/no-such-model-xyz", &cache)
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(matches!(err, Error::ModelNotFound { .. }), "{msg}");
    assert!(
        msg.contains("download nobody-org/no-such-model-xyz"),
        "{msg}"
    );
}

#[test]
fn missing_adapters_and_bad_config_are_reported() {
    let tmp = fixture_copy();
    std::fs::write(tmp.path().join("config.json"), "{\"hidden_size\": 64}").unwrap();
    let err = Encoder::load(tmp.path().to_str().unwrap(), &Device::Cpu, DType::F32)
        .err()
        .unwrap();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");

    let tmp = fixture_copy();
    std::fs::remove_dir_all(tmp.path().join("adapters")).unwrap();
    let err = Encoder::load(tmp.path().to_str().unwrap(), &Device::Cpu, DType::F32)
        .err()
        .unwrap();
    assert!(err.to_string().contains("adapter_config.json"), "{err}");
}

#[test]
fn bad_images_are_user_errors_naming_the_input() {
    use quiver_encoder::image::ImageError;
    let enc = encoder();
    let good = image_bytes("b");
    type Expect = fn(&ImageError) -> bool;
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        (Vec::new(), |e| matches!(e, ImageError::Empty)),
        (b"%PDF-1.4 not an image".to_vec(), |e| {
            matches!(e, ImageError::UnknownFormat)
        }),
        (good[..good.len() / 3].to_vec(), |e| {
            matches!(e, ImageError::Decode(_))
        }),
        (thin_png(201, 1), |e| {
            matches!(e, ImageError::AspectRatio { .. })
        }),
    ];
    for (bytes, expected) in cases {
        let err = enc
            .encode_images(&[good.clone(), bytes], "retrieval", None)
            .unwrap_err();
        match &err {
            Error::Image { index: 1, source } => assert!(expected(source), "{err}"),
            other => panic!("expected an image error for input 1, got {other}"),
        }
        assert!(err.is_user_error());
        assert!(err.to_string().starts_with("input 1: "), "{err}");
    }
    // Still within the aspect limit: embeds.
    assert_eq!(
        enc.encode_images(&[thin_png(200, 1)], "retrieval", None)
            .unwrap()
            .len(),
        1
    );
    // Validation before any work: an unknown task is reported even with a broken image.
    let err = enc
        .encode_images(&[Vec::<u8>::new()], "poetry", None)
        .unwrap_err();
    assert!(matches!(err, Error::UnknownTask { .. }), "{err}");
}

#[test]
fn image_limits_apply_before_decoding() {
    use quiver_encoder::image::{ImageError, ImageLimits};
    let mut enc = encoder();
    enc.set_image_limits(ImageLimits {
        max_bytes: 1 << 20,
        max_pixels: 5000,
    });
    let err = enc
        .encode_images(&[image_bytes("c")], "code", None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Image {
                index: 0,
                source: ImageError::TooManyPixels { .. }
            }
        ),
        "{err}"
    );
    assert!(enc.encode_images(&[image_bytes("b")], "code", None).is_ok());
}

#[test]
fn corrupted_images_never_panic() {
    use quiver_encoder::image::{decode, ImageLimits};
    // Deterministic byte flips and truncations of every format; each must return, Ok or Err.
    let img =
        ::image::RgbImage::from_fn(40, 30, |x, y| ::image::Rgb([x as u8 * 6, y as u8 * 8, 90]));
    let mut seeds = Vec::new();
    for format in [
        ::image::ImageFormat::Png,
        ::image::ImageFormat::Jpeg,
        ::image::ImageFormat::WebP,
        ::image::ImageFormat::Gif,
    ] {
        let mut out = std::io::Cursor::new(Vec::new());
        ::image::DynamicImage::ImageRgb8(img.clone())
            .write_to(&mut out, format)
            .unwrap();
        seeds.push(out.into_inner());
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let limits = ImageLimits::default();
    for seed in &seeds {
        for _ in 0..150 {
            let mut bytes = seed.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % bytes.len();
                bytes[i] ^= (next() % 255 + 1) as u8;
            }
            if next() % 3 == 0 {
                bytes.truncate(1 + (next() as usize) % bytes.len());
            }
            let _ = decode(&bytes, &limits);
        }
    }
}

#[test]
fn text_only_checkpoint_refuses_images() {
    let tmp = fixture_copy();
    let cfg_path = tmp.path().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg.as_object_mut().unwrap().remove("vision_config");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let enc = Encoder::load(tmp.path().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    assert!(!enc.supports_images());
    let err = enc
        .encode_images(&[image_bytes("a")], "retrieval", None)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    // Texts still work.
    assert!(enc
        .encode_texts(&["hi"], "retrieval", PromptKind::Query, None)
        .is_ok());
}

/// A `width × height` grey PNG.
fn thin_png(width: u32, height: u32) -> Vec<u8> {
    let img = ::image::RgbImage::from_pixel(width, height, ::image::Rgb([120, 130, 140]));
    let mut out = std::io::Cursor::new(Vec::new());
    ::image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, ::image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}
