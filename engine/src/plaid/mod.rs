//! The token store: per-token vectors (multi-vectors) of a sealed segment, compressed as ColBERTv2
//! residuals and searched as PLAID (Santhanam et al., CIKM 2022; ColBERT `colbert/searcher.py` and
//! `colbert/search/index_storage.py` at commit 501c29d).
//!
//! # What is stored
//! k-means centroids over a sample of the segment's tokens (`2^⌊log2(16·√N_tokens)⌋` of them, unit
//! length); per token its centroid id and its residual `token − centroid` quantised to `nbits` ∈ {1, 2, 4}
//! per dimension with buckets from residual quantiles (cutoffs at `i/2^nbits`, reconstruction weights at
//! `(i + 0.5)/2^nbits`); per point its token range; and inverted lists from each centroid to the points
//! with a token in it (points, not tokens, as PLAID). A token is decompressed as
//! `normalize(centroid + weights[code])`, as ColBERTv2 does. At 128 d a token costs 2 bytes of id plus
//! 16 / 32 / 64 bytes of residual at 1 / 2 / 4 bits, against 512 bytes raw.
//!
//! # Search
//! - [`PlaidIndex::rerank`]: exact MaxSim over decompressed tokens for given candidates (e.g. from a
//!   dense HNSW stage), parallel over candidates.
//! - [`PlaidIndex::search`]: late interaction alone. Top-`ncells` centroids per query token → candidate
//!   points from the inverted lists → approximate scores from centroid scores with centroids under
//!   `t_cs` dropped → best `ndocs` → approximate scores without pruning → best `ndocs/4` → exact MaxSim
//!   → top k. Defaults per k follow ColBERT's searcher ([`PlaidSearchParams`]).
//! - Rescoring over originals: a store may keep its tokens as inserted, rounded to f16, in a file of
//!   their own ([`write_originals`], [`TokenOriginals`], attached with [`PlaidIndex::with_originals`]).
//!   The file is memory-mapped and read only for the last stage's candidates: the best
//!   [`PlaidSearchParams::rescore`] of the exact stage (by default all of them, and the decompression
//!   is skipped) are ranked by exact MaxSim over their originals. Compression then costs candidate
//!   recall only, not ranking; the file costs `2 · dim` bytes per token of disk, not memory.
//! - [`TokenMatrices`]: the same exact MaxSim (rerank and exhaustive search) over raw `f32` tokens, for
//!   the appendable segment and as the oracle of recall tests.
//!
//! Scores are MaxSim sums (higher is better); ties are broken by lower point offset, so results do not
//! depend on thread count. Deleted points are filtered by an `accept` predicate before scoring and are
//! never returned. Queries are used as given: the caller normalises them as it normalises documents.
//!
//! # Integration (sealed segment)
//! ```no_run
//! # use std::sync::atomic::AtomicBool;
//! # use quiver_engine::plaid::*;
//! # fn f(offsets: &[u64], data: &[f32], dir: &std::path::Path, q: &[f32]) -> quiver_engine::Result<()> {
//! let tokens = TokenMatrices::new(offsets, data, 128)?;      // point offset i = rows offsets[i]..offsets[i+1]
//! let build = PlaidBuild::build(tokens, &PlaidBuildParams::default(), &AtomicBool::new(false))?;
//! let path = dir.join(DEFAULT_FILE_NAME);
//! let written = build.write(&path)?;                          // size + CRC-32 for the segment manifest
//! let index = PlaidIndex::open(&path)?;                       // mmap; header, checksum and structure checked
//! let hits = index.search(q, 10, &PlaidSearchParams::default(), &|offset| offset != 3)?;
//! # let _ = (written, hits); Ok(()) }
//! ```
//! [`PlaidIndex`] is `Send + Sync`; keep it in an `Arc` beside the segment's other files.

mod codec;
mod originals;
mod rng;
pub(crate) mod search;
mod serialize;
#[cfg(any(test, feature = "test-corpus"))]
pub mod synthetic;
mod train;
mod view;

use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

pub use crate::index::Candidate;
pub use originals::{write_originals, TokenOriginals, ORIGINALS_FILE_NAME};
pub use quiver_storage::segment::TokenRows;
pub use train::default_num_centroids;
pub use view::PlaidIndex;

use crate::{Error, Result};

/// Suggested file name of a segment's token store (one per multi-vector name).
pub const DEFAULT_FILE_NAME: &str = "tokens.plaid";

/// Most centroids a store may have (ids are `u32`; beyond 65,536 they take 4 bytes instead of 2).
pub const MAX_CENTROIDS: usize = 1 << 22;

/// How a token store is built. Stored with the collection config; all fields have defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaidBuildParams {
    /// Bits per residual dimension: 1, 2 or 4. ColBERTv2 uses 2 (32 bytes per 128-d token), fast-plaid
    /// 4 (64 bytes, closer to raw scores).
    pub nbits: u8,
    /// Centroid count; `None` takes ColBERTv2's `2^⌊log2(16·√N_tokens)⌋` ([`default_num_centroids`]).
    pub num_centroids: Option<usize>,
    /// k-means iterations (ColBERT: 4).
    pub kmeans_iters: usize,
    /// k-means trains on at most this many sampled tokens per centroid (FAISS caps at 256); the cost of
    /// training is `iters × sample × centroids × dim`.
    pub max_points_per_centroid: usize,
    /// Seed of sampling and initialisation; the same input and params give the same file.
    pub seed: u64,
}

impl Default for PlaidBuildParams {
    fn default() -> Self {
        PlaidBuildParams {
            nbits: 2,
            num_centroids: None,
            kmeans_iters: 4,
            max_points_per_centroid: 32,
            seed: 0x5EED,
        }
    }
}

impl PlaidBuildParams {
    /// Rejects params that cannot work, naming the field.
    pub fn validate(&self) -> Result<()> {
        if !matches!(self.nbits, 1 | 2 | 4) {
            return Err(Error::InvalidInput(format!(
                "token store nbits must be 1, 2 or 4, got {}",
                self.nbits
            )));
        }
        if let Some(k) = self.num_centroids {
            if k == 0 || k > MAX_CENTROIDS {
                return Err(Error::InvalidInput(format!(
                    "token store num_centroids must be between 1 and {MAX_CENTROIDS}, got {k}"
                )));
            }
        }
        if self.kmeans_iters == 0 || self.max_points_per_centroid == 0 {
            return Err(Error::InvalidInput(
                "token store kmeans_iters and max_points_per_centroid must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Per-query PLAID parameters; `None` takes the default for the requested `k`:
///
/// | k | ncells | centroid_score_threshold | ndocs |
/// |---|---|---|---|
/// | ≤ 10 | 2 | 0.45 | 256 |
/// | ≤ 100 | 2 | 0.45 | 1024 |
/// | more | 4 | 0.4 | max(4k, 4096) |
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaidSearchParams {
    /// Centroids probed per query token (ColBERT's `ncells`, NextPlaid's `n_ivf_probe`).
    pub ncells: Option<usize>,
    /// Centroids whose best score against any query token is below this are ignored by the pruned
    /// approximate stage (PLAID's `t_cs`).
    #[serde(alias = "t_cs")]
    pub centroid_score_threshold: Option<f32>,
    /// Candidates kept after the pruned approximate stage.
    pub ndocs: Option<usize>,
    /// Candidates scored exactly after the unpruned approximate stage; default `ndocs / 4`.
    pub n_full_scores: Option<usize>,
    /// For a store with originals ([`PlaidIndex::with_originals`]): how many of the exact stage's
    /// candidates are scored again by exact MaxSim over the f16 originals, which then rank the result.
    /// Default: all `n_full_scores` of them (the stage over decompressed tokens is then skipped). `0`
    /// ranks on decompressed tokens only; fewer than `k` counts as `k`. Ignored without originals.
    pub rescore: Option<usize>,
}

/// [`PlaidSearchParams`] with every default applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResolvedSearchParams {
    /// Centroids probed per query token.
    pub ncells: usize,
    /// Pruning threshold of the first approximate stage.
    pub centroid_score_threshold: f32,
    /// Candidates kept by the pruned stage (at least `k`).
    pub ndocs: usize,
    /// Candidates scored exactly (at least `k`).
    pub n_full_scores: usize,
    /// Candidates rescored over the originals: 0 (none) or between `k` and `n_full_scores`.
    pub rescore: usize,
}

impl PlaidSearchParams {
    /// The parameters for a query asking for `k` results from a store with (`originals`) or without
    /// its f16 originals attached.
    pub fn resolve(&self, k: usize, originals: bool) -> Result<ResolvedSearchParams> {
        // ColBERT's defaults, except that k ≤ 10 probes two cells per query token instead of one: on
        // all-MiniLM-L6-v2 tokens that took recall@10 from 0.89 to 0.92 (4 bits) at the same speed,
        // because the second cell's inverted list is cheap next to the exact stage. A store that
        // rescores over its originals ranks its last candidates exactly, so it is the candidates'
        // recall that caps it: for k ≤ 10 it keeps twice the candidates (2 bits, MiniLM tokens:
        // recall@10 0.938 at 256, 0.959 at 512).
        let (ncells, t_cs, ndocs) = if k <= 10 {
            (2, 0.45, if originals { 512 } else { 256 })
        } else if k <= 100 {
            (2, 0.45, 1024)
        } else {
            (4, 0.4, (4 * k).max(4096))
        };
        let ncells = self.ncells.unwrap_or(ncells);
        let t_cs = self.centroid_score_threshold.unwrap_or(t_cs);
        let ndocs = self.ndocs.unwrap_or(ndocs);
        if ncells == 0 || ndocs == 0 || self.n_full_scores == Some(0) {
            return Err(Error::InvalidInput(
                "plaid ncells, ndocs and n_full_scores must be at least 1".into(),
            ));
        }
        if !t_cs.is_finite() {
            return Err(Error::InvalidInput(
                "plaid centroid_score_threshold must be a finite number".into(),
            ));
        }
        let n_full_scores = self.n_full_scores.unwrap_or(ndocs / 4).max(k);
        let rescore = match self.rescore.unwrap_or(n_full_scores) {
            0 => 0,
            r => r.clamp(k, n_full_scores),
        };
        Ok(ResolvedSearchParams {
            ncells,
            centroid_score_threshold: t_cs,
            ndocs: ndocs.max(k),
            n_full_scores,
            rescore,
        })
    }
}

/// Why `offsets` and `dim` cannot describe token rows, if they cannot: `dim` is at least 1, the offsets
/// start at 0 and never decrease, and there are at most `u32::MAX` points.
fn check_shape(offsets: &[u64], dim: usize) -> std::result::Result<(), &'static str> {
    if dim == 0 {
        return Err("dim must be at least 1");
    }
    if offsets.first() != Some(&0) {
        return Err("offsets must start at 0");
    }
    if offsets.len() - 1 > u32::MAX as usize {
        return Err("more than u32::MAX points");
    }
    if offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err("offsets must not decrease");
    }
    Ok(())
}

impl TokenRows for TokenMatrices<'_> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn offsets(&self) -> &[u64] {
        self.offsets
    }

    fn point_rows<'s>(&'s self, i: usize, _buf: &'s mut Vec<f32>) -> &'s [f32] {
        self.point(i as u32).unwrap_or(&[])
    }
}

/// Raw `f32` token matrices of a segment, borrowed: point `i` is rows `offsets[i]..offsets[i + 1]` of the
/// `dim`-strided `data`. The input of [`PlaidBuild::build`], and exact MaxSim search over raw tokens.
#[derive(Clone, Copy, Debug)]
pub struct TokenMatrices<'a> {
    offsets: &'a [u64],
    data: &'a [f32],
    dim: usize,
}

impl<'a> TokenMatrices<'a> {
    /// Checks the shape: `offsets` starts at 0, never decreases and ends at `data.len() / dim`; at most
    /// `u32::MAX` points.
    pub fn new(offsets: &'a [u64], data: &'a [f32], dim: usize) -> Result<Self> {
        check_shape(offsets, dim)
            .map_err(|why| Error::InvalidInput(format!("token matrices: {why}")))?;
        if !data.len().is_multiple_of(dim)
            || offsets[offsets.len() - 1] != (data.len() / dim) as u64
        {
            return Err(Error::InvalidInput(
                "token matrices: offsets do not end at the number of token rows".into(),
            ));
        }
        Ok(TokenMatrices { offsets, data, dim })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of token rows.
    pub fn num_tokens(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Floats per token.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Token offsets (`len() + 1` entries).
    pub fn offsets(&self) -> &'a [u64] {
        self.offsets
    }

    /// All token rows.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// The tokens of point `offset`, or `None` past the end.
    pub fn point(&self, offset: u32) -> Option<&'a [f32]> {
        let o = offset as usize;
        let (start, end) = (*self.offsets.get(o)?, *self.offsets.get(o + 1)?);
        Some(&self.data[start as usize * self.dim..end as usize * self.dim])
    }

    /// Exact MaxSim of `query` (`dim`-strided rows) against point `offset`.
    pub fn max_sim(&self, query: &[f32], offset: u32) -> Result<f32> {
        search::check_query(query, self.dim)?;
        let doc = self
            .point(offset)
            .ok_or_else(|| out_of_range(offset, self.len()))?;
        Ok(max_sim(query, doc, self.dim))
    }

    /// The `k` best of `candidates` by exact MaxSim, best first; candidates `accept` rejects are skipped,
    /// duplicates are scored once, an offset past the end is an error.
    pub fn rerank(
        &self,
        query: &[f32],
        candidates: &[u32],
        k: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Result<Vec<Candidate>> {
        search::check_query(query, self.dim)?;
        if let Some(&bad) = candidates.iter().find(|&&c| c as usize >= self.len()) {
            return Err(out_of_range(bad, self.len()));
        }
        Ok(search::rerank_by(
            candidates,
            k,
            accept,
            &|offset, scratch| {
                let doc = self.point(offset).expect("candidate checked above");
                crate::kernels::max_sim_with(query, doc, self.dim, &mut scratch.best)
            },
        ))
    }

    /// Exhaustive MaxSim search: the `k` best accepted points, best first.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Result<Vec<Candidate>> {
        let all: Vec<u32> = (0..self.len() as u32).collect();
        self.rerank(query, &all, k, accept)
    }
}

pub use crate::kernels::max_sim;

fn out_of_range(offset: u32, len: usize) -> Error {
    Error::InvalidInput(format!(
        "point offset {offset} is out of range: the token store holds {len} points"
    ))
}

/// Per-token centroid ids, 2 bytes each when the store has at most 65,536 centroids.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CentroidIds {
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl CentroidIds {
    pub(crate) fn len(&self) -> usize {
        match self {
            CentroidIds::U16(v) => v.len(),
            CentroidIds::U32(v) => v.len(),
        }
    }
}

/// A token store built in memory, before it is written ([`PlaidBuild::write`]) or searched directly
/// ([`PlaidIndex::from_build`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PlaidBuild {
    pub(crate) dim: usize,
    pub(crate) nbits: u32,
    pub(crate) centroids: Vec<f32>,
    pub(crate) cutoffs: Vec<f32>,
    pub(crate) weights: Vec<f32>,
    pub(crate) doc_offsets: Vec<u64>,
    pub(crate) ids: CentroidIds,
    pub(crate) residuals: Vec<u8>,
    pub(crate) ivf_offsets: Vec<u64>,
    pub(crate) ivf_docs: Vec<u32>,
}

impl PlaidBuild {
    /// Trains centroids and buckets on `tokens` and compresses them. Deterministic for a given input
    /// and params, whatever the thread count. Checks `stop` between chunks of work and returns
    /// [`Error::Cancelled`] once it is set. Runs on the current rayon pool.
    ///
    /// The tokens are read a few points at a time, as often as training needs them, and never
    /// gathered: the build holds its sample's indices, the per-token ids and codes, and what it writes.
    pub fn build(
        tokens: impl TokenRows,
        params: &PlaidBuildParams,
        stop: &AtomicBool,
    ) -> Result<PlaidBuild> {
        check_shape(tokens.offsets(), tokens.dim())
            .map_err(|why| Error::InvalidInput(format!("token store: {why}")))?;
        train::build(&tokens, params, stop)
    }

    /// Number of points.
    pub fn num_points(&self) -> usize {
        self.doc_offsets.len() - 1
    }

    /// Number of centroids.
    pub fn num_centroids(&self) -> usize {
        self.centroids.len() / self.dim
    }

    /// Bucket cutoffs (`2^nbits − 1`, ascending).
    pub fn bucket_cutoffs(&self) -> &[f32] {
        &self.cutoffs
    }

    /// Bucket weights, the reconstruction value of each code (`2^nbits`).
    pub fn bucket_weights(&self) -> &[f32] {
        &self.weights
    }
}

#[cfg(test)]
mod tests;
