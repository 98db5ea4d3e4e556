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

/// Hints the CPU to start loading the first two cache lines of `row`, a row a walk will score soon:
/// asked for every fresh neighbour of an expansion at once, more lines than that queue more misses than
/// the core keeps in flight (see [`prefetch_rest`] for the rest).
#[inline(always)]
pub(crate) fn prefetch_head<T>(row: &[T]) {
    let bytes = std::mem::size_of_val(row);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = row.as_ptr().cast::<i8>();
        // SAFETY: prefetch is a hint that never faults, and both addresses lie inside `row`.
        unsafe {
            if bytes > 0 {
                _mm_prefetch(p, _MM_HINT_T0);
            }
            if bytes > 64 {
                _mm_prefetch(p.add(64), _MM_HINT_T0);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Hints the CPU to load `row` beyond the two lines [`prefetch_head`] asked for: a walk asks for the
/// next row's rest while it scores one.
#[inline(always)]
pub(crate) fn prefetch_rest<T>(row: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = row.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(row);
        let mut at = 128;
        while at < bytes {
            // SAFETY: prefetch is a hint that never faults, and `at` is inside `row`.
            unsafe { _mm_prefetch(p.add(at), _MM_HINT_T0) };
            at += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}
