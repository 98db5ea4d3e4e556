//! Collections: the durable, searchable set of points. A collection is a directory holding its config,
//! a write-ahead log, one appendable segment (in memory, rebuilt from the WAL on open) and sealed,
//! immutable, memory-mapped segments each with its own index.
//!
//! ```text
//! <data_dir>/collections/<name>/
//!     config.json         CollectionConfig and the payload schema, written at creation and
//!                         rewritten (atomically) when the config is updated or a payload index is
//!                         created or deleted
//!     manifest.bin        sealed segments, their files and checksums, WAL position folded into them
//!     wal/                write-ahead log chunks
//!     segments/seg-<id>/  one directory per sealed segment
//! <data_dir>/aliases.json  every collection alias (see `aliases.rs`)
//! ```
//!
//! This file is the public surface the server and CLI use; the machinery lives in sibling modules.

mod aliases;
mod anon_rows;
mod built;
mod examples;
mod facet;
mod field_index;
mod formula;
mod funnel;
mod fusion;
mod groups;
mod matrix;
mod ops;
mod optimize;
mod payload;
mod planner;
mod progress;
mod read;
mod search;
mod segment;
mod snapshot;
mod sparse_search;
mod state;
mod update;
mod validate;
mod value_graphs;
mod work;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use quiver_storage::{fs as qfs, Manifest, Wal};
use serde::{Deserialize, Serialize};

pub use aliases::{AliasAction, AliasDescription, ALIASES_FILE};
pub use funnel::apply_default_funnel;
pub use progress::{
    Optimization, OptimizationKind, OptimizationStatus, OptimizationsReport, PendingOptimization,
    SegmentRef,
};
pub use snapshot::{validate_snapshot_name, SnapshotDescription, SNAPSHOTS_DIR};
pub use validate::{collection_name as validate_collection_name, MAX_NAME_LEN};

use crate::config::CollectionConfig;
use crate::filter::Filter;
use crate::payload_schema::{
    self, PayloadFieldSchema, PayloadIndexInfo, PayloadSchema, PayloadSchemaType,
};
use crate::point::{
    CollectionInfo, PayloadOp, PointInsert, PointVectors, PointsSelector, Record, ScoredPoint,
    ScrollRequest, ScrollResult, SearchRequest, UpdateOperation, UpsertConditions, WithPayload,
    WithVectors,
};
use crate::query::{
    FacetHit, FacetRequest, GroupsRequest, GroupsResponse, MatrixRequest, MatrixResponse, OrderBy,
    QueryRequest, QueryResponse,
};
use crate::{Error, PointId, Result};
use ops::Operation;
use segment::{MemSegment, View};
use state::{SegmentSet, Shared, Signal};

/// File holding a collection's config.
pub const CONFIG_FILE: &str = "config.json";
/// Directory of a collection's write-ahead log.
pub const WAL_DIR: &str = "wal";
/// Directory (under the data directory) holding one directory per collection.
pub const COLLECTIONS_DIR: &str = "collections";

/// Process-wide engine options (from the server's settings; libraries never read env vars).
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Build HNSW graphs with a fixed seed and one thread, so tests are reproducible.
    pub deterministic: bool,
    /// Threads for index builds (0 = all cores).
    pub build_threads: usize,
    /// Called on a collection's optimizer thread after each optimization it ran (seal, vacuum,
    /// merge, rebuild). The server uses it to hand the memory the job freed (the appendable rows a
    /// seal copied, build buffers) back to the kernel: an allocator otherwise keeps it until later
    /// allocations, so an idle server would hold a seal's peak.
    pub after_optimize: Option<fn()>,
}

/// Every collection under one data directory.
pub struct Collections {
    root: PathBuf,
    options: EngineOptions,
    open: RwLock<BTreeMap<String, Arc<Collection>>>,
    failed: RwLock<BTreeMap<String, String>>,
    /// Alias to collection name, as last stored in `aliases_path`. Replaced whole on every change, so
    /// a lookup sees the mapping before a batch of alias actions or after it, never half of it.
    aliases: RwLock<BTreeMap<String, String>>,
    aliases_path: PathBuf,
    /// Serialises create, delete and alias changes, so a name is never half-created while being
    /// deleted and an alias never names a collection that is going away.
    admin: Mutex<()>,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A name no other staging or trash directory of this process has (a leading dot is never a collection).
fn scratch_name(kind: &str, name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    format!(".{kind}-{name}-{}-{nanos}-{n}", std::process::id())
}

impl Collections {
    /// Opens (or creates) the data directory and every collection in it. A collection that fails to open
    /// is logged and listed by [`Collections::failed`]; the others still open.
    pub fn open(data_dir: &Path, options: EngineOptions) -> Result<Self> {
        let root = data_dir.join(COLLECTIONS_DIR);
        qfs::create_dir_durable(&root)?;
        let mut open = BTreeMap::new();
        let mut failed = BTreeMap::new();
        let entries = std::fs::read_dir(&root).map_err(|e| quiver_storage::Error::io(&root, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| quiver_storage::Error::io(&root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') {
                // A create or delete that crashed midway: never a valid collection.
                tracing::info!(dir = %path.display(), "removing leftover staging directory");
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            if path.is_dir() {
                names.push(name);
            }
        }
        names.sort();
        snapshot::remove_leftovers(&data_dir.join(SNAPSHOTS_DIR));
        for name in names {
            match Collection::open(&root.join(&name), &name, options.clone()) {
                Ok(c) => {
                    open.insert(name, Arc::new(c));
                }
                Err(e) => {
                    tracing::error!(collection = %name, "collection failed to open and is skipped: {e}");
                    failed.insert(name, e.to_string());
                }
            }
        }
        let aliases_path = aliases::file_path(data_dir);
        let mut alias_map = aliases::load(&aliases_path)?;
        // A crash between storing the aliases and removing a collection's directory cannot leave an
        // alias behind (the aliases go first), but a directory removed by hand can.
        let before = alias_map.len();
        alias_map.retain(|alias, target| {
            let target_exists = open.contains_key(target) || failed.contains_key(target);
            let shadowed = open.contains_key(alias) || failed.contains_key(alias);
            if !target_exists || shadowed {
                tracing::warn!(%alias, collection = %target, "dropping an alias whose collection is gone or whose name is a collection's");
            }
            target_exists && !shadowed
        });
        if alias_map.len() != before {
            aliases::store(&aliases_path, &alias_map)?;
        }
        Ok(Collections {
            root,
            options,
            open: RwLock::new(open),
            failed: RwLock::new(failed),
            aliases: RwLock::new(alias_map),
            aliases_path,
            admin: Mutex::new(()),
        })
    }

    /// Creates a collection; its config is written durably before this returns.
    pub fn create(&self, name: &str, config: CollectionConfig) -> Result<Arc<Collection>> {
        validate::collection_name(name)?;
        config.validate()?;
        let _admin = self.admin.lock();
        if self.open.read().contains_key(name) || self.failed.read().contains_key(name) {
            return Err(Error::CollectionExists(name.to_string()));
        }
        self.check_not_alias(name)?;
        let dir = self.root.join(name);
        if dir.exists() {
            return Err(Error::CollectionExists(name.to_string()));
        }
        // Build the whole directory under a staging name, then rename: a crash never leaves a
        // collection without its config or manifest.
        let staging = self.root.join(scratch_name("creating", name));
        qfs::create_dir_durable(&staging)?;
        write_config(&staging, &config, &PayloadSchema::new())?;
        Manifest {
            generation: 1,
            ..Manifest::default()
        }
        .store(&staging)?;
        std::fs::rename(&staging, &dir).map_err(|e| quiver_storage::Error::io(&dir, e))?;
        qfs::sync_dir(&self.root)?;
        let collection = Arc::new(Collection::open(&dir, name, self.options.clone())?);
        self.open
            .write()
            .insert(name.to_string(), collection.clone());
        Ok(collection)
    }

    /// The open collection of that name, or the one an alias of that name names: the one place where
    /// aliases resolve, so every route that takes a collection name accepts an alias.
    pub fn get(&self, name: &str) -> Result<Arc<Collection>> {
        let found = self.open.read().get(name).cloned();
        if let Some(c) = found {
            return Ok(c);
        }
        let target = self.aliases.read().get(name).cloned();
        let resolved = target.as_deref().unwrap_or(name);
        let found = self.open.read().get(resolved).cloned();
        if let Some(c) = found {
            return Ok(c);
        }
        match self.failed.read().get(resolved) {
            Some(reason) => Err(Error::CollectionUnavailable {
                name: name.to_string(),
                reason: reason.clone(),
            }),
            None => Err(Error::CollectionNotFound(name.to_string())),
        }
    }

    /// Names of the open collections, sorted.
    pub fn list(&self) -> Vec<String> {
        self.open.read().keys().cloned().collect()
    }

    /// Collections that exist on disk but failed to open, with the reason.
    pub fn failed(&self) -> Vec<(String, String)> {
        self.failed
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Deletes a collection, its aliases and its files. Returns false if it did not exist. An alias
    /// is not resolved here (as in Qdrant): deleting by an alias's name deletes nothing.
    pub fn delete(&self, name: &str) -> Result<bool> {
        let _admin = self.admin.lock();
        if !self.open.read().contains_key(name) && !self.failed.read().contains_key(name) {
            return Ok(false);
        }
        // The aliases go first: a crash after this leaves the collection without its aliases, never
        // an alias naming a collection that no longer exists.
        let mut next = self.aliases.read().clone();
        let before = next.len();
        next.retain(|_, target| target != name);
        if next.len() != before {
            aliases::store(&self.aliases_path, &next)?;
            *self.aliases.write() = next;
        }
        let removed = self.open.write().remove(name);
        let was_failed = self.failed.write().remove(name).is_some();
        if removed.is_none() && !was_failed {
            return Ok(false);
        }
        if let Some(c) = removed {
            c.shutdown();
        }
        let dir = self.root.join(name);
        // Rename first: a crash midway leaves a dot-directory that the next open removes, never a
        // half-deleted collection that looks valid.
        let trash = self.root.join(scratch_name("trash", name));
        std::fs::rename(&dir, &trash).map_err(|e| quiver_storage::Error::io(&dir, e))?;
        qfs::sync_dir(&self.root)?;
        std::fs::remove_dir_all(&trash).map_err(|e| quiver_storage::Error::io(&trash, e))?;
        Ok(true)
    }

    /// Makes every collection's WAL durable and stops background work (graceful shutdown).
    pub fn close(&self) -> Result<()> {
        let mut first_err = None;
        for c in self.open.read().values() {
            if let Err(e) = c.close() {
                tracing::error!(collection = %c.name(), "closing: {e}");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The directory holding every collection.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Applies alias actions in order, atomically: if any fails (an unknown collection or alias, a
    /// name taken by a collection, an invalid name), none is applied and its error is returned.
    pub fn update_aliases(&self, actions: &[AliasAction]) -> Result<()> {
        let _admin = self.admin.lock();
        let next = {
            let open = self.open.read();
            let failed = self.failed.read();
            let current = self.aliases.read().clone();
            aliases::apply(&current, actions, |name| {
                open.contains_key(name) || failed.contains_key(name)
            })?
        };
        if *self.aliases.read() != next {
            aliases::store(&self.aliases_path, &next)?;
            *self.aliases.write() = next;
        }
        Ok(())
    }

    /// Every alias, sorted by alias name.
    pub fn list_aliases(&self) -> Vec<AliasDescription> {
        self.aliases
            .read()
            .iter()
            .map(|(alias, collection)| AliasDescription {
                alias_name: alias.clone(),
                collection_name: collection.clone(),
            })
            .collect()
    }

    /// The aliases of one collection (named directly or by one of its aliases), sorted; an unknown
    /// name is [`Error::CollectionNotFound`].
    pub fn collection_aliases(&self, name: &str) -> Result<Vec<AliasDescription>> {
        let collection = self.resolve(name)?;
        Ok(self
            .list_aliases()
            .into_iter()
            .filter(|a| a.collection_name == collection)
            .collect())
    }

    /// The name of the collection that `name` means: itself when it is a collection (open or failed),
    /// else the collection its alias names.
    pub fn resolve(&self, name: &str) -> Result<String> {
        if self.open.read().contains_key(name) || self.failed.read().contains_key(name) {
            return Ok(name.to_string());
        }
        let target = self.aliases.read().get(name).cloned();
        target.ok_or_else(|| Error::CollectionNotFound(name.to_string()))
    }

    /// `name`, or the collection it names when it is an alias (whether or not either exists: snapshots
    /// outlive their collection).
    fn dealias(&self, name: &str) -> String {
        let target = self.aliases.read().get(name).cloned();
        target.unwrap_or_else(|| name.to_string())
    }

    /// Refuses a collection name that an alias holds.
    fn check_not_alias(&self, name: &str) -> Result<()> {
        if self.aliases.read().contains_key(name) {
            return Err(Error::AliasExists(name.to_string()));
        }
        Ok(())
    }
}

/// A vector added to an existing collection.
#[derive(Clone, Debug)]
pub enum NewVector {
    /// A dense vector or multivector.
    Dense(crate::config::VectorParams),
    /// A sparse vector.
    Sparse(crate::config::SparseVectorParams),
}

/// One collection. All methods take `&self` and are safe to call from many threads.
pub struct Collection {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// What `config.json` holds: the current config with the payload schema beside its fields.
#[derive(Deserialize)]
struct StoredConfig {
    #[serde(flatten)]
    config: CollectionConfig,
    #[serde(default)]
    payload_schema: PayloadSchema,
}

#[derive(Serialize)]
struct StoredConfigRef<'a> {
    #[serde(flatten)]
    config: &'a CollectionConfig,
    #[serde(skip_serializing_if = "PayloadSchema::is_empty")]
    payload_schema: &'a PayloadSchema,
}

/// The stored form of a config and schema, as `config.json` and snapshot manifests hold it.
fn stored_config(config: &CollectionConfig, schema: &PayloadSchema) -> serde_json::Value {
    serde_json::to_value(StoredConfigRef {
        config,
        payload_schema: schema,
    })
    .expect("config serialises")
}

/// Writes `config.json` atomically and durably.
fn write_config(dir: &Path, config: &CollectionConfig, schema: &PayloadSchema) -> Result<()> {
    let json =
        serde_json::to_vec_pretty(&stored_config(config, schema)).expect("config serialises");
    qfs::atomic_write(&dir.join(CONFIG_FILE), &json)?;
    Ok(())
}

fn read_config(dir: &Path) -> Result<(CollectionConfig, PayloadSchema)> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(|e| quiver_storage::Error::io(&path, e))?;
    let stored: StoredConfig =
        serde_json::from_slice(&bytes).map_err(|e| quiver_storage::Error::Corrupt {
            path: path.clone(),
            reason: format!("unreadable config: {e}"),
        })?;
    let invalid = |e: Error| quiver_storage::Error::Corrupt {
        path: path.clone(),
        reason: format!("invalid config: {e}"),
    };
    stored.config.validate().map_err(invalid)?;
    for (field, schema) in &stored.payload_schema {
        payload_schema::validate_field_name(field)
            .and_then(|()| schema.validate())
            .map_err(invalid)?;
    }
    Ok((stored.config, stored.payload_schema))
}

impl Collection {
    /// Opens a collection directory: config, manifest (verified), sealed segments, then WAL replay.
    fn open(dir: &Path, name: &str, options: EngineOptions) -> Result<Collection> {
        let (config, payload_schema) = read_config(dir)?;
        let manifest = Manifest::load(dir)?.ok_or_else(|| quiver_storage::Error::Corrupt {
            path: dir.join(quiver_storage::manifest::MANIFEST_FILE),
            reason: "missing".into(),
        })?;
        manifest.verify(dir)?;
        manifest.remove_unlisted(dir)?;
        let mut sealed = Vec::with_capacity(manifest.segments.len());
        for entry in &manifest.segments {
            sealed.push(Arc::new(optimize::open_sealed(dir, entry, &config)?));
        }
        let set = SegmentSet {
            sealed,
            frozen: Vec::new(),
            active: Arc::new(MemSegment::new(&config, &payload_schema)),
            schema: Arc::new(payload_schema),
        };
        let folded = manifest.wal_seq;
        let mut replayed = 0usize;
        let wal = Wal::open(
            &dir.join(WAL_DIR),
            config.wal_config.options(),
            folded + 1,
            |seq, bytes| {
                if seq <= folded {
                    return Ok(());
                }
                let op = Operation::decode(bytes)
                    .map_err(|e| quiver_storage::Error::Decode(format!("WAL record {seq}: {e}")))?;
                state::apply(&config, &set, op);
                replayed += 1;
                Ok(())
            },
        )?;
        if replayed > 0 {
            tracing::info!(collection = %name, records = replayed, "replayed the write-ahead log");
        }
        let shared = Arc::new(Shared {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            config: RwLock::new(Arc::new(config)),
            options,
            wal,
            writer: Mutex::new(()),
            segments: RwLock::new(Arc::new(set)),
            optimizer: Mutex::new(manifest),
            optimizing: AtomicBool::new(false),
            optimizations: Mutex::default(),
            stop: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            signal: Signal::default(),
            sealed_signal: Default::default(),
        });
        let worker =
            spawn_optimizer(shared.clone()).map_err(|e| quiver_storage::Error::io(dir, e))?;
        shared.maybe_wake();
        Ok(Collection {
            shared,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Stops the background thread (cancelling a build in progress) and refuses further writes.
    fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.stop.store(true, Ordering::Release);
        self.shared.signal.notify();
        if let Some(h) = self.worker.lock().take() {
            if h.join().is_err() {
                tracing::error!(collection = %self.shared.name, "optimizer thread panicked");
            }
        }
        // A schema change that passed the open check finishes before this returns, so the caller may
        // move the directory away without a late rewrite of its config.
        drop(self.shared.writer.lock());
    }

    /// Makes the WAL durable and stops background work. Later writes fail with [`Error::Cancelled`].
    pub fn close(&self) -> Result<()> {
        self.shutdown();
        self.shared.wal.sync()?;
        Ok(())
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current config (the `Arc` keeps the one taken, whatever changes after).
    pub fn config(&self) -> Arc<CollectionConfig> {
        self.shared.config()
    }

    /// Changes the config (PATCH `/collections/{name}`): `edit` changes a copy, which must keep the
    /// vectors' names, sizes, distances and multivector settings, the sparse vectors' names and the
    /// embedding bindings, and pass validation. Durable (in `config.json`) on return. Seals from
    /// then on follow the new config; segments sealed before with other HNSW parameters,
    /// quantization or `on_disk` are rebuilt in the background (unless optimizations are off).
    pub fn update_config(
        &self,
        edit: impl FnOnce(&mut CollectionConfig) -> Result<()>,
    ) -> Result<()> {
        self.shared.change_config(edit)
    }

    /// Adds a named vector (Qdrant's `PUT /collections/{name}/vectors/{vector}`): existing points
    /// have no vector of that name until they are written with one. The appendable segment is
    /// sealed and the sealed segments reopened before this returns; durable on return.
    /// The result is the log position the change follows (Qdrant's operation id).
    pub fn create_vector(&self, name: &str, vector: NewVector) -> Result<u64> {
        if name.is_empty() {
            return Err(Error::InvalidInput(
                "a vector name must not be empty".into(),
            ));
        }
        self.shared.change_vectors(|config, next_segment| {
            if config.has_vector(name) {
                return Err(Error::InvalidInput(format!(
                    "vector `{name}` already exists"
                )));
            }
            match vector {
                NewVector::Dense(params) => {
                    config.vectors.insert(name.to_string(), params);
                }
                NewVector::Sparse(params) => {
                    config.sparse_vectors.insert(name.to_string(), params);
                }
            }
            config
                .added_at_segment
                .insert(name.to_string(), next_segment);
            Ok(())
        })?;
        Ok(self.shared.wal.last_seq())
    }

    /// Deletes a named vector (Qdrant's `DELETE /collections/{name}/vectors/{vector}`): its data is
    /// no longer returned or searchable at once; its files go when their segments are rewritten. A
    /// vector bound to an embedding model, or the collection's last vector, cannot be deleted.
    pub fn delete_vector(&self, name: &str) -> Result<u64> {
        self.shared.change_vectors(|config, _| {
            if !config.has_vector(name) {
                return Err(Error::VectorNameNotFound(name.to_string()));
            }
            if config.embedding.contains_key(name) {
                return Err(Error::InvalidInput(format!(
                    "vector `{name}` is bound to an embedding model and cannot be deleted"
                )));
            }
            config.vectors.remove(name);
            config.sparse_vectors.remove(name);
            config.added_at_segment.remove(name);
            Ok(())
        })?;
        Ok(self.shared.wal.last_seq())
    }

    /// The payload indexes, by field.
    pub fn payload_schema(&self) -> Arc<PayloadSchema> {
        self.shared.snapshot().schema.clone()
    }

    /// Creates the payload index of `field`, replacing one it has. Durable (in the stored config) on
    /// return; the result is the log position the change follows (Qdrant's operation id).
    pub fn create_payload_index(&self, field: &str, schema: PayloadFieldSchema) -> Result<u64> {
        payload_schema::validate_field_name(field)?;
        schema.validate()?;
        let kind = schema.data_type();
        let text = match schema.params() {
            Some(payload_schema::PayloadSchemaParams::Text(p)) => Some(p.clone()),
            _ => None,
        };
        // The optimizer lock from the schema change to the last file: otherwise another change of
        // the field (a DELETE, a PUT with other params) could land between this one's schema and
        // its files, which would then serve a schema that is no longer stored.
        let mut manifest = self.shared.optimizer.lock();
        let seq = self.shared.change_schema(|s| {
            s.insert(field.to_string(), schema);
        })?;
        // The schema is stored: segments sealed from now on get the index as they are written, and
        // the ones sealed before get it here, as files.
        self.shared
            .persist_field_index(&mut manifest, field, kind, text.as_ref())?;
        self.forget_field_indexes(field, Some(kind));
        Ok(seq)
    }

    /// Deletes the payload index of `field`; deleting one that does not exist changes nothing (as in
    /// Qdrant). Durable on return.
    pub fn delete_payload_index(&self, field: &str) -> Result<u64> {
        // As in `create_payload_index`: not between another change's schema and its files.
        let _manifest = self.shared.optimizer.lock();
        let seq = self.shared.change_schema(|s| {
            s.remove(field);
        })?;
        self.forget_field_indexes(field, None);
        Ok(seq)
    }

    /// Frees what the sealed segments hold for `field` under its previous schema (all but its index
    /// as `keep`).
    fn forget_field_indexes(&self, field: &str, keep: Option<PayloadSchemaType>) {
        for seg in &self.shared.snapshot().sealed {
            seg.forget_field_index(field, keep);
        }
    }

    /// Inserts or replaces points. Returns the operation id once the WAL record is durable.
    pub fn upsert(&self, points: Vec<PointInsert>) -> Result<u64> {
        self.upsert_if(points, &UpsertConditions::default())
    }

    /// Inserts or replaces the points that `conditions` allow, judged against the state under the
    /// writer lock; the others are skipped. Only the written points are logged, so replay repeats it.
    pub fn upsert_if(
        &self,
        points: Vec<PointInsert>,
        conditions: &UpsertConditions,
    ) -> Result<u64> {
        let mut points = points;
        validate::points(&self.shared.config(), &mut points)?;
        self.shared.wait_until_optimized();
        check_filter(conditions.update_filter.as_ref())?;
        self.shared.write(|set| {
            if *conditions != UpsertConditions::default() {
                points
                    .retain(|p| conditions.allows(&p.id, state::live_payload(set, &p.id).as_ref()));
            }
            Ok(Operation::Upsert(points))
        })
    }

    /// Deletes points by id or filter. Durable on return.
    pub fn delete(&self, selector: PointsSelector) -> Result<u64> {
        check_selector(&selector)?;
        self.shared.write(|set| {
            Ok(Operation::Delete(match selector {
                PointsSelector::Ids(ids) => ids,
                PointsSelector::Filter(f) => state::resolve_filter(set, &f),
            }))
        })
    }

    /// Changes payloads of the selected points. Durable on return.
    pub fn update_payload(&self, selector: PointsSelector, op: PayloadOp) -> Result<u64> {
        check_selector(&selector)?;
        if let PayloadOp::Set { key: Some(k), .. } = &op {
            if crate::filter::path::parsed(k).is_none() {
                return Err(Error::InvalidInput(format!(
                    "payload key {k:?} is not a path: use `a.b`, `a[0].b`, `a[].b` or `\"a.b\"`"
                )));
            }
        }
        self.shared.write(|set| {
            let ids = match selector {
                PointsSelector::Ids(ids) => ids,
                PointsSelector::Filter(f) => state::resolve_filter(set, &f),
            };
            Ok(Operation::Payload { ids, op })
        })
    }

    /// Replaces the named vectors given of existing points; their other vectors and payloads stay. A
    /// point that does not exist is [`Error::NoSuchPoint`] and nothing is written; a point that does
    /// not match `update_filter` is skipped. Durable on return.
    pub fn update_vectors(
        &self,
        points: Vec<PointVectors>,
        update_filter: Option<Filter>,
    ) -> Result<u64> {
        self.update_one(UpdateOperation::UpdateVectors {
            points,
            update_filter,
        })
    }

    /// Removes the named vectors from the selected points, which keep their other vectors and
    /// payloads. An id that does not exist is [`Error::NoSuchPoint`] (as in Qdrant) and nothing is
    /// written. Durable on return.
    pub fn delete_vectors(&self, selector: PointsSelector, names: Vec<String>) -> Result<u64> {
        self.update_one(UpdateOperation::DeleteVectors { selector, names })
    }

    fn update_one(&self, mut op: UpdateOperation) -> Result<u64> {
        update::check(&self.shared.config(), &mut op)?;
        // A changed point moves into the appendable segment, as an upsert adds one.
        self.shared.wait_until_optimized();
        self.shared
            .write(|set| update::Pending::new(set).resolve(op))
    }

    /// Applies the operations in order as one logged record: after a crash all of them are there or
    /// none. Every operation is checked, and resolved against the state the ones before it leave,
    /// before anything is written; the first that fails is [`Error::InOperation`] naming it, and
    /// nothing is applied. Returns the record's operation id once durable.
    pub fn update_batch(&self, mut ops: Vec<UpdateOperation>) -> Result<u64> {
        let in_op = |index: usize, kind: &'static str| {
            move |e: Error| Error::InOperation {
                index,
                kind,
                source: Box::new(e),
            }
        };
        for (i, op) in ops.iter_mut().enumerate() {
            update::check(&self.shared.config(), op).map_err(in_op(i, op.kind()))?;
        }
        self.shared.wait_until_optimized();
        self.shared.write(|set| {
            let mut pending = update::Pending::new(set);
            let mut logged = Vec::with_capacity(ops.len());
            for (i, op) in ops.into_iter().enumerate() {
                let kind = op.kind();
                logged.push(pending.resolve(op).map_err(in_op(i, kind))?);
            }
            Ok(Operation::Batch(logged))
        })
    }

    /// The points with these ids that exist, in the order asked.
    pub fn retrieve(
        &self,
        ids: &[PointId],
        with_payload: &WithPayload,
        with_vectors: &WithVectors,
    ) -> Result<Vec<Record>> {
        let set = self.shared.snapshot();
        read::retrieve(&self.shared.config(), &set, ids, with_payload, with_vectors)
    }

    /// A page of points in id order.
    pub fn scroll(&self, request: &ScrollRequest) -> Result<ScrollResult> {
        check_filter(request.filter.as_ref())?;
        let set = self.shared.snapshot();
        read::scroll(&self.shared.config(), &set, request)
    }

    /// A page of points in the order of a payload field's values (Qdrant's scroll with `order_by`):
    /// the field needs an `integer`, `float` or `datetime` index, `offset` must be unset (a next page
    /// starts from `start_from`), and there is no `next_page_offset`.
    pub fn scroll_ordered(
        &self,
        request: &ScrollRequest,
        order_by: &OrderBy,
    ) -> Result<ScrollResult> {
        check_filter(request.filter.as_ref())?;
        if request.offset.is_some() {
            return Err(Error::InvalidInput(
                "Cannot use an `offset` when using `order_by`. The alternative for paging is to use \
                 `order_by.start_from` and a filter to exclude the IDs that you've already seen for \
                 the `order_by.start_from` value"
                    .into(),
            ));
        }
        let set = self.shared.snapshot();
        let points = facet::ordered(
            &self.shared.config(),
            &set,
            request.filter.as_ref(),
            order_by,
            request.limit,
            None,
            &request.with_payload,
            &request.with_vectors,
        )?;
        Ok(ScrollResult {
            points,
            next_page_offset: None,
        })
    }

    /// Points per value of a payload field (Qdrant's `facet`), most frequent first; the field needs a
    /// `keyword`, `integer`, `bool` or `uuid` index. Counts are always exact.
    pub fn facet(&self, request: &FacetRequest) -> Result<Vec<FacetHit>> {
        check_filter(request.filter.as_ref())?;
        let set = self.shared.snapshot();
        facet::facet(&set, request)
    }

    /// How many live points match (all when `filter` is `None`).
    pub fn count(&self, filter: Option<&Filter>) -> Result<usize> {
        check_filter(filter)?;
        let set = self.shared.snapshot();
        Ok(read::count(&set, filter))
    }

    /// Nearest neighbours, best first, merged over every segment: one stage, as given.
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        check_filter(request.filter.as_ref())?;
        let set = self.shared.snapshot();
        search::search(&self.shared.config(), &set, request)
    }

    /// Plans and runs a query with its prefetches over one snapshot of the segments; the answer says
    /// how each stage ran.
    pub fn query(&self, request: &QueryRequest) -> Result<QueryResponse> {
        check_filter(request.filter.as_ref())?;
        check_prefetch_filters(&request.prefetch)?;
        let set = self.shared.snapshot();
        planner::query(&self.shared.config(), &set, request)
    }

    /// Estimated work of [`Collection::query`] on `request`, in vector components scored (a row of
    /// dimension `d` counts `d`), from the segments as they are now; `None` when the engine cannot
    /// bound it without running it (filters, prefetches, queries other than `nearest`, sparse and
    /// multivector fields). Lets a caller run short queries in place and hand long ones to a pool.
    pub fn query_work(&self, request: &QueryRequest) -> Option<u64> {
        let set = self.shared.snapshot();
        work::query_work(&self.shared.config(), &set, request)
    }

    /// Runs a query in rounds over one snapshot and groups its hits by a payload field (Qdrant's
    /// `query/groups`): the best groups by their best hit, each with its best hits.
    pub fn query_groups(&self, request: &GroupsRequest) -> Result<GroupsResponse> {
        check_filter(request.query.filter.as_ref())?;
        check_prefetch_filters(&request.query.prefetch)?;
        let set = self.shared.snapshot();
        groups::query_groups(&self.shared.config(), &set, request)
    }

    /// Qdrant's distance matrix over one snapshot: a random sample of the points that have the
    /// vector and pass the filter, each with its nearest among the others.
    pub fn search_matrix(&self, request: &MatrixRequest) -> Result<MatrixResponse> {
        check_filter(request.filter.as_ref())?;
        let set = self.shared.snapshot();
        matrix::matrix(&self.shared.config(), &set, request)
    }

    /// Seals the appendable segment now (builds its index) and trims the WAL; then vacuums and merges
    /// what is due, as the background optimizer would.
    pub fn flush(&self) -> Result<()> {
        self.shared.optimize(true).map(|_| ())
    }

    /// Rewrites sealed segments whose deleted fraction passes the threshold (then merges what is due).
    /// Returns how many were vacuumed.
    pub fn vacuum(&self) -> Result<usize> {
        // Sealing first persists pending tombstones, which is what a vacuum may drop.
        self.shared.optimize(true)
    }

    /// Counters for the API and metrics.
    pub fn info(&self) -> CollectionInfo {
        let set = self.shared.snapshot();
        // Before `views` below: a view holds its segment's read locks, which are not re-entrant.
        let payload_schema = set
            .schema
            .iter()
            .map(|(field, schema)| {
                let points = field_index::count_points(&set, field, schema.data_type());
                (field.clone(), PayloadIndexInfo::new(schema, points))
            })
            .collect();
        let views = set.views();
        let points_count = views.iter().map(|v| v.live_count()).sum();
        let deleted_count = views
            .iter()
            .filter(|v| matches!(v, View::Sealed { .. }))
            .map(|v| v.deleted().count_ones())
            .sum();
        let indexed_vectors_count = views
            .iter()
            .filter(|v| match v {
                View::Sealed { seg, .. } => seg.has_graph(),
                View::Mem { .. } => false,
            })
            .map(|v| v.live_count())
            .sum();
        CollectionInfo {
            points_count,
            segments_count: set.sealed.len() + set.frozen.len() + 1,
            deleted_count,
            indexed_vectors_count,
            wal_bytes: self.shared.wal.size_bytes(),
            disk_bytes: dir_size(&self.shared.dir),
            optimizing: self.shared.optimizing.load(Ordering::Acquire),
            payload_schema,
        }
    }

    /// The seal, vacuum or merge running now with its progress, the last few finished, and what is queued.
    pub fn optimizations(&self) -> OptimizationsReport {
        let set = self.shared.snapshot();
        self.shared.optimizations_report(&set)
    }

    /// The collection's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The manifest as last stored (for snapshots and diagnostics).
    pub fn manifest(&self) -> Manifest {
        self.shared.optimizer.lock().clone()
    }
}

impl Drop for Collection {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn check_filter(filter: Option<&Filter>) -> Result<()> {
    filter.map_or(Ok(()), Filter::validate)
}

fn check_selector(selector: &PointsSelector) -> Result<()> {
    match selector {
        PointsSelector::Filter(f) => f.validate(),
        PointsSelector::Ids(_) => Ok(()),
    }
}

fn check_prefetch_filters(prefetches: &[crate::query::Prefetch]) -> Result<()> {
    for p in prefetches {
        check_filter(p.filter.as_ref())?;
        check_prefetch_filters(&p.prefetch)?;
    }
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The background optimizer: seals full segments, vacuums and merges, so upserts never wait for an index build.
fn spawn_optimizer(shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("quiver-optimize-{}", shared.name))
        .spawn(move || {
            let mut backoff = Duration::from_secs(1);
            loop {
                shared.signal.wait(Duration::from_secs(10));
                if shared.stop.load(Ordering::Acquire) {
                    return;
                }
                // `max_optimization_threads: 0`: nothing runs until an update turns it back on
                // (which wakes this thread).
                if !shared.config().optimizer_config.optimizations_enabled() {
                    continue;
                }
                let set = shared.snapshot();
                let full = shared.seal_due(&set);
                if !(full
                    || !set.frozen.is_empty()
                    || shared.vacuum_wanted(&set)
                    || shared.merge_wanted(&set)
                    || shared.rebuild_wanted(&set))
                {
                    continue;
                }
                drop(set);
                let result = shared.optimize(false);
                if let Some(hook) = shared.options.after_optimize {
                    hook();
                }
                match result {
                    Ok(_) => backoff = Duration::from_secs(1),
                    Err(Error::Cancelled) => return,
                    Err(e) => {
                        tracing::error!(collection = %shared.name, "background optimize failed: {e}");
                        // Keep the data in memory and the WAL; retry later rather than spin.
                        shared.signal.wait(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                        shared.signal.notify();
                    }
                }
            }
        })
}
