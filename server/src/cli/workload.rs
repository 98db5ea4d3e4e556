//! `quiver debug-workload` (hidden): a random mix of upserts, deletes, seals, vacuums and snapshots on
//! one collection, printing each write before it starts and once it is acknowledged, for the
//! fault-injection suite that kills this process at random moments and checks nothing acknowledged was
//! lost.
//!
//! Output lines (stdout, flushed one by one):
//! ```text
//! pending upsert ID:VERSION ...     the next write; it may or may not survive a kill
//! pending delete ID ...
//! acked                             the pending write is durable
//! ready                             the collection is open (printed first)
//! begin flush|vacuum|snapshot       a seal, vacuum or snapshot starts ...
//! done                              ... and finished
//! snapshot NAME                     a snapshot was created (durable)
//! ```
//! A point `ID` at `VERSION` has vector `[ID, VERSION, 1, 0]` and payload `{"id": ID, "v": VERSION}`.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use quiver_engine::point::PointsSelector;
use quiver_engine::{CollectionConfig, Distance, NamedVectors, PointId, PointInsert, Vector};
use rand::{Rng, SeedableRng};

use super::{open_collections, GlobalArgs};

/// Arguments of `debug-workload`.
#[derive(Args, Debug)]
pub struct WorkloadArgs {
    /// Collection to write into (created with a small segment size if missing).
    #[arg(long, short = 'c', default_value = "fault")]
    pub collection: String,
    /// Seed of the operation mix.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Ids are drawn from `0..id_space`, so upserts overwrite and deletes hit existing points.
    #[arg(long, default_value_t = 2_000)]
    pub id_space: u64,
    /// Stop after this many operations.
    #[arg(long, default_value_t = u64::MAX)]
    pub ops: u64,
    /// Snapshots kept per collection; older ones are deleted.
    #[arg(long, default_value_t = 2)]
    pub keep_snapshots: usize,
}

/// The vector a point gets at a version.
pub fn vector_of(id: u64, version: u64) -> Vec<f32> {
    vec![id as f32, version as f32, 1.0, 0.0]
}

/// Runs `op` between `begin WHAT` and `done` lines, so a kill in between is attributed to it.
fn announced<T>(out: &mut impl Write, what: &str, op: impl FnOnce() -> Result<T>) -> Result<T> {
    writeln!(out, "begin {what}")?;
    out.flush()?;
    let result = op()?;
    writeln!(out, "done")?;
    out.flush()?;
    Ok(result)
}

/// Runs the workload until `ops` operations are done (or the process is killed).
pub fn run(global: &GlobalArgs, args: WorkloadArgs) -> Result<()> {
    let collections = open_collections(global)?;
    let c = match collections.get(&args.collection) {
        Ok(c) => c,
        Err(quiver_engine::Error::CollectionNotFound(_)) => {
            let mut config = CollectionConfig::single(4, Distance::Euclid);
            config.optimizer_config.segment_max_points = 300;
            config.optimizer_config.deleted_threshold = 0.1;
            // Its segments hold 300 points: vacuum them whatever their size.
            config.optimizer_config.vacuum_min_vector_number = 0;
            config.hnsw_config.full_scan_threshold = 100;
            collections.create(&args.collection, config)?
        }
        Err(e) => return Err(e.into()),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for _ in 0..args.ops {
        let roll = rng.random_range(0..100u32);
        if roll < 60 {
            let n = rng.random_range(1..=20usize);
            let mut points = Vec::with_capacity(n);
            let mut line = String::from("pending upsert");
            for _ in 0..n {
                let id = rng.random_range(0..args.id_space);
                let version = rng.random_range(1..u32::MAX as u64);
                line.push_str(&format!(" {id}:{version}"));
                let mut payload = quiver_engine::point::Payload::new();
                payload.insert("id".into(), id.into());
                payload.insert("v".into(), version.into());
                points.push(PointInsert {
                    id: PointId::Num(id),
                    vectors: NamedVectors::from([(
                        String::new(),
                        Vector::Dense(vector_of(id, version)),
                    )]),
                    payload: Some(payload),
                });
            }
            writeln!(out, "{line}")?;
            out.flush()?;
            c.upsert(points)?;
            writeln!(out, "acked")?;
            out.flush()?;
        } else if roll < 85 {
            let n = rng.random_range(1..=10usize);
            let ids: Vec<u64> = (0..n).map(|_| rng.random_range(0..args.id_space)).collect();
            let line: Vec<String> = ids.iter().map(u64::to_string).collect();
            writeln!(out, "pending delete {}", line.join(" "))?;
            out.flush()?;
            c.delete(PointsSelector::Ids(
                ids.into_iter().map(PointId::Num).collect(),
            ))?;
            writeln!(out, "acked")?;
            out.flush()?;
        } else if roll < 92 {
            announced(&mut out, "flush", || Ok(c.flush()?))?;
        } else if roll < 96 {
            announced(&mut out, "vacuum", || Ok(c.vacuum()?))?;
        } else {
            let d = announced(&mut out, "snapshot", || {
                Ok(collections.create_snapshot(&args.collection)?)
            })?;
            writeln!(out, "snapshot {}", d.name)?;
            out.flush()?;
            let all = collections.list_snapshots(&args.collection)?;
            for old in all
                .iter()
                .take(all.len().saturating_sub(args.keep_snapshots))
            {
                collections.delete_snapshot(&args.collection, &old.name)?;
            }
        }
    }
    collections.close()?;
    Ok(())
}
