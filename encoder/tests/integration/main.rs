//! Encoder integration tests: parity against transformers goldens on the tiny random
//! checkpoint (`tests/fixtures/jina-tiny`, made by `scripts/fixtures/make_tiny_jina.py`),
//! LoRA and batching invariants, config formats, bad input, the service and the real Qwen
//! tokenizer; the BERT sentence encoder on its tiny checkpoint (`tests/fixtures/bert-tiny`) and
//! on the real all-MiniLM-L6-v2; late chunking on both; downloads from a stand-in hub on loopback.

mod bert;
mod common;
mod config;
mod errors;
#[path = "../../../tests/support/fake_hub.rs"]
mod fake_hub;
mod hub;
mod image;
mod image_parity;
mod late_chunking;
mod lora;
mod minilm;
mod packed;
mod parity;
mod qwen_tokenizer;
mod real_images;
mod service;
mod vision;
