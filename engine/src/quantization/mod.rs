//! Quantization in Qdrant's shapes: a dense vector's rows compressed to codes at seal, kept in their
//! own file (in memory when `always_ram`), walked by the HNSW search instead of the rows, whose
//! candidates the original rows then rescore.
//!
//! - [`config`]: `scalar` (int8, quantile, always_ram) and `binary` (always_ram, encoding,
//!   query_encoding), as stored in the collection config.
//! - [`scalar`]: per-segment offset and scale from the quantile; int8 codes in `0..=127` plus a
//!   per-row correction that makes the integer dot product an estimate of the float one.
//! - [`binary`]: one, one and a half or two bits per component (thresholds from the segment's mean
//!   and standard deviation of that component); queries encoded the same way or kept at 4 or 8 bits.
//! - [`file`]: the codes file, written once and read through the storage crate's mapped-file
//!   primitive, and the per-query scorer the graph walk uses.

pub mod binary;
pub mod config;
pub mod file;
pub mod scalar;

pub use config::{
    BinaryEncoding, BinaryQuantization, BinaryQueryEncoding, QuantizationConfig,
    ScalarQuantization, ScalarType,
};
pub use file::{write_codes, write_codes_of, Codes, CodesFile, CodesScorer};

use crate::index::VectorSlab;

/// Builds the codes of every row of `slab` as `config` says.
pub fn build_codes(config: &QuantizationConfig, slab: VectorSlab<'_>) -> Codes {
    match config {
        QuantizationConfig::Scalar(s) => {
            Codes::Scalar(scalar::ScalarCodes::build(slab, s.quantile()))
        }
        QuantizationConfig::Binary(b) => Codes::Binary(binary::BinaryCodes::build(
            slab,
            b.encoding(),
            b.query_bits(),
        )),
    }
}

#[cfg(test)]
mod tests;
