//! The encoder service: one worker thread owns the model, callers submit through a bounded
//! queue, and the worker packs texts, or images, from many requests into token-budget batches.
//!
//! Tokenization, image decoding and preprocessing (on the CPU pool), and validation run on the
//! caller's thread, so they overlap the worker's current forward pass and give token counts up
//! front; the worker only sees token ids and image patches. A full queue answers
//! [`Error::Overloaded`] at once instead of growing memory; the server maps it to 429.

pub mod queue;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam::channel::{self, Receiver, Sender, TrySendError};

use crate::embedding::Embedding;
use crate::encoder::Encoder;
use crate::error::{Error, Result};
use crate::image::Patches;
use crate::model::RunSpec;
use crate::prompt::{PromptKind, Truncation};
use queue::{BatchLimits, GroupKey, JobQueue, Modality, QueuedJob};

/// Service limits.
#[derive(Debug, Clone, Copy)]
pub struct ServiceOptions {
    /// Tokens per forward pass: `longest × rows` for a padded batch (images; text on models that
    /// pad), the rows' sum for a packed one.
    pub max_batch_tokens: usize,
    /// Inputs per forward pass.
    pub max_batch_requests: usize,
    /// Requests that may be outstanding (queued, running, or finished but not yet collected
    /// by their caller); one more is refused with `Overloaded`.
    pub queue_capacity: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            max_batch_tokens: 16384,
            max_batch_requests: 64,
            queue_capacity: 256,
        }
    }
}

/// One embedding request: texts sharing a task, prompt kind and dimension.
#[derive(Debug, Clone)]
pub struct EncodeRequest {
    pub texts: Vec<String>,
    pub task: String,
    pub prompt: PromptKind,
    pub dims: Option<usize>,
    pub truncation: Truncation,
}

/// What a job embeds: token rows, or preprocessed images.
enum Items {
    Text(Vec<Vec<u32>>),
    Images(Vec<Patches>),
}

struct Job {
    key: GroupKey,
    dims: usize,
    /// Cost of each item in tokens.
    lens: Vec<usize>,
    items: Items,
    cancelled: Arc<AtomicBool>,
    reply: Sender<Result<Vec<Embedding>>>,
}

/// Results being collected for one queued job.
struct JobState {
    dims: usize,
    items: Items,
    results: Vec<Option<Embedding>>,
    done: usize,
    reply: Sender<Result<Vec<Embedding>>>,
}

/// A submitted request; [`Pending::wait`] blocks for its result. Dropping it cancels the
/// request if it has not run yet.
pub struct Pending {
    rx: Receiver<Result<Vec<Embedding>>>,
    cancelled: Arc<AtomicBool>,
    outstanding: Arc<AtomicUsize>,
}

impl Pending {
    pub fn wait(self) -> Result<Vec<Embedding>> {
        self.rx.recv().unwrap_or(Err(Error::WorkerGone))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counters of the worker since start, for metrics.
#[derive(Debug, Default)]
pub struct ServiceStats {
    /// Forward passes run.
    pub batches: AtomicU64,
    /// Inputs embedded.
    pub inputs: AtomicU64,
    /// Real (unpadded) tokens embedded.
    pub tokens: AtomicU64,
    /// Tokens run through the model: `longest × rows` for a padded batch, the real tokens for a
    /// packed one.
    pub padded_tokens: AtomicU64,
    /// Microseconds the worker spent in forward passes.
    pub busy_micros: AtomicU64,
    /// Requests refused because the queue was full.
    pub rejected: AtomicU64,
}

/// Thread-safe handle to the encoder worker. Cheap to share behind an `Arc`.
pub struct EncoderService {
    encoder: Arc<Encoder>,
    tx: Option<Sender<Job>>,
    worker: Option<JoinHandle<()>>,
    outstanding: Arc<AtomicUsize>,
    capacity: usize,
    stats: Arc<ServiceStats>,
}

impl EncoderService {
    pub fn start(encoder: Arc<Encoder>, opts: ServiceOptions) -> Result<Self> {
        if opts.max_batch_tokens == 0 || opts.max_batch_requests == 0 || opts.queue_capacity == 0 {
            return Err(Error::InvalidInput(
                "max_batch_tokens, max_batch_requests and queue_capacity must be positive".into(),
            ));
        }
        let (tx, rx) = channel::bounded::<Job>(opts.queue_capacity);
        let limits = BatchLimits {
            max_batch_tokens: opts.max_batch_tokens,
            max_batch_requests: opts.max_batch_requests,
            packed: encoder.packs_batches(),
        };
        let enc = encoder.clone();
        let stats = Arc::new(ServiceStats::default());
        let worker_stats = stats.clone();
        let worker = std::thread::Builder::new()
            .name("quiver-encoder".into())
            .spawn(move || worker_loop(&enc, rx, limits, &worker_stats))
            .map_err(|e| Error::Inference(format!("cannot start encoder worker: {e}")))?;
        Ok(EncoderService {
            encoder,
            tx: Some(tx),
            worker: Some(worker),
            outstanding: Arc::new(AtomicUsize::new(0)),
            capacity: opts.queue_capacity,
            stats,
        })
    }

    /// Embeds encoded images (PNG, JPEG, WebP, GIF) at full size: [`EncoderService::submit_images`]
    /// and wait.
    pub fn encode_images(
        &self,
        images: &[impl AsRef<[u8]> + Sync],
        task: &str,
    ) -> Result<Vec<Embedding>> {
        self.submit_images(images, task)?.wait()
    }

    /// Takes a queue slot (a full queue refuses at once with `Overloaded`), decodes and
    /// preprocesses the images on the CPU pool while the worker runs other batches, then enqueues
    /// them; the worker merges images of concurrent requests into one forward pass under the token
    /// budget, and each request's images come back in its order.
    pub fn submit_images(&self, images: &[impl AsRef<[u8]> + Sync], task: &str) -> Result<Pending> {
        let spec = self.encoder.run_spec(task, None)?;
        if !self.encoder.supports_images() {
            // Asked before a slot is taken: the answer is the same whatever the queue holds.
            return Err(crate::model::no_images());
        }
        let tx = self.tx.as_ref().ok_or(Error::WorkerGone)?;
        let (reply, rx) = channel::bounded(1);
        let cancelled = Arc::new(AtomicBool::new(false));
        self.take_slot()?;
        // From here the slot is the Pending's, given back when it is dropped (on any error too).
        let pending = Pending {
            rx,
            cancelled: cancelled.clone(),
            outstanding: self.outstanding.clone(),
        };
        let patches = self.encoder.preprocess_images(images)?;
        let lens = patches
            .iter()
            .map(|p| self.encoder.image_tokens(p))
            .collect::<Result<Vec<_>>>()?;
        let job = Job {
            key: GroupKey {
                task: spec.task,
                prompt: PromptKind::Query,
                modality: Modality::Image,
            },
            dims: spec.dims,
            lens,
            items: Items::Images(patches),
            cancelled,
            reply,
        };
        self.enqueue_job(tx, job, pending)
    }

    /// Sends a job whose slot `pending` holds.
    fn enqueue_job(&self, tx: &Sender<Job>, job: Job, pending: Pending) -> Result<Pending> {
        match tx.try_send(job) {
            Ok(()) => Ok(pending),
            // Dropping `pending` releases the slot.
            Err(TrySendError::Full(_)) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                Err(Error::Overloaded)
            }
            Err(TrySendError::Disconnected(_)) => Err(Error::WorkerGone),
        }
    }

    /// Takes one of the `capacity` slots, or refuses with `Overloaded`; the caller must give it back.
    fn take_slot(&self) -> Result<()> {
        self.outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                Error::Overloaded
            })
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Requests queued, running, or finished but not yet collected.
    pub fn queue_depth(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Most requests outstanding at once.
    pub fn queue_capacity(&self) -> usize {
        self.capacity
    }

    /// Counters since start.
    pub fn stats(&self) -> &ServiceStats {
        &self.stats
    }

    /// Validates and tokenizes on the calling thread, then enqueues without blocking.
    pub fn submit(&self, req: EncodeRequest) -> Result<Pending> {
        let spec: RunSpec = self.encoder.run_spec(&req.task, req.dims)?;
        let rows = self
            .encoder
            .tokenize(&req.texts, &req.task, req.prompt, req.truncation)?;
        let (reply, rx) = channel::bounded(1);
        let cancelled = Arc::new(AtomicBool::new(false));
        let job = Job {
            key: GroupKey {
                task: spec.task,
                // Without prompts both kinds give the same rows, so they may share a batch.
                prompt: if self.encoder.uses_prompts() {
                    req.prompt
                } else {
                    PromptKind::Query
                },
                modality: Modality::Text,
            },
            dims: spec.dims,
            lens: rows.iter().map(Vec::len).collect(),
            items: Items::Text(rows),
            cancelled: cancelled.clone(),
            reply,
        };
        let tx = self.tx.as_ref().ok_or(Error::WorkerGone)?;
        // Reserve a slot first; the channel has the same capacity, so it cannot be full
        // while a slot is held. `Pending` gives it back when dropped.
        self.take_slot()?;
        let pending = Pending {
            rx,
            cancelled,
            outstanding: self.outstanding.clone(),
        };
        self.enqueue_job(tx, job, pending)
    }

    /// Submits and waits.
    pub fn encode(&self, req: EncodeRequest) -> Result<Vec<Embedding>> {
        self.submit(req)?.wait()
    }
}

impl Drop for EncoderService {
    fn drop(&mut self) {
        // Closing the channel ends the worker once queued work is done.
        self.tx.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn worker_loop(encoder: &Encoder, rx: Receiver<Job>, limits: BatchLimits, stats: &ServiceStats) {
    let mut queue: JobQueue<JobState> = JobQueue::default();
    let mut open = true;
    loop {
        if queue.is_empty() {
            if !open {
                return;
            }
            match rx.recv() {
                Ok(job) => enqueue(&mut queue, job),
                Err(_) => return,
            }
        }
        // Take everything already waiting so batches can mix requests.
        loop {
            match rx.try_recv() {
                Ok(job) => enqueue(&mut queue, job),
                Err(channel::TryRecvError::Empty) => break,
                Err(channel::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let dropped = queue.drop_cancelled();
        if dropped > 0 {
            tracing::debug!(dropped, "skipped requests whose caller has gone");
        }
        let (key, picked) = queue.next_batch(limits);
        let Some(key) = key else { continue };
        let full = encoder.dims();
        let spec = RunSpec {
            task: key.task,
            dims: full,
        };
        let lens: Vec<usize> = picked
            .iter()
            .map(|p| {
                queue
                    .get(p.job)
                    .expect("picked job is queued: this is a bug")
                    .lens[p.row]
            })
            .collect();
        let span = tracing::debug_span!("encode_batch", rows = picked.len(), task = key.task, modality = ?key.modality);
        let started = std::time::Instant::now();
        let result = span.in_scope(|| run_batch(encoder, &queue, &picked, key.modality, spec));
        let longest = lens.iter().copied().max().unwrap_or(0);
        let real: usize = lens.iter().sum();
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .inputs
            .fetch_add(picked.len() as u64, Ordering::Relaxed);
        stats.tokens.fetch_add(real as u64, Ordering::Relaxed);
        // A packed batch (text on BERT, and on jina on a GPU) runs its real tokens only.
        let computed = if limits.packed && key.modality == Modality::Text {
            real
        } else {
            longest * picked.len()
        };
        stats
            .padded_tokens
            .fetch_add(computed as u64, Ordering::Relaxed);
        stats
            .busy_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok(embs) => {
                for (p, mut e) in picked.iter().zip(embs) {
                    let job = queue
                        .get_mut(p.job)
                        .expect("picked job is queued: this is a bug");
                    let st = &mut job.state;
                    e.truncate(st.dims);
                    st.results[p.row] = Some(e);
                    st.done += 1;
                    if st.done == st.results.len() {
                        let job = queue.remove(p.job).expect("job present: this is a bug");
                        let out = job
                            .state
                            .results
                            .into_iter()
                            .map(|r| r.expect("row done"))
                            .collect();
                        let _ = job.state.reply.send(Ok(out));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "encoder batch failed");
                let mut failed: Vec<u64> = picked.iter().map(|p| p.job).collect();
                failed.dedup();
                for id in failed {
                    if let Some(job) = queue.remove(id) {
                        let _ = job.state.reply.send(Err(Error::Inference(e.to_string())));
                    }
                }
            }
        }
    }
}

/// One forward pass over the picked items (all of one modality): token rows through
/// `embed_ids`, images through `encode_patches`.
fn run_batch(
    encoder: &Encoder,
    queue: &JobQueue<JobState>,
    picked: &[queue::BatchRow],
    modality: Modality,
    spec: RunSpec,
) -> Result<Vec<Embedding>> {
    let mut rows: Vec<&[u32]> = Vec::new();
    let mut images: Vec<&Patches> = Vec::new();
    for p in picked {
        let job = queue
            .get(p.job)
            .expect("picked job is queued: this is a bug");
        match (&job.state.items, modality) {
            (Items::Text(r), Modality::Text) => rows.push(&r[p.row]),
            (Items::Images(i), Modality::Image) => images.push(&i[p.row]),
            _ => unreachable!("a batch holds one modality (its group key): this is a bug"),
        }
    }
    match modality {
        Modality::Text => encoder.embed_ids(&rows, spec),
        Modality::Image => encoder.encode_patches(&images, spec),
    }
}

fn enqueue(queue: &mut JobQueue<JobState>, job: Job) {
    if job.lens.is_empty() {
        let _ = job.reply.send(Ok(Vec::new()));
        return;
    }
    let n = job.lens.len();
    queue.push(QueuedJob {
        key: job.key,
        lens: job.lens,
        next_row: 0,
        cancelled: job.cancelled,
        state: JobState {
            dims: job.dims,
            items: job.items,
            results: vec![None; n],
            done: 0,
            reply: job.reply,
        },
    });
}
