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
    let err = Encoder::load("nobody-org/no-such-model-xyz", &Device::Cpu, DType::F32)
        .err()
        .expect("must fail");
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
