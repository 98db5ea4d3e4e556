//! `quiver snapshot create|list|restore|delete`: back up and restore collections without a running
//! server. Collection snapshots live under `<data-dir>/snapshots/<collection>/`, full snapshots (every
//! collection in one archive) directly under `<data-dir>/snapshots/`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use quiver_storage::snapshot::Limits;

use super::{open_collections, GlobalArgs};

/// Snapshot subcommands.
#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Snapshot a collection (or, with --full, every collection) now; prints its description as JSON
    /// (name, creation_time, size, checksum).
    Create {
        /// Collection name.
        #[arg(required_unless_present = "full", conflicts_with = "full")]
        collection: Option<String>,
        /// Snapshot every collection into one archive.
        #[arg(long)]
        full: bool,
    },
    /// List a collection's snapshots (or, with --full, the full snapshots) as JSON lines.
    List {
        /// Collection name.
        #[arg(required_unless_present = "full", conflicts_with = "full")]
        collection: Option<String>,
        /// List full snapshots.
        #[arg(long)]
        full: bool,
    },
    /// Restore a snapshot file. A collection snapshot restores as the collection it was taken from
    /// (or --collection), replacing it if it exists; a full snapshot restores every collection in it.
    /// Nothing changes unless the whole archive verifies.
    Restore {
        /// The snapshot archive (a `.snapshot` file).
        file: PathBuf,
        /// Collection to restore a collection snapshot into (created, or replaced if it exists).
        #[arg(long, short = 'c')]
        collection: Option<String>,
        /// Expected SHA-256 of the archive; the restore is refused if it differs.
        #[arg(long)]
        checksum: Option<String>,
    },
    /// Delete a snapshot of a collection, or with --full a full snapshot.
    Delete {
        /// Collection name (omit with --full).
        #[arg(required_unless_present = "full")]
        collection: Option<String>,
        /// Snapshot file name, as `list` prints it.
        snapshot: Option<String>,
        /// Delete a full snapshot; the one positional argument is its name.
        #[arg(long)]
        full: bool,
    },
}

/// A spinner with the elapsed time on stderr while long work runs (hidden when stderr is no terminal).
fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Runs a snapshot subcommand.
pub fn run(global: &GlobalArgs, cmd: SnapshotCommand) -> Result<()> {
    let collections = open_collections(global)?;
    match cmd {
        SnapshotCommand::Create { collection, full } => {
            let d = match collection.filter(|_| !full) {
                Some(collection) => {
                    let bar = spinner(format!("snapshotting `{collection}`"));
                    let d = collections
                        .create_snapshot(&collection)
                        .with_context(|| format!("snapshot of `{collection}`"))?;
                    bar.finish_and_clear();
                    d
                }
                None => {
                    let bar = spinner("snapshotting every collection".into());
                    let d = collections
                        .create_full_snapshot()
                        .context("full snapshot")?;
                    bar.finish_and_clear();
                    d
                }
            };
            println!("{}", serde_json::to_string(&d)?);
        }
        SnapshotCommand::List { collection, full } => {
            let list = match collection.filter(|_| !full) {
                Some(collection) => collections.list_snapshots(&collection)?,
                None => collections.list_full_snapshots()?,
            };
            for d in list {
                println!("{}", serde_json::to_string(&d)?);
            }
        }
        SnapshotCommand::Restore {
            file,
            collection,
            checksum,
        } => {
            if !file.is_file() {
                bail!("{}: no such snapshot file", file.display());
            }
            let bar = spinner(format!("verifying and restoring {}", file.display()));
            let names = collections
                .restore_any_snapshot(
                    &file,
                    collection.as_deref(),
                    checksum.as_deref(),
                    Limits::default(),
                )
                .with_context(|| format!("restoring {}", file.display()))?;
            bar.finish_and_clear();
            for name in names {
                let points = collections.get(&name)?.count(None)?;
                eprintln!("restored `{name}`: {points} points");
            }
            collections.close()?;
        }
        SnapshotCommand::Delete {
            collection,
            snapshot,
            full,
        } => {
            let deleted = if full {
                let (Some(name), None) = (collection.as_deref(), snapshot.as_deref()) else {
                    bail!("`snapshot delete --full` takes one argument: the snapshot's name");
                };
                collections.delete_full_snapshot(name)?
            } else {
                let (Some(collection), Some(name)) = (collection.as_deref(), snapshot.as_deref())
                else {
                    bail!("`snapshot delete` takes the collection and the snapshot's name");
                };
                collections.delete_snapshot(collection, name)?
            };
            if !deleted {
                bail!("snapshot not found (see `quiver snapshot list`)");
            }
        }
    }
    Ok(())
}
