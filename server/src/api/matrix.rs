//! Bodies of Qdrant's distance matrix routes, `points/search/matrix/pairs` and
//! `points/search/matrix/offsets`: one request shape, two answer shapes of the same sample.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use quiver_engine::filter::Filter;
use quiver_engine::query::{MatrixRequest, MatrixResponse};
use quiver_engine::PointId;

use super::common::{ExtendedPointId, FilterDoc};
use super::error::Error;

/// Qdrant's default sample size.
pub const DEFAULT_SAMPLE: usize = 10;
/// Qdrant's default neighbours per sampled point.
pub const DEFAULT_LIMIT: usize = 3;

/// Body of `POST /collections/{name}/points/search/matrix/pairs` and `…/offsets`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct SearchMatrixRequestDto {
    /// Only matching points are sampled.
    #[schema(value_type = Option<FilterDoc>)]
    pub filter: Option<Filter>,
    /// Points to sample at random (at least 2; default 10).
    pub sample: Option<usize>,
    /// Nearest neighbours per sampled point, among the other sampled points (at least 1; default 3).
    pub limit: Option<usize>,
    /// The vector to compare (default: the unnamed one).
    pub using: Option<String>,
    /// Accepted for Qdrant clients; Quiver has no shards.
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)]
    pub shard_key: Option<Value>,
}

impl SearchMatrixRequestDto {
    /// The engine's request, checked as Qdrant validates it (422).
    pub fn into_request(self) -> Result<MatrixRequest, Error> {
        let sample = self.sample.unwrap_or(DEFAULT_SAMPLE);
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if sample < 2 {
            return Err(Error::Validation("sample must be at least 2".into()));
        }
        if limit < 1 {
            return Err(Error::Validation("limit must be at least 1".into()));
        }
        Ok(MatrixRequest {
            using: self.using.unwrap_or_default(),
            filter: self.filter,
            sample,
            limit,
        })
    }
}

/// One neighbour pair of the sample.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchMatrixPair {
    /// The sampled point.
    #[schema(value_type = ExtendedPointId)]
    pub a: PointId,
    /// One of its nearest other sampled points.
    #[schema(value_type = ExtendedPointId)]
    pub b: PointId,
    /// Their score (similarity, or distance under Euclid).
    pub score: f32,
}

/// `{"pairs": […]}`: each sampled point (in id order) with its neighbours, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchMatrixPairsResponse {
    /// The pairs.
    pub pairs: Vec<SearchMatrixPair>,
}

/// The same answer as a sparse matrix over `ids`: entry `i` is row `offsets_row[i]`, column
/// `offsets_col[i]`, value `scores[i]`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchMatrixOffsetsResponse {
    /// Row of each entry: the sampled point's index in `ids`.
    pub offsets_row: Vec<u64>,
    /// Column of each entry: the neighbour's index in `ids`.
    pub offsets_col: Vec<u64>,
    /// Score of each entry.
    pub scores: Vec<f32>,
    /// The sampled points, in id order.
    #[schema(value_type = Vec<ExtendedPointId>)]
    pub ids: Vec<PointId>,
}

impl From<MatrixResponse> for SearchMatrixPairsResponse {
    fn from(answer: MatrixResponse) -> Self {
        let pairs = answer
            .ids
            .iter()
            .zip(answer.neighbours)
            .flat_map(|(a, row)| {
                row.into_iter()
                    .map(move |(b, score)| SearchMatrixPair { a: *a, b, score })
            })
            .collect();
        SearchMatrixPairsResponse { pairs }
    }
}

impl From<MatrixResponse> for SearchMatrixOffsetsResponse {
    fn from(answer: MatrixResponse) -> Self {
        let index: HashMap<PointId, u64> = answer
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u64))
            .collect();
        let mut out = SearchMatrixOffsetsResponse {
            offsets_row: Vec::new(),
            offsets_col: Vec::new(),
            scores: Vec::new(),
            ids: Vec::new(),
        };
        for (row, neighbours) in answer.neighbours.into_iter().enumerate() {
            for (id, score) in neighbours {
                out.offsets_row.push(row as u64);
                out.offsets_col.push(index[&id]);
                out.scores.push(score);
            }
        }
        out.ids = answer.ids;
        out
    }
}
