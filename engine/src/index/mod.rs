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

/// What a graph walk scores rows with: the rows themselves ([`hnsw::SlabScorer`]) or their quantized codes.
pub trait RowScorer: Sync {
    /// Rows it can score.
    fn len(&self) -> usize;

    /// True when it has no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lower-is-better key of `row` against the query.
    fn key(&self, row: u32) -> f32;

    /// Hints the CPU to start loading what [`RowScorer::key`] will read for `row`.
    fn prefetch(&self, _row: u32) {}

    /// Hints the CPU to load the rest of `row` beyond what [`RowScorer::prefetch`] asked for.
    fn prefetch_rest(&self, _row: u32) {}
}

/// Hints the CPU to load every cache line of `s`.
#[inline(always)]
pub(crate) fn prefetch_slice<T>(s: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = s.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(s);
        let mut at = 0;
        while at < bytes {
            // SAFETY: prefetch is a hint that never faults, and `at` is inside `s`.
            unsafe { _mm_prefetch(p.add(at), _MM_HINT_T0) };
            at += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}
