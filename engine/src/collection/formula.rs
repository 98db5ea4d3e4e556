//! A formula stage's scoring: every candidate of its prefetches, in the segment that holds it live,
//! scored by the formula (see `query/formula.rs`).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;

use quiver_storage::PointId;

use super::field_index::{self, SegmentFilter};
use super::segment::View;
use super::state::SegmentSet;
use crate::filter::{Condition, Filter, OneOrMany};
use crate::point::Payload;
use crate::query::formula::Candidate;
use crate::query::Formula;
use crate::Result;

/// The formula's score of each candidate that is still live, best first (ties by id); the first
/// error fails them all, as in Qdrant. `scores[i]` holds the hits of the i-th prefetch.
pub(crate) fn score(
    set: &SegmentSet,
    formula: &Formula,
    scores: &[HashMap<PointId, f32>],
    candidates: &[PointId],
) -> Result<Vec<(PointId, f32)>> {
    // Each condition goes through a segment's prepared filter, so that payload indexes, text indexes
    // and `has_vector` answer it as they answer the same condition in a filter.
    let conditions = formula.conditions();
    let filters: Vec<Filter> = conditions
        .iter()
        .map(|c| Filter {
            must: Some(OneOrMany::One(Box::new((*c).clone()))),
            ..Filter::default()
        })
        .collect();
    for f in &filters {
        field_index::warm(set, Some(f));
    }
    // Conditions are told apart by address: the walk above and the evaluation borrow the same tree.
    let index: HashMap<*const Condition, usize> = conditions
        .iter()
        .enumerate()
        .map(|(i, c)| (*c as *const Condition, i))
        .collect();
    let views = set.views();
    let mut prepared: Vec<Option<Vec<SegmentFilter<'_>>>> =
        (0..views.len()).map(|_| None).collect();
    let mut out = Vec::with_capacity(candidates.len());
    for id in candidates {
        // Newest first, as a read by id: the active segment, then frozen, then sealed.
        let Some((vi, off)) = views
            .iter()
            .enumerate()
            .rev()
            .find_map(|(vi, v)| v.find(id).map(|off| (vi, off)))
        else {
            continue;
        };
        let view = &views[vi];
        let segment_filters = prepared[vi].get_or_insert_with(|| {
            filters
                .iter()
                .map(|f| SegmentFilter::new(view, Some(f), &set.schema))
                .collect()
        });
        let point = SegmentPoint {
            id: *id,
            view,
            off,
            scores,
            payload: OnceCell::new(),
            filters: segment_filters,
            index: &index,
        };
        out.push((*id, formula.score(&point)?));
    }
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// A candidate where its segment holds it; the payload is read once, on first use.
struct SegmentPoint<'a, 'v> {
    id: PointId,
    view: &'a View<'v>,
    off: u32,
    scores: &'a [HashMap<PointId, f32>],
    payload: OnceCell<Cow<'a, Payload>>,
    filters: &'a [SegmentFilter<'a>],
    index: &'a HashMap<*const Condition, usize>,
}

impl Candidate for SegmentPoint<'_, '_> {
    fn score(&self, prefetch: usize) -> Option<f32> {
        self.scores.get(prefetch)?.get(&self.id).copied()
    }

    fn payload(&self) -> &Payload {
        self.payload.get_or_init(|| self.view.payload(self.off))
    }

    fn matches(&self, condition: &Condition) -> bool {
        let i = self.index[&(condition as *const Condition)];
        self.filters[i].passes(self.view, self.off)
    }
}
