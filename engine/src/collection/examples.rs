//! Stages that score points by examples instead of one query vector: Qdrant's `recommend` (its
//! `average_vector` strategy becomes one ordinary search; `best_score` and `sum_scores` score each
//! point against every example), `discover` and `context`.
//!
//! The formulas are Qdrant's, over Qdrant's internal similarity: the dot product for Cosine (unit
//! vectors) and Dot, minus the squared distance for Euclid, MaxSim for multivectors (minus the summed
//! nearest squared distances under Euclid), the shared-dimension dot product for sparse vectors. Such a
//! stage scores the candidates of its prefetches when it has some; else, as in Qdrant, it walks the
//! graph of each sealed segment that has one with the example scoring as the walk's scorer (see
//! [`search`]), and scans the other segments, and every segment when asked for `exact`, exactly.

use std::collections::HashMap;

use super::field_index::{self, SegmentFilter};
use super::search::planned_walk;
use super::state::SegmentSet;
use super::validate;
use crate::config::{CollectionConfig, Distance};
use crate::filter::Filter;
use crate::index::{RowScorer, VectorSlab};
use crate::kernels;
use crate::point::{QueryVector, SparseVector};
use crate::query::{self, Deadline, RecommendStrategy};
use crate::{Error, PointId, Result};

/// How a stage folds a point's similarities to its examples into one score (higher is better).
pub(crate) enum Scoring {
    /// `recommend` with `best_score`.
    BestScore {
        positive: Vec<QueryVector>,
        negative: Vec<QueryVector>,
    },
    /// `recommend` with `sum_scores`.
    SumScores {
        positive: Vec<QueryVector>,
        negative: Vec<QueryVector>,
    },
    /// `discover`: +1 per pair whose positive is nearer, −1 otherwise, plus the target's similarity
    /// squashed into (0, 1).
    Discover {
        target: QueryVector,
        pairs: Vec<(QueryVector, QueryVector)>,
    },
    /// `context`: per pair, `min(sim(positive) − sim(negative) − ε, 0)` squashed into (−1, 0],
    /// summed.
    Context {
        pairs: Vec<(QueryVector, QueryVector)>,
    },
}

/// `x / (1 + |x|)`: Qdrant's cheap sigmoid, into (−1, 1).
fn fast_sigmoid(x: f32) -> f32 {
    x / (1.0 + x.abs())
}

/// Qdrant's cheap sigmoid scaled into (0, 1).
fn scaled_fast_sigmoid(x: f32) -> f32 {
    0.5 * (fast_sigmoid(x) + 1.0)
}

impl Scoring {
    /// The recommend scoring for a strategy other than `average_vector`.
    pub(crate) fn recommend(
        strategy: RecommendStrategy,
        positive: Vec<QueryVector>,
        negative: Vec<QueryVector>,
    ) -> Result<Scoring> {
        if positive.is_empty() && negative.is_empty() {
            return Err(Error::InvalidInput(
                "`recommend` needs at least one positive or negative example".into(),
            ));
        }
        Ok(match strategy {
            RecommendStrategy::BestScore => Scoring::BestScore { positive, negative },
            RecommendStrategy::SumScores => Scoring::SumScores { positive, negative },
            RecommendStrategy::AverageVector => {
                unreachable!("average_vector runs as a nearest-neighbour search")
            }
        })
    }

    fn score(&self, sim: &impl Fn(&QueryVector) -> f32) -> f32 {
        match self {
            Scoring::BestScore { positive, negative } => {
                let best = |examples: &[QueryVector]| {
                    examples
                        .iter()
                        .map(sim)
                        .fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a })
                };
                let (p, n) = (best(positive), best(negative));
                if p > n {
                    scaled_fast_sigmoid(p)
                } else {
                    -scaled_fast_sigmoid(n)
                }
            }
            Scoring::SumScores { positive, negative } => {
                positive.iter().map(sim).sum::<f32>() - negative.iter().map(sim).sum::<f32>()
            }
            Scoring::Discover { target, pairs } => {
                let rank: i32 = pairs
                    .iter()
                    .map(|(p, n)| if sim(p) > sim(n) { 1 } else { -1 })
                    .sum();
                rank as f32 + scaled_fast_sigmoid(sim(target))
            }
            Scoring::Context { pairs } => pairs
                .iter()
                .map(|(p, n)| fast_sigmoid((sim(p) - sim(n) - f32::EPSILON).min(0.0)))
                .sum(),
        }
    }
}

/// An example checked against the stage's vector and normalised under Cosine, like a query.
pub(crate) fn prepared(
    config: &CollectionConfig,
    using: &str,
    example: QueryVector,
) -> Result<QueryVector> {
    if config.sparse(using).is_some() {
        return Ok(example);
    }
    validate::query(using, config.vector(using)?, &example)
}

/// `average_vector`: `avg(positive)` without negatives, else `avg(positive) + (avg(positive) −
/// avg(negative))`; for multivectors, the positives' rows followed by the negatives' rows negated.
pub(crate) fn average_vector(
    positive: Vec<QueryVector>,
    negative: Vec<QueryVector>,
) -> Result<QueryVector> {
    let avg_pos = average(positive)?.ok_or_else(|| {
        Error::InvalidInput(
            "`recommend` with the average_vector strategy needs at least one positive example"
                .into(),
        )
    })?;
    let Some(avg_neg) = average(negative)? else {
        return Ok(avg_pos);
    };
    Ok(match (avg_pos, avg_neg) {
        (QueryVector::Dense(p), QueryVector::Dense(n)) => {
            QueryVector::Dense(p.iter().zip(&n).map(|(p, n)| p + p - n).collect())
        }
        (QueryVector::Sparse(p), QueryVector::Sparse(n)) => {
            let mut sum: HashMap<u32, f32> = HashMap::new();
            for (i, v) in p.indices.iter().zip(&p.values) {
                *sum.entry(*i).or_default() += 2.0 * v;
            }
            for (i, v) in n.indices.iter().zip(&n.values) {
                *sum.entry(*i).or_default() -= v;
            }
            sparse_from(sum)
        }
        (QueryVector::Multi(mut p), QueryVector::Multi(n)) => {
            p.extend(
                n.into_iter()
                    .map(|row| row.into_iter().map(|x| -x).collect()),
            );
            QueryVector::Multi(p)
        }
        _ => unreachable!("examples are resolved against one vector, so they share a kind"),
    })
}

fn sparse_from(map: HashMap<u32, f32>) -> QueryVector {
    let mut pairs: Vec<(u32, f32)> = map.into_iter().collect();
    pairs.sort_unstable_by_key(|p| p.0);
    QueryVector::Sparse(SparseVector {
        indices: pairs.iter().map(|p| p.0).collect(),
        values: pairs.iter().map(|p| p.1).collect(),
    })
}

/// The mean of examples of one kind; `None` for none.
fn average(examples: Vec<QueryVector>) -> Result<Option<QueryVector>> {
    let n = examples.len() as f32;
    let mut it = examples.into_iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    Ok(Some(match first {
        QueryVector::Dense(mut acc) => {
            for v in it {
                let QueryVector::Dense(v) = v else {
                    unreachable!("examples share a kind");
                };
                acc.iter_mut().zip(&v).for_each(|(a, b)| *a += b);
            }
            acc.iter_mut().for_each(|a| *a /= n);
            QueryVector::Dense(acc)
        }
        QueryVector::Sparse(first) => {
            let mut sum: HashMap<u32, f32> = HashMap::new();
            for v in std::iter::once(QueryVector::Sparse(first)).chain(it) {
                let QueryVector::Sparse(v) = v else {
                    unreachable!("examples share a kind");
                };
                for (i, x) in v.indices.iter().zip(&v.values) {
                    *sum.entry(*i).or_default() += x;
                }
            }
            sum.values_mut().for_each(|x| *x /= n);
            sparse_from(sum)
        }
        // Qdrant averages multivectors by concatenating their rows (MaxSim sums over query rows).
        QueryVector::Multi(mut rows) => {
            for v in it {
                let QueryVector::Multi(more) = v else {
                    unreachable!("examples share a kind");
                };
                rows.extend(more);
            }
            QueryVector::Multi(rows)
        }
    }))
}

/// Qdrant's internal similarity of a stored dense row to an example (higher is more similar).
fn dense_similarity(distance: Distance, row: &[f32], example: &QueryVector) -> f32 {
    let QueryVector::Dense(e) = example else {
        unreachable!("examples of a dense vector are dense");
    };
    match distance {
        Distance::Cosine | Distance::Dot => kernels::dot(row, e),
        Distance::Euclid => -kernels::l2_squared(row, e),
    }
}

/// `flat` and `best` are scratch reused over a scan: the example's rows in one slice (what the
/// MaxSim kernel takes) and the maxima of its rows.
fn multi_similarity(
    distance: Distance,
    doc: &[f32],
    dim: usize,
    example: &QueryVector,
    (flat, best): &mut (Vec<f32>, Vec<f32>),
) -> f32 {
    let QueryVector::Multi(rows) = example else {
        unreachable!("examples of a multivector are multivectors");
    };
    match distance {
        Distance::Cosine | Distance::Dot => {
            flat.clear();
            rows.iter().for_each(|r| flat.extend_from_slice(r));
            kernels::max_sim_with(flat, doc, dim, best)
        }
        Distance::Euclid => -rows
            .iter()
            .map(|q| {
                doc.chunks_exact(dim)
                    .map(|d| kernels::l2_squared(q, d))
                    .fold(f32::INFINITY, f32::min)
            })
            .sum::<f32>(),
    }
}

/// What an example-scored stage searches: [`search`]'s request.
pub(crate) struct ExampleSearch<'a> {
    /// The vector compared (`""`: the unnamed one).
    pub using: &'a str,
    /// How the examples score a point.
    pub scoring: &'a Scoring,
    /// Only matching points.
    pub filter: Option<&'a Filter>,
    /// Only these points (the stage's prefetches' hits); scored exactly.
    pub candidates: Option<&'a [PointId]>,
    /// Hits the stage needs (`limit + offset`): the least a graph walk keeps per segment.
    pub k: usize,
    /// Candidate list of a graph walk (`None`: the vector's stored `ef`).
    pub ef: Option<usize>,
    /// Scan every segment exactly.
    pub exact: bool,
    /// When the stage must stop.
    pub deadline: Option<&'a Deadline>,
}

/// The scored points of a [`search`], best first, and how many segments each way found them.
pub(crate) struct ExampleHits {
    /// `(id, score)`, best first.
    pub scored: Vec<(PointId, f32)>,
    /// Segments whose graph was walked.
    pub walked: usize,
    /// Segments scanned (exactly, or over the candidates).
    pub scanned: usize,
}

/// Rows of a dense slab scored against the examples, for a graph walk: the key is the score
/// negated (the walk keeps the lowest keys), so negating it back gives the scan's score bit for bit.
struct ExampleScorer<'a> {
    slab: VectorSlab<'a>,
    distance: Distance,
    scoring: &'a Scoring,
}

impl RowScorer for ExampleScorer<'_> {
    fn len(&self) -> usize {
        self.slab.len()
    }

    #[inline]
    fn key(&self, row: u32) -> f32 {
        let row = self.slab.row(row);
        -self
            .scoring
            .score(&|e: &QueryVector| dense_similarity(self.distance, row, e))
    }
}

/// Points scored between two looks at the clock when the stage has a deadline.
const DEADLINE_CHECK_POINTS: usize = 256;

/// Scores the points of `candidates` (or, without them, every live point) that pass the filter and
/// have the vector; best first. Like Qdrant, a sealed segment with a graph of a dense vector is
/// searched by a graph walk whose scorer is the example scoring (its `max(ef, k)` best are kept; on the
/// graph of the value the filter requires, if any: see [`super::value_graphs`]), unless
/// the request is `exact`, has candidates, or its filter is selective enough that the planner scans;
/// other segments, multivectors and sparse vectors are scanned exactly.
pub(crate) fn search(
    config: &CollectionConfig,
    set: &SegmentSet,
    request: &ExampleSearch<'_>,
) -> Result<ExampleHits> {
    let &ExampleSearch {
        using,
        scoring,
        filter,
        candidates,
        k,
        ef,
        exact,
        deadline,
    } = request;
    field_index::warm(set, filter);
    let sparse = config.sparse(using).is_some();
    let params = if sparse {
        None
    } else {
        Some(config.vector(using)?)
    };
    let hnsw = config.hnsw_for(using);
    let ef = ef.unwrap_or(hnsw.ef).max(k);
    let mut out = ExampleHits {
        scored: Vec::new(),
        walked: 0,
        scanned: 0,
    };
    for view in set.views().iter() {
        query::check(deadline)?;
        let pass = SegmentFilter::new(view, filter, &set.schema);
        let dense = params
            .filter(|p| p.multivector_config.is_none())
            .and_then(|_| view.dense(using));
        let graph = match (&dense, params) {
            (Some(d), Some(p)) if candidates.is_none() && !exact && k > 0 => {
                planned_walk(view, using, filter, &pass, hnsw.full_scan_threshold, true)
                    .0
                    .map(|g| (g, d, p.distance))
            }
            _ => None,
        };
        if let Some((graph, d, distance)) = graph {
            let accept = |row: u32| {
                d.row_to_point(row)
                    .is_some_and(|off| view.is_live(off) && pass.passes(view, off))
            };
            let scorer = ExampleScorer {
                slab: d.slab,
                distance,
                scoring,
            };
            // No segment returns more than it holds: bounds the walk's lists under absurd offsets.
            let ef = ef.min(view.len());
            out.scored.extend(
                graph
                    .search_by(&scorer, ef, ef, &accept)
                    .into_iter()
                    .filter_map(|(row, key)| Some((view.id(d.row_to_point(row)?), -key))),
            );
            out.walked += 1;
            continue;
        }
        out.scanned += 1;
        let offsets: Vec<u32> = match candidates {
            Some(ids) => ids.iter().filter_map(|id| view.find(id)).collect(),
            None => (0..view.len() as u32).collect(),
        };
        // A point's rows (widened from f16, or decompressed) and the multivector scoring's scratch,
        // reused from point to point instead of allocated for each.
        let mut doc_rows = Vec::new();
        let scratch = std::cell::RefCell::new((Vec::new(), Vec::new()));
        for (i, off) in offsets.into_iter().enumerate() {
            if i.is_multiple_of(DEADLINE_CHECK_POINTS) {
                query::check(deadline)?;
            }
            if !view.is_live(off) || !pass.passes(view, off) {
                continue;
            }
            let score = match params {
                None => {
                    let Some(row) = view.sparse_row(using, off) else {
                        continue;
                    };
                    scoring.score(&|e: &QueryVector| match e {
                        QueryVector::Sparse(e) => e.as_ref().dot(&row).unwrap_or(0.0),
                        _ => unreachable!("examples of a sparse vector are sparse"),
                    })
                }
                Some(p) if p.multivector_config.is_some() => {
                    let scored = view.with_multi_rows(using, off, &mut doc_rows, |doc| {
                        scoring.score(&|e: &QueryVector| {
                            multi_similarity(p.distance, doc, p.size, e, &mut scratch.borrow_mut())
                        })
                    });
                    let Some(score) = scored else {
                        continue;
                    };
                    score
                }
                Some(p) => {
                    let Some(rows) = &dense else {
                        continue;
                    };
                    let Some(r) = rows.point_to_row(off) else {
                        continue;
                    };
                    let row = rows.slab.row(r);
                    scoring.score(&|e: &QueryVector| dense_similarity(p.distance, row, e))
                }
            };
            out.scored.push((view.id(off), score));
        }
    }
    out.scored
        .sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: &[f32]) -> QueryVector {
        QueryVector::Dense(v.to_vec())
    }

    #[test]
    fn best_score_prefers_anything_nearer_a_positive() {
        let s = Scoring::BestScore {
            positive: vec![d(&[42.0])],
            negative: vec![d(&[4.0])],
        };
        let sim = |e: &QueryVector| match e {
            QueryVector::Dense(v) => v[0],
            _ => unreachable!(),
        };
        assert_eq!(s.score(&sim), scaled_fast_sigmoid(42.0));
        let s = Scoring::BestScore {
            positive: vec![d(&[4.0])],
            negative: vec![d(&[42.0])],
        };
        assert_eq!(s.score(&sim), -scaled_fast_sigmoid(42.0));
        // Only negatives: the least similar to them ranks first.
        let near = Scoring::BestScore {
            positive: vec![],
            negative: vec![d(&[5.0])],
        };
        let far = Scoring::BestScore {
            positive: vec![],
            negative: vec![d(&[-5.0])],
        };
        assert!(far.score(&sim) > near.score(&sim));
    }

    #[test]
    fn context_loss_is_zero_inside_the_zone_and_negative_outside() {
        let sim = |e: &QueryVector| match e {
            QueryVector::Dense(v) => v[0],
            _ => unreachable!(),
        };
        let inside = Scoring::Context {
            pairs: vec![(d(&[3.0]), d(&[1.0]))],
        };
        assert_eq!(inside.score(&sim), 0.0);
        let outside = Scoring::Context {
            pairs: vec![(d(&[1.0]), d(&[3.0]))],
        };
        let s = outside.score(&sim);
        assert!(s < 0.0 && s > -1.0, "{s}");
        let discover = Scoring::Discover {
            target: d(&[0.0]),
            pairs: vec![(d(&[3.0]), d(&[1.0])), (d(&[1.0]), d(&[3.0]))],
        };
        assert_eq!(discover.score(&sim), 0.5);
    }

    /// The scorer counts the rows it scores, so the test sees how little of a segment a walk touches.
    struct Counting<'a>(ExampleScorer<'a>, std::sync::atomic::AtomicUsize);

    impl RowScorer for Counting<'_> {
        fn len(&self) -> usize {
            self.0.len()
        }

        fn key(&self, row: u32) -> f32 {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.key(row)
        }
    }

    #[test]
    fn a_graph_walk_with_the_example_scorer_scores_a_small_part_of_the_rows() {
        use crate::index::hnsw::{build_graph, write_graph, GraphView, HnswBuildParams};
        use rand::{Rng, SeedableRng};
        let (n, dim) = (10_000usize, 8usize);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let unit = |rng: &mut rand::rngs::StdRng| {
            let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let norm = kernels::dot(&v, &v).sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
        };
        let data: Vec<f32> = (0..n).flat_map(|_| unit(&mut rng)).collect();
        let slab = VectorSlab { data: &data, dim };
        let params = HnswBuildParams {
            deterministic: true,
            threads: 1,
            ..HnswBuildParams::default()
        };
        let built = build_graph(slab, Distance::Cosine, &params, &Default::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("graph");
        write_graph(&path, &built).unwrap();
        let graph = GraphView::open(&path).unwrap();
        let mut found = 0;
        for _ in 0..10 {
            let e: Vec<QueryVector> = (0..5).map(|_| QueryVector::Dense(unit(&mut rng))).collect();
            let scoring = Scoring::Discover {
                target: e[0].clone(),
                pairs: vec![(e[1].clone(), e[2].clone()), (e[3].clone(), e[4].clone())],
            };
            let scorer = ExampleScorer {
                slab,
                distance: Distance::Cosine,
                scoring: &scoring,
            };
            let mut exact: Vec<f32> = (0..n as u32).map(|r| -scorer.key(r)).collect();
            exact.sort_by(|a, b| b.total_cmp(a));
            let counting = Counting(scorer, Default::default());
            let walked = graph.search_by(&counting, 10, 64, &|_| true);
            let scored = counting.1.into_inner();
            assert!(scored < n / 5, "the walk scored {scored} of {n} rows");
            found += walked.iter().filter(|(_, key)| -key >= exact[9]).count();
        }
        assert!(found >= 90, "recall@10 {found}%");
    }

    #[test]
    fn average_vector_follows_qdrant() {
        let v = average_vector(vec![d(&[1.0, 0.0]), d(&[3.0, 2.0])], vec![d(&[0.0, 4.0])]).unwrap();
        // avg(p) = [2, 1]; 2·avg(p) − avg(n) = [4, −2].
        assert_eq!(v, d(&[4.0, -2.0]));
        assert!(average_vector(vec![], vec![d(&[1.0])]).is_err());
        let multi = average_vector(
            vec![QueryVector::Multi(vec![vec![1.0, 0.0]])],
            vec![QueryVector::Multi(vec![vec![0.0, 1.0]])],
        )
        .unwrap();
        assert_eq!(
            multi,
            QueryVector::Multi(vec![vec![1.0, 0.0], vec![-0.0, -1.0]])
        );
    }
}
