//! The real Qwen2 tokenizer (same BPE and special ids as jina-embeddings-v4), fetched by
//! `scripts/fetch-test-assets.sh` into `target/test-assets/` (override: QUIVER_QWEN_TOKENIZER).

use std::path::PathBuf;

use quiver_encoder::prompt::TextTokenizer;
use quiver_encoder::{PromptKind, Truncation};

fn tokenizer() -> TextTokenizer {
    let path = std::env::var_os("QUIVER_QWEN_TOKENIZER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/test-assets/qwen-tokenizer.json")
        });
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-test-assets.sh first (or set QUIVER_QWEN_TOKENIZER)",
        path.display()
    );
    TextTokenizer::from_file(&path).unwrap()
}

#[test]
fn prompts_tokenize_like_jina() {
    let tok = tokenizer();
    let d = Truncation::default();
    let q = tok
        .encode_prompted(
            "What is the weather like in Berlin today?",
            "retrieval",
            PromptKind::Query,
            d,
            0,
        )
        .unwrap();
    assert_eq!(
        q,
        [2859, 25, 3555, 374, 279, 9104, 1075, 304, 19846, 3351, 30]
    );
    let p = tok
        .encode_prompted(
            "Berlin is the capital of Germany.",
            "retrieval",
            PromptKind::Passage,
            d,
            0,
        )
        .unwrap();
    assert_eq!(p, [12187, 424, 25, 19846, 374, 279, 6722, 315, 9856, 13]);
    // text-matching is symmetric: passages get "Query: " too.
    let m = tok
        .encode_prompted(
            "What is the weather like in Berlin today?",
            "text-matching",
            PromptKind::Passage,
            d,
            0,
        )
        .unwrap();
    assert_eq!(m, q);
    assert_eq!(
        tok.encode_raw("Hello world, 你好!").unwrap(),
        [9707, 1879, 11, 220, 108386, 0]
    );
}

#[test]
fn image_template_special_tokens_are_atomic() {
    let tok = tokenizer();
    let ids = tok
        .encode_raw("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe the image.<|im_end|>\n")
        .unwrap();
    assert_eq!(
        ids,
        [151644, 872, 198, 151652, 151655, 151653, 74785, 279, 2168, 13, 151645, 198]
    );
    assert_eq!(tok.encode_raw("<|endoftext|>").unwrap(), [151643]);
    // The encoder builds the same row from the two halves around the pads.
    let prompt = quiver_encoder::prompt::ImagePrompt::new(&tok, 151652, 151653).unwrap();
    assert_eq!(prompt.ids(151655, 1), ids);
}

#[test]
fn truncation_after_prefix() {
    let tok = tokenizer();
    let t = Truncation {
        max_length: 4,
        truncate: true,
    };
    let ids = tok
        .encode_prompted(
            "What is the weather like in Berlin today?",
            "code",
            PromptKind::Query,
            t,
            0,
        )
        .unwrap();
    assert_eq!(ids, [2859, 25, 3555, 374]);
}
