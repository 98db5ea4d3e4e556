//! The encoder service, a two-stage pipeline: callers hand raw texts and image bytes to a prepare
//! stage, which feeds one forward worker through a bounded channel; the worker owns the model and
//! packs texts, images, or late-chunking windows, from many requests into token-budget batches.
//!
//! The prepare stage ([`PREPARE_THREADS`] CPU threads) tokenizes texts and decodes and preprocesses
//! images (on the CPU pool), so the next batches are ready while the worker runs the current
//! forward pass; the worker only sees token ids and image patches. A caller's thread does only
//! the checks that need no work (task, dimension, whether images are supported), takes a queue
//! slot and returns: it then waits on its own result and nothing else. Errors found while
//! preparing (a text over the limit, a corrupt image) come back as that result. A full queue
//! answers [`Error::Overloaded`] at once instead of growing memory; the server maps it to 429.
//!
//! One exception to the hand-offs: [`EncoderService::encode`] on an idle CPU service (nothing queued,
//! running or uncollected) tokenizes and runs a request that fits one batch on the caller's own
//! thread. Alone, such a request would be the worker's whole batch anyway; running it where it is
//! saves the three thread wake-ups of the pipeline (to a prepare thread, to the worker, back to the
//! caller), which are a measurable share of a short query's few milliseconds. Passes never overlap:
//! the worker and an inline caller take the same forward lock.

pub mod queue;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{self, Receiver, Sender, TrySendError};

use crate::embedding::Embedding;
use crate::encoder::Encoder;
use crate::error::{Error, Result};
use crate::image::Patches;
use crate::late_chunking::{LateChunkOptions, WindowRow};
use crate::model::RunSpec;
use crate::prompt::{PromptKind, Truncation};
use queue::{BatchLimits, GroupKey, JobQueue, Modality, QueuedJob};

/// Service limits.
#[derive(Debug, Clone, Copy)]
pub struct ServiceOptions {
    /// Tokens per forward pass: `longest × rows` for a padded batch (jina on the CPU), the rows'
    /// sum for a packed one (BERT, and jina on a GPU).
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

/// Threads of the prepare stage. Two, so that a request of many large images does not hold back
/// the texts queued behind it; within a request the order is kept whatever the count.
pub const PREPARE_THREADS: usize = 2;

/// What a caller hands over, before preparation.
enum Raw {
    Text {
        texts: Vec<String>,
        task: String,
        prompt: PromptKind,
        truncation: Truncation,
    },
    Images(Vec<Vec<u8>>),
    /// One document and its chunks, for late chunking.
    Spans {
        text: String,
        spans: Vec<Range<usize>>,
        opts: LateChunkOptions,
    },
}

/// A request on its way to the prepare stage.
struct RawJob {
    key: GroupKey,
    dims: usize,
    raw: Raw,
    cancelled: Arc<AtomicBool>,
    reply: Sender<Result<Vec<Embedding>>>,
}

/// What a job embeds: token rows, preprocessed images, or late-chunking windows (each item one
/// window, giving one embedding per chunk it holds).
enum Items {
    Text(Vec<Vec<u32>>),
    Images(Vec<Patches>),
    Windows(Vec<WindowRow>),
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

/// Results being collected for one queued job: per item, its embeddings (one, or a window's
/// chunks), flattened in item order when the last arrives.
struct JobState {
    dims: usize,
    items: Items,
    results: Vec<Option<Vec<Embedding>>>,
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
    /// Microseconds the prepare stage spent tokenizing and preprocessing (all its threads).
    pub prepare_micros: AtomicU64,
    /// Requests refused because the queue was full.
    pub rejected: AtomicU64,
    /// Forward passes run on a caller's thread because the service was idle (also counted in
    /// `batches`).
    pub inline_batches: AtomicU64,
}

impl ServiceStats {
    /// One forward pass of `rows` inputs, `real` and `computed` tokens ([`pass_tokens`]), begun at
    /// `started`.
    fn count_pass(&self, rows: usize, real: usize, computed: usize, started: Instant) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.inputs.fetch_add(rows as u64, Ordering::Relaxed);
        self.tokens.fetch_add(real as u64, Ordering::Relaxed);
        self.padded_tokens
            .fetch_add(computed as u64, Ordering::Relaxed);
        self.busy_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

/// The real tokens of a pass over rows of lengths `lens`, and the tokens it runs: the real ones for
/// a packed batch (text on BERT, text and images on jina on a GPU), `longest × rows` for a padded one.
fn pass_tokens(lens: &[usize], packed: bool) -> (usize, usize) {
    let real: usize = lens.iter().sum();
    let longest = lens.iter().copied().max().unwrap_or(0);
    (real, if packed { real } else { longest * lens.len() })
}

/// Thread-safe handle to the encoder worker. Cheap to share behind an `Arc`.
pub struct EncoderService {
    encoder: Arc<Encoder>,
    /// To the prepare stage; `None` once shutting down.
    tx: Option<Sender<RawJob>>,
    preparers: Vec<JoinHandle<()>>,
    worker: Option<JoinHandle<()>>,
    outstanding: Arc<AtomicUsize>,
    capacity: usize,
    stats: Arc<ServiceStats>,
    limits: BatchLimits,
    /// Held for every forward pass, the worker's and an inline caller's.
    forward: Arc<Mutex<()>>,
    /// Whether [`EncoderService::encode`] may run an idle service's request on the caller's thread:
    /// on the CPU only, where the model needs no per-thread device context.
    inline: bool,
}

/// What [`EncoderService::try_inline`] did: ran the request, or handed it back for the queue.
#[derive(Debug)]
pub enum Inline {
    Done(Vec<Embedding>),
    Queue(EncodeRequest),
}

/// Gives a queue slot back when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EncoderService {
    pub fn start(encoder: Arc<Encoder>, opts: ServiceOptions) -> Result<Self> {
        if opts.max_batch_tokens == 0 || opts.max_batch_requests == 0 || opts.queue_capacity == 0 {
            return Err(Error::InvalidInput(
                "max_batch_tokens, max_batch_requests and queue_capacity must be positive".into(),
            ));
        }
        // Both channels hold at most `queue_capacity` jobs: a job holds a slot from submission
        // until its caller collects the result, so neither send can find its channel full.
        let (tx, raw_rx) = channel::bounded::<RawJob>(opts.queue_capacity);
        let (job_tx, rx) = channel::bounded::<Job>(opts.queue_capacity);
        let limits = BatchLimits {
            max_batch_tokens: opts.max_batch_tokens,
            max_batch_requests: opts.max_batch_requests,
            packed: encoder.packs_batches(),
        };
        let enc = encoder.clone();
        let stats = Arc::new(ServiceStats::default());
        let worker_stats = stats.clone();
        let forward = Arc::new(Mutex::new(()));
        let worker_forward = forward.clone();
        let worker = std::thread::Builder::new()
            .name("quiver-encoder".into())
            .spawn(move || worker_loop(&enc, rx, limits, &worker_stats, &worker_forward))
            .map_err(|e| Error::Inference(format!("cannot start encoder worker: {e}")))?;
        let preparers = (0..PREPARE_THREADS)
            .map(|i| {
                let (enc, rx, tx, stats) = (
                    encoder.clone(),
                    raw_rx.clone(),
                    job_tx.clone(),
                    stats.clone(),
                );
                std::thread::Builder::new()
                    .name(format!("quiver-prepare-{i}"))
                    .spawn(move || prepare_loop(&enc, rx, tx, &stats))
                    .map_err(|e| Error::Inference(format!("cannot start prepare thread: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let inline = encoder.device().is_cpu();
        Ok(EncoderService {
            encoder,
            tx: Some(tx),
            preparers,
            worker: Some(worker),
            outstanding: Arc::new(AtomicUsize::new(0)),
            capacity: opts.queue_capacity,
            stats,
            limits,
            forward,
            inline,
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

    /// Takes a queue slot (a full queue refuses at once with `Overloaded`) and hands the images
    /// to the prepare stage, which decodes and preprocesses them on the CPU pool while the worker
    /// runs other batches; the worker merges images of concurrent requests into one forward pass
    /// under the token budget, and each request's images come back in its order. An image that
    /// cannot be read is the result's error ([`Error::Image`] with its index).
    pub fn submit_images(&self, images: &[impl AsRef<[u8]> + Sync], task: &str) -> Result<Pending> {
        let spec = self.encoder.run_spec(task, None)?;
        if !self.encoder.supports_images() {
            // Asked before a slot is taken: the answer is the same whatever the queue holds.
            return Err(crate::model::no_images());
        }
        let key = GroupKey {
            task: spec.task,
            prompt: PromptKind::Query,
            modality: Modality::Image,
        };
        self.hand_over(key, spec.dims, || {
            Raw::Images(images.iter().map(|i| i.as_ref().to_vec()).collect())
        })
    }

    /// Takes a slot, then hands the request to the prepare stage; the slot is the returned
    /// `Pending`'s, given back when it is dropped (on any error too). `raw` is built only once a
    /// slot is held, so a refused request copies nothing.
    fn hand_over(&self, key: GroupKey, dims: usize, raw: impl FnOnce() -> Raw) -> Result<Pending> {
        let tx = self.tx.as_ref().ok_or(Error::WorkerGone)?;
        self.take_slot()?;
        let (reply, rx) = channel::bounded(1);
        let cancelled = Arc::new(AtomicBool::new(false));
        let pending = Pending {
            rx,
            cancelled: cancelled.clone(),
            outstanding: self.outstanding.clone(),
        };
        let job = RawJob {
            key,
            dims,
            raw: raw(),
            cancelled,
            reply,
        };
        match tx.try_send(job) {
            Ok(()) => Ok(pending),
            // Cannot happen while slots bound the jobs in flight; refused like a full queue.
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

    /// Checks the task and dimension, takes a slot and hands the texts to the prepare stage,
    /// without blocking. Tokenization errors (a text over the limit with truncation off) are the
    /// result's.
    pub fn submit(&self, req: EncodeRequest) -> Result<Pending> {
        let spec: RunSpec = self.encoder.run_spec(&req.task, req.dims)?;
        let key = GroupKey {
            task: spec.task,
            // Without prompts both kinds give the same rows, so they may share a batch.
            prompt: if self.encoder.uses_prompts() {
                req.prompt
            } else {
                PromptKind::Query
            },
            modality: Modality::Text,
        };
        self.hand_over(key, spec.dims, || Raw::Text {
            texts: req.texts,
            task: req.task,
            prompt: req.prompt,
            truncation: req.truncation,
        })
    }

    /// Submits and waits; on an idle CPU service a request that fits one batch runs on this thread
    /// instead (see the module's note), with the same result.
    pub fn encode(&self, req: EncodeRequest) -> Result<Vec<Embedding>> {
        match self.try_inline(req)? {
            Inline::Done(out) => Ok(out),
            Inline::Queue(req) => self.submit(req)?.wait(),
        }
    }

    /// Whether [`EncoderService::try_inline`] may run a request on the caller's thread (a CPU
    /// model); with `false` it always hands the request back.
    pub fn runs_inline(&self) -> bool {
        self.inline
    }

    /// Runs `req` here when the service is idle and its rows fit one batch; otherwise hands it
    /// back untouched, without waiting: the caller then submits it ([`EncoderService::submit`]).
    /// Holds a queue slot while it runs, so concurrent callers see a busy service and queue (the
    /// worker waits on the forward lock for them). On a rayon worker the pass runs in place; never
    /// blocking makes it safe to call there.
    pub fn try_inline(&self, req: EncodeRequest) -> Result<Inline> {
        if !self.inline || req.texts.is_empty() || req.texts.len() > self.limits.max_batch_requests
        {
            return Ok(Inline::Queue(req));
        }
        // The same checks, in the same order, as `submit`: an error is the same either way.
        let spec = self.encoder.run_spec(&req.task, req.dims)?;
        if self
            .outstanding
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(Inline::Queue(req));
        }
        let _slot = Slot(&self.outstanding);
        // Outstanding was 0, but a cancelled request's pass may still be running.
        let Ok(_running) = self.forward.try_lock() else {
            return Ok(Inline::Queue(req));
        };
        let started = Instant::now();
        let rows = self
            .encoder
            .tokenize(&req.texts, &req.task, req.prompt, req.truncation)?;
        self.stats
            .prepare_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        let lens: Vec<usize> = rows.iter().map(Vec::len).collect();
        let (real, computed) = pass_tokens(&lens, self.limits.packed);
        if computed > self.limits.max_batch_tokens {
            // The worker splits it; tokenizing again costs microseconds against those passes.
            return Ok(Inline::Queue(req));
        }
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let full = RunSpec {
            task: spec.task,
            dims: self.encoder.dims(),
        };
        let started = Instant::now();
        let result = tracing::debug_span!("encode_inline", rows = refs.len(), task = spec.task)
            .in_scope(|| self.encoder.embed_ids(&refs, full));
        self.stats.count_pass(refs.len(), real, computed, started);
        self.stats.inline_batches.fetch_add(1, Ordering::Relaxed);
        let mut out = result.map_err(|e| {
            tracing::error!(error = %e, "encoder batch failed");
            Error::Inference(e.to_string())
        })?;
        out.iter_mut().for_each(|e| e.truncate(spec.dims));
        Ok(Inline::Done(out))
    }

    /// Late chunking through the queue: checks the task, dimension and that the model can, takes
    /// a slot and hands the document to the prepare stage, which tokenizes it once and cuts it
    /// into windows ([`Encoder::late_chunk_windows`]); the worker batches windows (of this and
    /// other documents) together. The result is one embedding per span, in order, as
    /// [`Encoder::embed_spans`] gives.
    pub fn submit_spans(
        &self,
        text: String,
        spans: Vec<Range<usize>>,
        opts: LateChunkOptions,
    ) -> Result<Pending> {
        let spec = self.encoder.run_spec(&opts.task, opts.dims)?;
        if !self.encoder.supports_late_chunking() {
            return Err(crate::model::no_late_chunking(self.encoder.info()));
        }
        let key = GroupKey {
            task: spec.task,
            prompt: if self.encoder.uses_prompts() {
                opts.prompt
            } else {
                PromptKind::Query
            },
            modality: Modality::Spans,
        };
        self.hand_over(key, spec.dims, || Raw::Spans { text, spans, opts })
    }

    /// [`EncoderService::submit_spans`] and wait.
    pub fn embed_spans(
        &self,
        text: String,
        spans: Vec<Range<usize>>,
        opts: LateChunkOptions,
    ) -> Result<Vec<Embedding>> {
        self.submit_spans(text, spans, opts)?.wait()
    }
}

impl Drop for EncoderService {
    fn drop(&mut self) {
        // Closing the channel ends the prepare threads once queued work is prepared; they hold
        // the last senders to the worker, which ends once that work is done.
        self.tx.take();
        for p in self.preparers.drain(..) {
            let _ = p.join();
        }
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The prepare stage: tokenizes or preprocesses each request and passes it to the worker.
fn prepare_loop(encoder: &Encoder, rx: Receiver<RawJob>, tx: Sender<Job>, stats: &ServiceStats) {
    for raw in rx {
        if raw.cancelled.load(Ordering::Relaxed) {
            continue;
        }
        let started = Instant::now();
        let prepared = prepare(encoder, raw.raw);
        stats
            .prepare_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        match prepared {
            Ok((lens, items)) => {
                let job = Job {
                    key: raw.key,
                    dims: raw.dims,
                    lens,
                    items,
                    cancelled: raw.cancelled,
                    reply: raw.reply,
                };
                // Blocks only if the worker is `queue_capacity` jobs behind, which the slots
                // rule out; an error means the worker is gone (shutting down).
                if tx.send(job).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = raw.reply.send(Err(e));
            }
        }
    }
}

/// Token rows or image patches, with each item's cost in tokens.
fn prepare(encoder: &Encoder, raw: Raw) -> Result<(Vec<usize>, Items)> {
    match raw {
        Raw::Text {
            texts,
            task,
            prompt,
            truncation,
        } => {
            let rows = encoder.tokenize(&texts, &task, prompt, truncation)?;
            Ok((rows.iter().map(Vec::len).collect(), Items::Text(rows)))
        }
        Raw::Images(images) => {
            let patches = encoder.preprocess_images(&images)?;
            let lens = patches
                .iter()
                .map(|p| encoder.image_tokens(p))
                .collect::<Result<Vec<_>>>()?;
            Ok((lens, Items::Images(patches)))
        }
        Raw::Spans { text, spans, opts } => {
            let windows = encoder.late_chunk_windows(&text, &spans, &opts)?;
            Ok((
                windows.iter().map(|w| w.ids.len()).collect(),
                Items::Windows(windows),
            ))
        }
    }
}

fn worker_loop(
    encoder: &Encoder,
    rx: Receiver<Job>,
    limits: BatchLimits,
    stats: &ServiceStats,
    forward: &Mutex<()>,
) {
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
        let running = forward.lock().unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        let result = span.in_scope(|| run_batch(encoder, &queue, &picked, key.modality, spec));
        drop(running);
        let (real, computed) = pass_tokens(&lens, limits.packed);
        stats.count_pass(picked.len(), real, computed, started);
        match result {
            Ok(embs) => {
                for (p, mut es) in picked.iter().zip(embs) {
                    let job = queue
                        .get_mut(p.job)
                        .expect("picked job is queued: this is a bug");
                    let st = &mut job.state;
                    es.iter_mut().for_each(|e| e.truncate(st.dims));
                    st.results[p.row] = Some(es);
                    st.done += 1;
                    if st.done == st.results.len() {
                        let job = queue.remove(p.job).expect("job present: this is a bug");
                        let out = job
                            .state
                            .results
                            .into_iter()
                            .flat_map(|r| r.expect("row done"))
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
/// `embed_ids`, images through `encode_patches`, windows through `embed_windows`; each item's
/// embeddings (one for a row or an image, one per chunk for a window).
fn run_batch(
    encoder: &Encoder,
    queue: &JobQueue<JobState>,
    picked: &[queue::BatchRow],
    modality: Modality,
    spec: RunSpec,
) -> Result<Vec<Vec<Embedding>>> {
    let mut rows: Vec<&[u32]> = Vec::new();
    let mut spans: Vec<&[Range<usize>]> = Vec::new();
    let mut images: Vec<&Patches> = Vec::new();
    for p in picked {
        let job = queue
            .get(p.job)
            .expect("picked job is queued: this is a bug");
        match (&job.state.items, modality) {
            (Items::Text(r), Modality::Text) => rows.push(&r[p.row]),
            (Items::Images(i), Modality::Image) => images.push(&i[p.row]),
            (Items::Windows(w), Modality::Spans) => {
                rows.push(&w[p.row].ids);
                spans.push(&w[p.row].spans);
            }
            _ => unreachable!("a batch holds one modality (its group key): this is a bug"),
        }
    }
    let one_each = |embs: Vec<Embedding>| -> Vec<Vec<Embedding>> {
        embs.into_iter().map(|e| vec![e]).collect()
    };
    match modality {
        Modality::Text => encoder.embed_ids(&rows, spec).map(one_each),
        Modality::Image => encoder.encode_patches(&images, spec).map(one_each),
        Modality::Spans => encoder.embed_windows(&rows, &spans, spec),
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
            results: (0..n).map(|_| None).collect(),
            done: 0,
            reply: job.reply,
        },
    });
}
