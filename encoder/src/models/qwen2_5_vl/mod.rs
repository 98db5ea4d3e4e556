//! Qwen2.5-VL, the backbone of jina-embeddings-v4: the text decoder, the vision tower and the
//! 3-D (M-RoPE) position ids that join them.

pub mod config;
pub mod rope_index;
pub mod text;
pub mod vision;

pub use config::{SpecialTokens, TextConfig};
pub use rope_index::multimodal_position_ids;
pub use text::{text_position_ids, MRope, PackedInput, TextModel, TextOutput};
pub use vision::{window_layout, VisionConfig, VisionModel, WindowLayout};
