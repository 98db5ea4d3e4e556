//! `quiver upsert`: load points from JSON Lines, in durable batches, with a progress bar.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use quiver_engine::point::Payload;
use quiver_engine::{NamedVectors, PointId, PointInsert, Vector};
use serde::Deserialize;

use super::{open_collections, GlobalArgs};

/// Arguments of `upsert`.
#[derive(Args, Debug)]
pub struct UpsertArgs {
    /// Collection to write into.
    #[arg(long, short = 'c')]
    pub collection: String,
    /// JSON Lines file, one point per line in Qdrant's shape:
    /// `{"id": 1, "vector": [0.1, ...], "payload": {...}}`; `vector` may also be an object of named
    /// vectors. `-` reads standard input.
    pub file: PathBuf,
    /// Points per write (each write is one durable WAL record).
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Seal and index the collection's newest segment when done.
    #[arg(long)]
    pub flush: bool,
    /// After each durable batch, print `acked LINE` (the last line number it held) to stdout.
    #[arg(long)]
    pub print_acks: bool,
}

/// A point as it appears in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointLine {
    id: PointId,
    #[serde(default)]
    vector: Option<VectorField>,
    #[serde(default)]
    payload: Option<Payload>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VectorField {
    Unnamed(Vector),
    Named(NamedVectors),
}

impl PointLine {
    fn into_insert(self) -> PointInsert {
        let vectors = match self.vector {
            None => NamedVectors::new(),
            Some(VectorField::Unnamed(v)) => NamedVectors::from([(String::new(), v)]),
            Some(VectorField::Named(named)) => named,
        };
        PointInsert {
            id: self.id,
            vectors,
            payload: self.payload,
        }
    }
}

/// Runs `upsert`.
pub fn run(global: &GlobalArgs, args: UpsertArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let collections = open_collections(global)?;
    let collection = collections.get(&args.collection)?;

    let (reader, total_bytes): (Box<dyn Read>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = File::open(&args.file)
            .with_context(|| format!("{}: cannot open", args.file.display()))?;
        let len = file.metadata().map(|m| m.len()).ok();
        (Box::new(file), len)
    };
    let progress = match total_bytes {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{bar:40} {percent:>3}% {msg} [{elapsed_precise}, eta {eta}]",
            )
            .expect("static progress template is valid: this is a bug"),
        ),
        None => ProgressBar::new_spinner(),
    };

    let started = Instant::now();
    let mut stdout = std::io::stdout().lock();
    let mut batch = Vec::with_capacity(args.batch_size);
    let mut written = 0usize;
    let mut bytes = 0u64;
    let mut line_no = 0usize;
    for line in BufReader::with_capacity(1 << 20, reader).lines() {
        line_no += 1;
        let line = line.with_context(|| format!("{}: read error", args.file.display()))?;
        bytes += line.len() as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let point: PointLine = serde_json::from_str(&line)
            .with_context(|| format!("{}:{line_no}: invalid point", args.file.display()))?;
        batch.push(point.into_insert());
        if batch.len() == args.batch_size {
            written += flush_batch(&collection, &mut batch, line_no, &args, &mut stdout)?;
            update_progress(&progress, bytes, written, started);
        }
    }
    if !batch.is_empty() {
        written += flush_batch(&collection, &mut batch, line_no, &args, &mut stdout)?;
        update_progress(&progress, bytes, written, started);
    }
    progress.finish();
    if args.flush {
        progress.set_message("sealing and indexing");
        collection.flush()?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "upserted {written} points into {:?} in {secs:.1}s ({:.0} points/s)",
        args.collection,
        written as f64 / secs.max(1e-9)
    );
    collections.close()?;
    Ok(())
}

fn flush_batch(
    collection: &quiver_engine::Collection,
    batch: &mut Vec<PointInsert>,
    line_no: usize,
    args: &UpsertArgs,
    stdout: &mut impl Write,
) -> Result<usize> {
    let n = batch.len();
    collection
        .upsert(std::mem::take(batch))
        .with_context(|| format!("{}: batch ending at line {line_no}", args.file.display()))?;
    if args.print_acks {
        writeln!(stdout, "acked {line_no}")?;
        stdout.flush()?;
    }
    Ok(n)
}

fn update_progress(progress: &ProgressBar, bytes: u64, written: usize, started: Instant) {
    progress.set_position(bytes);
    let rate = written as f64 / started.elapsed().as_secs_f64().max(1e-9);
    progress.set_message(format!("{written} points, {rate:.0}/s"));
}
