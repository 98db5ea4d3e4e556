//! Reads by id and in id order: retrieve, scroll, count.

use quiver_storage::PointId;

use super::field_index::{self, SegmentFilter};
use super::payload;
use super::segment::{check_with_vectors, View};
use super::state::SegmentSet;
use crate::config::CollectionConfig;
use crate::filter::Filter;
use crate::point::{Record, ScrollRequest, ScrollResult, WithPayload, WithVectors};
use crate::Result;

pub(crate) fn record(
    config: &CollectionConfig,
    view: &View<'_>,
    off: u32,
    with_payload: &WithPayload,
    with_vectors: &WithVectors,
) -> Record {
    Record {
        id: view.id(off),
        payload: payload::project_with(|| view.payload(off), with_payload),
        vectors: view.vectors(config, off, with_vectors),
        order_value: None,
    }
}

pub(crate) fn retrieve(
    config: &CollectionConfig,
    set: &SegmentSet,
    ids: &[PointId],
    with_payload: &WithPayload,
    with_vectors: &WithVectors,
) -> Result<Vec<Record>> {
    check_with_vectors(config, with_vectors)?;
    let views = set.views();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        // Newest first: the active segment, then frozen, then sealed.
        for v in views.iter().rev() {
            if let Some(off) = v.find(id) {
                out.push(record(config, v, off, with_payload, with_vectors));
                break;
            }
        }
    }
    Ok(out)
}

pub(crate) fn scroll(
    config: &CollectionConfig,
    set: &SegmentSet,
    req: &ScrollRequest,
) -> Result<ScrollResult> {
    check_with_vectors(config, &req.with_vectors)?;
    field_index::warm(set, req.filter.as_ref());
    let views = set.views();
    // Each segment contributes its first `limit + 1` matches; ids are live in one segment only, so the
    // merged first `limit + 1` are exact, and the extra one is where the next page starts.
    let want = req.limit.saturating_add(1);
    let mut hits: Vec<(PointId, usize, u32)> = Vec::new();
    for (si, v) in views.iter().enumerate() {
        let filter = SegmentFilter::new(v, req.filter.as_ref(), &set.schema);
        let keep = |off: u32| filter.passes(v, off);
        for off in v.live_sorted_from(req.offset.as_ref(), want, &keep) {
            hits.push((v.id(off), si, off));
        }
    }
    hits.sort_unstable_by_key(|h| h.0);
    hits.truncate(want);
    let next_page_offset = if hits.len() > req.limit {
        hits.pop().map(|h| h.0)
    } else {
        None
    };
    let points = hits
        .into_iter()
        .map(|(_, si, off)| {
            record(
                config,
                &views[si],
                off,
                &req.with_payload,
                &req.with_vectors,
            )
        })
        .collect();
    Ok(ScrollResult {
        points,
        next_page_offset,
    })
}

pub(crate) fn count(set: &SegmentSet, filter: Option<&Filter>) -> usize {
    field_index::warm(set, filter);
    set.views()
        .iter()
        .map(|v| match filter {
            None => v.live_count(),
            Some(_) => {
                let filter = SegmentFilter::new(v, filter, &set.schema);
                filter.live_pass_count(v).unwrap_or_else(|| {
                    (0..v.len() as u32)
                        .filter(|&o| v.is_live(o) && filter.passes(v, o))
                        .count()
                })
            }
        })
        .sum()
}

/// Up to `limit` live points that pass `filter`, drawn uniformly at random (a reservoir over every
/// segment), in random order.
pub(crate) fn sample(set: &SegmentSet, filter: Option<&Filter>, limit: usize) -> Vec<PointId> {
    use rand::seq::SliceRandom;
    use rand::Rng;
    field_index::warm(set, filter);
    let mut rng = rand::rng();
    let mut reservoir = Vec::with_capacity(limit.min(1024));
    let mut seen = 0usize;
    if limit == 0 {
        return reservoir;
    }
    for v in set.views() {
        let passes = SegmentFilter::new(&v, filter, &set.schema);
        for off in 0..v.len() as u32 {
            if !v.is_live(off) || !passes.passes(&v, off) {
                continue;
            }
            seen += 1;
            if reservoir.len() < limit {
                reservoir.push(v.id(off));
            } else {
                let j = rng.random_range(0..seen);
                if j < limit {
                    reservoir[j] = v.id(off);
                }
            }
        }
    }
    reservoir.shuffle(&mut rng);
    reservoir
}
