//! Collections: the durable, searchable set of points. A collection is a directory holding its config,
//! a write-ahead log, one appendable segment (in memory, rebuilt from the WAL on open) and sealed,
//! immutable, memory-mapped segments each with its own index.
//!
//! This file is the public surface the server and CLI use; the machinery lives in sibling modules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::CollectionConfig;
use crate::filter::Filter;
use crate::point::{
    CollectionInfo, PayloadOp, PointInsert, PointsSelector, Record, ScoredPoint, ScrollRequest,
    ScrollResult, SearchRequest, WithPayload, WithVectors,
};
use crate::{PointId, Result};

/// Process-wide engine options (from the server's settings; libraries never read env vars).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Build HNSW graphs with a fixed seed and one thread, so tests are reproducible.
    pub deterministic: bool,
    /// Threads for index builds (0 = all cores).
    pub build_threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            deterministic: false,
            build_threads: 0,
        }
    }
}

/// Every collection under one data directory.
pub struct Collections {
    _root: PathBuf,
}

impl Collections {
    /// Opens (or creates) the data directory and every collection in it. A collection that fails to open
    /// is logged and listed by [`Collections::failed`]; the others still open.
    pub fn open(data_dir: &Path, options: EngineOptions) -> Result<Self> {
        let _ = (data_dir, options);
        todo!()
    }

    /// Creates a collection; its config is written durably before this returns.
    pub fn create(&self, name: &str, config: CollectionConfig) -> Result<Arc<Collection>> {
        let _ = (name, config);
        todo!()
    }

    /// The open collection of that name.
    pub fn get(&self, name: &str) -> Result<Arc<Collection>> {
        let _ = name;
        todo!()
    }

    /// Names of the open collections, sorted.
    pub fn list(&self) -> Vec<String> {
        todo!()
    }

    /// Collections that exist on disk but failed to open, with the reason.
    pub fn failed(&self) -> Vec<(String, String)> {
        todo!()
    }

    /// Deletes a collection and its files. Returns false if it did not exist.
    pub fn delete(&self, name: &str) -> Result<bool> {
        let _ = name;
        todo!()
    }

    /// Makes every collection's WAL durable and stops background work (graceful shutdown).
    pub fn close(&self) -> Result<()> {
        todo!()
    }
}

/// One collection. All methods take `&self` and are safe to call from many threads.
pub struct Collection {
    _name: String,
}

impl Collection {
    /// The collection's name.
    pub fn name(&self) -> &str {
        todo!()
    }

    /// The config fixed at creation.
    pub fn config(&self) -> &CollectionConfig {
        todo!()
    }

    /// Inserts or replaces points. Returns the operation id once the WAL record is durable.
    pub fn upsert(&self, points: Vec<PointInsert>) -> Result<u64> {
        let _ = points;
        todo!()
    }

    /// Deletes points by id or filter. Durable on return.
    pub fn delete(&self, selector: PointsSelector) -> Result<u64> {
        let _ = selector;
        todo!()
    }

    /// Changes payloads of the selected points. Durable on return.
    pub fn update_payload(&self, selector: PointsSelector, op: PayloadOp) -> Result<u64> {
        let _ = (selector, op);
        todo!()
    }

    /// The points with these ids that exist, in the order asked.
    pub fn retrieve(
        &self,
        ids: &[PointId],
        with_payload: &WithPayload,
        with_vectors: &WithVectors,
    ) -> Result<Vec<Record>> {
        let _ = (ids, with_payload, with_vectors);
        todo!()
    }

    /// A page of points in id order.
    pub fn scroll(&self, request: &ScrollRequest) -> Result<ScrollResult> {
        let _ = request;
        todo!()
    }

    /// How many live points match (all when `filter` is `None`).
    pub fn count(&self, filter: Option<&Filter>) -> Result<usize> {
        let _ = filter;
        todo!()
    }

    /// Nearest neighbours, best first, merged over every segment.
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        let _ = request;
        todo!()
    }

    /// Seals the appendable segment now (builds its index) and trims the WAL.
    pub fn flush(&self) -> Result<()> {
        todo!()
    }

    /// Rewrites sealed segments whose deleted fraction passes the threshold. Returns how many.
    pub fn vacuum(&self) -> Result<usize> {
        todo!()
    }

    /// Counters for the API and metrics.
    pub fn info(&self) -> CollectionInfo {
        todo!()
    }
}
