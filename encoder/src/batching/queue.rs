//! Token-budget batch formation, independent of threads and models.
//!
//! Jobs wait in FIFO order. A batch takes rows from the oldest job's group (same task and
//! prompt kind) while its cost stays within `max_batch_tokens` and the row count within
//! `max_batch_requests`; the first row is always taken so an oversized input still runs alone.
//! The cost is what the model computes: `longest × rows` for a model that pads its batches, the
//! sum of the rows' tokens for one that packs them (BERT). Jobs whose caller has gone are dropped
//! before they cost compute.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::prompt::PromptKind;

/// Rows with the same key may share a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub task: usize,
    pub prompt: PromptKind,
}

/// One queued request: its tokenized rows and how far it has been scheduled.
#[derive(Debug)]
pub struct QueuedJob<R> {
    pub key: GroupKey,
    pub rows: Vec<Vec<u32>>,
    /// Rows before this index are already in a batch.
    pub next_row: usize,
    pub cancelled: Arc<AtomicBool>,
    /// What the owner attaches (reply channel, partial results).
    pub state: R,
}

/// A row of a formed batch: which job (by id in the queue) and which row of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRow {
    pub job: u64,
    pub row: usize,
}

/// Limits for one forward pass.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_batch_tokens: usize,
    pub max_batch_requests: usize,
    /// The model runs a batch without padding, so it costs its real tokens, not rows × longest.
    pub packed: bool,
}

/// Pending jobs keyed by a monotonically increasing id.
#[derive(Debug)]
pub struct JobQueue<R> {
    jobs: VecDeque<(u64, QueuedJob<R>)>,
    next_id: u64,
}

impl<R> Default for JobQueue<R> {
    fn default() -> Self {
        JobQueue {
            jobs: VecDeque::new(),
            next_id: 0,
        }
    }
}

impl<R> JobQueue<R> {
    pub fn push(&mut self, job: QueuedJob<R>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.jobs.push_back((id, job));
        id
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut QueuedJob<R>> {
        self.jobs.iter_mut().find(|(i, _)| *i == id).map(|(_, j)| j)
    }

    /// Removes and returns job `id`.
    pub fn remove(&mut self, id: u64) -> Option<QueuedJob<R>> {
        let pos = self.jobs.iter().position(|(i, _)| *i == id)?;
        self.jobs.remove(pos).map(|(_, j)| j)
    }

    /// Drops jobs whose caller has gone and returns how many.
    pub fn drop_cancelled(&mut self) -> usize {
        let before = self.jobs.len();
        self.jobs
            .retain(|(_, j)| !j.cancelled.load(Ordering::Relaxed));
        before - self.jobs.len()
    }

    /// Forms the next batch (empty when nothing is pending) and marks its rows scheduled.
    pub fn next_batch(&mut self, limits: BatchLimits) -> (Option<GroupKey>, Vec<BatchRow>) {
        let Some(key) = self
            .jobs
            .iter()
            .find(|(_, j)| j.next_row < j.rows.len())
            .map(|(_, j)| j.key)
        else {
            return (None, Vec::new());
        };
        let mut picked = Vec::new();
        let (mut longest, mut total) = (0usize, 0usize);
        'jobs: for (id, job) in self.jobs.iter_mut() {
            if job.key != key {
                continue;
            }
            while job.next_row < job.rows.len() {
                let len = job.rows[job.next_row].len();
                let new_longest = longest.max(len);
                let cost = if limits.packed {
                    total + len
                } else {
                    new_longest * (picked.len() + 1)
                };
                let fits =
                    cost <= limits.max_batch_tokens && picked.len() < limits.max_batch_requests;
                if !picked.is_empty() && !fits {
                    break 'jobs;
                }
                picked.push(BatchRow {
                    job: *id,
                    row: job.next_row,
                });
                longest = new_longest;
                total += len;
                job.next_row += 1;
            }
        }
        (Some(key), picked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(task: usize, lens: &[usize]) -> QueuedJob<()> {
        QueuedJob {
            key: GroupKey {
                task,
                prompt: PromptKind::Query,
            },
            rows: lens.iter().map(|&n| vec![1; n]).collect(),
            next_row: 0,
            cancelled: Arc::new(AtomicBool::new(false)),
            state: (),
        }
    }

    #[test]
    fn budget_and_grouping() {
        let mut q = JobQueue::default();
        let a = q.push(job(0, &[4, 4]));
        let b = q.push(job(1, &[2]));
        let c = q.push(job(0, &[8, 1]));
        let limits = BatchLimits {
            max_batch_tokens: 16,
            max_batch_requests: 8,
            packed: false,
        };
        // 4,4 then 8 → longest 8 × 3 rows = 24 > 16: stop before c's first row.
        let (key, rows) = q.next_batch(limits);
        assert_eq!(key.unwrap().task, 0);
        assert_eq!(
            rows,
            vec![BatchRow { job: a, row: 0 }, BatchRow { job: a, row: 1 }]
        );
        let (_, rows) = q.next_batch(limits);
        // Task 1 is now the oldest unscheduled group.
        assert_eq!(rows, vec![BatchRow { job: b, row: 0 }]);
        let (_, rows) = q.next_batch(limits);
        assert_eq!(
            rows,
            vec![BatchRow { job: c, row: 0 }, BatchRow { job: c, row: 1 }]
        );
        assert!(q.next_batch(limits).1.is_empty());
    }

    #[test]
    fn oversized_row_runs_alone_and_request_cap() {
        let mut q = JobQueue::default();
        q.push(job(0, &[100, 1, 1, 1]));
        let limits = BatchLimits {
            max_batch_tokens: 10,
            max_batch_requests: 2,
            packed: false,
        };
        assert_eq!(q.next_batch(limits).1.len(), 1);
        assert_eq!(q.next_batch(limits).1.len(), 2);
        assert_eq!(q.next_batch(limits).1.len(), 1);
    }

    #[test]
    fn a_packed_batch_costs_its_real_tokens() {
        let lens = [30, 2, 2, 2, 2, 2, 2, 2];
        let limits = |packed| BatchLimits {
            max_batch_tokens: 64,
            max_batch_requests: 32,
            packed,
        };
        // Padded: 30 × 3 rows = 90 > 64 after two rows. Packed: 30 + 7 × 2 = 44 fits all eight.
        let mut q = JobQueue::default();
        q.push(job(0, &lens));
        assert_eq!(q.next_batch(limits(false)).1.len(), 2);
        let mut q = JobQueue::default();
        q.push(job(0, &lens));
        assert_eq!(q.next_batch(limits(true)).1.len(), 8);
        // The packed sum still bounds the batch: 40 + 30 > 64.
        let mut q = JobQueue::default();
        q.push(job(0, &[40, 30, 20]));
        assert_eq!(q.next_batch(limits(true)).1.len(), 1);
        assert_eq!(q.next_batch(limits(true)).1.len(), 2);
    }

    #[test]
    fn cancelled_jobs_are_dropped() {
        let mut q = JobQueue::default();
        let j = job(0, &[3]);
        j.cancelled.store(true, Ordering::Relaxed);
        q.push(j);
        assert_eq!(q.drop_cancelled(), 1);
        assert!(q.is_empty());
    }
}
