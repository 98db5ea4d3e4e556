//! Model definitions. Model files build tensors from `VarBuilder`s and never open files,
//! reach a hub or see the request queue.

pub mod bert;
pub mod jina_v4;
pub mod qwen2_5_vl;
