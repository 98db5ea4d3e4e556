//! Sparse vectors: a few non-zero dimensions out of a vocabulary of up to 2³² (term ids, SPLADE or
//! BM25 weights), scored by the dot product over the dimensions query and point share.
//!
//! - [`SparseVector`]: the value, as points carry it and queries send it; checked and kept sorted by
//!   index so that two vectors meet in one merge.
//! - [`rows::SparseRows`]: the rows of the appendable segment (CSR in memory, WAL-backed).
//! - [`index::SparseIndexFile`]: a sealed segment's immutable inverted index (posting lists sorted by
//!   point offset) with the forward rows beside it, one file read through the mapped-file primitive.
//! - [`idf`]: Qdrant's `modifier: "idf"` weight.

pub mod index;
pub mod rows;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A sparse vector: `values[i]` is the weight of dimension `indices[i]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseVector {
    /// Dimensions, distinct.
    pub indices: Vec<u32>,
    /// Their weights, as many as `indices`.
    pub values: Vec<f32>,
}

/// A borrowed sparse row, sorted by index.
#[derive(Clone, Copy, Debug)]
pub struct SparseRef<'a> {
    /// Dimensions, ascending.
    pub indices: &'a [u32],
    /// Their weights.
    pub values: &'a [f32],
}

impl SparseVector {
    /// Checks lengths, duplicates and finiteness (errors name `name`, the vector) and sorts the
    /// entries by index.
    pub fn checked(mut self, name: &str) -> Result<Self> {
        if self.indices.len() != self.values.len() {
            return Err(Error::InvalidInput(format!(
                "sparse vector `{name}`: indices and values must have the same length, got {} \
                 indices and {} values",
                self.indices.len(),
                self.values.len()
            )));
        }
        if !self.values.iter().all(|v| v.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "sparse vector `{name}` contains NaN or infinite values"
            )));
        }
        if !self.indices.windows(2).all(|w| w[0] < w[1]) {
            let mut pairs: Vec<(u32, f32)> = self
                .indices
                .iter()
                .copied()
                .zip(self.values.iter().copied())
                .collect();
            pairs.sort_unstable_by_key(|p| p.0);
            if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(Error::InvalidInput(format!(
                    "sparse vector `{name}`: index {} appears more than once",
                    w[0].0
                )));
            }
            (self.indices, self.values) = pairs.into_iter().unzip();
        }
        Ok(self)
    }

    /// A borrowed view (the vector must be sorted, as [`SparseVector::checked`] leaves it).
    pub fn as_ref(&self) -> SparseRef<'_> {
        SparseRef {
            indices: &self.indices,
            values: &self.values,
        }
    }
}

impl SparseRef<'_> {
    /// The dot product over shared dimensions, or `None` when the two share none (such a point is
    /// not a hit, as in Qdrant's inverted index).
    pub fn dot(&self, other: &SparseRef<'_>) -> Option<f32> {
        let (mut i, mut j) = (0, 0);
        let mut sum = 0.0f32;
        let mut shared = false;
        while i < self.indices.len() && j < other.indices.len() {
            match self.indices[i].cmp(&other.indices[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += self.values[i] * other.values[j];
                    shared = true;
                    i += 1;
                    j += 1;
                }
            }
        }
        shared.then_some(sum)
    }

    /// The weight of dimension `dim`, if present.
    pub fn get(&self, dim: u32) -> Option<f32> {
        self.indices
            .binary_search(&dim)
            .ok()
            .map(|i| self.values[i])
    }

    /// An owned copy.
    pub fn to_vector(&self) -> SparseVector {
        SparseVector {
            indices: self.indices.to_vec(),
            values: self.values.to_vec(),
        }
    }
}

/// Inverse document frequency as Qdrant computes it for `modifier: "idf"`: `n` points have the
/// vector, `df` of them have the dimension; `ln((n − df + 0.5) / (df + 0.5) + 1)`, which stays
/// positive for a dimension every point has and is defined for `n = 0`.
pub fn idf(n: usize, df: usize) -> f32 {
    let (n, df) = (n as f32, df as f32);
    ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sv(indices: &[u32], values: &[f32]) -> SparseVector {
        SparseVector {
            indices: indices.to_vec(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn checked_sorts_and_refuses_duplicates_and_length_mismatch() {
        let v = sv(&[9, 2, 5], &[1.0, 2.0, 3.0]).checked("s").unwrap();
        assert_eq!(v, sv(&[2, 5, 9], &[2.0, 3.0, 1.0]));
        let e = sv(&[1, 4, 1], &[1.0, 2.0, 3.0])
            .checked("text")
            .unwrap_err();
        assert!(
            e.to_string().contains("`text`") && e.to_string().contains("index 1"),
            "{e}"
        );
        let e = sv(&[1, 2], &[1.0]).checked("text").unwrap_err();
        assert!(e.to_string().contains("same length"), "{e}");
        assert!(sv(&[1], &[f32::NAN]).checked("t").is_err());
        assert_eq!(sv(&[], &[]).checked("t").unwrap(), sv(&[], &[]));
    }

    #[test]
    fn dot_is_over_shared_dimensions_and_none_without_overlap() {
        let a = sv(&[1, 3, 7], &[1.0, 2.0, 3.0]);
        let b = sv(&[3, 4, 7, 9], &[0.5, 9.0, 2.0, 1.0]);
        assert_eq!(a.as_ref().dot(&b.as_ref()), Some(2.0 * 0.5 + 3.0 * 2.0));
        assert_eq!(a.as_ref().dot(&sv(&[2], &[1.0]).as_ref()), None);
        assert_eq!(b.as_ref().get(7), Some(2.0));
        assert_eq!(b.as_ref().get(8), None);
    }

    #[test]
    fn idf_matches_qdrants_formula() {
        // n = 4 points, df = 1: ln((4 - 1 + 0.5) / 1.5 + 1) = ln(3.3333)
        assert!((idf(4, 1) - (10.0f32 / 3.0).ln()).abs() < 1e-6);
        // A dimension in every point still weighs more than nothing.
        assert!(idf(4, 4) > 0.0);
        assert!(idf(100, 1) > idf(100, 50));
        assert!(idf(0, 0).is_finite());
    }
}
