//! Exact scan: scores every accepted row. Ground truth for recall, and the path for small segments and
//! selective filters.

use super::{Candidate, VectorSlab};
use crate::config::Distance;

/// The `k` best rows that `accept` lets through, best first.
pub fn exact_search(
    slab: VectorSlab<'_>,
    distance: Distance,
    query: &[f32],
    k: usize,
    accept: &(dyn Fn(u32) -> bool + Sync),
) -> Vec<Candidate> {
    let _ = (slab, distance, query, k, accept);
    todo!()
}
