//! Building blocks shared by the models.

pub mod lora;
pub mod norm;

pub use lora::{LoraLinear, TaskAdapters};
pub use norm::RmsNorm;
