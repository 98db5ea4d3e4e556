//! `quiver ingest`: loads documents and images into a collection through a running server, which
//! chunks and embeds them with its model (`POST /collections/{c}/documents`), or in this process on
//! the data directory with `--model-source`. Both go through the inference layer's
//! `write_documents`.
//!
//! Texts (`.txt`, `.md`, `.pdf`, `.html`, `.htm`, and each line or row of `.jsonl`, `.csv`,
//! `.tsv`) are cut into chunks of at most `--chunk-tokens` model tokens, each a point with payload
//! `{"path", "doc_id", "chunk", "start", "end", "text"}` (and `page` for a PDF, a record's own
//! fields); images (`.png`, `.jpg`, `.webp`, `.gif`) are one point each. Point ids are stable, so a
//! second run skips what is there, and a changed file replaces all its chunks. A file that cannot
//! be read, or a document that cannot be embedded, is reported by path and skipped; the run ends
//! with a summary and fails if anything was skipped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};

use crate::inference::{self, Chunking, Content, DocId, SourceDocument, WriteOptions, Written};

/// Arguments of `ingest`.
#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Target collection (must exist; its vectors say what is embedded).
    #[arg(long)]
    pub collection: String,
    /// Files and directories (searched recursively) to load.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The server.
    #[arg(long, env = "QUIVER_URL", default_value = "http://127.0.0.1:6333")]
    pub url: String,
    /// Embed in this process with this model (a directory, or a Hugging Face repo id, downloaded
    /// into the Hugging Face cache when missing) and write to --data-dir directly, without a
    /// server (which must not be running on it).
    #[arg(long, value_name = "DIR_OR_HF_ID", conflicts_with_all = ["url", "api_key", "model"])]
    pub model_source: Option<String>,
    /// With --model-source: where the model runs (cpu, cuda, cuda:N, or auto: GPU 0 when this build
    /// has CUDA and a GPU answers, else the CPU).
    #[arg(long, requires = "model_source", default_value = "auto")]
    pub device: quiver_encoder::DeviceChoice,
    /// With --model-source: compute type, f32 or bf16 (default: bf16 on a GPU, f32 on the CPU).
    #[arg(long, requires = "model_source", value_parser = quiver_encoder::parse_dtype)]
    pub dtype: Option<quiver_encoder::DType>,
    /// API key of the server (admin or a key that may write).
    #[arg(long, env = "QUIVER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Model to embed with (needed only when the server runs several).
    #[arg(long)]
    pub model: Option<String>,
    /// Vector names to fill (repeatable; default: the bound vectors, or every vector when none
    /// is bound).
    #[arg(long = "vector")]
    pub vectors: Vec<String>,
    /// JSONL field or CSV/TSV column holding the text to embed.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// JSONL field or CSV/TSV column holding the document id (an unsigned integer or a UUID is
    /// also the point id of a record that is one chunk). Records without it are named by path
    /// and line.
    #[arg(long, default_value = "id")]
    pub id_field: String,
    /// Documents per request.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Most model tokens of a chunk's text (default and maximum: the model's limit less its
    /// prompt and special tokens).
    #[arg(long, conflicts_with_all = ["no_chunking", "truncate"])]
    pub chunk_tokens: Option<usize>,
    /// Tokens a chunk shares with the one before (less than half of the chunk size).
    #[arg(long, default_value_t = 0, conflicts_with_all = ["no_chunking", "truncate"])]
    pub chunk_overlap: usize,
    /// Late chunking: a file of several chunks goes through the model whole (in windows of its
    /// context when longer) and each chunk's vector pools its own tokens there, so it keeps the
    /// file's context. Default: on for models of 8192 tokens of context or more that can
    /// (jina-embeddings-v4), off for others (all-MiniLM-L6-v2).
    #[arg(long, conflicts_with_all = ["no_late_chunking", "no_chunking", "truncate"])]
    pub late_chunking: bool,
    /// Embed each chunk on its own, even with a long-context model.
    #[arg(long, conflicts_with_all = ["no_chunking", "truncate"])]
    pub no_late_chunking: bool,
    /// One point per document: a text over the model's limit is skipped (see --truncate).
    #[arg(long)]
    pub no_chunking: bool,
    /// One point per document, its text cut at the model's limit (what is past it is not
    /// embedded).
    #[arg(long)]
    pub truncate: bool,
}

/// One document to be: its file, and its content (an image read only when its batch is sent, so
/// a folder of photos is never all in memory).
struct Item {
    file: usize,
    doc: Pending,
}

enum Pending {
    Text(SourceDocument),
    Image(PathBuf),
}

impl Item {
    fn load(&self) -> Result<SourceDocument> {
        Ok(match &self.doc {
            Pending::Text(doc) => doc.clone(),
            Pending::Image(path) => {
                let shown = path.display().to_string();
                let bytes = std::fs::read(path).with_context(|| shown.clone())?;
                let mut payload = Map::new();
                payload.insert("path".into(), json!(shown));
                SourceDocument {
                    id: DocId::Str(shown),
                    content: Content::Image(crate::base64::encode(&bytes)),
                    payload,
                    pages: Vec::new(),
                }
            }
        })
    }
}

/// Where documents go: a server, or a data directory in this process.
trait Sink {
    /// Embeds and writes the documents, durably; all or none.
    fn write(&self, docs: Vec<SourceDocument>, opts: &WriteOptions) -> Result<Vec<Written>>;
    /// Makes everything durable and lets go.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// What a run found.
#[derive(Default)]
struct Tally {
    /// Files with at least one point.
    files: usize,
    /// Points the documents are.
    points: usize,
    /// Points embedded and written now.
    upserted: usize,
    /// Files (or records) skipped, with the reason.
    skipped: Vec<(String, String)>,
    /// Files of no supported format, or without text.
    ignored: usize,
}

/// Runs `ingest`.
pub fn run(global: &super::GlobalArgs, args: IngestArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.chunk_tokens == Some(0) {
        bail!("--chunk-tokens must be at least 1");
    }
    let chunking = if args.no_chunking || args.truncate {
        Chunking::Off {
            truncate: args.truncate,
        }
    } else {
        Chunking::On {
            max_tokens: args.chunk_tokens,
            overlap: args.chunk_overlap,
            late: match (args.late_chunking, args.no_late_chunking) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
        }
    };
    let opts = WriteOptions {
        vectors: (!args.vectors.is_empty()).then(|| args.vectors.clone()),
        model: args.model.clone(),
        chunking,
        skip_unchanged: true,
    };
    let sink: Box<dyn Sink> = match &args.model_source {
        Some(source) => Box::new(Local::open(global, &args.collection, source, &args)?),
        None => Box::new(Remote::connect(&args)?),
    };

    let mut tally = Tally::default();
    let (files, items) = collect(&args, &mut tally)?;
    if items.is_empty() && tally.skipped.is_empty() {
        bail!(
            "no .txt, .md, .jsonl, .pdf, .html, .csv, .tsv or image input found under the given \
             paths"
        );
    }
    let progress = ProgressBar::new(items.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} documents, {per_sec}, ETA {eta} {msg}")
            .expect("static progress template is valid: this is a bug"),
    );
    let started = Instant::now();
    let mut written_files = vec![false; files.len()];
    let mut failed_files = vec![false; files.len()];
    for batch in items.chunks(args.batch_size) {
        let results = write_batch(sink.as_ref(), batch, &opts, &files)?;
        for (item, result) in batch.iter().zip(results) {
            match result {
                Ok(w) => {
                    tally.points += w.points.len();
                    tally.upserted += w.upserted;
                    written_files[item.file] = true;
                }
                Err(reason) => {
                    failed_files[item.file] = true;
                    tally.skipped.push((document_name(item, &files), reason));
                }
            }
        }
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    sink.finish()?;
    tally.files = written_files
        .iter()
        .zip(&failed_files)
        .filter(|(w, f)| **w && !**f)
        .count();
    eprintln!(
        "ingested {} files into `{}`: {} points, {} new or changed, {} unchanged; {} skipped, \
         {} ignored (no text or not a supported format), in {:.1} s",
        tally.files,
        args.collection,
        tally.points,
        tally.upserted,
        tally.points - tally.upserted,
        tally.skipped.len(),
        tally.ignored,
        started.elapsed().as_secs_f64()
    );
    if !tally.skipped.is_empty() {
        for (what, why) in &tally.skipped {
            // Errors of the formats name the file (and line) themselves.
            if why.starts_with(what.as_str()) {
                eprintln!("skipped {why}");
            } else {
                eprintln!("skipped {what}: {why}");
            }
        }
        bail!("{} skipped (listed above)", tally.skipped.len());
    }
    Ok(())
}

/// A document in messages: its file, and the record's line or id.
fn document_name(item: &Item, files: &[PathBuf]) -> String {
    match &item.doc {
        Pending::Text(doc) => match doc.payload.get("line") {
            Some(line) => format!("{}:{line}", files[item.file].display()),
            None => files[item.file].display().to_string(),
        },
        Pending::Image(path) => path.display().to_string(),
    }
}

/// Writes a batch; when it fails, each document alone, so one bad document is skipped and the
/// others are written. A failure every document shares (the server is gone, the collection has
/// no such vector) ends the run.
fn write_batch(
    sink: &dyn Sink,
    batch: &[Item],
    opts: &WriteOptions,
    files: &[PathBuf],
) -> Result<Vec<Result<Written, String>>> {
    let load_all = || batch.iter().map(Item::load).collect::<Result<Vec<_>>>();
    let batch_error = match load_all().and_then(|docs| sink.write(docs, opts)) {
        Ok(written) => return Ok(written.into_iter().map(Ok).collect()),
        Err(e) => e,
    };
    let mut results = Vec::with_capacity(batch.len());
    for item in batch {
        let one = item
            .load()
            .and_then(|doc| sink.write(vec![doc], opts))
            .map(|mut w| w.remove(0))
            .map_err(|e| format!("{e:#}"));
        results.push(one);
    }
    let shared = results
        .iter()
        .all(|r| r.as_ref().err().is_some_and(|e| !e.contains("document `")));
    if shared {
        let first = batch
            .first()
            .map(|i| document_name(i, files))
            .unwrap_or_default();
        return Err(batch_error.context(format!("writing {first} and the documents after it")));
    }
    Ok(results)
}

/// Every file under `args.paths` in a stable order, and its documents; files that cannot be read
/// are counted in `tally` as skipped, files of no supported format as ignored.
fn collect(args: &IngestArgs, tally: &mut Tally) -> Result<(Vec<PathBuf>, Vec<Item>)> {
    let mut files = Vec::new();
    for path in &args.paths {
        walk(path, &mut files).with_context(|| format!("{}", path.display()))?;
    }
    files.sort();
    let mut items = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if super::ingest_documents::handles(file) {
            match super::ingest_documents::documents(file, &args.text_field, &args.id_field) {
                Ok(docs) if docs.is_empty() => tally.ignored += 1,
                Ok(docs) => items.extend(docs.into_iter().map(|d| Item {
                    file: i,
                    doc: Pending::Text(d),
                })),
                Err(e) => tally
                    .skipped
                    .push((file.display().to_string(), format!("{e:#}"))),
            }
            continue;
        }
        match ext.as_deref() {
            Some("png") | Some("jpg") | Some("jpeg") | Some("webp") | Some("gif") => {
                items.push(Item {
                    file: i,
                    doc: Pending::Image(file.clone()),
                })
            }
            _ => tally.ignored += 1,
        }
    }
    Ok((files, items))
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
    } else if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let name = entry.file_name();
            // Hidden files and directories (.git, editor swap files) are not documents.
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            walk(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// A small JSON client of the server, retrying 429s after their Retry-After.
struct Http {
    agent: ureq::Agent,
    base: String,
    key: Option<String>,
}

impl Http {
    fn new(base: &str, key: Option<String>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Http {
            agent,
            base: base.trim_end_matches('/').to_string(),
            key,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        loop {
            let mut request = ureq::http::Request::builder().method(method).uri(&url);
            if let Some(key) = &self.key {
                request = request.header("api-key", key);
            }
            let mut response = match body {
                Some(body) => self.agent.run(
                    request
                        .header("content-type", "application/json")
                        .body(body.to_string())?,
                ),
                None => self.agent.run(request.body(())?),
            }
            .with_context(|| format!("cannot reach {} (is `quiver serve` running?)", self.base))?;
            let status = response.status().as_u16();
            let text = response
                .body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_string()?;
            if status == 429 {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                std::thread::sleep(Duration::from_secs(wait));
                continue;
            }
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if !(200..300).contains(&status) {
                let message = value["status"]["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| value.to_string());
                bail!("{method} {path}: {status}: {message}");
            }
            return Ok(value["result"].clone());
        }
    }
}

/// A running server, which chunks and embeds.
struct Remote {
    http: Http,
    collection: String,
}

impl Remote {
    /// The server, once it has answered that the collection exists.
    fn connect(args: &IngestArgs) -> Result<Self> {
        let remote = Remote {
            http: Http::new(&args.url, args.api_key.clone()),
            collection: args.collection.clone(),
        };
        remote
            .http
            .call("GET", &format!("/collections/{}", remote.collection), None)
            .with_context(|| format!("collection `{}`", remote.collection))?;
        Ok(remote)
    }
}

/// The route's form of a document.
fn document_json(doc: SourceDocument) -> Value {
    let mut out = json!({ "id": doc.id.to_json(), "payload": doc.payload });
    match doc.content {
        Content::Text(text) => {
            if !doc.pages.is_empty() {
                // The route takes character offsets, as the chunks' `start` and `end` are.
                let pages: Vec<Value> = doc
                    .pages
                    .iter()
                    .map(|p| json!({"number": p.number, "start": text[..p.start].chars().count()}))
                    .collect();
                out["pages"] = json!(pages);
            }
            out["text"] = json!(text);
        }
        Content::Image(image) => out["image"] = json!(image),
    }
    out
}

/// The route's form of the options.
fn options_json(opts: &WriteOptions) -> Value {
    let mut body = json!({ "skip_unchanged": opts.skip_unchanged });
    body["chunking"] = match opts.chunking {
        Chunking::Off { truncate } => json!({"enabled": false, "truncate": truncate}),
        Chunking::On {
            max_tokens,
            overlap,
            late,
        } => {
            let mut c = json!({ "overlap": overlap });
            if let Some(n) = max_tokens {
                c["max_tokens"] = json!(n);
            }
            if let Some(late) = late {
                c["late"] = json!(late);
            }
            c
        }
    };
    if let Some(v) = &opts.vectors {
        body["vectors"] = json!(v);
    }
    if let Some(m) = &opts.model {
        body["model"] = json!(m);
    }
    body
}

impl Sink for Remote {
    fn write(&self, docs: Vec<SourceDocument>, opts: &WriteOptions) -> Result<Vec<Written>> {
        let mut body = options_json(opts);
        let ids: Vec<DocId> = docs.iter().map(|d| d.id.clone()).collect();
        body["documents"] = Value::Array(docs.into_iter().map(document_json).collect());
        let answer = self.http.call(
            "POST",
            &format!("/collections/{}/documents", self.collection),
            Some(&body),
        )?;
        let Some(entries) = answer["documents"].as_array() else {
            bail!("the server's answer has no `documents`: {answer}");
        };
        if entries.len() != ids.len() {
            bail!(
                "the server answered for {} documents, not {}",
                entries.len(),
                ids.len()
            );
        }
        ids.into_iter()
            .zip(entries)
            .map(|(id, e)| {
                Ok(Written {
                    id,
                    points: serde_json::from_value(e["points"].clone())
                        .context("the server's point ids")?,
                    upserted: e["upserted"].as_u64().unwrap_or(0) as usize,
                })
            })
            .collect()
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// The data directory in this process, with the model loaded here. Documents are embedded by the
/// inference layer the server runs, without going through JSON.
struct Local {
    collections: super::LockedCollections,
    collection: std::sync::Arc<quiver_engine::Collection>,
    models: crate::inference::Models,
}

impl Local {
    fn open(
        global: &super::GlobalArgs,
        collection: &str,
        source: &str,
        model_device: &IngestArgs,
    ) -> Result<Self> {
        use crate::inference::{ModelOptions, ModelSpec, ModelState, Models};
        let collections = super::open_collections(global)?;
        let handle = collections
            .get(collection)
            .with_context(|| format!("collection `{collection}`"))?;
        // Bound vectors name their model: the one loaded here takes that name, so they find it.
        let name = handle
            .config()
            .embedding
            .values()
            .next()
            .map_or("local".to_string(), |b| b.model.clone());
        let models = Models::new(&[ModelSpec {
            name: name.clone(),
            source: source.into(),
        }])
        .map_err(anyhow::Error::msg)?;
        eprintln!("loading model {source}");
        models.load_all(ModelOptions {
            device: model_device.device,
            dtype: model_device.dtype,
            service: Default::default(),
            cpu_f16_weights: false,
        });
        if let Some(ModelState::Failed(reason)) = models.state(&name) {
            bail!("--model-source {source}: {reason}");
        }
        Ok(Local {
            collections,
            collection: handle,
            models,
        })
    }
}

impl Sink for Local {
    fn write(&self, docs: Vec<SourceDocument>, opts: &WriteOptions) -> Result<Vec<Written>> {
        Ok(inference::write_documents(
            &self.models,
            &self.collection,
            docs,
            opts,
        )?)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.collection.flush()?;
        drop(self.collection);
        self.collections.close()?;
        Ok(())
    }
}
