//! Building blocks shared by the models.

pub mod causal_attention;
pub mod exp;
pub mod gelu;
pub mod lora;
pub mod norm;
pub mod pool;
pub mod swiglu;

pub use gelu::gelu_erf;
pub use lora::{LoraLinear, TaskAdapters};
pub use norm::RmsNorm;
pub use pool::{l2_normalize, mean_pool};
pub use swiglu::silu_mul;
