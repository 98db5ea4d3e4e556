//! The typed query: what a caller asks [`crate::Collection::query`] for, and what it answers.
//!
//! A request is a tree. Its root and every prefetch are *stages*: a stage first runs its own prefetches
//! (deepest first), whose hits (their union) become the candidates it scores; a stage without
//! prefetches searches the whole collection. The root's filter restricts every stage below it, as in
//! Qdrant. Each stage says what it searches with ([`Query`]) over which named vector (`using`).
//!
//! The tree is generic over its inputs: the engine runs `QueryRequest<QueryInput>`, whose inputs are
//! vectors, multivectors or point ids; a caller that still holds inputs the engine cannot run (a
//! server's documents, to be embedded) builds a `QueryRequest<ItsInput>` and turns it into the
//! engine's with [`QueryRequest::try_map_inputs`]. A new kind of stage (fusion over prefetches,
//! recommend, discover, formula) is a new [`Query`] variant; a new kind of input (a sparse vector) a new
//! [`QueryInput`] variant.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::filter::Filter;
use crate::plaid::PlaidSearchParams;
use crate::point::{OrderValue, ScoredPoint, SparseVector, WithPayload, WithVectors};
use crate::{Error, PointId};

pub mod formula;

pub use formula::Formula;

/// When a read must stop (Qdrant's `timeout`): the engine checks it between stages and segments and
/// periodically inside long scans (exact scans, MaxSim scans, example scoring), and stops with
/// [`Error::Timeout`]. A graph walk is not interrupted: it is bounded by its `ef`. Several requests
/// may share one deadline (a batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    after: Duration,
    operation: &'static str,
}

impl Deadline {
    /// A deadline `timeout` from now; `operation` names what times out in the error (Qdrant's
    /// `Search`, `Scroll`, ...).
    pub fn after(timeout: Duration, operation: &'static str) -> Self {
        let now = Instant::now();
        Deadline {
            at: now
                .checked_add(timeout)
                .unwrap_or(now + Duration::from_secs(86_400 * 365)),
            after: timeout,
            operation,
        }
    }

    /// True once the time is up.
    #[inline]
    pub fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Time left (zero once expired).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The time limit it was made with.
    pub fn timeout(&self) -> Duration {
        self.after
    }

    /// The error of a read that ran past it.
    pub fn error(&self) -> Error {
        Error::Timeout {
            operation: self.operation,
            after: self.after,
        }
    }

    /// `Err(Timeout)` once expired.
    pub fn check(&self) -> crate::Result<()> {
        if self.expired() {
            Err(self.error())
        } else {
            Ok(())
        }
    }
}

/// [`Deadline::check`] of an optional deadline (`None`: no limit).
pub(crate) fn check(deadline: Option<&Deadline>) -> crate::Result<()> {
    deadline.map_or(Ok(()), Deadline::check)
}

/// Deepest prefetch nesting a request may have.
pub const MAX_PREFETCH_DEPTH: usize = 8;

/// What a stage searches with, as the engine takes it.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryInput {
    /// One vector. Against a multivector field it is a one-row matrix, as in Qdrant.
    Dense(Vec<f32>),
    /// A matrix: one row per token (MaxSim against a multivector field).
    Multi(Vec<Vec<f32>>),
    /// The stored vector (the stage's `using`) of this point.
    Point(PointId),
    /// A sparse vector, against a vector configured in `sparse_vectors`.
    Sparse(SparseVector),
}

/// What a stage does with its input.
#[derive(Clone, Debug, PartialEq)]
pub enum Query<I = QueryInput> {
    /// The nearest neighbours of the input (Qdrant's `nearest`, and a bare vector).
    Nearest(I),
    /// Combines the ranked hits of the stage's prefetches, each list taken separately (Qdrant's
    /// `fusion` and `rrf` queries); it has no input and searches no vector.
    Fusion(Fusion),
    /// Points like the positive examples and unlike the negative ones (Qdrant's `recommend`).
    Recommend(Recommend<I>),
    /// Points in the zone the context pairs mark out, ranked by the target within it (Qdrant's
    /// `discover`).
    Discover {
        /// What to rank by inside the zone.
        target: I,
        /// Pairs that mark the zone: nearer the positive than the negative of each.
        context: Vec<ContextPair<I>>,
    },
    /// Points nearer the positive than the negative of as many pairs as possible, without a target
    /// (Qdrant's `context`).
    Context(Vec<ContextPair<I>>),
    /// Points in the order of a payload field's values (Qdrant's `order_by`); no vector is compared,
    /// every hit scores 1 and carries the value it was ordered by.
    OrderBy(OrderBy),
    /// Random points that pass the filter (Qdrant's `{"sample": "random"}`), each scored 0, in no
    /// particular order; without prefetches the stage's offset is ignored, as in Qdrant.
    Sample,
    /// The nearest neighbours of the input, re-selected for diversity by maximal marginal relevance
    /// (Qdrant's `{"nearest": …, "mmr": …}`); the hits keep their similarity to the input as score.
    Mmr {
        /// What the hits should be near.
        nearest: I,
        /// How the hits are selected.
        mmr: Mmr,
    },
    /// Every candidate of the stage's prefetches scored by an expression over their scores, its
    /// payload and conditions on it (Qdrant's `formula`, "score boosting"); it searches no vector.
    Formula(Formula),
}

/// Qdrant's `order_by`: points in the order of the values of a payload field that has a range-capable
/// index (`integer`, `float` or `datetime`). A point with several values there appears once per
/// value, as in Qdrant.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderBy {
    /// The payload key.
    pub key: String,
    /// Smallest or largest value first.
    pub direction: Direction,
    /// Skip the values before this one (below it ascending, above it descending).
    pub start_from: Option<StartFrom>,
}

/// Which end of an [`OrderBy`] comes first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// Where an [`OrderBy`] starts: a number or a date-time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StartFrom {
    /// An integer.
    Integer(i64),
    /// Any number.
    Float(f64),
    /// An instant, compared with a `datetime` field's values.
    Datetime(crate::filter::Datetime),
}

impl StartFrom {
    /// The value to compare the field's values with.
    pub fn value(self) -> OrderValue {
        match self {
            StartFrom::Integer(i) => OrderValue::Int(i),
            StartFrom::Float(f) => OrderValue::Float(f),
            StartFrom::Datetime(t) => OrderValue::Int(t.0.timestamp_micros()),
        }
    }
}

/// A counting request over a payload key (Qdrant's `facet`): how many points hold each value.
#[derive(Clone, Debug, PartialEq)]
pub struct FacetRequest {
    /// The payload key; it needs a `keyword`, `integer`, `bool` or `uuid` index.
    pub key: String,
    /// Values to return, most frequent first.
    pub limit: usize,
    /// Only matching points are counted.
    pub filter: Option<Filter>,
}

/// A value of a faceted key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum FacetValue {
    /// A keyword (or UUID) value.
    Keyword(String),
    /// An integer value.
    Integer(i64),
    /// A boolean value.
    Bool(bool),
}

/// One value of a facet and the number of points holding it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FacetHit {
    /// The value.
    pub value: FacetValue,
    /// Points with that value (a point with the value twice in an array counts once).
    pub count: usize,
}

/// Qdrant's `mmr`: from the `candidates_limit` nearest, the first hit is the nearest; each next one
/// maximises `(1 − diversity) × sim(query, c) − diversity × max sim(c, already selected)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mmr {
    /// 0 ranks by relevance alone, 1 by diversity alone.
    pub diversity: f32,
    /// How many nearest neighbours the selection picks from; `None`: the stage's `limit`, as in
    /// Qdrant.
    pub candidates_limit: Option<usize>,
}

/// Qdrant's default `mmr.diversity`.
pub const DEFAULT_MMR_DIVERSITY: f32 = 0.5;

/// Qdrant's `recommend`: examples to be like and unlike.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommend<I = QueryInput> {
    /// Examples the hits should be like.
    pub positive: Vec<I>,
    /// Examples the hits should be unlike.
    pub negative: Vec<I>,
    /// How the examples score a point.
    pub strategy: RecommendStrategy,
}

/// Qdrant's recommend strategies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecommendStrategy {
    /// One search with `avg(positive) + (avg(positive) − avg(negative))` (the index serves it).
    #[default]
    AverageVector,
    /// The best similarity to a positive, if above the best to a negative, through a sigmoid into
    /// (0, 1); else minus the best negative's, so anything nearer a negative ranks last.
    BestScore,
    /// The sum of similarities to the positives minus the sum to the negatives.
    SumScores,
}

/// A positive and a negative example of `discover` and `context`.
#[derive(Clone, Debug, PartialEq)]
pub struct ContextPair<I = QueryInput> {
    /// The side to be on.
    pub positive: I,
    /// The side not to be on.
    pub negative: I,
}

/// How a fusion stage combines its prefetches' hits.
#[derive(Clone, Debug, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion: a hit at 0-based position `p` of a list of weight `w` scores
    /// `1 / ((p + 1) / w + k − 1)`, summed over the lists (Qdrant's formula; `w = 1` gives
    /// `1 / (p + k)`).
    Rrf {
        /// Qdrant's `rrf.k` (at least 1; [`DEFAULT_RRF_K`] by default).
        k: usize,
        /// One weight per prefetch; `None` weighs every list 1.
        weights: Option<Vec<f32>>,
    },
    /// Distribution-based score fusion: each list's scores are mapped from [mean − 3σ, mean + 3σ]
    /// (sample σ) to [0, 1] and summed; a list of one hit scores 0.5.
    Dbsf,
}

/// Qdrant's default `k` of reciprocal rank fusion.
pub const DEFAULT_RRF_K: usize = 2;

impl<I> Query<I> {
    /// The stage's inputs, in order.
    pub fn inputs(&self) -> impl Iterator<Item = &I> {
        fn pairs<I>(pairs: &[ContextPair<I>]) -> Vec<&I> {
            pairs
                .iter()
                .flat_map(|p| [&p.positive, &p.negative])
                .collect()
        }
        let all: Vec<&I> = match self {
            Query::Nearest(input) => vec![input],
            Query::Fusion(_) => Vec::new(),
            Query::Recommend(r) => r.positive.iter().chain(&r.negative).collect(),
            Query::Discover { target, context } => {
                std::iter::once(target).chain(pairs(context)).collect()
            }
            Query::Context(context) => pairs(context),
            Query::OrderBy(_) => Vec::new(),
            Query::Sample => Vec::new(),
            Query::Mmr { nearest, .. } => vec![nearest],
            Query::Formula(_) => Vec::new(),
        };
        all.into_iter()
    }

    /// The same stage with every input replaced by `f(input)`, in the order of [`Query::inputs`];
    /// the first error stops the walk.
    pub fn try_map<J, E>(self, f: &mut impl FnMut(I) -> Result<J, E>) -> Result<Query<J>, E> {
        let pairs = |pairs: Vec<ContextPair<I>>, f: &mut dyn FnMut(I) -> Result<J, E>| {
            pairs
                .into_iter()
                .map(|p| {
                    Ok(ContextPair {
                        positive: f(p.positive)?,
                        negative: f(p.negative)?,
                    })
                })
                .collect::<Result<Vec<_>, E>>()
        };
        Ok(match self {
            Query::Nearest(input) => Query::Nearest(f(input)?),
            Query::Fusion(fusion) => Query::Fusion(fusion),
            Query::Recommend(r) => Query::Recommend(Recommend {
                positive: r
                    .positive
                    .into_iter()
                    .map(&mut *f)
                    .collect::<Result<_, _>>()?,
                negative: r
                    .negative
                    .into_iter()
                    .map(&mut *f)
                    .collect::<Result<_, _>>()?,
                strategy: r.strategy,
            }),
            Query::Discover { target, context } => {
                let target = f(target)?;
                Query::Discover {
                    target,
                    context: pairs(context, f)?,
                }
            }
            Query::Context(context) => Query::Context(pairs(context, f)?),
            Query::OrderBy(order_by) => Query::OrderBy(order_by),
            Query::Sample => Query::Sample,
            Query::Mmr { nearest, mmr } => Query::Mmr {
                nearest: f(nearest)?,
                mmr,
            },
            Query::Formula(formula) => Query::Formula(formula),
        })
    }
}

/// Search-time parameters of one stage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchParams {
    /// Candidate-list size of the graph walk; `None` takes the collection's stored `ef`.
    pub hnsw_ef: Option<usize>,
    /// Scan exactly instead of using the index.
    pub exact: bool,
    /// How a quantized vector, or one whose graph indexes a Matryoshka prefix, ranks the graph's
    /// candidates.
    pub quantization: Option<QuantizationParams>,
    /// Overrides of the token store's (PLAID) search, for multivector stages.
    pub plaid: Option<PlaidSearchParams>,
}

/// Qdrant's `params.quantization`, applied to a quantized vector (whose graph walk scores codes) and
/// to a Matryoshka-prefix index (whose graph walk scores prefix rows); no effect on other vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QuantizationParams {
    /// `true`: walk the graph on the original rows, not the codes (quantized vectors only).
    pub ignore: Option<bool>,
    /// `false`: return the codes' or the prefix's scores as they are (a funnel's first stage); `true`
    /// (the default): rescore the graph's candidates with the original full vectors.
    pub rescore: Option<bool>,
    /// Rescore `limit × oversampling` graph candidates (1 to 100).
    pub oversampling: Option<f64>,
}

/// A stage below the root: it finds candidates for the stage above it.
#[derive(Clone, Debug, PartialEq)]
pub struct Prefetch<I = QueryInput> {
    /// Its own prefetches, whose hits it scores.
    pub prefetch: Vec<Prefetch<I>>,
    /// What it searches with (required today).
    pub query: Option<Query<I>>,
    /// The named vector it searches (`None`: the unnamed one).
    pub using: Option<String>,
    /// Only matching points (on top of the filters of the stages above).
    pub filter: Option<Filter>,
    /// Search-time parameters.
    pub params: SearchParams,
    /// Drop hits worse than this.
    pub score_threshold: Option<f32>,
    /// Candidates it passes up.
    pub limit: usize,
}

/// Quiver's default funnel depths (see [`crate::collection::apply_default_funnel`]); `None` takes the
/// defaults for the request's `limit + offset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FunnelDepths {
    /// Candidates the HNSW stage returns (on the Matryoshka prefix when the vector has `dims`).
    pub hnsw_limit: Option<usize>,
    /// Candidates the full-vector rescore passes to the MaxSim stage.
    pub rescore_limit: Option<usize>,
}

/// A query over one collection: the root stage and what the answer carries.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryRequest<I = QueryInput> {
    /// Stages whose hits (their union) this one scores.
    pub prefetch: Vec<Prefetch<I>>,
    /// What to search with; `None` lists points in id order (score 0).
    pub query: Option<Query<I>>,
    /// The named vector to search (`None`: the unnamed one).
    pub using: Option<String>,
    /// Only matching points; restricts every prefetch as well.
    pub filter: Option<Filter>,
    /// Search-time parameters.
    pub params: SearchParams,
    /// Drop hits worse than this (below for similarities, above for Euclid).
    pub score_threshold: Option<f32>,
    /// Hits to return.
    pub limit: usize,
    /// Hits to skip first.
    pub offset: usize,
    /// Payload in the hits.
    pub with_payload: WithPayload,
    /// Vectors in the hits.
    pub with_vectors: WithVectors,
    /// Depths of the default funnel; only a plain query on bound vectors may set them, and
    /// [`crate::collection::apply_default_funnel`] consumes them.
    pub funnel: Option<FunnelDepths>,
    /// When the query must stop (Qdrant's `timeout`); `None`: no limit.
    pub deadline: Option<Deadline>,
}

impl<I> QueryRequest<I> {
    /// A root stage that searches `query` over the vector `using`, with defaults elsewhere.
    pub fn nearest(using: Option<String>, input: I, limit: usize) -> Self {
        QueryRequest {
            prefetch: Vec::new(),
            query: Some(Query::Nearest(input)),
            using,
            filter: None,
            params: SearchParams::default(),
            score_threshold: None,
            limit,
            offset: 0,
            with_payload: WithPayload::None,
            with_vectors: WithVectors::None,
            funnel: None,
            deadline: None,
        }
    }

    /// How many hits the root stage must find: `limit + offset`, computed here once.
    pub fn limit_with_offset(&self) -> usize {
        self.limit.saturating_add(self.offset)
    }

    /// Every input of the tree with the vector its stage searches (`""`: the unnamed one): the root's
    /// first, then each prefetch's before its own prefetches. [`QueryRequest::try_map_inputs`] visits
    /// them in the same order.
    pub fn inputs(&self) -> Vec<(&str, &I)> {
        let mut out = Vec::new();
        let using = self.using.as_deref().unwrap_or("");
        for input in self.query.iter().flat_map(Query::inputs) {
            out.push((using, input));
        }
        for p in &self.prefetch {
            p.collect_inputs(&mut out);
        }
        out
    }

    /// The same tree with every input replaced by `f(using, input)`, in the order of
    /// [`QueryRequest::inputs`]; the first error stops the walk.
    pub fn try_map_inputs<J, E>(
        self,
        mut f: impl FnMut(&str, I) -> Result<J, E>,
    ) -> Result<QueryRequest<J>, E> {
        let using = self.using.clone().unwrap_or_default();
        let query = self
            .query
            .map(|q| q.try_map(&mut |input| f(&using, input)))
            .transpose()?;
        let prefetch = self
            .prefetch
            .into_iter()
            .map(|p| p.try_map_inputs(&mut f))
            .collect::<Result<_, _>>()?;
        Ok(QueryRequest {
            prefetch,
            query,
            using: self.using,
            filter: self.filter,
            params: self.params,
            score_threshold: self.score_threshold,
            limit: self.limit,
            offset: self.offset,
            with_payload: self.with_payload,
            with_vectors: self.with_vectors,
            funnel: self.funnel,
            deadline: self.deadline,
        })
    }
}

impl<I> Prefetch<I> {
    fn collect_inputs<'a>(&'a self, out: &mut Vec<(&'a str, &'a I)>) {
        let using = self.using.as_deref().unwrap_or("");
        for input in self.query.iter().flat_map(Query::inputs) {
            out.push((using, input));
        }
        for p in &self.prefetch {
            p.collect_inputs(out);
        }
    }

    fn try_map_inputs<J, E>(
        self,
        f: &mut impl FnMut(&str, I) -> Result<J, E>,
    ) -> Result<Prefetch<J>, E> {
        let using = self.using.clone().unwrap_or_default();
        let query = self
            .query
            .map(|q| q.try_map(&mut |input| f(&using, input)))
            .transpose()?;
        let prefetch = self
            .prefetch
            .into_iter()
            .map(|p| p.try_map_inputs(f))
            .collect::<Result<_, _>>()?;
        Ok(Prefetch {
            prefetch,
            query,
            using: self.using,
            filter: self.filter,
            params: self.params,
            score_threshold: self.score_threshold,
            limit: self.limit,
        })
    }
}

/// How a stage found its hits, as the engine ran it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Index search of a dense vector: HNSW graph walks, and scans of the segments too small to have a
    /// graph.
    Hnsw,
    /// A scan of every segment: asked for (`exact`), or chosen by the filter planner over each
    /// segment's index because few points pass the filter.
    Exact,
    /// A dense vector scoring the candidates of the stage's prefetches.
    Rescore,
    /// Index search of a multivector: the token store (PLAID) where a segment has one, a scan of the
    /// raw rows where it does not.
    TokenStore,
    /// A multivector scoring the candidates of the stage's prefetches.
    #[serde(rename = "maxsim")]
    MaxSim,
    /// Index search of a sparse vector: the posting lists of the query's dimensions in sealed
    /// segments, the rows of the appendable one.
    InvertedIndex,
    /// A fusion of the prefetches' ranked hits (RRF or DBSF); no vector is compared.
    Fusion,
    /// Points in the order of a payload field's values; no vector is compared.
    OrderBy,
    /// A random sample of the points (or candidates) that pass the filter; no vector is compared.
    Sample,
    /// Maximal marginal relevance: a selection among the nearest neighbours found first.
    Mmr,
    /// A formula over the prefetches' scores and the candidates' payloads; no vector is compared.
    Formula,
}

impl Strategy {
    /// The name the API reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Hnsw => "hnsw",
            Strategy::Exact => "exact",
            Strategy::Rescore => "rescore",
            Strategy::TokenStore => "token_store",
            Strategy::MaxSim => "maxsim",
            Strategy::InvertedIndex => "inverted_index",
            Strategy::Fusion => "fusion",
            Strategy::OrderBy => "order_by",
            Strategy::Sample => "sample",
            Strategy::Mmr => "mmr",
            Strategy::Formula => "formula",
        }
    }
}

/// What one stage did, measured by the engine while it ran.
#[derive(Clone, Debug, PartialEq)]
pub struct StageStats {
    /// The vector the stage searched (`""`: the unnamed one).
    pub using: String,
    /// Nesting depth: 0 for the root, 1 for its prefetches, and so on.
    pub depth: usize,
    /// Hits the stage was asked for (its `limit`; `limit + offset` at the root).
    pub limit: usize,
    /// Candidates it scored, when it had prefetches.
    pub candidates: Option<usize>,
    /// How it searched.
    pub strategy: Strategy,
    /// Components of each vector it compared: the Matryoshka prefix when it returned prefix scores,
    /// else the vector's size.
    pub dims: usize,
    /// Segments whose index (graph or token store) it walked.
    pub segments_indexed: usize,
    /// Of those, segments where it walked the graph of the payload value its filter requires
    /// (Qdrant's `payload_m` links).
    pub segments_value_graph: usize,
    /// Segments it scanned (exactly, or over the candidates).
    pub segments_scanned: usize,
    /// Time in the stage itself, not in its prefetches.
    pub elapsed: Duration,
}

/// The answer to a [`QueryRequest`].
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResponse {
    /// The hits, best first.
    pub hits: Vec<ScoredPoint>,
    /// Every stage that ran, in the order it ran: deepest prefetches first, the root last. Empty for
    /// a request without a query.
    pub stages: Vec<StageStats>,
}

/// Qdrant's distance matrix (`search/matrix/pairs` and `/offsets`): a random sample of the points
/// that have the vector and pass the filter, and each sampled point's nearest among the others.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixRequest {
    /// The vector compared (`""`: the unnamed one).
    pub using: String,
    /// Only matching points are sampled.
    pub filter: Option<Filter>,
    /// Points to sample.
    pub sample: usize,
    /// Neighbours per sampled point.
    pub limit: usize,
}

/// The answer to a [`MatrixRequest`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatrixResponse {
    /// The sampled points, in id order (empty when fewer than two were found).
    pub ids: Vec<PointId>,
    /// For each sampled point, its nearest other sampled points with their scores, best first.
    pub neighbours: Vec<Vec<(PointId, f32)>>,
}

/// A query whose hits are grouped by a payload field (Qdrant's `query/groups` and `search/groups`):
/// the best `groups` groups, each with its best `group_size` hits.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupsRequest<I = QueryInput> {
    /// The query; its `limit` is how many hits each round of grouping fetches (Qdrant: `groups ×
    /// group_size`), its `offset` must be 0, its `with_payload` / `with_vectors` shape the hits.
    pub query: QueryRequest<I>,
    /// The payload key whose value names a hit's group; only keyword and integer values count, and a
    /// hit with an array of them joins each of their groups.
    pub group_by: String,
    /// Hits per group, at most.
    pub group_size: usize,
    /// Groups to return, at most.
    pub groups: usize,
}

/// The value that names a group: a keyword or an integer of the `group_by` field.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum GroupKey {
    /// An integer value.
    Integer(i64),
    /// A keyword value.
    Keyword(String),
}

/// One group of hits, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct PointGroup {
    /// The `group_by` value the hits share.
    pub key: GroupKey,
    /// The group's hits, best first.
    pub hits: Vec<ScoredPoint>,
}

/// The answer to a [`GroupsRequest`]: groups ordered by their best hit.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupsResponse {
    /// The groups, best first.
    pub groups: Vec<PointGroup>,
    /// Every stage of every round that ran, in order.
    pub stages: Vec<StageStats>,
}
