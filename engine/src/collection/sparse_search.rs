//! Search over a sparse vector: the exact dot product over the query's non-zero dimensions, merged
//! over every segment like a dense search. Only points sharing a dimension with the query are hits
//! (as in Qdrant's inverted index), so every segment returns the same set whichever way it is
//! searched.
//!
//! Per segment: a sealed one walks its inverted index (only the query's posting lists), unless a
//! filter is expected to pass fewer points than the vector's `full_scan_threshold` or `exact` is
//! asked for, in which case it scores the passing points' forward rows; the appendable segment scores
//! its rows; a prefetch's candidates are scored from their rows. With `modifier: "idf"` each query
//! weight is first multiplied by the dimension's IDF over the live points of every segment.

use std::collections::HashSet;

use quiver_storage::PointId;

use super::field_index::{self, SegmentFilter};
use super::search::{cmp_scores, estimate_pass_fraction, finish, Path, Trace};
use super::segment::{check_with_vectors, View};
use super::state::SegmentSet;
use crate::config::{CollectionConfig, Distance, SparseVectorParams};
use crate::payload_schema::PayloadSchema;
use crate::point::{QueryVector, ScoredPoint, SearchRequest};
use crate::sparse::{idf, SparseRef, SparseVector};
use crate::{Error, Result};

/// Runs a search request over a sparse vector; `params` are the vector's.
pub(crate) fn search_traced(
    config: &CollectionConfig,
    set: &SegmentSet,
    req: &SearchRequest,
    params: &SparseVectorParams,
) -> Result<(Vec<ScoredPoint>, Trace)> {
    check_with_vectors(config, &req.with_vectors)?;
    let QueryVector::Sparse(query) = &req.query else {
        return Err(Error::InvalidInput(format!(
            "vector `{}` is a sparse vector: query it with {{\"indices\": [...], \"values\": [...]}}",
            req.using
        )));
    };
    let mut query = query.clone().checked(&req.using)?;
    field_index::warm(set, req.filter.as_ref());
    let views = set.views();
    let stored: usize = views.iter().map(|v| v.len()).sum();
    let k = req.limit_with_offset().min(stored);
    let mut trace = Trace::default();
    if k == 0 || query.indices.is_empty() {
        return Ok((Vec::new(), trace));
    }
    if params.idf() {
        weigh_by_idf(&views, &req.using, &mut query);
    }
    let candidates: Option<HashSet<PointId>> =
        req.candidates.as_ref().map(|c| c.iter().copied().collect());
    let seg = Segment {
        name: &req.using,
        query: query.as_ref(),
        filter: req.filter.as_ref(),
        schema: &set.schema,
        candidates: candidates.as_ref(),
        exact: req.exact,
        full_scan_threshold: params.full_scan_threshold(),
    };
    let mut hits = Vec::new();
    for (si, view) in views.iter().enumerate() {
        crate::query::check(req.deadline.as_ref())?;
        let (mut seg_hits, path) = seg.search(view);
        trace.add(path);
        // Best first, ties by offset: a total order, so selecting the k best and sorting only them
        // keeps exactly the hits (and the order) a full sort would. A common term matches thousands.
        let order = |a: &(u32, f32), b: &(u32, f32)| {
            cmp_scores(Distance::Dot, a.1, b.1).then(a.0.cmp(&b.0))
        };
        if seg_hits.len() > k {
            seg_hits.select_nth_unstable_by(k - 1, order);
            seg_hits.truncate(k);
        }
        seg_hits.sort_unstable_by(order);
        hits.extend(
            seg_hits
                .into_iter()
                .map(|(off, score)| (score, view.id(off), si, off)),
        );
    }
    Ok((finish(config, &views, hits, Distance::Dot, req), trace))
}

/// Multiplies each query weight by its dimension's IDF over the live points that have the vector.
fn weigh_by_idf(views: &[View<'_>], name: &str, query: &mut SparseVector) {
    let mut n = 0usize;
    let mut df = vec![0usize; query.indices.len()];
    for view in views {
        match view.sparse_index(name) {
            Some(index) => {
                n += (0..index.points() as u32)
                    .filter(|&p| index.has(p) && view.is_live(p))
                    .count();
                for (d, &dim) in df.iter_mut().zip(&query.indices) {
                    let (points, _) = index.postings(dim);
                    *d += points.iter().filter(|&&p| view.is_live(p)).count();
                }
            }
            None => {
                for off in (0..view.len() as u32).filter(|&o| view.is_live(o)) {
                    let Some(row) = view.sparse_row(name, off) else {
                        continue;
                    };
                    n += 1;
                    for (d, &dim) in df.iter_mut().zip(&query.indices) {
                        if row.get(dim).is_some() {
                            *d += 1;
                        }
                    }
                }
            }
        }
    }
    for (value, d) in query.values.iter_mut().zip(df) {
        *value *= idf(n, d);
    }
}

/// One sparse search, as every segment runs it.
struct Segment<'a> {
    name: &'a str,
    query: SparseRef<'a>,
    filter: Option<&'a crate::filter::Filter>,
    /// The payload indexes the filter may use.
    schema: &'a PayloadSchema,
    candidates: Option<&'a HashSet<PointId>>,
    exact: bool,
    full_scan_threshold: usize,
}

impl Segment<'_> {
    fn score(&self, view: &View<'_>, filter: &SegmentFilter<'_>, off: u32) -> Option<(u32, f32)> {
        if !filter.passes(view, off) {
            return None;
        }
        let row = view.sparse_row(self.name, off)?;
        Some((off, row.dot(&self.query)?))
    }

    fn search(&self, view: &View<'_>) -> (Vec<(u32, f32)>, Path) {
        let filter = SegmentFilter::new(view, self.filter, self.schema);
        if let Some(cands) = self.candidates {
            let hits = cands
                .iter()
                .filter_map(|id| view.find(id))
                .filter_map(|off| self.score(view, &filter, off))
                .collect();
            return (hits, Path::Candidates);
        }
        let scan = |path| {
            // A filter the payload indexes answer whole lists the points to score.
            let hits = match self.filter.and_then(|_| filter.live_passing(view)) {
                Some(offs) => offs
                    .into_iter()
                    .filter_map(|off| self.score(view, &filter, off))
                    .collect(),
                None => (0..view.len() as u32)
                    .filter(|&o| view.is_live(o))
                    .filter_map(|off| self.score(view, &filter, off))
                    .collect(),
            };
            (hits, path)
        };
        let Some(index) = view.sparse_index(self.name) else {
            return scan(Path::Unindexed);
        };
        if self.exact {
            return scan(Path::Exact);
        }
        if self.filter.is_some() {
            // The payload indexes' exact count when they answer the whole filter, as the dense
            // planner does; a sample (which reads payloads) otherwise.
            let expected = match filter.live_pass_count(view) {
                Some(count) => count as f64,
                None => estimate_pass_fraction(view, &filter) * view.live_count() as f64,
            };
            if expected < self.full_scan_threshold as f64 {
                return scan(Path::Exact);
            }
        }
        let hits = index
            .scores(self.query)
            .into_iter()
            .filter(|&(off, _)| view.is_live(off) && filter.passes(view, off))
            .collect();
        (hits, Path::Index)
    }
}
