//! `quiver ingest`: loads text files, JSON Lines and images into a collection through a running server,
//! which embeds them with its model (Qdrant inference objects in the upserts), or in this process on
//! the data directory with `--model-source`.
//!
//! Files: `.txt` and `.md` are one point each (payload `{"path", "text"}`); `.jsonl` is one point per
//! line (the line is the payload, its text field is embedded); `.png`, `.jpg`, `.webp` and `.gif` are
//! one point each (payload `{"path"}`), sent as base64 image objects; `.pdf`, `.html`, `.htm`, `.csv`
//! and `.tsv` are read by `ingest_documents`. Ids derive from the path (and line) or from the JSONL
//! id field, so a second run finds the points of the first and skips them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use quiver_engine::PointId;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::inference::{self, Document, DocumentOptions, Input, PointDraft, VectorsDraft};

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
    /// Vector names to fill (repeatable; default: every vector of the collection).
    #[arg(long = "vector")]
    pub vectors: Vec<String>,
    /// JSONL field or CSV/TSV column holding the text to embed.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// JSONL field or CSV/TSV column holding the point id (an unsigned integer or a UUID; other
    /// values are hashed). Lines without it get an id from the file path and line number.
    #[arg(long, default_value = "id")]
    pub id_field: String,
    /// Points per upsert request.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Cut texts over the model's token limit instead of failing on them.
    #[arg(long)]
    pub truncate: bool,
}

/// What a point is embedded from.
enum Content {
    Text(String),
    /// Read when its batch is sent, so a folder of photos is never all in memory.
    Image(PathBuf),
}

/// One point to be.
struct Item {
    id: PointId,
    content: Content,
    payload: Map<String, Value>,
}

/// How every item becomes a point: the same document fills each of `vectors`.
struct Fill<'a> {
    vectors: &'a [String],
    model: Option<&'a str>,
    truncate: bool,
}

/// Where points go: a server, or a data directory in this process.
trait Sink {
    /// Every vector name of the collection (`""` for the unnamed one).
    fn vector_names(&self) -> Result<Vec<String>>;
    /// Which of `ids` the collection holds already.
    fn existing(&self, ids: &[PointId]) -> Result<HashSet<PointId>>;
    /// Embeds and upserts the items, durably.
    fn upsert(&self, items: &[&Item], fill: &Fill<'_>) -> Result<()>;
    /// Makes everything durable and lets go.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Runs `ingest`.
pub fn run(global: &super::GlobalArgs, args: IngestArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let sink: Box<dyn Sink> = match &args.model_source {
        Some(source) => Box::new(Local::open(global, &args.collection, source, &args)?),
        None => Box::new(Remote {
            http: Http::new(&args.url, args.api_key.clone()),
            collection: args.collection.clone(),
        }),
    };
    let vectors = target_vectors(sink.vector_names()?, &args.vectors)?;

    let (items, skipped) = collect(&args)?;
    if items.is_empty() {
        bail!(
            "no .txt, .md, .jsonl, .pdf, .html, .csv, .tsv or image input found under the given \
             paths"
        );
    }
    let progress = ProgressBar::new(items.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} items, {per_sec}, ETA {eta} {msg}")
            .expect("static progress template is valid: this is a bug"),
    );
    let started = Instant::now();
    let fill = Fill {
        vectors: &vectors,
        model: args.model.as_deref(),
        truncate: args.truncate,
    };
    let (mut added, mut present) = (0usize, 0usize);
    for chunk in items.chunks(args.batch_size) {
        let ids: Vec<PointId> = chunk.iter().map(|item| item.id).collect();
        let existing = sink.existing(&ids)?;
        let new: Vec<&Item> = chunk
            .iter()
            .filter(|item| !existing.contains(&item.id))
            .collect();
        present += chunk.len() - new.len();
        if !new.is_empty() {
            added += new.len();
            sink.upsert(&new, &fill).context("upsert")?;
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    sink.finish()?;
    eprintln!(
        "ingested {added} new points into `{}` ({present} already present, {} files skipped) in {:.1} s",
        args.collection,
        skipped,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The vector names to fill, checked against the collection's.
fn target_vectors(all: Vec<String>, wanted: &[String]) -> Result<Vec<String>> {
    if wanted.is_empty() {
        return Ok(all);
    }
    for name in wanted {
        if !all.contains(name) {
            bail!(
                "--vector {name}: the collection has {}",
                all.iter()
                    .map(|n| if n.is_empty() {
                        "one unnamed vector".into()
                    } else {
                        format!("`{n}`")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(wanted.to_vec())
}

/// An image file as base64, the form image objects carry.
fn image_base64(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    Ok(crate::base64::encode(&bytes))
}

/// The HTTP API's upsert form of an item: the same document (text or image) for every target vector.
fn point_json(item: &Item, fill: &Fill<'_>) -> Result<Value> {
    let mut document = match &item.content {
        Content::Text(text) => {
            let mut d = json!({ "text": text });
            if fill.truncate {
                d["options"] = json!({ "truncate": true });
            }
            d
        }
        Content::Image(path) => json!({ "image": image_base64(path)? }),
    };
    if let Some(model) = fill.model {
        document["model"] = json!(model);
    }
    let vector = if fill.vectors.len() == 1 && fill.vectors[0].is_empty() {
        document
    } else {
        Value::Object(
            fill.vectors
                .iter()
                .map(|name| (name.clone(), document.clone()))
                .collect(),
        )
    };
    Ok(json!({ "id": item.id, "vector": vector, "payload": item.payload }))
}

/// The inference layer's form of an item, for embedding in this process.
fn point_draft(item: &Item, fill: &Fill<'_>) -> Result<PointDraft> {
    let document = Document {
        content: match &item.content {
            Content::Text(text) => inference::Content::Text(text.clone()),
            Content::Image(path) => inference::Content::Image(image_base64(path)?),
        },
        model: fill.model.map(str::to_string),
        options: DocumentOptions {
            truncate: fill.truncate,
            ..DocumentOptions::default()
        },
    };
    let vectors = if fill.vectors.len() == 1 && fill.vectors[0].is_empty() {
        VectorsDraft::Single(Input::Document(document))
    } else {
        VectorsDraft::Named(
            fill.vectors
                .iter()
                .map(|name| (name.clone(), Input::Document(document.clone())))
                .collect(),
        )
    };
    Ok(PointDraft {
        id: item.id,
        vectors,
        payload: Some(item.payload.clone()),
    })
}

/// Every input under `args.paths`, in a stable order, and how many files were skipped.
fn collect(args: &IngestArgs) -> Result<(Vec<Item>, usize)> {
    let mut files = Vec::new();
    for path in &args.paths {
        walk(path, &mut files).with_context(|| format!("{}", path.display()))?;
    }
    files.sort();
    let mut items = Vec::new();
    let mut skipped = 0usize;
    for file in files {
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("txt") | Some("md") => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("{}: not UTF-8 text", file.display()))?;
                if text.trim().is_empty() {
                    skipped += 1;
                    continue;
                }
                let shown = file.display().to_string();
                let mut payload = Map::new();
                payload.insert("path".into(), json!(shown));
                payload.insert("text".into(), json!(text));
                items.push(Item {
                    id: hashed_id(&shown),
                    content: Content::Text(text),
                    payload,
                });
            }
            Some("jsonl") => read_jsonl(&file, args, &mut items)?,
            _ if super::ingest_documents::handles(&file) => {
                let points =
                    super::ingest_documents::points(&file, &args.text_field, &args.id_field)?;
                if points.is_empty() {
                    skipped += 1;
                }
                items.extend(points.into_iter().map(|p| Item {
                    id: p.id,
                    content: Content::Text(p.text),
                    payload: p.payload,
                }));
            }
            Some("png") | Some("jpg") | Some("jpeg") | Some("webp") | Some("gif") => {
                let shown = file.display().to_string();
                let mut payload = Map::new();
                payload.insert("path".into(), json!(shown));
                items.push(Item {
                    id: hashed_id(&shown),
                    content: Content::Image(file.clone()),
                    payload,
                });
            }
            _ => skipped += 1,
        }
    }
    Ok((items, skipped))
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

fn read_jsonl(file: &Path, args: &IngestArgs, items: &mut Vec<Item>) -> Result<()> {
    let content = std::fs::read_to_string(file)
        .with_context(|| format!("{}: not UTF-8 text", file.display()))?;
    for (n, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", file.display(), n + 1);
        let value: Value =
            serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        let Value::Object(payload) = value else {
            bail!("{}: each line must be a JSON object", at());
        };
        let text = match payload.get(&args.text_field) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => bail!(
                "{}: no non-empty string field `{}` (choose it with --text-field)",
                at(),
                args.text_field
            ),
        };
        let id = match payload.get(&args.id_field) {
            Some(Value::Number(n)) if n.is_u64() => PointId::Num(n.as_u64().expect("checked")),
            Some(Value::String(s)) => match uuid::Uuid::parse_str(s) {
                Ok(uuid) => PointId::Uuid(uuid),
                Err(_) => hashed_id(&Value::String(s.clone()).to_string()),
            },
            Some(other) => hashed_id(&other.to_string()),
            None => hashed_id(&at()),
        };
        items.push(Item {
            id,
            content: Content::Text(text),
            payload,
        });
    }
    Ok(())
}

/// A stable point id from a string: the first 63 bits of its SHA-256.
pub(super) fn hashed_id(key: &str) -> PointId {
    let digest = Sha256::digest(key.as_bytes());
    PointId::Num(u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) >> 1)
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

/// A running server, which embeds.
struct Remote {
    http: Http,
    collection: String,
}

impl Sink for Remote {
    fn vector_names(&self) -> Result<Vec<String>> {
        let info = self
            .http
            .call("GET", &format!("/collections/{}", self.collection), None)
            .with_context(|| format!("collection `{}`", self.collection))?;
        let vectors = &info["config"]["params"]["vectors"];
        Ok(if vectors.get("size").is_some() {
            vec![String::new()]
        } else {
            vectors
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        })
    }

    fn existing(&self, ids: &[PointId]) -> Result<HashSet<PointId>> {
        let found = self.http.call(
            "POST",
            &format!("/collections/{}/points", self.collection),
            Some(&json!({"ids": ids, "with_payload": false, "with_vector": false})),
        )?;
        Ok(found
            .as_array()
            .map(|records| {
                records
                    .iter()
                    .filter_map(|r| serde_json::from_value(r["id"].clone()).ok())
                    .collect()
            })
            .unwrap_or_default())
    }

    fn upsert(&self, items: &[&Item], fill: &Fill<'_>) -> Result<()> {
        let points = items
            .iter()
            .map(|item| point_json(item, fill))
            .collect::<Result<Vec<_>>>()?;
        self.http.call(
            "PUT",
            &format!("/collections/{}/points?wait=true", self.collection),
            Some(&json!({ "points": points })),
        )?;
        Ok(())
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
    fn vector_names(&self) -> Result<Vec<String>> {
        Ok(self.collection.config().vectors.keys().cloned().collect())
    }

    fn existing(&self, ids: &[PointId]) -> Result<HashSet<PointId>> {
        let found = self.collection.retrieve(
            ids,
            &quiver_engine::WithPayload::None,
            &quiver_engine::WithVectors::None,
        )?;
        Ok(found.into_iter().map(|r| r.id).collect())
    }

    fn upsert(&self, items: &[&Item], fill: &Fill<'_>) -> Result<()> {
        let points = items
            .iter()
            .map(|item| point_draft(item, fill))
            .collect::<Result<Vec<_>>>()?;
        let config = self.collection.config();
        let inserts = inference::resolve_points(&self.models, config, points)?;
        self.collection.upsert(inserts)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.collection.flush()?;
        drop(self.collection);
        self.collections.close()?;
        Ok(())
    }
}
