//! Qwen2.5-VL, the backbone of jina-embeddings-v4. Only the text decoder is implemented;
//! images need the vision tower of spec §3.1, which is a later step.

pub mod config;
pub mod text;

pub use config::{SpecialTokens, TextConfig};
pub use text::{text_position_ids, MRope, TextModel, TextOutput};
