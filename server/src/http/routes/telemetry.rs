//! `GET /telemetry` in Qdrant's shape, for one node: the app, the collections (more of them as
//! `details_level` grows) and the REST requests answered so far, per route pattern and status, from
//! the same counters `/metrics` reads.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{blocking, resource, respond};
use crate::api::collections::{CollectionConfigOut, CollectionInfoOut, CollectionParamsOut};
use crate::http::metrics::vector_count;
use crate::http::state::AppState;

/// Registers `/telemetry`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/telemetry").route(web::get().to(telemetry)));
}

/// The query string, as Qdrant's.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct TelemetryParams {
    /// Replace collection names by hashes.
    pub anonymize: Option<bool>,
    /// 0 (default): collection count only; 1: per collection, the vector count and parameters
    /// (Qdrant's aggregated form, without names); 2 or more: per collection, its name, config and its
    /// one local shard with points, vectors and segments.
    pub details_level: Option<usize>,
}

/// `result` of `GET /telemetry`.
#[derive(Serialize, ToSchema)]
pub struct TelemetryData {
    /// This process: a random id drawn at startup.
    pub id: String,
    /// Name, version and start time.
    pub app: AppTelemetry,
    /// The collections.
    pub collections: CollectionsTelemetry,
    /// Requests answered since startup.
    pub requests: RequestsTelemetry,
}

/// `app`.
#[derive(Serialize, ToSchema)]
pub struct AppTelemetry {
    /// Always `quiver`.
    pub name: &'static str,
    /// Quiver's version.
    pub version: &'static str,
    /// When the server started (RFC 3339, UTC).
    pub startup: String,
}

/// `collections`.
#[derive(Serialize, ToSchema)]
pub struct CollectionsTelemetry {
    /// Open collections.
    pub number_of_collections: usize,
    /// Per collection, at `details_level` 1 and above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<CollectionTelemetry>>,
}

/// One collection: Qdrant's aggregated form at level 1, its full form above.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CollectionTelemetry {
    /// `details_level` 1.
    Aggregated(Box<AggregatedCollection>),
    /// `details_level` 2 and above.
    Full(Box<FullCollection>),
}

/// Qdrant's `CollectionsAggregatedTelemetry` (it carries no name).
#[derive(Serialize, ToSchema)]
pub struct AggregatedCollection {
    /// Live points times their named vectors (dense and sparse).
    pub vectors: usize,
    /// Always `ok`.
    pub optimizers_status: &'static str,
    /// The collection's parameters, as `GET /collections/{name}` reports them.
    pub params: CollectionParamsOut,
}

/// Qdrant's `CollectionTelemetry`.
#[derive(Serialize, ToSchema)]
pub struct FullCollection {
    /// The collection's name (a hash with `anonymize=true`).
    pub id: String,
    /// The configuration, as `GET /collections/{name}` reports it.
    pub config: CollectionConfigOut,
    /// Its one local shard.
    pub shards: Vec<ReplicaSetTelemetry>,
}

/// Qdrant's `ReplicaSetTelemetry`: always shard 0, local, no remotes.
#[derive(Serialize, ToSchema)]
pub struct ReplicaSetTelemetry {
    /// Always 0.
    pub id: u32,
    /// The shard's counters.
    pub local: LocalShardTelemetry,
    /// Always empty.
    #[schema(value_type = Vec<Object>)]
    pub remote: Vec<serde_json::Value>,
    /// Always empty.
    #[schema(value_type = Object)]
    pub replicate_states: BTreeMap<String, String>,
}

/// Qdrant's `LocalShardTelemetry`, with Quiver's segment counters.
#[derive(Serialize, ToSchema)]
pub struct LocalShardTelemetry {
    /// Always `local`.
    pub variant_name: &'static str,
    /// `green`, or `yellow` while a seal, vacuum or merge runs.
    pub status: &'static str,
    /// Points written by seals, vacuums and merges since the collection was opened.
    pub total_optimized_points: u64,
    /// Live points.
    pub num_points: usize,
    /// Live points times their named vectors.
    pub num_vectors: usize,
    /// Live points per named vector (every point counts for every vector it may hold).
    pub num_vectors_by_name: BTreeMap<String, usize>,
    /// Quiver: segments (sealed plus in memory).
    pub segments_count: usize,
    /// Quiver: points in segments that have an HNSW graph.
    pub indexed_vectors_count: usize,
    /// Quiver: tombstoned points still held in sealed segments.
    pub deleted_points_count: usize,
    /// Quiver: bytes of the collection's files.
    pub disk_bytes: u64,
}

/// `requests`.
#[derive(Serialize, ToSchema)]
pub struct RequestsTelemetry {
    /// REST requests.
    pub rest: WebApiTelemetry,
    /// Always empty (Quiver has no gRPC API).
    pub grpc: WebApiTelemetry,
}

/// `{"responses": {"METHOD /route/pattern": {"status": stats}}}`.
#[derive(Serialize, ToSchema)]
pub struct WebApiTelemetry {
    /// By `"METHOD pattern"` (unknown paths count under `unmatched`), then by status code.
    pub responses: BTreeMap<String, BTreeMap<String, OperationDurationStatistics>>,
}

/// Qdrant's `OperationDurationStatistics`, over every request since startup.
#[derive(Serialize, ToSchema)]
pub struct OperationDurationStatistics {
    /// Requests answered.
    pub count: u64,
    /// Those answered with a 4xx or 5xx status.
    pub fail_count: u64,
    /// Mean duration (over all of them, where Qdrant averages the last 128).
    pub avg_duration_micros: f64,
    /// Fastest.
    pub min_duration_micros: f64,
    /// Slowest.
    pub max_duration_micros: f64,
    /// Sum of the durations.
    pub total_duration_micros: u64,
}

/// Node telemetry in Qdrant's shape.
#[utoipa::path(get, path = "/telemetry", tag = "service", params(TelemetryParams),
    responses((status = 200, description = "Telemetry", body = inline(super::Envelope<TelemetryData>))))]
pub async fn telemetry(
    state: web::Data<AppState>,
    params: web::Query<TelemetryParams>,
) -> HttpResponse {
    respond(async move {
        let params = params.into_inner();
        let state = state.into_inner();
        blocking(move || Ok(collect(&state, &params))).await
    })
    .await
}

fn collect(state: &AppState, params: &TelemetryParams) -> TelemetryData {
    let level = params.details_level.unwrap_or(0);
    let anonymize = params.anonymize.unwrap_or(false);
    let collections = match state.collections() {
        Ok(collections) => {
            let names = collections.list();
            let details = (level >= 1).then(|| {
                names
                    .iter()
                    .filter_map(|name| collections.get(name).ok().map(|c| (name, c)))
                    .map(|(name, c)| collection(name, &c, level, anonymize))
                    .collect()
            });
            CollectionsTelemetry {
                number_of_collections: names.len(),
                collections: details,
            }
        }
        // Still opening: nothing to report yet.
        Err(_) => CollectionsTelemetry {
            number_of_collections: 0,
            collections: (level >= 1).then(Vec::new),
        },
    };
    let mut responses: BTreeMap<String, BTreeMap<String, OperationDurationStatistics>> =
        BTreeMap::new();
    for ((method, route, status), s) in state.metrics.responses() {
        let micros = |seconds: f64| seconds * 1e6;
        responses
            .entry(format!("{method} {route}"))
            .or_default()
            .insert(
                status.to_string(),
                OperationDurationStatistics {
                    count: s.count,
                    fail_count: if status >= 400 { s.count } else { 0 },
                    avg_duration_micros: micros(s.sum / s.count.max(1) as f64),
                    min_duration_micros: micros(s.min),
                    max_duration_micros: micros(s.max),
                    total_duration_micros: micros(s.sum).round() as u64,
                },
            );
    }
    TelemetryData {
        id: state.instance_id.to_string(),
        app: AppTelemetry {
            name: "quiver",
            version: env!("CARGO_PKG_VERSION"),
            startup: rfc3339(state.started_at),
        },
        collections,
        requests: RequestsTelemetry {
            rest: WebApiTelemetry { responses },
            grpc: WebApiTelemetry {
                responses: BTreeMap::new(),
            },
        },
    }
}

fn collection(
    name: &str,
    c: &quiver_engine::Collection,
    level: usize,
    anonymize: bool,
) -> CollectionTelemetry {
    let config = c.config();
    let info = c.info();
    let points = info.points_count;
    let vectors = vector_count(&config, points);
    let optimized = c.optimizations().optimized_points;
    let out = CollectionInfoOut::new(&config, info);
    if level < 2 {
        return CollectionTelemetry::Aggregated(Box::new(AggregatedCollection {
            vectors,
            optimizers_status: "ok",
            params: out.config.params,
        }));
    }
    let by_name = config
        .vectors
        .keys()
        .chain(config.sparse_vectors.keys())
        .map(|v| (v.clone(), points))
        .collect();
    CollectionTelemetry::Full(Box::new(FullCollection {
        id: if anonymize {
            hashed(name)
        } else {
            name.to_string()
        },
        shards: vec![ReplicaSetTelemetry {
            id: 0,
            local: LocalShardTelemetry {
                variant_name: "local",
                status: out.status,
                total_optimized_points: optimized,
                num_points: points,
                num_vectors: vectors,
                num_vectors_by_name: by_name,
                segments_count: out.segments_count,
                indexed_vectors_count: out.indexed_vectors_count,
                deleted_points_count: out.deleted_points_count,
                disk_bytes: out.disk_bytes,
            },
            remote: Vec::new(),
            replicate_states: BTreeMap::new(),
        }],
        config: out.config,
    }))
}

/// A name's stand-in under `anonymize=true`: stable within the process, not reversible by reading it.
fn hashed(name: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// `2026-01-02T03:04:05.678Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
    }
}
