//! The inference layer: the embedding models a server runs, and the documents they turn into vectors.
//!
//! Models are named on the command line (`--model NAME=SOURCE`), loaded once per process on a
//! background thread, each owned by one [`EncoderService`] worker that batches the requests of every
//! route and collection using it. [`documents`] resolves the inference objects of upserts and queries
//! into typed vectors ([`resolve_points`], [`resolve_query`]); the HTTP routes and `quiver ingest`
//! both call it. Failures are this layer's own [`Error`]. The built-in `qdrant/bm25` model is not
//! one of them: it has no weights, needs no flag, and fills sparse vectors (see `embed.rs`).

mod chunked;
mod documents;
mod embed;
mod error;
mod images;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use quiver_encoder::{DType, DeviceChoice, Encoder, EncoderService, LoadOptions, ServiceOptions};

pub use chunked::{write_documents, Chunking, DocId, SourceDocument, WriteOptions, Written};
pub use documents::{
    check_bindings, resolve_points, resolve_query, Content, Document, DocumentOptions, Input,
    PointDraft, VectorsDraft,
};
pub use error::Error;
pub use images::read_image_file;

/// One `--model` flag: a name clients use and where the weights are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// What requests name the model by (`model` fields, `/v1/models`).
    pub name: String,
    /// A model directory or a Hugging Face repo id in the local cache.
    pub source: String,
}

impl FromStr for ModelSpec {
    type Err = String;

    /// `NAME=SOURCE`, or a bare `SOURCE` named by its last path component (`jinaai/jina-embeddings-v4`
    /// is `jina-embeddings-v4`).
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, source) = match s.split_once('=') {
            Some((name, source)) => (name.trim().to_string(), source.trim().to_string()),
            None => {
                let source = s.trim().trim_end_matches('/');
                let name = source.rsplit('/').next().unwrap_or(source);
                (name.to_string(), source.to_string())
            }
        };
        if source.is_empty() {
            return Err(format!("--model {s:?}: no model directory or repo id"));
        }
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || name.len() > 128 || !name.chars().all(plain) {
            return Err(format!(
                "--model {s:?}: the name must be 1 to 128 letters, digits, '-', '_' or '.'"
            ));
        }
        // Documents naming `bm25` get the built-in model; a served model of that name could
        // never be reached.
        if quiver_encoder::bm25::is_bm25_model(&name) {
            return Err(format!(
                "--model {s:?}: the name {name:?} is the built-in qdrant/bm25 model's; give the \
                 model another name (NAME=SOURCE)"
            ));
        }
        Ok(ModelSpec { name, source })
    }
}

/// How every model is loaded and served.
#[derive(Clone, Copy, Debug)]
pub struct ModelOptions {
    /// Where the models run (`--device`).
    pub device: DeviceChoice,
    /// Compute type; `None` takes the device's default (bf16 on a GPU, f32 on the CPU).
    pub dtype: Option<DType>,
    /// Batching and queue bounds of each model's worker.
    pub service: ServiceOptions,
    /// BERT encoders on the CPU in f32: f16 weights (`--cpu-f16-weights`).
    pub cpu_f16_weights: bool,
}

/// Where one model is in its life.
pub enum ModelState {
    /// Still loading.
    Loading,
    /// Serving.
    Ready(Arc<EncoderService>),
    /// Failed to load, with the reason.
    Failed(String),
}

struct Slot {
    source: String,
    state: OnceLock<Result<Arc<EncoderService>, String>>,
}

/// Every configured model by name. Names are known from the start; weights arrive when loaded.
#[derive(Default)]
pub struct Models {
    slots: BTreeMap<String, Slot>,
    /// The directory image objects may name files in, canonical (`--image-dir`).
    image_dir: Option<std::path::PathBuf>,
}

impl Models {
    /// The registry for these flags; nothing is loaded yet.
    pub fn new(specs: &[ModelSpec]) -> Result<Self, String> {
        let mut slots = BTreeMap::new();
        for spec in specs {
            let slot = Slot {
                source: spec.source.clone(),
                state: OnceLock::new(),
            };
            if slots.insert(spec.name.clone(), slot).is_some() {
                return Err(format!("--model: the name {:?} is used twice", spec.name));
            }
        }
        Ok(Models {
            slots,
            image_dir: None,
        })
    }

    /// Lets image objects name files under `dir` (which must exist).
    pub fn with_image_dir(mut self, dir: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use anyhow::Context;
        self.image_dir = dir
            .map(|d| {
                std::fs::canonicalize(d).with_context(|| {
                    format!("--image-dir {}: not a readable directory", d.display())
                })
            })
            .transpose()?;
        Ok(self)
    }

    /// The directory image objects may name files in.
    pub fn image_dir(&self) -> Option<&std::path::Path> {
        self.image_dir.as_deref()
    }

    /// Loads every model, one after another, on the calling thread. A device that cannot be
    /// opened fails every model with the reason.
    pub fn load_all(&self, opts: ModelOptions) {
        let device = opts.device.resolve().map_err(|e| e.to_string());
        if let Ok(device) = &device {
            let dtype = opts
                .dtype
                .unwrap_or_else(|| quiver_encoder::default_dtype(device));
            tracing::info!(device = ?device, ?dtype, "models run here");
        }
        for (name, slot) in &self.slots {
            let started = std::time::Instant::now();
            tracing::info!(model = %name, source = %slot.source, "loading model");
            let result = device.clone().and_then(|device| {
                let load = LoadOptions {
                    dtype: opts
                        .dtype
                        .unwrap_or_else(|| quiver_encoder::default_dtype(&device)),
                    device,
                    merge_task: None,
                    cpu_f16_weights: opts.cpu_f16_weights,
                };
                Encoder::load_with(&slot.source, &load)
                    .and_then(|encoder| EncoderService::start(Arc::new(encoder), opts.service))
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            });
            match &result {
                Ok(_) => tracing::info!(
                    model = %name,
                    seconds = started.elapsed().as_secs_f64(),
                    "model ready"
                ),
                Err(e) => tracing::error!(model = %name, error = %e, "model failed to load"),
            }
            let _ = slot.state.set(result);
        }
        // Loading frees what it converted and packed (the projections' own copies moved into
        // their shared region among them); mimalloc would hold those pages until this thread
        // allocated again.
        crate::return_freed_memory();
    }

    /// Configured names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.keys().map(String::as_str)
    }

    /// Whether no model is configured.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The state of a configured model, or `None` for an unknown name.
    pub fn state(&self, name: &str) -> Option<ModelState> {
        let slot = self.slots.get(name)?;
        Some(match slot.state.get() {
            None => ModelState::Loading,
            Some(Ok(service)) => ModelState::Ready(service.clone()),
            Some(Err(e)) => ModelState::Failed(e.clone()),
        })
    }

    /// The model a request names, or the only one when it names none.
    pub fn resolve<'a>(&'a self, name: Option<&'a str>) -> Result<&'a str, ResolveError> {
        if self.slots.is_empty() {
            return Err(ResolveError::NoneConfigured);
        }
        match name {
            Some(name) if self.slots.contains_key(name) => Ok(name),
            Some(name) => Err(ResolveError::Unknown(name.to_string())),
            None => match self.slots.len() {
                0 => Err(ResolveError::NoneConfigured),
                1 => Ok(self.slots.keys().next().expect("one model")),
                _ => Err(ResolveError::Ambiguous),
            },
        }
    }
}

impl Models {
    /// The model a request names (or the only one), once it is loaded, with its name; the errors
    /// say how to fix the request or the server's flags.
    pub fn ready(&self, name: Option<&str>) -> Result<(String, Arc<EncoderService>), Error> {
        let configured = || self.names().collect::<Vec<_>>().join(", ");
        let name = self.resolve(name).map_err(|e| match e {
            ResolveError::NoneConfigured => Error::NoModel,
            ResolveError::Ambiguous => Error::AmbiguousModel {
                configured: configured(),
            },
            ResolveError::Unknown(name) => Error::UnknownModel {
                name,
                configured: configured(),
            },
        })?;
        match self.state(name) {
            Some(ModelState::Ready(service)) => Ok((name.to_string(), service)),
            Some(ModelState::Loading) => Err(Error::Loading { name: name.into() }),
            Some(ModelState::Failed(reason)) => Err(Error::LoadFailed {
                name: name.into(),
                reason,
            }),
            None => Err(Error::UnknownModel {
                name: name.into(),
                configured: configured(),
            }),
        }
    }
}

/// Why a request's model could not be picked.
#[derive(Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// No `--model` was given.
    NoneConfigured,
    /// Several models and the request named none.
    Ambiguous,
    /// The named model is not configured.
    Unknown(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_flags_parse_with_and_without_a_name() {
        let spec: ModelSpec = "jina=/models/jina-v4".parse().unwrap();
        assert_eq!(
            (spec.name.as_str(), spec.source.as_str()),
            ("jina", "/models/jina-v4")
        );
        let spec: ModelSpec = "jinaai/jina-embeddings-v4".parse().unwrap();
        assert_eq!(spec.name, "jina-embeddings-v4");
        assert_eq!(spec.source, "jinaai/jina-embeddings-v4");
        for bad in ["=dir", "a b=dir", "x=", "", "BM25=dir", "Qdrant/bm25"] {
            assert!(bad.parse::<ModelSpec>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requests_pick_the_named_or_the_only_model() {
        let one = Models::new(&["a=x".parse().unwrap()]).unwrap();
        assert_eq!(one.resolve(None), Ok("a"));
        assert_eq!(one.resolve(Some("a")), Ok("a"));
        assert_eq!(
            one.resolve(Some("b")),
            Err(ResolveError::Unknown("b".into()))
        );
        assert!(matches!(one.state("a"), Some(ModelState::Loading)));
        let two = Models::new(&["a=x".parse().unwrap(), "b=y".parse().unwrap()]).unwrap();
        assert_eq!(two.resolve(None), Err(ResolveError::Ambiguous));
        assert_eq!(
            Models::default().resolve(None),
            Err(ResolveError::NoneConfigured)
        );
        assert!(Models::new(&["a=x".parse().unwrap(), "a=y".parse().unwrap()]).is_err());
    }
}
