//! `GET /collections/{name}/optimizations` in Qdrant's shape (Qdrant 1.17+): Quiver's seals and
//! vacuums, the one running now with its progress, the last finished ones, the queue estimated from
//! the current segments, and the segments that need nothing.
//!
//! Segment UUIDs: a sealed segment's id `n` reads `00000000-0000-0000-xxxx-xxxxxxxxxxxx` (`n` in hex);
//! in-memory segments have no id and read `ffffffff-ffff-ffff-0000-00000000000k`, `k` numbering them
//! within one answer. An optimization's UUID is that of the first segment it writes.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use quiver_engine::{
    Optimization, OptimizationKind, OptimizationStatus, PendingOptimization, SegmentRef,
};

use super::telemetry::rfc3339;
use super::{blocking, resource, respond};
use crate::http::error::{bad_request, ApiError};
use crate::http::state::AppState;

/// Finished optimizations listed when `completed_limit` is not given (Qdrant's default).
const DEFAULT_COMPLETED_LIMIT: usize = 16;

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/collections/{name}/optimizations").route(web::get().to(get_optimizations)),
    );
}

/// The query string, as Qdrant's.
#[derive(Debug, Deserialize, IntoParams)]
pub struct OptimizationsParams {
    /// Comma-separated extras: `queued`, `completed`, `idle_segments`.
    pub with: Option<String>,
    /// Most finished optimizations listed with `with=completed` (default 16; Quiver keeps the last
    /// 16).
    pub completed_limit: Option<usize>,
}

/// `result`: Qdrant's `OptimizationsResponse`.
#[derive(Serialize, ToSchema)]
pub struct OptimizationsResponse {
    /// Counts.
    pub summary: OptimizationsSummary,
    /// The optimization running now (Quiver runs one at a time per collection).
    pub running: Vec<OptimizationOut>,
    /// What would run next, estimated from the current segments (`with=queued`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<Vec<PendingOut>>,
    /// Finished optimizations, newest first (`with=completed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<Vec<OptimizationOut>>,
    /// Sealed segments that need nothing (`with=idle_segments`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_segments: Option<Vec<SegmentOut>>,
}

/// `summary`.
#[derive(Serialize, ToSchema)]
pub struct OptimizationsSummary {
    /// Optimizations queued.
    pub queued_optimizations: usize,
    /// Segments they read.
    pub queued_segments: usize,
    /// Live points in those segments.
    pub queued_points: usize,
    /// Sealed segments that need nothing.
    pub idle_segments: usize,
}

/// One seal, vacuum or merge.
#[derive(Serialize, ToSchema)]
pub struct OptimizationOut {
    /// The UUID of the first segment it writes.
    pub uuid: String,
    /// `seal` (in-memory rows to sealed, indexed segments) or `vacuum` (a sealed segment rewritten
    /// without its deleted points).
    pub optimizer: &'static str,
    /// `optimizing`, `done`, or `{"error": "…"}`.
    #[schema(value_type = Object)]
    pub status: serde_json::Value,
    /// The segments it reads.
    pub segments: Vec<SegmentOut>,
    /// Times and points written of points to write.
    pub progress: ProgressTree,
}

/// One queued optimization.
#[derive(Serialize, ToSchema)]
pub struct PendingOut {
    /// `seal` or `vacuum`.
    pub optimizer: &'static str,
    /// The segments it would read.
    pub segments: Vec<SegmentOut>,
}

/// A segment.
#[derive(Serialize, ToSchema)]
pub struct SegmentOut {
    /// See the module notes for how ids become UUIDs.
    pub uuid: String,
    /// Live points.
    pub points_count: usize,
}

/// Qdrant's `ProgressTree`, one level deep.
#[derive(Serialize, ToSchema)]
pub struct ProgressTree {
    /// `seal` or `vacuum`.
    pub name: &'static str,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Seconds it took, once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_sec: Option<f64>,
    /// Points written so far.
    pub done: u64,
    /// Points to write.
    pub total: u64,
}

/// Seals, vacuums and merges of a collection: running, queued, finished.
#[utoipa::path(get, path = "/collections/{name}/optimizations", tag = "collections",
    params(("name" = String, Path, description = "Collection name"), OptimizationsParams),
    responses(
        (status = 200, description = "Optimizations", body = inline(super::Envelope<OptimizationsResponse>)),
        (status = 400, description = "Unknown `with` value", body = super::ErrorEnvelope),
        (status = 404, description = "No such collection", body = super::ErrorEnvelope)))]
pub async fn get_optimizations(
    state: web::Data<AppState>,
    name: web::Path<String>,
    params: web::Query<OptimizationsParams>,
) -> HttpResponse {
    respond(async move {
        let (mut queued, mut completed, mut idle) = (false, false, false);
        for field in params.with.as_deref().unwrap_or("").split(',') {
            match field.trim() {
                "" => {}
                "queued" => queued = true,
                "completed" => completed = true,
                "idle_segments" => idle = true,
                other => {
                    return Err(bad_request(format!(
                    "unknown field in 'with': {other} (expected queued, completed, idle_segments)"
                )))
                }
            }
        }
        let limit = params.completed_limit.unwrap_or(DEFAULT_COMPLETED_LIMIT);
        let collection = state.collection(&name)?;
        let report = blocking(move || Ok::<_, ApiError>(collection.optimizations())).await?;
        let summary = OptimizationsSummary {
            queued_optimizations: report.queued.len(),
            queued_segments: report.queued.iter().map(|q| q.segments.len()).sum(),
            queued_points: report
                .queued
                .iter()
                .flat_map(|q| &q.segments)
                .map(|s| s.points)
                .sum(),
            idle_segments: report.idle.len(),
        };
        Ok(OptimizationsResponse {
            summary,
            running: report.running.iter().map(optimization).collect(),
            queued: queued.then(|| report.queued.iter().map(pending).collect()),
            completed: completed.then(|| {
                report
                    .completed
                    .iter()
                    .take(limit)
                    .map(optimization)
                    .collect()
            }),
            idle_segments: idle.then(|| segments(&report.idle)),
        })
    })
    .await
}

fn optimizer(kind: OptimizationKind) -> &'static str {
    match kind {
        OptimizationKind::Seal => "seal",
        OptimizationKind::Vacuum => "vacuum",
        OptimizationKind::Merge => "merge",
        OptimizationKind::ConfigMismatch => "config_mismatch",
    }
}

/// A sealed segment's UUID from its id.
pub fn segment_uuid(id: u64) -> String {
    uuid::Uuid::from_u64_pair(0, id).to_string()
}

fn segments(refs: &[SegmentRef]) -> Vec<SegmentOut> {
    let mut in_memory = 0;
    refs.iter()
        .map(|s| {
            let uuid = match s.id {
                Some(id) => segment_uuid(id),
                None => {
                    in_memory += 1;
                    uuid::Uuid::from_u64_pair(u64::MAX, in_memory).to_string()
                }
            };
            SegmentOut {
                uuid,
                points_count: s.points,
            }
        })
        .collect()
}

fn pending(p: &PendingOptimization) -> PendingOut {
    PendingOut {
        optimizer: optimizer(p.kind),
        segments: segments(&p.segments),
    }
}

fn optimization(o: &Optimization) -> OptimizationOut {
    let status = match &o.status {
        OptimizationStatus::Running => serde_json::json!("optimizing"),
        OptimizationStatus::Done => serde_json::json!("done"),
        OptimizationStatus::Failed(e) => serde_json::json!({ "error": e }),
    };
    let duration_sec = o
        .finished
        .and_then(|f| f.duration_since(o.started).ok())
        .map(|d| d.as_secs_f64());
    OptimizationOut {
        uuid: segment_uuid(o.id),
        optimizer: optimizer(o.kind),
        status,
        segments: segments(&o.segments),
        progress: ProgressTree {
            name: optimizer(o.kind),
            started_at: rfc3339(o.started),
            finished_at: o.finished.map(rfc3339),
            duration_sec,
            done: o.points_done as u64,
            total: o.points_total as u64,
        },
    }
}
