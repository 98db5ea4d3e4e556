//! Quiver's embedding models on candle: jina-embeddings-v4 (text and images) and
//! sentence-transformers BERT encoders such as all-MiniLM-L6-v2 (text, dense vectors only).
//!
//! The crate owns model loading (local directory or Hugging Face cache), tokenization with
//! jina's prompts, image preprocessing, the Qwen2.5-VL vision tower and decoder with task LoRAs,
//! the single- and multi-vector heads, the BERT encoder with mean pooling, and a batching
//! service with a bounded queue, and late chunking (chunk vectors pooled from one pass over the
//! whole document). It knows nothing of indexes, storage or HTTP. [`bm25`] is Qdrant's built-in
//! `qdrant/bm25` sparse model, which has no weights.

pub mod batching;
pub mod bm25;
pub mod device;
pub mod embedding;
pub mod encoder;
pub mod error;
pub mod gpu_memory;
pub mod image;
pub mod late_chunking;
pub mod layers;
pub mod loading;
pub mod model;
pub mod models;
pub mod prompt;

pub use batching::{EncodeRequest, EncoderService, Inline, ServiceOptions, ServiceStats};
pub use device::{default_dtype, parse_dtype, DeviceChoice, DeviceError};
pub use embedding::{Embedding, MultiVector};
pub use encoder::{Encoder, LoadOptions, TextOptions};
pub use error::{Error, Result};
pub use image::{ImageError, ImageLimits, PreprocessorConfig};
pub use late_chunking::{LateChunkOptions, TokenizedText, WindowRow};
pub use model::{EmbeddingModel, ModelInfo, ModelKind, RunSpec, DEFAULT_TASK};
pub use prompt::{PromptKind, Truncation, DEFAULT_MAX_LENGTH};

pub use candle_core::{DType, Device};
