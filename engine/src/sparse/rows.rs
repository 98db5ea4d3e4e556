//! Sparse rows in memory, one per point offset (empty where a point lacks the vector): the
//! appendable segment's store and what a seal hands to [`super::index::write_index`].

use super::{SparseRef, SparseVector};

/// Rows in CSR form: row `i` is `indices[offsets[i]..offsets[i + 1]]` with its values.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseRows {
    /// `len + 1` entry offsets.
    pub offsets: Vec<u64>,
    /// Every row's dimensions, ascending within a row.
    pub indices: Vec<u32>,
    /// Their weights.
    pub values: Vec<f32>,
    /// Whether each row holds the vector (an empty vector is stored, and differs from none).
    pub present: Vec<bool>,
}

impl Default for SparseRows {
    fn default() -> Self {
        SparseRows {
            offsets: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
            present: Vec::new(),
        }
    }
}

impl SparseRows {
    /// Rows stored.
    pub fn len(&self) -> usize {
        self.present.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.present.is_empty()
    }

    /// Appends a row (a checked, sorted vector, or `None` for a point without it).
    pub fn push(&mut self, row: Option<SparseRef<'_>>) {
        if let Some(r) = row {
            self.indices.extend_from_slice(r.indices);
            self.values.extend_from_slice(r.values);
        }
        self.present.push(row.is_some());
        self.offsets.push(self.indices.len() as u64);
    }

    /// Appends an owned vector.
    pub fn push_vector(&mut self, v: Option<&SparseVector>) {
        self.push(v.map(SparseVector::as_ref));
    }

    /// Row `i`, if the point has the vector.
    pub fn row(&self, i: u32) -> Option<SparseRef<'_>> {
        let i = i as usize;
        if !*self.present.get(i)? {
            return None;
        }
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        Some(SparseRef {
            indices: &self.indices[a..b],
            values: &self.values[a..b],
        })
    }
}
