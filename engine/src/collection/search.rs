//! Nearest-neighbour search over every segment, merged by score.
//!
//! Per segment: a graph walk when the segment has a graph (and the request is not `exact`), else an
//! exact scan. A quantized vector's graph walk scores its codes and the original rows rescore the
//! `limit × oversampling` best (unless the request asks for the codes' scores or to ignore them).
//!
//! With a filter, a planner ([`plan_filter`]) chooses between a scan and a graph walk that checks
//! the filter at each node. When the payload indexes answer the whole filter, they give the exact
//! number of points that pass, and the scan scores only those points' rows (as Qdrant's plain
//! search iterates its index's matches): fewer points than the vector's `full_scan_threshold` (in
//! points; the server converts Qdrant's KiB of vectors with the vector's dimension) are scanned,
//! as Qdrant decides. Otherwise the count is estimated from a sample and a scan reads every point's
//! payload, so up to a fixed 2,000 points are scanned. Under 5 % of the segment is scanned either
//! way. Candidate lists are always scored exactly.
//!
//! Multi-vector (MaxSim) queries use a sealed segment's token store (PLAID) to find hits, under the
//! same planner (with a fixed count, [`MULTI_FILTER_EXACT_MAX_POINTS`], for the indexed case), and
//! score them exactly over the raw rows; `exact` requests, candidate lists and the appendable segment
//! scan the raw rows.
//!
//! A request's deadline (Qdrant's `timeout`) is checked before each segment and, inside exact scans,
//! every [`DEADLINE_CHECK_ROWS`] rows (every point of a MaxSim scan); past it the search answers
//! [`Error::Timeout`], never partial hits.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use quiver_storage::PointId;
use rayon::prelude::*;

use super::field_index::{self, SegmentFilter};
use super::payload;
use super::segment::{check_with_vectors, View};
use super::state::SegmentSet;
use super::validate;
use super::value_graphs::ValueGraph;
use crate::config::{CollectionConfig, Distance};
use crate::distance;
use crate::filter::Filter;
use crate::index::exact::{exact_search, exact_search_rows};
use crate::index::hnsw::GraphView;
use crate::index::prefix::{prefix_of, prefix_score};
use crate::index::{Candidate, RowScorer, VectorSlab};
use crate::kernels;
use crate::payload_schema::PayloadSchema;
use crate::plaid::search::{PooledScratch, Scratch};
use crate::plaid::PlaidSearchParams;
use crate::point::{QueryVector, ScoredPoint, SearchRequest};
use crate::quantization::CodesFile;
use crate::query::{self, Deadline};
use crate::{Error, Result};

/// Points per task of an exhaustive multi-vector scan: each is tens of microseconds of MaxSim, so a
/// segment of a few dozen points stays on the calling thread.
const MULTI_SCAN_CHUNK: usize = 32;
/// Rows an exact scan scores between two looks at the clock when the request has a deadline.
pub(crate) const DEADLINE_CHECK_ROWS: u32 = 1_024;
/// Points sampled to estimate a filter's selectivity.
const FILTER_SAMPLE: usize = 1_000;
/// A filter the payload indexes do not answer whole, expected to pass at most this many points of a
/// segment, is scanned exactly (see [`plan_filter`]).
const FILTER_PAYLOAD_SCAN_MAX_POINTS: usize = 2_000;
/// A multi-vector filter the indexes answer, passing fewer points than this, is scanned exactly. Not
/// the vector's `full_scan_threshold`: that counts dense rows, and a MaxSim over a point's tokens
/// costs tens of them, so a point count tuned for dense scans would send too many points to a scan.
const MULTI_FILTER_EXACT_MAX_POINTS: usize = 2_000;
/// A filter expected to pass less than this fraction of a segment is scanned exactly whatever its
/// count: a graph walk would visit many rejected nodes per accepted one, and without payload-aware
/// links the accepted ones fall apart into islands the walk cannot reach.
const FILTER_EXACT_MAX_FRACTION: f64 = 0.05;

/// One segment's best offsets with their scores, and how it was searched.
type SegmentHits = (Vec<(u32, f32)>, Path);

/// How a filtered search of one segment runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FilterPlan {
    Exact,
    Graph,
}

/// How one segment was searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// Its graph or token store was walked.
    Index,
    /// The graph of the payload value its filter requires was walked.
    ValueGraph,
    /// Scanned exactly although it has an index: the request asked for it, or the filter planner
    /// chose it.
    Exact,
    /// Scanned because it has no index for the vector (the appendable segment, small segments).
    Unindexed,
    /// Its share of a prefetch's candidates was scored.
    Candidates,
}

/// How the segments of one search were searched, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Trace {
    /// Segments whose index was walked, value graphs included.
    pub index: usize,
    /// Of those, segments whose walk was on a value graph.
    pub value_graph: usize,
    pub exact: usize,
    pub unindexed: usize,
    pub candidates: usize,
}

impl Trace {
    pub(crate) fn add(&mut self, path: Path) {
        match path {
            Path::Index => self.index += 1,
            Path::ValueGraph => {
                self.index += 1;
                self.value_graph += 1;
            }
            Path::Exact => self.exact += 1,
            Path::Unindexed => self.unindexed += 1,
            Path::Candidates => self.candidates += 1,
        }
    }
}

pub(crate) fn cmp_scores(dist: Distance, a: f32, b: f32) -> Ordering {
    if distance::is_better(dist, a, b) {
        Ordering::Less
    } else if distance::is_better(dist, b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

struct Ctx<'a> {
    name: &'a str,
    dist: Distance,
    k: usize,
    ef: usize,
    exact: bool,
    filter: Option<&'a Filter>,
    /// The payload indexes the filter may use.
    schema: &'a PayloadSchema,
    candidates: Option<&'a HashSet<PointId>>,
    plaid: &'a PlaidSearchParams,
    /// The Matryoshka prefix the vector's graph indexes, if any.
    index_dims: Option<usize>,
    /// Rescore prefix or codes candidates with the full vectors (see [`SearchRequest::rescore`]).
    rescore: bool,
    /// Codes candidates per requested hit (see [`SearchRequest::oversampling`]).
    oversampling: f64,
    /// Walk on the rows even where codes exist.
    ignore_quantization: bool,
    /// A filter expected to pass fewer points of a segment than this is scanned exactly.
    full_scan_threshold: usize,
    /// When the search must stop.
    deadline: Option<&'a Deadline>,
}

/// SplitMix64: a cheap, well-mixed sequence for sampling offsets without aliasing on periodic data.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Estimates the fraction of live points of `view` that pass `filter`: exact for segments of up to
/// [`FILTER_SAMPLE`] points, otherwise from a pseudo-random sample of that many offsets.
pub(crate) fn estimate_pass_fraction(view: &View<'_>, filter: &SegmentFilter<'_>) -> f64 {
    let n = view.len();
    let (mut live, mut pass) = (0usize, 0usize);
    let mut visit = |off: u32| {
        if view.is_live(off) {
            live += 1;
            if filter.passes(view, off) {
                pass += 1;
            }
        }
    };
    if n <= FILTER_SAMPLE {
        (0..n as u32).for_each(&mut visit);
    } else {
        (0..FILTER_SAMPLE as u64)
            .map(|j| (splitmix64(j) % n as u64) as u32)
            .for_each(&mut visit);
    }
    if live == 0 {
        0.0
    } else {
        pass as f64 / live as f64
    }
}

/// Chooses how to run a filtered search over a segment with a graph.
///
/// When the payload indexes answer the whole filter, they give the exact number of live points that
/// pass, and a scan scores those rows only: fewer than `threshold` (the vector's
/// `full_scan_threshold`, in points) are scanned, more are checked inside the graph walk. This is
/// Qdrant's rule: its HNSW index scans when the upper bound of its cardinality estimate is under
/// `full_scan_threshold` (its KiB of vectors, in points), walks the graph when the lower bound is
/// over it, and samples in between; an exact count is both bounds at once.
///
/// Otherwise the count is estimated from a sample, and a scan must read the payload of every point
/// of the segment whatever the count, so a larger threshold buys no cheaper scan: a count up to
/// [`FILTER_PAYLOAD_SCAN_MAX_POINTS`] is scanned, whatever the threshold. Measured on 30,000 random
/// 384-d vectors with 10 % passing an unindexed filter, scanning under Qdrant's default threshold
/// (6,666 such points) ran at 24 QPS against 150 for the walk.
///
/// Either way, less than [`FILTER_EXACT_MAX_FRACTION`] of the segment is scanned.
pub(crate) fn plan_filter(
    view: &View<'_>,
    filter: &SegmentFilter<'_>,
    threshold: usize,
) -> FilterPlan {
    let live = view.live_count();
    let fraction = |count: f64| if live > 0 { count / live as f64 } else { 0.0 };
    let (frac, scan) = match filter.live_pass_count(view) {
        Some(count) => (fraction(count as f64), count < threshold),
        None => {
            let frac = estimate_pass_fraction(view, filter);
            let expected = frac * live as f64;
            (frac, expected <= FILTER_PAYLOAD_SCAN_MAX_POINTS as f64)
        }
    };
    if scan || frac < FILTER_EXACT_MAX_FRACTION {
        FilterPlan::Exact
    } else {
        FilterPlan::Graph
    }
}

fn top_k(dist: Distance, mut hits: Vec<(u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    hits.sort_unstable_by(|a, b| cmp_scores(dist, a.1, b.1).then(a.0.cmp(&b.0)));
    hits.truncate(k);
    hits
}

fn search_dense(view: &View<'_>, ctx: &Ctx<'_>, q: &[f32]) -> (Vec<(u32, f32)>, Path) {
    let Some(d) = view.dense(ctx.name) else {
        return (Vec::new(), Path::Unindexed);
    };
    let filter = SegmentFilter::new(view, ctx.filter, ctx.schema);
    if let Some(cands) = ctx.candidates {
        let hits = cands
            .iter()
            .filter_map(|id| view.find(id))
            .filter(|&off| filter.passes(view, off))
            .filter_map(|off| {
                let row = d.point_to_row(off)?;
                Some((off, distance::score(ctx.dist, q, d.slab.row(row))))
            })
            .collect();
        return (top_k(ctx.dist, hits, ctx.k), Path::Candidates);
    }
    let live_point = |row: u32| d.row_to_point(row).filter(|&off| view.is_live(off));
    let accept = |row: u32| live_point(row).is_some_and(|off| filter.passes(view, off));
    // A prefix-indexed vector walks its prefix graph; anything else (no graph, `exact`, a selective
    // filter) scans. A scan is exact over the full rows, except for a funnel stage that asked for
    // prefix scores, which it computes from the full rows so every segment ranks on one scale.
    let prefix = ctx.index_dims.filter(|_| !ctx.exact);
    let walk_slab = match prefix {
        Some(_) => view.prefix_slab(ctx.name),
        None => Some(d.slab),
    };
    let (planned, has_graph) = planned_walk(
        view,
        ctx.name,
        ctx.filter,
        &filter,
        ctx.full_scan_threshold,
        !ctx.exact && walk_slab.is_some(),
    );
    let indexed = walk_slab.filter(|_| has_graph);
    let graph = indexed.and_then(|slab| planned.map(|w| (w, slab)));
    let path = match (graph, indexed.is_some() || ctx.exact) {
        (Some((Walk::Value(_), _)), _) => Path::ValueGraph,
        (Some(_), _) => Path::Index,
        (None, true) => Path::Exact,
        (None, false) => Path::Unindexed,
    };
    // A filter the payload indexes answer whole names its passing points: a scan scores those rows
    // only, instead of testing every row of the segment.
    let listed = || -> Option<Vec<u32>> {
        ctx.filter?;
        let offs = filter.live_passing(view)?;
        Some(
            offs.into_iter()
                .filter_map(|off| d.point_to_row(off))
                .collect(),
        )
    };
    let found: Vec<Candidate> = match (graph, prefix) {
        (Some((g, slab)), Some(dims)) => {
            let qp = prefix_of(ctx.dist, q, dims);
            let codes = view
                .codes(ctx.name)
                .filter(|c| !ctx.ignore_quantization && c.dim() == dims);
            if let Some(codes) = codes {
                // The prefix's codes find `ef` candidates (or `k × oversampling`, if more); the full
                // rows rescore them, or for a funnel's first stage the prefix rows do: every segment
                // answers on one scale (the appendable one scans the prefix).
                let full = |row: u32| distance::score(ctx.dist, q, d.slab.row(row));
                let prefix = |row: u32| distance::score(ctx.dist, &qp, slab.row(row));
                let rescore: &dyn Fn(u32) -> f32 = if ctx.rescore { &full } else { &prefix };
                let want = oversampled(ctx).max(ctx.ef);
                walk_codes(&g, codes, ctx, &qp, want, Some(rescore), &accept)
            } else if ctx.rescore {
                let walked = g.search(slab, ctx.dist, &qp, ctx.ef, ctx.ef, &accept);
                let rescored = walked
                    .into_iter()
                    .map(|c| (c.offset, distance::score(ctx.dist, q, d.slab.row(c.offset))))
                    .collect();
                top_k(ctx.dist, rescored, ctx.k)
                    .into_iter()
                    .map(|(offset, score)| Candidate { offset, score })
                    .collect()
            } else {
                g.search(slab, ctx.dist, &qp, ctx.k, ctx.ef, &accept)
            }
        }
        (Some((g, slab)), None) => {
            match view.codes(ctx.name).filter(|_| !ctx.ignore_quantization) {
                Some(codes) => {
                    let full = |row: u32| distance::score(ctx.dist, q, d.slab.row(row));
                    let rescore = ctx.rescore.then_some(&full as &dyn Fn(u32) -> f32);
                    walk_codes(&g, codes, ctx, q, oversampled(ctx), rescore, &accept)
                }
                None => g.search(slab, ctx.dist, q, ctx.k, ctx.ef, &accept),
            }
        }
        (None, Some(dims)) if !ctx.rescore => {
            let qp = prefix_of(ctx.dist, q, dims);
            let rows: Vec<u32> = match listed() {
                Some(rows) => rows,
                None => (0..d.slab.len() as u32)
                    .filter(|&row| accept(row))
                    .collect(),
            };
            let hits = rows
                .into_iter()
                .map(|row| (row, prefix_score(ctx.dist, &qp, d.slab.row(row))))
                .collect();
            top_k(ctx.dist, hits, ctx.k)
                .into_iter()
                .map(|(offset, score)| Candidate { offset, score })
                .collect()
        }
        (None, _) => match (listed(), ctx.deadline) {
            (Some(rows), _) => exact_search_rows(d.slab, ctx.dist, q, ctx.k, &rows),
            (None, None) => exact_search(d.slab, ctx.dist, q, ctx.k, &accept),
            // Past the deadline every further row is refused, so the scan ends at once; the caller
            // sees the deadline passed and answers with the timeout, not these partial hits.
            (None, Some(deadline)) => {
                let stopped = AtomicBool::new(false);
                let timed = |row: u32| {
                    if row.is_multiple_of(DEADLINE_CHECK_ROWS) && deadline.expired() {
                        stopped.store(true, AtomicOrdering::Relaxed);
                    }
                    !stopped.load(AtomicOrdering::Relaxed) && accept(row)
                };
                exact_search(d.slab, ctx.dist, q, ctx.k, &timed)
            }
        },
    };
    let hits = found
        .into_iter()
        .filter_map(|c| Some((d.row_to_point(c.offset)?, c.score)))
        .collect();
    (hits, path)
}

/// The graph a search of vector `name` walks on `view`, if it walks one (`may_walk`, and the
/// planner does not scan the filter), and whether the segment has any graph for the search. A
/// filter that requires one value of an indexed field walks that value's graph, which holds exactly
/// the segment's points with the value; anything else walks the vector's own graph.
pub(crate) fn planned_walk<'v>(
    view: &'v View<'_>,
    name: &str,
    filter: Option<&Filter>,
    pass: &SegmentFilter<'_>,
    threshold: usize,
    may_walk: bool,
) -> (Option<Walk<'v>>, bool) {
    let main = view.graph(name).map(Walk::Main);
    let pinned = filter
        .and_then(|f| view.value_graph(name, f))
        .map(Walk::Value);
    let has_graph = main.is_some() || pinned.is_some();
    let walk = match filter {
        _ if !may_walk || !has_graph => None,
        None => main,
        Some(_) => (plan_filter(view, pass, threshold) == FilterPlan::Graph)
            .then_some(pinned.or(main))
            .flatten(),
    };
    (walk, has_graph)
}

/// The graph a search walks: the vector's own, or the graph of the one payload value its filter
/// requires.
#[derive(Clone, Copy)]
pub(crate) enum Walk<'a> {
    Main(&'a GraphView),
    Value(&'a ValueGraph),
}

impl Walk<'_> {
    /// [`GraphView::search_by`] on this graph, in rows of the vector.
    pub(crate) fn search_by<S: RowScorer>(
        &self,
        scorer: &S,
        k: usize,
        ef: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<(u32, f32)> {
        match self {
            Walk::Main(g) => g.search_by(scorer, k, ef, accept),
            Walk::Value(v) => v.graph.search_rows_by(scorer, &v.block.rows, k, ef, accept),
        }
    }

    /// [`GraphView::search`] on this graph, in rows of `slab`.
    fn search(
        &self,
        slab: VectorSlab<'_>,
        dist: Distance,
        q: &[f32],
        k: usize,
        ef: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<Candidate> {
        match self {
            Walk::Main(g) => g.search(slab, dist, q, k, ef, accept),
            Walk::Value(v) => {
                v.graph
                    .search_rows(slab, Some(&v.block.rows), dist, q, k, ef, accept)
            }
        }
    }
}

/// Candidates a walk on codes keeps for rescoring: `k × oversampling`, at least `k`.
fn oversampled(ctx: &Ctx<'_>) -> usize {
    ((ctx.k as f64 * ctx.oversampling).ceil() as usize).max(ctx.k)
}

/// A graph walk on a quantized vector's codes for `query` (as the codes stand: the prefix of a
/// Matryoshka binding): the `want` best by the codes' scores, of which `rescore` picks the best `k`
/// by the rows' scores; without it, the codes' own scores.
fn walk_codes(
    graph: &Walk<'_>,
    codes: &CodesFile,
    ctx: &Ctx<'_>,
    query: &[f32],
    want: usize,
    rescore: Option<&dyn Fn(u32) -> f32>,
    accept: &(dyn Fn(u32) -> bool + Sync),
) -> Vec<Candidate> {
    let scorer = codes.scorer(ctx.dist, query);
    let walked = graph.search_by(&scorer, want, ctx.ef.max(want), accept);
    let hits = match rescore {
        Some(score) => {
            let exact = walked
                .into_iter()
                .map(|(row, _)| (row, score(row)))
                .collect();
            top_k(ctx.dist, exact, ctx.k)
        }
        None => walked
            .into_iter()
            .take(ctx.k)
            .map(|(row, key)| (row, scorer.key_to_score(key)))
            .collect(),
    };
    hits.into_iter()
        .map(|(offset, score)| Candidate { offset, score })
        .collect()
}

/// Multi-vector score: MaxSim (sum over query rows of the best dot product) for Cosine and Dot; for
/// Euclid, Qdrant's definition: the square root of the sum over query rows of the nearest row's
/// squared distance (lower is better, like Euclid). `best` is scratch for the query rows' maxima,
/// reused over a scan.
fn multi_score(dist: Distance, query: &[f32], doc: &[f32], dim: usize, best: &mut Vec<f32>) -> f32 {
    match dist {
        Distance::Cosine | Distance::Dot => kernels::max_sim_with(query, doc, dim, best),
        Distance::Euclid => query
            .chunks_exact(dim)
            .map(|q| {
                doc.chunks_exact(dim)
                    .map(|d| distance::l2_squared(q, d))
                    .fold(f32::INFINITY, f32::min)
            })
            .sum::<f32>()
            .sqrt(),
    }
}

/// Multi-vector search of one segment. Candidates (a rerank stage) and `exact` requests are scored
/// exactly over the raw rows; so is a segment without a token store (the appendable one) and a
/// selective filter. Otherwise the token store (PLAID) finds the hits and the raw rows score them, so
/// scores are exact MaxSim whichever way a point was found and segments merge on one scale.
fn search_multi(
    view: &View<'_>,
    ctx: &Ctx<'_>,
    q: &[f32],
    dim: usize,
) -> Result<(Vec<(u32, f32)>, Path)> {
    let filter = SegmentFilter::new(view, ctx.filter, ctx.schema);
    // A MaxSim is tens of microseconds, so the clock is read for every point; past the deadline the
    // rest are skipped and the caller answers with the timeout.
    // Each task of a scan keeps one buffer for the point's rows (widened from f16, or decompressed)
    // and one for the query rows' maxima.
    let score = |(rows, best): &mut (Vec<f32>, Vec<f32>), off: u32| {
        if ctx.deadline.is_some_and(Deadline::expired) || !filter.passes(view, off) {
            return None;
        }
        let s = view.with_multi_rows(ctx.name, off, rows, |doc| {
            multi_score(ctx.dist, q, doc, dim, best)
        })?;
        Some((off, s))
    };
    let buffers = || (Vec::new(), Vec::new());
    let store = match ctx.candidates {
        None => view.plaid(ctx.name),
        Some(_) => None,
    };
    if let Some(store) = store.filter(|_| !ctx.exact) {
        if ctx.filter.is_none()
            || plan_filter(view, &filter, MULTI_FILTER_EXACT_MAX_POINTS) == FilterPlan::Graph
        {
            let accept = |off: u32| view.is_live(off) && filter.passes(view, off);
            // The store's exact stage ranks its `n_full_scores` candidates on compressed tokens, where
            // near-ties flip under quantisation noise. All of them go on to the raw rows (cheap: they
            // are a few dozen points), so the compression costs candidate recall only, not ranking.
            if store.has_originals() {
                // The store ranks its last candidates on the f16 originals itself, the same tokens
                // `multi_rows` reads: its scores are final.
                let found = store.search(q, ctx.k, ctx.plaid, &accept)?;
                let hits = found.into_iter().map(|c| (c.offset, c.score)).collect();
                return Ok((top_k(ctx.dist, hits, ctx.k), Path::Index));
            }
            let r = ctx.plaid.resolve(ctx.k, false)?;
            let depth = r.n_full_scores.max(ctx.k);
            let explicit = PlaidSearchParams {
                ncells: Some(r.ncells),
                centroid_score_threshold: Some(r.centroid_score_threshold),
                ndocs: Some(r.ndocs),
                n_full_scores: Some(r.n_full_scores),
                rescore: Some(0),
            };
            let found = store.search(q, depth, &explicit, &accept)?;
            // One buffer for every candidate's decompressed tokens: a fresh one each cost its page
            // faults again where freed pages go back to the kernel at once (the server without a
            // model), a third of a query's time on 100,000 documents.
            let mut scratch = PooledScratch::take();
            let Scratch { tokens, best } = &mut scratch.0;
            let hits = found
                .into_iter()
                .filter_map(|c| {
                    let score = view.with_multi_rows(ctx.name, c.offset, tokens, |rows| {
                        multi_score(ctx.dist, q, rows, dim, best)
                    })?;
                    Some((c.offset, score))
                })
                .collect();
            return Ok((top_k(ctx.dist, hits, ctx.k), Path::Index));
        }
    }
    let path = match (ctx.candidates, store) {
        (Some(_), _) => Path::Candidates,
        (None, Some(_)) => Path::Exact,
        (None, None) if ctx.exact => Path::Exact,
        (None, None) => Path::Unindexed,
    };
    let hits: Vec<(u32, f32)> = match ctx.candidates {
        Some(c) => {
            let mut bufs = buffers();
            c.iter()
                .filter_map(|id| view.find(id))
                .filter_map(|off| score(&mut bufs, off))
                .collect()
        }
        // A filter the payload indexes answer whole lists the points to score; else the segment is
        // scanned whole. In parallel chunks either way.
        None => match ctx.filter.and_then(|_| filter.live_passing(view)) {
            Some(offs) => offs
                .into_par_iter()
                .with_min_len(MULTI_SCAN_CHUNK)
                .map_init(buffers, score)
                .flatten_iter()
                .collect(),
            None => (0..view.len() as u32)
                .into_par_iter()
                .with_min_len(MULTI_SCAN_CHUNK)
                .filter(|&o| view.is_live(o))
                .map_init(buffers, score)
                .flatten_iter()
                .collect(),
        },
    };
    Ok((top_k(ctx.dist, hits, ctx.k), path))
}

pub(crate) fn search(
    config: &CollectionConfig,
    set: &SegmentSet,
    req: &SearchRequest,
) -> Result<Vec<ScoredPoint>> {
    search_traced(config, set, req).map(|(hits, _)| hits)
}

/// [`search`], also saying how each segment was searched.
pub(crate) fn search_traced(
    config: &CollectionConfig,
    set: &SegmentSet,
    req: &SearchRequest,
) -> Result<(Vec<ScoredPoint>, Trace)> {
    query::check(req.deadline.as_ref())?;
    if let Some(sparse) = config.sparse(&req.using) {
        return super::sparse_search::search_traced(config, set, req, sparse);
    }
    let params = config.vector(&req.using)?;
    let hnsw = config.hnsw_for(&req.using);
    check_with_vectors(config, &req.with_vectors)?;
    let query = validate::query(&req.using, params, &req.query)?;
    field_index::warm(set, req.filter.as_ref());
    let views = set.views();
    // No segment can return more than it holds: bounds the work of absurd limits and offsets.
    let stored: usize = views.iter().map(|v| v.len()).sum();
    let k = req.limit_with_offset().min(stored);
    let mut trace = Trace::default();
    if k == 0 {
        return Ok((Vec::new(), trace));
    }
    let candidates: Option<HashSet<PointId>> =
        req.candidates.as_ref().map(|c| c.iter().copied().collect());
    let default_plaid = PlaidSearchParams::default();
    let ctx = Ctx {
        name: &req.using,
        dist: params.distance,
        k,
        ef: req.ef.unwrap_or(hnsw.ef).max(k),
        exact: req.exact,
        filter: req.filter.as_ref(),
        schema: &set.schema,
        candidates: candidates.as_ref(),
        plaid: req.plaid.as_ref().unwrap_or(&default_plaid),
        index_dims: config.index_dims(&req.using),
        rescore: req.rescore,
        oversampling: req.oversampling.unwrap_or(1.0),
        ignore_quantization: req.ignore_quantization,
        full_scan_threshold: hnsw.full_scan_threshold,
        deadline: req.deadline.as_ref(),
    };
    let flat: Vec<f32> = match &query {
        QueryVector::Multi(rows) => rows.concat(),
        _ => Vec::new(),
    };
    let search_one = |view: &View<'_>| {
        // Checked before each segment; long scans also check inside.
        query::check(ctx.deadline)?;
        match &query {
            QueryVector::Dense(q) => Ok(search_dense(view, &ctx, q)),
            QueryVector::Multi(_) => search_multi(view, &ctx, &flat, params.size),
            // `validate::query` refuses a sparse query on a dense field.
            QueryVector::Sparse(_) => Err(Error::InvalidInput(format!(
                "vector `{}` is not a sparse vector",
                req.using
            ))),
        }
    };
    // MaxSim costs milliseconds a segment, so segments are searched side by side; a dense segment's
    // graph walk is tens of microseconds, where a hand-off to other threads does not pay.
    let per_segment: Vec<Result<SegmentHits>> =
        if matches!(query, QueryVector::Multi(_)) && views.len() > 1 {
            views.par_iter().map(search_one).collect()
        } else {
            views.iter().map(search_one).collect()
        };
    // A scan that met the deadline stopped early with partial hits: the answer is the timeout.
    query::check(ctx.deadline)?;
    let mut hits: Vec<(f32, PointId, usize, u32)> = Vec::new();
    for (si, (view, found)) in views.iter().zip(per_segment).enumerate() {
        let (seg_hits, path) = found?;
        trace.add(path);
        hits.extend(
            seg_hits
                .into_iter()
                .map(|(off, score)| (score, view.id(off), si, off)),
        );
    }
    Ok((finish(config, &views, hits, ctx.dist, req), trace))
}

/// The merged hits of every segment (score, id, segment, offset), ranked, cut by the threshold,
/// paged, with what the request asked to see.
pub(crate) fn finish(
    config: &CollectionConfig,
    views: &[View<'_>],
    mut hits: Vec<(f32, PointId, usize, u32)>,
    dist: Distance,
    req: &SearchRequest,
) -> Vec<ScoredPoint> {
    hits.sort_unstable_by(|a, b| cmp_scores(dist, a.0, b.0).then(a.1.cmp(&b.1)));
    hits.into_iter()
        .filter(|h| {
            req.score_threshold.is_none_or(|t| {
                if dist.higher_is_better() {
                    h.0 >= t
                } else {
                    h.0 <= t
                }
            })
        })
        .skip(req.offset)
        .take(req.limit)
        .map(|(score, id, si, off)| {
            let v = &views[si];
            ScoredPoint {
                id,
                score,
                payload: payload::project_with(|| v.payload(off), &req.with_payload),
                vectors: v.vectors(config, off, &req.with_vectors),
                order_value: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collection::segment::MemSegment;
    use crate::point::{NamedVectors, PointInsert, Vector};
    use serde_json::json;

    #[test]
    fn multivector_euclid_is_qdrants_root_of_summed_squared_distances() {
        let doc = [3.0, 3.0, 3.0, 4.0, 2.0, 1.0];
        let query = [1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 4.0, 5.0, 6.0];
        // Nearest squared distances 5, 0 and 14: sqrt(19), as Qdrant answers (4.358899).
        let score = multi_score(Distance::Euclid, &query, &doc, 3, &mut Vec::new());
        assert!((score - 19f32.sqrt()).abs() < 1e-6, "{score}");
    }

    #[test]
    fn planner_scans_selective_filters_and_walks_the_graph_for_broad_ones() {
        let config = CollectionConfig::single(2, Distance::Dot);
        let seg = MemSegment::new(&config, &PayloadSchema::new());
        for i in 0..20_000u64 {
            let mut vectors = NamedVectors::new();
            vectors.insert(String::new(), Vector::Dense(vec![1.0, 0.0]));
            let payload = json!({"g": i % 100}).as_object().unwrap().clone();
            seg.push(PointInsert {
                id: PointId::Num(i),
                vectors,
                payload: Some(payload),
            });
        }
        let view = View::mem(&seg);
        let f = |v| serde_json::from_value::<Filter>(v).unwrap();
        let selective = f(json!({"must": [{"key": "g", "match": {"value": 3}}]}));
        let broad = f(json!({"must": [{"key": "g", "range": {"lt": 50}}]}));
        let schema = PayloadSchema::new();
        let selective = SegmentFilter::new(&view, Some(&selective), &schema);
        let broad = SegmentFilter::new(&view, Some(&broad), &schema);
        // About 200 and 10,000 of the 20,000 points pass. Estimated from a sample (there is no index),
        // a scan would read the payload of every point, so the threshold does not move the plan.
        for threshold in [10, 1_000, 1_000_000] {
            assert_eq!(plan_filter(&view, &selective, threshold), FilterPlan::Exact);
            assert_eq!(plan_filter(&view, &broad, threshold), FilterPlan::Graph);
        }
        let frac = estimate_pass_fraction(&view, &broad);
        assert!((frac - 0.5).abs() < 0.06, "{frac}");
    }
}
