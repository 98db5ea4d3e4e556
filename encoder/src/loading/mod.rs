//! Finding and reading checkpoints: source resolution (local directory or Hugging Face cache,
//! downloading into the cache when a repo id is missing),
//! config files, sharded safetensors, the adapter file and the sentence-transformers pipeline.
//! Kept apart from the model code, which only sees `VarBuilder`s.

pub mod checkpoint;
#[cfg(feature = "download")]
pub mod hub;
pub mod sentence_transformers;
pub mod source;

pub use checkpoint::{Checkpoint, WeightLayout};
pub use sentence_transformers::{Pooling, SentencePipeline};
pub use source::{resolve_model_dir, resolve_model_dir_in, HubCache};
