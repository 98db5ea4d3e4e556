//! What the optimizer is doing and has done: the seal, vacuum or merge running now with its progress, the
//! last few finished ones, and an estimate of what is queued. Seals, vacuums and merges run one at a time
//! under the optimizer lock, so at most one is running.

use std::collections::VecDeque;
use std::time::SystemTime;

use super::segment::View;
use super::state::{SegmentSet, Shared};
use crate::Error;

/// Finished optimizations kept per collection.
pub const COMPLETED_KEPT: usize = 16;

/// What an optimization does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizationKind {
    /// Writes the in-memory rows as sealed segments with their indexes, then trims the WAL.
    Seal,
    /// Rewrites a sealed segment without the points deleted from it.
    Vacuum,
    /// Writes the live points of several small sealed segments as one.
    Merge,
    /// Rebuilds a sealed segment built with settings (HNSW, quantization, `on_disk`) the config no
    /// longer has (Qdrant's `config_mismatch` optimizer).
    ConfigMismatch,
}

/// A segment an optimization reads (or would read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentRef {
    /// The sealed segment's id; `None` for an in-memory segment (appendable or frozen).
    pub id: Option<u64>,
    /// Its live points.
    pub points: usize,
}

/// How an optimization stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptimizationStatus {
    /// Still writing.
    Running,
    /// Its segments are published.
    Done,
    /// It failed with this error; the segments it read are unchanged.
    Failed(String),
}

/// One seal, vacuum or merge.
#[derive(Clone, Debug)]
pub struct Optimization {
    /// The id of the first segment it writes (the segment a vacuum that keeps no point would have
    /// written, too).
    pub id: u64,
    /// Seal, vacuum or merge.
    pub kind: OptimizationKind,
    /// The segments it reads.
    pub segments: Vec<SegmentRef>,
    /// When it started.
    pub started: SystemTime,
    /// When it finished (`None` while running).
    pub finished: Option<SystemTime>,
    /// Points written so far (a seal counts each output segment once it is written).
    pub points_done: usize,
    /// Points it writes in all.
    pub points_total: usize,
    /// Running, done or failed.
    pub status: OptimizationStatus,
}

/// An optimization the optimizer would start next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOptimization {
    /// Seal, vacuum or merge.
    pub kind: OptimizationKind,
    /// The segments it would read.
    pub segments: Vec<SegmentRef>,
}

/// [`crate::Collection::optimizations`].
#[derive(Clone, Debug, Default)]
pub struct OptimizationsReport {
    /// The seal, vacuum or merge running now, if any.
    pub running: Option<Optimization>,
    /// Finished ones, newest first, at most [`COMPLETED_KEPT`].
    pub completed: Vec<Optimization>,
    /// What would run next, estimated from the current segments.
    pub queued: Vec<PendingOptimization>,
    /// Sealed segments that need nothing.
    pub idle: Vec<SegmentRef>,
    /// Points written by finished optimizations since the collection opened.
    pub optimized_points: u64,
}

/// The running optimization and the recent finished ones.
#[derive(Default)]
pub(crate) struct OptimizationLog {
    running: Option<Optimization>,
    completed: VecDeque<Optimization>,
    optimized_points: u64,
}

impl Shared {
    /// Records the start of an optimization.
    pub(crate) fn begin_optimization(
        &self,
        kind: OptimizationKind,
        id: u64,
        segments: Vec<SegmentRef>,
    ) {
        let points_total = segments.iter().map(|s| s.points).sum();
        self.optimizations.lock().running = Some(Optimization {
            id,
            kind,
            segments,
            started: SystemTime::now(),
            finished: None,
            points_done: 0,
            points_total,
            status: OptimizationStatus::Running,
        });
    }

    /// Counts points the running optimization has written.
    pub(crate) fn advance_optimization(&self, points: usize) {
        if let Some(running) = self.optimizations.lock().running.as_mut() {
            running.points_done += points;
        }
    }

    /// Moves the running optimization (if any) to the finished ones.
    pub(crate) fn end_optimization(&self, error: Option<&Error>) {
        let mut log = self.optimizations.lock();
        let Some(mut done) = log.running.take() else {
            return;
        };
        done.finished = Some(SystemTime::now());
        done.status = match error {
            None => {
                log.optimized_points += done.points_done as u64;
                OptimizationStatus::Done
            }
            Some(e) => OptimizationStatus::Failed(e.to_string()),
        };
        if log.completed.len() == COMPLETED_KEPT {
            log.completed.pop_back();
        }
        log.completed.push_front(done);
    }

    /// The log, plus the queue and idle segments estimated from `set`.
    pub(crate) fn optimizations_report(&self, set: &SegmentSet) -> OptimizationsReport {
        // Before the log's lock: planning reads the config.
        let merges = self.merge_plan(set);
        let log = self.optimizations.lock();
        let mut queued = Vec::new();
        let in_memory = |v: View<'_>| SegmentRef {
            id: None,
            points: v.live_count(),
        };
        // Frozen segments are what a running seal is writing; otherwise they wait for the next one.
        let sealing = matches!(&log.running, Some(r) if r.kind == OptimizationKind::Seal);
        let mut seal: Vec<SegmentRef> = if sealing {
            Vec::new()
        } else {
            set.frozen.iter().map(|m| in_memory(View::mem(m))).collect()
        };
        let active = in_memory(View::mem(&set.active));
        let config = self.config();
        let due = {
            let data = set.active.data.read();
            config.seal_due(data.len(), data.vector_bytes())
        };
        if due {
            seal.push(active);
        }
        if !seal.is_empty() {
            queued.push(PendingOptimization {
                kind: OptimizationKind::Seal,
                segments: seal,
            });
        }
        let mut idle = Vec::new();
        for s in &set.sealed {
            if merges.iter().flatten().any(|m| m.id == s.id) {
                continue;
            }
            let n = s.points.len();
            let dead = s.deleted.read().count_ones();
            let segment = SegmentRef {
                id: Some(s.id),
                points: n - dead,
            };
            if config.optimizer_config.vacuum_due(n, dead) {
                queued.push(PendingOptimization {
                    kind: OptimizationKind::Vacuum,
                    segments: vec![segment],
                });
            } else if s.needs_rebuild(&config) {
                queued.push(PendingOptimization {
                    kind: OptimizationKind::ConfigMismatch,
                    segments: vec![segment],
                });
            } else {
                idle.push(segment);
            }
        }
        for batch in merges {
            let segments = batch
                .iter()
                .map(|s| SegmentRef {
                    id: Some(s.id),
                    points: s.points.len() - s.deleted.read().count_ones(),
                })
                .collect();
            queued.push(PendingOptimization {
                kind: OptimizationKind::Merge,
                segments,
            });
        }
        OptimizationsReport {
            running: log.running.clone(),
            completed: log.completed.iter().cloned().collect(),
            queued,
            idle,
            optimized_points: log.optimized_points,
        }
    }
}
