//! The wire shapes: request and response bodies in Qdrant's, text-embeddings-inference's and OpenAI's
//! JSON, and their translation to and from the typed requests of the inference layer and the engine.
//! Nothing here knows about actix: the HTTP layer parses bodies into these types, converts them, and
//! serialises the results; conversion failures are [`Error`]s that `http/error.rs` gives a status.

pub mod aliases;
pub mod collection_update;
pub mod collections;
pub mod common;
pub mod documents;
pub mod embeddings;
pub mod error;
pub mod formula;
pub mod groups;
pub mod matrix;
pub mod payload_index;
pub mod points;
pub mod quantization;
pub mod recommend;
pub mod search;
pub mod snapshots;
pub mod strict_mode;
pub mod updates;
mod vector_de;

pub use error::Error;
