//! Exact scan: scores every accepted row. Ground truth for recall, and the path for small segments and
//! selective filters.

use rayon::prelude::*;

use super::topk::TopK;
use super::{Candidate, VectorSlab};
use crate::config::Distance;
use crate::distance::order_key;

/// Below this many floats the scan runs on the calling thread: splitting costs more than it saves.
const PARALLEL_MIN_FLOATS: usize = 1 << 20;

/// The `k` best rows that `accept` lets through, best first. Equal scores are ordered by offset, so the
/// result is the same whether the scan ran on one thread or many.
pub fn exact_search(
    slab: VectorSlab<'_>,
    distance: Distance,
    query: &[f32],
    k: usize,
    accept: &(dyn Fn(u32) -> bool + Sync),
) -> Vec<Candidate> {
    if k == 0 || slab.dim == 0 || slab.is_empty() || query.len() != slab.dim {
        return Vec::new();
    }
    let rows = slab.len();
    let top = if slab.data.len() < PARALLEL_MIN_FLOATS || rayon::current_num_threads() == 1 {
        scan(slab, distance, query, k, accept, 0, rows)
    } else {
        // Chunks big enough to amortise the heap, small enough to balance across threads.
        let chunk_rows = (PARALLEL_MIN_FLOATS / 4 / slab.dim).max(k).max(1024);
        let chunks = rows.div_ceil(chunk_rows);
        (0..chunks)
            .into_par_iter()
            .map(|c| {
                let start = c * chunk_rows;
                let end = (start + chunk_rows).min(rows);
                scan(slab, distance, query, k, accept, start, end)
            })
            .reduce(|| TopK::new(k), TopK::merge)
    };
    candidates(top, distance)
}

/// The `k` best of `rows` (ascending, each a row of `slab`), best first, as [`exact_search`] ranks
/// them. For a filter the payload indexes answer whole: a scan that tests every row costs a call per
/// row even when one in a hundred passes, where this touches the passing rows only.
pub fn exact_search_rows(
    slab: VectorSlab<'_>,
    distance: Distance,
    query: &[f32],
    k: usize,
    rows: &[u32],
) -> Vec<Candidate> {
    if k == 0 || slab.dim == 0 || rows.is_empty() || query.len() != slab.dim {
        return Vec::new();
    }
    let score = |part: &[u32]| {
        let mut top = TopK::new(k);
        for &row in part {
            top.push(order_key(distance, query, slab.row(row)), row);
        }
        top
    };
    let top = if rows.len() * slab.dim < PARALLEL_MIN_FLOATS || rayon::current_num_threads() == 1 {
        score(rows)
    } else {
        let chunk_rows = (PARALLEL_MIN_FLOATS / 4 / slab.dim).max(k).max(1024);
        rows.par_chunks(chunk_rows)
            .map(score)
            .reduce(|| TopK::new(k), TopK::merge)
    };
    // TopK breaks ties by row, so the order matches a full scan's whichever way the rows were split.
    candidates(top, distance)
}

/// The heap's rows best first, with scores on the distance's scale.
fn candidates(top: TopK, distance: Distance) -> Vec<Candidate> {
    top.into_sorted()
        .into_iter()
        .map(|(key, offset)| Candidate {
            offset,
            score: crate::distance::key_to_score(distance, key),
        })
        .collect()
}

fn scan(
    slab: VectorSlab<'_>,
    distance: Distance,
    query: &[f32],
    k: usize,
    accept: &(dyn Fn(u32) -> bool + Sync),
    start: usize,
    end: usize,
) -> TopK {
    let mut top = TopK::new(k);
    let dim = slab.dim;
    for (i, row) in slab.data[start * dim..end * dim]
        .chunks_exact(dim)
        .enumerate()
    {
        let offset = (start + i) as u32;
        if !accept(offset) {
            continue;
        }
        top.push(order_key(distance, query, row), offset);
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::{is_better, score};
    use rand::{Rng, SeedableRng};

    fn brute_force(
        slab: VectorSlab<'_>,
        distance: Distance,
        query: &[f32],
        k: usize,
        accept: impl Fn(u32) -> bool,
    ) -> Vec<Candidate> {
        let mut all: Vec<Candidate> = (0..slab.len() as u32)
            .filter(|&o| accept(o))
            .map(|o| Candidate {
                offset: o,
                score: score(distance, query, slab.row(o)),
            })
            .collect();
        all.sort_by(|a, b| {
            if is_better(distance, a.score, b.score) {
                std::cmp::Ordering::Less
            } else if is_better(distance, b.score, a.score) {
                std::cmp::Ordering::Greater
            } else {
                a.offset.cmp(&b.offset)
            }
        });
        all.truncate(k);
        all
    }

    #[test]
    fn matches_brute_force_with_and_without_filters() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for &(rows, dim) in &[(1usize, 1usize), (10, 3), (500, 17), (70_000, 16)] {
            let data: Vec<f32> = (0..rows * dim)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let slab = VectorSlab { data: &data, dim };
            let query: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            for distance in [Distance::Cosine, Distance::Dot, Distance::Euclid] {
                for k in [1, 5, 100] {
                    let all = |_: u32| true;
                    let odd = |o: u32| o % 2 == 1;
                    let got = exact_search(slab, distance, &query, k, &all);
                    assert_eq!(got, brute_force(slab, distance, &query, k, all));
                    let got = exact_search(slab, distance, &query, k, &odd);
                    assert_eq!(got, brute_force(slab, distance, &query, k, odd));
                    assert!(got.iter().all(|c| c.offset % 2 == 1));
                }
            }
        }
    }

    #[test]
    fn listed_rows_rank_as_a_filtered_full_scan() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for &(rows, dim) in &[(10usize, 3usize), (3_000, 8), (70_000, 16)] {
            let data: Vec<f32> = (0..rows * dim)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let slab = VectorSlab { data: &data, dim };
            let query: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            for keep in [1u32, 7, 50] {
                let listed: Vec<u32> = (0..rows as u32).filter(|o| o % keep == 0).collect();
                for distance in [Distance::Cosine, Distance::Dot, Distance::Euclid] {
                    for k in [1, 10, 100] {
                        let got = exact_search_rows(slab, distance, &query, k, &listed);
                        let want = exact_search(slab, distance, &query, k, &|o| o % keep == 0);
                        assert_eq!(got, want, "rows {rows}, keep 1/{keep}, {distance:?}, k {k}");
                    }
                }
            }
        }
        // Equal scores come out by row, as from the full scan.
        let data = vec![1.0f32; 6 * 2];
        let slab = VectorSlab {
            data: &data,
            dim: 2,
        };
        let got = exact_search_rows(slab, Distance::Dot, &[1.0, 1.0], 2, &[1, 3, 5]);
        assert_eq!(got.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn ties_are_broken_by_offset() {
        let data = vec![1.0f32; 4 * 2];
        let slab = VectorSlab {
            data: &data,
            dim: 2,
        };
        let got = exact_search(slab, Distance::Dot, &[1.0, 1.0], 3, &|_| true);
        assert_eq!(
            got.iter().map(|c| c.offset).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn degenerate_inputs_return_nothing() {
        let data = [1.0f32, 2.0];
        let slab = VectorSlab {
            data: &data,
            dim: 2,
        };
        assert!(exact_search(slab, Distance::Dot, &[1.0, 0.0], 0, &|_| true).is_empty());
        assert!(exact_search(slab, Distance::Dot, &[1.0, 0.0], 3, &|_| false).is_empty());
        let empty = VectorSlab { data: &[], dim: 2 };
        assert!(exact_search(empty, Distance::Dot, &[1.0, 0.0], 3, &|_| true).is_empty());
        assert_eq!(
            exact_search(slab, Distance::Euclid, &[1.0, 2.0], 3, &|_| true),
            vec![Candidate {
                offset: 0,
                score: 0.0
            }]
        );
    }
}
