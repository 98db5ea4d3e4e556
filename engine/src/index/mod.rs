//! Vector indexes over one segment's vectors: exact scan and HNSW. Both read vectors from a flat
//! `f32` slab (memory-mapped for sealed segments, a `Vec` for the appendable one) and return offsets
//! into it with Qdrant-convention scores, best first.

pub mod exact;
pub mod hnsw;
pub mod prefix;
mod topk;
mod visited;

/// A segment's vectors: `data.len() / dim` rows of `dim` floats.
#[derive(Clone, Copy, Debug)]
pub struct VectorSlab<'a> {
    /// Row-major vector data.
    pub data: &'a [f32],
    /// Floats per row.
    pub dim: usize,
}

impl<'a> VectorSlab<'a> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `offset`.
    pub fn row(&self, offset: u32) -> &'a [f32] {
        let start = offset as usize * self.dim;
        &self.data[start..start + self.dim]
    }
}

/// A hit inside one segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Row offset in the segment.
    pub offset: u32,
    /// Qdrant-convention score (similarity, or distance for Euclid).
    pub score: f32,
}
