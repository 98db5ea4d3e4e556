//! Snapshots: a consistent point-in-time archive of one collection, and restoring one by staging it
//! next to the collections, verifying it opens, then swapping it in with renames.
//!
//! The point in time is a WAL sequence number `S`. While the snapshot is written the collection's
//! optimizer lock is held, so the manifest, the immutable segment files it lists and the WAL chunks do
//! not change (seals and vacuums wait; writers do not). The archive holds the config, the manifest, the
//! listed segment files and the WAL records after the manifest's folded position up to `S`; restoring
//! replays those records exactly as a restart would.
//!
//! ```text
//! <data_dir>/snapshots/<collection>/<collection>-<YYYY-MM-DD-HH-MM-SS>-<n>.snapshot
//!                                   ...snapshot.sha256      sha256sum-style checksum sidecar
//! ```

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use quiver_storage::manifest::MANIFEST_FILE;
use quiver_storage::snapshot::{self as archive, ArchiveWriter, Limits, SnapshotManifest};
use quiver_storage::{fs as qfs, Manifest, Wal, WalOptions};
use serde::Serialize;

use super::{scratch_name, validate, Collection, Collections, CONFIG_FILE, WAL_DIR};
use crate::{Error, Result};

/// Directory (under the data directory) holding one directory of snapshots per collection.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// Archive entry holding the WAL records of the snapshot (our own framing, see [`write_records`]).
const WAL_RECORDS_ENTRY: &str = "wal-records.bin";
const WAL_RECORDS_MAGIC: &[u8; 8] = b"QVSNWAL1";

/// One snapshot as the API lists it (Qdrant's `SnapshotDescription`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnapshotDescription {
    /// File name of the archive.
    pub name: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SS`.
    pub creation_time: Option<String>,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the archive, lowercase hex.
    pub checksum: Option<String>,
}

fn invalid(e: archive::Error) -> Error {
    match e {
        archive::Error::Invalid(reason) => {
            Error::InvalidInput(format!("snapshot rejected: {reason}"))
        }
        archive::Error::Storage(e) => Error::Storage(e),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time (UTC), by the days-to-civil algorithm.
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `<prefix>-<YYYY-MM-DD-HH-MM-SS>-<n>.snapshot` with the first `n` not taken in `dir`. Callers hold
/// a lock that serialises snapshots into `dir`, so two never pick the same name.
fn unused_name(dir: &Path, prefix: &str, secs: u64) -> String {
    let stamp = format_utc(secs).replace([':', 'T'], "-");
    (0u32..)
        .map(|n| format!("{prefix}-{stamp}-{n}{}", archive::SNAPSHOT_SUFFIX))
        .find(|name| !dir.join(name).exists())
        .expect("some suffix is free")
}

/// Rejects snapshot names that could leave the snapshot directory or name something else.
pub fn validate_snapshot_name(name: &str) -> Result<()> {
    let ok = name.len() > archive::SNAPSHOT_SUFFIX.len()
        && name.ends_with(archive::SNAPSHOT_SUFFIX)
        && validate::is_plain_name(name);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid snapshot name {name:?}: expected a file name ending in `{}`",
            archive::SNAPSHOT_SUFFIX
        )))
    }
}

/// Writes the WAL records `from..=to` framed as magic, then per record `seq u64 LE, len u32 LE, bytes`.
fn write_records(wal: &Wal, from: u64, to: u64, path: &Path) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| quiver_storage::Error::io(path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let io = |e| quiver_storage::Error::io(path, e);
    out.write_all(WAL_RECORDS_MAGIC).map_err(io)?;
    wal.read_records(from, to, |seq, bytes| {
        out.write_all(&seq.to_le_bytes())
            .and_then(|_| out.write_all(&(bytes.len() as u32).to_le_bytes()))
            .and_then(|_| out.write_all(bytes))
            .map_err(io)
    })?;
    out.flush().map_err(io)?;
    Ok(())
}

/// Replays the framed records into a fresh WAL in `wal_dir`, checking they run `first..=last`.
fn restore_records(records: &Path, wal_dir: &Path, first: u64, last: u64) -> Result<()> {
    let file = std::fs::File::open(records).map_err(|e| quiver_storage::Error::io(records, e))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let bad =
        |why: String| Error::InvalidInput(format!("snapshot rejected: {WAL_RECORDS_ENTRY}: {why}"));
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|_| bad("too short".into()))?;
    if &magic != WAL_RECORDS_MAGIC {
        return Err(bad("bad magic".into()));
    }
    let wal = Wal::open(wal_dir, WalOptions::default(), first, |seq, _| {
        Err(quiver_storage::Error::Decode(format!(
            "unexpected record {seq} in a fresh log"
        )))
    })?;
    let mut expected = first;
    let mut head = [0u8; 12];
    let mut buf = Vec::new();
    loop {
        match input.read_exact(&mut head[..1]) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(quiver_storage::Error::io(records, e).into()),
        }
        input
            .read_exact(&mut head[1..])
            .map_err(|_| bad("truncated record header".into()))?;
        let seq = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
        if seq != expected {
            return Err(bad(format!("record {seq} where {expected} was expected")));
        }
        if len > quiver_storage::wal::MAX_RECORD {
            return Err(bad(format!("record {seq} claims {len} bytes")));
        }
        buf.resize(len, 0);
        input
            .read_exact(&mut buf)
            .map_err(|_| bad(format!("record {seq} is truncated")))?;
        let got = wal.write(&buf)?;
        debug_assert_eq!(got, seq);
        expected += 1;
    }
    if expected != last + 1 {
        return Err(bad(format!(
            "records end at {}, the manifest says {last}",
            expected - 1
        )));
    }
    wal.sync()?;
    Ok(())
}

impl Collection {
    /// Writes a snapshot of this collection into `dir` (created if missing) and returns its description.
    /// Every write acknowledged before this call began is in it; writers are not blocked.
    pub fn create_snapshot(&self, dir: &Path) -> Result<SnapshotDescription> {
        let sh = &self.shared;
        if sh.closed.load(Ordering::Acquire) {
            return Err(Error::Cancelled);
        }
        if let Some(parent) = dir.parent() {
            qfs::create_dir_durable(parent)?;
        }
        qfs::create_dir_durable(dir)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // Seals, vacuums and WAL trims take this lock: while held, the manifest, its files and the
        // WAL chunks stay put. Concurrent snapshots of one collection also serialise here, so two never
        // pick the same name.
        let manifest = sh.optimizer.lock();
        let name = unused_name(dir, &sh.name, now.as_secs());
        let path = dir.join(&name);
        let records_tmp = dir.join(format!("{name}.wal{}", qfs::TEMP_SUFFIX));
        // Under the writer lock every record up to `last` is written and applied; nothing later is.
        // The config and schema are taken under the same lock: config changes hold it too.
        let (last, stored) = {
            let _w = sh.writer.lock();
            let stored = super::stored_config(&sh.config(), &sh.snapshot().schema);
            (sh.wal.last_seq(), stored)
        };
        sh.wal.sync_to(last)?;
        let first = manifest.wal_seq + 1;
        let result = (|| -> Result<archive::ArchiveInfo> {
            write_records(&sh.wal, first, last, &records_tmp)?;
            let mut w = ArchiveWriter::create(&path).map_err(invalid)?;
            w.add_file(CONFIG_FILE, &sh.dir.join(CONFIG_FILE))
                .map_err(invalid)?;
            w.add_file(MANIFEST_FILE, &sh.dir.join(MANIFEST_FILE))
                .map_err(invalid)?;
            for seg in &manifest.segments {
                for f in &seg.files {
                    w.add_file(&f.path, &f.full_path(&sh.dir))
                        .map_err(invalid)?;
                }
            }
            w.add_file(WAL_RECORDS_ENTRY, &records_tmp)
                .map_err(invalid)?;
            w.finish(SnapshotManifest {
                format_version: archive::FORMAT_VERSION,
                quiver_version: env!("CARGO_PKG_VERSION").to_string(),
                collection: sh.name.clone(),
                created_at: now.as_secs(),
                config: stored,
                wal_first_seq: first,
                wal_last_seq: last,
                files: Vec::new(),
                collections: Vec::new(),
                aliases: Default::default(),
            })
            .map_err(invalid)
        })();
        drop(manifest);
        let _ = std::fs::remove_file(&records_tmp);
        let info = result?;
        tracing::info!(collection = %sh.name, snapshot = %name, bytes = info.size, wal_seq = last, "snapshot created");
        Ok(describe_created(&path, name, now.as_secs(), info))
    }
}

/// Removes what a crash can leave in the snapshot directory: unfinished archives (temp suffix),
/// uploads not yet restored and full-snapshot scratch directories (dot names). The data directory is
/// locked by this process, so nothing else is writing them.
pub(super) fn remove_leftovers(snapshots: &Path) {
    let leftover = |name: &str| name.starts_with('.') || name.ends_with(qfs::TEMP_SUFFIX);
    let Ok(entries) = std::fs::read_dir(snapshots) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if leftover(&name) {
            tracing::info!(path = %path.display(), "removing an unfinished snapshot file");
            let _ = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        } else if is_dir {
            for inner in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                let inner_name = inner.file_name().to_string_lossy().into_owned();
                if leftover(&inner_name) && inner.file_type().is_ok_and(|t| t.is_file()) {
                    tracing::info!(path = %inner.path().display(), "removing an unfinished snapshot file");
                    let _ = std::fs::remove_file(inner.path());
                }
            }
        }
    }
}

/// The description of a just-written archive. Listing reads the creation time from the file's mtime,
/// so the same value is reported here.
fn describe_created(
    path: &Path,
    name: String,
    now: u64,
    info: archive::ArchiveInfo,
) -> SnapshotDescription {
    let created = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(now, |d| d.as_secs());
    SnapshotDescription {
        name,
        creation_time: Some(format_utc(created)),
        size: info.size,
        checksum: Some(info.sha256),
    }
}

/// The archives directly in `dir`, oldest first (missing directory: none).
fn list_archives(dir: &Path) -> Result<Vec<SnapshotDescription>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(quiver_storage::Error::io(dir, e).into()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| quiver_storage::Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if validate_snapshot_name(&name).is_err() {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        // Sorted by the full-precision mtime: several snapshots can share a second.
        let created = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        out.push((
            created,
            SnapshotDescription {
                checksum: archive::read_checksum(&entry.path()),
                creation_time: created.map(|d| format_utc(d.as_secs())),
                size: meta.len(),
                name,
            },
        ));
    }
    out.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    Ok(out.into_iter().map(|(_, d)| d).collect())
}

/// Deletes an archive and its checksum sidecar. Returns false if it did not exist.
fn delete_archive(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(quiver_storage::Error::io(path, e).into()),
    }
    let _ = std::fs::remove_file(archive::checksum_path(path));
    qfs::sync_parent(path)?;
    Ok(true)
}

impl Collections {
    /// The directory holding every collection's snapshots.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.parent().unwrap_or(&self.root).join(SNAPSHOTS_DIR)
    }

    /// The directory of one collection's snapshots; an alias means the collection it names.
    pub fn collection_snapshots_dir(&self, collection: &str) -> Result<PathBuf> {
        validate::collection_name(collection)?;
        Ok(self.snapshots_dir().join(self.dealias(collection)))
    }

    /// Where a named snapshot of `collection` lies (whether or not it exists); the name is checked, so
    /// the path never leaves the snapshot directory.
    pub fn snapshot_path(&self, collection: &str, snapshot: &str) -> Result<PathBuf> {
        validate_snapshot_name(snapshot)?;
        Ok(self.collection_snapshots_dir(collection)?.join(snapshot))
    }

    /// Snapshots `collection` now.
    pub fn create_snapshot(&self, collection: &str) -> Result<SnapshotDescription> {
        let c = self.get(collection)?;
        c.create_snapshot(&self.collection_snapshots_dir(collection)?)
    }

    /// The snapshots of `collection`, oldest first. The checksum comes from each archive's sidecar.
    pub fn list_snapshots(&self, collection: &str) -> Result<Vec<SnapshotDescription>> {
        list_archives(&self.collection_snapshots_dir(collection)?)
    }

    /// Deletes a snapshot and its checksum sidecar. Returns false if it did not exist.
    pub fn delete_snapshot(&self, collection: &str, snapshot: &str) -> Result<bool> {
        delete_archive(&self.snapshot_path(collection, snapshot)?)
    }

    /// Where a full snapshot of that name lies (whether or not it exists); the name is checked.
    pub fn full_snapshot_path(&self, snapshot: &str) -> Result<PathBuf> {
        validate_snapshot_name(snapshot)?;
        Ok(self.snapshots_dir().join(snapshot))
    }

    /// Full snapshots (every collection in one archive), oldest first.
    pub fn list_full_snapshots(&self) -> Result<Vec<SnapshotDescription>> {
        list_archives(&self.snapshots_dir())
    }

    /// Deletes a full snapshot. Returns false if it did not exist.
    pub fn delete_full_snapshot(&self, snapshot: &str) -> Result<bool> {
        delete_archive(&self.full_snapshot_path(snapshot)?)
    }

    /// Snapshots every open collection into one archive under the snapshot directory: each collection
    /// is its own consistent point in time, taken one after another, as Qdrant's full snapshots are.
    pub fn create_full_snapshot(&self) -> Result<SnapshotDescription> {
        let dir = self.snapshots_dir();
        qfs::create_dir_durable(&dir)?;
        let scratch = dir.join(scratch_name("full", "snapshot"));
        qfs::create_dir_durable(&scratch)?;
        let result = self.write_full_snapshot(&dir, &scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    fn write_full_snapshot(&self, dir: &Path, scratch: &Path) -> Result<SnapshotDescription> {
        let collections: Vec<Arc<Collection>> = self.open.read().values().cloned().collect();
        let mut parts = Vec::new();
        for c in &collections {
            let d = c.create_snapshot(scratch)?;
            parts.push((c.name().to_string(), scratch.join(d.name)));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let _admin = self.admin.lock();
        // The aliases of the collections in the archive, as they are now (alias changes wait for the
        // admin lock).
        let aliases = self
            .aliases
            .read()
            .iter()
            .filter(|(_, target)| parts.iter().any(|(c, _)| c == *target))
            .map(|(a, c)| (a.clone(), c.clone()))
            .collect();
        let name = unused_name(dir, "full-snapshot", now.as_secs());
        let path = dir.join(&name);
        let mut w = ArchiveWriter::create(&path).map_err(invalid)?;
        for (collection, part) in &parts {
            w.add_file(&format!("{collection}{}", archive::SNAPSHOT_SUFFIX), part)
                .map_err(invalid)?;
        }
        let info = w
            .finish(SnapshotManifest {
                format_version: archive::FORMAT_VERSION,
                quiver_version: env!("CARGO_PKG_VERSION").to_string(),
                collection: String::new(),
                created_at: now.as_secs(),
                config: serde_json::Value::Null,
                wal_first_seq: 0,
                wal_last_seq: 0,
                files: Vec::new(),
                collections: parts.into_iter().map(|(c, _)| c).collect(),
                aliases,
            })
            .map_err(invalid)?;
        tracing::info!(snapshot = %name, bytes = info.size, collections = collections.len(), "full snapshot created");
        Ok(describe_created(&path, name, now.as_secs(), info))
    }

    /// Restores the archive at `archive_path` as collection `name`, replacing it if it exists. The
    /// archive is unpacked next to the collections, verified and opened before anything existing is
    /// touched; any failure up to the swap leaves the existing collection exactly as it was.
    /// `checksum` (SHA-256 hex), when given, must match the whole archive.
    pub fn restore_snapshot(
        &self,
        name: &str,
        archive_path: &Path,
        checksum: Option<&str>,
        limits: Limits,
    ) -> Result<Arc<Collection>> {
        validate::collection_name(name)?;
        self.check_not_alias(name)?;
        self.restore_any_snapshot(archive_path, Some(name), checksum, limits)?;
        self.get(name)
    }

    /// Restores a collection snapshot (as `name`, or under the name it was taken from) or a full
    /// snapshot (every collection in it, under its own name, and their aliases). Returns the names
    /// restored. Every collection is staged and verified before the first one is swapped in, so an
    /// archive that fails anywhere changes nothing.
    pub fn restore_any_snapshot(
        &self,
        archive_path: &Path,
        name: Option<&str>,
        checksum: Option<&str>,
        limits: Limits,
    ) -> Result<Vec<String>> {
        if let Some(want) = checksum {
            let got = archive::file_sha256(archive_path).map_err(invalid)?;
            if !got.eq_ignore_ascii_case(want.trim()) {
                return Err(Error::InvalidInput(format!(
                    "snapshot rejected: its SHA-256 is {got}, the expected checksum was {want}"
                )));
            }
        }
        let outer = self.root.join(scratch_name("restoring", "archive"));
        qfs::create_dir_durable(&outer)?;
        let mut staged: Vec<(String, PathBuf)> = Vec::new();
        let mut aliases = BTreeMap::new();
        let result = self.stage_archive(
            archive_path,
            name,
            &outer,
            limits,
            &mut staged,
            &mut aliases,
        );
        let result = result.and_then(|()| {
            let mut names = Vec::new();
            for (name, dir) in &staged {
                self.swap_in(name, dir)?;
                names.push(name.clone());
            }
            self.restore_aliases(&aliases)?;
            Ok(names)
        });
        for (_, dir) in &staged {
            if dir.exists() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        if outer.exists() {
            let _ = std::fs::remove_dir_all(&outer);
        }
        result
    }

    /// Unpacks `archive_path` into `outer` and stages each collection in it, pushing `(name, dir)` for
    /// every staged collection directory (so the caller can clean up after a failure). A full
    /// snapshot's aliases, checked, go to `aliases`.
    fn stage_archive(
        &self,
        archive_path: &Path,
        name: Option<&str>,
        outer: &Path,
        limits: Limits,
        staged: &mut Vec<(String, PathBuf)>,
        aliases: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        let manifest = archive::extract(archive_path, outer, limits).map_err(invalid)?;
        let bad = |why: String| Error::InvalidInput(format!("snapshot rejected: {why}"));
        if manifest.collections.is_empty() {
            let name = name.unwrap_or(&manifest.collection).to_string();
            validate::collection_name(&name)?;
            self.check_not_alias(&name)?;
            staged.push((name.clone(), outer.to_path_buf()));
            return self.stage_collection(&name, &manifest, outer);
        }
        if let Some(name) = name {
            return Err(Error::InvalidInput(format!(
                "this is a full snapshot of {} collections; it restores each under its own name,                  not as `{name}`",
                manifest.collections.len()
            )));
        }
        for (alias, target) in &manifest.aliases {
            if !validate::is_plain_name(alias)
                || !manifest.collections.contains(target)
                || manifest.collections.contains(alias)
            {
                return Err(bad(format!(
                    "alias `{alias}` of `{target}` in the manifest is not a valid alias of one of \
                     its collections"
                )));
            }
            if self.open.read().contains_key(alias) || self.failed.read().contains_key(alias) {
                return Err(Error::AliasShadowsCollection(alias.clone()));
            }
        }
        aliases.clone_from(&manifest.aliases);
        for name in &manifest.collections {
            validate::collection_name(name)
                .map_err(|e| bad(format!("collection name in the manifest: {e}")))?;
            self.check_not_alias(name)?;
            let nested = outer.join(format!("{name}{}", archive::SNAPSHOT_SUFFIX));
            if !nested.is_file() {
                return Err(bad(format!(
                    "it lists collection `{name}` but holds no archive for it"
                )));
            }
            let dir = self.root.join(scratch_name("restoring", name));
            qfs::create_dir_durable(&dir)?;
            staged.push((name.clone(), dir.clone()));
            let inner = archive::extract(&nested, &dir, limits).map_err(invalid)?;
            if !inner.collections.is_empty() {
                return Err(bad(format!(
                    "the archive of `{name}` is itself a full snapshot"
                )));
            }
            self.stage_collection(name, &inner, &dir)?;
        }
        Ok(())
    }

    /// Verifies an unpacked collection archive in `staging` and rebuilds its WAL: after this, `staging`
    /// is a collection directory that opened cleanly.
    fn stage_collection(
        &self,
        name: &str,
        manifest: &SnapshotManifest,
        staging: &Path,
    ) -> Result<()> {
        let bad = |why: String| Error::InvalidInput(format!("snapshot rejected: {why}"));
        for required in [CONFIG_FILE, MANIFEST_FILE, WAL_RECORDS_ENTRY] {
            if !manifest.files.iter().any(|f| f.path == required) {
                return Err(bad(format!("it holds no {required}")));
            }
        }
        let folded = Manifest::load(staging)
            .map_err(|e| bad(format!("{MANIFEST_FILE}: {e}")))?
            .ok_or_else(|| bad(format!("no {MANIFEST_FILE}")))?;
        if folded.wal_seq + 1 != manifest.wal_first_seq || manifest.wal_last_seq < folded.wal_seq {
            return Err(bad(format!(
                "WAL records {}..={} do not follow the segments' position {}",
                manifest.wal_first_seq, manifest.wal_last_seq, folded.wal_seq
            )));
        }
        let records = staging.join(WAL_RECORDS_ENTRY);
        restore_records(
            &records,
            &staging.join(WAL_DIR),
            manifest.wal_first_seq,
            manifest.wal_last_seq,
        )?;
        std::fs::remove_file(&records).map_err(|e| quiver_storage::Error::io(&records, e))?;
        qfs::sync_dir(staging)?;
        // Open it the way the server will (manifest verified, WAL replayed), then close it again.
        let opened = Collection::open(staging, name, self.options.clone())
            .map_err(|e| bad(format!("it does not open as a collection: {e}")))?;
        opened.close()?;
        Ok(())
    }

    /// Adds a restored full snapshot's aliases (moving aliases of the same name). One that became a
    /// collection's name since it was checked is skipped with a warning: the collections are already
    /// in place and stay.
    fn restore_aliases(&self, restored: &BTreeMap<String, String>) -> Result<()> {
        if restored.is_empty() {
            return Ok(());
        }
        let _admin = self.admin.lock();
        let mut next = self.aliases.read().clone();
        for (alias, target) in restored {
            if self.open.read().contains_key(alias) || self.failed.read().contains_key(alias) {
                tracing::warn!(%alias, collection = %target, "not restoring an alias: a collection took its name");
                continue;
            }
            next.insert(alias.clone(), target.clone());
        }
        super::aliases::store(&self.aliases_path, &next)?;
        *self.aliases.write() = next;
        Ok(())
    }

    /// Replaces (or creates) collection `name` with the verified directory `staging`.
    fn swap_in(&self, name: &str, staging: &Path) -> Result<Arc<Collection>> {
        let _admin = self.admin.lock();
        let dir = self.root.join(name);
        let old = self.open.write().remove(name);
        let old_failure = self.failed.write().remove(name);
        if let Some(c) = &old {
            // Writers on the old handle fail from here on, so nothing is acknowledged into files that
            // are about to be moved away.
            c.shutdown();
            c.shared.wal.sync()?;
        }
        let trash = self.root.join(scratch_name("trash", name));
        let had_old = dir.exists();
        let reinstate = |this: &Self| {
            match Collection::open(&dir, name, self.options.clone()) {
                Ok(c) => {
                    this.open.write().insert(name.to_string(), Arc::new(c));
                }
                Err(e) => {
                    this.failed.write().insert(name.to_string(), e.to_string());
                }
            }
            if let Some(reason) = &old_failure {
                this.failed.write().insert(name.to_string(), reason.clone());
            }
        };
        if had_old {
            if let Err(e) = std::fs::rename(&dir, &trash) {
                reinstate(self);
                return Err(quiver_storage::Error::io(&dir, e).into());
            }
        }
        if let Err(e) = std::fs::rename(staging, &dir) {
            if had_old {
                let _ = std::fs::rename(&trash, &dir);
                reinstate(self);
            }
            return Err(quiver_storage::Error::io(&dir, e).into());
        }
        qfs::sync_dir(&self.root)?;
        match Collection::open(&dir, name, self.options.clone()) {
            Ok(c) => {
                let c = Arc::new(c);
                self.open.write().insert(name.to_string(), c.clone());
                if had_old {
                    if let Err(e) = std::fs::remove_dir_all(&trash) {
                        // A leftover dot-directory is removed on the next open.
                        tracing::warn!(dir = %trash.display(), "removing the replaced collection: {e}");
                    }
                }
                tracing::info!(collection = %name, "snapshot restored");
                Ok(c)
            }
            Err(e) => {
                // It opened in staging; failing now means the disk changed under us. Put the old one back.
                let failed = self.root.join(scratch_name("failed", name));
                let _ = std::fs::rename(&dir, &failed);
                if had_old {
                    let _ = std::fs::rename(&trash, &dir);
                    let _ = qfs::sync_dir(&self.root);
                    reinstate(self);
                }
                let _ = std::fs::remove_dir_all(&failed);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        assert_eq!(format_utc(1_709_251_199), "2024-02-29T23:59:59");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00");
    }

    #[test]
    fn snapshot_names_are_confined() {
        for bad in [
            "../x.snapshot",
            "x",
            ".snapshot",
            ".a.snapshot",
            "a/b.snapshot",
            "a b.snapshot",
        ] {
            assert!(validate_snapshot_name(bad).is_err(), "{bad}");
        }
        validate_snapshot_name("c-2024-01-01-00-00-00-0.snapshot").unwrap();
    }
}
