//! Scoring over a store's arrays (mapped or owned): decompression, exact MaxSim, rerank and PLAID's
//! four-stage late-interaction search.

use std::cell::Cell;
use std::cmp::Ordering;
use std::ops::Range;

use rayon::prelude::*;

use super::codec::ResidualDecoder;
use super::originals::TokenOriginals;
use super::{Candidate, ResolvedSearchParams};
use crate::kernels::{dot_rows, max_sim_with};
use crate::{Error, Result};

/// Per-thread buffers of scoring.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Decompressed tokens of one point.
    pub tokens: Vec<f32>,
    /// Per-query-row best scores.
    pub best: Vec<f32>,
}

thread_local! {
    /// This thread's scoring buffers, kept from one search to the next (see [`CENTROID_SCORES`]).
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// A [`Scratch`] taken from this thread's slot (a fresh one when a caller further up this thread
/// holds it: rayon runs other tasks while one waits), put back when dropped unless it grew past
/// [`KEPT_SCORES_MAX`] floats.
pub(crate) struct PooledScratch(pub Scratch);

impl PooledScratch {
    pub(crate) fn take() -> Self {
        PooledScratch(SCRATCH.take())
    }
}

impl Drop for PooledScratch {
    fn drop(&mut self) {
        if self.0.tokens.capacity() <= KEPT_SCORES_MAX {
            SCRATCH.set(std::mem::take(&mut self.0));
        }
    }
}

/// Per-token centroid ids, borrowed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IdsRef<'a> {
    U16(&'a [u16]),
    U32(&'a [u32]),
}

impl IdsRef<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            IdsRef::U16(v) => v.len(),
            IdsRef::U32(v) => v.len(),
        }
    }

    #[inline]
    fn for_each(&self, range: Range<usize>, mut f: impl FnMut(usize)) {
        match self {
            IdsRef::U16(v) => v[range].iter().for_each(|&c| f(c as usize)),
            IdsRef::U32(v) => v[range].iter().for_each(|&c| f(c as usize)),
        }
    }

    pub(crate) fn max(&self) -> Option<usize> {
        match self {
            IdsRef::U16(v) => v.iter().max().map(|&c| c as usize),
            IdsRef::U32(v) => v.iter().max().map(|&c| c as usize),
        }
    }
}

/// A store's arrays. Invariants (checked when a file is opened, true by construction for a build):
/// offsets start at 0, never decrease and end at the array they index; every id is in range.
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub dim: usize,
    pub centroids: &'a [f32],
    pub doc_offsets: &'a [u64],
    pub ids: IdsRef<'a>,
    pub residuals: &'a [u8],
    pub bytes_per_token: usize,
    pub ivf_offsets: &'a [u64],
    pub ivf_docs: &'a [u32],
    pub decoder: &'a ResidualDecoder,
    /// The tokens as inserted (f16), when the store keeps them.
    pub originals: Option<&'a TokenOriginals>,
}

impl Parts<'_> {
    pub(crate) fn num_points(&self) -> usize {
        self.doc_offsets.len() - 1
    }

    pub(crate) fn num_centroids(&self) -> usize {
        self.centroids.len() / self.dim
    }

    fn tokens_of(&self, doc: u32) -> Range<usize> {
        self.doc_offsets[doc as usize] as usize..self.doc_offsets[doc as usize + 1] as usize
    }

    /// Decompresses point `doc` into `out` (`len × dim`, unit rows).
    pub(crate) fn decompress(&self, doc: u32, out: &mut Vec<f32>) {
        let range = self.tokens_of(doc);
        let (dim, bpt) = (self.dim, self.bytes_per_token);
        out.clear();
        out.resize(range.len() * dim, 0.0);
        let first = range.start;
        for (i, row) in out.chunks_exact_mut(dim).enumerate() {
            let t = first + i;
            let c = self.id(t);
            self.decoder.decompress_into(
                &self.centroids[c * dim..(c + 1) * dim],
                &self.residuals[t * bpt..(t + 1) * bpt],
                row,
            );
        }
    }

    #[inline]
    fn id(&self, t: usize) -> usize {
        match self.ids {
            IdsRef::U16(v) => v[t] as usize,
            IdsRef::U32(v) => v[t] as usize,
        }
    }

    /// Exact MaxSim of `query` against decompressed point `doc`.
    pub(crate) fn exact(&self, query: &[f32], doc: u32, scratch: &mut Scratch) -> f32 {
        self.decompress(doc, &mut scratch.tokens);
        max_sim_with(query, &scratch.tokens, self.dim, &mut scratch.best)
    }

    /// Exact MaxSim of `query` against `doc`'s f16 originals (the store must have them).
    pub(crate) fn exact_original(
        &self,
        originals: &TokenOriginals,
        query: &[f32],
        doc: u32,
        scratch: &mut Scratch,
    ) -> f32 {
        originals.decode_into(self.tokens_of(doc), &mut scratch.tokens);
        max_sim_with(query, &scratch.tokens, self.dim, &mut scratch.best)
    }
}

/// `Ok(query rows)`, or the error for an empty, ragged or non-finite query.
pub(crate) fn check_query(query: &[f32], dim: usize) -> Result<usize> {
    if query.is_empty() {
        return Err(Error::InvalidInput(
            "multivector query has no vectors".into(),
        ));
    }
    if !query.len().is_multiple_of(dim) {
        return Err(Error::DimensionMismatch {
            name: String::new(),
            expected: dim,
            got: query.len() % dim,
        });
    }
    if query.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidInput(
            "multivector query holds a non-finite value".into(),
        ));
    }
    Ok(query.len() / dim)
}

/// Best first; equal scores by lower offset.
fn rank(a: &Candidate, b: &Candidate) -> Ordering {
    b.score.total_cmp(&a.score).then(a.offset.cmp(&b.offset))
}

/// The `k` best of `v`, best first.
pub(crate) fn top_k(mut v: Vec<Candidate>, k: usize) -> Vec<Candidate> {
    if k == 0 {
        return Vec::new();
    }
    if v.len() > k {
        v.select_nth_unstable_by(k - 1, rank);
        v.truncate(k);
    }
    v.sort_unstable_by(rank);
    v
}

/// Scores the accepted, distinct `candidates` with `score` in parallel and keeps the `k` best.
pub(crate) fn rerank_by(
    candidates: &[u32],
    k: usize,
    accept: &(dyn Fn(u32) -> bool + Sync),
    score: &(dyn Fn(u32, &mut Scratch) -> f32 + Sync),
) -> Vec<Candidate> {
    if k == 0 {
        return Vec::new();
    }
    let mut ids = candidates.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let scored: Vec<Candidate> = ids
        .par_iter()
        .with_min_len(4)
        .filter(|&&offset| accept(offset))
        .map_init(PooledScratch::take, |scratch, &offset| Candidate {
            offset,
            score: score(offset, &mut scratch.0),
        })
        .collect();
    top_k(scored, k)
}

/// Largest centroid-score buffer (in floats, 16 MiB) a thread keeps for its next search.
const KEPT_SCORES_MAX: usize = 4 << 20;

thread_local! {
    /// The last search's centroid scores on this thread, kept for the next one: a query's scores are
    /// megabytes (centroids × query tokens), and a fresh buffer each time costs its page faults again
    /// wherever the allocator returns freed pages to the kernel at once (the server does, without a
    /// model): on 100,000 documents that was 17-20 ms a query over HTTP against 12 ms.
    static CENTROID_SCORES: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// PLAID late-interaction search over `parts` (see the module docs for the stages).
pub(crate) fn plaid_search(
    parts: &Parts<'_>,
    query: &[f32],
    k: usize,
    p: &ResolvedSearchParams,
    accept: &(dyn Fn(u32) -> bool + Sync),
) -> Vec<Candidate> {
    let (dim, nq, n_cells) = (parts.dim, query.len() / parts.dim, parts.num_centroids());
    if k == 0 || n_cells == 0 {
        return Vec::new();
    }
    // Centroid scores, centroid-major: row c holds c's score against every query token. A search
    // nested in this one on the same thread (rayon runs other tasks while it waits) finds the slot
    // empty and allocates its own.
    let mut cs = CENTROID_SCORES.take();
    cs.clear();
    cs.resize(n_cells * nq, 0.0);
    cs.par_chunks_mut(nq * 256)
        .zip(parts.centroids.par_chunks(dim * 256))
        .for_each(|(out, cents)| {
            for (o, c) in out.chunks_exact_mut(nq).zip(cents.chunks_exact(dim)) {
                dot_rows(query, c, dim, o);
            }
        });

    let candidates = candidate_points(parts, &cs, nq, p.ncells, k, accept);
    let n_candidates = candidates.len();

    // Stage 2: centroid interaction with pruning.
    let keep: Vec<bool> = cs
        .chunks_exact(nq)
        .map(|row| row.iter().any(|&s| s >= p.centroid_score_threshold))
        .collect();
    let stage2 = if candidates.len() > p.ndocs {
        top_k(
            approximate(parts, &cs, nq, &candidates, Some(&keep)),
            p.ndocs,
        )
    } else {
        candidates
            .iter()
            .map(|&offset| Candidate { offset, score: 0.0 })
            .collect()
    };
    // Stage 3: centroid interaction without pruning.
    let survivors: Vec<u32> = stage2.iter().map(|c| c.offset).collect();
    let stage3: Vec<u32> = if survivors.len() > p.n_full_scores {
        top_k(
            approximate(parts, &cs, nq, &survivors, None),
            p.n_full_scores,
        )
        .into_iter()
        .map(|c| c.offset)
        .collect()
    } else {
        survivors
    };
    // Stage 4: exact MaxSim over decompressed residuals; with originals, the best `rescore` of them
    // (all, skipping the decompression, when `rescore` covers the stage) by exact MaxSim over the
    // originals.
    let decompressed = |doc: u32, scratch: &mut Scratch| parts.exact(query, doc, scratch);
    let hits = match parts.originals.filter(|_| p.rescore > 0) {
        None => rerank_by(&stage3, k, &|_| true, &decompressed),
        Some(originals) => {
            let shortlist: Vec<u32> = if stage3.len() > p.rescore {
                rerank_by(&stage3, p.rescore, &|_| true, &decompressed)
                    .into_iter()
                    .map(|c| c.offset)
                    .collect()
            } else {
                stage3
            };
            rerank_by(&shortlist, k, &|_| true, &|doc, scratch| {
                parts.exact_original(originals, query, doc, scratch)
            })
        }
    };
    tracing::debug!(
        candidates = n_candidates,
        stage2 = stage2.len(),
        "plaid search"
    );
    if cs.capacity() <= KEPT_SCORES_MAX {
        CENTROID_SCORES.set(cs);
    }
    hits
}

/// Stage 1: the accepted points with a token in one of each query token's `ncells` best centroids.
/// When that yields fewer than `k` points, the probe widens (doubling `ncells`) so that a small or
/// heavily deleted segment still fills the result.
fn candidate_points(
    parts: &Parts<'_>,
    cs: &[f32],
    nq: usize,
    ncells: usize,
    k: usize,
    accept: &(dyn Fn(u32) -> bool + Sync),
) -> Vec<u32> {
    let n_cells = parts.num_centroids();
    let mut seen = vec![0u64; parts.num_points().div_ceil(64)];
    let mut probed = vec![false; n_cells];
    let mut out = Vec::new();
    let mut ncells = ncells.min(n_cells);
    let mut top: Vec<(f32, u32)> = Vec::with_capacity(ncells + 1);
    loop {
        for i in 0..nq {
            top.clear();
            for c in 0..n_cells {
                let s = cs[c * nq + i];
                if top.len() < ncells || s > top[top.len() - 1].0 {
                    let at = top.partition_point(|&(t, _)| t >= s);
                    top.insert(at, (s, c as u32));
                    top.truncate(ncells);
                }
            }
            for &(_, c) in &top {
                let c = c as usize;
                if std::mem::replace(&mut probed[c], true) {
                    continue;
                }
                let list = &parts.ivf_docs
                    [parts.ivf_offsets[c] as usize..parts.ivf_offsets[c + 1] as usize];
                for &doc in list {
                    let (w, bit) = (doc as usize / 64, 1u64 << (doc % 64));
                    if seen[w] & bit == 0 {
                        seen[w] |= bit;
                        if accept(doc) {
                            out.push(doc);
                        }
                    }
                }
            }
        }
        if out.len() >= k || ncells >= n_cells {
            return out;
        }
        ncells = (ncells * 2).min(n_cells);
    }
}

/// Approximate MaxSim from centroid scores: for each query token the best score of a centroid holding
/// one of the point's tokens (only centroids in `keep`, when given), summed; a query token with no kept
/// centroid adds nothing.
fn approximate(
    parts: &Parts<'_>,
    cs: &[f32],
    nq: usize,
    docs: &[u32],
    keep: Option<&[bool]>,
) -> Vec<Candidate> {
    docs.par_iter()
        .with_min_len(64)
        .map_init(
            || vec![f32::NEG_INFINITY; nq],
            |best, &doc| {
                best.fill(f32::NEG_INFINITY);
                parts.ids.for_each(parts.tokens_of(doc), |c| {
                    if keep.is_none_or(|k| k[c]) {
                        for (b, &s) in best.iter_mut().zip(&cs[c * nq..(c + 1) * nq]) {
                            *b = b.max(s);
                        }
                    }
                });
                let score = best.iter().filter(|s| s.is_finite()).sum();
                Candidate { offset: doc, score }
            },
        )
        .collect()
}
