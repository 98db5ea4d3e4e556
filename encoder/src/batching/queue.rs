//! Token-budget batch formation, independent of threads and models.
//!
//! Jobs wait in FIFO order. A batch takes items from the oldest job's group (same task, prompt
//! kind and modality) while its cost stays within `max_batch_tokens` and the item count within
//! `max_batch_requests`; the first item is always taken so an oversized input still runs alone.
//! The cost is what the model computes: `longest × items` for a padded batch (jina's text and images
//! on the CPU), the sum of the items' tokens for a packed one (text on BERT, and text and images on
//! jina on a GPU). An image costs the tokens of its prompt, which grow with its pixels. Items of a job keep
//! their order. Jobs whose caller has gone are dropped before they cost compute.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::prompt::PromptKind;

/// What a job embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    Text,
    Image,
    /// Late-chunking windows: rows whose spans are pooled, not whole rows.
    Spans,
}

/// Items with the same key may share a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub task: usize,
    pub prompt: PromptKind,
    pub modality: Modality,
}

/// One queued request: the cost in tokens of each of its items and how far it has been
/// scheduled (the items themselves are the owner's, in `state`).
#[derive(Debug)]
pub struct QueuedJob<R> {
    pub key: GroupKey,
    pub lens: Vec<usize>,
    /// Items before this index are already in a batch.
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
    /// The model runs its batches (text and images alike) without padding, so a batch costs its
    /// real tokens, not rows × longest.
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

    pub fn get(&self, id: u64) -> Option<&QueuedJob<R>> {
        self.jobs.iter().find(|(i, _)| *i == id).map(|(_, j)| j)
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
            .find(|(_, j)| j.next_row < j.lens.len())
            .map(|(_, j)| j.key)
        else {
            return (None, Vec::new());
        };
        let packed = limits.packed;
        let mut picked = Vec::new();
        let (mut longest, mut total) = (0usize, 0usize);
        'jobs: for (id, job) in self.jobs.iter_mut() {
            if job.key != key {
                continue;
            }
            while job.next_row < job.lens.len() {
                let len = job.lens[job.next_row];
                let new_longest = longest.max(len);
                let cost = if packed {
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
        job_of(task, Modality::Text, lens)
    }

    fn job_of(task: usize, modality: Modality, lens: &[usize]) -> QueuedJob<()> {
        QueuedJob {
            key: GroupKey {
                task,
                prompt: PromptKind::Query,
                modality,
            },
            lens: lens.to_vec(),
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

    #[test]
    fn images_of_concurrent_requests_share_a_padded_batch_in_order() {
        let mut q = JobQueue::default();
        // Two image requests and a text request in between, same task.
        let a = q.push(job_of(0, Modality::Image, &[30, 10]));
        let t = q.push(job(0, &[5]));
        let b = q.push(job_of(0, Modality::Image, &[20, 40]));
        let limits = BatchLimits {
            max_batch_tokens: 100,
            max_batch_requests: 8,
            packed: false,
        };
        // Padded: 30, 10, 20 → 30 × 3 = 90 fits; 40 × 4 does not.
        let (key, rows) = q.next_batch(limits);
        assert_eq!(key.unwrap().modality, Modality::Image);
        assert_eq!(
            rows,
            vec![
                BatchRow { job: a, row: 0 },
                BatchRow { job: a, row: 1 },
                BatchRow { job: b, row: 0 }
            ]
        );
        // The text request is the oldest group left with work.
        let (key, rows) = q.next_batch(limits);
        assert_eq!(key.unwrap().modality, Modality::Text);
        assert_eq!(rows, vec![BatchRow { job: t, row: 0 }]);
        let (_, rows) = q.next_batch(limits);
        assert_eq!(rows, vec![BatchRow { job: b, row: 1 }]);
        assert!(q.next_batch(limits).1.is_empty());
    }

    #[test]
    fn packed_image_batches_cost_their_real_tokens() {
        let mut q = JobQueue::default();
        let a = q.push(job_of(0, Modality::Image, &[30, 10]));
        let b = q.push(job_of(0, Modality::Image, &[20, 40]));
        let limits = BatchLimits {
            max_batch_tokens: 100,
            max_batch_requests: 8,
            packed: true,
        };
        // 30 + 10 + 20 + 40 = 100: all four in one pass, in order.
        let (_, rows) = q.next_batch(limits);
        assert_eq!(
            rows,
            vec![
                BatchRow { job: a, row: 0 },
                BatchRow { job: a, row: 1 },
                BatchRow { job: b, row: 0 },
                BatchRow { job: b, row: 1 }
            ]
        );
    }
}
