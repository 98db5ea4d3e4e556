//! Encoder integration tests: parity against transformers goldens on the tiny random
//! checkpoint (`tests/fixtures/jina-tiny`, made by `scripts/fixtures/make_tiny_jina.py`),
//! LoRA and batching invariants, config formats, bad input, the service and the real Qwen
//! tokenizer.

mod common;
mod config;
mod errors;
mod image;
mod image_parity;
mod lora;
mod parity;
mod qwen_tokenizer;
mod real_images;
mod service;
mod vision;
