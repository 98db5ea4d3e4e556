//! The stages that compare stored points with each other rather than with a query: a random sample
//! (Qdrant's `sample` query), the distance matrix of a sample (`search/matrix/*`), and maximal
//! marginal relevance (`mmr`), whose pairwise similarities are scored like a search over candidates.

use std::collections::HashMap;

use super::read;
use super::search;
use super::state::SegmentSet;
use crate::config::CollectionConfig;
use crate::filter::{Condition, Filter, HasVectorCondition, OneOrMany};
use crate::point::{QueryVector, ScoredPoint, SearchRequest, Vector};
use crate::query::{MatrixRequest, MatrixResponse, Mmr};
use crate::{Error, PointId, Result, WithPayload, WithVectors};

/// The stored `using` vector of each of `ids` that has one, in the order asked.
fn stored_vectors(
    config: &CollectionConfig,
    set: &SegmentSet,
    using: &str,
    ids: &[PointId],
) -> Result<Vec<(PointId, QueryVector)>> {
    Ok(read::retrieve(
        config,
        set,
        ids,
        &WithPayload::None,
        &WithVectors::Names(vec![using.to_string()]),
    )?
    .into_iter()
    .filter_map(|r| {
        let vector = r.vectors?.remove(using)?;
        Some((
            r.id,
            match vector {
                Vector::Dense(v) => QueryVector::Dense(v),
                Vector::Multi(m) => QueryVector::Multi(m),
                Vector::Sparse(v) => QueryVector::Sparse(v),
            },
        ))
    })
    .collect())
}

/// The `limit` best of `among` for `query` on `using`, scored exactly, best first.
fn score_among(
    config: &CollectionConfig,
    set: &SegmentSet,
    using: &str,
    query: QueryVector,
    among: &[PointId],
    limit: usize,
) -> Result<Vec<ScoredPoint>> {
    search::search(
        config,
        set,
        &SearchRequest {
            using: using.to_string(),
            query,
            filter: None,
            candidates: Some(among.to_vec()),
            limit,
            offset: 0,
            ef: None,
            exact: true,
            score_threshold: None,
            with_payload: WithPayload::None,
            with_vectors: WithVectors::None,
            plaid: None,
            rescore: true,
            oversampling: None,
            ignore_quantization: false,
            deadline: None,
        },
    )
}

/// Checks that `using` names a dense, multivector or sparse vector of the collection.
fn check_vector(config: &CollectionConfig, using: &str) -> Result<()> {
    if config.sparse(using).is_none() {
        config.vector(using)?;
    }
    Ok(())
}

/// See [`MatrixRequest`]: Qdrant samples at random, sorts the sample by id, then searches each
/// sampled point's `limit + 1` nearest among the sample and drops the point itself (or, if it is
/// not among them, the last).
pub(crate) fn matrix(
    config: &CollectionConfig,
    set: &SegmentSet,
    request: &MatrixRequest,
) -> Result<MatrixResponse> {
    check_vector(config, &request.using)?;
    if request.sample == 0 || request.limit == 0 {
        return Ok(MatrixResponse::default());
    }
    let has_vector = Condition::HasVector(HasVectorCondition {
        has_vector: request.using.clone(),
    });
    let filter = Filter {
        must: Some(OneOrMany::Many(
            request
                .filter
                .iter()
                .map(|f| Condition::Filter(f.clone()))
                .chain([has_vector])
                .collect(),
        )),
        should: None,
        must_not: None,
        min_should: None,
    };
    let mut ids = read::sample(set, Some(&filter), request.sample);
    if ids.len() < 2 {
        return Ok(MatrixResponse::default());
    }
    ids.sort_unstable();
    let vectors = stored_vectors(config, set, &request.using, &ids)?;
    let ids: Vec<PointId> = vectors.iter().map(|(id, _)| *id).collect();
    let mut neighbours = Vec::with_capacity(ids.len());
    for (id, vector) in vectors {
        let mut hits: Vec<(PointId, f32)> =
            score_among(config, set, &request.using, vector, &ids, request.limit + 1)?
                .into_iter()
                .filter(|h| h.id != id)
                .map(|h| (h.id, h.score))
                .collect();
        hits.truncate(request.limit);
        neighbours.push(hits);
    }
    Ok(MatrixResponse { ids, neighbours })
}

/// Maximal marginal relevance over `hits` (the nearest neighbours of the query, best first), as
/// Qdrant selects: the nearest first, then each time the candidate maximising
/// `(1 − diversity) × relevance − diversity × (its highest similarity to one already selected)`,
/// until `k` are selected. Similarities are "higher is better" (Qdrant's internal scores: minus the
/// squared distance under Euclid); the hits keep their original scores.
pub(crate) fn mmr(
    config: &CollectionConfig,
    set: &SegmentSet,
    using: &str,
    hits: Vec<ScoredPoint>,
    mmr: &Mmr,
    higher_is_better: bool,
    k: usize,
) -> Result<Vec<ScoredPoint>> {
    if !(0.0..=1.0).contains(&mmr.diversity) {
        return Err(Error::InvalidInput(
            "mmr.diversity must be between 0 and 1".into(),
        ));
    }
    let similarity = |score: f32| {
        if higher_is_better {
            score
        } else {
            -score * score
        }
    };
    let ids: Vec<PointId> = hits.iter().map(|h| h.id).collect();
    if ids.len() < 2 || k == 0 {
        let mut hits = hits;
        hits.truncate(k);
        return Ok(hits);
    }
    let position: HashMap<PointId, usize> =
        ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let n = ids.len();
    let mut sims = vec![0f32; n * n];
    for (id, vector) in stored_vectors(config, set, using, &ids)? {
        let row = position[&id];
        for hit in score_among(config, set, using, vector, &ids, n)? {
            sims[row * n + position[&hit.id]] = similarity(hit.score);
        }
    }
    let relevance: Vec<f32> = hits.iter().map(|h| similarity(h.score)).collect();
    let lambda = 1.0 - mmr.diversity;
    let mut selected: Vec<usize> = Vec::with_capacity(k.min(n));
    let mut remaining: Vec<usize> = (0..n).collect();
    // The nearest first (the hits come best first).
    let first = (0..n)
        .max_by(|a, b| relevance[*a].total_cmp(&relevance[*b]).then(b.cmp(a)))
        .expect("at least two hits");
    selected.push(first);
    remaining.retain(|i| *i != first);
    while selected.len() < k && !remaining.is_empty() {
        let score = |c: usize| {
            let redundancy = selected
                .iter()
                .map(|s| sims[c * n + s])
                .fold(f32::NEG_INFINITY, f32::max);
            lambda * relevance[c] - (1.0 - lambda) * redundancy
        };
        let (at, _) = remaining
            .iter()
            .enumerate()
            .map(|(at, c)| (at, score(*c)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .expect("a remaining candidate");
        selected.push(remaining.remove(at));
    }
    let mut hits: Vec<Option<ScoredPoint>> = hits.into_iter().map(Some).collect();
    Ok(selected
        .into_iter()
        .map(|i| hits[i].take().expect("selected once"))
        .collect())
}
