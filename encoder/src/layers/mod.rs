//! Building blocks shared by the models.

pub mod lora;

pub use lora::{LoraLinear, TaskAdapters};
