//! Quantization settings as stored with a collection. The serde shape is Qdrant's
//! (`{"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}`,
//! `{"binary": {"always_ram": true, "encoding": "two_bits", "query_encoding": "scalar8bits"}}`).

use serde::{Deserialize, Serialize};

/// How a dense vector's rows are quantized.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum QuantizationConfig {
    /// One byte per component.
    Scalar(ScalarQuantization),
    /// One bit per component.
    Binary(BinaryQuantization),
}

impl QuantizationConfig {
    /// Whether the codes are read into memory whatever the vector's `on_disk` says.
    pub fn always_ram(&self) -> bool {
        match self {
            QuantizationConfig::Scalar(s) => s.always_ram,
            QuantizationConfig::Binary(b) => b.always_ram,
        }
        .unwrap_or(false)
    }
}

/// Scalar quantization settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalarQuantization {
    /// The code type; only `int8`.
    #[serde(rename = "type")]
    pub kind: ScalarType,
    /// In (0.5, 1]: trims the code range's ends as Qdrant does (see [`super::scalar::bounds`]);
    /// none (the default) or 1 spans every component value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// Keep the codes in memory even when the vector's rows stay on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_ram: Option<bool>,
}

impl ScalarQuantization {
    /// The quantile the bounds are trimmed to, if any.
    pub fn quantile(&self) -> Option<f32> {
        self.quantile.map(|q| q as f32)
    }
}

/// Scalar code types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalarType {
    /// One byte per component.
    Int8,
}

/// Binary quantization settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinaryQuantization {
    /// Keep the codes in memory even when the vector's rows stay on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_ram: Option<bool>,
    /// Bits per component: `one_bit` (the default), `two_bits` or `one_and_half_bits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<BinaryEncoding>,
    /// How a query is encoded against the codes: `default` and `binary` encode it as the rows are;
    /// `scalar4bits` and `scalar8bits` keep 4 or 8 bits per component (asymmetric scoring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_encoding: Option<BinaryQueryEncoding>,
}

impl BinaryQuantization {
    /// The encoding in force.
    pub fn encoding(&self) -> BinaryEncoding {
        self.encoding.unwrap_or(BinaryEncoding::OneBit)
    }

    /// Bits per component of an encoded query: 1 (encoded as the rows are), 4 or 8.
    pub fn query_bits(&self) -> u8 {
        match self.query_encoding {
            None | Some(BinaryQueryEncoding::Default | BinaryQueryEncoding::Binary) => 1,
            Some(BinaryQueryEncoding::Scalar4Bits) => 4,
            Some(BinaryQueryEncoding::Scalar8Bits) => 8,
        }
    }
}

/// Binary encodings (Qdrant's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryEncoding {
    /// One bit per component: above or below the segment's mean of that component.
    OneBit,
    /// Two bits per component: below, within or above `mean ± 2/3 · stddev`.
    TwoBits,
    /// Two bits' first bit per component, their second bit shared (OR) by pairs of components.
    OneAndHalfBits,
}

/// Query encodings of binary quantization (Qdrant's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BinaryQueryEncoding {
    /// As `binary`.
    Default,
    /// The query encoded as the rows are; scored by the number of differing bits.
    Binary,
    /// The query quantized to 4 bits per component and scored against the rows' bits.
    Scalar4Bits,
    /// The query quantized to 8 bits per component and scored against the rows' bits.
    Scalar8Bits,
}
