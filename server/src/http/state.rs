//! What every handler shares: the collections (once opened), limits, keys and metrics.

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use quiver_engine::{Collection, Collections};

use super::auth::Auth;
use super::error::ApiError;
use super::limits::Limits;
use super::metrics::Metrics;
use crate::inference::Models;

/// Shared state of the HTTP server.
pub struct AppState {
    /// Set once every collection has been opened; until then data routes answer 503.
    collections: OnceLock<Arc<Collections>>,
    /// Request bounds.
    pub limits: Limits,
    /// API keys.
    pub auth: Auth,
    /// Request counters and latency histograms.
    pub metrics: Metrics,
    /// When the server started (for uptime).
    pub started: Instant,
    /// The same moment on the wall clock (for telemetry).
    pub started_at: SystemTime,
    /// This process's telemetry id, drawn at startup.
    pub instance_id: uuid::Uuid,
    /// Embedding models by name (loaded in the background).
    pub models: Arc<Models>,
}

impl AppState {
    /// State whose collections are not open yet.
    pub fn new(limits: Limits, auth: Auth, models: Arc<Models>) -> Self {
        AppState {
            collections: OnceLock::new(),
            limits,
            auth,
            metrics: Metrics::default(),
            started: Instant::now(),
            started_at: SystemTime::now(),
            instance_id: uuid::Uuid::new_v4(),
            models,
        }
    }

    /// The model a request names (or the only one), once it is loaded; its name comes back too.
    pub fn model(
        &self,
        name: Option<&str>,
    ) -> Result<(String, Arc<quiver_encoder::EncoderService>), ApiError> {
        Ok(self.models.ready(name)?)
    }

    /// Publishes the opened collections; from now on the server is ready.
    pub fn set_ready(&self, collections: Arc<Collections>) {
        if self.collections.set(collections).is_err() {
            tracing::warn!("collections were opened twice; keeping the first");
        }
    }

    /// The collections, or 503 while they are still opening.
    pub fn collections(&self) -> Result<Arc<Collections>, ApiError> {
        self.collections.get().cloned().ok_or(ApiError::NotReady)
    }

    /// Whether the collections are open.
    pub fn is_ready(&self) -> bool {
        self.collections.get().is_some()
    }

    /// The open collection of that name.
    pub fn collection(&self, name: &str) -> Result<Arc<Collection>, ApiError> {
        Ok(self.collections()?.get(name)?)
    }
}
