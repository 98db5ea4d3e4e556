//! Building blocks shared by the models.

pub mod gelu;
pub mod lora;
pub mod norm;
pub mod pool;

pub use gelu::gelu_erf;
pub use lora::{LoraLinear, TaskAdapters};
pub use norm::RmsNorm;
pub use pool::{l2_normalize, mean_pool};
