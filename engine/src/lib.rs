//! Quiver engine: collections of points and how they are searched. It owns vectors, graphs, scores and
//! filters; files go through `quiver-storage`. It knows nothing of HTTP or models.
#![warn(missing_docs)]

pub mod collection;
pub mod config;
pub mod distance;
mod error;
pub mod filter;
pub mod index;
pub mod kernels;
pub mod payload_schema;
pub mod plaid;
pub mod point;
pub mod quantization;
pub mod query;
pub mod sparse;

pub use collection::{
    Collection, Collections, Optimization, OptimizationKind, OptimizationStatus,
    OptimizationsReport, PendingOptimization, SegmentRef,
};
pub use config::{
    CollectionConfig, Distance, EmbeddingBinding, HnswConfig, HnswConfigDiff, SparseModifier,
    SparseVectorParams, VectorParams,
};
pub use error::{Error, Result};
pub use filter::Filter;
pub use point::{
    NamedVectors, PointInsert, PointVectors, PointsSelector, QueryVector, Record, ScoredPoint,
    SearchRequest, SparseVector, UpdateMode, UpdateOperation, UpsertConditions, Vector,
    WithPayload, WithVectors,
};
pub use query::{QueryInput, QueryRequest, QueryResponse};
pub use quiver_storage::PointId;
