//! A collection's shared state and its write path: log, then apply to the segments.
//!
//! Every write takes the `writer` lock, appends its WAL record (not yet fsynced), applies it, releases the
//! lock and only then waits for the fsync, so concurrent writers share one fsync while the log order
//! stays the apply order. A reader may see a write a moment before it is acknowledged; a write is only
//! acknowledged once durable.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use quiver_storage::{Manifest, PointId, Wal};

use super::ops::Operation;
use super::payload;
use super::segment::{MemSegment, Sealed, View};
use super::EngineOptions;
use crate::config::{CollectionConfig, PREVENT_UNOPTIMIZED_MAX_WAIT};
use crate::filter::Filter;
use crate::payload_schema::PayloadSchema;
use crate::point::{NamedVectors, Payload, PayloadOp, PointInsert};
use crate::{Error, Result};

/// The segments readers see. Swapped whole; readers keep the `Arc` they took.
pub(crate) struct SegmentSet {
    pub sealed: Vec<Arc<Sealed>>,
    /// In-memory segments being sealed, oldest first.
    pub frozen: Vec<Arc<MemSegment>>,
    /// The segment taking new points.
    pub active: Arc<MemSegment>,
    /// The payload indexes the queries over these segments may use; changed by
    /// [`Shared::change_schema`] only, carried over by every other swap.
    pub schema: Arc<PayloadSchema>,
}

/// Where a live point is.
pub(crate) enum Location {
    Mem(Arc<MemSegment>, u32),
    Sealed(Arc<Sealed>, u32),
}

impl SegmentSet {
    /// Every segment, oldest first (sealed, frozen, active).
    pub fn views(&self) -> Vec<View<'_>> {
        let mut v: Vec<View<'_>> = self.sealed.iter().map(|s| View::sealed(s)).collect();
        v.extend(self.frozen.iter().map(|m| View::mem(m)));
        v.push(View::mem(&self.active));
        v
    }

    /// The segment that holds `id` live (at most one does).
    pub fn locate(&self, id: &PointId) -> Option<Location> {
        if let Some(off) = View::mem(&self.active).find(id) {
            return Some(Location::Mem(self.active.clone(), off));
        }
        for m in self.frozen.iter().rev() {
            if let Some(off) = View::mem(m).find(id) {
                return Some(Location::Mem(m.clone(), off));
            }
        }
        for s in self.sealed.iter().rev() {
            if let Some(off) = View::sealed(s).find(id) {
                return Some(Location::Sealed(s.clone(), off));
            }
        }
        None
    }
}

/// Wakes the background optimizer.
#[derive(Default)]
pub(crate) struct Signal {
    pending: Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    pub fn notify(&self) {
        *self.pending.lock() = true;
        self.cond.notify_all();
    }

    /// Waits for a notification or the timeout; returns whether one came.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        let mut p = self.pending.lock();
        if !*p {
            self.cond.wait_for(&mut p, timeout);
        }
        std::mem::replace(&mut *p, false)
    }
}

/// Everything a collection's handles and its background thread share.
pub(crate) struct Shared {
    pub name: String,
    pub dir: PathBuf,
    /// The current config: replaced whole by [`Shared::change_config`]; users take the `Arc` once
    /// per operation so one operation sees one config.
    pub config: RwLock<Arc<CollectionConfig>>,
    pub options: EngineOptions,
    pub wal: Wal,
    /// Orders writes: WAL order is apply order.
    pub writer: Mutex<()>,
    pub segments: RwLock<Arc<SegmentSet>>,
    /// Serialises seals, vacuums and merges; holds the current manifest.
    pub optimizer: Mutex<Manifest>,
    pub optimizing: AtomicBool,
    /// The running optimization and the recent finished ones.
    pub optimizations: Mutex<super::progress::OptimizationLog>,
    /// Asks long operations and the background thread to stop.
    pub stop: AtomicBool,
    /// Set once the collection is closed or deleted: writes fail from then on.
    pub closed: AtomicBool,
    pub signal: Signal,
    /// Notified whenever a seal publishes its segments (see [`Shared::wait_until_optimized`]).
    pub sealed_signal: (Mutex<()>, Condvar),
}

impl Shared {
    pub fn snapshot(&self) -> Arc<SegmentSet> {
        self.segments.read().clone()
    }

    /// The current config.
    pub fn config(&self) -> Arc<CollectionConfig> {
        self.config.read().clone()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Cancelled);
        }
        Ok(())
    }

    /// Logs and applies an operation; returns its sequence number once it is durable. `resolve` runs
    /// under the writer lock and may turn a filter into ids against the current state.
    pub fn write(&self, make: impl FnOnce(&SegmentSet) -> Result<Operation>) -> Result<u64> {
        let seq = {
            let _w = self.writer.lock();
            self.check_open()?;
            let set = self.snapshot();
            let op = make(&set)?;
            let seq = self.wal.write(&op.encode())?;
            apply(&self.config(), &set, op);
            seq
        };
        self.wal.sync_to(seq)?;
        self.maybe_wake();
        Ok(seq)
    }

    /// Changes the payload schema: `edit` applies to a copy, which is stored in `config.json`
    /// (atomically, durably) before readers see it. Under the writer lock, so a collection being
    /// closed, deleted or replaced never gets its config rewritten (closing waits for this lock), and
    /// the returned log position (Qdrant's operation id) is the last write the change follows.
    pub fn change_schema(&self, edit: impl FnOnce(&mut PayloadSchema)) -> Result<u64> {
        let _w = self.writer.lock();
        self.check_open()?;
        let current = self.snapshot().schema.clone();
        let mut next = PayloadSchema::clone(&current);
        edit(&mut next);
        if next != *current {
            // Written before the swap (readers are not held up by the fsync); no other swap changes
            // the schema, so the one published here is the one stored.
            super::write_config(&self.dir, &self.config(), &next)?;
            // Before the swap, so readers of the new schema find the appendable segment's indexes
            // (one without its index would read the payloads, which answer alike). Frozen segments
            // keep theirs (see `field_index::mem`).
            self.snapshot().active.sync_field_indexes(&next);
            let mut guard = self.segments.write();
            *guard = Arc::new(SegmentSet {
                sealed: guard.sealed.clone(),
                frozen: guard.frozen.clone(),
                active: guard.active.clone(),
                schema: Arc::new(next),
            });
        }
        Ok(self.wal.last_seq())
    }

    /// Changes the config: `edit` applies to a copy, which must keep what cannot change and pass
    /// validation; it is stored in `config.json` (atomically, durably) before it is used. Under the
    /// writer lock, as [`Shared::change_schema`], so the two never store each other's stale half.
    /// Seals and rewrites from then on follow the new config; segments sealed before with other
    /// settings are rebuilt by the optimizer, which this wakes.
    pub fn change_config(
        &self,
        edit: impl FnOnce(&mut CollectionConfig) -> Result<()>,
    ) -> Result<()> {
        {
            let _w = self.writer.lock();
            self.check_open()?;
            let current = self.config();
            let mut next = CollectionConfig::clone(&current);
            edit(&mut next)?;
            next.check_update_from(&current)?;
            next.validate()?;
            if next != *current {
                super::write_config(&self.dir, &next, &self.snapshot().schema)?;
                *self.config.write() = Arc::new(next);
            }
        }
        // New thresholds may make the active segment due now.
        self.maybe_wake();
        Ok(())
    }

    /// Wakes the optimizer when the active segment is due to be sealed, a sealed segment has too
    /// many tombstones, or sealed segments are due to be merged.
    pub fn maybe_wake(&self) {
        let set = self.snapshot();
        if !self.config().optimizer_config.optimizations_enabled() {
            return;
        }
        if self.seal_due(&set)
            || self.vacuum_wanted(&set)
            || self.merge_wanted(&set)
            || self.rebuild_wanted(&set)
        {
            self.signal.notify();
        }
    }

    /// Whether the active segment is due to be sealed (see [`CollectionConfig::seal_due`]).
    pub fn seal_due(&self, set: &SegmentSet) -> bool {
        let data = set.active.data.read();
        self.config().seal_due(data.len(), data.vector_bytes())
    }

    /// Whether there are more sealed segments than the target and some of them can be merged.
    pub fn merge_wanted(&self, set: &SegmentSet) -> bool {
        set.sealed.len() > self.config().target_segments() && !self.merge_plan(set).is_empty()
    }

    /// Whether some sealed segment's tombstones (in memory) pass the vacuum threshold.
    pub fn vacuum_wanted(&self, set: &SegmentSet) -> bool {
        let config = self.config();
        set.sealed.iter().any(|s| {
            let d = s.deleted.read().count_ones();
            config.optimizer_config.vacuum_due(s.points.len(), d)
        })
    }

    /// Whether some sealed segment was built with settings the config no longer has.
    pub fn rebuild_wanted(&self, set: &SegmentSet) -> bool {
        let config = self.config();
        set.sealed.iter().any(|s| s.needs_rebuild(&config))
    }

    /// Under `prevent_unoptimized`, waits (before taking the writer lock, so the seal that drains
    /// the appendable segment can freeze it) until the appendable segment is not due to be sealed
    /// and no frozen segment waits for its seal, or [`PREVENT_UNOPTIMIZED_MAX_WAIT`] passes. No
    /// wait while optimizations are off: nothing would drain it.
    pub fn wait_until_optimized(&self) {
        let config = self.config();
        let opt = &config.optimizer_config;
        if opt.prevent_unoptimized != Some(true) || !opt.optimizations_enabled() {
            return;
        }
        let deadline = std::time::Instant::now() + PREVENT_UNOPTIMIZED_MAX_WAIT;
        loop {
            let set = self.snapshot();
            let backlog = self.seal_due(&set) || !set.frozen.is_empty();
            drop(set);
            if !backlog || self.closed.load(Ordering::Acquire) {
                return;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                tracing::warn!(collection = %self.name, "prevent_unoptimized: the seal did not finish in time; writing anyway");
                return;
            }
            self.signal.notify();
            // Woken when a seal publishes; the timeout covers a wake-up missed between the check
            // and the wait.
            let mut g = self.sealed_signal.0.lock();
            self.sealed_signal.1.wait_for(
                &mut g,
                (deadline - now).min(std::time::Duration::from_millis(50)),
            );
        }
    }
}

/// Live ids that match a filter, across every segment.
pub(crate) fn resolve_filter(set: &SegmentSet, filter: &Filter) -> Vec<PointId> {
    super::field_index::warm(set, Some(filter));
    let mut ids = Vec::new();
    for v in set.views() {
        let prepared = super::field_index::SegmentFilter::new(&v, Some(filter), &set.schema);
        for off in 0..v.len() as u32 {
            if v.is_live(off) && prepared.passes(&v, off) {
                ids.push(v.id(off));
            }
        }
    }
    ids
}

/// The payload of the live point `id`, if there is one.
pub(crate) fn live_payload(set: &SegmentSet, id: &PointId) -> Option<crate::point::Payload> {
    Some(match set.locate(id)? {
        Location::Mem(m, off) => View::mem(&m).payload(off).into_owned(),
        Location::Sealed(s, off) => View::sealed(&s).payload(off).into_owned(),
    })
}

/// Tombstones `id` wherever it is live.
fn tombstone(loc: &Location) {
    match loc {
        Location::Mem(m, off) => {
            m.deleted.write().set(*off as usize);
        }
        Location::Sealed(s, off) => {
            s.deleted.write().set(*off as usize);
        }
    }
}

/// Applies a logged operation to the segments. Used by the write path and by WAL replay, so it must
/// depend only on the operation and the current state.
pub(crate) fn apply(config: &CollectionConfig, set: &SegmentSet, op: Operation) {
    match op {
        Operation::Upsert(points) => {
            for p in points {
                if let Some(loc) = set.locate(&p.id) {
                    tombstone(&loc);
                }
                set.active.push(p);
            }
        }
        Operation::Delete(ids) => {
            for id in ids {
                if let Some(loc) = set.locate(&id) {
                    tombstone(&loc);
                }
            }
        }
        Operation::Payload { ids, op } => {
            for id in ids {
                update_payload(config, set, id, &op);
            }
        }
        Operation::UpdateVectors(points) => {
            for (id, vectors) in points {
                rewrite(config, set, id, |mine, _| mine.extend(vectors));
            }
        }
        Operation::DeleteVectors { ids, names } => {
            for id in ids {
                rewrite(config, set, id, |mine, _| {
                    for name in &names {
                        mine.remove(name);
                    }
                });
            }
        }
        Operation::Batch(ops) => {
            for op in ops {
                apply(config, set, op);
            }
        }
    }
}

/// Changes one point's payload: in place in the active segment; elsewhere (immutable rows) by moving the
/// point into the active segment with its vectors and the new payload.
fn update_payload(config: &CollectionConfig, set: &SegmentSet, id: PointId, op: &PayloadOp) {
    let Some(loc) = set.locate(&id) else {
        return;
    };
    if let Location::Mem(m, off) = &loc {
        if Arc::ptr_eq(m, &set.active) {
            set.active
                .data
                .write()
                .edit_payload(*off, |p| payload::apply(p, op));
            return;
        }
    }
    move_to_active(config, set, id, &loc, |_, pl| payload::apply(pl, op));
}

/// Changes one point's vectors and payload by moving it into the active segment (vectors are never
/// changed in place: sealed rows are immutable and an index may hold the old ones). A point that does
/// not exist is skipped.
fn rewrite(
    config: &CollectionConfig,
    set: &SegmentSet,
    id: PointId,
    edit: impl FnOnce(&mut NamedVectors, &mut Payload),
) {
    if let Some(loc) = set.locate(&id) {
        move_to_active(config, set, id, &loc, edit);
    }
}

/// Tombstones the live point at `loc` and appends it, edited, to the active segment.
fn move_to_active(
    config: &CollectionConfig,
    set: &SegmentSet,
    id: PointId,
    loc: &Location,
    edit: impl FnOnce(&mut NamedVectors, &mut Payload),
) {
    // The views hold their segment's read locks: they end with this match, before the push.
    let (mut vectors, mut pl) = match loc {
        Location::Mem(m, off) => {
            let v = View::mem(m);
            (v.all_vectors(config, *off), v.payload(*off).into_owned())
        }
        Location::Sealed(s, off) => {
            let v = View::sealed(s);
            (v.all_vectors(config, *off), v.payload(*off).into_owned())
        }
    };
    edit(&mut vectors, &mut pl);
    tombstone(loc);
    set.active.push(PointInsert {
        id,
        vectors,
        payload: Some(pl),
    });
}
