//! Finding and reading checkpoints: source resolution (local directory or Hugging Face cache),
//! config files, sharded safetensors and the adapter file. Kept apart from the model code,
//! which only sees `VarBuilder`s.

pub mod checkpoint;
pub mod source;

pub use checkpoint::{Checkpoint, WeightLayout};
pub use source::{resolve_model_dir, resolve_model_dir_in, HubCache};
