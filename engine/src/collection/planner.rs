//! How a [`QueryRequest`] runs over one snapshot of a collection's segments.
//!
//! Stages run bottom-up: a stage resolves its input (a point id becomes that point's stored vector),
//! runs its prefetches, and scores the union of their hits exactly; without prefetches it searches the
//! whole collection. A dense prefetch under a multivector query is therefore "HNSW, then MaxSim
//! rerank". The root's filter also restricts every prefetch, as in Qdrant. Each stage's search request
//! is assembled in one place ([`search_request`]) and each stage reports what it did ([`StageStats`]),
//! measured while it ran.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::examples::{self, ExampleSearch, Scoring};
use super::facet;
use super::formula;
use super::fusion::{self, Ranked};
use super::matrix;
use super::read;
use super::search::{self, Trace};
use super::state::SegmentSet;
use crate::config::CollectionConfig;
use crate::filter::{Condition, Filter, HasIdCondition, OneOrMany};
use crate::point::{QueryVector, ScoredPoint, ScrollRequest, SearchRequest, Vector};
use crate::query::{
    self, ContextPair, Deadline, Formula, Fusion, OrderBy, Prefetch, Query, QueryInput,
    QueryRequest, QueryResponse, RecommendStrategy, SearchParams, StageStats, Strategy,
    MAX_PREFETCH_DEPTH,
};
use crate::{Error, PointId, Result, WithPayload, WithVectors};

/// Why `funnel` is refused on a request the default funnel does not apply to.
pub(crate) const FUNNEL_NOT_PLAIN: &str = "`funnel` applies to a plain query (a document, no \
    `using`, no `prefetch`) on a collection with bound vectors (`embedding` at creation)";

/// One stage, with what it inherits from the stages above.
struct Stage<'a> {
    using: &'a str,
    query: &'a Query,
    prefetch: &'a [Prefetch],
    filter: Option<Filter>,
    params: &'a SearchParams,
    score_threshold: Option<f32>,
    limit: usize,
    offset: usize,
    with_payload: WithPayload,
    with_vectors: WithVectors,
    depth: usize,
    deadline: Option<Deadline>,
}

/// Runs a request; see the module docs.
pub(crate) fn query(
    config: &CollectionConfig,
    set: &SegmentSet,
    request: &QueryRequest,
) -> Result<QueryResponse> {
    if request.funnel.is_some() {
        return Err(Error::InvalidInput(FUNNEL_NOT_PLAIN.into()));
    }
    let Some(query) = &request.query else {
        if !request.prefetch.is_empty() {
            return Err(Error::InvalidInput(
                "a query is needed to combine prefetches: a vector to rescore their hits with, or \
                 {\"fusion\": \"rrf\" | \"dbsf\"}"
                    .into(),
            ));
        }
        return Ok(QueryResponse {
            hits: points_in_id_order(config, set, request)?,
            stages: Vec::new(),
        });
    };
    let mut stages = Vec::new();
    let root = Stage {
        using: request.using.as_deref().unwrap_or(""),
        query,
        prefetch: &request.prefetch,
        filter: without_referenced_points(request),
        params: &request.params,
        score_threshold: request.score_threshold,
        limit: request.limit,
        offset: request.offset,
        with_payload: request.with_payload.clone(),
        with_vectors: request.with_vectors.clone(),
        depth: 0,
        deadline: request.deadline,
    };
    let hits = run_stage(config, set, root, &mut stages)?;
    Ok(QueryResponse { hits, stages })
}

fn run_stage(
    config: &CollectionConfig,
    set: &SegmentSet,
    stage: Stage<'_>,
    stats: &mut Vec<StageStats>,
) -> Result<Vec<ScoredPoint>> {
    query::check(stage.deadline.as_ref())?;
    let vector = match stage.query {
        Query::Nearest(input) => resolve_input(config, set, stage.using, input)?,
        Query::Fusion(fusion) => return run_fusion(config, set, stage, fusion, stats),
        Query::Recommend(r) if r.strategy == RecommendStrategy::AverageVector => {
            examples::average_vector(
                resolve_examples(config, set, stage.using, &r.positive)?,
                resolve_examples(config, set, stage.using, &r.negative)?,
            )?
        }
        Query::Recommend(_) | Query::Discover { .. } | Query::Context(_) => {
            return run_examples(config, set, stage, stats)
        }
        Query::OrderBy(order_by) => return run_order_by(config, set, stage, order_by, stats),
        Query::Sample => return run_sample(config, set, stage, stats),
        Query::Mmr { nearest, mmr } => return run_mmr(config, set, stage, nearest, mmr, stats),
        Query::Formula(formula) => return run_formula(config, set, stage, formula, stats),
    };
    let candidates = prefetch_candidates(
        config,
        set,
        stage.prefetch,
        stage.filter.as_ref(),
        stage.depth + 1,
        stage.deadline,
        stats,
    )?;
    if candidates.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let started = Instant::now();
    let depth = stage.depth;
    let request = search_request(config, stage, vector, candidates)?;
    let (hits, trace) = search::search_traced(config, set, &request)?;
    stats.push(stage_stats(
        config,
        &request,
        depth,
        trace,
        started.elapsed(),
    )?);
    Ok(hits)
}

/// The union of the prefetches' hits (first seen first), or `None` when there are no prefetches.
fn prefetch_candidates(
    config: &CollectionConfig,
    set: &SegmentSet,
    prefetches: &[Prefetch],
    inherited: Option<&Filter>,
    depth: usize,
    deadline: Option<Deadline>,
    stats: &mut Vec<StageStats>,
) -> Result<Option<Vec<PointId>>> {
    if prefetches.is_empty() {
        return Ok(None);
    }
    if depth > MAX_PREFETCH_DEPTH {
        return Err(Error::InvalidInput(format!(
            "prefetch is nested deeper than {MAX_PREFETCH_DEPTH} levels"
        )));
    }
    let mut union = Vec::new();
    let mut seen = HashSet::new();
    for prefetch in prefetches {
        if prefetch.query.is_none() {
            for id in unscored_candidates(config, set, prefetch, inherited, depth, deadline, stats)?
            {
                if seen.insert(id) {
                    union.push(id);
                }
            }
            continue;
        }
        let stage = prefetch_stage(prefetch, inherited, depth, deadline)?;
        for hit in run_stage(config, set, stage, stats)? {
            if seen.insert(hit.id) {
                union.push(hit.id);
            }
        }
    }
    Ok(Some(union))
}

/// The candidates of a prefetch without a query, as Qdrant plans it: without prefetches of its own,
/// its first `limit` points in id order that pass its filter (a scroll); with them, their union, cut to
/// `limit`.
fn unscored_candidates(
    config: &CollectionConfig,
    set: &SegmentSet,
    prefetch: &Prefetch,
    inherited: Option<&Filter>,
    depth: usize,
    deadline: Option<Deadline>,
    stats: &mut Vec<StageStats>,
) -> Result<Vec<PointId>> {
    let filter = and(inherited, prefetch.filter.as_ref());
    if prefetch.prefetch.is_empty() {
        let page = read::scroll(
            config,
            set,
            &ScrollRequest {
                filter,
                offset: None,
                limit: prefetch.limit,
                with_payload: WithPayload::None,
                with_vectors: WithVectors::None,
            },
        )?;
        return Ok(page.points.into_iter().map(|r| r.id).collect());
    }
    let mut ids = prefetch_candidates(
        config,
        set,
        &prefetch.prefetch,
        filter.as_ref(),
        depth + 1,
        deadline,
        stats,
    )?
    .unwrap_or_default();
    ids.truncate(prefetch.limit);
    Ok(ids)
}

/// A prefetch as a stage below one with the filter `inherited`.
fn prefetch_stage<'a>(
    prefetch: &'a Prefetch,
    inherited: Option<&Filter>,
    depth: usize,
    deadline: Option<Deadline>,
) -> Result<Stage<'a>> {
    let Some(query) = &prefetch.query else {
        return Err(Error::InvalidInput(
            "a fusion ranks the hits of its prefetches: give each prefetch a `query`".into(),
        ));
    };
    Ok(Stage {
        using: prefetch.using.as_deref().unwrap_or(""),
        query,
        prefetch: &prefetch.prefetch,
        filter: and(inherited, prefetch.filter.as_ref()),
        params: &prefetch.params,
        score_threshold: prefetch.score_threshold,
        limit: prefetch.limit,
        offset: 0,
        with_payload: WithPayload::None,
        with_vectors: WithVectors::None,
        depth,
        deadline,
    })
}

/// The depth of the prefetches of a stage that only combines them (fusion, formula): such a stage
/// searches no vector, so `using` and `params` belong on its prefetches.
fn prefetch_depth(stage: &Stage<'_>, kind: &str) -> Result<usize> {
    if !stage.using.is_empty() {
        return Err(Error::InvalidInput(format!(
            "`using` does not apply to a {kind} query: set it on the prefetches"
        )));
    }
    if *stage.params != SearchParams::default() {
        return Err(Error::InvalidInput(format!(
            "`params` do not apply to a {kind} query: set them on the prefetches"
        )));
    }
    let depth = stage.depth + 1;
    if depth > MAX_PREFETCH_DEPTH {
        return Err(Error::InvalidInput(format!(
            "prefetch is nested deeper than {MAX_PREFETCH_DEPTH} levels"
        )));
    }
    Ok(depth)
}

/// A fusion stage: each prefetch runs as its own stage and their ranked hits are fused; the
/// stage's threshold, offset and limit apply to the fused scores.
fn run_fusion(
    config: &CollectionConfig,
    set: &SegmentSet,
    stage: Stage<'_>,
    fusion: &Fusion,
    stats: &mut Vec<StageStats>,
) -> Result<Vec<ScoredPoint>> {
    if stage.prefetch.is_empty() {
        return Err(Error::InvalidInput(
            "a fusion query fuses the hits of its prefetches: give at least one `prefetch`".into(),
        ));
    }
    let depth = prefetch_depth(&stage, "fusion")?;
    let mut lists = Vec::with_capacity(stage.prefetch.len());
    for prefetch in stage.prefetch {
        let sub = prefetch_stage(prefetch, stage.filter.as_ref(), depth, stage.deadline)?;
        let higher_is_better = higher_is_better(config, sub.using, sub.query)?;
        let hits = run_stage(config, set, sub, stats)?;
        lists.push(Ranked {
            hits: hits.into_iter().map(|h| (h.id, h.score)).collect(),
            higher_is_better,
        });
    }
    let started = Instant::now();
    let fused = fusion::fuse(fusion, lists)?;
    let candidates = fused.len();
    let kept: Vec<(PointId, f32)> = fused
        .into_iter()
        .filter(|(_, score)| stage.score_threshold.is_none_or(|t| *score >= t))
        .skip(stage.offset)
        .take(stage.limit)
        .collect();
    let hits = with_records(config, set, kept, &stage.with_payload, &stage.with_vectors)?;
    stats.push(StageStats {
        using: String::new(),
        depth: stage.depth,
        limit: stage.limit.saturating_add(stage.offset),
        candidates: Some(candidates),
        strategy: Strategy::Fusion,
        dims: 0,
        segments_indexed: 0,
        segments_value_graph: 0,
        segments_scanned: 0,
        elapsed: started.elapsed(),
    });
    Ok(hits)
}

/// A formula stage: each prefetch runs as its own stage, so that `$score[i]` is the i-th one's score;
/// the union of their hits is scored by the formula, and the stage's threshold, offset and limit apply
/// to the formula's scores (Qdrant's order: highest first).
fn run_formula(
    config: &CollectionConfig,
    set: &SegmentSet,
    stage: Stage<'_>,
    formula: &Formula,
    stats: &mut Vec<StageStats>,
) -> Result<Vec<ScoredPoint>> {
    if stage.prefetch.is_empty() {
        // Qdrant's wording: a formula only rescores, it does not search.
        return Err(Error::InvalidInput(
            "cannot apply Formula without prefetches: give at least one `prefetch` whose hits \
             the formula scores"
                .into(),
        ));
    }
    let depth = prefetch_depth(&stage, "formula")?;
    let mut scores = Vec::with_capacity(stage.prefetch.len());
    let mut union = Vec::new();
    let mut seen = HashSet::new();
    for prefetch in stage.prefetch {
        let hits: Vec<(PointId, f32)> = if prefetch.query.is_some() {
            let sub = prefetch_stage(prefetch, stage.filter.as_ref(), depth, stage.deadline)?;
            run_stage(config, set, sub, stats)?
                .into_iter()
                .map(|h| (h.id, h.score))
                .collect()
        } else {
            // A prefetch without a query is a scroll in Qdrant, whose points score 0.
            unscored_candidates(
                config,
                set,
                prefetch,
                stage.filter.as_ref(),
                depth,
                stage.deadline,
                stats,
            )?
            .into_iter()
            .map(|id| (id, 0.0))
            .collect()
        };
        for (id, _) in &hits {
            if seen.insert(*id) {
                union.push(*id);
            }
        }
        scores.push(hits.into_iter().collect::<HashMap<PointId, f32>>());
    }
    let started = Instant::now();
    let scored = formula::score(set, formula, &scores, &union)?;
    let kept: Vec<(PointId, f32)> = scored
        .into_iter()
        .filter(|(_, score)| stage.score_threshold.is_none_or(|t| *score >= t))
        .skip(stage.offset)
        .take(stage.limit)
        .collect();
    let hits = with_records(config, set, kept, &stage.with_payload, &stage.with_vectors)?;
    stats.push(StageStats {
        using: String::new(),
        depth: stage.depth,
        limit: stage.limit.saturating_add(stage.offset),
        candidates: Some(union.len()),
        strategy: Strategy::Formula,
        dims: 0,
        segments_indexed: 0,
        segments_value_graph: 0,
        segments_scanned: set.views().len(),
        elapsed: started.elapsed(),
    });
    Ok(hits)
}

/// An order_by stage: the points (or the prefetches' candidates) that pass the stage's filter, in the
/// order of the field's values, each scored 1 with the value it was ordered by (as Qdrant answers).
fn run_order_by(
    config: &CollectionConfig,
    set: &SegmentSet,
    stage: Stage<'_>,
    order_by: &OrderBy,
    stats: &mut Vec<StageStats>,
) -> Result<Vec<ScoredPoint>> {
    if !stage.using.is_empty() {
        return Err(Error::InvalidInput(
            "`using` does not apply to an order_by query".into(),
        ));
    }
    // Checked before the prefetches run, so that a missing index fails whatever they find.
    facet::order_by_kind(&set.schema, order_by)?;
    let candidates = prefetch_candidates(
        config,
        set,
        stage.prefetch,
        stage.filter.as_ref(),
        stage.depth + 1,
        stage.deadline,
        stats,
    )?;
    let started = Instant::now();
    let only: Option<HashSet<PointId>> = candidates.as_ref().map(|c| c.iter().copied().collect());
    let records = facet::ordered(
        config,
        set,
        stage.filter.as_ref(),
        order_by,
        stage.limit.saturating_add(stage.offset),
        only.as_ref(),
        &stage.with_payload,
        &stage.with_vectors,
    )?;
    let hits = records
        .into_iter()
        .skip(stage.offset)
        .map(|r| ScoredPoint {
            id: r.id,
            score: 1.0,
            payload: r.payload,
            vectors: r.vectors,
            order_value: r.order_value,
        })
        .collect();
    stats.push(StageStats {
        using: String::new(),
        depth: stage.depth,
        limit: stage.limit.saturating_add(stage.offset),
        candidates: candidates.as_ref().map(Vec::len),
        strategy: Strategy::OrderBy,
        dims: 0,
        segments_indexed: 0,
        segments_value_graph: 0,
        segments_scanned: set.views().len(),
        elapsed: started.elapsed(),
    });
    Ok(hits)
}

/// Whether a stage's hits rank higher scores first: similarities, fusions and example scores do;
/// Euclid distances (of a nearest or `average_vector` search) rank lower first.
pub(crate) fn higher_is_better(
    config: &CollectionConfig,
    using: &str,
    query: &Query,
) -> Result<bool> {
    Ok(match query {
        // Every hit of an order_by stage scores 1: its order is the hits' order, which a stable sort
        // by score keeps.
        Query::Fusion(_)
        | Query::Discover { .. }
        | Query::Context(_)
        | Query::OrderBy(_)
        | Query::Sample
        | Query::Formula(_) => true,
        Query::Recommend(r) if r.strategy != RecommendStrategy::AverageVector => true,
        Query::Nearest(_) | Query::Recommend(_) | Query::Mmr { .. } => {
            config.sparse(using).is_some() || config.vector(using)?.distance.higher_is_better()
        }
    })
}

/// A sample stage: random points among the candidates of its prefetches (or the whole collection)
/// that pass its filter, score 0.
fn run_sample(
    config: &CollectionConfig,
    set: &SegmentSet,
    stage: Stage<'_>,
    stats: &mut Vec<StageStats>,
) -> Result<Vec<ScoredPoint>> {
    let candidates = prefetch_candidates(
        config,
        set,
        stage.prefetch,
        stage.filter.as_ref(),
        stage.depth + 1,
        stage.deadline,
        stats,
    )?;
    let started = Instant::now();
    // Qdrant ignores the offset of a sample without prefetches: its output is not stable anyway.
    let offset = if candidates.is_some() {
        stage.offset
    } else {
        0
    };
    let k = stage.limit.saturating_add(offset);
    let ids = match &candidates {
        // The prefetches' hits already pass this stage's filter, which they inherit.
        Some(candidates) => {
            use rand::seq::IndexedRandom;
            candidates
                .choose_multiple(&mut rand::rng(), k)
                .copied()
                .collect()
        }
        None => read::sample(set, stage.filter.as_ref(), k),
    };
    let kept: Vec<(PointId, f32)> = ids.into_iter().skip(offset).map(|id| (id, 0.0)).collect();
    let hits = with_records(config, set, kept, &stage.with_payload, &stage.with_vectors)?;
    stats.push(StageStats {
        using: String::new(),
        depth: stage.depth,
        limit: k,
        candidates: candidates.as_ref().map(Vec::len),
        strategy: Strategy::Sample,
        dims: 0,
        segments_indexed: 0,
        segments_value_graph: 0,
        segments_scanned: set.views().len(),
        elapsed: started.elapsed(),
    });
    Ok(hits)
}

/// An mmr stage: its `candidates_limit` nearest neighbours (a nearest stage over the same
/// prefetches), then maximal marginal relevance selects `limit + offset` of them.
fn run_mmr(
    config: &CollectionConfig,
    set: &SegmentSet,
    stage: Stage<'_>,
    input: &QueryInput,
    mmr: &crate::query::Mmr,
    stats: &mut Vec<StageStats>,
) -> Result<Vec<ScoredPoint>> {
    let k = stage.limit.saturating_add(stage.offset);
    let nearest = Query::Nearest(input.clone());
    let higher = higher_is_better(config, stage.using, &nearest)?;
    let candidates_limit = mmr.candidates_limit.unwrap_or(stage.limit);
    let found = run_stage(
        config,
        set,
        Stage {
            using: stage.using,
            query: &nearest,
            prefetch: stage.prefetch,
            filter: stage.filter.clone(),
            params: stage.params,
            score_threshold: stage.score_threshold,
            limit: candidates_limit,
            offset: 0,
            with_payload: WithPayload::None,
            with_vectors: WithVectors::None,
            // The same stage's first step: its prefetches stay one level below it.
            depth: stage.depth,
            deadline: stage.deadline,
        },
        stats,
    )?;
    let started = Instant::now();
    let candidates = found.len();
    let selected = matrix::mmr(config, set, stage.using, found, mmr, higher, k)?;
    let kept: Vec<(PointId, f32)> = selected
        .into_iter()
        .skip(stage.offset)
        .map(|h| (h.id, h.score))
        .collect();
    let hits = with_records(config, set, kept, &stage.with_payload, &stage.with_vectors)?;
    stats.push(StageStats {
        using: stage.using.to_string(),
        depth: stage.depth,
        limit: k,
        candidates: Some(candidates),
        strategy: Strategy::Mmr,
        dims: config
            .vector(stage.using)
            .map(|p| p.size)
            .unwrap_or_default(),
        segments_indexed: 0,
        segments_value_graph: 0,
        segments_scanned: set.views().len(),
        elapsed: started.elapsed(),
    });
    Ok(hits)
}

/// Each example as the vector it stands for, checked (and normalised under Cosine) like a query.
fn resolve_examples(
    config: &CollectionConfig,
    set: &SegmentSet,
    using: &str,
    inputs: &[QueryInput],
) -> Result<Vec<QueryVector>> {
    inputs
        .iter()
        .map(|input| examples::prepared(config, using, resolve_input(config, set, using, input)?))
        .collect()
}

/// A recommend (other than `average_vector`), discover or context stage: every candidate (or point)
/// scored against the examples.
fn run_examples(
    config: &CollectionConfig,
    set: &SegmentSet,
    stage: Stage<'_>,
    stats: &mut Vec<StageStats>,
) -> Result<Vec<ScoredPoint>> {
    let examples = |inputs: &[QueryInput]| resolve_examples(config, set, stage.using, inputs);
    let pairs = |pairs: &[ContextPair]| -> Result<Vec<(QueryVector, QueryVector)>> {
        pairs
            .iter()
            .map(|p| {
                let mut two = examples(&[p.positive.clone(), p.negative.clone()])?;
                let negative = two.pop().expect("two examples");
                Ok((two.pop().expect("two examples"), negative))
            })
            .collect()
    };
    let scoring = match stage.query {
        Query::Recommend(r) => {
            Scoring::recommend(r.strategy, examples(&r.positive)?, examples(&r.negative)?)?
        }
        Query::Discover { target, context } => Scoring::Discover {
            target: examples(std::slice::from_ref(target))?.remove(0),
            pairs: pairs(context)?,
        },
        Query::Context(context) => {
            if context.is_empty() {
                return Err(Error::InvalidInput(
                    "`context` needs at least one {\"positive\", \"negative\"} pair".into(),
                ));
            }
            Scoring::Context {
                pairs: pairs(context)?,
            }
        }
        Query::Nearest(_)
        | Query::Fusion(_)
        | Query::OrderBy(_)
        | Query::Sample
        | Query::Mmr { .. }
        | Query::Formula(_) => {
            unreachable!("run_stage routes these elsewhere")
        }
    };
    let candidates = prefetch_candidates(
        config,
        set,
        stage.prefetch,
        stage.filter.as_ref(),
        stage.depth + 1,
        stage.deadline,
        stats,
    )?;
    let started = Instant::now();
    let found = examples::search(
        config,
        set,
        &ExampleSearch {
            using: stage.using,
            scoring: &scoring,
            filter: stage.filter.as_ref(),
            candidates: candidates.as_deref(),
            k: stage.limit.saturating_add(stage.offset),
            ef: stage.params.hnsw_ef,
            exact: stage.params.exact,
            deadline: stage.deadline.as_ref(),
        },
    )?;
    let kept: Vec<(PointId, f32)> = found
        .scored
        .into_iter()
        .filter(|(_, score)| stage.score_threshold.is_none_or(|t| *score >= t))
        .skip(stage.offset)
        .take(stage.limit)
        .collect();
    let hits = with_records(config, set, kept, &stage.with_payload, &stage.with_vectors)?;
    let multi = config
        .vector(stage.using)
        .is_ok_and(|p| p.multivector_config.is_some());
    stats.push(StageStats {
        using: stage.using.to_string(),
        depth: stage.depth,
        limit: stage.limit.saturating_add(stage.offset),
        candidates: candidates.as_ref().map(|c| c.len()),
        strategy: match (candidates.is_some(), multi) {
            (true, true) => Strategy::MaxSim,
            (true, false) => Strategy::Rescore,
            (false, _) if found.walked > 0 => Strategy::Hnsw,
            (false, _) => Strategy::Exact,
        },
        dims: config
            .vector(stage.using)
            .map(|p| p.size)
            .unwrap_or_default(),
        segments_indexed: found.walked,
        segments_value_graph: 0,
        segments_scanned: found.scanned,
        elapsed: started.elapsed(),
    });
    Ok(hits)
}

/// Scored ids as hits, with the payload and vectors asked for.
fn with_records(
    config: &CollectionConfig,
    set: &SegmentSet,
    scored: Vec<(PointId, f32)>,
    with_payload: &WithPayload,
    with_vectors: &WithVectors,
) -> Result<Vec<ScoredPoint>> {
    let mut records: HashMap<PointId, _> =
        if *with_payload == WithPayload::None && *with_vectors == WithVectors::None {
            HashMap::new()
        } else {
            let ids: Vec<PointId> = scored.iter().map(|(id, _)| *id).collect();
            read::retrieve(config, set, &ids, with_payload, with_vectors)?
                .into_iter()
                .map(|r| (r.id, r))
                .collect()
        };
    Ok(scored
        .into_iter()
        .map(|(id, score)| {
            let record = records.remove(&id);
            ScoredPoint {
                id,
                score,
                payload: record.as_ref().and_then(|r| r.payload.clone()),
                vectors: record.and_then(|r| r.vectors),
                order_value: None,
            }
        })
        .collect())
}

/// The one place a stage becomes a search request.
fn search_request(
    config: &CollectionConfig,
    stage: Stage<'_>,
    query: QueryVector,
    candidates: Option<Vec<PointId>>,
) -> Result<SearchRequest> {
    let params = stage.params;
    if let Some(plaid) = &params.plaid {
        // Checked up front so that bad values fail even on segments that would not use them.
        plaid.resolve(1, false)?;
    }
    let mut request = SearchRequest {
        using: stage.using.to_string(),
        query,
        filter: stage.filter,
        candidates,
        limit: stage.limit,
        offset: stage.offset,
        ef: params.hnsw_ef,
        exact: params.exact,
        plaid: params.plaid.clone(),
        rescore: true,
        oversampling: None,
        ignore_quantization: false,
        deadline: stage.deadline,
        score_threshold: stage.score_threshold,
        with_payload: stage.with_payload,
        with_vectors: stage.with_vectors,
    };
    (request.ef, request.rescore) =
        quantization(config, stage.using, params, request.limit_with_offset())?;
    if let Some(q) = params.quantization {
        request.oversampling = q.oversampling;
        request.ignore_quantization = q.ignore.unwrap_or(false);
    }
    Ok(request)
}

/// Qdrant's `params.quantization` applied to a quantized vector or a Matryoshka-prefix index:
/// `rescore: false` returns the codes' or prefix's scores (a funnel's first stage), `oversampling`
/// widens the candidate list that is rescored with the full vectors to `k × oversampling` (the graph
/// walk's `ef` grows to match). Returns the `ef` and `rescore` of the search.
fn quantization(
    config: &CollectionConfig,
    using: &str,
    params: &SearchParams,
    k: usize,
) -> Result<(Option<usize>, bool)> {
    let mut ef = params.hnsw_ef;
    let Some(q) = params.quantization else {
        return Ok((ef, true));
    };
    if let Some(factor) = q.oversampling {
        if !(1.0..=100.0).contains(&factor) {
            return Err(Error::InvalidInput(
                "params.quantization.oversampling must be between 1 and 100".into(),
            ));
        }
        let stored = config.hnsw_for(using).ef;
        let wanted = (k as f64 * factor).ceil() as usize;
        ef = Some(ef.unwrap_or(stored).max(wanted));
    }
    Ok((ef, q.rescore.unwrap_or(true)))
}

/// A stage's input as the vector the search scores with. A dense vector against a multivector
/// field is a one-row matrix, as in Qdrant; a point id is that point's stored vector.
fn resolve_input(
    config: &CollectionConfig,
    set: &SegmentSet,
    using: &str,
    input: &QueryInput,
) -> Result<QueryVector> {
    if config.sparse(using).is_some() {
        return resolve_sparse_input(config, set, using, input);
    }
    let multi = config.vector(using)?.multivector_config.is_some();
    Ok(match (input, multi) {
        (QueryInput::Dense(v), false) => QueryVector::Dense(v.clone()),
        (QueryInput::Dense(v), true) => QueryVector::Multi(vec![v.clone()]),
        (QueryInput::Multi(m), true) => QueryVector::Multi(m.clone()),
        (QueryInput::Multi(_), false) => {
            return Err(Error::InvalidInput(format!(
                "vector `{using}` is a dense vector: a multivector query needs a vector with \
                 multivector_config"
            )))
        }
        (QueryInput::Sparse(_), _) => {
            return Err(Error::InvalidInput(format!(
                "vector `{using}` is not a sparse vector: a sparse query needs a vector \
                 configured in sparse_vectors"
            )))
        }
        (QueryInput::Point(id), _) => {
            let records = read::retrieve(
                config,
                set,
                &[*id],
                &WithPayload::None,
                &WithVectors::Names(vec![using.to_string()]),
            )?;
            let vector = records
                .into_iter()
                .next()
                .and_then(|r| r.vectors)
                .and_then(|mut v| v.remove(using))
                .ok_or_else(|| Error::PointNotFound {
                    id: *id,
                    vector: using.to_string(),
                })?;
            match vector {
                Vector::Dense(v) => QueryVector::Dense(v),
                Vector::Multi(m) => QueryVector::Multi(m),
                Vector::Sparse(v) => QueryVector::Sparse(v),
            }
        }
    })
}

/// A stage's input against a sparse vector: a sparse vector, or a point's stored one.
fn resolve_sparse_input(
    config: &CollectionConfig,
    set: &SegmentSet,
    using: &str,
    input: &QueryInput,
) -> Result<QueryVector> {
    match input {
        QueryInput::Sparse(v) => Ok(QueryVector::Sparse(v.clone())),
        QueryInput::Point(id) => {
            let records = read::retrieve(
                config,
                set,
                &[*id],
                &WithPayload::None,
                &WithVectors::Names(vec![using.to_string()]),
            )?;
            match records
                .into_iter()
                .next()
                .and_then(|r| r.vectors)
                .and_then(|mut v| v.remove(using))
            {
                Some(Vector::Sparse(v)) => Ok(QueryVector::Sparse(v)),
                _ => Err(Error::PointNotFound {
                    id: *id,
                    vector: using.to_string(),
                }),
            }
        }
        QueryInput::Dense(_) | QueryInput::Multi(_) => Err(Error::InvalidInput(format!(
            "vector `{using}` is a sparse vector: query it with {{\"indices\": [...], \
             \"values\": [...]}}"
        ))),
    }
}

/// What a stage did, from the way each segment was searched.
fn stage_stats(
    config: &CollectionConfig,
    request: &SearchRequest,
    depth: usize,
    trace: Trace,
    elapsed: std::time::Duration,
) -> Result<StageStats> {
    // A stage is an exact scan when no segment's index was walked but some segment was scanned
    // instead of using its index (asked for, or the filter planner's choice).
    let scanned_instead = trace.index == 0 && trace.exact > 0;
    let (strategy, dims) = match &request.query {
        QueryVector::Sparse(v) => {
            let strategy = match request.candidates {
                Some(_) => Strategy::Rescore,
                None if scanned_instead => Strategy::Exact,
                None => Strategy::InvertedIndex,
            };
            (strategy, v.indices.len())
        }
        QueryVector::Dense(_) | QueryVector::Multi(_) => {
            let params = config.vector(&request.using)?;
            let multi = params.multivector_config.is_some();
            let strategy = match (multi, request.candidates.is_some()) {
                (false, true) => Strategy::Rescore,
                (true, true) => Strategy::MaxSim,
                // No index walked: every segment was scanned, whether by choice or for want of
                // an index (an appendable or small segment).
                (_, false) if trace.index == 0 && trace.exact + trace.unindexed > 0 => {
                    Strategy::Exact
                }
                (false, false) => Strategy::Hnsw,
                (true, false) => Strategy::TokenStore,
            };
            let prefix_scores = request.candidates.is_none() && !request.exact && !request.rescore;
            let dims = match config.index_dims(&request.using) {
                Some(d) if prefix_scores => d,
                _ => params.size,
            };
            (strategy, dims)
        }
    };
    Ok(StageStats {
        using: request.using.clone(),
        depth,
        limit: request.limit_with_offset(),
        candidates: request.candidates.as_ref().map(Vec::len),
        strategy,
        dims,
        segments_indexed: trace.index,
        segments_value_graph: trace.value_graph,
        segments_scanned: trace.exact + trace.unindexed + trace.candidates,
        elapsed,
    })
}

/// The root filter, plus: not the points the request queries by id (Qdrant leaves them out of every
/// stage's hits, so a point is never its own nearest neighbour).
fn without_referenced_points(request: &QueryRequest) -> Option<Filter> {
    let ids: Vec<PointId> = request
        .inputs()
        .into_iter()
        .filter_map(|(_, input)| match input {
            QueryInput::Point(id) => Some(*id),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return request.filter.clone();
    }
    let exclude = Filter {
        must: None,
        should: None,
        must_not: Some(OneOrMany::One(Box::new(Condition::HasId(HasIdCondition {
            has_id: ids,
        })))),
        min_should: None,
    };
    and(request.filter.as_ref(), Some(&exclude))
}

/// Both filters (either may be absent).
fn and(a: Option<&Filter>, b: Option<&Filter>) -> Option<Filter> {
    match (a, b) {
        (None, None) => None,
        (Some(f), None) | (None, Some(f)) => Some(f.clone()),
        (Some(a), Some(b)) => Some(Filter {
            must: Some(OneOrMany::Many(vec![
                Condition::Filter(a.clone()),
                Condition::Filter(b.clone()),
            ])),
            should: None,
            must_not: None,
            min_should: None,
        }),
    }
}

/// A request without a query: points in id order, score 0.
fn points_in_id_order(
    config: &CollectionConfig,
    set: &SegmentSet,
    request: &QueryRequest,
) -> Result<Vec<ScoredPoint>> {
    let page = read::scroll(
        config,
        set,
        &ScrollRequest {
            filter: request.filter.clone(),
            offset: None,
            limit: request.limit_with_offset(),
            with_payload: request.with_payload.clone(),
            with_vectors: request.with_vectors.clone(),
        },
    )?;
    Ok(page
        .points
        .into_iter()
        .skip(request.offset)
        .map(|r| ScoredPoint {
            id: r.id,
            score: 0.0,
            payload: r.payload,
            vectors: r.vectors,
            order_value: None,
        })
        .collect())
}
